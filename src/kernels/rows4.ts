// The rows4 layout of a matmul weight [N, Kin] (MatmulCall.wRows4; the kernels' side is
// assembly/matvec.ts ROWS4). Each block of 4 rows 4b .. 4b+3 keeps its bytes where they were,
// reordered in 16-byte pieces: piece p of row 4b + r moves to byte 64p + 16r of the block, so the
// block is a run of 64-byte groups, each holding the same 16 bytes of the 4 rows (8 values of f16
// or bf16, 4 of f32). Rows past the last whole block stay in row order. The WASM kernels read a
// block as one sequential stream from one pointer (llama.cpp's CPU backend repacks its weights
// likewise).
import type { WeightDtype } from "./types.js";

/**
 * Rows of f32 weights shorter than this many values are read one row at a time by the kernels,
 * already a single stream (assembly/matvec.ts SEQ_BELOW), so they keep the row layout.
 */
export const ROWS4_F32_MIN_KIN = 1024;

/**
 * Whether a weight can take the rows4 layout: f16 or bf16 with Kin % 8 == 0, or f32 with
 * Kin % 4 == 0 and Kin >= ROWS4_F32_MIN_KIN; at least one whole block of 4 rows.
 */
export function rows4Eligible(dtype: WeightDtype, N: number, Kin: number): boolean {
  if (!(N >= 4 && Kin > 0)) return false;
  if (dtype === "f16" || dtype === "bf16") return Kin % 8 === 0;
  return dtype === "f32" && Kin % 4 === 0 && Kin >= ROWS4_F32_MIN_KIN;
}

/** Index in the weight's elements of element (n, k) of a rows4 [N, Kin] weight of `elementBytes`-byte values (2 or 4). */
export function rows4Index(n: number, k: number, N: number, Kin: number, elementBytes = 2): number {
  if (n >= N - (N % 4)) return n * Kin + k; // past the last block: row order
  const pp = 16 / elementBytes; // values per piece
  return (n - (n % 4)) * Kin + (k - (k % pp)) * 4 + (n % 4) * pp + (k % pp);
}

/** Reorders a weight ([N, Kin] 16- or 32-bit values in row order) into the rows4 layout, in place (moved as 32-bit words when 4-byte aligned). */
export function packRows4(w: Uint16Array | Uint32Array | Float32Array, N: number, Kin: number): void {
  const eb = w.BYTES_PER_ELEMENT;
  const rowBytes = Kin * eb;
  if (!(N >= 4 && Kin > 0 && rowBytes % 16 === 0) || w.length < N * Kin) {
    throw new RangeError(`packRows4: [${N}, ${Kin}] of ${eb}-byte values cannot take the rows4 layout (N >= 4, rows of 16-byte pieces, ${N * Kin} values) of ${w.length} values`);
  }
  // Words when aligned (never through a Float32Array: copying floats may change NaN bits), else halves.
  const [a, width] = w.byteOffset % 4 === 0 ? [new Uint32Array(w.buffer, w.byteOffset, (N * rowBytes) / 4), 4] : [new Uint16Array(w.buffer, w.byteOffset, (N * rowBytes) / 2), 8];
  const K = (rowBytes / 16) * width; // elements of `a` per row
  const tmp = a instanceof Uint32Array ? new Uint32Array(4 * K) : new Uint16Array(4 * K);
  for (let b = 0; b + 4 <= N; b += 4) {
    const base = b * K;
    tmp.set(a.subarray(base, base + 4 * K));
    for (let r = 0; r < 4; r++) {
      for (let g = 0, s = r * K, o = base + r * width; g < K; g += width, s += width, o += 4 * width) {
        for (let i = 0; i < width; i++) a[o + i] = tmp[s + i];
      }
    }
  }
}

/** The row-order copy of a rows4 weight of `elementBytes`-byte values (the reference backend's view). */
export function unpackRows4<T extends Uint16Array | Float32Array | Float64Array>(w: ArrayLike<number>, N: number, Kin: number, out: T, elementBytes = 2): T {
  for (let n = 0; n < N; n++) for (let k = 0; k < Kin; k++) out[n * Kin + k] = w[rows4Index(n, k, N, Kin, elementBytes)];
  return out;
}
