// The WASM training ops (src/kernels/assembly/train.ts through kernelTrainOps) against their
// plain-TS specification (src/train/ops.ts, optim.ts) run in float64 on the same float32 inputs,
// on 1 and 2 threads, plain and relaxed (FMA) SIMD.
//
// Tolerances, from the f32 arithmetic the kernels do (u = 2^-24 ≈ 6e-8 per rounding):
//  - pointwise (SwiGLU, its backward, add, AdamW): each output is a handful of roundings plus one
//    2^x polynomial (relative error 1.2e-7, simd.ts exp2v) inside σ: |err| ≤ 1e-6·|value| + 1e-7·scale.
//  - row sums (softmax normaliser over V, RMSNorm over C, the gradient norm): four f32x4 lanes each add
//    ≤ n/4 + 1 terms, so the relative error of a sum of positive terms is ≤ (n/4 + 1)·u; for V = 1000
//    that is 1.5e-5, for C = 96 1.5e-6. Probabilities and losses carry it (losses absolutely, since
//    loss = log z − …); RMSNorm's backward adds a dot product of C terms of either sign, bounded by
//    (C/4 + 1)·u·Σ|terms|, below 1e-5 on these O(1) inputs.
//  - the gradient norm's sum of squares runs in float64: relative 1e-12.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Arena } from "../src/kernels/memory.js";
import { kernelTrainOps, tsTrainOps, type TrainOps } from "../src/train/trainops.js";
import { arenaAllocator } from "../src/train/alloc.js";
import { Rng } from "../src/random.js";
import { wasmBackends } from "./kernel-backends.js";
import { assertClose } from "./train_helpers.js";

const arena = new Arena({ initialBytes: 32 << 20, base: 1 << 20 });
const backends = wasmBackends(arena, [{ threads: 1, relaxed: false }, { threads: 2, relaxed: false }, { threads: 2, relaxed: true }]);
const f32 = arenaAllocator(arena) as (n: number, what: string) => Float32Array;
const ref = tsTrainOps();

function random(n: number, rng: Rng, scale = 1): Float32Array {
  const a = f32(n, "test input");
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}
const f64 = (a: Float32Array) => Float64Array.from(a);

function each(fn: (ops: TrainOps, label: string) => void): void {
  assert.ok(backends.length === 3);
  for (const b of backends) fn(kernelTrainOps(b, arena), `${b.name} ×${b.threads}`);
}

test("SwiGLU forward and backward (n not a multiple of 4 or of the item size)", () => {
  const n = 16384 * 2 + 7, rng = new Rng(1);
  const gate = random(n, rng, 4), up = random(n, rng), dout = random(n, rng);
  gate[0] = 60, gate[1] = -60, gate[2] = 0; // both tails of σ and its middle
  const want = new Float64Array(n), dg = new Float64Array(n), du = new Float64Array(n);
  ref.swigluForward(want, f64(gate), f64(up), n);
  ref.swigluBackward(dg, du, f64(dout), f64(gate), f64(up), n);
  each((ops, label) => {
    const out = f32(n, "out"), dgate = f32(n, "dgate"), dup = f32(n, "dup");
    ops.swigluForward(out, gate, up, n);
    ops.swigluBackward(dgate, dup, dout, gate, up, n);
    assertClose(`${label} swiglu`, out, want, 1e-6, 1e-6);
    assertClose(`${label} swiglu dgate`, dgate, dg, 1e-6, 1e-6);
    assertClose(`${label} swiglu dup`, dup, du, 1e-6, 1e-6);
  });
});

test("cross-entropy: probabilities, per-row losses summed, ignored rows, and dlogits", () => {
  const N = 37, V = 1000, rng = new Rng(2);
  const logits = random(N * V, rng, 3);
  const targets = Int32Array.from({ length: N }, (_, n) => (n % 5 === 3 ? -100 : rng.int(V)));
  const probs = Float64Array.from(logits);
  const r = ref.crossEntropyForward(probs, probs, targets, N, V);
  const grad = new Float64Array(N * V);
  ref.crossEntropyBackward(grad, probs, targets, N, V, 0.25);
  each((ops, label) => {
    const x = f32(N * V, "logits");
    x.set(logits);
    const got = ops.crossEntropyForward(x, x, targets, N, V);
    assert.equal(got.count, r.count);
    assertClose(`${label} loss sum`, [got.sum], [r.sum], 1.5e-5 * r.count, 0);
    assertClose(`${label} probs`, x, probs, 1e-9, 2e-5);
    ops.crossEntropyBackward(x, x, targets, N, V, 0.25);
    assertClose(`${label} dlogits`, x, grad, 1e-8, 2e-5);
  });
});

test("RMSNorm forward and backward (row width not a multiple of 4; weight gradient summed over items)", () => {
  const N = 700, C = 98, rng = new Rng(3);
  const x = random(N * C, rng), w = random(C, rng), dout = random(N * C, rng);
  const out = new Float64Array(N * C), rstd = new Float64Array(N);
  ref.rmsnormForward(out, rstd, f64(x), f64(w), N, C, 1e-5);
  const dx = new Float64Array(N * C).fill(0.5), dw = new Float64Array(C).fill(0.25);
  ref.rmsnormBackward(dx, dw, f64(dout), f64(x), f64(w), rstd, N, C);
  each((ops, label) => {
    const o = f32(N * C, "out"), r = f32(N, "rstd"), gx = f32(N * C, "dx").fill(0.5), gw = f32(C, "dw").fill(0.25);
    ops.rmsnormForward(o, r, x, w, N, C, 1e-5);
    assertClose(`${label} rms out`, o, out, 1e-6, 2e-6);
    assertClose(`${label} rstd`, r, rstd, 0, 2e-6);
    ops.rmsnormBackward(gx, gw, dout, x, w, r, N, C);
    assertClose(`${label} rms dx`, gx, dx, 1e-5, 1e-5);
    assertClose(`${label} rms dweight`, gw, dw, 1e-5 * N, 1e-5);
  });
});

