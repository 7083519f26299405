// The planner against published engine figures, exact parameter totals, and properties that must hold
// for every preset (MQA/MHA ratio, TP replication, window caps, search consistency).
import { test } from "node:test";
import assert from "node:assert/strict";
import { plan, searchMaxContext, MAX_CONTEXT_LIMIT } from "../src/planner/plan.js";
import { paramCounts, weightBytes } from "../src/planner/params.js";
import { gpuByName, customGpu, listGpus } from "../src/planner/gpus.js";
import { presetSpec, listPresets } from "../src/config/presets.js";
import { withKvHeads } from "../src/config/variant.js";
import { kvCacheBytes } from "../src/kvcache/bytes.js";
import { UserError, OptionError } from "../src/errors.js";
import { specFromHfConfig } from "../src/config/hf.js";
import { join } from "node:path";

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

test("llama.cpp: Llama-2-7B f16 cache at n_ctx 4096 is 2048 MiB", () => {
  const r = plan(presetSpec("llama-2-7b"), { context: 4096, kvDtype: "f16" });
  assert.equal(r.kvCacheBytes, 2048 * MiB);
  assert.equal(r.kvBytesPerToken, 524288); // 0.5 MiB: the seed's 7B shape
});

test("llama-cpp-python #66: LLaMA-30B f32 cache at n_ctx 512 is 1560 MiB", () => {
  assert.equal(plan(presetSpec("llama-30b"), { context: 512, kvDtype: "f32" }).kvCacheBytes, 1560 * MiB);
});

test("vLLM #10517: Llama-3.1-8B is 131072 B/token; 1952 blocks × 16 tokens = 3.81 GiB", () => {
  const spec = presetSpec("llama-3.1-8b");
  const perBlock = 16 * 131072;
  // A KV budget just short of 1953 blocks gives vLLM's 1952.
  const r = plan(spec, { kvDtype: "bf16", gpu: "rtx-3090", blockSize: 16, kvBudgetBytes: 1953 * perBlock - 1 });
  assert.equal(r.kvBytesPerToken, 131072);
  assert.equal(r.numBlocks, 1952);
  assert.equal(((r.numBlocks * perBlock) / GiB).toFixed(2), "3.81");
});

test("vLLM PR #12569: 1381 blocks give 'Maximum concurrency for 2048 tokens per request: 10.79x'", () => {
  const spec = presetSpec("llama-3.1-70b");
  const perTokenPerGpu = 327680 / 4; // tp 4, bf16
  const r = plan(spec, { gpu: "h100-sxm", gpus: 4, tp: 4, context: 2048, kvDtype: "bf16", kvBudgetBytes: 1381 * 16 * perTokenPerGpu });
  assert.equal(r.kvBytesPerTokenPerGpu, perTokenPerGpu);
  assert.equal(r.numBlocks, 1381);
  assert.equal(r.maxConcurrency.toFixed(2), "10.79");
  assert.equal(r.maxBatch, Math.floor(1381 / (2048 / 16))); // 10 whole requests
});

test("DeepSeek-V2-Lite MLA cache is 27 × (512 + 64) × 2 bytes per token in f16", () => {
  const r = plan(presetSpec("deepseek-v2-lite"), { context: 1000, kvDtype: "f16" });
  assert.equal(r.kvBytesPerToken, 27 * (512 + 64) * 2);
  assert.equal(r.kvCacheBytes, 27 * (512 + 64) * 2 * 1000);
  assert.equal(r.attention, "mla");
});

test("parameter totals equal the published counts", () => {
  const expected: Record<string, number> = {
    "llama-2-7b": 6_738_415_616, "llama-3.1-8b": 8_030_261_248, "llama-3.1-70b": 70_553_706_496, "mistral-7b": 7_241_732_096,
    "mixtral-8x7b": 46_702_792_704, gpt2: 124_439_808, "tinyllama-1.1b": 1_100_048_384, "smollm2-135m": 134_515_008,
    "qwen2.5-0.5b": 494_032_768, "qwen2.5-7b": 7_615_616_512, "gemma-2b": 2_506_172_416, "gemma-7b": 8_537_680_896,
    "gemma-2-9b": 9_241_705_984, "phi-3-mini": 3_821_079_552, "pythia-1b": 1_011_781_632, "deepseek-v2-lite": 15_706_484_224,
  };
  const bad: string[] = [];
  for (const [name, n] of Object.entries(expected)) {
    const got = paramCounts(presetSpec(name)).total;
    if (got !== n) bad.push(`${name}: got ${got}, expected ${n}, error ${got - n}`);
  }
  assert.deepEqual(bad, []);
  const mix = paramCounts(presetSpec("mixtral-8x7b"));
  assert.equal(mix.active, 12_879_925_248); // 2 of 8 experts
});

