// Properties of the attention API that this field gets wrong in practice (shared/STYLE.md):
// GQA = MHA with repeated K/V, decode = prefill, no leaks through the causal mask, grouping of
// query heads, K = 1 = broadcasting, window = band mask, softmax edge cases, config errors.
//
// Tolerances. "Exact" comparisons run the same float64 operations in the same order, so any
// difference at all is a bug. Comparisons against the independent naive float64 attention allow
// 1e-6 absolute + 1e-6 relative: both are float64 inside; the API's output is rounded to f32.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Arena } from "../src/kernels/memory.js";
import { referenceKernels } from "../src/kernels/reference.js";
import { Attention, type AttentionConfig, resolveAttentionConfig } from "../src/attention/index.js";
import { createKvCache, type KvCache, type KvCacheSpec } from "../src/kvcache/index.js";
import type { KvDtype } from "../src/kernels/types.js";
import { assertClose, naiveAttention, randn } from "./attention-helpers.js";

const TOL = 1e-6;

function setup(config: AttentionConfig, kind: KvCacheSpec["kind"] = "contiguous", dtype: KvDtype = "f32", numLayers = 1) {
  const arena = new Arena();
  const attn = new Attention(config, { arena, kernels: referenceKernels(arena) });
  const base = { numLayers, numKvHeads: config.numKvHeads, headDim: config.headDim, dtype };
  const spec: KvCacheSpec =
    kind === "paged" ? { ...base, kind, blockSize: 3, numBlocks: 400 }
    : kind === "window" ? { ...base, kind, window: config.window ?? 1 }
    : { ...base, kind, initialTokens: 1 };
  return { arena, attn, cache: createKvCache(arena, spec) };
}

/** One sequence, T tokens in one prefill. */
function prefillOne(attn: Attention, cache: KvCache, q: Float32Array, k: Float32Array, v: Float32Array, T: number): Float32Array {
  const seq = cache.addSequence();
  return attn.prefill({ cache, layer: 0, seqs: [seq], lengths: [T], q, k, v }).out;
}

test("GQA equals MHA with each kv head repeated G times (exact: identical arithmetic)", () => {
  const [H, K, D, T] = [8, 2, 20, 9];
  const G = H / K;
  const q = randn(T * H * D, 1), k = randn(T * K * D, 2), v = randn(T * K * D, 3);
  const kRep = new Float32Array(T * H * D), vRep = new Float32Array(T * H * D);
  for (let t = 0; t < T; t++)
    for (let h = 0; h < H; h++) {
      kRep.set(k.subarray((t * K + Math.floor(h / G)) * D, (t * K + Math.floor(h / G) + 1) * D), (t * H + h) * D);
      vRep.set(v.subarray((t * K + Math.floor(h / G)) * D, (t * K + Math.floor(h / G) + 1) * D), (t * H + h) * D);
    }
  const gqa = setup({ numHeads: H, numKvHeads: K, headDim: D });
  const mha = setup({ numHeads: H, numKvHeads: H, headDim: D });
  assertClose("GQA vs MHA(repeated)", prefillOne(gqa.attn, gqa.cache, q, k, v, T), prefillOne(mha.attn, mha.cache, q, kRep, vRep, T), 0);
  const again = setup({ numHeads: H, numKvHeads: K, headDim: D });
  assertClose("GQA vs naive", prefillOne(again.attn, again.cache, q, k, v, T), naiveAttention({ q, k, v, T, S: T, H, K, D, qPos0: 0 }), TOL, TOL);
});

