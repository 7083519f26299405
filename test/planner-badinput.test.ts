// Broken inputs to `mqa plan`, end to end through main(argv): every one is ONE line on stderr that names the file,
// flag or field and what was expected, exit code 2, no stack trace, and nothing non-finite is ever printed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { runCli } from "./cli-helpers.js";

const run = runCli;

/** Exit 2, exactly one stderr line starting "mqa: ", no stack frame, and every pattern found in it. */
async function expectUserError(args: string[], ...patterns: RegExp[]): Promise<void> {
  const { code, err } = await run(["plan", ...args]);
  const what = `mqa plan ${args.join(" ")}`;
  assert.equal(code, 2, `${what}: exit code ${code}, stderr: ${err}`);
  const lines = err.split("\n");
  assert.equal(lines.length, 1, `${what}: ${lines.length} stderr lines: ${err}`);
  assert.match(lines[0], /^mqa: /, what);
  assert.doesNotMatch(err, /\n\s+at /, `${what}: stack trace`);
  for (const p of patterns) assert.match(lines[0], p, what);
}

const dir = mkdtempSync(join(tmpdir(), "mqa-bad-"));
const file = (name: string, body: string | Buffer) => {
  const path = join(dir, name);
  writeFileSync(path, body);
  return path;
};
const llama = { model_type: "llama", hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32, intermediate_size: 11008, vocab_size: 32000, max_position_embeddings: 4096 };

test("broken config files: empty, array, null, comments, binary, missing folder file, huge or fractional sizes", async () => {
  await expectUserError(["--model", file("empty.json", "")], /empty\.json: not valid JSON/);
  await expectUserError(["--model", file("array.json", "[1, 2]")], /array\.json: expected a JSON object .* got an array/);
  await expectUserError(["--model", file("null.json", "null")], /null\.json: .* got null/);
  await expectUserError(["--model", file("comments.json", '{\n  // a comment\n  "model_type": "llama"\n}')], /comments\.json: not valid JSON/);
  const garbage = Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 37 + 11) % 256));
  mkdirSync(join(dir, "garbage"));
  writeFileSync(join(dir, "garbage", "config.json"), garbage);
  await expectUserError(["--model", join(dir, "garbage")], /garbage\/config\.json: not valid JSON/);
  mkdirSync(join(dir, "nothing"));
  await expectUserError(["--model", join(dir, "nothing")], /nothing: no config\.json in this folder; expected an HF model folder/);
  await expectUserError(["--model", "./no-such-config"], /\.\/no-such-config: no such file/);
  // 1e30 and 2^53 + 1 parse as integers in JavaScript; they used to reach Array.from (RangeError with a stack trace).
  await expectUserError(["--model", file("huge.json", JSON.stringify({ ...llama, num_hidden_layers: 1e30 }))], /num_hidden_layers is 1e\+30; expected an integer <= 100000/);
  await expectUserError(["--model", file("big.json", JSON.stringify(llama).replace('"num_hidden_layers":32', '"num_hidden_layers":9007199254740993'))], /num_hidden_layers .* expected an integer <= 100000/);
  await expectUserError(["--model", file("many.json", JSON.stringify({ ...llama, num_hidden_layers: 1e8 }))], /num_hidden_layers is 100000000; expected an integer <= 100000/);
  await expectUserError(["--model", file("float.json", JSON.stringify({ ...llama, num_attention_heads: 32.5 }))], /num_attention_heads is 32\.5; expected an integer/);
  await expectUserError(["--model", file("kv5.json", JSON.stringify({ ...llama, num_key_value_heads: 5 }))], /not divisible by the KV head count 5/);
  // A head dim of 1e11 gives byte counts past 2^53: refused instead of printing rounded numbers.
  await expectUserError(["--model", file("hd.json", JSON.stringify({ ...llama, head_dim: 1e11 }))], /beyond 2\^53/);
  await expectUserError(["--model", file("experts.json", JSON.stringify({ ...llama, num_local_experts: 1e6, num_experts_per_tok: 2 }))], /experts × 32 layers is beyond any real model/);
});

/** A minimal GGUF v3 header with uint32/string metadata (no tensors). */
function gguf(kv: [string, string | number][]): Buffer {
  const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
  const u64 = (n: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b; };
  const str = (s: string) => { const b = Buffer.from(s, "utf8"); return Buffer.concat([u64(b.length), b]); };
  const parts = [Buffer.from("GGUF"), u32(3), u64(0), u64(kv.length)];
  for (const [k, v] of kv) parts.push(str(k), ...(typeof v === "string" ? [u32(8), str(v)] : [u32(4), u32(v)]));
  return Buffer.concat(parts);
}