test("gradient clipping and AdamW match the plain loops", () => {
  const n = 50001, rng = new Rng(4);
  const g = random(n, rng, 0.01);
  const p0 = random(n, rng), m0 = random(n, rng, 0.001), v0 = f32(n, "v0");
  for (let i = 0; i < n; i++) v0[i] = Math.abs(rng.normal()) * 1e-5;
  const step = { beta1: 0.9, beta2: 0.95, eps: 1e-8, lr: 3e-3, c1: 1 - 0.9 ** 3, c2: 1 - 0.95 ** 3, decay: 1 - 3e-3 * 0.1 };
  const gw = f64(g);
  const norm = ref.clipGradNorm(gw, 1);
  const [p, m, v] = [f64(p0), f64(m0), f64(v0)];
  ref.adamw(p, gw, m, v, 3, n - 10, step);
  each((ops, label) => {
    const gk = f32(n, "g");
    gk.set(g);
    assertClose(`${label} grad norm`, [ops.clipGradNorm(gk, 1)], [norm], 0, 1e-12);
    assertClose(`${label} clipped grads`, gk, gw, 1e-12, 1e-6);
    const [pk, mk, vk] = [p0, m0, v0].map((a) => {
      const c = f32(n, "state");
      c.set(a);
      return c;
    });
    ops.adamw(pk, gk, mk, vk, 3, n - 10, step);
    // β1, 1 − β1, β2, 1 − β2 enter as f32 (1 − f32(0.9) is off by 2.4e-7 relative): m and v are sums
    // of two terms of either sign, so their error is ~1e-6 of the larger term, not of the result.
    const mTerm = Math.max(...Array.from(m0, (x, i) => 0.9 * Math.abs(x) + 0.1 * Math.abs(gw[i])));
    assertClose(`${label} adamw m`, mk, m, 1e-6 * mTerm, 1e-6);
    assertClose(`${label} adamw v`, vk, v, 0, 2e-6);
    // the step is lr·m/(sqrt v + eps) ≤ ~lr·O(10): 1e-6 of it plus p's own f32 rounding
    assertClose(`${label} adamw params`, pk, p, 3e-3 * 1e-5, 1e-6);
    assert.equal(pk[0], p0[0], "elements outside the range are untouched");
    assert.equal(pk[n - 1], p0[n - 1]);
  });
});

// Attention: scores are dot products of D terms (error ≤ D·u·Σ|q·k| ≈ 1e-6 on these inputs after
// scaling), probabilities add the 2^x polynomial (1.2e-7) and a four-lane sum of ≤ T/4 + 1 terms
// (T = 37: 6e-7 relative); outputs and gradients are sums of ≤ T·G products of such values of O(1)
// size, each relatively off by a few 1e-6: |err| ≤ 2e-5 + 1e-5·|value| holds with a wide margin.
for (const [K, D] of [[6, 12], [3, 32], [1, 8], [2, 4]] as const) {
  test(`causal attention forward and backward, H = 6, K = ${K}, D = ${D}: the WASM kernel skips masked keys and matches float64`, async () => {
    const { causalAttentionBackward, causalAttentionForward } = await import("../src/attention/train.js");
    const B = 2, T = 37, H = 6, rng = new Rng(10 + K);
    const shape = { B, T, H, K, D, scale: 1 / Math.sqrt(D) };
    const q = random(B * T * H * D, rng), k = random(B * T * K * D, rng), v = random(B * T * K * D, rng), dout = random(B * T * H * D, rng);
    const out = new Float64Array(B * T * H * D), probs = new Float64Array(B * H * T * T);
    causalAttentionForward(out, probs, f64(q), f64(k), f64(v), shape);
    const dq = new Float64Array(q.length), dk = new Float64Array(k.length), dv = new Float64Array(v.length);
    causalAttentionBackward(dq, dk, dv, f64(dout), out, probs, f64(q), f64(k), f64(v), shape);
    each((ops, label) => {
      const o = f32(out.length, "out"), p = f32(probs.length, "probs");
      const gq = f32(q.length, "dq").fill(7), gk = f32(k.length, "dk").fill(7), gv = f32(v.length, "dv").fill(7); // overwritten
      ops.attentionForward(o, p, q, k, v, shape);
      assertClose(`${label} attention out`, o, out, 2e-5, 1e-5);
      for (let b = 0; b < B; b++)
        for (let h = 0; h < H; h++)
          for (let t = 0; t < T; t++) {
            const row = ((b * H + h) * T + t) * T;
            assertClose(`${label} probs b${b} h${h} t${t}`, p.subarray(row, row + t + 1), probs.subarray(row, row + t + 1), 1e-7, 1e-5);
          }
      ops.attentionBackward(gq, gk, gv, dout, o, p, q, k, v, shape);
      assertClose(`${label} dq`, gq, dq, 2e-5, 1e-5);
      assertClose(`${label} dk`, gk, dk, 2e-5, 1e-5);
      assertClose(`${label} dv`, gv, dv, 2e-5, 1e-5);
    });
  });
}
