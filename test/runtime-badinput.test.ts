// The model-runtime contracts from the outside: `mqa generate / info / export-gguf` on folders whose
// config.json is a published Hugging Face config (every extra field, eos lists, rope_scaling objects,
// nulls) over the PyTorch fixture weights, and on broken inputs. Every bad input must be exit code 2
// with one "mqa: ..." line naming the file / tensor / field (no stack trace, "undefined" or NaN).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "./cli-helpers.js";
import { writeGguf, type GgufValue } from "../src/formats/gguf.js";
import { loadTokenizer, tokenizerFromJson } from "../src/formats/tokenizer.js";
import { MODELS_DIR, expected } from "./models-helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "mqa-runtime-bad-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const CONFIGS = join(import.meta.dirname, "fixtures", "configs");
const realConfig = (name: string) => JSON.parse(readFileSync(join(CONFIGS, `${name}.config.json`), "utf8")) as Record<string, unknown>;

type Json = Record<string, unknown>;
/** A copy of a fixture folder with its config.json replaced (or edited). */
function folder(name: string, fixture: string, config: Json | ((c: Json) => void)): string {
  const dir = join(tmp, name);
  cpSync(join(MODELS_DIR, fixture), dir, { recursive: true });
  const path = join(dir, "config.json");
  if (typeof config === "function") {
    const c = JSON.parse(readFileSync(path, "utf8"));
    config(c);
    writeFileSync(path, JSON.stringify(c));
  } else writeFileSync(path, JSON.stringify(config));
  return dir;
}

const run = (args: string[]) => runCli(args[0] === "generate" ? [...args, "--backend", "reference"] : args);

