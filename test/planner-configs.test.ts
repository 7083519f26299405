// Real config.json files the presets do not cover (test/fixtures/configs/, sources in its README), read exactly as
// `mqa plan --model <file>` reads them. Each expected number is hand arithmetic written out beside it, and the parameter
// totals are checked against the counts the model cards publish (exact where a card gives an exact count).
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadSpec } from "../src/formats/model-file.js";
import { plan } from "../src/planner/plan.js";
import { paramCounts } from "../src/planner/params.js";
import { UserError } from "../src/errors.js";

const dir = join(import.meta.dirname, "fixtures", "configs");
const MiB = 1024 ** 2;

interface Expect {
  file: string;
  kvBytesPerToken: number; // f16, one sequence, all layers
  context: number;
  kvCacheBytes: number; // f16, batch 1 at `context`, sliding layers capped at their window
  total: number; // parameters
  active?: number; // MoE: parameters one token uses
  shape: [number, number, number, number]; // layers, query heads, KV heads, head dim
}

const CASES: Expect[] = [
  // L × 2 (K and V) × KV heads × head dim × 2 bytes
  { file: "llama-3.2-3b", shape: [28, 24, 8, 128], kvBytesPerToken: 28 * 2 * 8 * 128 * 2, context: 8192, kvCacheBytes: 114688 * 8192, total: 3_212_749_824 }, // card: 3.21B, tied
  { file: "qwen2.5-1.5b", shape: [28, 12, 2, 128], kvBytesPerToken: 28 * 2 * 2 * 128 * 2, context: 32768, kvCacheBytes: 28672 * 32768, total: 1_543_714_304 }, // 1.54B; use_sliding_window false
  { file: "mistral-nemo-base-2407", shape: [40, 32, 8, 128], kvBytesPerToken: 40 * 2 * 8 * 128 * 2, context: 4096, kvCacheBytes: 163840 * 4096, total: 12_247_782_400 }, // head_dim 128 ≠ 5120 / 32
  { file: "phi-3.5-moe", shape: [32, 32, 8, 128], kvBytesPerToken: 32 * 2 * 8 * 128 * 2, context: 4096, kvCacheBytes: 131072 * 4096, total: 41_873_153_344, active: 6_640_999_744 }, // LayerNorm + lm_head bias
  { file: "mixtral-8x22b-v0.1", shape: [56, 48, 8, 128], kvBytesPerToken: 56 * 2 * 8 * 128 * 2, context: 65536, kvCacheBytes: 229376 * 65536, total: 140_620_634_112, active: 39_152_031_744 }, // 141B / 39B
  // MLA: 61 × (512 + 64) × 2; llama.cpp logs c^KV 1952 MiB + K^R 244 MiB at n_ctx 32768 (REFERENCE.md)
  { file: "deepseek-v3", shape: [61, 128, 128, 192], kvBytesPerToken: 61 * 576 * 2, context: 32768, kvCacheBytes: (1952 + 244) * MiB, total: 671_026_404_352, active: 37_552_282_624 }, // 671B (+14B MTP not counted) / 37B
  // 12 sliding layers hold 128 tokens, 12 full layers hold all: 12 × 2048 × 128 + 12 × 2048 × 131072
  { file: "gpt-oss-20b", shape: [24, 64, 8, 64], kvBytesPerToken: 24 * 2 * 8 * 64 * 2, context: 131072, kvCacheBytes: 12 * 2048 * 128 + 12 * 2048 * 131072, total: 20_914_754_880, active: 4_187_438_400 }, // card 20.91B (router biases and sinks, 2304 parameters, not modelled); card's 3.61B active excludes the 0.58B input embedding
  // 13 even layers slide over 4096, 13 odd layers are global: per layer 2 × 4 × 256 × 2 = 4096 B/token
  { file: "gemma-2-2b", shape: [26, 8, 4, 256], kvBytesPerToken: 26 * 4096, context: 8192, kvCacheBytes: 13 * 4096 * 4096 + 13 * 4096 * 8192, total: 2_614_341_888 },
  // every 6th layer global (5, 11, 17, 23), 22 slide over 512: per layer 2 × 1 × 256 × 2 = 1024 B/token
  { file: "gemma-3-1b-pt", shape: [26, 4, 1, 256], kvBytesPerToken: 26 * 1024, context: 32768, kvCacheBytes: 22 * 1024 * 512 + 4 * 1024 * 32768, total: 999_885_952 },
  { file: "falcon-7b-rw", shape: [32, 71, 1, 64], kvBytesPerToken: 32 * 2 * 1 * 64 * 2, context: 2048, kvCacheBytes: 8192 * 2048, total: 6_921_720_704 }, // RW remote code, multi_query
  { file: "falcon-40b-rw", shape: [60, 128, 8, 64], kvBytesPerToken: 60 * 2 * 8 * 64 * 2, context: 2048, kvCacheBytes: 122880 * 2048, total: 41_303_293_952 }, // n_head_kv 8
  // sliding_window 4096 on every layer: the cache stops at 4096 tokens
  { file: "starcoder2-15b", shape: [40, 48, 4, 128], kvBytesPerToken: 40 * 2 * 4 * 128 * 2, context: 16384, kvCacheBytes: 81920 * 4096, total: 15_957_889_024 },
  { file: "olmo-7b-hf", shape: [32, 32, 32, 128], kvBytesPerToken: 32 * 2 * 32 * 128 * 2, context: 2048, kvCacheBytes: 524288 * 2048, total: 6_888_095_744 }, // parameter-free LayerNorms
  // GPT-J: 1 LayerNorm per block, MLP and LM-head biases: 28 × 201,355,264 + 2 × 206,438,400 + 50,400 + 8,192 (the card's 6,053,381,344 is 0.04% higher, unexplained)
  { file: "gpt-j-6b", shape: [28, 16, 16, 256], kvBytesPerToken: 28 * 2 * 16 * 256 * 2, context: 2048, kvCacheBytes: 458752 * 2048, total: 6_050_882_784 },
  { file: "gpt-neox-20b", shape: [44, 64, 64, 96], kvBytesPerToken: 44 * 2 * 64 * 96 * 2, context: 2048, kvCacheBytes: 1081344 * 2048, total: 20_554_567_680 },
  { file: "c4ai-command-r-v01", shape: [40, 64, 64, 128], kvBytesPerToken: 40 * 2 * 64 * 128 * 2, context: 8192, kvCacheBytes: 1310720 * 8192, total: 34_980_831_232 }, // one norm per parallel block, tied
  { file: "internlm2-7b", shape: [32, 32, 8, 128], kvBytesPerToken: 32 * 2 * 8 * 128 * 2, context: 32768, kvCacheBytes: 131072 * 32768, total: 7_737_708_544 },
  { file: "baichuan2-13b-base", shape: [40, 40, 40, 128], kvBytesPerToken: 40 * 2 * 40 * 128 * 2, context: 4096, kvCacheBytes: 819200 * 4096, total: 13_896_668_160 }, // model_max_length only
  // Llama-4 (text_config wrapper, untied at the top level): 3 of every 4 layers are chunked (8192 tokens), the NoPE
  // layers are global: 36 × 4096 × 8192 + 12 × 4096 × 131072. Scout: 16 routed + 1 shared expert on every layer
  // (card: 109B with the vision encoder, 17B active); Maverick: 128 experts on every 2nd layer (card: 400B, 17B active).
  { file: "llama-4-scout-17b-16e", shape: [48, 40, 8, 128], kvBytesPerToken: 48 * 2 * 8 * 128 * 2, context: 131072, kvCacheBytes: 36 * 4096 * 8192 + 12 * 4096 * 131072, total: 107_769_861_120, active: 17_172_894_720 },
  { file: "llama-4-maverick-17b-128e", shape: [48, 40, 8, 128], kvBytesPerToken: 48 * 2 * 8 * 128 * 2, context: 131072, kvCacheBytes: 36 * 4096 * 8192 + 12 * 4096 * 131072, total: 400_711_848_960, active: 17_184_691_200 },
  // ChatGLM: multi_query_group_num 2, kv_channels 128, add_qkv_bias
  { file: "chatglm3-6b", shape: [28, 32, 2, 128], kvBytesPerToken: 28 * 2 * 2 * 128 * 2, context: 8192, kvCacheBytes: 28672 * 8192, total: 6_243_584_000 },
];

