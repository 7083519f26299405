// Dtype spellings from other tools (PyTorch, HF, vLLM, llama.cpp) map to one canonical name, in the
// library and on every flag that takes a dtype; JSON reports the canonical name.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canonicalDtype, DTYPES, dtypeInfo } from "../src/dtypes/table.js";
import { KV_DTYPES } from "../src/kvcache/cache.js";
import { Arena } from "../src/kernels/memory.js";
import { ContiguousKvCache } from "../src/kvcache/contiguous.js";
import type { KvDtype } from "../src/kernels/types.js";
import { runCli } from "./cli-helpers.js";

const FIXTURE = "tools/fixtures/models/llama-gqa-f16";

test("every alias, in any case, maps to its canonical dtype; canonical names map to themselves", () => {
  const want: [string, string][] = [
    ["fp16", "f16"], ["FLOAT16", "f16"], ["Half", "f16"], ["F16", "f16"],
    ["bfloat16", "bf16"], ["BF16", "bf16"],
    ["fp32", "f32"], ["float32", "f32"], ["float", "f32"], ["F32", "f32"],
    ["fp8", "fp8"], ["fp8_e4m3", "fp8"], ["Q8_0", "q8_0"], ["int8", "int8"],
  ];
  for (const [alias, canonical] of want) assert.equal(canonicalDtype(alias), canonical, alias);
  for (const name of Object.keys(DTYPES)) assert.equal(canonicalDtype(name), name);
  assert.equal(dtypeInfo("half").blockBytes, 2);
});

test("a name outside the allowed list is refused in one line that lists the canonical names and their aliases", () => {
  assert.throws(() => canonicalDtype("fp17"), (e: Error) => e.message === `unknown dtype "fp17"; expected one of ${Object.keys(DTYPES).join(", ")} (or fp32, float32, float, fp16, float16, half, bfloat16, fp8_e4m3, float8_e4m3fn)`);
  // q8_0 is a real dtype but not a KV cache storage; fp8's aliases are not offered for the cache.
  assert.throws(() => canonicalDtype("q8_0", KV_DTYPES), /^RangeError: unknown dtype "q8_0"; expected one of f32, f16, bf16, int8 \(or fp32, float32, float, fp16, float16, half, bfloat16\)$/);
});

test("the library's caches take aliases and keep the canonical name", () => {
  const arena = new Arena(1 << 20);
  const cache = new ContiguousKvCache(arena, { numLayers: 1, numKvHeads: 2, headDim: 8, dtype: "Float16" as KvDtype });
  assert.equal(cache.config.dtype, "f16");
});

test("CLI: plan, generate and export-gguf accept aliases and report canonical names in --json", async () => {
  const plan = await runCli(["plan", "--model", "llama-2-7b", "--kv-dtype", "FP16", "--weight-dtype", "bfloat16", "--json"]);
  assert.equal(plan.code, 0, plan.err);
  const p = JSON.parse(plan.out);
  assert.deepEqual([p.options.kvDtype, p.options.weightDtype], ["f16", "bf16"]);
  const gen = await runCli(["generate", FIXTURE, "--prompt", "a", "--max-tokens", "2", "--kv-dtype", "half", "--json"]);
  assert.equal(gen.code, 0, gen.err);
  assert.equal(JSON.parse(gen.out).kvDtype, "f16");
  const bad = await runCli(["generate", FIXTURE, "--prompt", "a", "--kv-dtype", "q4_0"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /^mqa: --kv-dtype: unknown dtype "q4_0"; expected one of f32, f16, bf16, int8 \(or .*\)$/);
  const dir = mkdtempSync(join(tmpdir(), "mqa-dtypes-"));
  try {
    const exp = await runCli(["export-gguf", FIXTURE, join(dir, "m.gguf"), "--dtype", "BFloat16", "--json"]);
    assert.equal(exp.code, 0, exp.err);
    assert.equal(JSON.parse(exp.out).dtype, "bf16");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
