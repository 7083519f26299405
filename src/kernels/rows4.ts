// The rows4 layout of an f16 or bf16 matmul weight [N, Kin] (MatmulCall.wRows4; the kernels' side is
// assembly/matvec.ts ROWS4). Each block of 4 rows 4b .. 4b+3 keeps its 4·Kin halves where they
// were, reordered as Kin/8 groups of 32 halves: group g holds halves 8g .. 8g+7 of row 4b + r at
// 8r .. 8r+7. Rows past the last whole block stay in row order. The WASM kernels read a block as
// one sequential stream from one pointer (llama.cpp's CPU backend repacks its weights likewise).
// f32 weights keep the row layout: their prefill tiles read w in place, and a rows4 copy into
// scratch first cost 0.63-0.91x at M = 4-64 (2026-12-08, bench/matmul.ts --rows4, AMD EPYC Zen 4).
import type { WeightDtype } from "./types.js";

/** Whether a weight can take the rows4 layout: f16 or bf16, at least one whole block, Kin a multiple of 8. */
export function rows4Eligible(dtype: WeightDtype, N: number, Kin: number): boolean {
  return (dtype === "f16" || dtype === "bf16") && N >= 4 && Kin > 0 && Kin % 8 === 0;
}

/** Index in h of element (n, k) of a rows4 [N, Kin] weight. */
export function rows4Index(n: number, k: number, N: number, Kin: number): number {
  if (n >= N - (N % 4)) return n * Kin + k; // past the last block: row order
  return (n - (n % 4)) * Kin + (k - (k % 8)) * 4 + (n % 4) * 8 + (k % 8);
}

/** Reorders h ([N, Kin] 16-bit values in row order) into the rows4 layout, in place (moved as 32-bit pairs when h is 4-byte aligned). */
export function packRows4(h: Uint16Array, N: number, Kin: number): void {
  if (!rows4Eligible("f16", N, Kin) || h.length < N * Kin) throw new RangeError(`packRows4: [${N}, ${Kin}] cannot take the rows4 layout (N >= 4, Kin % 8 == 0, ${N * Kin} halves) of ${h.length} halves`);
  const [a, width] = h.byteOffset % 4 === 0 ? [new Uint32Array(h.buffer, h.byteOffset, (N * Kin) / 2), 4] : [h, 8]; // elements per 8 halves
  const K = (Kin / 8) * width; // elements per row
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

/** The row-order copy of a rows4 weight (the reference backend's view). */
export function unpackRows4<T extends Uint16Array | Float32Array | Float64Array>(h: ArrayLike<number>, N: number, Kin: number, out: T): T {
  for (let n = 0; n < N; n++) for (let k = 0; k < Kin; k++) out[n * Kin + k] = h[rows4Index(n, k, N, Kin)];
  return out;
}