for (const kind of ["contiguous", "paged", "window"] as const) {
  for (const dtype of ["f32", "f16", "int8"] as const) {
    test(`decode step by step equals one prefill (${kind} cache, ${dtype}, ragged batch of 3, 2 layers)`, () => {
      // Same stored values and the same key order on both paths: the f64 sums are identical, so 0 tolerance.
      const config = { numHeads: 6, numKvHeads: 2, headDim: 20, window: kind === "window" ? 4 : null };
      const [H, K, D] = [6, 2, 20];
      const lens = [7, 3, 10];
      const data = lens.map((T, b) => ({ T, q: randn(T * H * D, 10 + b), k: randn(T * K * D, 20 + b), v: randn(T * K * D, 30 + b) }));
      const one = setup(config, kind, dtype, 2);
      const seqA = data.map(() => one.cache.addSequence());
      const pack = (f: (d: (typeof data)[0]) => Float32Array) => Float32Array.from(data.flatMap((d) => Array.from(f(d))));
      const full = one.attn.prefill({ cache: one.cache, layer: 1, seqs: seqA, lengths: lens, q: pack((d) => d.q), k: pack((d) => d.k), v: pack((d) => d.v) }).out;
      // Path 2: a 2-token prefill for each, then decode steps, sequences interleaved and finishing at different times.
      const two = setup(config, kind, dtype, 2);
      const seqB = data.map(() => two.cache.addSequence());
      const got = data.map((d) => new Float32Array(d.T * H * D));
      const pre = data.map((d) => Math.min(2, d.T));
      const first = two.attn.prefill({
        cache: two.cache, layer: 1, seqs: seqB, lengths: pre,
        q: Float32Array.from(data.flatMap((d, b) => Array.from(d.q.subarray(0, pre[b] * H * D)))),
        k: Float32Array.from(data.flatMap((d, b) => Array.from(d.k.subarray(0, pre[b] * K * D)))),
        v: Float32Array.from(data.flatMap((d, b) => Array.from(d.v.subarray(0, pre[b] * K * D)))),
      }).out;
      let off = 0;
      data.forEach((d, b) => {
        got[b].set(first.subarray(off, off + pre[b] * H * D));
        off += pre[b] * H * D;
      });
      for (let t = 2; t < Math.max(...lens); t++) {
        const live = data.map((d, b) => b).filter((b) => t < data[b].T);
        const step = two.attn.decode({
          cache: two.cache, layer: 1, seqs: live.map((b) => seqB[b]),
          q: Float32Array.from(live.flatMap((b) => Array.from(data[b].q.subarray(t * H * D, (t + 1) * H * D)))),
          k: Float32Array.from(live.flatMap((b) => Array.from(data[b].k.subarray(t * K * D, (t + 1) * K * D)))),
          v: Float32Array.from(live.flatMap((b) => Array.from(data[b].v.subarray(t * K * D, (t + 1) * K * D)))),
        }).out;
        live.forEach((b, i) => got[b].set(step.subarray(i * H * D, (i + 1) * H * D), t * H * D));
      }
      assertClose(`${kind} ${dtype} decode vs prefill`, Float32Array.from(got.flatMap((g) => Array.from(g))), full, 0);
      // And both equal the independent naive attention (f32 storage only).
      if (dtype === "f32") {
        const want = Float64Array.from(data.flatMap((d) => Array.from(naiveAttention({ ...d, S: d.T, H, K, D, qPos0: 0, window: config.window }))));
        assertClose(`${kind} prefill vs naive`, full, want, TOL, TOL);
      }
    });
  }
}

test("nothing leaks through the causal mask: NaN/huge future K, V and q leave earlier outputs bit-identical", () => {
  const [H, K, D, T, cut] = [4, 2, 40, 12, 6];
  const q = randn(T * H * D, 4), k = randn(T * K * D, 5), v = randn(T * K * D, 6);
  const base = prefillOne(...args(), q, k, v, T);
  for (const poison of [NaN, 1e30, -Infinity]) {
    const q2 = q.slice(), k2 = k.slice(), v2 = v.slice();
    q2.fill(poison, cut * H * D);
    k2.fill(poison, cut * K * D);
    v2.fill(poison, cut * K * D);
    const out = prefillOne(...args(), q2, k2, v2, T);
    assertClose(`outputs before position ${cut} with future = ${poison}`, out.subarray(0, cut * H * D), base.subarray(0, cut * H * D), 0);
    assert.ok(base.subarray(0, cut * H * D).every(Number.isFinite));
  }
  function args(): [Attention, KvCache] {
    const s = setup({ numHeads: H, numKvHeads: K, headDim: D });
    return [s.attn, s.cache];
  }
});