async function expectBad(args: string[], ...parts: (string | RegExp)[]): Promise<void> {
  const r = await run(args);
  const what = args.join(" ").slice(0, 200);
  assert.equal(r.code, 2, `${what}: exit ${r.code}, stderr ${r.err}`);
  assert.equal(r.err.split("\n").length, 1, `${what}: one line, got ${r.err}`);
  assert.match(r.err, /^mqa: /, what);
  assert.doesNotMatch(r.err, /undefined|NaN|\bat \/|\[object/, `${what}: ${r.err}`);
  for (const p of parts) assert.ok(typeof p === "string" ? r.err.includes(p) : p.test(r.err), `${what}: "${r.err}" lacks ${p}`);
}

async function greedyOf(dir: string, prompt: number[], n: number): Promise<{ tokens: number[]; finishReason: string; j: Json }> {
  const r = await run(["generate", dir, "--prompt-tokens", prompt.join(","), "--max-tokens", String(n), "--json"]);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  return { tokens: j.tokens, finishReason: j.finishReason, j };
}

// Published configs shrunk to the fixtures' sizes; the field sets (and their oddities) are the real ones.
const sizes = { bos_token_id: 286, vocab_size: 288, max_position_embeddings: 64, rope_theta: 10000.0, rms_norm_eps: 1e-5 };
const REAL: [string, string, () => Json][] = [
  ["llama-3.1 (rope_scaling llama3, eos list, untied, sharded)", "llama3-gqa-sharded", () => {
    const c = realConfig("llama-3.1-8b");
    return { ...c, ...sizes, hidden_size: 64, intermediate_size: 128, num_attention_heads: 8, num_key_value_heads: 2, num_hidden_layers: 3, eos_token_id: [287, 285],
      rope_scaling: { ...(c.rope_scaling as Json), original_max_position_embeddings: 16 }, torch_dtype: "float32" };
  }],
  ["llama-3.2 (tied, explicit head_dim, f16)", "llama-gqa-f16", () => ({ ...realConfig("llama-3.2-1b"), ...sizes, hidden_size: 64, intermediate_size: 128, num_attention_heads: 4,
    num_key_value_heads: 2, num_hidden_layers: 2, head_dim: 16, eos_token_id: [287], rope_scaling: null, torch_dtype: "float16" })],
  ["llama MHA (null fields)", "llama-mha-f32", () => ({ ...realConfig("llama-3.1-8b"), ...sizes, hidden_size: 64, intermediate_size: 128, num_attention_heads: 4, num_key_value_heads: 4,
    num_hidden_layers: 2, eos_token_id: 287, rope_scaling: null, pad_token_id: null, torch_dtype: "float32" })],
  ["mistral (sliding_window)", "mistral-gqa-window", () => ({ ...realConfig("mistral-7b-v0.1"), ...sizes, hidden_size: 32, intermediate_size: 64, num_attention_heads: 4,
    num_key_value_heads: 2, num_hidden_layers: 2, eos_token_id: 287, sliding_window: 5, torch_dtype: "float32" })],
  ["qwen2.5 (biases, use_sliding_window false)", "qwen2-gqa-bias", () => ({ ...realConfig("qwen2.5-0.5b"), ...sizes, hidden_size: 48, intermediate_size: 96, num_attention_heads: 6,
    num_key_value_heads: 2, num_hidden_layers: 2, max_window_layers: 2, sliding_window: 64, eos_token_id: 287, torch_dtype: "float32" })],
  // google/gemma-2b's config.json (hidden_act "gelu", no hidden_activation, rope_scaling null, pad_token_id 0).
  ["gemma (MQA, hidden_act gelu)", "gemma-mqa", () => ({ architectures: ["GemmaForCausalLM"], attention_bias: false, attention_dropout: 0.0, bos_token_id: 286, eos_token_id: 287, head_dim: 24,
    hidden_act: "gelu", hidden_size: 32, initializer_range: 0.02, intermediate_size: 64, max_position_embeddings: 64, model_type: "gemma", num_attention_heads: 4, num_hidden_layers: 2,
    num_key_value_heads: 1, pad_token_id: 0, rms_norm_eps: 1e-5, rope_scaling: null, rope_theta: 10000.0, torch_dtype: "float32", transformers_version: "4.38.0.dev0", use_cache: true, vocab_size: 288 })],
  ["gpt2", "gpt2-mha", () => ({ ...realConfig("gpt2"), n_ctx: 64, n_embd: 48, n_head: 4, n_layer: 2, n_positions: 64, vocab_size: 288, bos_token_id: 286, eos_token_id: 287 })],
  ["gpt_bigcode multi_query true (starcoder fields, n_inner null)", "gpt-bigcode-mqa", () => ({ ...realConfig("starcoder"), n_embd: 48, n_head: 4, n_inner: null, n_layer: 2, n_positions: 64,
    vocab_size: 288, bos_token_id: 286, eos_token_id: 287, torch_dtype: "float16" })],
  ["gpt_bigcode multi_query false", "gpt-bigcode-mha", () => ({ ...realConfig("starcoder"), n_embd: 32, n_head: 2, n_inner: null, n_layer: 2, n_positions: 64, multi_query: false,
    vocab_size: 288, bos_token_id: 286, eos_token_id: 287 })],
];

test("published config.json field sets over the fixture weights: generate --json gives PyTorch's greedy tokens; info agrees", async () => {
  for (const [what, fixture, config] of REAL) {
    const dir = folder(fixture + "-real", fixture, config());
    const { exp } = expected(fixture);
    const { tokens, j } = await greedyOf(dir, exp.prompt, exp.greedy.length);
    assert.deepEqual(tokens, exp.greedy.slice(0, tokens.length), `${what}: greedy tokens`);
    assert.ok(tokens.length === exp.greedy.length || exp.greedy[tokens.length] === 287 || exp.greedy[tokens.length] === 285, `${what}: stopped early without an eos`);
    for (const k of ["prefillTokensPerSecond", "decodeTokensPerSecond", "kvCacheBytes"]) assert.ok(typeof j[k] === "number" && Number.isFinite(j[k] as number), `${what}: ${k} = ${j[k]}`);
    const info = await run(["info", dir, "--json"]);
    assert.equal(info.code, 0, `${what}: ${info.err}`);
    assert.ok(JSON.parse(info.out).parameters > 0);
  }
});

test("config.json mistakes: wrong types, divisibility, unknown or missing model_type, rope_scaling, activation, eos ids", async () => {
  const base = "llama-mha-f32";
  const cases: [string, (c: Json) => void, ...string[]][] = [
    ["heads-str", (c) => (c.num_attention_heads = "8"), "num_attention_heads", `"8"`, "expected an integer"],
    ["kv-nodiv", (c) => (c.num_key_value_heads = 3), "not divisible", "3"],
    ["hidden-nodiv", (c) => (c.hidden_size = 66), "hidden_size 66 is not divisible"],
    ["type", (c) => (c.model_type = "llamafoo"), `model_type "llamafoo" is not supported`],
    ["no-type", (c) => delete c.model_type, "missing field model_type"],
    ["rope-str", (c) => (c.rope_scaling = "llama3"), "rope_scaling", "expected an object"],
    ["rope-llama3-partial", (c) => (c.rope_scaling = { rope_type: "llama3" }), "rope_scaling.factor is missing", "llama3"],
    ["rope-yarn", (c) => (c.rope_scaling = { rope_type: "yarn", factor: 4 }), `rope_scaling.rope_type "yarn" is not supported`],
    ["act", (c) => (c.hidden_act = "relu"), `activation "relu" is not supported`, "silu"],
    ["mlp-bias", (c) => (c.mlp_bias = true), "mlp_bias true is not supported"],
    ["eos-str", (c) => (c.eos_token_id = "x"), "config.json: field eos_token_id", "expected a token id"],
    ["eos-range", (c) => (c.eos_token_id = [287, 99999]), "eos_token_id 99999 is outside the vocabulary [0, 288)"],
  ];
  for (const [name, edit, ...parts] of cases) {
    const dir = folder(`cfg-${name}`, base, edit);
    const generateOnly = name.startsWith("eos");
    await expectBad(["generate", dir, "--prompt", "hi"], ...parts);
    if (!generateOnly) await expectBad(["info", dir], ...parts);
  }
  const bigcode = folder("cfg-bigcode-kv2", "gpt-bigcode-mqa", (c) => Object.assign(c, { multi_query: false, num_key_value_heads: 2 }));
  await expectBad(["generate", bigcode, "--prompt", "hi"], "2 KV heads", "multi_query");
});

test("checkpoint mistakes: info and export-gguf check every tensor like generate does; export never overwrites its input", async () => {
  const vocab = folder("ck-vocab", "llama-mha-f32", (c) => (c.vocab_size = 300));
  const layers = folder("ck-layers", "llama-mha-f32", (c) => (c.num_hidden_layers = 3));
  for (const cmd of [["generate"], ["info"], ["export-gguf"]]) {
    const out = cmd[0] === "export-gguf" ? [join(tmp, "ck.gguf")] : cmd[0] === "generate" ? ["--prompt", "hi"] : [];
    await expectBad([...cmd, vocab, ...out], `"model.embed_tokens.weight" has shape [288, 64]; expected [300, 64]`);
    await expectBad([...cmd, layers, ...out], `missing tensor "model.layers.2.input_layernorm.weight"`);
  }
  assert.ok(!existsSync(join(tmp, "ck.gguf")), "a failed export leaves no file");
  const dir = folder("ck-self", "llama-mha-f32", () => {});
  const weights = join(dir, "model.safetensors");
  const before = readFileSync(weights);
  await expectBad(["export-gguf", dir, weights], "is one of the input files");
  assert.ok(readFileSync(weights).equals(before), "the input is untouched");
  await expectBad(["export-gguf", dir, join(tmp, "no", "such", "dir.gguf")], "cannot write", "existing folder");
  await expectBad(["export-gguf", dir, tmp], "is a folder");
  assert.deepEqual(readdirSync(tmp).filter((f) => f.includes(".partial-")), [], "no partial files left");
  await expectBad(["export-gguf", join(tmp, "nope"), join(tmp, "n.gguf")], "nope: no such file or folder");
  await expectBad(["info", weights], "expected a model folder (config.json + safetensors) or a .gguf file");
  // Broken tokenizer files: one line naming the file, for generate and export-gguf alike.
  const tok = folder("ck-tok", "llama-mha-f32", () => {});
  writeFileSync(join(tok, "tokenizer.json"), "{}");
  await expectBad(["generate", tok, "--prompt", "hi"], "tokenizer.json", `no "model" object`);
  await expectBad(["export-gguf", tok, join(tmp, "t.gguf")], "tokenizer.json", "no model.type");
  writeFileSync(join(tok, "tokenizer.json"), "{ broken");
  await expectBad(["export-gguf", tok, join(tmp, "t.gguf")], "tokenizer.json: not valid JSON");
  const cfg = folder("ck-tokcfg", "llama-mha-f32", () => {});
  writeFileSync(join(cfg, "tokenizer_config.json"), "[1]");
  await expectBad(["export-gguf", cfg, join(tmp, "t.gguf")], "tokenizer_config.json: expected a JSON object");
});

/** A GGUF with only metadata (the spec is read, and rejected, before any tensor). */
function ggufMeta(name: string, meta: [string, GgufValue][]): string {
  const path = join(tmp, name);
  writeGguf(path, meta, []);
  return path;
}

test("GGUF mistakes: version, magic, empty, truncated header, unaligned data, non-numeric floats, missing architecture", async () => {
  const src = folder("gg-src", "llama-mha-f32", () => {});
  const good = join(tmp, "good.gguf");
  assert.equal((await run(["export-gguf", src, good, "--dtype", "f32"])).code, 0);
  const bytes = readFileSync(good);
  const variant = (name: string, edit: (b: Buffer) => Buffer) => {
    const path = join(tmp, name);
    writeFileSync(path, edit(Buffer.from(bytes)));
    return path;
  };
  const v1 = variant("v1.gguf", (b) => (b.writeUInt32LE(1, 4), b));
  const magic = variant("magic.gguf", (b) => (b.write("GGUX", 0, "latin1"), b));
  const empty = variant("empty.gguf", () => Buffer.alloc(0));
  const cut = variant("cut.gguf", (b) => b.subarray(0, 2000));
  const unaligned = variant("unaligned.gguf", (b) => {
    const name = Buffer.from("token_embd.weight");
    const at = b.indexOf(name) + name.length;
    b.writeBigUInt64LE(3n, at + 4 + 8 * b.readUInt32LE(at) + 4); // n_dims, ne[], type, then the data offset
    return b;
  });
  for (const cmd of ["generate", "info"]) {
    const extra = cmd === "generate" ? ["--prompt", "hi"] : [];
    await expectBad([cmd, v1, ...extra], "GGUF version 1 is not supported; expected version 2 or 3");
    await expectBad([cmd, magic, ...extra], `not a GGUF file (starts with "GGUX"`);
    await expectBad([cmd, empty, ...extra], "0 bytes is too short for a GGUF file");
    await expectBad([cmd, cut, ...extra], "truncated GGUF file (2000 bytes");
    await expectBad([cmd, unaligned, ...extra], `"token_embd.weight" data offset 3 is not a multiple of general.alignment 32`);
  }
  const meta: [string, GgufValue][] = [
    ["general.architecture", { type: "string", value: "llama" }], ["llama.block_count", { type: "u32", value: 1 }], ["llama.embedding_length", { type: "u32", value: 8 }],
    ["llama.feed_forward_length", { type: "u32", value: 16 }], ["llama.attention.head_count", { type: "u32", value: 2 }], ["llama.vocab_size", { type: "u32", value: 10 }],
  ];
  await expectBad(["info", ggufMeta("eps.gguf", [...meta, ["llama.attention.layer_norm_rms_epsilon", { type: "string", value: "x" }]])], "llama.attention.layer_norm_rms_epsilon", "expected a positive number");
  await expectBad(["info", ggufMeta("theta.gguf", [...meta, ["llama.rope.freq_base", { type: "string", value: "x" }]])], "llama.rope.freq_base");
  await expectBad(["info", ggufMeta("yarn.gguf", [...meta, ["llama.rope.scaling.type", { type: "string", value: "yarn" }], ["llama.rope.scaling.factor", { type: "f32", value: 4 }]])], `rope_scaling.rope_type "yarn"`);
  await expectBad(["info", ggufMeta("noarch.gguf", meta.slice(1))], "missing GGUF key general.architecture");
  await expectBad(["info", ggufMeta("notensors.gguf", meta)], `missing tensor "model.embed_tokens.weight"`);
});

test("generate flags: --chat/--system with token ids, empty --stop, --threads out of range", async () => {
  const dir = join(MODELS_DIR, "llama-mha-f32");
  await expectBad(["generate", dir, "--prompt-tokens", "1,2", "--chat"], "--chat and --system wrap --prompt text");
  await expectBad(["generate", dir, "--prompt", "hi", "--system", "be brief"], "--system needs --chat");
  await expectBad(["generate", dir, "--prompt", "hi", "--stop", ""], `--stop ""`);
  await expectBad(["generate", dir, "--prompt", "hi", "--threads", "1000"], `--threads: "1000" is not an integer from 1 to 256`);
  await expectBad(["generate", dir, "--prompt", "hi", "--threads", "0"], `--threads: "0" is not an integer from 1 to 256`);
});

test("eos: a config's eos list stops --prompt-tokens runs without a tokenizer; export-gguf keeps every id of the list", async () => {
  const { exp } = expected("llama-mha-f32");
  // Greedy is 255,22,259,113,...: make the 3rd token an end-of-sequence id (listed second).
  const stopAt = exp.greedy[2];
  assert.ok(!exp.greedy.slice(0, 2).includes(stopAt), "fixture: the stop token is new at step 3");
  const dir = folder("eos-list", "llama-mha-f32", (c) => (c.eos_token_id = [287, stopAt]));
  const withTok = await greedyOf(dir, exp.prompt, 8);
  assert.deepEqual([withTok.tokens, withTok.finishReason], [exp.greedy.slice(0, 2), "stop"]);
  rmSync(join(dir, "tokenizer.json"));
  const noTok = await greedyOf(dir, exp.prompt, 8);
  assert.deepEqual([noTok.tokens, noTok.finishReason], [exp.greedy.slice(0, 2), "stop"], "the config's eos applies without tokenizer.json");
  const dir2 = folder("eos-list-gguf", "llama-mha-f32", (c) => (c.eos_token_id = [287, stopAt]));
  const gguf = join(tmp, "eos.gguf");
  assert.equal((await run(["export-gguf", dir2, gguf, "--dtype", "f32"])).code, 0);
  const fromGguf = await greedyOf(gguf, exp.prompt, 8);
  assert.deepEqual([fromGguf.tokens, fromGguf.finishReason], [exp.greedy.slice(0, 2), "stop"], "the 2nd eos survives export (as eot)");
});

test("--chat: a template that writes BOS with a BOS-adding tokenizer gives one BOS; a chat_template list uses its default", async () => {
  const dir = folder("chat-bos", "gemma-mqa", () => {});
  const tj = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
  const bos = { SpecialToken: { id: "<s>", type_id: 0 } };
  tj.post_processor = { type: "TemplateProcessing", single: [bos, { Sequence: { id: "A", type_id: 0 } }], pair: [bos, { Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
    special_tokens: { "<s>": { id: "<s>", ids: [286], tokens: ["<s>"] } } };
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tj));
  const tok = await loadTokenizer(dir);
  const rendered = "<s>user: hi\n<s>assistant:"; // the fixture's template
  assert.deepEqual(tok.encode(rendered).slice(0, 2), [286, 286], "fixture: encode() adds a BOS before the template's");
  const r = await run(["generate", dir, "--prompt", "hi", "--chat", "--max-tokens", "1", "--json"]);
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).promptTokens, tok.encode(rendered).length - 1);
  // tokenizer_config.json chat_template as a list of named templates (transformers picks "default").
  const list = folder("chat-list", "gemma-mqa", () => {});
  const cfgPath = join(list, "tokenizer_config.json");
  const cfg = JSON.parse(readFileSync(cfgPath, "utf8"));
  writeFileSync(cfgPath, JSON.stringify({ ...cfg, chat_template: [{ name: "tool_use", template: "{{ 'x' }}" }, { name: "default", template: cfg.chat_template }] }));
  const l = await run(["generate", list, "--prompt", "hi", "--chat", "--max-tokens", "1", "--json"]);
  assert.equal(l.code, 0, l.err);
  assert.equal(JSON.parse(l.out).promptTokens, (await loadTokenizer(list)).encode(rendered).length);
  await assert.rejects(tokenizerFromJson({ model: { type: "Foo", vocab: {} } }, {}, [], "x/tokenizer.json"), /x\/tokenizer\.json: model\.type "Foo"/);
});

