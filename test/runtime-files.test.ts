// The browser-safe loading path (src/formats/buffer-source.ts, src/generate/runtime-files.ts) in Node: the
// same model from in-memory bytes as from the folder on disk, and the errors a picked folder can cause.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Arena } from "../src/kernels/memory.js";
import { createKernels } from "../src/kernels/index.js";
import { bufferSafetensorsSource } from "../src/formats/buffer-source.js";
import { safetensorsSource } from "../src/formats/source.js";
import { openModelFromFiles } from "../src/generate/runtime-files.js";
import { openRuntime } from "../src/generate/runtime.js";
import { generate } from "../src/generate/generate.js";
import { stopTokenIds } from "../src/generate/prompt.js";
import { UserError } from "../src/errors.js";
import { runCli } from "./cli-helpers.js";

const MODEL = join(import.meta.dirname, "..", "models/default");
const FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"];
const read = (names = FILES) => new Map(names.map((f) => [f, new Uint8Array(readFileSync(join(MODEL, f)))] as const));

test("bufferSafetensorsSource: same names, shapes, dtypes and bytes as the file reader", () => {
  const mem = bufferSafetensorsSource(read(["model.safetensors"]));
  const disk = safetensorsSource(MODEL);
  assert.deepEqual(mem.names().sort(), disk.names().sort());
  for (const n of disk.names()) {
    const info = disk.info(n)!;
    assert.deepEqual(mem.info(n), info, n);
    const bytes = info.shape.reduce((a, b) => a * b, 1) * (info.dtype === "F32" ? 4 : 2);
    const [a, b] = [new Uint8Array(bytes), new Uint8Array(bytes)];
    mem.read(n, a);
    disk.read(n, b);
    assert.ok(Buffer.from(a).equals(Buffer.from(b)), `${n}: bytes differ`);
  }
});

test("openModelFromFiles: the same greedy tokens and stop ids as openRuntime on the folder", async () => {
  const rt = await openRuntime(MODEL);
  const arena = new Arena({ initialBytes: 16 * 1024 * 1024 });
  const kernels = await createKernels({ arena });
  try {
    const m = await openModelFromFiles(read(), { arena, kernels, where: "default" });
    const prompt = rt.tokenizer!.encode("In the beginning");
    assert.deepEqual(m.tokenizer!.encode("In the beginning"), prompt);
    assert.deepEqual(m.stopTokens, stopTokenIds(rt, MODEL));
    const opts = { maxTokens: 12, stopTokens: m.stopTokens };
    assert.deepEqual(generate(m.model, [prompt], opts).sequences[0].tokens, generate(rt.model, [prompt], opts).sequences[0].tokens);
    assert.deepEqual({ ...m.spec, name: "", source: "" }, { ...rt.spec, name: "", source: "" }); // name and source say where the config came from
  } finally {
    kernels.close();
    rt.close();
  }
});

test("openModelFromFiles / bufferSafetensorsSource: a bad picked folder is a UserError naming the file", async () => {
  const arena = new Arena({ initialBytes: 16 * 1024 * 1024 });
  const kernels = await createKernels({ arena, backend: "reference" });
  const rejects = (files: Map<string, Uint8Array>, pattern: RegExp) => assert.rejects(openModelFromFiles(files, { arena, kernels, where: "pick" }), (e: Error) => e instanceof UserError && pattern.test(e.message));
  await rejects(read(["model.safetensors"]), /pick: no config\.json/);
  await rejects(read(["config.json"]), /pick: no model\.safetensors/);
  const files = read();
  files.set("model.safetensors", files.get("model.safetensors")!.subarray(0, 5000));
  await rejects(files, /model\.safetensors: .*(exceeds the file|truncated)/);
  const broken = read();
  broken.set("config.json", new TextEncoder().encode("{ not json"));
  await rejects(broken, /pick\/config\.json: not valid JSON/);
  const shards = read(["config.json"]);
  shards.set("model.safetensors.index.json", new TextEncoder().encode(JSON.stringify({ weight_map: { "lm_head.weight": "model-00001-of-00002.safetensors" } })));
  await rejects(shards, /"lm_head\.weight" in "model-00001-of-00002\.safetensors", which is not among the picked files/);
  kernels.close();
});

test("openModelFromFiles: a .gguf in memory gives the same spec, stop ids and greedy tokens as the file on disk", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mqa-runtime-files-"));
  const path = join(dir, "default-q8_0.gguf");
  const saved = process.exitCode; // main() returns process.exitCode when set: clear it for the call, restore it for the runner
  process.exitCode = undefined;
  const r = await runCli(["export-gguf", MODEL, path, "--dtype", "q8_0"]).finally(() => (process.exitCode = saved));
  assert.equal(r.code, 0, r.err);
  const rt = await openRuntime(path);
  const arena = new Arena({ initialBytes: 16 * 1024 * 1024 });
  const kernels = await createKernels({ arena });
  try {
    const bytes = new Uint8Array(readFileSync(path));
    const m = await openModelFromFiles(new Map([["default-q8_0.gguf", bytes]]), { arena, kernels });
    assert.deepEqual({ ...m.spec, name: "", source: "" }, { ...rt.spec, name: "", source: "" });
    const prompt = rt.tokenizer!.encode("In the beginning");
    assert.deepEqual(m.tokenizer!.encode("In the beginning"), prompt);
    assert.deepEqual(m.stopTokens, rt.tokenizer!.eosIds);
    const opts = { maxTokens: 12, stopTokens: m.stopTokens };
    assert.deepEqual(generate(m.model, [prompt], opts).sequences[0].tokens, generate(rt.model, [prompt], opts).sequences[0].tokens);
    // A cut-off download is named as such, as for a file on disk.
    await assert.rejects(openModelFromFiles(new Map([["cut.gguf", bytes.subarray(0, 4000)]]), { arena, kernels }), (e: Error) => e instanceof UserError && /cut\.gguf: .*truncated/.test(e.message));
    await assert.rejects(openModelFromFiles(new Map([["x.gguf", new TextEncoder().encode("not a gguf file")]]), { arena, kernels }), (e: Error) => e instanceof UserError && /x\.gguf: not a GGUF file/.test(e.message));
  } finally {
    kernels.close();
    rt.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
