// generateAsync (the server's loop) against generate(): the same tokens and streamed text for a
// batch, greedy and sampled; an abort stops it between steps; OpenAI's frequency and presence
// penalties count the completion only; logprobs (prompt and completion) equal PyTorch's log-softmax.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Batch, generate, generateAsync } from "../src/generate/generate.js";
import { applyFrequencyPenalties, checkSampling, sampleToken, seededRandom, tokenLogprob } from "../src/generate/sampling.js";
import { loadTokenizer } from "../src/formats/tokenizer.js";
import { UserError } from "../src/errors.js";
import { MODELS_DIR, expected, load } from "./models-helpers.js";

const name = "llama3-gqa-sharded";

test("generateAsync equals generate(): tokens, finish reasons and streamed text of a batch (greedy and sampled)", async () => {
  const { model } = await load(join(MODELS_DIR, name));
  const tok = await loadTokenizer(join(MODELS_DIR, name));
  const prompts = [tok.encode("the cat sat"), tok.encode("a dog"), [40]];
  for (const opts of [{ temperature: 0 }, { temperature: 0.9, topK: 50, topP: 0.95, frequencyPenalty: 0.7, presencePenalty: 0.3, seed: 11 }]) {
    const streamed = [prompts.map(() => ""), prompts.map(() => "")];
    const common = { maxTokens: 12, ...opts, decode: (ids: number[]) => tok.decode(ids), stopStrings: ["at"] };
    const a = generate(model, prompts, { ...common, onText: (b, d) => (streamed[0][b] += d) });
    const b = await generateAsync(model, prompts, { ...common, onText: (i, d) => (streamed[1][i] += d) });
    assert.equal(b.aborted, false);
    assert.deepEqual(b.sequences, a.sequences, JSON.stringify(opts));
    assert.deepEqual(streamed[1], streamed[0]);
    assert.deepEqual(streamed[1], a.sequences.map((s) => s.text));
    assert.equal(b.decodeTokens, a.decodeTokens);
  }
  // Prefill in 2-token chunks (the loop yields between them): the same greedy tokens.
  const chunked = await generateAsync(model, prompts, { maxTokens: 12, temperature: 0, prefillChunk: 2 });
  assert.deepEqual(chunked.sequences.map((s) => s.tokens), generate(model, prompts, { maxTokens: 12, temperature: 0 }).sequences.map((s) => s.tokens));
});

test("generateAsync: an aborted signal stops between steps; bad options reject before any work", async () => {
  const { model } = await load(join(MODELS_DIR, name));
  const ctl = new AbortController();
  let tokens = 0;
  const r = await generateAsync(model, [[1, 2, 3]], { maxTokens: 40, signal: ctl.signal, onToken: () => ++tokens === 5 && ctl.abort() });
  assert.equal(r.aborted, true);
  assert.equal(r.sequences[0].tokens.length, 5, "the step that aborted finishes; no further step runs");
  const pre = new AbortController();
  pre.abort();
  const none = await generateAsync(model, [[1, 2, 3]], { maxTokens: 40, signal: pre.signal });
  assert.deepEqual([none.aborted, none.sequences[0].tokens.length, none.prefillTokens], [true, 0, 3]);
  // maxTokens 0 with a tokenizer: empty text (decode([]) would throw in @huggingface/tokenizers).
  const tok = await loadTokenizer(join(MODELS_DIR, name));
  assert.equal(generate(model, [[1, 2, 3]], { maxTokens: 0, decode: (ids) => tok.decode(ids) }).sequences[0].text, "");
  await assert.rejects(generateAsync(model, [[1, 2, 3]], { maxTokens: -1 }), (e: unknown) => e instanceof UserError && /^maxTokens/.test((e as Error).message));
});

test("frequency / presence penalties: logit -= f · count + p for generated tokens only; range checked", () => {
  const logits = new Float32Array([1, 2, 3, 4]);
  applyFrequencyPenalties(logits, [1, 3, 3], 0.5, 0.25);
  assert.deepEqual([...logits], [1, 2 - 0.5 - 0.25, 3, 4 - 1 - 0.25]);
  // Greedy: the prompt's tokens (seen) do not count, the completion's (generated) do.
  const o = checkSampling({ temperature: 0, frequencyPenalty: 2, seed: 1 });
  assert.equal(sampleToken(new Float32Array([0, 3, 2]), o, [1, 1, 1], seededRandom(1), []), 1);
  assert.equal(sampleToken(new Float32Array([0, 3, 2]), o, [1], seededRandom(1), [1]), 2);
  assert.throws(() => checkSampling({ presencePenalty: 3 }), (e: unknown) => e instanceof UserError && /--presence-penalty 3/.test((e as Error).message));
});

