// Generation: sampling filters and their order, seeds, batched generation on one paged cache equal
// to one-by-one runs, stop tokens and strings, context limits, and `mqa generate / info /
// export-gguf` end to end (JSON fields, one-line errors with exit code 2).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { runCli } from "./cli-helpers.js";
import { UserError } from "../src/errors.js";
import { generate } from "../src/generate/generate.js";
import { applyRepetitionPenalty, checkSampling, filteredDistribution, sampleToken, seededRandom } from "../src/generate/sampling.js";
import { loadTokenizer } from "../src/formats/tokenizer.js";
import { MODELS_DIR, expected, load } from "./models-helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "mqa-generate-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

test("sampling: temperature 0 and top-k 1 are argmax; top-p keeps the smallest nucleus; min-p cuts relative to the top", () => {
  const logits = Float32Array.from([1, 3, 2, 0, 2.5]);
  const o = checkSampling({ temperature: 1, seed: 1 });
  assert.equal(sampleToken(logits.slice(), checkSampling({ temperature: 0, seed: 1 }), [], seededRandom(1)), 1);
  for (let s = 0; s < 20; s++) assert.equal(sampleToken(logits.slice(), { ...o, topK: 1 }, [], seededRandom(s)), 1);
  // Softmax of [1, 3, 2, 0, 2.5]: p(1) ≈ .464, p(4) ≈ .281, p(2) ≈ .171, ...
  const full = filteredDistribution(logits, o);
  assert.deepEqual(full.ids, [1, 4, 2, 0, 3]);
  assert.ok(Math.abs(full.probs.reduce((a, b) => a + b) - 1) < 1e-12);
  assert.deepEqual(filteredDistribution(logits, { ...o, topP: 0.7 }).ids, [1, 4]); // .464 < .7 <= .745
  assert.deepEqual(filteredDistribution(logits, { ...o, topP: 0.74 }).ids, [1, 4]);
  assert.deepEqual(filteredDistribution(logits, { ...o, topP: 0.75 }).ids, [1, 4, 2]);
  assert.deepEqual(filteredDistribution(logits, { ...o, minP: 0.5 }).ids, [1, 4]); // p(2)/p(1) = e^-1 < .5 < e^-.5
  assert.deepEqual(filteredDistribution(logits, { ...o, topK: 3 }).ids, [1, 4, 2]);
  const hot = filteredDistribution(logits, { ...o, temperature: 100 }).probs;
  assert.ok(hot[0] - hot[4] < 0.01, "high temperature flattens the distribution");
});

test("sampling: repetition penalty divides positive and multiplies negative logits of seen tokens", () => {
  const l = Float32Array.from([2, -2, 1]);
  applyRepetitionPenalty(l, [0, 1, 1], 2);
  assert.deepEqual([...l], [1, -4, 1]);
});

test("sampling: draws follow the filtered distribution (chi-square, 20000 draws, fixed seed)", () => {
  const logits = Float32Array.from([0, 1, 2, -1]);
  const o = checkSampling({ temperature: 0.7, seed: 5 });
  const { ids, probs } = filteredDistribution(logits, o);
  const r = seededRandom(5);
  const counts = new Map<number, number>();
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const t = sampleToken(logits.slice(), o, [], r);
    counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  let chi2 = 0;
  ids.forEach((id, i) => (chi2 += ((counts.get(id) ?? 0) - n * probs[i]) ** 2 / (n * probs[i])));
  assert.ok(chi2 < 16.3, `chi-square ${chi2.toFixed(2)} with 3 degrees of freedom exceeds 16.3 (p = 0.001)`);
});