test("adjacent query heads share a kv head: heads 0..G-1 read kv head 0, heads G..2G-1 read kv head 1", () => {
  const [H, K, D, T] = [8, 2, 20, 5];
  const G = H / K;
  const oneHead = randn(T * D, 7);
  const q = new Float32Array(T * H * D); // every query head gets the same query vector
  for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) q.set(oneHead.subarray(t * D, (t + 1) * D), (t * H + h) * D);
  const k = randn(T * K * D, 8), v = randn(T * K * D, 9);
  const s1 = setup({ numHeads: H, numKvHeads: K, headDim: D });
  const out = prefillOne(s1.attn, s1.cache, q, k, v, T);
  const head = (o: Float32Array, t: number, h: number) => o.subarray((t * H + h) * D, (t * H + h + 1) * D);
  for (let t = 0; t < T; t++)
    for (let h = 0; h < H; h++) {
      assertClose(`t ${t}: head ${h} equals head ${Math.floor(h / G) * G} of its group`, head(out, t, h), head(out, t, Math.floor(h / G) * G), 0);
    }
  assert.notDeepEqual(Array.from(head(out, 1, 0)), Array.from(head(out, 1, G)), "different groups read different kv heads");
  // Changing kv head 1 changes only the second group.
  const v2 = v.slice();
  for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) v2[(t * K + 1) * D + d] += 1;
  const s2 = setup({ numHeads: H, numKvHeads: K, headDim: D });
  const out2 = prefillOne(s2.attn, s2.cache, q, k, v2, T);
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < G; h++) assertClose(`t ${t} head ${h} (group 0) unchanged`, head(out2, t, h), head(out, t, h), 0);
    for (let h = G; h < H; h++) assertClose(`t ${t} head ${h} (group 1) shifted by exactly +1`, head(out2, t, h), Array.from(head(out, t, h), (x) => x + 1), 1e-6);
  }
});

test("K = 1 (MQA) equals broadcasting one kv head: each query head alone against the same K/V", () => {
  const [H, D, T] = [6, 40, 7];
  const q = randn(T * H * D, 11), k = randn(T * D, 12), v = randn(T * D, 13);
  const mqa = setup({ numHeads: H, numKvHeads: 1, headDim: D });
  const out = prefillOne(mqa.attn, mqa.cache, q, k, v, T);
  for (let h = 0; h < H; h++) {
    const qh = new Float32Array(T * D);
    for (let t = 0; t < T; t++) qh.set(q.subarray((t * H + h) * D, (t * H + h + 1) * D), t * D);
    const single = setup({ numHeads: 1, numKvHeads: 1, headDim: D });
    const oh = prefillOne(single.attn, single.cache, qh, k, v, T);
    const got = new Float32Array(T * D);
    for (let t = 0; t < T; t++) got.set(out.subarray((t * H + h) * D, (t * H + h + 1) * D), t * D);
    assertClose(`MQA head ${h} vs single-head attention`, got, oh, 0);
  }
});

test("sliding window equals full attention with a band mask (window cache, prefill longer than W, then decode)", () => {
  const [H, K, D, W] = [4, 1, 20, 5];
  const T = 23;
  const q = randn(T * H * D, 14), k = randn(T * K * D, 15), v = randn(T * K * D, 16);
  const want = naiveAttention({ q, k, v, T, S: T, H, K, D, qPos0: 0, window: W });
  for (const kind of ["window", "contiguous", "paged"] as const) {
    const s = setup({ numHeads: H, numKvHeads: K, headDim: D, window: W }, kind);
    const seq = s.cache.addSequence();
    const got = new Float32Array(T * H * D);
    // 3 tokens, then 9 (> W, crossing the ring), then single decode steps.
    let t = 0;
    for (const n of [3, 9, ...Array(T - 12).fill(1)]) {
      const r = s.attn.prefill({ cache: s.cache, layer: 0, seqs: [seq], lengths: [n],
        q: q.subarray(t * H * D, (t + n) * H * D), k: k.subarray(t * K * D, (t + n) * K * D), v: v.subarray(t * K * D, (t + n) * K * D) });
      got.set(r.out, t * H * D);
      t += n;
    }
    assertClose(`${kind} cache with window ${W} vs band mask`, got, want, TOL, TOL);
  }
});

