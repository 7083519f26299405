// The model shipped in models/default (written by `bench/train_experiment.ts --ship`): it fits the
// issue's 20 MB, `mqa generate` uses it when given no model, and it has learned its corpus: on
// held-out text it never saw (the start of Titus and of the 2014 State of the Union, both validation
// documents) it scores far below what a model with no knowledge of English can reach.
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { openRuntime } from "../src/generate/runtime.js";
import { defaultModelDir } from "../src/package-root.js";
import { runCli } from "./cli-helpers.js";

const dir = defaultModelDir();

test("models/default is at most 20 MB of f16 weights", () => {
  const bytes = statSync(join(dir, "model.safetensors")).size;
  assert.ok(bytes <= 20e6, `model.safetensors is ${bytes} bytes; the issue allows 20 MB`);
  const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  assert.equal(cfg.torch_dtype, "float16");
});

// A byte-level model that knows only English letter frequencies needs about 4.1–4.5 bits per byte;
// 3.0 means the model predicts words from their context.
const MAX_BITS_PER_BYTE = 3.0;

test(`models/default scores < ${MAX_BITS_PER_BYTE} bits per byte on held-out KJV and State of the Union text`, async () => {
  const rt = await openRuntime(dir, { threads: 1 });
  try {
    const tok = rt.tokenizer!;
    const text = readFileSync(new URL("fixtures/heldout-kjv-sotu.txt", import.meta.url), "utf8");
    const T = rt.model.maxContext;
    const V = rt.spec.vocabSize;
    let bits = 0, bytes = 0;
    for (const para of text.split("\n\n")) {
      const ids = tok.encode(para);
      for (let start = 0; start + 1 < ids.length; start += T) {
        const win = ids.slice(start, start + T);
        const cache = rt.model.createCache({ maxTokens: win.length });
        const logits = rt.model.forward(cache, [cache.addSequence()], [win], "all");
        cache.dispose();
        for (let t = 0; t + 1 < win.length; t++) {
          const row = logits.subarray(t * V, (t + 1) * V);
          let max = -Infinity;
          for (let v = 0; v < V; v++) max = Math.max(max, row[v]);
          let sum = 0;
          for (let v = 0; v < V; v++) sum += Math.exp(row[v] - max);
          bits += (Math.log(sum) + max - row[win[t + 1]]) / Math.LN2;
          bytes += Buffer.byteLength(tok.decode([win[t + 1]]));
        }
      }
    }
    const bpb = bits / bytes;
    assert.ok(bpb < MAX_BITS_PER_BYTE, `held-out bits per byte ${bpb.toFixed(3)} (${bytes} bytes scored); expected < ${MAX_BITS_PER_BYTE}`);
  } finally {
    rt.close();
  }
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