test("sampling: NaN logits (a checkpoint with inf/NaN weights) are a UserError, not token 0", () => {
  const logits = new Float32Array([0.5, 2, NaN, 1]);
  for (const temperature of [0, 1]) {
    assert.throws(() => sampleToken(logits.slice(), checkSampling({ temperature }), [], seededRandom(1)), (e: unknown) => e instanceof UserError && /NaN logits \(first at token 2\)/.test((e as Error).message));
  }
  assert.equal(sampleToken(new Float32Array([0.5, Infinity, 1]), checkSampling({ temperature: 0 }), [], seededRandom(1)), 1, "+inf is a valid argmax");
});

test("sampling: bad options are UserErrors naming the flag", () => {
  assert.throws(() => checkSampling({ topP: 0 }), (e: unknown) => e instanceof UserError && /--top-p/.test((e as Error).message));
  assert.throws(() => checkSampling({ temperature: -1 }), (e: unknown) => e instanceof UserError && /--temperature/.test((e as Error).message));
  assert.throws(() => checkSampling({ topK: 1.5 }), (e: unknown) => e instanceof UserError && /--top-k/.test((e as Error).message));
});

test("generate: greedy equals the PyTorch continuation; a batch on one paged cache equals one-by-one runs (greedy and sampled)", async () => {
  const name = "llama3-gqa-sharded";
  const { exp } = expected(name);
  const { model } = await load(join(MODELS_DIR, name));
  const g = generate(model, [exp.prompt], { maxTokens: exp.greedy.length });
  assert.deepEqual(g.sequences[0].tokens, exp.greedy);
  assert.equal(g.decodeTokens, exp.greedy.length - 1);
  // KV bytes = 3 layers × 2 (K, V) × 2 kv heads × 8 dims × 4 bytes × cached tokens (the last sample is not fed back).
  assert.equal(g.kvCacheBytes, 3 * 2 * 2 * 8 * 4 * (exp.prompt.length + exp.greedy.length - 1));
  const prompts = [exp.prompt, [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21], [40]];
  for (const opts of [{ temperature: 0 }, { temperature: 0.9, topK: 50, topP: 0.95, seed: 11 }]) {
    const batch = generate(model, prompts, { maxTokens: 12, ...opts });
    prompts.forEach((p, b) => {
      // One-by-one with prompt b's RNG stream (seed + b).
      const one = generate(model, [p], { maxTokens: 12, ...opts, seed: (opts.seed ?? 0) + b });
      assert.deepEqual(batch.sequences[b].tokens, one.sequences[0].tokens, `prompt ${b}, ${JSON.stringify(opts)}`);
    });
  }
  const s1 = generate(model, [exp.prompt], { maxTokens: 8, temperature: 1, seed: 3 }).sequences[0].tokens;
  const s2 = generate(model, [exp.prompt], { maxTokens: 8, temperature: 1, seed: 3 }).sequences[0].tokens;
  assert.deepEqual(s1, s2, "same seed, same tokens");
});

test("generate: stop tokens end a sequence (not included); stop strings cut the text; context limits", async () => {
  const name = "llama-mha-f32";
  const { exp } = expected(name);
  const { model } = await load(join(MODELS_DIR, name));
  const tok = await loadTokenizer(join(MODELS_DIR, name));
  const r = generate(model, [exp.prompt], { maxTokens: 10, stopTokens: [exp.greedy[3]] });
  assert.deepEqual(r.sequences[0].tokens, exp.greedy.slice(0, 3));
  assert.equal(r.sequences[0].finishReason, "stop");
  const full = tok.decode(exp.greedy);
  const stopAt = full.indexOf("at");
  assert.ok(stopAt > 0, `fixture continuation ${JSON.stringify(full)} contains "at"`);
  let streamed = "";
  const s = generate(model, [exp.prompt], { maxTokens: 10, stopStrings: ["at"], decode: (ids) => tok.decode(ids), onText: (_b, d) => (streamed += d) });
  assert.equal(s.sequences[0].text, full.slice(0, stopAt));
  assert.equal(streamed, full.slice(0, stopAt), "streamed text never shows the stop string");
  assert.equal(s.sequences[0].finishReason, "stop");
  // Context 64: a 70-token prompt is rejected; a 60-token prompt stops at the context.
  assert.throws(() => generate(model, [new Array(70).fill(1)], { maxTokens: 5 }), (e: unknown) => e instanceof UserError && /70 tokens.*context is 64/.test((e as Error).message));
  const edge = generate(model, [new Array(60).fill(1)], { maxTokens: 10 });
  assert.equal(edge.sequences[0].tokens.length, 4);
  assert.equal(edge.sequences[0].finishReason, "length");
});

