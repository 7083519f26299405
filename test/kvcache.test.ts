// The three KV-cache forms: equal answers, exact byte accounting through kvCacheBytes, pool
// bookkeeping, geometric growth, storage error of f16/bf16/int8 against f32, and bad configs.
//
// Tolerances. Paged vs contiguous is exact: the same stored bytes are read in the same key order.
// Storage error bounds are the format's own: f16 half an ulp (relative 2^-11 for normal values,
// absolute 2^-25 below 2^-14), bf16 relative 2^-8, int8 half a step (row scale / 2). The attention
// output bound from perturbed K/V is derived in `outputBound` below.
import { test } from "node:test";
import assert from "node:assert/strict";
import { UserError } from "../src/errors.js";
import { Arena } from "../src/kernels/memory.js";
import { referenceKernels } from "../src/kernels/reference.js";
import { Attention } from "../src/attention/index.js";
import {
  ContiguousKvCache, PagedKvCache, SlidingWindowKvCache, createKvCache, readSegmentRow, type KvCache, type KvCacheSpec,
} from "../src/kvcache/index.js";
import { roundBf16, roundF16 } from "../src/dtypes/codecs.js";
import { kvCacheBytes } from "../src/kvcache/bytes.js";
import type { KvDtype } from "../src/kernels/types.js";
import type { LayerSpec } from "../src/config/types.js";
import { assertClose, randn, rng } from "./attention-helpers.js";

const DTYPES: KvDtype[] = ["f32", "f16", "bf16", "int8"];

function shapeOf(L: number, K: number, D: number, window: number | null = null) {
  return { layers: Array.from({ length: L }, (): LayerSpec => ({ numHeads: K, numKvHeads: K, headDim: D, window })), mla: null };
}

test("paged equals contiguous (exact) under a random schedule of prefills, decodes and frees, every dtype", () => {
  const [H, K, D, L] = [6, 3, 20, 2];
  for (const dtype of DTYPES) {
    const arena = new Arena();
    const attn = new Attention({ numHeads: H, numKvHeads: K, headDim: D }, { arena, kernels: referenceKernels(arena) });
    const caches = [new ContiguousKvCache(arena, { numLayers: L, numKvHeads: K, headDim: D, dtype }, { initialTokens: 3 }),
      new PagedKvCache(arena, { numLayers: L, numKvHeads: K, headDim: D, dtype }, { blockSize: 4, numBlocks: 128 })];
    const ids = caches.map(() => [] as number[]);
    const r = rng(42);
    for (let step = 0; step < 25; step++) {
      // Maybe start or finish a sequence, then run every live sequence for 1..5 tokens.
      if (ids[0].length < 3 && r() < 0.5) caches.forEach((c, i) => ids[i].push(c.addSequence()));
      if (ids[0].length > 1 && r() < 0.15) {
        const victim = Math.floor(r() * ids[0].length);
        caches.forEach((c, i) => c.freeSequence(ids[i].splice(victim, 1)[0]));
      }
      if (ids[0].length === 0) continue;
      const lengths = ids[0].map(() => 1 + Math.floor(r() * 5));
      const N = lengths.reduce((a, b) => a + b, 0);
      const q = randn(N * H * D, step), k = randn(N * K * D, step + 100), v = randn(N * K * D, step + 200);
      for (let layer = 0; layer < L; layer++) {
        const [a, b] = caches.map((cache, i) => attn.prefill({ cache, layer, seqs: ids[i], lengths, q, k, v }).out);
        assertClose(`${dtype} step ${step} layer ${layer}: paged vs contiguous`, b, a, 0);
      }
    }
  }
});

test("bytes() equals kvCacheBytes for every form and dtype (block rounding when paged, window cap when windowed)", () => {
  const [L, K, D, B] = [3, 2, 20, 2];
  for (const dtype of DTYPES) {
    for (const tokens of [1, 5, 16, 17, 40]) {
      const arena = new Arena();
      const make = (spec: KvCacheSpec) => createKvCache(arena, spec);
      const base = { numLayers: L, numKvHeads: K, headDim: D, dtype };
      const caches: [KvCache, number][] = [
        [make({ ...base, kind: "contiguous" }), kvCacheBytes(shapeOf(L, K, D), { tokens, dtype, batch: B })],
        [make({ ...base, kind: "paged", blockSize: 16, numBlocks: 64 }), kvCacheBytes(shapeOf(L, K, D), { tokens, dtype, batch: B, blockSize: 16 })],
        [make({ ...base, kind: "window", window: 8 }), kvCacheBytes(shapeOf(L, K, D, 8), { tokens, dtype, batch: B })],
      ];
      for (const [cache, want] of caches) {
        for (let b = 0; b < B; b++) {
          const seq = cache.addSequence();
          for (let layer = 0; layer < L; layer++) cache.write(layer, seq, randn(tokens * K * D, b), randn(tokens * K * D, b + 1));
        }
        assert.equal(cache.bytes(), want, `${cache.kind} ${dtype} tokens ${tokens}: bytes() ${cache.bytes()} != kvCacheBytes ${want}`);
      }
    }
  }
  // The formula itself, for one readable case: 2 × layers × K × D × tokens × bytes per element.
  const c = new ContiguousKvCache(new Arena(), { numLayers: 2, numKvHeads: 4, headDim: 8, dtype: "f16" });
  const s = c.addSequence();
  for (let layer = 0; layer < 2; layer++) c.write(layer, s, new Float32Array(10 * 32), new Float32Array(10 * 32));
  assert.equal(c.bytes(), 2 * 2 * 4 * 8 * 10 * 2);
});

