// The 4/5/6-bit GGML weight kernels (src/kernels/assembly/quants.ts), read in place, against the
// float64 reference (which multiplies x by the exact dequantized values of src/dtypes/ggml_quants.ts):
// decode (M = 1, 2, 3: each w row dequantized into scratch, dotted with every x row) and prefill
// (M = 5, 70: rows dequantized into scratch, then the f32 tiles), with N tails, several blocks per
// row and several items per call, at 1 and 2 threads, plain and relaxed SIMD.
//
// Tolerance, derived: the kernel's dequantized w_i is the exact value rounded once to f32 (relative
// error <= u = 2^-24, see ggml_quants.ts); each product x_i·w_i rounds once more, and any summation
// order of Kin terms (sequential, lanes then hsum, with or without FMA) adds at most γ_{Kin-1}
// relatively to Σ|terms| (Higham, Accuracy and Stability, §3.1). Together
// |out - Σ x_i w_i| <= γ_{Kin+1} · Σ|x_i w_i|,   γ_n = n·u / (1 - n·u).
// The nibble types (q4_0, q4_1, q4_K) decode without dequantizing: per 32-value sub-block with
// w = a·q + b they compute a·Σ x·q + b·Σ x (Σ x shared by every w row), so the terms that are rounded
// are x·a·q and x·b separately: the same analysis with two more roundings (the scale products and the
// final add) bounds the error by γ_(Kin+3) · Σ|x_i|·(|a q_i| + |b|), which cancellation inside w can
// make larger than Σ|x·w|.
// A misread nibble, scale, min or block is off by O(1) of Σ|x·w|, far above γ (1e-6 at Kin = 256).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Arena } from "../src/kernels/memory.js";
import { referenceKernels } from "../src/kernels/reference.js";
import { decodeQuant, encodeQuant, GGML_QUANTS, QUANT_LAYOUT, scaleMinK4, type GgmlQuant } from "../src/dtypes/ggml_quants.js";
import { f16ToF32 } from "../src/dtypes/codecs.js";
import { seededRandom } from "../src/random.js";
import { wasmBackends } from "./kernel-backends.js";

const arena = new Arena({ initialBytes: 64 << 20 });
const ref = referenceKernels(arena);
const variants = [{ threads: 1, relaxed: false }, { threads: 1, relaxed: true }, { threads: 2, relaxed: true }];
const backends = wasmBackends(arena, variants);
const U = 2 ** -24;
const gamma = (n: number) => (n * U) / (1 - n * U);

/** The offset b of each weight's sub-block (w = a·q + b) for the nibble types: q4_0 -8d, q4_1 m, q4_k -dmin·m_j; 0 otherwise. */
function offsets(type: GgmlQuant, raw: Uint8Array, numel: number): Float64Array {
  const out = new Float64Array(numel);
  const { blockValues: QK, blockBytes: BB } = QUANT_LAYOUT[type];
  const h = (p: number) => f16ToF32(raw[p] | (raw[p + 1] << 8));
  for (let b = 0; b < numel / QK; b++) {
    const p = b * BB;
    for (let j = 0; j < QK; j++) {
      if (type === "q4_0") out[b * QK + j] = -8 * h(p);
      else if (type === "q4_1") out[b * QK + j] = h(p + 2);
      else if (type === "q4_k") out[b * QK + j] = -h(p + 2) * scaleMinK4(raw, p + 4, j >> 5)[1];
    }
  }
  return out;
}

for (const type of GGML_QUANTS) {
  const QK = QUANT_LAYOUT[type].blockValues;
  const shapes = QK === 32 ? [[1, 37, 96], [2, 203, 64], [3, 45, 160], [1, 768, 768], [5, 37, 96], [70, 45, 160]] : [[1, 37, 256], [2, 61, 512], [3, 45, 256], [1, 300, 768], [5, 37, 256], [70, 45, 512]];
  for (const [M, N, Kin] of shapes) {
    test(`${type} matmul M=${M} N=${N} Kin=${Kin}: WASM equals the float64 reference within the derived f32 bound`, () => {
      const rnd = seededRandom(M * 1000 + N + QK);
      // Rows with different magnitudes and offsets, so scales, mins and sub-block scales all vary.
      const wf = Float32Array.from({ length: N * Kin }, (_, i) => (rnd() - 0.5) * 0.2 * (1 + ((i / Kin) % 3)) + (((i / 32) | 0) % 5 === 0 ? 0.03 : 0));
      const raw = encodeQuant(type, wf);
      const x = arena.alloc(M * Kin * 4), w = arena.alloc(raw.length), want = arena.alloc(M * N * 4), out = arena.alloc(M * N * 4);
      const xs = arena.f32(x, M * Kin);
      for (let i = 0; i < xs.length; i++) xs[i] = (rnd() - 0.5) * 4;
      arena.u8(w, raw.length).set(raw);
      const call = { x, w, bias: 0, out: want, M, N, Kin, wDtype: type };
      ref.matmul(call);
      const wd = decodeQuant(type, raw, N * Kin, new Float64Array(N * Kin));
      const exp = arena.f32(want, M * N).slice();
      const nibble = type === "q4_0" || type === "q4_1" || type === "q4_k";
      const off = offsets(type, raw, N * Kin);
      const tol = gamma(Kin + (nibble ? 3 : 1));
      backends.forEach((k, b) => {
        k.matmul({ ...call, out });
        const got = arena.f32(out, M * N);
        let worst = 0, at = "";
        for (let m = 0; m < M; m++) {
          for (let n = 0; n < N; n++) {
            let mag = 0;
            // Σ|x·w|, or for the nibble types Σ|x|·(|a q| + |b|) with a q = w - b.
            for (let i = 0; i < Kin; i++) {
              const j = n * Kin + i;
              mag += nibble ? Math.abs(xs[m * Kin + i]) * (Math.abs(wd[j] - off[j]) + Math.abs(off[j])) : Math.abs(xs[m * Kin + i] * wd[j]);
            }
            const err = Math.abs(got[m * N + n] - exp[m * N + n]);
            // exp is the float64 sum stored as f32: its own rounding (u·|sum| <= u·mag) is part of the budget.
            const bound = (tol + U) * mag;
            if (!(err <= bound)) assert.fail(`${type} ${JSON.stringify(variants[b])}: out[${m}, ${n}] = ${got[m * N + n]}, want ${exp[m * N + n]}: error ${err.toExponential(2)} > ${(tol + U).toExponential(2)}·${mag.toExponential(2)}`);
            if (err / mag > worst) [worst, at] = [err / mag, `[${m}, ${n}]`];
          }
        }
        assert.ok(worst <= tol + U, `${type}: worst relative error ${worst} at ${at}`);
      });
      for (const p of [x, w, want, out]) arena.release(p);
    });
  }
}

test("quantized matmul: Kin that is not a multiple of the block is refused by every backend", () => {
  for (const k of [ref, ...backends]) {
    assert.throws(() => k.matmul({ x: 0, w: 0, bias: 0, out: 0, M: 1, N: 1, Kin: 48, wDtype: "q4_0" }), /q4_0 weights need Kin to be a multiple of 32, got 48/);
    assert.throws(() => k.matmul({ x: 0, w: 0, bias: 0, out: 0, M: 1, N: 1, Kin: 128, wDtype: "q6_k" }), /q6_k weights need Kin to be a multiple of 256, got 128/);
  }
});
