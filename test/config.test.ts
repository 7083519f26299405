// Config → spec: every naming quirk, real config.json fixtures, GGUF metadata, and bad input.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { mkdtempSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { specFromHfConfig } from "../src/config/hf.js";
import { specFromGgufMetadata } from "../src/config/gguf.js";
import { parseRopeScaling } from "../src/config/rope.js";
import { loadSpec } from "../src/formats/model-file.js";
import { presetSpec, listPresets, closestNames, editDistance } from "../src/config/presets.js";
import { withKvHeads, parseKvHeads } from "../src/config/variant.js";
import { UserError } from "../src/errors.js";

const FIX = join(import.meta.dirname, "fixtures", "configs");
const llama = { model_type: "llama", hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, vocab_size: 32000, max_position_embeddings: 4096 };

/** Asserts a UserError whose message contains every fragment (and no NaN). */
function throwsUser(fn: () => unknown, ...fragments: string[]) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected UserError, got ${String(e)}`);
    for (const f of fragments) assert.ok(e.message.includes(f), `message "${e.message}" lacks "${f}"`);
    assert.ok(!e.message.includes("NaN"), `message mentions NaN: ${e.message}`);
    assert.ok(!e.message.includes("\n"), "message is one line");
    return true;
  });
}
async function rejectsUser(p: Promise<unknown>, ...fragments: string[]) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected UserError, got ${String(e)}`);
    for (const f of fragments) assert.ok(e.message.includes(f), `message "${e.message}" lacks "${f}"`);
    return true;
  });
}

test("num_key_value_heads absent means MHA; present means GQA", () => {
  assert.equal(specFromHfConfig(llama, "c.json").numKvHeads, 32);
  const gqa = specFromHfConfig({ ...llama, num_key_value_heads: 8 }, "c.json");
  assert.equal(gqa.numKvHeads, 8);
  assert.ok(gqa.layers.every((l) => l.numKvHeads === 8 && l.headDim === 128 && l.window === null));
  assert.equal(specFromHfConfig({ ...llama, num_key_value_heads: null }, "c.json").numKvHeads, 32);
});

test("GPT-2 names: n_head/n_layer/n_embd/n_positions, n_inner null = 4 × n_embd, learned positions, tied", async () => {
  const s = await loadSpec(join(FIX, "gpt2.config.json"));
  assert.deepEqual([s.numLayers, s.numHeads, s.numKvHeads, s.headDim, s.hiddenSize, s.maxPositions], [12, 12, 12, 64, 768, 1024]);
  assert.equal(s.mlp.intermediateSize, 3072);
  assert.equal(s.mlp.kind, "gelu");
  assert.equal(s.positions, "learned");
  assert.equal(s.norm, "layernorm");
  assert.ok(s.tieWordEmbeddings && s.qkvBias && s.attnOutBias && s.mlpBias);
});

test("Falcon-7B: multi_query on the old decoder = 1 KV head, max positions default 2048, one norm per block", async () => {
  const s = await loadSpec(join(FIX, "falcon-7b.config.json"));
  assert.deepEqual([s.numHeads, s.numKvHeads, s.headDim, s.maxPositions], [71, 1, 64, 2048]);
  assert.equal(s.mlp.intermediateSize, 4 * 4544);
  assert.equal(s.normsPerLayer, 1);
  assert.equal(s.tieWordEmbeddings, true);
  assert.ok(s.notes?.some((n) => n.includes("2048")));
});

test("Falcon-40B: new_decoder_architecture uses num_kv_heads even with multi_query true", async () => {
  const s = await loadSpec(join(FIX, "falcon-40b.config.json"));
  assert.deepEqual([s.numHeads, s.numKvHeads, s.headDim, s.normsPerLayer], [128, 8, 64, 2]);
  const old = specFromHfConfig({ model_type: "falcon", hidden_size: 256, num_hidden_layers: 2, num_attention_heads: 4, vocab_size: 10, multi_query: false }, "f.json");
  assert.equal(old.numKvHeads, 4);
});

