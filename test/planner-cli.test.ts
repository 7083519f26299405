// `mqa plan` end to end through main(argv): JSON keys, tables, charts, and one-line errors with exit code 2.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { runCli } from "./cli-helpers.js";

const FIX = join(import.meta.dirname, "fixtures", "configs");
const GiB = 1024 ** 3;

const run = runCli;

test("--json prints one object with the exact integer keys", async () => {
  const { code, out } = await run(["plan", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--gpus", "4", "--tp", "4", "--context", "32768", "--json"]);
  assert.equal(code, 0);
  const r = JSON.parse(out);
  for (const k of ["kvBytesPerToken", "kvCacheBytes", "kvCacheBytesPerGpu", "weightBytes", "maxBatch", "maxContext"]) {
    assert.ok(Number.isSafeInteger(r[k]), `${k} = ${r[k]}`);
  }
  assert.equal(r.kvBytesPerToken, 327680);
  assert.equal(r.kvCacheBytes, 10 * GiB);
  assert.equal(r.kvCacheBytesPerGpu, 2.5 * GiB);
  assert.equal(r.weightBytes, 70_553_706_496 * 2);
  assert.deepEqual(r.variants.map((v: { label: string }) => v.label), ["MHA", "MQA"]);
});

test("a real config.json path and a folder work like presets; --kv-heads full,8,1", async () => {
  const { code, out } = await run(["plan", "--model", join(FIX, "llama-3.1-8b.config.json"), "--kv-dtype", "bf16", "--kv-heads", "full,8,1", "--json"]);
  assert.equal(code, 0);
  const r = JSON.parse(out);
  assert.equal(r.kvBytesPerToken, 131072);
  assert.deepEqual(r.variants.map((v: { kvBytesPerToken: number }) => v.kvBytesPerToken), [524288, 131072, 16384]);
});

test("human output: aligned tables with binary units", async () => {
  const { code, out } = await run(["plan", "--model", "llama-2-7b"]);
  assert.equal(code, 0);
  assert.match(out, /per sequence \(4,096 tokens\)\s+2,147,483,648\s+2\.00 GiB/);
  assert.match(out, /What-if/);
  assert.match(out, /MiB|GiB/);
});

test("charts: cache-vs-context SVG, heatmap PNG, throughput SVG", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mqa-charts-"));
  const files = [join(dir, "cache-vs-context.svg"), join(dir, "heatmap.png"), join(dir, "throughput.svg")];
  const { code, err } = await run(["plan", "--model", "llama-2-7b", "--kv-heads", "full,8,1", ...files.flatMap((f) => ["--chart", f])]);
  assert.equal(code, 0, err);
  assert.match(readFileSync(files[0], "utf8"), /^<svg/);
  assert.deepEqual([...readFileSync(files[1]).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]); // PNG magic
  assert.match(readFileSync(files[2], "utf8"), /GQA-8/);
});

test("bad input: one line on stderr, exit code 2, no stack trace", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mqa-bad-"));
  writeFileSync(join(dir, "broken.json"), "{ \"model_type\": \"llama\", ");
  writeFileSync(join(dir, "neg.json"), JSON.stringify({ model_type: "llama", hidden_size: -4096, num_hidden_layers: 32, num_attention_heads: 32, intermediate_size: 11008, vocab_size: 32000, max_position_embeddings: 4096 }));
  writeFileSync(join(dir, "kv.json"), JSON.stringify({ model_type: "llama", hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 5, intermediate_size: 11008, vocab_size: 32000, max_position_embeddings: 4096 }));
  const cases: [string[], RegExp][] = [
    [["plan", "--model", join(dir, "broken.json")], /broken\.json: not valid JSON/],
    [["plan", "--model", "llama-2-7", "--json"], /unknown model preset "llama-2-7"; did you mean llama-2-7b/],
    [["plan", "--model", join(dir, "kv.json")], /num_attention_heads 32 is not divisible by the KV head count 5/],
    [["plan", "--model", join(dir, "neg.json")], /hidden_size is -4096; expected an integer >= 1/],
    [["plan", "--context", "-5"], /--context: "-5" is not an integer/],
    [["plan", "--batch", "2.5"], /--batch: "2.5" is not an integer/],
    [["plan", "--kv-heads", "3"], /--kv-heads: 3 does not divide the 32 query heads/],
    [["plan", "--gpu", "h1000"], /unknown GPU "h1000"; did you mean h100/],
    [["plan", "--kv-dtype", "f8"], /--kv-dtype: unknown dtype "f8"/],
    [["plan", "--model", join(dir, "missing.json")], /missing\.json: no such file/],
    [["plan", "--chart", join(dir, "picture.svg")], /cannot tell the chart kind/],
    [["plan", "--gpus", "3", "--tp", "2"], /--gpus 3 is not a multiple of --tp 2/],
    [["plan", "--gpu-memory-gib", "24"], /custom GPU needs --gpu-memory-gib and --gpu-bandwidth-gbs/],
  ];
  for (const [args, re] of cases) {
    const { code, out, err } = await run(args);
    assert.equal(code, 2, `${args.join(" ")} → exit ${code}, stderr ${err}`);
    assert.equal(out, "", `${args.join(" ")} printed to stdout`);
    assert.equal(err.split("\n").length, 1, `${args.join(" ")}: stderr is one line: ${err}`);
    assert.match(err, re, args.join(" "));
    assert.doesNotMatch(err, /\n\s+at |Error:/, "no stack trace");
  }
  assert.equal(existsSync(join(dir, "picture.svg")), false);
});

test("custom GPU by numbers and context beyond max positions (warning, still exit 0)", async () => {
  const { code, out, err } = await run(["plan", "--model", "llama-2-7b", "--gpu-memory-gib", "24", "--gpu-bandwidth-gbs", "1000", "--gpu-tflops", "100", "--context", "8k", "--json"]);
  assert.equal(code, 0, err);
  const r = JSON.parse(out);
  assert.equal(r.gpu.memoryBytes, 24 * GiB);
  assert.equal(r.options.context, 8192);
  assert.match(err, /warning: context 8192 exceeds the model's max_position_embeddings 4096/);
});

test("--list-models and --list-gpus", async () => {
  const m = await run(["plan", "--list-models"]);
  assert.match(m.out, /deepseek-v2-lite\s+deepseek-ai\/DeepSeek-V2-Lite/);
  const g = JSON.parse((await run(["plan", "--list-gpus", "--json"])).out);
  assert.ok(g.some((x: { id: string }) => x.id === "mi300x"));
});