test("generate --json with several --prompt: tokens and text per prompt (equal to one-by-one runs), beside sequences", async () => {
  const dir = join(MODELS_DIR, "gpt2-mha");
  const prompts = ["the cat sat", "a dog"];
  const r = await run(["generate", dir, ...prompts.flatMap((p) => ["--prompt", p]), "--max-tokens", "4", "--ignore-eos", "--json"]);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.sequences.length, 2);
  for (const [b, p] of prompts.entries()) {
    const one = JSON.parse((await run(["generate", dir, "--prompt", p, "--max-tokens", "4", "--ignore-eos", "--json"])).out);
    assert.deepEqual([j.tokens[b], j.text[b]], [one.tokens, one.text], `prompt ${b}`);
    assert.deepEqual(j.sequences[b].tokens, one.tokens);
  }
  for (const k of ["prefillTokensPerSecond", "decodeTokensPerSecond", "kvCacheBytes"]) assert.ok(Number.isFinite(j[k]) && j[k] > 0, `${k} = ${j[k]}`);
});

test("folders: a null or list shard index, a folder named model.safetensors, a binary config.json, a folder holding only a .gguf", async () => {
  const idx = folder("f-idx", "llama3-gqa-sharded", () => {});
  const index = join(idx, "model.safetensors.index.json");
  writeFileSync(index, "null");
  await expectBad(["generate", idx, "--prompt", "hi"], "model.safetensors.index.json: expected a JSON object");
  writeFileSync(index, JSON.stringify({ weight_map: [] }));
  await expectBad(["info", idx], `"weight_map" is []; expected an object`);
  const st = folder("f-stdir", "llama-mha-f32", () => {});
  rmSync(join(st, "model.safetensors"));
  cpSync(join(MODELS_DIR, "llama-mha-f32"), join(st, "model.safetensors"), { recursive: true });
  await expectBad(["generate", st, "--prompt", "hi"], "model.safetensors: is not a file");
  const bin = folder("f-bin", "llama-mha-f32", () => {});
  writeFileSync(join(bin, "config.json"), Buffer.from([0x7b, 0x1b, 0x5b, 0x32, 0x4a, 0x0d, 0xff, 0xfe, 0x00]));
  const r = await run(["info", bin]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /config\.json: not valid JSON/);
  assert.doesNotMatch(r.err, /[\u0000-\u001f\u007f\ufffd]/, "no raw control bytes on the terminal");
  const only = join(tmp, "f-gguf");
  cpSync(join(MODELS_DIR, "llama-mha-f32"), join(tmp, "f-gguf-src"), { recursive: true });
  assert.equal((await run(["export-gguf", join(tmp, "f-gguf-src"), join(tmp, "m.gguf"), "--dtype", "f32"])).code, 0);
  cpSync(join(tmp, "m.gguf"), join(only, "m.gguf"), { recursive: true });
  // One rule for folders (formats/model-file.ts resolveModelPath), the planner's and the runtime's: one .gguf is that file;
  // two are refused, naming them, by both.
  const one = await run(["info", only, "--json"]);
  assert.equal(one.code, 0, one.err);
  assert.equal((await run(["plan", "--model", only, "--gpu", "a100-80gb", "--json"])).code, 0);
  cpSync(join(tmp, "m.gguf"), join(only, "n.gguf"));
  const two = "no config.json in this folder; it holds 2 .gguf files (m.gguf, n.gguf): pass one .gguf file itself";
  await expectBad(["generate", only, "--prompt", "hi"], two);
  await expectBad(["plan", "--model", only, "--gpu", "a100-80gb"], two);
  const noIndex = folder("f-noidx", "llama3-gqa-sharded", () => {});
  rmSync(join(noIndex, "model.safetensors.index.json"));
  await expectBad(["info", noIndex], "it holds model-00001-of-00002.safetensors", "need their model.safetensors.index.json");
  const pickle = folder("f-pt", "llama-mha-f32", () => {});
  cpSync(join(pickle, "model.safetensors"), join(pickle, "pytorch_model.bin"));
  rmSync(join(pickle, "model.safetensors"));
  await expectBad(["generate", pickle, "--prompt", "hi"], "pytorch_model.bin (PyTorch pickle weights are not read");
});