test("the cache holds numKvHeads heads, never numHeads: MQA reserves 1/8 of MHA's arena bytes at H = 8", () => {
  const used = (K: number) => {
    const arena = new Arena();
    const before = arena.liveBytes;
    const cache = new ContiguousKvCache(arena, { numLayers: 1, numKvHeads: K, headDim: 64, dtype: "f32" }, { initialTokens: 64 });
    const attn = new Attention({ numHeads: 8, numKvHeads: K, headDim: 64 }, { arena, kernels: referenceKernels(arena) });
    const seq = cache.addSequence();
    attn.prefill({ cache, layer: 0, seqs: [seq], lengths: [64], q: randn(64 * 8 * 64, 1), k: randn(64 * K * 64, 2), v: randn(64 * K * 64, 3) });
    attn.dispose();
    assert.equal(arena.liveBytes - before, cache.reservedBytes(), `K = ${K}: arena bytes ${arena.liveBytes - before} vs reservedBytes ${cache.reservedBytes()}`);
    return arena.liveBytes - before;
  };
  assert.equal(used(8) / used(1), 8);
  assert.equal(used(8) / used(2), 4);
});

test("paged pool: exhaustion is a clear UserError that changes nothing; freeing returns blocks for reuse", () => {
  const [K, D, bs] = [1, 8, 4];
  const arena = new Arena();
  const cache = new PagedKvCache(arena, { numLayers: 2, numKvHeads: K, headDim: D }, { blockSize: bs, numBlocks: 6 });
  const a = cache.addSequence();
  cache.write(0, a, randn(9 * D, 1), randn(9 * D, 2)); // 3 blocks
  cache.write(1, a, randn(5 * D, 3), randn(5 * D, 4)); // 2 blocks
  assert.equal(cache.freeBlockCount(), 1);
  const b = cache.addSequence();
  const before = cache.segments(0, a).map((s) => readSegmentRow(arena, "f32", D, s, "k", 0, 0));
  assert.throws(() => cache.write(0, b, randn(5 * D, 5), randn(5 * D, 6)), (e: unknown) => {
    assert.ok(e instanceof UserError, "exhaustion is a UserError (CLI: one line, exit 2)");
    assert.match((e as Error).message, /pool exhausted: sequence 1 layer 0 needs 2 more block\(s\) of 4 tokens for 5 tokens, but only 1 of 6 are free/);
    return true;
  });
  assert.equal(cache.length(b, 0), 0, "a failed write appends nothing");
  assert.equal(cache.freeBlockCount(), 1, "a failed write takes no blocks");
  const aBlocks = [...cache.blockTable(0, a), ...cache.blockTable(1, a)];
  cache.freeSequence(a);
  assert.equal(cache.freeBlockCount(), 6);
  assert.equal(cache.bytes(), 0);
  cache.write(0, b, randn(20 * D, 7), randn(20 * D, 8)); // 5 blocks: reuses a's
  assert.ok(cache.blockTable(0, b).every((blk) => aBlocks.includes(blk) || blk === 5), `reused blocks ${cache.blockTable(0, b)}`);
  // The reused blocks hold b's rows, not a's leftovers.
  const kb = randn(20 * D, 7);
  cache.segments(0, b).forEach((seg, i) => {
    for (let r = 0; r < seg.rows; r++) assertClose(`b row ${i * bs + r}`, readSegmentRow(arena, "f32", D, seg, "k", 0, r), kb.subarray((i * bs + r) * D, (i * bs + r + 1) * D), 0);
  });
  assert.notDeepEqual(before, []);
  assert.throws(() => cache.freeSequence(a), /unknown sequence 0; live sequences are \[1\]/);
});