test("broken GGUF files: truncated (read as zeros by the parser), missing head_count, SSM architecture", async () => {
  const meta: [string, string | number][] = [["general.architecture", "llama"], ["llama.block_count", 4], ["llama.embedding_length", 256], ["llama.feed_forward_length", 512], ["llama.attention.head_count", 8], ["llama.attention.head_count_kv", 2], ["llama.context_length", 2048], ["llama.vocab_size", 1000]];
  const whole = gguf(meta);
  assert.equal((await run(["plan", "--model", file("ok.gguf", whole), "--context", "2048", "--json"])).code, 0);
  await expectUserError(["--model", file("cut.gguf", whole.subarray(0, whole.length - 20))], /cut\.gguf: truncated GGUF file/);
  await expectUserError(["--model", file("cut30.gguf", whole.subarray(0, 30))], /cut30\.gguf: truncated GGUF file/);
  await expectUserError(["--model", file("nohead.gguf", gguf(meta.filter(([k]) => k !== "llama.attention.head_count")))], /missing GGUF key llama\.attention\.head_count/);
  await expectUserError(["--model", file("text.gguf", "not a gguf at all")], /text\.gguf: not a GGUF file \(starts with "not "; expected "GGUF"\)/);
  await expectUserError(["--model", file("v1.gguf", Buffer.concat([Buffer.from("GGUF"), Buffer.from([1, 0, 0, 0]), Buffer.alloc(16)]))], /v1\.gguf: GGUF version 1 is not supported/);
  await expectUserError(["--model", file("ssm.gguf", gguf([["general.architecture", "mamba"], ["mamba.block_count", 64], ["mamba.ssm.state_size", 16]]))], /mamba\.ssm\.state_size marks a state-space/);
});

test("numeric flags: zero, fractions, negatives, words, hex, 1e30, 2^53+ and non-finite values", async () => {
  const bad = ["0", "1.5", "-1", "abc", "", "0x10", "1e30", "9007199254740993", "Infinity", "NaN"];
  for (const flag of ["--context", "--batch", "--tp", "--gpus"]) {
    for (const v of bad) await expectUserError(["--model", "llama-2-7b", flag, v], new RegExp(`^mqa: ${flag}: .* is not an integer >= 1`));
  }
  for (const v of bad.filter((x) => x !== "0")) await expectUserError(["--block-size", v], /--block-size: .* is not an integer >= 0/);
  for (const v of ["0", "1.5", "-1", "abc", "", "0x1", "Infinity", "NaN"]) await expectUserError(["--gpu-memory-utilization", v], /--gpu-memory-utilization: .* is not a number in \(0, 1\]/);
  for (const v of ["-1", "abc", "0x10", "Infinity"]) await expectUserError(["--overhead-gib", v], /--overhead-gib: .* is not a number >= 0/);
  await expectUserError(["--overhead-gib", "1e30"], /--overhead-gib: .* not in \[0, 2\^53 bytes\]/);
  await expectUserError(["--activation-gib", "1e30"], /--activation-gib: .* not in \[0, 2\^53 bytes\]/);
  await expectUserError(["--gpu", "a100-80gb", "--gpu-memory-gib", "1e30"], /--gpu-memory-gib: 1e\+30 is not a number of GiB in/);
  await expectUserError(["--gpu", "a100-80gb", "--gpu-bandwidth-gbs", "1e-320"], /--gpu-bandwidth-gbs: 1e-320 is not a number of GB\/s in/);
  await expectUserError(["--gpu", "a100-80gb", "--gpu-tflops", "0x10"], /--gpu-tflops: "0x10" is not a number/);
  // Sizes that are safe integers but whose byte counts are not.
  await expectUserError(["--context", "9007199254740991"], /kvCacheBytes would be .* beyond 2\^53/);
  await expectUserError(["--model", "llama-3.1-405b", "--context", "131072", "--batch", "100000000"], /beyond 2\^53.*--batch \(100000000\)/);
  await expectUserError(["--gpus", "6", "--tp", "4"], /--gpus 6 is not a multiple of --tp 4/);
});

