// generateAsync (the server's loop) against generate(): the same tokens and streamed text for a
// batch, greedy and sampled; an abort stops it between steps; OpenAI's frequency and presence
// penalties count the completion only.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { generate, generateAsync } from "../src/generate/generate.js";
import { applyFrequencyPenalties, checkSampling, sampleToken, seededRandom } from "../src/generate/sampling.js";
import { loadTokenizer } from "../src/formats/tokenizer.js";
import { UserError } from "../src/errors.js";
import { MODELS_DIR, load } from "./models-helpers.js";

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
  await assert.rejects(generateAsync(model, [[1, 2, 3]], { maxTokens: -1 }), (e: unknown) => e instanceof UserError && /--max-tokens/.test((e as Error).message));
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