const run = runCli;

/** Runs the CLI in a child process (streaming writes to process.stdout). */
function runChild(args: string[]): { code: number; out: string; err: string } {
  const src = `import { main } from ${JSON.stringify(join(import.meta.dirname, "..", "src", "cli", "main.ts"))}; process.exitCode = await main(${JSON.stringify(args)});`;
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", src], { encoding: "utf8" });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr.trim() };
}

test("mqa generate --json: tokens (prompt excluded), text, timings, kvCacheBytes; streaming prints the same text", async () => {
  const name = "gpt-bigcode-mqa";
  const { exp } = expected(name);
  const dir = join(MODELS_DIR, name);
  const r = await run(["generate", dir, "--prompt-tokens", exp.prompt.join(","), "--max-tokens", "10", "--ignore-eos", "--json", "--backend", "reference"]);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.deepEqual(j.tokens, exp.greedy);
  for (const k of ["prefillTokensPerSecond", "decodeTokensPerSecond", "kvCacheBytes"]) assert.ok(typeof j[k] === "number" && j[k] > 0, `${k} = ${j[k]}`);
  assert.equal(j.kvCacheBytes, 2 * 2 * 1 * 12 * 4 * (exp.prompt.length + 9), "MQA: one kv head of 12 dims, f32, 2 layers");
  const tok = await loadTokenizer(dir);
  assert.equal(j.text, tok.decode(exp.greedy));
  const args = ["generate", dir, "--prompt", "the cat sat", "--max-tokens", "10", "--ignore-eos", "--backend", "reference"];
  const t = JSON.parse((await run([...args, "--json"])).out);
  assert.equal(t.promptTokens, tok.encode("the cat sat").length);
  const s = runChild(args);
  assert.equal(s.code, 0, s.err);
  assert.equal(s.out, t.text + "\n", "streamed text = the --json text");
});

test("mqa info --json and mqa export-gguf", async () => {
  const r = await run(["info", join(MODELS_DIR, "llama-gqa-f16"), "--json"]);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.deepEqual([j.architecture, j.attention, j.heads, j.kvHeads, j.headDim], ["llama", "gqa", 4, 2, 16]);
  // embed 288×64 + 2 layers × (q 64·64 + k, v 2 × 32·64 + o 64·64 + mlp 3·128·64 + 2 norms × 64) + final norm 64 (tied)
  assert.equal(j.parameters, 288 * 64 + 2 * (64 * 64 + 2 * 32 * 64 + 64 * 64 + 3 * 128 * 64 + 2 * 64) + 64);
  assert.deepEqual(j.weightDtypes, { f16: j.parameters });
  assert.equal(j.kvBytesPerToken.f16, 2 * 2 * 2 * 16 * 2);
  const out = join(tmp, "cli.gguf");
  const e = await run(["export-gguf", join(MODELS_DIR, "llama-gqa-f16"), out, "--dtype", "f16", "--json"]);
  assert.equal(e.code, 0, e.err);
  const g = await run(["info", out, "--json"]);
  const gj = JSON.parse(g.out);
  assert.deepEqual([gj.architecture, gj.heads, gj.kvHeads, gj.parameters], ["llama", 4, 2, j.parameters]);
});