/** A SentencePiece-style BPE tokenizer.json (Llama-2 / Mistral layout, or Gemma's without the "▁" prefix) of 274 tokens. */
function spmTokenizer(gemma: boolean): object {
  const specials = gemma ? ["<pad>", "<bos>", "<eos>"] : ["<unk>", "<s>", "</s>"];
  const pieces = [...specials, ...Array.from({ length: 256 }, (_, i) => `<0x${i.toString(16).toUpperCase().padStart(2, "0")}>`), "▁", "t", "h", "e", "a", "c", "s"];
  const merges = ["▁ t", "h e", "▁t he", "a t", "▁ c", "▁c at", "▁ s", "▁s at", "s at"];
  for (const m of merges) pieces.push(m.replace(" ", ""));
  const vocab = Object.fromEntries(pieces.map((p, i) => [p, i]));
  const bos = { SpecialToken: { id: specials[1], type_id: 0 } };
  return {
    version: "1.0", truncation: null, padding: null,
    added_tokens: specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: "Sequence", normalizers: [...(gemma ? [] : [{ type: "Prepend", prepend: "▁" }]), { type: "Replace", pattern: { String: " " }, content: "▁" }] },
    pre_tokenizer: null,
    post_processor: { type: "TemplateProcessing", single: [bos, { Sequence: { id: "A", type_id: 0 } }], pair: [bos, { Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { [specials[1]]: { id: specials[1], ids: [1], tokens: [specials[1]] } } },
    decoder: { type: "Sequence", decoders: [{ type: "Replace", pattern: { String: "▁" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, ...(gemma ? [] : [{ type: "Strip", content: " ", start: 1, stop: 0 }])] },
    model: { type: "BPE", dropout: null, unk_token: gemma ? null : "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges },
  };
}

test("export-gguf of a SentencePiece-style tokenizer.json (Llama-2 / Mistral, Gemma) writes a \"llama\" vocabulary that tokenizes like tokenizer.json", async () => {
  const texts = ["the cat sat", "sat the  cat", "xyz the", "ß cats", " leading", "the\ncat"];
  for (const gemma of [false, true]) {
    const dir = folder(`spm-${gemma}`, "llama-mha-f32", (c) => Object.assign(c, { bos_token_id: 1, eos_token_id: 2 }));
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(spmTokenizer(gemma)));
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ bos_token: gemma ? "<bos>" : "<s>", eos_token: gemma ? "<eos>" : "</s>" }));
    const gguf = join(tmp, `spm-${gemma}.gguf`);
    const e = await run(["export-gguf", dir, gguf, "--dtype", "f32"]);
    assert.equal(e.code, 0, e.err);
    const hf = await loadTokenizer(dir);
    const { readGguf } = await import("../src/formats/gguf.js");
    const { tokenizerFromGguf } = await import("../src/formats/tokenizer.js");
    const meta = (await readGguf(gguf)).metadata;
    assert.equal(meta["tokenizer.ggml.model"], "llama");
    const fromGguf = await tokenizerFromGguf(meta, gguf);
    for (const t of texts) {
      const ids = hf.encode(t);
      assert.deepEqual(fromGguf.encode(t), ids, `gemma=${gemma}: ${JSON.stringify(t)}`);
      assert.equal(fromGguf.decode(ids), hf.decode(ids), `gemma=${gemma}: decode ${JSON.stringify(t)}`);
    }
    // The whole pipeline: the same prompt text gives the same greedy tokens from the folder and the GGUF.
    const a = JSON.parse((await run(["generate", dir, "--prompt", "the cat sat", "--max-tokens", "4", "--ignore-eos", "--json"])).out);
    const b = JSON.parse((await run(["generate", gguf, "--prompt", "the cat sat", "--max-tokens", "4", "--ignore-eos", "--json"])).out);
    assert.deepEqual([b.promptTokens, b.tokens], [a.promptTokens, a.tokens], `gemma=${gemma}`);
  }
});