test("softmax edge cases: huge logits, uniformly tiny exponentials, NaN and +Inf inputs", () => {
  const [H, K, D, T] = [2, 1, 4, 6];
  // Huge logits (~1e8): a naive exp overflows to Inf; the answer is the V row of the best key.
  const q = new Float32Array(T * H * D), k = new Float32Array(T * K * D), v = randn(T * K * D, 17);
  for (let t = 0; t < T; t++) {
    k.set([t * 1e3, 0, 0, 0], t * D);
    for (let h = 0; h < H; h++) q.set([1e5 * (h === 0 ? 1 : -1), 0, 0, 0], (t * H + h) * D);
  }
  let s = setup({ numHeads: H, numKvHeads: K, headDim: D });
  let out = prefillOne(s.attn, s.cache, q, k, v, T);
  for (let t = 0; t < T; t++) {
    // Head 0 prefers the latest key (largest k0), head 1 the earliest.
    assertClose(`huge logits t ${t} head 0 = v[${t}]`, out.subarray((t * H) * D, (t * H + 1) * D), v.subarray(t * D, (t + 1) * D), 0);
    assertClose(`huge logits t ${t} head 1 = v[0]`, out.subarray((t * H + 1) * D, (t * H + 2) * D), v.subarray(0, D), 0);
  }
  // Every logit near -1e5 (exp underflows to 0 without the max subtraction), differences of O(1).
  for (let t = 0; t < T; t++) {
    k.set([-1000 + 0.02 * t, 0, 0, 0], t * D);
    for (let h = 0; h < H; h++) q.set([100, 0, 0, 0], (t * H + h) * D);
  }
  s = setup({ numHeads: H, numKvHeads: K, headDim: D });
  out = prefillOne(s.attn, s.cache, q, k, v, T);
  assert.ok(out.every(Number.isFinite), "underflow must not produce NaN (0/0)");
  assertClose("tiny exponentials vs naive", out, naiveAttention({ q, k, v, T, S: T, H, K, D, qPos0: 0 }), TOL, TOL);
  // NaN in one query head at t = 2: only that (t, h) becomes NaN. NaN in the key at position 3:
  // queries from position 3 on see it and become NaN (never silently finite); earlier ones don't.
  const q2 = randn(T * H * D, 18), k2 = randn(T * K * D, 19);
  q2[(2 * H + 1) * D] = NaN;
  k2[3 * D] = NaN;
  s = setup({ numHeads: H, numKvHeads: K, headDim: D });
  out = prefillOne(s.attn, s.cache, q2, k2, v, T);
  for (let t = 0; t < T; t++)
    for (let h = 0; h < H; h++) {
      const isNaN = out.subarray((t * H + h) * D, (t * H + h + 1) * D).some(Number.isNaN);
      const expectNaN = (t === 2 && h === 1) || t >= 3;
      assert.equal(isNaN, expectNaN, `t ${t} head ${h}: NaN = ${isNaN}, expected ${expectNaN}`);
    }
  // A +Inf logit (Inf × positive q) is NaN too, like PyTorch's softmax; a -Inf logit gets weight 0.
  const k3 = randn(T * K * D, 20);
  const q3 = new Float32Array(T * H * D).fill(1);
  k3[2 * D] = Infinity;
  for (let t = 0; t < T; t++) q3[(t * H + 1) * D] = -1; // head 1 sees -Inf for key 2
  s = setup({ numHeads: H, numKvHeads: K, headDim: D });
  out = prefillOne(s.attn, s.cache, q3, k3, v, T);
  for (let t = 0; t < T; t++) {
    const h0 = out.subarray(t * H * D, (t * H + 1) * D), h1 = out.subarray((t * H + 1) * D, (t * H + 2) * D);
    assert.equal(h0.some(Number.isNaN), t >= 2, `+Inf logit: t ${t} head 0 NaN = ${h0.some(Number.isNaN)}`);
    assert.ok(h1.every(Number.isFinite), `-Inf logit: t ${t} head 1 must stay finite, got ${Array.from(h1)}`);
  }
});

test("probabilities of chosen heads sum to 1 over exactly the visible keys", () => {
  const [H, K, D, T, W] = [4, 2, 20, 9, 3];
  const s = setup({ numHeads: H, numKvHeads: K, headDim: D, window: W });
  const seq = s.cache.addSequence();
  const { probs } = s.attn.prefill({ cache: s.cache, layer: 0, seqs: [seq], lengths: [T], q: randn(T * H * D, 1), k: randn(T * K * D, 2), v: randn(T * K * D, 3), probsHeads: [0, 3] });
  assert.equal(probs.length, 2 * T);
  for (const p of probs) {
    const sum = p.probs.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-12, `t ${p.t} head ${p.head}: probabilities sum to ${sum}`);
    assert.deepEqual(Array.from(p.keyPositions), Array.from({ length: Math.min(p.pos + 1, W) }, (_, i) => Math.max(0, p.pos - W + 1) + i));
  }
});