test("every preset: MQA / MHA KV ratio is numHeads exactly; GQA-g is numHeads / g", () => {
  for (const p of listPresets()) {
    const spec = presetSpec(p.name);
    const r = plan(spec, { kvHeads: ["full", "mqa"] });
    const [mha, mqa] = r.variants;
    assert.equal(mha.kvBytesPerToken / mqa.kvBytesPerToken, spec.numHeads, p.name);
    if (!spec.mla) {
      const g = spec.numKvHeads;
      assert.equal(mha.kvBytesPerToken * g, r.kvBytesPerToken * spec.numHeads, `${p.name}: GQA-${g}`);
    }
  }
});

test("K/V projection shrink: GQA-8 on a 64-head model keeps 1/8 of MHA's K+V projection weights", () => {
  const r = plan(presetSpec("llama-2-70b"), { kvHeads: ["full", 8, 1] });
  const [mha, g8, mqa] = r.variants;
  assert.equal(mha.kvProjParamsSavedVsMha, 0);
  assert.equal(g8.kvProjParamsSavedVsMha, 1 - 8 / 64);
  assert.equal(mqa.kvProjParamsSavedVsMha, 1 - 1 / 64);
  assert.equal(g8.kvProjParams, r.kvProjParams);
  assert.equal(mha.weightBytes - g8.weightBytes, 2 * (mha.kvProjParams - g8.kvProjParams)); // bf16
});

test("tensor parallel: KV splits over tp up to the KV heads, then replicates (vLLM)", () => {
  const spec = presetSpec("llama-3.1-70b");
  const one = plan(spec, { context: 32768 });
  const tp4 = plan(spec, { context: 32768, gpu: "h100-sxm", gpus: 4, tp: 4 });
  assert.equal(tp4.kvCacheBytes, 10 * GiB);
  assert.equal(tp4.kvCacheBytesPerGpu * 4, one.kvCacheBytes);
  const tp16 = plan(spec, { context: 32768, gpus: 16, tp: 16 });
  assert.equal(tp16.kvHeadsPerGpu, 1);
  assert.equal(tp16.kvBytesPerTokenPerGpu, 80 * 2 * 1 * 128 * 2);
  assert.equal(tp16.kvCacheBytesAllGpus, 2 * one.kvCacheBytes); // 16 GPUs each holding 1 of 8 heads
  assert.ok(tp16.warnings.some((w) => w.includes("replica")));
  // Weights: the 8 KV heads' projections are replicated past tp 8 too.
  const w8 = weightBytes(spec, "bf16", 8);
  const w16 = weightBytes(spec, "bf16", 16);
  assert.equal(w16.perGpu > w8.perGpu / 2, true);
  // Data parallel: 8 GPUs at tp 4 = 2 replicas, twice the max batch of one.
  const dp = plan(spec, { context: 32768, gpu: "h100-sxm", gpus: 8, tp: 4 });
  assert.equal(dp.maxBatch, 2 * tp4.maxBatch);
});

test("window caps: Mistral's cache stops at 4096 tokens; Gemma-2 caps only its sliding layers", () => {
  const mistral = presetSpec("mistral-7b");
  const a = plan(mistral, { context: 4096 });
  const b = plan(mistral, { context: 32768 });
  assert.equal(b.kvCacheBytes, a.kvCacheBytes);
  assert.equal(b.kvBytesPerToken, a.kvBytesPerToken); // per token is before any cap
  assert.equal(b.maxContextUnbounded, true);
  assert.equal(b.maxContext, MAX_CONTEXT_LIMIT);
  const noWin = plan(mistral, { context: 32768, applyWindow: false });
  assert.equal(noWin.kvCacheBytes, 8 * a.kvCacheBytes);
  const gemma = presetSpec("gemma-2-9b");
  const perLayerToken = 2 * 8 * 256 * 2;
  assert.equal(plan(gemma, { context: 8192 }).kvCacheBytes, 21 * perLayerToken * 4096 + 21 * perLayerToken * 8192);
});