test("gpt_bigcode: multi_query (default true) is MQA; StarCoder's null max_sequence_length is skipped", async () => {
  const s = await loadSpec(join(FIX, "starcoder.config.json"));
  assert.deepEqual([s.numLayers, s.numHeads, s.numKvHeads, s.headDim, s.maxPositions, s.mlp.intermediateSize], [40, 48, 1, 128, 8192, 24576]);
  const noFlag = specFromHfConfig({ model_type: "gpt_bigcode", n_embd: 256, n_head: 4, n_layer: 2, vocab_size: 10, n_positions: 64 }, "b.json");
  assert.equal(noFlag.numKvHeads, 1);
  const mha = specFromHfConfig({ model_type: "gpt_bigcode", n_embd: 256, n_head: 4, n_layer: 2, vocab_size: 10, n_positions: 64, multi_query: false }, "b.json");
  assert.equal(mha.numKvHeads, 4);
});

test("num_kv_heads alias and explicit head_dim (Gemma: 256 while hidden/heads = 192)", () => {
  assert.equal(specFromHfConfig({ ...llama, num_kv_heads: 4 }, "c").numKvHeads, 4);
  const g = presetSpec("gemma-7b");
  assert.equal(g.headDim, 256);
  assert.equal(g.hiddenSize / g.numHeads, 192);
  assert.equal(g.mlp.kind, "geglu");
  assert.equal(g.tieWordEmbeddings, true);
});

test("Qwen2: use_sliding_window false means the configured window is unused; true slides from max_window_layers", async () => {
  const s = await loadSpec(join(FIX, "qwen2.5-0.5b.config.json"));
  assert.ok(s.layers.every((l) => l.window === null));
  assert.ok(s.qkvBias && !s.attnOutBias);
  assert.equal(s.tieWordEmbeddings, true);
  const on = specFromHfConfig({ model_type: "qwen2", hidden_size: 64, intermediate_size: 128, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 10, max_position_embeddings: 100, sliding_window: 16, use_sliding_window: true, max_window_layers: 2 }, "q");
  assert.deepEqual(on.layers.map((l) => l.window), [null, null, 16, 16]);
});

test("Mistral: sliding_window on every layer", async () => {
  const s = await loadSpec(join(FIX, "mistral-7b-v0.1.config.json"));
  assert.ok(s.layers.every((l) => l.window === 4096));
  assert.equal(s.numKvHeads, 8);
});

test("Gemma-2 alternates: even layers slide over 4096, odd layers are global; layer_types overrides", async () => {
  const s = await loadSpec(join(FIX, "gemma-2-9b.config.json"));
  assert.equal(s.layers.length, 42);
  s.layers.forEach((l, i) => assert.equal(l.window, i % 2 === 0 ? 4096 : null, `layer ${i}`));
  assert.equal(s.queryPreAttnScalar, 256);
  assert.equal(s.attnLogitSoftcapping, 50);
  assert.equal(s.finalLogitSoftcapping, 30);
  assert.equal(s.normsPerLayer, 4);
  const lt = specFromHfConfig({ ...llama, num_hidden_layers: 3, sliding_window: 128, layer_types: ["full_attention", "sliding_attention", "sliding_attention"] }, "c");
  assert.deepEqual(lt.layers.map((l) => l.window), [null, 128, 128]);
  const g3 = specFromHfConfig({ model_type: "gemma3_text", hidden_size: 64, intermediate_size: 128, num_hidden_layers: 12, num_attention_heads: 4, num_key_value_heads: 1, head_dim: 32, vocab_size: 10, max_position_embeddings: 100, sliding_window: 512, sliding_window_pattern: 6 }, "g3");
  assert.deepEqual(g3.layers.map((l) => l.window === null), [false, false, false, false, false, true, false, false, false, false, false, true]);
});

