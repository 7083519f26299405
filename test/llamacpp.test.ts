// llama.cpp parity through node-llama-cpp 3.21.1 (CPU): export fixture models to GGUF with our
// writer, load them in llama.cpp, and compare next-token probabilities at every prompt position
// and the greedy continuation, for MHA, GQA (llama3 rope_scaling via rope_freqs) and MQA models.
// Also reads the same GGUF back with our reader and checks it reproduces the HF-folder logits.
//
// Tolerances are derived from the arithmetic either engine may legally do, not from one CPU's results
// (tools/fixtures/gen_rounding.py computes them in float64 and writes tools/fixtures/models/rounding.json):
//  - both sides use an f32 KV cache (experimentalKvCacheKeyType/ValueType "F32") and llama.cpp's
//    non-flash attention (its CPU flash path rounds Q/K/V through f16);
//  - f32 weights: summation order only. Each engine's f32 error is of the size of a float32 torch forward
//    against float64 (deltaF32); the logit tolerance allows 4 x deltaF32 (two engines, two orders);
//  - f16 / bf16 / Q8_0 weights: depending on the CPU's kernels, llama.cpp may round the activations to
//    the weight's vec_dot_type before the product (f16: relative 2^-11; bf16: 2^-8; Q8_0: blocks of 32 on
//    one scale) at any subset of the matmuls; the generator emulates that rounding at each matmul kind
//    alone and sums the per-logit effects, a first-order bound over every subset (deltaRound);
//  - GELU (gpt2, starcoder, gemma) may come from ggml's f16 table: y = f16(gelu(f16(x))), emulated too.
// With every logit within delta = deltaRound + 4 deltaF32, softmax gives p'/p in [e^-2delta, e^2delta],
// so |p_ours - p_llama.cpp| <= (e^{2 delta} - 1) * p exactly: the per-case relative tolerance
// probRelTol (plus 2^-22 for f32 probabilities). Greedy choices must agree at every step whose top-1
// logit leads by more than 2 delta (rounding.json's `checkable`: all steps for the f32 and f16 files;
// the generator fails unless at least half are for bf16 and Q8_0).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, LlamaLogLevel, type Llama } from "node-llama-cpp";
import { exportGguf } from "../src/convert/export-gguf.js";
import { readGguf, type GgufValue } from "../src/formats/gguf.js";
import { tokenizerFromGguf } from "../src/formats/tokenizer.js";
import { assertClose } from "./attention-helpers.js";
import { MODELS_DIR, expected, load } from "./models-helpers.js";
import { readFileSync } from "node:fs";
import { cpus } from "node:os";

type Rounding = { probRelTol: number; logitTol: number; argmax: number[]; checkable: boolean[] };
const ROUNDING: { version: number; cases: Record<string, Rounding> } = JSON.parse(readFileSync(join(MODELS_DIR, "rounding.json"), "utf8"));