test("contiguous growth is geometric: 2000 decode steps reallocate about log2(2000/16) times, not 2000", () => {
  const cache = new ContiguousKvCache(new Arena(), { numLayers: 2, numKvHeads: 2, headDim: 8, dtype: "f16" }, { initialTokens: 16 });
  const seq = cache.addSequence();
  const row = randn(16, 1);
  for (let t = 0; t < 2000; t++) for (let layer = 0; layer < 2; layer++) cache.write(layer, seq, row, row);
  // Per layer: 16 -> 32 -> ... -> 2048 is 8 allocations (the first included).
  assert.equal(cache.reallocations, 2 * 8, `reallocations ${cache.reallocations}`);
  assert.equal(cache.length(seq, 1), 2000);
  assert.ok(cache.reservedBytes() < 2.1 * cache.bytes(), "spare capacity stays under 2× the data");
});

test("sliding-window ring: at most two segments, positions in order, only the last W kept", () => {
  const [K, D, W] = [2, 4, 5];
  const arena = new Arena();
  const cache = new SlidingWindowKvCache(arena, { numLayers: 1, numKvHeads: K, headDim: D }, { window: W });
  const seq = cache.addSequence();
  const k = new Float32Array(13 * K * D).map((_, i) => Math.floor(i / (K * D))); // every value = its position
  for (let t = 0; t < 13; t++) cache.write(0, seq, k.subarray(t * K * D, (t + 1) * K * D), k.subarray(t * K * D, (t + 1) * K * D));
  const segs = cache.segments(0, seq);
  assert.deepEqual(segs.map((s) => [s.firstPos, s.rows]), [[8, 2], [10, 3]]);
  for (const s of segs) for (let r = 0; r < s.rows; r++) for (let kh = 0; kh < K; kh++) {
    assert.deepEqual(Array.from(readSegmentRow(arena, "f32", D, s, "v", kh, r)), Array(D).fill(s.firstPos + r));
  }
  assert.equal(cache.bytes(), 2 * K * D * 4 * W);
});

/**
 * |Δout| <= max|ΔV| + (e^{2δ} - 1)·max|V|, where δ = max over (t, h, s) of scale·Σ_d |q[t,h,d]|·|ΔK[s,kv(h),d]|
 * bounds every logit change (each softmax weight moves by a factor within e^{±2δ}).
 */
function outputBound(q: Float32Array, dK: Float64Array, T: number, H: number, K: number, D: number, scale: number, dV: number, maxV: number): number {
  let delta = 0;
  for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) for (let s = 0; s < T; s++) {
    let sum = 0;
    const kv = Math.floor(h / (H / K));
    for (let d = 0; d < D; d++) sum += Math.abs(q[(t * H + h) * D + d]) * dK[(s * K + kv) * D + d];
    delta = Math.max(delta, scale * sum);
  }
  return dV + Math.expm1(2 * delta) * maxV;
}

test("f16 cache stays within f16 rounding of f32; bf16 and int8 errors are bounded and reported", (t) => {
  const [H, K, D, T] = [8, 2, 64, 64];
  const q = randn(T * H * D, 1), k = randn(T * K * D, 2), v = randn(T * K * D, 3);
  const run = (dtype: KvDtype) => {
    const arena = new Arena();
    const attn = new Attention({ numHeads: H, numKvHeads: K, headDim: D }, { arena, kernels: referenceKernels(arena) });
    const cache = new ContiguousKvCache(arena, { numLayers: 1, numKvHeads: K, headDim: D, dtype });
    const seq = cache.addSequence();
    const out = attn.prefill({ cache, layer: 0, seqs: [seq], lengths: [T], q, k, v }).out;
    // Stored rows read back: the per-element storage error.
    let maxDK = 0, maxDV = 0, worstRel = 0;
    const dK = new Float64Array(T * K * D); // [S, K, D] |stored - exact|
    const seg = cache.segments(0, seq)[0];
    for (let s = 0; s < T; s++) for (let kh = 0; kh < K; kh++) {
      const kr = readSegmentRow(arena, dtype, D, seg, "k", kh, s), vr = readSegmentRow(arena, dtype, D, seg, "v", kh, s);
      for (let d = 0; d < D; d++) {
        const x = k[(s * K + kh) * D + d], y = v[(s * K + kh) * D + d];
        dK[(s * K + kh) * D + d] = Math.abs(kr[d] - x);
        maxDK = Math.max(maxDK, Math.abs(kr[d] - x));
        maxDV = Math.max(maxDV, Math.abs(vr[d] - y));
        if (Math.abs(x) > 2 ** -14) worstRel = Math.max(worstRel, Math.abs(kr[d] - x) / Math.abs(x));
        if (dtype === "f16") assert.equal(kr[d], roundF16(x), `f16 row ${s} head ${kh} dim ${d}: ${kr[d]} is not f16(${x})`);
        if (dtype === "bf16") assert.equal(kr[d], roundBf16(x), `bf16 row ${s} head ${kh} dim ${d}`);
      }
    }
    return { out, maxDK, maxDV, worstRel, dK };
  };
  const f32 = run("f32");
  const maxV = v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  const maxK = k.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  for (const [dtype, relBound] of [["f16", 2 ** -11], ["bf16", 2 ** -8], ["int8", Infinity]] as const) {
    const r = run(dtype);
    if (dtype !== "int8") assert.ok(r.worstRel <= relBound, `${dtype}: stored relative error ${r.worstRel} > ${relBound}`);
    else assert.ok(r.maxDK <= maxK / 127 / 2 * (1 + 1e-6), `int8: stored error ${r.maxDK} > half a step ${maxK / 254}`);
    const bound = outputBound(q, r.dK, T, H, K, D, 1 / Math.sqrt(D), r.maxDV, maxV);
    const m = assertClose(`${dtype} cache vs f32 cache`, r.out, f32.out, bound);
    t.diagnostic(`${dtype} cache: max |K err| ${r.maxDK.toExponential(2)}, max |V err| ${r.maxDV.toExponential(2)}, ` +
      `max |attention out err| vs f32 ${m.maxAbs.toExponential(2)} (bound ${bound.toExponential(2)}; H=${H} K=${K} D=${D} T=${T}, N(0,1) data)`);
  }
});