test("llama with attention_bias: q/k/v/o biases load, change the output, and survive export-gguf (o_proj.bias was dropped)", async () => {
  const { openSafetensors, readTensorBytes, writeSafetensors } = await import("../src/formats/safetensors.js");
  const dir = folder("attn-bias", "llama-mha-f32", (c) => (c.attention_bias = true));
  const tensors = [...openSafetensors(dir).values()].map((t) => {
    const b = new Uint8Array(t.bytes);
    readTensorBytes(t, b);
    return { name: t.name, shape: t.shape, data: new Float32Array(b.buffer) };
  });
  let x = 1;
  const rand = () => ((x = (x * 48271) % 2147483647) / 2147483647 - 0.5) * 0.5;
  for (let l = 0; l < 2; l++) for (const p of ["q", "k", "v", "o"]) tensors.push({ name: `model.layers.${l}.self_attn.${p}_proj.bias`, shape: [64], data: Float32Array.from({ length: 64 }, rand) });
  writeSafetensors(join(dir, "model.safetensors"), tensors);
  const { exp } = expected("llama-mha-f32");
  const hf = await greedyOf(dir, exp.prompt, 10);
  const gguf = join(tmp, "attn-bias.gguf");
  assert.equal((await run(["export-gguf", dir, gguf, "--dtype", "f32"])).code, 0);
  const g = await greedyOf(gguf, exp.prompt, 10);
  assert.deepEqual(g.tokens, hf.tokens, "GGUF = folder");
  assert.notDeepEqual(hf.tokens, exp.greedy, "the biases change the continuation (so the check above can fail)");
  const info = JSON.parse((await run(["info", gguf, "--json"])).out);
  assert.equal(info.parameters, JSON.parse((await run(["info", dir, "--json"])).out).parameters, "every tensor exported");
});

