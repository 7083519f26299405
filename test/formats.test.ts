// Checkpoint formats: safetensors header validation (truncated / forged headers are one clear
// error, never a crash or a huge allocation), sharded folders, the weight table's shape/dtype
// assertions, GGUF write → read round trips (Q/K permutation, Q8_0), and tokenizer glue.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../src/errors.js";
import { openSafetensors, readSafetensorsHeader } from "../src/formats/safetensors.js";
import { ggufModelSource, permuteQK, readGguf, unpermuteQK, writeGguf } from "../src/formats/gguf.js";
import { decodeQ8_0 } from "../src/dtypes/q8_0.js";
import { exportGguf } from "../src/convert/export-gguf.js";
import { applyChatTemplate, loadTokenizer, tokenizerFromGguf } from "../src/formats/tokenizer.js";
import { assertClose } from "./attention-helpers.js";
import { MODELS_DIR, expected, load } from "./models-helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "mqa-formats-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A safetensors file from a header object and a data section. */
function st(name: string, header: unknown, data: Uint8Array, lenOverride?: bigint): string {
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lenOverride ?? BigInt(h.length));
  const path = join(tmp, name);
  writeFileSync(path, Buffer.concat([len, h, data]));
  return path;
}

function throwsUser(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${(e as Error)?.stack ?? e}`);
    for (const p of parts) assert.ok((e as Error).message.includes(p), `message "${(e as Error).message}" lacks "${p}"`);
    assert.ok(!(e as Error).message.includes("\n"), "one line");
    return true;
  });
}

test("safetensors: a valid file reads back, offsets become absolute", () => {
  const p = st("ok.safetensors", { a: { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] }, b: { dtype: "F16", shape: [3], data_offsets: [16, 22] } }, new Uint8Array(22));
  const h = readSafetensorsHeader(p);
  assert.deepEqual(h.tensors.get("b")!.shape, [3]);
  const headerLen = readFileSync(p).readBigUInt64LE(0);
  assert.equal(h.tensors.get("b")!.offset, 8 + Number(headerLen) + 16);
});

test("safetensors: truncated and forged headers are one-line UserErrors naming the file and tensor", () => {
  const data = new Uint8Array(16);
  const a = (offs: unknown, extra: object = {}) => ({ a: { dtype: "F32", shape: [2, 2], data_offsets: offs, ...extra } });
  throwsUser(() => readSafetensorsHeader(st("huge.safetensors", a([0, 16]), data, 2n ** 60n)), "huge.safetensors", "header length");
  throwsUser(() => readSafetensorsHeader(st("trunc.safetensors", a([0, 16]), new Uint8Array(8))), `tensor "a"`, "truncated");
  throwsUser(() => readSafetensorsHeader(st("span.safetensors", a([0, 12]), data)), `tensor "a"`, "needs 16");
  throwsUser(() => readSafetensorsHeader(st("neg.safetensors", a([16, 0]), data)), "data_offsets");
  throwsUser(() => readSafetensorsHeader(st("dtype.safetensors", a([0, 16], { dtype: "F8" }), data)), "unknown dtype");
  throwsUser(() => readSafetensorsHeader(st("shape.safetensors", a([0, 16], { shape: [2, -2] }), data)), "shape");
  const overlap = { a: { dtype: "F32", shape: [4], data_offsets: [0, 16] }, b: { dtype: "F32", shape: [2], data_offsets: [8, 16] } };
  throwsUser(() => readSafetensorsHeader(st("overlap.safetensors", overlap, data)), "overlap");
  const p = join(tmp, "notjson.safetensors");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(4n);
  writeFileSync(p, Buffer.concat([len, Buffer.from("{oops")]));
  throwsUser(() => readSafetensorsHeader(p), "not valid JSON");
  writeFileSync(join(tmp, "tiny.safetensors"), "abc");
  throwsUser(() => readSafetensorsHeader(join(tmp, "tiny.safetensors")), "too short");
});

test("safetensors: a sharded folder lists every tensor; an index pointing at a missing tensor is an error", () => {
  const dir = join(MODELS_DIR, "llama3-gqa-sharded");
  const all = openSafetensors(dir);
  const index = JSON.parse(readFileSync(join(dir, "model.safetensors.index.json"), "utf8"));
  assert.equal(all.size, Object.keys(index.weight_map).length);
  const bad = join(tmp, "badshard");
  cpSync(dir, bad, { recursive: true });
  index.weight_map["model.extra.weight"] = "model-00001-of-00002.safetensors";
  writeFileSync(join(bad, "model.safetensors.index.json"), JSON.stringify(index));
  throwsUser(() => openSafetensors(bad), "model.extra.weight", "no such tensor");
});

test("weight table: wrong shape, wrong dtype and missing tensors name the tensor and both values", async () => {
  const src = join(MODELS_DIR, "llama-mha-f32");
  const mk = (name: string, edit: (cfg: Record<string, unknown>) => void) => {
    const d = join(tmp, name);
    cpSync(src, d, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(d, "config.json"), "utf8"));
    edit(cfg);
    writeFileSync(join(d, "config.json"), JSON.stringify(cfg));
    return d;
  };
  const reject = async (d: string, ...parts: string[]) => {
    await assert.rejects(load(d), (e: unknown) => {
      assert.ok(e instanceof UserError, String(e));
      for (const p of parts) assert.ok((e as Error).message.includes(p), `"${(e as Error).message}" lacks "${p}"`);
      return true;
    });
  };
  await reject(mk("shape", (c) => (c.intermediate_size = 100)), `"model.layers.0.mlp.gate_proj.weight"`, "[128, 64]", "[100, 64]");
  await reject(mk("kv", (c) => (c.num_key_value_heads = 2)), "k_proj", "[64, 64]", "[32, 64]");
  // Untied config over a tied checkpoint: lm_head.weight is missing. The reverse is allowed, with the extra tensor reported.
  const tiedSrc = join(MODELS_DIR, "gemma-mqa");
  const untied = join(tmp, "untied");
  cpSync(tiedSrc, untied, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(untied, "config.json"), "utf8"));
  writeFileSync(join(untied, "config.json"), JSON.stringify({ ...cfg, tie_word_embeddings: false }));
  await reject(untied, `missing tensor "lm_head.weight"`, "[288, 32]");
  const extra = await load(mk("tied", (c) => (c.tie_word_embeddings = true)));
  assert.deepEqual(extra.unusedTensors, ["lm_head.weight"]);
  await reject(mk("arch", (c) => (c.model_type = "cohere")), `model_type "cohere" is not supported`, "llama");
  // An I32 tensor where F32 is expected.
  const d = join(tmp, "dtype");
  cpSync(src, d, { recursive: true });
  const path = join(d, "model.safetensors");
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = buf.subarray(8, 8 + n).toString().replace(`"model.norm.weight":{"dtype":"F32"`, `"model.norm.weight":{"dtype":"I32"`);
  writeFileSync(path, Buffer.concat([buf.subarray(0, 8), Buffer.from(header), buf.subarray(8 + n)]));
  await reject(d, `"model.norm.weight"`, "I32", "expected F32, F16 or BF16");
});

test("GGUF: Q/K permutation is llama.cpp's (pairs (i, i+D/2) -> (2i, 2i+1)) and unpermute inverts it", () => {
  // One head, D = 4, width 1: HF rows [r0 r1 r2 r3] = (x0, x1 | y0, y1) pairs (r0, r2), (r1, r3).
  const w = Float32Array.from([0, 1, 2, 3]);
  assert.deepEqual([...permuteQK(w, 1, 1)], [0, 2, 1, 3]);
  const big = Float32Array.from({ length: 3 * 8 * 5 }, (_, i) => i);
  assert.deepEqual([...unpermuteQK(permuteQK(big, 3, 5), 3, 5)], [...big]);
});

test("GGUF: Q8_0 blocks dequantize to d·q", () => {
  const raw = new Uint8Array(34 * 2);
  const dv = new DataView(raw.buffer);
  dv.setUint16(0, 0x3800, true); // f16 0.5
  dv.setUint16(34, 0xc000, true); // f16 -2
  for (let i = 0; i < 32; i++) {
    dv.setInt8(2 + i, i - 16);
    dv.setInt8(36 + i, 127 - i);
  }
  const f = decodeQ8_0(raw, 64);
  for (let i = 0; i < 32; i++) {
    assert.equal(f[i], 0.5 * (i - 16));
    assert.equal(f[32 + i], -2 * (127 - i));
  }
});

test("GGUF: readGguf sizes a Q8_0 tensor by 34-byte blocks of 32 values", async () => {
  const path = join(tmp, "q8.gguf");
  const raw = new Uint8Array(34);
  new DataView(raw.buffer).setUint16(0, 0x3c00, true); // d = 1
  for (let i = 0; i < 32; i++) raw[2 + i] = (i * 3) & 0x7f;
  // writeGguf writes f32/f16 only; patch the type byte of a 34-byte "f16" tensor to Q8_0 (8).
  writeGguf(path, [["general.architecture", { type: "string", value: "llama" }]], [
    { name: "blk.0.ffn_norm.weight", shape: [17], type: "f16", bytes: 34, write: (emit) => emit(raw) },
  ]);
  const buf = readFileSync(path);
  const at = buf.indexOf(Buffer.from("blk.0.ffn_norm.weight")) + "blk.0.ffn_norm.weight".length;
  buf.writeUInt32LE(1, at); // n_dims 1
  buf.writeBigUInt64LE(32n, at + 4); // ne0 = 32
  buf.writeUInt32LE(8, at + 12); // Q8_0
  writeFileSync(path, buf);
  const file = await readGguf(path);
  const t = file.tensors.get("blk.0.ffn_norm.weight")!;
  assert.deepEqual([t.type, t.shape, t.bytes], [8, [32], 34]);
});

test("GGUF export → our GGUF reader reproduces the HF-folder logits (f32 exactly, f16 within f16 rounding)", async () => {
  for (const name of ["llama-mha-f32", "llama3-gqa-sharded"]) {
    const { exp, logits } = expected(name);
    for (const dtype of ["f32", "f16"] as const) {
      const out = join(tmp, `${name}-${dtype}.gguf`);
      exportGguf(join(MODELS_DIR, name), out, dtype);
      const { model, spec } = await load(out);
      assert.equal(spec.family, "llama");
      const cache = model.createCache({});
      const got = model.forward(cache, [cache.addSequence()], [exp.tokens], "all");
      // f32: only summation-order and RoPE-table differences (freq_factors vs llama3 formula), observed < 2e-6.
      // f16: weights rounded to 11 significant bits move logits of magnitude <= 17 by up to ~0.05.
      assertClose(`${name} via ${dtype} GGUF`, got, logits, dtype === "f32" ? 1e-4 : 0.1, dtype === "f32" ? 1e-5 : 0.02);
    }
  }
});

test("tokenizer: tokenizer.json and the GGUF-embedded vocabulary encode and decode alike; chat template renders", async () => {
  const dir = join(MODELS_DIR, "llama-mha-f32");
  const tok = await loadTokenizer(dir);
  const text = "the cat sat on the mat. héllo";
  const ids = tok.encode(text);
  assert.ok(ids.length < Buffer.byteLength(text), `BPE merges shorten the ${Buffer.byteLength(text)} bytes, got ${ids.length} ids`);
  assert.equal(tok.decode(ids), text);
  assert.deepEqual(tok.eosIds, [287]);
  const out = join(tmp, "tok.gguf");
  exportGguf(dir, out, "f32");
  const g = await tokenizerFromGguf((await readGguf(out)).metadata, out);
  assert.deepEqual(g.encode(text), ids);
  assert.deepEqual(g.eosIds, [287]);
  const chat = await applyChatTemplate(tok, [{ role: "user", content: "hi" }], dir);
  assert.equal(chat, "<s>user: hi\n<s>assistant:");
  assert.equal(tok.encode(chat)[0], 286, "<s> is one special token");
  const { spec } = await ggufModelSource(out);
  assert.equal(spec.vocabSize, 288);
});
