// The package entry (src/index.ts, published as dist/src/index.js) is enough to run a model from
// TypeScript: open the shipped default model, encode a prompt, generate greedily with the
// tokenizer's end-of-sequence ids and streamed text, and get the same tokens as `mqa generate --json`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { defaultModelDir, generate, openRuntime } from "../src/index.js";

test("library: openRuntime + generate on the default model streams text and equals the CLI's greedy tokens", async () => {
  const rt = await openRuntime(defaultModelDir(), { threads: 1 });
  try {
    const tok = rt.tokenizer!;
    const prompt = tok.encode("And God said");
    let streamed = "";
    const r = generate(rt.model, [prompt], { maxTokens: 10, temperature: 0, stopTokens: tok.eosIds, decode: (ids) => tok.decode(ids), onText: (_, d) => (streamed += d) });
    const seq = r.sequences[0];
    assert.equal(seq.tokens.length, 10, "10 greedy tokens (no stop token in this continuation)");
    assert.equal(streamed, seq.text, "the streamed deltas add up to the text");
    const cli = JSON.parse(execFileSync(process.execPath, [join(import.meta.dirname, "..", "bin", "mqa.js"), "generate", "--prompt", "And God said", "--max-tokens", "10", "--threads", "1", "--json"], { encoding: "utf8" }));
    assert.deepEqual(seq.tokens, cli.tokens, "same tokens as mqa generate --json");
    assert.equal(seq.text, cli.text);
  } finally {
    rt.close();
  }
});
