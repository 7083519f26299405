// The one byte count against published engine logs (shared/REFERENCE.md).
import { test } from "node:test";
import assert from "node:assert/strict";
import { kvCacheBytes, kvBytesPerToken } from "../src/kvcache/bytes.js";
import { rowBytes } from "../src/dtypes/table.js";
import type { LayerSpec } from "../src/config/types.js";

const uniform = (L: number, H: number, K: number, D: number, window: number | null = null) => ({
  layers: Array.from({ length: L }, (): LayerSpec => ({ numHeads: H, numKvHeads: K, headDim: D, window })),
  mla: null,
});
const MiB = 1024 * 1024;

test("llama.cpp: Llama-2-7B f16 cache at n_ctx 4096 is 2048 MiB", () => {
  assert.equal(kvCacheBytes(uniform(32, 32, 32, 128), { tokens: 4096, dtype: "f16" }), 2048 * MiB);
});

test("llama-cpp-python #66: LLaMA-30B f32 cache at n_ctx 512 is 1560 MiB", () => {
  assert.equal(kvCacheBytes(uniform(60, 52, 52, 128), { tokens: 512, dtype: "f32" }), 1560 * MiB);
});

test("vLLM #10517: Llama-3.1-8B is 131072 bytes per token in bf16", () => {
  assert.equal(kvBytesPerToken(uniform(32, 32, 8, 128), "bf16"), 131072);
});

test("MQA / MHA ratio is numHeads exactly", () => {
  const mha = kvBytesPerToken(uniform(32, 32, 32, 128));
  const mqa = kvBytesPerToken(uniform(32, 32, 1, 128));
  assert.equal(mha / mqa, 32);
});

test("tensor parallel replicates KV heads when tp > numKvHeads", () => {
  const s = uniform(2, 8, 2, 64);
  assert.equal(kvBytesPerToken(s, "f16", 4), kvBytesPerToken(uniform(2, 8, 1, 64), "f16"));
});

test("window caps a layer; paged rounds up to blocks; q8_0 is 34 bytes per 32 values", () => {
  assert.equal(kvCacheBytes(uniform(1, 4, 1, 32, 100), { tokens: 1000, dtype: "f32" }), 2 * 32 * 4 * 100);
  assert.equal(kvCacheBytes(uniform(1, 4, 1, 32), { tokens: 17, dtype: "f32", blockSize: 16 }), 2 * 32 * 4 * 32);
  assert.equal(rowBytes("q8_0", 128), 136);
  assert.equal(rowBytes("q4_0", 128), 72);
});