test("DeepSeek-V2-Lite: MLA latent, MoE experts, first dense layer, no q_lora", async () => {
  const s = await loadSpec(join(FIX, "deepseek-v2-lite.config.json"));
  assert.deepEqual(s.mla, { kvLoraRank: 512, qkRopeHeadDim: 64, qkNopeHeadDim: 128, vHeadDim: 128, qLoraRank: null });
  assert.deepEqual(s.mlp, { kind: "swiglu", intermediateSize: 10944, numExperts: 64, expertsPerToken: 6, sharedExperts: 2, moeIntermediateSize: 1408, firstDenseLayers: 1 });
  assert.equal(s.headDim, 192);
  // yarn is parsed (the planner reads the model) but marked for the runtime to refuse, in the config's words.
  assert.deepEqual(s.ropeScaling && { type: s.ropeScaling.type, name: s.ropeScaling.type === "unsupported" && s.ropeScaling.name }, { type: "unsupported", name: "yarn" });
});

test("Mixtral: num_local_experts / num_experts_per_tok; Llama-3.1 rope_theta and rope_scaling", async () => {
  const m = presetSpec("mixtral-8x7b");
  assert.equal(m.mlp.numExperts, 8);
  assert.equal(m.mlp.expertsPerToken, 2);
  assert.ok(m.layers.every((l) => l.window === null), "sliding_window null = global");
  const l = await loadSpec(join(FIX, "llama-3.1-8b.config.json"));
  assert.equal(l.ropeTheta, 500000);
  assert.deepEqual(l.ropeScaling, { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 });
  assert.equal(l.maxPositions, 131072);
  assert.equal(l.tieWordEmbeddings, false);
});

test("text_config wrappers and transformers v5 rope_parameters", () => {
  const s = specFromHfConfig({ model_type: "llava", text_config: { ...llama, num_key_value_heads: 8 } }, "w.json");
  assert.equal(s.numKvHeads, 8);
  const r = specFromHfConfig({ ...llama, rope_parameters: { rope_theta: 1e6, rope_type: "default" } }, "r.json");
  assert.equal(r.ropeTheta, 1e6);
  assert.equal(r.ropeScaling, null);
});

test("bad configs: missing, non-integer, negative, contradictory fields and indivisible heads name the field", () => {
  const { num_hidden_layers: _drop, ...noLayers } = llama;
  throwsUser(() => specFromHfConfig(noLayers, "cfg.json"), "cfg.json", "num_hidden_layers");
  throwsUser(() => specFromHfConfig({ ...llama, hidden_size: 4096.5 }, "cfg.json"), "hidden_size", "4096.5", "integer");
  throwsUser(() => specFromHfConfig({ ...llama, num_attention_heads: -32 }, "cfg.json"), "num_attention_heads", "-32");
  throwsUser(() => specFromHfConfig({ ...llama, vocab_size: "32000" }, "cfg.json"), "vocab_size");
  throwsUser(() => specFromHfConfig({ ...llama, num_key_value_heads: 6 }, "cfg.json"), "not divisible", "6");
  throwsUser(() => specFromHfConfig({ ...llama, n_head: 16 }, "cfg.json"), "contradictory", "num_attention_heads", "n_head");
  throwsUser(() => specFromHfConfig({ ...llama, hidden_size: 4000, num_attention_heads: 48 }, "cfg.json"), "head_dim");
  throwsUser(() => specFromHfConfig({ ...llama, multi_query: true, num_key_value_heads: 8 }, "cfg.json"), "multi_query");
  throwsUser(() => specFromHfConfig({ ...llama, num_hidden_layers: 2, sliding_window: 8, layer_types: ["full_attention"] }, "cfg.json"), "layer_types", "2");
  throwsUser(() => specFromHfConfig({ ...llama, sliding_window: 0 }, "cfg.json"), "sliding_window");
  throwsUser(() => specFromHfConfig([1, 2], "cfg.json"), "JSON object");
  throwsUser(() => specFromHfConfig({ ...llama, num_local_experts: 4, num_experts_per_tok: 8 }, "cfg.json"), "num_experts_per_tok");
});

