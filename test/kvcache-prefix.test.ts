// Prefix caching in the paged KV cache (src/kvcache/prefix.ts, PagedKvCache.attachPrefix /
// registerPrefix): shared full blocks, copy-on-write of a partly matching block, reference counts,
// LRU eviction when the pool runs short; and in Batch: greedy tokens with and without reuse are the
// same across many interleaved requests, on the reference and the WASM kernels.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Arena } from "../src/kernels/memory.js";
import { createKernels } from "../src/kernels/index.js";
import { PagedKvCache } from "../src/kvcache/paged.js";
import { Batch, type SequenceResult } from "../src/generate/generate.js";
import { loadModel } from "../src/models/index.js";
import { MODELS_DIR, load } from "./models-helpers.js";

const L = 2, K = 2, D = 4, bs = 4;

function rows(T: number, seed: number): Float32Array {
  const x = new Float32Array(T * K * D);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(seed * 131 + i * 0.37);
  return x;
}

/** Row `pos` of (layer, seq) as f32 [K][D] (K heads), read through the cache's segments. */
function readRow(arena: Arena, cache: PagedKvCache, layer: number, seq: number, pos: number): number[] {
  const seg = cache.segments(layer, seq).find((s) => pos >= s.firstPos && pos < s.firstPos + s.rows)!;
  const f = new Float32Array(arena.memory.buffer);
  const out: number[] = [];
  for (let kh = 0; kh < K; kh++) {
    const at = (seg.kPtr + kh * seg.headStride + (pos - seg.firstPos) * D * 4) >>> 2;
    out.push(...f.subarray(at, at + D));
  }
  return out;
}

function writeAll(cache: PagedKvCache, seq: number, k: Float32Array, v: Float32Array): void {
  for (let l = 0; l < L; l++) cache.write(l, seq, k, v);
}

test("prefix cache: full blocks are shared, a partly matching block is copied, counts and eviction hold", () => {
  const arena = new Arena();
  const cache = new PagedKvCache(arena, { numLayers: L, numKvHeads: K, headDim: D, dtype: "f32" }, { blockSize: bs, numBlocks: 8 * L, prefixCache: true });
  const prompt = Array.from({ length: 10 }, (_, i) => 100 + i); // 2 full blocks + 2 rows
  const a = cache.addSequence();
  assert.equal(cache.attachPrefix(a, prompt), 0, "nothing cached yet");
  const kA = rows(10, 1), vA = rows(10, 2);
  writeAll(cache, a, kA, vA);
  cache.registerPrefix(a, prompt);
  assert.equal(cache.cachedBlockCount(), 2 * L, "the two full blocks of each layer are indexed, the partial one is not");

  // Same first 9 tokens: 2 shared blocks (8 rows) + copy-on-write of nothing (the 3rd block is not cached).
  const b = cache.addSequence();
  assert.equal(cache.attachPrefix(b, [...prompt.slice(0, 9), 7]), 8);
  for (let l = 0; l < L; l++) assert.deepEqual(cache.blockTable(l, b), cache.blockTable(l, a).slice(0, 2), "whole blocks are shared, not copied");
  assert.equal(cache.length(b), 8);
  // A prompt that is exactly 2 blocks keeps its last token to compute: 1 shared block + 3 copied rows.
  const c = cache.addSequence();
  assert.equal(cache.attachPrefix(c, prompt.slice(0, 8)), 7);
  for (let l = 0; l < L; l++) {
    assert.equal(cache.blockTable(l, c)[0], cache.blockTable(l, a)[0]);
    assert.notEqual(cache.blockTable(l, c)[1], cache.blockTable(l, a)[1], "the partly used block is a private copy");
    for (let p = 0; p < 7; p++) assert.deepEqual(readRow(arena, cache, l, c, p), readRow(arena, cache, l, a, p), `layer ${l} row ${p}`);
  }
  // Writing after the copied rows leaves the shared original untouched.
  const before = readRow(arena, cache, 0, a, 7);
  writeAll(cache, c, rows(1, 9), rows(1, 9));
  assert.deepEqual(readRow(arena, cache, 0, a, 7), before);
  assert.notDeepEqual(readRow(arena, cache, 0, c, 7), before);
  // A different first block matches nothing; a prefix of the first block copies its matching rows.
  assert.equal(cache.attachPrefix(cache.addSequence(), [1, 2, 3, 4, 5]), 0);
  assert.equal(cache.attachPrefix(cache.addSequence(), [100, 101, 55]), 2);

  // Freeing every sequence keeps the indexed blocks; the pool then evicts them, LRU, only when short.
  for (const s of cache.sequences()) cache.freeSequence(s);
  assert.equal(cache.cachedBlockCount(), 2 * L);
  assert.equal(cache.freeBlockCount(), 8 * L - 2 * L);
  assert.equal(cache.availableBlockCount(), 8 * L);
  const big = cache.addSequence();
  writeAll(cache, big, rows(7 * bs, 3), rows(7 * bs, 4)); // 7 of the 8 blocks per layer: one cached block must go
  assert.equal(cache.cachedBlockCount(), 1 * L, "the least recently used entry, the deeper one, was evicted");
  assert.equal(cache.attachPrefix(cache.addSequence(), prompt), 4, "the surviving first block still serves");
  // Now pinned by that sequence, the last cached block cannot be evicted: the pool is exhausted.
  assert.equal(cache.availableBlockCount(), 0);
  assert.throws(() => writeAll(cache, cache.addSequence(), rows(1, 5), rows(1, 5)), /pool exhausted/);
});