for (const c of CASES) {
  test(`${c.file}: KV ${c.kvBytesPerToken} B/token, ${c.kvCacheBytes} B at ${c.context} tokens, ${c.total} parameters`, async () => {
    const spec = await loadSpec(join(dir, `${c.file}.config.json`));
    const r = plan(spec, { context: c.context, kvDtype: "f16", kvHeads: [] });
    assert.deepEqual([spec.numLayers, spec.numHeads, spec.numKvHeads, spec.headDim], c.shape, "layers, heads, KV heads, head dim");
    assert.equal(r.kvBytesPerToken, c.kvBytesPerToken, "kvBytesPerToken");
    assert.equal(r.kvCacheBytes, c.kvCacheBytes, "kvCacheBytes");
    const p = paramCounts(spec);
    assert.equal(p.total, c.total, `parameters: got ${p.total}, expected ${c.total}, error ${p.total - c.total}`);
    if (c.active !== undefined) assert.equal(Math.round(p.active), c.active, "active parameters");
  });
}

test("Llama-3.2-3B and Mistral-Nemo under tp: KV heads per GPU = 8 / tp, replicated past 8", async () => {
  const spec = await loadSpec(join(dir, "mistral-nemo-base-2407.config.json"));
  assert.equal(plan(spec, { tp: 4, gpus: 4 }).kvBytesPerTokenPerGpu, 40 * 2 * 2 * 128 * 2);
  assert.equal(plan(spec, { tp: 16, gpus: 16 }).kvBytesPerTokenPerGpu, 40 * 2 * 1 * 128 * 2);
});