test("loadSpec: folder with config.json, broken JSON, missing file, unknown preset with suggestions", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mqa-spec-"));
  mkdirSync(join(dir, "model"));
  writeFileSync(join(dir, "model", "config.json"), JSON.stringify({ ...llama, num_key_value_heads: 4 }));
  assert.equal((await loadSpec(join(dir, "model"))).numKvHeads, 4);
  writeFileSync(join(dir, "broken.json"), "{ \"hidden_size\": 4096, ");
  await rejectsUser(loadSpec(join(dir, "broken.json")), "broken.json", "not valid JSON");
  await rejectsUser(loadSpec(join(dir, "nope.json")), "no such file");
  await rejectsUser(loadSpec("lama-2-7b"), "unknown model preset", "llama-2-7b");
  await rejectsUser(loadSpec(join(dir, "empty-folder-missing")), "no such");
});

test("presets: every preset parses; names, aliases and HF ids resolve; edit distance suggestions", () => {
  assert.ok(listPresets().length >= 26);
  for (const p of listPresets()) {
    const s = presetSpec(p.name);
    assert.ok(s.layers.length === s.numLayers && s.numHeads % s.numKvHeads === 0, p.name);
    assert.ok(p.source.length > 10, `${p.name} has a source`);
  }
  assert.equal(presetSpec("meta-llama/Llama-2-70b-hf").numKvHeads, 8);
  assert.equal(presetSpec("Mistral-7B-v0.1").numKvHeads, 8);
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(closestNames("llama-3-8b", listPresets().map((p) => p.name), 1)[0], "llama-3.1-8b");
});

test("GGUF metadata: llama keys, per-layer head_count_kv, key_length override, gemma2 windows, tied output", () => {
  const meta = {
    "general.architecture": "llama", "general.name": "tiny",
    "llama.block_count": 4, "llama.embedding_length": 256, "llama.feed_forward_length": 512,
    "llama.attention.head_count": 8, "llama.attention.head_count_kv": 2, "llama.context_length": 2048,
    "llama.attention.layer_norm_rms_epsilon": 1e-5, "llama.rope.freq_base": 10000, "llama.vocab_size": 1000,
  };
  const s = specFromGgufMetadata(meta, "t.gguf", ["token_embd.weight", "output.weight"]);
  assert.deepEqual([s.numLayers, s.numHeads, s.numKvHeads, s.headDim, s.maxPositions, s.tieWordEmbeddings], [4, 8, 2, 32, 2048, false]);
  const arr = specFromGgufMetadata({ ...meta, "llama.attention.head_count_kv": [1, 2, 4, 8], "llama.attention.key_length": 64 }, "t.gguf", ["token_embd.weight"]);
  assert.deepEqual(arr.layers.map((l) => l.numKvHeads), [1, 2, 4, 8]);
  assert.equal(arr.headDim, 64);
  assert.equal(arr.tieWordEmbeddings, true);
  const g = specFromGgufMetadata({ "general.architecture": "gemma2", "gemma2.block_count": 4, "gemma2.embedding_length": 256, "gemma2.feed_forward_length": 512, "gemma2.attention.head_count": 8, "gemma2.attention.head_count_kv": 4, "gemma2.attention.key_length": 64, "gemma2.attention.sliding_window": 128, "gemma2.context_length": 8192, "tokenizer.ggml.tokens": ["a", "b"] }, "g.gguf");
  assert.deepEqual(g.layers.map((l) => l.window), [128, null, 128, null]);
  assert.equal(g.vocabSize, 2);
  throwsUser(() => specFromGgufMetadata({ ...meta, "llama.attention.head_count_kv": 3 }, "t.gguf"), "not divisible");
  throwsUser(() => specFromGgufMetadata({ "general.architecture": "llama" }, "t.gguf"), "llama.block_count");
});

