// AttentionLayer (projections + RoPE hook + attention + output projection) against an independent
// float64 computation, with f32 and f16 weights, biases, a ragged prefill and decode steps.
// Tolerance (reason): every matmul output is rounded to f32 once (relative 6e-8) and feeds the
// next stage; over q/k projections (E = 48 terms), softmax and the output projection this stays
// below 1e-5 absolute + 1e-5 relative for N(0, 0.2) weights.
import { test } from "node:test";
import { Arena } from "../src/kernels/memory.js";
import { referenceKernels } from "../src/kernels/reference.js";
import { AttentionLayer, type PositionHook } from "../src/attention/index.js";
import { ContiguousKvCache } from "../src/kvcache/index.js";
import { roundF16, f32ToF16 } from "../src/dtypes/codecs.js";
import { assertClose, naiveAttention, randn } from "./attention-helpers.js";

const [H, K, D, E] = [4, 2, 6, 48]; // hiddenSize 48 != H·D = 24 on purpose

/** A plain RoPE (pairs (2i, 2i+1), θ_i = 10000^(-2i/D)), used on both sides. */
const rope: PositionHook = (x, heads, positions) => {
  for (let n = 0; n < positions.length; n++)
    for (let h = 0; h < heads; h++)
      for (let i = 0; i < D / 2; i++) {
        const a = positions[n] * Math.pow(10000, (-2 * i) / D);
        const o = (n * heads + h) * D + 2 * i;
        const [x0, x1] = [x[o], x[o + 1]];
        x[o] = x0 * Math.cos(a) - x1 * Math.sin(a);
        x[o + 1] = x0 * Math.sin(a) + x1 * Math.cos(a);
      }
};

function linear(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number>, N: number, out: number, Kin: number): Float64Array {
  const y = new Float64Array(N * out);
  for (let n = 0; n < N; n++) for (let o = 0; o < out; o++) {
    let acc = b[o];
    for (let i = 0; i < Kin; i++) acc += x[n * Kin + i] * w[o * Kin + i];
    y[n * out + o] = acc;
  }
  return y;
}

for (const dtype of ["f32", "f16"] as const) {
  test(`AttentionLayer (${dtype} weights, bias, RoPE, hiddenSize ≠ H·D) equals float64 projections + attention; decode = prefill`, () => {
    const arena = new Arena();
    const W = { wq: randn(H * D * E, 1, 0.2), wk: randn(K * D * E, 2, 0.2), wv: randn(K * D * E, 3, 0.2), wo: randn(E * H * D, 4, 0.2) };
    const B = { bq: randn(H * D, 5, 0.1), bk: randn(K * D, 6, 0.1), bv: randn(K * D, 7, 0.1), bo: randn(E, 8, 0.1) };
    const put = (a: Float32Array) => {
      const p = arena.alloc(a.length * 4);
      if (dtype === "f32") arena.f32(p, a.length).set(a);
      else arena.u16(p, a.length).set(Array.from(a, f32ToF16));
      return p;
    };
    const putF32 = (a: Float32Array) => {
      const p = arena.alloc(a.length * 4);
      arena.f32(p, a.length).set(a);
      return p;
    };
    const weights = { dtype, wq: put(W.wq), wk: put(W.wk), wv: put(W.wv), wo: put(W.wo), bq: putF32(B.bq), bk: putF32(B.bk), bv: putF32(B.bv), bo: putF32(B.bo) };
    const config = { numHeads: H, numKvHeads: K, headDim: D, hiddenSize: E };
    const lens = [5, 3];
    const x = [randn(5 * E, 9), randn(3 * E, 10)];
    // Expected, per sequence, in float64 from the weights as stored.
    const w = (a: Float32Array) => (dtype === "f16" ? Array.from(a, roundF16) : a);
    const want = x.map((xs, b) => {
      const T = lens[b];
      const q = Float32Array.from(linear(xs, w(W.wq), B.bq, T, H * D, E)), k = Float32Array.from(linear(xs, w(W.wk), B.bk, T, K * D, E));
      const v = linear(xs, w(W.wv), B.bv, T, K * D, E);
      const pos = Int32Array.from({ length: T }, (_, i) => i);
      rope(q, H, pos);
      rope(k, K, pos);
      const a = naiveAttention({ q, k, v, T, S: T, H, K, D, qPos0: 0 });
      return linear(a, w(W.wo), B.bo, T, E, H * D);
    });
    // One ragged prefill.
    const layerA = new AttentionLayer(config, { arena, kernels: referenceKernels(arena) }, weights, { rope });
    const cacheA = new ContiguousKvCache(arena, { numLayers: 1, numKvHeads: K, headDim: D });
    const seqsA = lens.map(() => cacheA.addSequence());
    const y = layerA.forward({ cache: cacheA, layer: 0, seqs: seqsA, lengths: lens, x: Float32Array.from([...x[0], ...x[1]]) }).out;
    assertClose(`${dtype} ragged prefill`, y, Float64Array.from([...want[0], ...want[1]]), 1e-5, 1e-5);
    // Prefill 2 tokens of sequence 0, then decode the other 3 one at a time.
    const cacheB = new ContiguousKvCache(arena, { numLayers: 1, numKvHeads: K, headDim: D });
    const s = cacheB.addSequence();
    const parts = [layerA.forward({ cache: cacheB, layer: 0, seqs: [s], lengths: [2], x: x[0].subarray(0, 2 * E) }).out];
    for (let t = 2; t < 5; t++) parts.push(layerA.forward({ cache: cacheB, layer: 0, seqs: [s], lengths: [1], x: x[0].subarray(t * E, (t + 1) * E) }).out);
    assertClose(`${dtype} decode steps`, Float32Array.from(parts.flatMap((p) => Array.from(p))), want[0], 1e-5, 1e-5);
  });
}