test("state-space and hybrid models are refused with the field that marks them, never planned as all-attention", async () => {
  // Jamba-v0.1: only 4 of 32 layers have attention (attn_layer_period 8); planning 32 would be 8× too big.
  await assert.rejects(loadSpec(join(dir, "jamba-v0.1.config.json")), (e: Error) => e instanceof UserError && /attn_layer_period=8/.test(e.message) && /jamba-v0\.1/.test(e.message));
  await assert.rejects(loadSpec(join(dir, "mamba-2.8b-hf.config.json")), (e: Error) => e instanceof UserError && /model_type "mamba"/.test(e.message));
  const { specFromHfConfig } = await import("../src/config/hf.js");
  const qwenNext = { model_type: "llama", hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 128, vocab_size: 10, max_position_embeddings: 64 };
  assert.throws(() => specFromHfConfig({ ...qwenNext, layer_types: ["linear_attention", "full_attention"] }, "c.json"), /layer_types\[0\] is "linear_attention" \(a layer without a KV cache/);
  assert.throws(() => specFromHfConfig({ ...qwenNext, layers_block_type: ["mamba", "attention"] }, "c.json"), /layers_block_type/);
  const { specFromGgufMetadata } = await import("../src/config/gguf.js");
  assert.throws(() => specFromGgufMetadata({ "general.architecture": "mamba", "mamba.block_count": 64, "mamba.ssm.state_size": 16 }, "m.gguf"), /mamba\.ssm\.state_size/);
});

test("GGUF sliding patterns llama.cpp hard-codes: gpt-oss slides on even layers only (was: every layer capped at 128 tokens)", async () => {
  const { specFromGgufMetadata } = await import("../src/config/gguf.js");
  const meta = (arch: string) => ({
    "general.architecture": arch, [`${arch}.block_count`]: 24, [`${arch}.embedding_length`]: 2880, [`${arch}.feed_forward_length`]: 2880,
    [`${arch}.attention.head_count`]: 64, [`${arch}.attention.head_count_kv`]: 8, [`${arch}.attention.key_length`]: 64,
    [`${arch}.attention.sliding_window`]: 128, [`${arch}.context_length`]: 131072, [`${arch}.vocab_size`]: 201088,
  });
  const oss = specFromGgufMetadata(meta("gpt-oss"), "gpt-oss-20b.gguf");
  assert.deepEqual(oss.layers.map((l) => l.window).slice(0, 4), [128, null, 128, null]);
  // Same cache as the HF config's layer_types: 12 × 2048 × 128 + 12 × 2048 × 131072 bytes at 128K in f16.
  assert.equal(plan(oss, { context: 131072, kvHeads: [] }).kvCacheBytes, 12 * 2048 * 128 + 12 * 2048 * 131072);
  const cohere2 = specFromGgufMetadata(meta("cohere2"), "c.gguf");
  assert.deepEqual(cohere2.layers.map((l) => l.window).slice(0, 8), [128, 128, 128, null, 128, 128, 128, null]);
  const gemma3 = specFromGgufMetadata(meta("gemma3"), "g.gguf");
  assert.deepEqual(gemma3.layers.flatMap((l, i) => (l.window === null ? [i] : [])), [5, 11, 17, 23]);
});

test("mqa plan --model <folder> reads the qwen3 and phi3 fixture folders through the same spec as the runtime", async () => {
  const { runCli } = await import("./cli-helpers.js");
  const models = join(import.meta.dirname, "..", "tools", "fixtures", "models");
  // V 288, L 2, untied (embed + lm_head = 2·V·E), 2 bytes per parameter (bf16 weights by default).
  const cases = [
    // qwen3 E 40, H 6, K 2, D 12, F 56: per layer 2E norms + q 72·40 + k, v 24·40 + o 40·72 + q_norm, k_norm 12 + 3·56·40
    { name: "qwen3-gqa-qknorm", family: "qwen3", kvBytesPerToken: 2 * 2 * 2 * 12 * 2, params: 2 * 288 * 40 + 40 + 2 * (80 + 2880 + 960 + 960 + 2880 + 24 + 6720) },
    // phi3 E 48, H 6, K 2, D 8, F 40: per layer 2E norms + qkv (48 + 2·16)·48 + o 48·48 + gate_up 80·48 + down 48·40
    { name: "phi3-gqa-fused", family: "phi3", kvBytesPerToken: 2 * 2 * 2 * 8 * 2, params: 2 * 288 * 48 + 48 + 2 * (96 + 3840 + 2304 + 3840 + 1920) },
  ];
  for (const c of cases) {
    const r = await runCli(["plan", "--model", join(models, c.name), "--context", "64", "--json"]);
    assert.equal(r.code, 0, `${c.name}: ${r.err}`);
    const out = JSON.parse(r.out);
    assert.equal(out.model.family, c.family);
    assert.equal(out.kvBytesPerToken, c.kvBytesPerToken, `${c.name}: L × 2 × K × D × 2 bytes`);
    assert.equal(out.weightBytes, c.params * 2, `${c.name}: parameters × 2 bytes`);
  }
});