test("tp the heads cannot take: more GPUs than heads, query or KV heads not dividing (vLLM's rules)", async () => {
  await expectUserError(["--model", "llama-2-7b", "--tp", "64"], /--tp 64: the 32 query heads do not split evenly over 64 GPUs/);
  await expectUserError(["--model", "llama-2-7b", "--tp", "3"], /--tp 3: the 32 query heads/);
  await expectUserError(["--model", "falcon-7b", "--tp", "2"], /--tp 2: the 71 query heads/);
  // Llama-3.2-3B-like: 24 query heads (3 divides them), 8 KV heads (3 neither divides 8 nor is a multiple of it).
  const path = file("l3b.json", JSON.stringify({ ...llama, hidden_size: 3072, num_attention_heads: 24, num_key_value_heads: 8, head_dim: 128 }));
  await expectUserError(["--model", path, "--tp", "3"], /--tp 3: the 8 KV heads neither split evenly/);
  await expectUserError(["--model", path, "--tp", "12"], /--tp 12: the 8 KV heads/);
  // Allowed: 8 KV heads over 24 GPUs replicate 3 times (24 % 8 = 0), but 24 heads over 24 GPUs is also fine.
  const ok = await run(["plan", "--model", path, "--tp", "24", "--json"]);
  assert.equal(ok.code, 0, ok.err);
  assert.equal(JSON.parse(ok.out).kvHeadsPerGpu, 1);
  // A what-if that cannot be split is a warning on its row, not a refusal of the whole plan.
  const w = await run(["plan", "--model", path, "--tp", "4", "--kv-heads", "full,6,1", "--json"]);
  assert.equal(w.code, 0, w.err);
  assert.match(w.err, /what-if GQA-6 with tp 4: the 6 KV heads neither split evenly/);
});

test("unknown names suggest the close ones; bad --kv-heads list the divisors; bad --chart names the flag", async () => {
  await expectUserError(["--gpu", "h10"], /unknown GPU "h10"; did you mean/);
  await expectUserError(["--kv-dtype", "fp17"], /--kv-dtype: unknown dtype "fp17"; expected one of f32, f16, .* \(or fp32, float32, float, fp16, float16, half, bfloat16, fp8_e4m3, float8_e4m3fn\)$/);
  await expectUserError(["--weight-dtype", "Q4_K_M"], /--weight-dtype: unknown dtype "Q4_K_M"; expected one of/);
  await expectUserError(["--model", "lama-2-7b"], /unknown model preset "lama-2-7b"; did you mean llama-2-7b/);
  await expectUserError(["--kv-heads", "5"], /--kv-heads: 5 does not divide the 32 query heads; expected one of 1, 2, 4, 8, 16, 32/);
  await expectUserError(["--kv-heads", "64"], /--kv-heads: 64 does not divide/);
  await expectUserError(["--kv-heads", "0"], /--kv-heads: "0" is not a positive integer/);
  await expectUserError(["--chart", join(dir, "plot.jpg")], /--chart .*plot\.jpg: cannot tell the chart kind/);
  await expectUserError(["--chart", join(dir, "heatmap.jpg")], /--chart .*heatmap\.jpg: expected a \.svg or \.png/);
  // A path under a regular file cannot be created (ENOTDIR), as root too.
  const blocker = file("blocker", "x");
  await expectUserError(["--chart", join(blocker, "heatmap.svg")], /--chart .*blocker\/heatmap\.svg: cannot write the file/);
});

test("chart and seed-table folders under /proc fail at once (Node's recursive mkdir loops forever there)", { timeout: 60_000 }, async () => {
  await expectUserError(["--chart", "/proc/mqa-no-such-dir/heatmap.svg"], /--chart \/proc\/mqa-no-such-dir\/heatmap\.svg: cannot write the file \(ENOENT/);
  const { code, err } = await run(["seed-tables", "--out", "/proc/mqa-no-such-dir"]);
  assert.equal(code, 2, err);
  assert.match(err, /^mqa: --out \/proc\/mqa-no-such-dir: cannot write seed-tables\.md \(ENOENT/);
  const { makeDirs } = await import("../src/planner/render.js");
  const deep = join(dir, "a", "b", "c");
  makeDirs(deep);
  makeDirs(deep); // existing folders are fine
  const { existsSync } = await import("node:fs");
  assert.ok(existsSync(deep));
});

test("usage mistakes caught by the argument parser are one mqa: line too (unknown flag, missing value)", async () => {
  await expectUserError(["--no-such-flag"], /unknown option '--no-such-flag'/);
  await expectUserError(["--context"], /--context/);
});