test("what-if variants: full/mqa/divisors; MLA becomes per-head K (192) + V (128) values", () => {
  const s = presetSpec("llama-2-70b");
  assert.equal(parseKvHeads("full", 64), 64);
  assert.equal(parseKvHeads("mqa", 64), 1);
  throwsUser(() => parseKvHeads("3", 64), "does not divide", "1, 2, 4, 8, 16, 32, 64");
  throwsUser(() => parseKvHeads("-1", 64), "not a positive integer");
  assert.equal(withKvHeads(s, 1).layers[0].numKvHeads, 1);
  const mla = withKvHeads(presetSpec("deepseek-v2-lite"), 16);
  assert.equal(mla.mla, null);
  assert.equal(2 * mla.layers[0].headDim, 192 + 128);
});

/** A minimal GGUF v3 file: header + metadata, no tensors (enough for @huggingface/gguf's reader). */
function writeGguf(path: string, kv: [string, string | number | { f32: number }][]) {
  const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
  const u64 = (n: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b; };
  const str = (s: string) => { const b = Buffer.from(s, "utf8"); return Buffer.concat([u64(b.length), b]); };
  const parts = [Buffer.from("GGUF"), u32(3), u64(0), u64(kv.length)];
  for (const [k, v] of kv) {
    parts.push(str(k));
    if (typeof v === "string") parts.push(u32(8), str(v)); // GGUF_TYPE_STRING
    else if (typeof v === "number") parts.push(u32(4), u32(v)); // GGUF_TYPE_UINT32
    else { const b = Buffer.alloc(4); b.writeFloatLE(v.f32); parts.push(u32(6), b); } // GGUF_TYPE_FLOAT32
  }
  writeFileSync(path, Buffer.concat(parts));
}

test("loadSpec reads a .gguf file's metadata (no tensors: tied output assumed from the missing output.weight)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mqa-gguf-"));
  const path = join(dir, "tiny.gguf");
  writeGguf(path, [["general.architecture", "llama"], ["llama.block_count", 4], ["llama.embedding_length", 256], ["llama.feed_forward_length", 512], ["llama.attention.head_count", 8], ["llama.attention.head_count_kv", 2], ["llama.context_length", 2048], ["llama.vocab_size", 1000], ["llama.attention.layer_norm_rms_epsilon", { f32: 1e-5 }]]);
  const s = await loadSpec(path);
  assert.deepEqual([s.numLayers, s.numHeads, s.numKvHeads, s.headDim, s.vocabSize, s.maxPositions], [4, 8, 2, 32, 1000, 2048]);
  writeFileSync(join(dir, "junk.gguf"), "not a gguf");
  await rejectsUser(loadSpec(join(dir, "junk.gguf")), "junk.gguf", "GGUF");
});

test("Gemma-3 multimodal wrapper: text_config with class defaults (8 heads, 4 KV, head_dim 256, every 6th layer global)", () => {
  const s = specFromHfConfig({ model_type: "gemma3", text_config: { hidden_size: 2560, intermediate_size: 10240, model_type: "gemma3_text", num_hidden_layers: 34, rope_scaling: { factor: 8.0, rope_type: "linear" }, sliding_window: 1024 }, vision_config: {} }, "gemma-3-4b.json");
  assert.deepEqual([s.numHeads, s.numKvHeads, s.headDim, s.vocabSize], [8, 4, 256, 262208]);
  assert.deepEqual(s.layers.flatMap((l, i) => (l.window === null ? [i] : [])), [5, 11, 17, 23, 29]);
  assert.ok(s.notes?.some((n) => n.includes("num_attention_heads")));
});

