// Training attention: the matmul path equals the loop path (forward and backward) for MHA, GQA and
// MQA; K = 1 equals MHA with the one KV head broadcast, and its gradient equals the sum over the
// broadcast copies; nothing leaks through the causal mask.
import { test } from "node:test";
import assert from "node:assert/strict";
import { causalAttentionBackward, causalAttentionForward, type TrainAttentionShape } from "../src/attention/train.js";
import { tsMatmuls } from "../src/train/matmul.js";
import { Rng } from "../src/random.js";
import { assertClose } from "./train_helpers.js";

const rand = (n: number, rng: Rng) => Float64Array.from({ length: n }, () => rng.normal());

function run(shape: TrainAttentionShape, q: Float64Array, k: Float64Array, v: Float64Array, dout: Float64Array, useMm: boolean) {
  const { B, T, H, K, D } = shape;
  const mm = useMm ? tsMatmuls() : undefined;
  const out = new Float64Array(B * T * H * D), probs = new Float64Array(B * H * T * T);
  causalAttentionForward(out, probs, q, k, v, shape, mm);
  const dq = new Float64Array(q.length), dk = new Float64Array(k.length), dv = new Float64Array(v.length);
  causalAttentionBackward(dq, dk, dv, dout, out, probs, q, k, v, shape, mm);
  return { out, probs, dq, dk, dv };
}

for (const K of [6, 3, 2, 1]) {
  test(`matmul path equals loop path, H=6 K=${K}`, () => {
    const rng = new Rng(K);
    const shape = { B: 2, T: 7, H: 6, K, D: 4, scale: 0.5 };
    const q = rand(2 * 7 * 6 * 4, rng), k = rand(2 * 7 * K * 4, rng), v = rand(2 * 7 * K * 4, rng), dout = rand(2 * 7 * 6 * 4, rng);
    const a = run(shape, q, k, v, dout, false), b = run(shape, q, k, v, dout, true);
    for (const name of ["out", "probs", "dq", "dk", "dv"] as const) assertClose(`K=${K} ${name}`, b[name], a[name], 1e-12, 1e-10);
  });
}

test("MQA equals MHA with the single KV head broadcast; dK, dV are the sums over the copies", () => {
  const rng = new Rng(11);
  const [B, T, H, D] = [1, 6, 4, 4];
  const q = rand(B * T * H * D, rng), k1 = rand(B * T * D, rng), v1 = rand(B * T * D, rng), dout = rand(B * T * H * D, rng);
  const kH = new Float64Array(B * T * H * D), vH = new Float64Array(B * T * H * D);
  for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) {
    kH[(t * H + h) * D + d] = k1[t * D + d];
    vH[(t * H + h) * D + d] = v1[t * D + d];
  }
  const mqa = run({ B, T, H, K: 1, D, scale: 0.5 }, q, k1, v1, dout, true);
  const mha = run({ B, T, H, K: H, D, scale: 0.5 }, q, kH, vH, dout, false);
  assertClose("out", mqa.out, mha.out, 1e-12, 1e-10);
  assertClose("dq", mqa.dq, mha.dq, 1e-12, 1e-10);
  const sumK = new Float64Array(B * T * D), sumV = new Float64Array(B * T * D);
  for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) {
    sumK[t * D + d] += mha.dk[(t * H + h) * D + d];
    sumV[t * D + d] += mha.dv[(t * H + h) * D + d];
  }
  assertClose("dk", mqa.dk, sumK, 1e-12, 1e-10);
  assertClose("dv", mqa.dv, sumV, 1e-12, 1e-10);
});

test("causal mask: changing a future key or value changes nothing before it", () => {
  const rng = new Rng(5);
  const shape = { B: 1, T: 8, H: 4, K: 2, D: 4, scale: 0.5 };
  const q = rand(8 * 4 * 4, rng), k = rand(8 * 2 * 4, rng), v = rand(8 * 2 * 4, rng), dout = rand(8 * 4 * 4, rng);
  const a = run(shape, q, k, v, dout, true);
  const k2 = Float64Array.from(k), v2 = Float64Array.from(v);
  for (let i = 5 * 2 * 4; i < k.length; i++) {
    k2[i] += 100;
    v2[i] -= 100;
  }
  const b = run(shape, q, k2, v2, dout, true);
  const before = 5 * 4 * 4; // positions 0..4
  assertClose("out before t=5", b.out.subarray(0, before), a.out.subarray(0, before), 0, 0);
  for (let h = 0; h < 4; h++) for (let t = 0; t < 8; t++) for (let s = t + 1; s < 8; s++) assert.equal(a.probs[(h * 8 + t) * 8 + s], 0);
});