test("export-gguf of a byte-level tokenizer whose post-processor adds BOS (Llama-3 layout): the GGUF adds it too", async () => {
  const dir = folder("bpe-bos", "llama-mha-f32", () => {});
  const path = join(dir, "tokenizer.json");
  const tj = JSON.parse(readFileSync(path, "utf8"));
  const bos = { SpecialToken: { id: "<s>", type_id: 0 } };
  tj.post_processor = { type: "Sequence", processors: [tj.post_processor, { type: "TemplateProcessing", single: [bos, { Sequence: { id: "A", type_id: 0 } }],
    pair: [bos, { Sequence: { id: "A", type_id: 0 } }, bos, { Sequence: { id: "B", type_id: 1 } }], special_tokens: { "<s>": { id: "<s>", ids: [286], tokens: ["<s>"] } } }] };
  writeFileSync(path, JSON.stringify(tj));
  const hf = await loadTokenizer(dir);
  assert.equal(hf.encode("the cat")[0], 286, "fixture: the folder's tokenizer adds BOS");
  const gguf = join(tmp, "bpe-bos.gguf");
  assert.equal((await run(["export-gguf", dir, gguf, "--dtype", "f32"])).code, 0);
  for (const [d, what] of [[dir, "folder"], [gguf, "GGUF"]]) {
    const r = await run(["generate", d, "--prompt", "the cat", "--max-tokens", "3", "--ignore-eos", "--json"]);
    assert.equal(r.code, 0, r.err);
    assert.equal(JSON.parse(r.out).promptTokens, hf.encode("the cat").length, what);
  }
  // The plain GPT-2 layout still adds nothing.
  const plain = join(tmp, "bpe-plain.gguf");
  assert.equal((await run(["export-gguf", join(MODELS_DIR, "gpt2-mha"), plain, "--dtype", "f32"])).code, 0);
  const p = JSON.parse((await run(["generate", plain, "--prompt", "the cat", "--max-tokens", "1", "--json"])).out);
  assert.equal(p.promptTokens, (await loadTokenizer(join(MODELS_DIR, "gpt2-mha"))).encode("the cat").length);
});