test("finite: an f16 cache clears it once it stores an inf/NaN half (overflow or NaN input), in every form; other dtypes keep it", () => {
  const [K, D] = [2, 8];
  const ok = randn(K * D, 4);
  for (const spec of [{ kind: "contiguous" }, { kind: "paged", blockSize: 4, numBlocks: 8 }, { kind: "window", window: 4 }] as const) {
    for (const dtype of DTYPES) {
      for (const bad of [1e6, NaN]) {
        const arena = new Arena();
        const cache = createKvCache(arena, { ...spec, numLayers: 1, numKvHeads: K, headDim: D, dtype } as KvCacheSpec);
        const seq = cache.addSequence();
        cache.write(0, seq, ok, ok);
        assert.equal(cache.finite, true, `${spec.kind} ${dtype}: finite after finite rows`);
        const v = ok.slice();
        v[5] = bad; // 1e6 overflows f16 to inf
        cache.write(0, seq, ok, v);
        assert.equal(cache.finite, dtype !== "f16", `${spec.kind} ${dtype}: finite after a ${bad} value`);
        cache.dispose();
      }
    }
  }
});

test("bad cache configurations and writes are rejected with the field and value", () => {
  const arena = new Arena();
  assert.throws(() => new ContiguousKvCache(arena, { numLayers: 1, numKvHeads: 0, headDim: 8 }), /numKvHeads must be a positive integer, got 0/);
  assert.throws(() => new ContiguousKvCache(arena, { numLayers: 1, numKvHeads: 1, headDim: 8, dtype: "q4" as KvDtype }), /ContiguousKvCache: dtype: unknown dtype "q4"; expected one of f32, f16, bf16, int8 \(or fp32, float32, float, fp16, float16, half, bfloat16\)/);
  assert.throws(() => new PagedKvCache(arena, { numLayers: 1, numKvHeads: 1, headDim: 8 }, { numBlocks: 0 }), /numBlocks must be a positive integer, got 0/);
  assert.throws(() => new SlidingWindowKvCache(arena, { numLayers: 1, numKvHeads: 1, headDim: 8 }, { window: 0 }), /window must be a positive integer, got 0/);
  const c = new ContiguousKvCache(arena, { numLayers: 2, numKvHeads: 2, headDim: 8 });
  const s = c.addSequence();
  assert.throws(() => c.write(2, s, new Float32Array(16), new Float32Array(16)), /layer 2 out of range \[0, 2\)/);
  assert.throws(() => c.write(0, s, new Float32Array(15), new Float32Array(15)), /k and v must both be f32 \[T, K=2, D=8\]; got lengths 15 and 15/);
  assert.throws(() => c.length(7), /unknown sequence 7/);
});

test("a cache that would pass wasm32's 4 GiB fails with a UserError naming the cache, not a crash", () => {
  const arena = new Arena();
  const big = { numLayers: 1, numKvHeads: 32, headDim: 128, dtype: "f16" as const }; // 16 KiB per token
  assert.throws(() => new PagedKvCache(arena, big, { blockSize: 16, numBlocks: 20000 }), (e: unknown) =>
    e instanceof UserError && /paged KV pool \(20000 blocks × 16 tokens\) needs .* but wasm32 memory stops at 4 GiB/.test((e as Error).message));
  const cache = new ContiguousKvCache(arena, big, { initialTokens: 300000 });
  const seq = cache.addSequence();
  assert.throws(() => cache.write(0, seq, new Float32Array(32 * 128), new Float32Array(32 * 128)), (e: unknown) =>
    e instanceof UserError && /contiguous KV cache \(300000 tokens\) needs .* wasm32 memory stops at 4 GiB/.test((e as Error).message));
  assert.equal(cache.length(seq), 0, "the failed write appended nothing");
});
