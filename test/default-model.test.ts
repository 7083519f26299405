// The model shipped in models/default (written by `bench/uptraining.ts --ship`): it fits the
// issue's 20 MB, `mqa generate` uses it when given no model, and it has learned its corpus: on
// held-out text it never saw (the start of Titus and of the 2014 State of the Union, both validation
// documents) it scores far below what a model with no knowledge of English can reach.
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { runEval } from "../src/eval/run.js";
import { defaultModelDir } from "../src/package-root.js";
import { runCli } from "./cli-helpers.js";

const dir = defaultModelDir();

test("models/default is at most 20 MB of f16 weights", () => {
  const bytes = statSync(join(dir, "model.safetensors")).size;
  assert.ok(bytes <= 20e6, `model.safetensors is ${bytes} bytes; the issue allows 20 MB`);
  const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  assert.equal(cfg.torch_dtype, "float16");
});

// A byte-level model that knows only English letter frequencies needs about 4.1–4.5 bits per byte.
// The shipped model (MHA pre-trained, pca-converted to GQA-2, uptrained; its README) scores 1.82 on
// this text, the default it replaced 2.37; the text is 832 tokens, so the standard error is about
// 0.035 bits per byte and 2.1 is 8 of them above the shipped model and the old default fails it.
const MAX_BITS_PER_BYTE = 2.1;

test(`models/default scores < ${MAX_BITS_PER_BYTE} bits per byte on held-out KJV and State of the Union text`, async () => {
  const text = new URL("fixtures/heldout-kjv-sotu.txt", import.meta.url).pathname;
  const r = await runEval({ model: dir, text, context: 256, stride: 256, threads: 1 });
  assert.ok(r.tokens > 800, `${r.tokens} tokens scored`);
  assert.ok(r.bitsPerByte < MAX_BITS_PER_BYTE, `held-out bits per byte ${r.bitsPerByte.toFixed(3)} (${r.bytes} bytes scored); expected < ${MAX_BITS_PER_BYTE}`);
  const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  assert.equal(cfg.num_key_value_heads, 2, "the shipped default is the GQA-2 model its README describes");
});

test("mqa generate with no model uses models/default and writes words", async () => {
  const r = await runCli(["generate", "--prompt", "And the LORD said unto Moses,", "--max-tokens", "40", "--temperature", "0.8", "--top-p", "0.95", "--seed", "7", "--threads", "1", "--json"]);
  assert.equal(r.code, 0, r.err);
  const out = JSON.parse(r.out);
  assert.equal(out.model, dir);
  assert.ok(out.tokens.length > 0 && out.tokens.length <= 40, `${out.tokens.length} tokens`);
  const words = out.text.split(/\s+/).filter((w: string) => w.length > 0);
  const wordlike = words.filter((w: string) => /^[A-Za-z'’,.;:!?()-]+$/.test(w));
  assert.ok(wordlike.length >= 0.8 * words.length, `only ${wordlike.length} of ${words.length} generated words are made of letters: ${JSON.stringify(out.text)}`);
});