test("qwen3 and phi3 folders: mqa generate runs them; their config mistakes name the field", async () => {
  for (const name of ["qwen3-gqa-qknorm", "phi3-gqa-fused"]) {
    const { exp } = expected(name);
    const r = await run(["generate", join(MODELS_DIR, name), "--prompt-tokens", exp.prompt.join(","), "--max-tokens", "4", "--temperature", "0", "--json"]);
    assert.equal(r.code, 0, `${name}: ${r.err}`);
    assert.deepEqual(JSON.parse(r.out).tokens, exp.greedy.slice(0, 4), `${name}: greedy tokens of the PyTorch fixture`);
  }
  // Phi-3's long-context RoPE is refused by its key, in the config file.
  for (const [key, type] of [["type", "longrope"], ["type", "su"]]) {
    const dir = folder(`phi3-${type}`, "phi3-gqa-fused", (c) => (c.rope_scaling = { [key]: type, short_factor: [1, 1, 1, 1], long_factor: [2, 2, 2, 2] }));
    await expectBad(["generate", dir, "--prompt", "hi"], `config.json: rope_scaling.type "${type}" is not supported`, "LongRoPE");
    await expectBad(["export-gguf", dir, join(tmp, "phi3-rope.gguf")], `rope_scaling.type "${type}"`);
  }
  // A sliding_window shorter than the context: generation stops at it (there full and sliding attention agree),
  // and a longer prompt is refused naming the field.
  const win = folder("phi3-window", "phi3-gqa-fused", (c) => (c.sliding_window = 8));
  const w = await run(["generate", win, "--prompt-tokens", "1,2,3,4,5,6", "--max-tokens", "10", "--json"]);
  assert.equal(w.code, 0, w.err);
  assert.equal(JSON.parse(w.out).tokens.length, 2, "6 prompt tokens + 2 = the window of 8");
  await expectBad(["generate", win, "--prompt-tokens", "1,2,3,4,5,6,7,8,9", "--max-tokens", "1"], "9 tokens", "context is 8 tokens (sliding_window");
  // Checkpoint shapes come from the config: a head_dim that does not match q_norm or the fused rows is named.
  await expectBad(["generate", folder("qwen3-hd", "qwen3-gqa-qknorm", (c) => (c.head_dim = 8)), "--prompt", "hi"], "self_attn.q_proj.weight", "expected [48, 40]");
  await expectBad(["generate", folder("phi3-kv", "phi3-gqa-fused", (c) => (c.num_key_value_heads = 3)), "--prompt", "hi"], "self_attn.qkv_proj.weight", "has shape [80, 48]; expected [96, 48]");
  await expectBad(["generate", folder("phi3-act", "phi3-gqa-fused", (c) => (c.hidden_act = "gelu")), "--prompt", "hi"], `activation "gelu" is not supported for model_type "phi3"`);
});

