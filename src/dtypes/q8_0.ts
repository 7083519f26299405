// GGML's Q8_0 weight format, which the kernels read in place (src/kernels/assembly/q8.ts): a row
// of Kin values (Kin % 32 == 0) is Kin/32 blocks of 34 bytes, an f16 scale d then 32 int8 q, and
// value = d·q (exact in f32: an 8-bit integer times an 11-bit significand).
// Row sizes come from the dtype table (table.ts rowBytes).
import { f16DecodeTable, f32ToF16 } from "./codecs.js";
import { DTYPES } from "./table.js";

export const Q8_0_BLOCK = DTYPES.q8_0.blockValues; // 32 values per block
export const Q8_0_BLOCK_BYTES = DTYPES.q8_0.blockBytes; // 34: f16 scale + 32 int8

/** Q8_0 blocks → f32 (numel values, a multiple of 32; `out` when given receives them). */
export function decodeQ8_0(raw: Uint8Array, numel: number, out: Float32Array = new Float32Array(numel)): Float32Array {
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const table = f16DecodeTable();
  for (let b = 0; b < numel / Q8_0_BLOCK; b++) {
    const d = table[dv.getUint16(b * Q8_0_BLOCK_BYTES, true)];
    for (let i = 0; i < Q8_0_BLOCK; i++) out[b * Q8_0_BLOCK + i] = d * dv.getInt8(b * Q8_0_BLOCK_BYTES + 2 + i);
  }
  return out;
}

/** f32 → Q8_0 as GGML quantizes it: d = max|x| / 127 (stored as f16), q = x / d rounded half away from 0. */
export function encodeQ8_0(x: Float32Array): Uint8Array {
  if (x.length % Q8_0_BLOCK !== 0) throw new RangeError(`encodeQ8_0: ${x.length} values is not a multiple of ${Q8_0_BLOCK}`);
  const out = new Uint8Array((x.length / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < x.length / Q8_0_BLOCK; b++) {
    let amax = 0;
    for (let i = 0; i < Q8_0_BLOCK; i++) amax = Math.max(amax, Math.abs(x[b * Q8_0_BLOCK + i]));
    const d = amax / 127;
    const id = d ? 1 / d : 0;
    dv.setUint16(b * Q8_0_BLOCK_BYTES, f32ToF16(d), true);
    for (let i = 0; i < Q8_0_BLOCK; i++) {
      const v = Math.fround(x[b * Q8_0_BLOCK + i] * id);
      dv.setInt8(b * Q8_0_BLOCK_BYTES + 2 + i, Math.sign(v) * Math.round(Math.abs(v)));
    }
  }
  return out;
}