test("Falcon variants: multi_query false uses num_kv_heads (default = heads); old RefinedWeb (40B) reads n_head_kv", () => {
  const base = { model_type: "falcon", hidden_size: 256, num_hidden_layers: 2, num_attention_heads: 8, vocab_size: 10 };
  assert.equal(specFromHfConfig({ ...base, multi_query: false, num_kv_heads: 2 }, "f").numKvHeads, 2);
  assert.equal(specFromHfConfig({ ...base }, "f").numKvHeads, 1, "FalconConfig defaults multi_query to true");
  const rw = specFromHfConfig({ model_type: "RefinedWeb", hidden_size: 8192, n_layer: 60, n_head: 128, n_head_kv: 8, vocab_size: 65024, parallel_attn: true }, "rw.json");
  assert.deepEqual([rw.numKvHeads, rw.normsPerLayer, rw.norm], [8, 2, "layernorm"]);
  const rw7 = specFromHfConfig({ model_type: "RefinedWebModel", hidden_size: 4544, n_layer: 32, n_head: 71, multi_query: true, parallel_attn: true, vocab_size: 65024 }, "rw7.json");
  assert.deepEqual([rw7.numKvHeads, rw7.normsPerLayer], [1, 1]);
});

test("Phi-3: the config's sliding_window 2047 is not applied (engines run full attention), with a note", () => {
  const s = presetSpec("phi-3-mini");
  assert.ok(s.layers.every((l) => l.window === null));
  assert.ok(s.notes?.some((n) => n.includes("2047")));
  assert.deepEqual([s.numHeads, s.numKvHeads, s.headDim], [32, 32, 96]);
});

test("loadSpec: a BOM-prefixed config.json parses; a folder without config.json or .gguf is a clear error", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mqa-bom-"));
  writeFileSync(join(dir, "bom.json"), "\uFEFF" + JSON.stringify(llama));
  assert.equal((await loadSpec(join(dir, "bom.json"))).numLayers, 32);
  mkdirSync(join(dir, "empty"));
  await rejectsUser(loadSpec(join(dir, "empty")), "no config.json");
});

test("aliases that may legitimately differ take the first (activation, max positions); structural ones must agree", () => {
  const s = specFromHfConfig({ ...llama, model_type: "gemma", head_dim: 128, hidden_act: "gelu", hidden_activation: "gelu_pytorch_tanh", seq_length: 2048 }, "c");
  assert.equal(s.activation, "gelu_pytorch_tanh");
  assert.equal(s.maxPositions, 4096);
  throwsUser(() => specFromHfConfig({ ...llama, n_layer: 30 }, "c"), "contradictory", "num_hidden_layers=32", "n_layer=30");
});

test("rope_scaling is parsed once into a typed RopeScaling (config/rope.ts); bad or unknown ones are kept as unsupported with the problem", () => {
  assert.equal(parseRopeScaling({ rope_type: "default" }), null);
  assert.deepEqual(parseRopeScaling({ type: "linear", factor: 8 }), { type: "linear", factor: 8 });
  const partial = parseRopeScaling({ rope_type: "llama3", factor: 8 });
  assert.equal(partial?.type, "unsupported");
  assert.match((partial as { problem: string }).problem, /rope_scaling\.original_max_position_embeddings is missing; expected a positive number for rope_type "llama3"/);
  const inverted = parseRopeScaling({ rope_type: "llama3", factor: 8, original_max_position_embeddings: 8192, low_freq_factor: 4, high_freq_factor: 1 });
  assert.match((inverted as { problem: string }).problem, /high_freq_factor 1 must exceed low_freq_factor 4/);
  const longrope = parseRopeScaling({ type: "longrope", short_factor: [1], long_factor: [2] });
  assert.match((longrope as { problem: string }).problem, /^rope_scaling\.type "longrope" is not supported \(Phi-3's long-context LongRoPE/);
  // transformers v5 rope_parameters carry the scaling beside rope_theta.
  const v5 = specFromHfConfig({ ...llama, rope_parameters: { rope_theta: 5e5, rope_type: "llama3", factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } }, "v5.json");
  assert.deepEqual([v5.ropeTheta, v5.ropeScaling], [5e5, { type: "llama3", factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 }]);
});