test("Gemma-2/3 configs: an unsupported feature names its field (runtime and export-gguf)", async () => {
  const g2 = "gemma2-gqa-softcap", g3 = "gemma3-mqa-localrope";
  await expectBad(["generate", folder("g2-bias", g2, (c) => (c.attention_bias = true)), "--prompt", "hi"], "attention_bias true is not supported", "gemma2");
  await expectBad(["generate", folder("g2-cap-str", g2, (c) => (c.attn_logit_softcapping = "50")), "--prompt", "hi"], "attn_logit_softcapping", "expected a number");
  await expectBad(["generate", folder("g2-qpas-neg", g2, (c) => (c.query_pre_attn_scalar = -1)), "--prompt", "hi"], "query_pre_attn_scalar is -1");
  await expectBad(["generate", folder("g3-yarn", g3, (c) => (c.rope_scaling = { rope_type: "yarn", factor: 8 })), "--prompt", "hi"], `rope_scaling.rope_type "yarn" is not supported`);
  // What llama.cpp's gemma2 / gemma3 cannot express is refused by export-gguf, naming the field.
  const out = join(tmp, "g.gguf");
  await expectBad(["export-gguf", folder("g2-nocap", g2, (c) => (c.attn_logit_softcapping = null)), out], "attn_logit_softcapping is null", "always soft-caps");
  await expectBad(["export-gguf", folder("g2-layers", g2, (c) => (c.layer_types = ["full_attention", "sliding_attention", "sliding_attention"])), out], "layer_types", "i % 2 < 1");
  await expectBad(["export-gguf", folder("g3-local", g3, (c) => (c.rope_local_base_freq = 5000)), out], "rope_local_base_freq is 5000", "10000");
  await expectBad(["export-gguf", folder("g3-cap", g3, (c) => (c.final_logit_softcapping = 30)), out], "final_logit_softcapping is set");
  assert.ok(!existsSync(out), "nothing written");
});

test("Falcon configs: ALiBi, biases and sequential blocks are refused naming the field", async () => {
  const f = "falcon-mqa-parallel";
  await expectBad(["generate", folder("f-alibi", f, (c) => (c.alibi = true)), "--prompt", "hi"], "field alibi true", "not supported");
  await expectBad(["info", folder("f-alibi-info", f, (c) => (c.alibi = true))], "field alibi true");
  await expectBad(["generate", folder("f-bias", f, (c) => (c.bias = true)), "--prompt", "hi"], "field bias true is not supported", "falcon");
  await expectBad(["generate", folder("f-seq", f, (c) => (c.parallel_attn = false)), "--prompt", "hi"], "field parallel_attn false");
  await expectBad(["generate", folder("f-act", f, (c) => (c.activation = "relu")), "--prompt", "hi"], `activation "relu" is not supported`, "falcon");
});