test("maxBatch and maxContext are the largest values that fit (paged), and agree with kvCacheBytes", () => {
  for (const name of ["llama-2-7b", "llama-3.1-8b", "gemma-2-9b", "deepseek-v2-lite", "falcon-7b", "phi-3-mini"]) {
    const spec = presetSpec(name);
    const r = plan(spec, { context: 3000, batch: 3, gpu: "l40s" });
    const o = r.options;
    const bytes = (tokens: number, batch: number) => kvCacheBytes(spec, { tokens, batch, dtype: o.kvDtype, tp: o.tp, blockSize: o.blockSize });
    const B = r.kvBudgetBytesPerGpu;
    assert.ok(bytes(3000, r.maxBatch) <= B && bytes(3000, r.maxBatch + 1) > B, `${name} maxBatch ${r.maxBatch}`);
    if (!r.maxContextUnbounded) assert.ok(bytes(r.maxContext, 3) <= B && bytes(r.maxContext + 1, 3) > B, `${name} maxContext ${r.maxContext}`);
    assert.equal(r.fits, bytes(3000, 3) <= B);
    for (const k of ["kvBytesPerToken", "kvCacheBytes", "kvCacheBytesPerGpu", "weightBytes", "maxBatch", "maxContext"] as const) {
      assert.ok(Number.isSafeInteger(r[k]), `${name}.${k} = ${r[k]} is an integer`);
    }
  }
  assert.deepEqual(searchMaxContext((t) => t * 10, 95), { maxContext: 9, unbounded: false });
  assert.deepEqual(searchMaxContext((t) => t * 10, 5), { maxContext: 0, unbounded: false });
});

test("the vLLM budget rule: usable − weights − activations, with block rounding", () => {
  const spec = presetSpec("llama-2-7b");
  const r = plan(spec, { gpu: "a100-80gb", gpuMemoryUtilization: 0.9, activation: { bytes: 2 * GiB } });
  assert.equal(r.memory.usableBytesPerGpu, Math.floor(80 * GiB * 0.9));
  assert.equal(r.kvBudgetBytesPerGpu, r.memory.usableBytesPerGpu - r.weightBytesPerGpu - 2 * GiB);
  assert.equal(r.weightBytes, 6_738_415_616 * 2);
  assert.equal(r.numBlocks, Math.floor(r.kvBudgetBytesPerGpu / (16 * 524288)));
  const odd = plan(spec, { context: 4097, activation: { bytes: 2 * GiB } });
  assert.equal(odd.maxBatch, Math.floor(odd.kvBudgetBytesPerGpu / (4112 * 524288))); // 4097 rounds up to 257 blocks
});

test("a model that does not fit: budget negative, maxBatch and maxContext 0, warning", () => {
  const r = plan(presetSpec("llama-3.1-405b"), { gpu: "a100-80gb" });
  assert.ok(r.kvBudgetBytesPerGpu < 0);
  assert.equal(r.maxBatch, 0);
  assert.equal(r.maxContext, 0);
  assert.ok(r.warnings.some((w) => w.includes("no room")));
});

test("context beyond max_position_embeddings warns instead of refusing", () => {
  const r = plan(presetSpec("llama-2-7b"), { context: 8192 });
  assert.equal(r.kvCacheBytes, 4 * GiB);
  assert.ok(r.warnings.some((w) => w.includes("max_position_embeddings 4096")));
});