test("bad configurations are rejected with messages that name the values", () => {
  const bad: [AttentionConfig, RegExp][] = [
    [{ numHeads: 8, numKvHeads: 3, headDim: 64 }, /numHeads = 8 is not divisible by numKvHeads = 3/],
    [{ numHeads: 0, numKvHeads: 1, headDim: 64 }, /numHeads must be a positive integer, got 0/],
    [{ numHeads: 8, numKvHeads: 2, headDim: 2.5 }, /headDim must be a positive integer, got 2.5/],
    [{ numHeads: 8, numKvHeads: 0, headDim: 64 }, /numKvHeads must be a positive integer, got 0/],
    [{ numHeads: 8, numKvHeads: 2, headDim: 64, hiddenSize: 0 }, /hiddenSize must be a positive integer, got 0/],
    [{ numHeads: 8, numKvHeads: 2, headDim: 64, scale: -1 }, /scale must be a positive finite number, got -1/],
    [{ numHeads: 8, numKvHeads: 2, headDim: 64, window: 0 }, /window must be a positive integer or null, got 0/],
  ];
  for (const [config, re] of bad) assert.throws(() => resolveAttentionConfig(config), re);
  const ok = resolveAttentionConfig({ numHeads: 32, numKvHeads: 8, headDim: 128 });
  assert.deepEqual([ok.groupSize, ok.hiddenSize, ok.scale, ok.window], [4, 4096, 1 / Math.sqrt(128), null]);
  // Shape mistakes at call time.
  const s = setup({ numHeads: 4, numKvHeads: 2, headDim: 8 });
  const seq = s.cache.addSequence();
  assert.throws(() => s.attn.prefill({ cache: s.cache, layer: 0, seqs: [seq], lengths: [2], q: new Float32Array(63), k: new Float32Array(32), v: new Float32Array(32) }),
    /q must be f32 \[N, H=4, D=8\] = 64 values for N = 2 tokens, got 63/);
  const mha = createKvCache(s.arena, { kind: "contiguous", numLayers: 1, numKvHeads: 4, headDim: 8 });
  assert.throws(() => s.attn.decode({ cache: mha, layer: 0, seqs: [mha.addSequence()], q: new Float32Array(32), k: new Float32Array(16), v: new Float32Array(16) }),
    /cache stores numKvHeads = 4, headDim = 8, but the config has numKvHeads = 2, headDim = 8/);
  const elsewhere = setup({ numHeads: 4, numKvHeads: 2, headDim: 8 });
  assert.throws(() => s.attn.decode({ cache: elsewhere.cache, layer: 0, seqs: [elsewhere.cache.addSequence()], q: new Float32Array(32), k: new Float32Array(16), v: new Float32Array(16) }),
    /the cache lives in a different Arena than the kernels/);
  const w = setup({ numHeads: 4, numKvHeads: 2, headDim: 8, window: 3 }, "window");
  const global = new Attention({ numHeads: 4, numKvHeads: 2, headDim: 8 }, { arena: w.arena, kernels: referenceKernels(w.arena) });
  assert.throws(() => global.decode({ cache: w.cache, layer: 0, seqs: [w.cache.addSequence()], q: new Float32Array(32), k: new Float32Array(16), v: new Float32Array(16) }),
    /sliding-window cache \(window 3\) needs config.window/);
});

test("non-shared arena: q/k/v/out given as arena views survive memory growth during the call", () => {
  // A 64 KiB non-shared memory must grow while the cache is written; growth detaches old views.
  const arena = new Arena({ shared: false, initialBytes: 1 << 16, base: 1024 });
  const [H, K, D, T] = [4, 4, 40, 200]; // the cache (320 KiB at 256 rows) outgrows the memory's slack
  const attn = new Attention({ numHeads: H, numKvHeads: K, headDim: D }, { arena, kernels: referenceKernels(arena) });
  const cache = createKvCache(arena, { kind: "contiguous", numLayers: 1, numKvHeads: K, headDim: D, initialTokens: 1 });
  const q = randn(T * H * D, 1), k = randn(T * K * D, 2), v = randn(T * K * D, 3);
  const ptrs = [q, k, v, new Float32Array(T * H * D)].map((a) => {
    const p = arena.alloc(a.length * 4);
    arena.f32(p, a.length).set(a);
    return p;
  });
  const before = arena.memory.buffer.byteLength;
  const view = (i: number, n: number) => arena.f32(ptrs[i], n);
  // Two sequences: the first one's cache growth must not break reading the second one's k/v.
  const seqs = [cache.addSequence(), cache.addSequence()];
  attn.prefill({ cache, layer: 0, seqs, lengths: [T / 2, T / 2], q: view(0, T * H * D), k: view(1, T * K * D), v: view(2, T * K * D), out: view(3, T * H * D) });
  assert.ok(arena.memory.buffer.byteLength > before, "the memory grew during the call");
  const half = (a: Float32Array, i: number, w: number) => a.subarray((i * T * w) / 2, ((i + 1) * T * w) / 2);
  const want = [0, 1].flatMap((i) => Array.from(naiveAttention({ q: half(q, i, H * D), k: half(k, i, K * D), v: half(v, i, K * D), T: T / 2, S: T / 2, H, K, D, qPos0: 0 })));
  assertClose("non-shared arena, in-place output", view(3, T * H * D), want, TOL, TOL);
});