const dir = mkdtempSync(join(tmpdir(), "mqa-llamacpp-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let llama: Llama | null = null;
async function getLlamaOnce(): Promise<Llama> {
  llama ??= await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  return llama;
}

function softmax(logits: Float32Array): Float64Array {
  let m = -Infinity;
  for (const v of logits) m = Math.max(m, v);
  const p = Float64Array.from(logits, (v) => Math.exp(v - m));
  const s = p.reduce((a, b) => a + b, 0);
  return p.map((v) => v / s);
}

// Q8_0: both read the same blocks; llama.cpp also quantizes the activations to Q8_0 blocks
// (vec_dot_q8_0_q8_0), ours multiplies them in f32: covered by rounding.json's q8_0 bound. The exact
// check of our Q8_0 path is test/models-q8.test.ts.
const CASES: [string, "f32" | "f16" | "bf16" | "q8_0", string, (() => [string, GgufValue][])?][] = [
  ["llama-mha-f32", "f32", "MHA"],
  ["llama-gqa-f16", "f16", "GQA, tied, f16 GGUF"],
  ["llama3-gqa-sharded", "f32", "GQA G=4, llama3 rope_freqs"],
  ["llama-mqa-bf16", "f32", "MQA, head dim 10"],
  ["llama-mqa-bf16", "bf16", "MQA, bf16 GGUF"],
  ["qwen2-gqa-bias", "f32", "qwen2 architecture: q/k/v biases, NEOX RoPE without permutation, tied"],
  ["gemma-mqa", "f32", "gemma architecture: MQA, head dim 24 != 32/4, GeGLU, (1 + w) norms"],
  ["gpt-bigcode-mqa", "f16", "starcoder architecture (gpt_bigcode): classic MQA, learned positions, LayerNorm, f16"],
  ["llama-gqa-f16", "q8_0", "GQA, Q8_0 GGUF read in place"],
  ["gpt2-mha", "f32", "gpt2 architecture: classic MHA, Conv1D weights stored [out, in], tied"],
  ["gpt2-mha", "f16", "gpt2 architecture, f16 GGUF (2-byte transposes)"],
  ["qwen3-gqa-qknorm", "f32", "qwen3 architecture: attn_q_norm/attn_k_norm, head dim 12 with hidden 40, GQA 2 of 6"],
  ["qwen3-gqa-qknorm", "f16", "qwen3 architecture, f16 GGUF"],
  ["gemma2-gqa-softcap", "f32", "gemma2 architecture: alternating sliding (5) / global layers, attention soft-cap 2, final soft-cap 3, query_pre_attn_scalar 20 folded into attn_q, sandwich norms"],
  ["gemma2-gqa-softcap", "f16", "gemma2 architecture, f16 GGUF"],
  ["gemma3-mqa-localrope", "f32", "gemma3 architecture: 5 sliding layers (base 10000) + 1 global (base 1e6, linear scaling 4), q/k norms, MQA"],
  ["gemma3-mqa-localrope", "f16", "gemma3 architecture, f16 GGUF"],
  ["falcon-mqa-parallel", "f32", "falcon architecture, Falcon-7B layout: multi_query MQA, one norm, parallel attention/MLP, fused attn_qkv; exact GELU (ours) vs tanh (llama.cpp) in the bound"],
  ["falcon-mqa-parallel", "f16", "falcon architecture, Falcon-7B layout, f16 GGUF"],
  ["falcon-gqa-newdecoder", "f32", "falcon architecture, Falcon-40B layout: new decoder, num_kv_heads 2 of 6, attn_norm_2 (ln_attn) + attn_norm (ln_mlp), qkv regrouped to q | k | v, untied output"],
  ["falcon-gqa-newdecoder", "f16", "falcon architecture, Falcon-40B layout, f16 GGUF"],
  // llama.cpp (llama-vocab.cpp, token attributes) looks up "<unk>", "<s>", "</s>" and "<|endoftext|>" by text in any
  // model whose general.name contains "phi3" and fails ("_Map_base::at") when one is missing, as in the fixture's
  // 288-token BPE vocabulary; every real Phi-3 vocabulary has them. So this case writes a SentencePiece vocabulary of
  // the same size that does: the comparison feeds token ids, so the vocabulary's texts do not enter the logits.
  ["phi3-gqa-fused", "f32", "phi3 architecture: fused qkv_proj and gate_up_proj, GQA 2 of 6", () => spmVocabulary(["<|endoftext|>"])],
];

/**
 * A SentencePiece vocabulary (tokenizer.ggml.model "llama") of 288 tokens for export-gguf's tokenizer option:
 * <unk>, <s>, </s>, the 256 byte pieces, scored pieces, then `controls` (e.g. "<|endoftext|>") in place of the last pieces.
 */
function spmVocabulary(controls: string[] = []): [string, GgufValue][] {
  const pieces = SPM_PIECES.slice(0, SPM_PIECES.length - controls.length);
  const tokens = ["<unk>", "<s>", "</s>", ...Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`), ...pieces, ...controls];
  const types = [2, 3, 3, ...new Array(256).fill(6), ...pieces.map(() => 1), ...controls.map(() => 3)];
  const scores = [0, 0, 0, ...new Array(256).fill(0), ...pieces.map((p, i) => (p.length === 1 ? -1000 - i : -i)), ...controls.map(() => 0)];
  return [
    ["tokenizer.ggml.model", { type: "string", value: "llama" }],
    ["tokenizer.ggml.tokens", { type: "string[]", value: tokens }],
    ["tokenizer.ggml.scores", { type: "f32[]", value: scores }],
    ["tokenizer.ggml.token_type", { type: "i32[]", value: types }],
    ["tokenizer.ggml.bos_token_id", { type: "u32", value: 1 }],
    ["tokenizer.ggml.eos_token_id", { type: "u32", value: 2 }],
    ["tokenizer.ggml.unknown_token_id", { type: "u32", value: 0 }],
  ];
}
const SPM_PIECES = ["▁", "t", "h", "e", "a", "c", "s", "o", "n", "m", "d", "g", "l", "r", "w", "he", "▁t", "▁the", "at", "▁c", "▁cat", "▁s", "▁sat", "on", "▁on", "▁m", "▁mat", "▁d", "▁dog"];

/** The machine a failure happened on: CPU model and the ggml CPU features llama.cpp reports. */
function machine(lc: Llama): string {
  return `CPU ${cpus()[0]?.model ?? "unknown"}; llama.cpp ${lc.systemInfo.trim()}`;
}

/** Runs a check and appends the machine to its failure message. */
function onMachine(lc: Llama, check: () => void): void {
  try {
    check();
  } catch (e) {
    if (e instanceof assert.AssertionError) throw new assert.AssertionError({ message: `${e.message} [${machine(lc)}]` });
    throw e;
  }
}

function probabilities(p: Iterable<[number, number]>, V: number): Float64Array {
  const out = new Float64Array(V).fill(NaN); // a token llama.cpp did not report fails the comparison
  for (const [tok, v] of p) out[tok] = v;
  return out;
}

for (const [name, dtype, what, vocabulary] of CASES) {
  test(`llama.cpp parity ${name} (${what}): next-token probabilities and greedy continuation`, async () => {
    const { exp } = expected(name);
    const bound = ROUNDING.cases[`${name}:${dtype}`];
    assert.ok(bound, `rounding.json has no case ${name}:${dtype}; run /usr/bin/python3 tools/fixtures/gen_rounding.py`);
    const gguf = join(dir, `${name}-${dtype}.gguf`);
    exportGguf(join(MODELS_DIR, name), gguf, dtype, vocabulary ? { tokenizer: vocabulary() } : {});
    const lc = await getLlamaOnce();
    const model = await lc.loadModel({ modelPath: gguf });
    const ctx = await model.createContext({ contextSize: 256, threads: 1, flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" });
    try {
      const seq = ctx.getSequence();
      const V = exp.logits.shape[1];
      const P = exp.prompt.length;
      const ours = await load(gguf); // our GGUF reader on the same file
      const cache = ours.model.createCache({});
      const s = cache.addSequence();
      const compare = (label: string, mine: Float64Array, theirs: Float64Array) =>
        onMachine(lc, () => assertClose(`${name} (${dtype}) probabilities ${label}`, mine, theirs, 0, bound.probRelTol));
      // Prompt: probabilities after every prompt token.
      const res = await seq.controlledEvaluate(exp.prompt.map((t) => [t, { generateNext: { probabilities: true } }] as [number, { generateNext: { probabilities: true } }]));
      const mine = ours.model.forward(cache, [s], [exp.prompt], "all");
      const oursChoice: number[] = []; // next-token argmax at positions P-1 .. P+G-1, teacher-forced by the fixture's greedy tokens
      const theirsChoice: number[] = [];
      exp.prompt.forEach((_, i) => {
        const theirs = probabilities(res[i]!.next!.probabilities!, V);
        const p = softmax(mine.subarray(i * V, (i + 1) * V));
        compare(`after prompt token ${i}`, p, theirs);
        if (i === P - 1) oursChoice.push(argmax(p)), theirsChoice.push(argmax(theirs));
      });
      for (let step = 0; step < exp.greedy.length; step++) {
        const tok = exp.greedy[step];
        const r = await seq.controlledEvaluate([[tok, { generateNext: { probabilities: true } }]]);
        const theirs = probabilities(r[0]!.next!.probabilities!, V);
        const p = softmax(ours.model.forward(cache, [s], [[tok]], "last"));
        compare(`after greedy token ${step}`, p, theirs);
        oursChoice.push(argmax(p)), theirsChoice.push(argmax(theirs));
      }
      // Greedy decisions: wherever the stored weights' top-1 logit leads by more than 2 x the logit
      // tolerance, both engines must pick rounding.json's argmax (= the fixture's greedy token for f32/f16/bf16).
      if (dtype !== "q8_0") assert.deepEqual(bound.argmax, exp.greedy, `${name}: rounding.json is stale; rerun gen_rounding.py`);
      const steps = bound.checkable.flatMap((ok, i) => (ok ? [i] : []));
      assert.ok(steps.length >= Math.ceil(exp.greedy.length / 2), `${name} (${dtype}): only ${steps.length} greedy steps are decidable`);
      onMachine(lc, () => {
        assert.deepEqual(steps.map((i) => oursChoice[i]), steps.map((i) => bound.argmax[i]), `${name} (${dtype}): our greedy choices at steps ${steps}`);
        assert.deepEqual(steps.map((i) => theirsChoice[i]), steps.map((i) => bound.argmax[i]), `${name} (${dtype}): llama.cpp's greedy choices at steps ${steps}`);
      });
    } finally {
      await ctx.dispose();
      await model.dispose();
    }
  });
}