test("decode roofline: batch 1 is memory-bound at bandwidth / bytes; big MQA batches become compute-bound", () => {
  const spec = presetSpec("llama-2-7b");
  const r = plan(spec, { context: 4096, gpu: "a100-80gb" });
  const d = r.decode;
  assert.equal(d.bound, "memory");
  // Every weight once, but of the untied input embedding (32000 × 4096 bf16) only the one row looked up.
  assert.equal(d.bytesPerStepPerGpu, r.weightBytes - 32000 * 4096 * 2 + 4096 * 2 + r.kvCacheBytes);
  assert.ok(Math.abs(d.tokensPerSecond - 2039e9 / d.bytesPerStepPerGpu) < 1e-9);
  const mqa = withKvHeads(spec, 1);
  const big = plan(mqa, { context: 512, batch: 1024, gpu: "a100-80gb" });
  assert.equal(big.decode.bound, "compute");
  // MoE reads only the experts a small batch hits.
  const mix = plan(presetSpec("mixtral-8x7b"), { batch: 1, context: 512, gpu: "h100-sxm", gpus: 2, tp: 2 });
  assert.ok(mix.decode.weightBytesReadPerGpu < mix.weightBytesPerGpu * 0.4);
});

test("options are validated with errors naming the option field (the CLI shows the flag)", () => {
  const spec = presetSpec("llama-2-7b");
  const bad: [object, string][] = [
    [{ context: -5 }, "context"], [{ context: 1.5 }, "context"], [{ batch: 0 }, "batch"], [{ gpus: 6, tp: 4 }, "gpus"],
    [{ kvDtype: "f12" }, "kvDtype"], [{ gpuMemoryUtilization: 1.5 }, "gpuMemoryUtilization"], [{ kvHeads: [3] }, "kvHeads"],
  ];
  for (const [opts, field] of bad) {
    assert.throws(() => plan(spec, opts), (e: unknown) => e instanceof OptionError && e.fields.includes(field) && e.message.startsWith(field) && !e.message.includes("--"), JSON.stringify(opts));
  }
  assert.throws(() => plan(spec, { gpu: "a100-90gb" }), (e: unknown) => e instanceof UserError && e.message.includes("a100-80gb"));
});

test("GPU catalog: every entry has memory, bandwidth, dense TFLOP/s and a source per field; custom GPUs", () => {
  assert.ok(listGpus().length >= 13);
  for (const g of listGpus()) {
    assert.ok(g.memoryBytes > 0 && g.bandwidthBytesPerSecond > 0 && (g.tflopsBf16 ?? 0) > 0, g.id);
    for (const f of ["memory", "bandwidth", "tflops"]) assert.ok((g.sources[f] ?? "").length > 5, `${g.id} ${f} source`);
  }
  assert.equal(gpuByName("H100").id, "h100-sxm");
  assert.equal(gpuByName("a100-80gb").memoryBytes, 80 * GiB);
  assert.equal(customGpu({ memoryGiB: 24, bandwidthGBs: 1000 }).memoryBytes, 24 * GiB);
  assert.throws(() => customGpu({ memoryGiB: -1, bandwidthGBs: 1 }), UserError);
});

test("Phi-2 (model_type phi): biases everywhere incl. the LM head, one LayerNorm per block: 2,779,683,840 parameters", () => {
  const phi2 = specFromHfConfig({ model_type: "phi", hidden_size: 2560, intermediate_size: 10240, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, vocab_size: 51200, max_position_embeddings: 2048, partial_rotary_factor: 0.4, tie_word_embeddings: false, layer_norm_eps: 1e-5, hidden_act: "gelu_new" }, "phi-2");
  assert.equal(paramCounts(phi2).total, 2_779_683_840);
});

test("config.json files the presets do not cover: Llama-3.2-1B (tied, head_dim 64) and Qwen3-8B (q/k norms) totals", async () => {
  const { loadSpec } = await import("../src/formats/model-file.js");
  const dir = join(import.meta.dirname, "fixtures", "configs");
  const l = await loadSpec(join(dir, "llama-3.2-1b.config.json"));
  assert.equal(paramCounts(l).total, 1_235_814_400);
  assert.equal(plan(l, { context: 4096 }).kvBytesPerToken, 16 * 2 * 8 * 64 * 2);
  const q = await loadSpec(join(dir, "qwen3-8b.config.json"));
  assert.equal(paramCounts(q).total, 8_190_735_360);
  assert.equal(plan(q, {}).kvBytesPerToken, 36 * 2 * 8 * 128 * 2);
});