/** log softmax of a float32 row in float64: the reference for the logprobs. */
function logSoftmax(row: Float32Array): number[] {
  const max = Math.max(...row);
  const logZ = max + Math.log(row.reduce((a, x) => a + Math.exp(x - max), 0));
  return [...row].map((x) => x - logZ);
}

test("logprobs: prompt and generated tokens equal log-softmax of PyTorch's logits; top alternatives are the largest, in order", async () => {
  const { exp, logits } = expected(name);
  const V = exp.logits.shape[1];
  const { model } = await load(join(MODELS_DIR, name));
  const P = exp.prompt.length;
  const k = 3;
  // prefillChunk 4: prompt rows cross a chunk boundary.
  const r = (await generateAsync(model, [exp.prompt], { maxTokens: exp.greedy.length, temperature: 0, logprobs: k, promptLogprobs: true, prefillChunk: 4 })).sequences[0];
  assert.deepEqual(r.tokens, exp.greedy);
  assert.equal(r.promptLogprobs!.length, P);
  assert.equal(r.promptLogprobs![0], null);
  const got = [...r.promptLogprobs!.slice(1), ...r.logprobs!];
  const tol = 1e-4; // the logits match PyTorch to ~1e-5 (test/models.test.ts); log-softmax does not amplify
  let worst = { err: 0, at: -1 };
  got.forEach((lp, i) => {
    const ref = logSoftmax(logits.subarray(i * V, (i + 1) * V)); // row i scores token i + 1 of prompt + greedy
    const err = Math.abs(lp!.logprob - ref[exp.tokens[i + 1]]);
    assert.equal(lp!.token, exp.tokens[i + 1]);
    if (err > worst.err) worst = { err, at: i };
    const order = ref.map((x, t) => [x, t]).sort((a, b) => b[0] - a[0]).slice(0, k);
    assert.deepEqual(lp!.top.map((t) => t.token), order.map((o) => o[1]), `top ${k} at row ${i}`);
    lp!.top.forEach((t, j) => (worst = Math.abs(t.logprob - order[j][0]) > worst.err ? { err: Math.abs(t.logprob - order[j][0]), at: i } : worst));
  });
  assert.ok(worst.err < tol, `largest logprob error ${worst.err.toExponential(2)} at row ${worst.at}; tolerance ${tol}`);
  // generate() reports the same; without promptLogprobs there are none.
  const g = generate(model, [exp.prompt], { maxTokens: exp.greedy.length, temperature: 0, logprobs: k }).sequences[0];
  assert.deepEqual(g.logprobs!.map((l) => l.token), exp.greedy);
  assert.equal(g.promptLogprobs, undefined);
  // p = [1/4, 3/4] (log 3 rounded to f32: 1e-7).
  const small = tokenLogprob(new Float32Array([0, Math.log(3)]), 0, 2);
  assert.deepEqual(small.top.map((t) => t.token), [1, 0]);
  for (const [a, b] of [[small.logprob, Math.log(0.25)], [small.top[0].logprob, Math.log(0.75)]]) assert.ok(Math.abs(a - b) < 1e-6, `${a} vs ${b}; tolerance 1e-6`);
});

test("Batch: a sequence that joins mid-decode gets generate()'s tokens; prefill rows per step stay within the shared budget; finished sequences free their KV", async () => {
  const { model } = await load(join(MODELS_DIR, name));
  const a = [5, 6, 7];
  const b = [9, 10, 11, 12, 13, 14, 15, 16, 17, 18];
  const alone = (p: number[]) => generate(model, [p], { maxTokens: 8, temperature: 0.8, seed: 4 }).sequences[0].tokens;
  const rows: number[][] = [];
  const forward = model.forward.bind(model);
  model.forward = (cache, seqs, tokens, logits) => (rows.push(tokens.map((t) => t.length)), forward(cache, seqs, tokens, logits));
  try {
    const batch = new Batch(model, { maxSequences: 2, prefillChunk: 4 });
    const ra = batch.add(a, { maxTokens: 8, temperature: 0.8, seed: 4 });
    let done = 0;
    batch.step();
    batch.step();
    const rb = batch.add(b, { maxTokens: 8, temperature: 0.8, seed: 4, onDone: () => done++ });
    while (batch.step());
    assert.deepEqual(ra.tokens, alone(a));
    assert.deepEqual(rb.tokens, alone(b));
    assert.equal(done, 1);
    // Steps 3-5: a decodes (1 row) while b prefills 4 + 4 + 2 prompt rows.
    assert.deepEqual(rows.slice(2, 5), [[1, 4], [1, 4], [1, 2]]);
    assert.equal(batch.cache.bytes(), 0, "both sequences freed their rows");
    batch.dispose();
  } finally {
    model.forward = forward;
  }
});