test("prefix cache: blocks a running sequence uses are never evicted, and without prefixCache nothing is reused", () => {
  const arena = new Arena();
  const cache = new PagedKvCache(arena, { numLayers: L, numKvHeads: K, headDim: D, dtype: "f32" }, { blockSize: bs, numBlocks: 3 * L, prefixCache: true });
  const prompt = [1, 2, 3, 4, 5, 6, 7, 8, 9];
  const a = cache.addSequence();
  writeAll(cache, a, rows(9, 1), rows(9, 1));
  cache.registerPrefix(a, prompt);
  const b = cache.addSequence();
  assert.equal(cache.attachPrefix(b, prompt), 8);
  cache.freeSequence(a);
  // b holds the two shared blocks; a's third block went back to the pool.
  assert.equal(cache.availableBlockCount(), 1 * L);
  const c = cache.addSequence();
  assert.throws(() => writeAll(cache, c, rows(2 * bs, 2), rows(2 * bs, 2)), /pool exhausted/, "the shared blocks b uses are not evictable");
  const plain = new PagedKvCache(arena, { numLayers: L, numKvHeads: K, headDim: D, dtype: "f32" }, { blockSize: bs, numBlocks: 3 * L });
  const p = plain.addSequence();
  writeAll(plain, p, rows(9, 1), rows(9, 1));
  plain.registerPrefix(p, prompt);
  assert.equal(plain.attachPrefix(plain.addSequence(), prompt), 0);
});

/** Runs the prompts through one Batch, adding prompt i at step i·gap, greedy; tokens in prompt order. */
function runInterleaved(model: Awaited<ReturnType<typeof load>>["model"], prompts: number[][], prefixCache: boolean, chunk: number): { tokens: number[][]; batch: Batch } {
  const batch = new Batch(model, { maxSequences: 4, prefixCache, prefillChunk: chunk });
  const out: SequenceResult[] = [];
  let next = 0, step = 0, running = 0;
  for (;;) {
    // Up to 4 at once; a new one joins every other step while others decode.
    if (next < prompts.length && running < 4 && step % 2 === 0) {
      const i = next++;
      running++;
      out[i] = batch.add(prompts[i], { maxTokens: 6 + (i % 3), temperature: 0, onDone: () => running-- });
    }
    const more = batch.step();
    step++;
    if (!more && next >= prompts.length) break;
  }
  return { tokens: out.map((s) => s.tokens), batch };
}

test("Batch with prefixCache: greedy tokens equal those without reuse over many interleaved requests (reference and WASM kernels)", async () => {
  const system = Array.from({ length: 37 }, (_, i) => (i * 7 + 3) % 90 + 5); // a shared "system prompt", not block aligned
  const prompts: number[][] = [];
  for (let i = 0; i < 14; i++) {
    const turn = Array.from({ length: 3 + (i % 5) * 4 }, (_, j) => ((i + 1) * 13 + j * 5) % 90 + 5);
    // Multi-turn: some prompts extend an earlier prompt (the history), some only share the system prompt.
    prompts.push(i % 3 === 2 ? [...prompts[i - 1], ...turn] : [...system, ...turn]);
  }
  prompts.push(prompts[0].slice(0, 32), prompts[0].slice(0, 33)); // block-aligned copies: the last token is recomputed
  const dir = join(MODELS_DIR, "llama3-gqa-sharded");
  const ref = await load(dir);
  const arena = new Arena();
  const kernels = await createKernels({ arena, backend: "wasm", threads: 2 });
  try {
    const fast = await loadModel(dir, { arena, kernels });
    for (const [name, model] of [["reference", ref.model], ["wasm", fast.model]] as const) {
      for (const chunk of [512, 5]) {
        const without = runInterleaved(model, prompts, false, chunk);
        const withReuse = runInterleaved(model, prompts, true, chunk);
        assert.deepEqual(withReuse.tokens, without.tokens, `${name}, prefill chunk ${chunk}`);
        assert.ok(withReuse.batch.prefixHits >= 10, `${name}: ${withReuse.batch.prefixHits} prompts reused cached blocks`);
        assert.ok(withReuse.batch.prefixReusedTokens >= 10 * 32, `${name}: ${withReuse.batch.prefixReusedTokens} prompt tokens reused`);
        assert.equal(without.batch.prefixHits, 0);
        without.batch.dispose();
        withReuse.batch.dispose();
      }
    }
  } finally {
    kernels.close();
  }
});