test("charts: heatmap cells agree with maxBatch of every variant; cache chart values are the byte count; throughput stops at maxBatch", async () => {
  const { heatmapCells, cacheVsContextChart, throughputChart } = await import("../src/planner/charts.js");
  const spec = presetSpec("llama-2-7b");
  const r = plan(spec, { context: 4096, gpu: "a100-80gb", kvHeads: ["full", 8, 1] });
  const batches = Array.from({ length: 40 }, (_, i) => 1 + 25 * i);
  const cells = heatmapCells(spec, r, { batches, contexts: [4096] });
  for (const v of r.variants) {
    for (const c of cells.filter((x) => x.kvHeads === v.numKvHeads)) {
      assert.equal(c.fits, c.batch <= v.maxBatch, `${v.label} batch ${c.batch} (maxBatch ${v.maxBatch})`);
    }
  }
  const cache = cacheVsContextChart(spec, { kvHeads: [32, 1], contexts: [4096] }) as { data: { values: { kvHeads: number; gib: number }[] } };
  assert.deepEqual(cache.data.values.map((x) => x.gib), [2, 2 / 32]);
  const tput = throughputChart(spec, r, { kvHeads: [32], batches: [1, 2, 4, 8, 16, 32, 64] }) as { data: { values: { batch: number }[] } };
  assert.deepEqual(tput.data.values.map((x) => x.batch), [1, 2, 4, 8, 16].filter((b) => b <= r.variants[0].maxBatch));
});

test("gpt-oss-20b: maxConcurrency counts its 128-token sliding layers like vLLM's hybrid allocator (≈ maxBatch, not half of it)", async () => {
  const { loadSpec } = await import("../src/formats/model-file.js");
  const spec = await loadSpec(join(import.meta.dirname, "fixtures", "configs", "gpt-oss-20b.config.json"));
  const r = plan(spec, { context: 131072, gpu: "h100-sxm", kvHeads: [] });
  // Blocks are counted at the all-layer rate (49,152 B/token), but one sequence needs only ~half: 12 full layers.
  assert.ok(r.maxBatch >= 1);
  assert.ok(Math.floor(r.maxConcurrency) >= r.maxBatch && r.maxConcurrency < r.maxBatch + 1, `maxConcurrency ${r.maxConcurrency} vs maxBatch ${r.maxBatch}`);
});

test("default activation model vs vLLM V1 logs (llm-d, H100 at 79.18 GiB visible): Llama-3.1-8B KV budget 51.38 GiB within 1%", () => {
  // Log: weights 14.99 GiB, peak activation 4.76 GiB, non-torch 0.13 GiB, KV 51.38 GiB (= 0.9 × 79.18 − the three).
  const h100 = customGpu({ memoryGiB: 79.18, bandwidthGBs: 3350, tflops: 989 });
  const r = plan(presetSpec("llama-3.1-8b"), { gpu: h100, kvHeads: [] });
  assert.equal(r.options.activation.tokens, 8192, "vLLM serve's max_num_batched_tokens on a >= 70 GiB GPU");
  // 8192 × 2 × (2 × 4096 + 2 × 14336) + 8192 × 128256 × 4 + 0.5 GiB
  assert.equal(r.memory.activationBytesPerGpu, 8192 * 2 * (2 * 4096 + 2 * 14336) + 8192 * 128256 * 4 + GiB / 2);
  const err = r.kvBudgetBytesPerGpu / GiB / 51.38 - 1;
  assert.ok(Math.abs(err) < 0.01, `KV budget ${(r.kvBudgetBytesPerGpu / GiB).toFixed(2)} GiB vs 51.38 GiB logged: error ${(100 * err).toFixed(2)}%, tolerance 1%`);
  // Logits are gathered to the full vocabulary under tp (llm-d: 70B at tp 2 logs 4.84 GiB, 8B at tp 1 4.76 GiB).
  const tp2 = plan(presetSpec("llama-3.1-70b"), { gpu: h100, tp: 2, gpus: 2, kvHeads: [] });
  assert.ok(tp2.memory.activationBytesPerGpu > 8192 * 128256 * 4, "logits not divided by tp");
  assert.equal(plan(presetSpec("llama-3.1-8b"), { gpu: "rtx-3090", kvHeads: [] }).options.activation.tokens, 2048, "2048 below 70 GiB");
});