function argmax(p: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < p.length; i++) if (p[i] > p[best]) best = i;
  return best;
}

test("GGUF SentencePiece vocabulary (tokenizer.ggml.model llama): our encode/decode equals llama.cpp's tokenizer", async () => {
  // 3 specials + 256 byte pieces + 29 pieces with scores = the fixture's 288 tokens.
  const gguf = join(dir, "spm.gguf");
  exportGguf(join(MODELS_DIR, "llama-mha-f32"), gguf, "f32", { tokenizer: spmVocabulary() });
  const ours = await tokenizerFromGguf((await readGguf(gguf)).metadata, gguf);
  const lc = await getLlamaOnce();
  const model = await lc.loadModel({ modelPath: gguf });
  try {
    for (const text of ["the cat sat on the mat", "The dog", "  two  spaces", "héllo wörld", "emoji 🙂 ok", "tattoo"]) {
      const theirs = [...model.tokenize(text)].map(Number);
      const mine = ours.encode(text);
      assert.deepEqual(mine.slice(1), theirs[0] === 1 ? theirs.slice(1) : theirs, `encode ${JSON.stringify(text)}`);
      assert.equal(mine[0], 1, "BOS added (tokenizer.ggml.add_bos_token defaults to true)");
      assert.equal(ours.decode(mine.slice(1)), text, `decode ${JSON.stringify(text)}`);
    }
  } finally {
    await model.dispose();
  }
});