test("bad input: one line on stderr, exit code 2", async () => {
  const cases: [string[], RegExp][] = [
    [["generate", join(tmp, "nope"), "--prompt", "x"], /nope: no such file/],
    [["generate", join(MODELS_DIR, "llama-mha-f32"), "--prompt-tokens", "1,2,x"], /--prompt-tokens: "x" is not an integer/],
    [["generate", join(MODELS_DIR, "llama-mha-f32"), "--prompt-tokens", Array(80).fill(1).join(",")], /80 tokens but the model's context is 64/],
    [["generate", join(MODELS_DIR, "llama-mha-f32"), "--prompt-tokens", "1,999"], /token id 999 is outside the vocabulary \[0, 288\)/],
    [["generate", join(MODELS_DIR, "llama-mha-f32"), "--prompt", "x", "--top-p", "2"], /--top-p 2/],
    [["export-gguf", join(MODELS_DIR, "gpt-bigcode-mha"), join(tmp, "y.gguf")], /expected multi_query true/],
  ];
  // --prompt-tokens needs no tokenizer: a folder without tokenizer.json still generates (text is empty).
  const notok = join(tmp, "notok");
  cpSync(join(MODELS_DIR, "gpt2-mha"), notok, { recursive: true });
  rmSync(join(notok, "tokenizer.json"));
  const nt = await run(["generate", notok, "--prompt-tokens", "1,2,3", "--max-tokens", "3", "--json", "--backend", "reference"]);
  assert.equal(nt.code, 0, nt.err);
  assert.equal(JSON.parse(nt.out).tokens.length, 3);
  cases.push([["generate", notok, "--prompt", "hi"], /no tokenizer.json; pass --prompt-tokens/]);
  const arch = join(tmp, "arch");
  cpSync(join(MODELS_DIR, "llama-mha-f32"), arch, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(arch, "config.json"), "utf8"));
  writeFileSync(join(arch, "config.json"), JSON.stringify({ ...cfg, model_type: "cohere" }));
  cases.push([["generate", arch, "--prompt", "x"], /model_type "cohere" is not supported/]);
  cases.push([["export-gguf", arch, join(tmp, "x.gguf")], /model_type "cohere" is not supported/]);
  cases.push([["info", join(tmp, "nope.gguf")], /no such file/]);
  for (const [args, re] of cases) {
    const r = await run([...args, "--backend", "reference"].filter((a, i, all) => !(args[0] !== "generate" && (a === "--backend" || all[i - 1] === "--backend"))));
    assert.equal(r.code, 2, `${args.join(" ")}: exit ${r.code}, stderr ${r.err}`);
    assert.match(r.err, re, args.join(" "));
    assert.equal(r.err.split("\n").length, 1, `one line: ${r.err}`);
  }
});

test("chunked prefill (3 tokens per call, ragged batch) equals one forward over the whole prompts", async () => {
  const name = "mistral-gqa-window"; // sliding window 5: chunks must see the previous chunk's keys
  const { exp, logits } = expected(name);
  const { model } = await load(join(MODELS_DIR, name));
  const V = exp.logits.shape[1];
  const cache = model.createCache({ kind: "paged", maxTokens: 64, maxSequences: 2 });
  const [a, b] = [cache.addSequence(), cache.addSequence()];
  const short = exp.tokens.slice(0, 4);
  const got = model.prefill(cache, [a, b], [exp.tokens, short], 3);
  const T = exp.tokens.length;
  const worstA = Math.max(...got.subarray(0, V).map((v, i) => Math.abs(v - logits[(T - 1) * V + i])));
  const worstB = Math.max(...got.subarray(V).map((v, i) => Math.abs(v - logits[3 * V + i])));
  assert.ok(worstA < 2e-4 && worstB < 2e-4, `largest error ${worstA.toExponential(2)} (seq a), ${worstB.toExponential(2)} (seq b); tolerance 2e-4`);
  assert.equal(cache.length(a, 0), T);
  assert.equal(cache.length(b, 0), 4);
});
