// The doc-comment example of Attention (src/attention/attention.ts), run as written through the
// package entry point, so the documentation cannot rot.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Arena, Attention, ContiguousKvCache, referenceKernels } from "../src/index.js";

test("the Attention doc example runs and its stated shapes and byte count hold", () => {
  const arena = new Arena();
  const attn = new Attention({ numHeads: 8, numKvHeads: 2, headDim: 64 }, { arena, kernels: referenceKernels(arena) });
  const cache = new ContiguousKvCache(arena, { numLayers: 1, numKvHeads: 2, headDim: 64, dtype: "f16" });
  const a = cache.addSequence(), b = cache.addSequence();
  const rand = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
  const { out } = attn.prefill({ cache, layer: 0, seqs: [a, b], lengths: [5, 3], q: rand(8 * 8 * 64), k: rand(8 * 2 * 64), v: rand(8 * 2 * 64) });
  const step = attn.decode({ cache, layer: 0, seqs: [a, b], q: rand(2 * 8 * 64), k: rand(2 * 2 * 64), v: rand(2 * 2 * 64) });
  assert.equal(out.length, 8 * 8 * 64);
  assert.equal(step.out.length, 2 * 8 * 64);
  assert.deepEqual([cache.length(a), cache.length(b)], [6, 4]);
  assert.equal(cache.bytes(), 5120);
});
