// GGUF v3: a writer (for `mqa export-gguf` and the llama.cpp parity tests) and a tensor reader
// (metadata is parsed by @huggingface/gguf). The reader presents a GGUF llama model under HF
// tensor names and PyTorch shapes, so the same weight table loads both formats.
//
// File layout (little endian): "GGUF", u32 version 3, u64 tensor count, u64 kv count, kv pairs,
// tensor infos (name, u32 n_dims, u64 ne[n_dims] with ne[0] the fastest-varying = PyTorch's LAST
// dim, u32 ggml type, u64 offset into the data section), padding to `general.alignment` (32),
// then the data, each tensor aligned.
//
// Q/K rows: llama.cpp's converter permutes the rows of q_proj/k_proj inside every head from HF's
// rotate_half layout (pairs (i, i + D/2)) to GGML's interleaved layout (pairs (2i, 2i + 1)):
//   gguf row 2i + j of a head = hf row j·D/2 + i   (j ∈ {0, 1}, i < D/2)
// `permuteQK` applies it and `unpermuteQK` undoes it.
import { closeSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { resolve } from "node:path";
import { errorLine, UserError } from "../errors.js";
import { f16DecodeTable } from "../dtypes/codecs.js";
import { blockValuesOf, decodeBlocks, GGML_QUANTS, QUANT_LAYOUT, type BlockType, type GgmlQuant } from "../dtypes/ggml_quants.js";
import { rowBytes } from "../dtypes/table.js";
import { transposeInto, type TensorSource } from "./source.js";
import { specFromGgufMetadata } from "../config/gguf.js";
import type { ModelSpec } from "../config/types.js";

export const GGUF_ALIGNMENT = 32;
/** ggml tensor types this module reads or writes. */
export const GGML_TYPE = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q4_K: 12, Q5_K: 13, Q6_K: 14, BF16: 30 } as const;
/** The dtype-table name (src/dtypes/table.ts) of each ggml type code this reader accepts. */
const GGML_DTYPE: Record<number, string> = {
  [GGML_TYPE.F32]: "f32", [GGML_TYPE.F16]: "f16", [GGML_TYPE.Q8_0]: "q8_0", [GGML_TYPE.BF16]: "bf16",
  ...Object.fromEntries(GGML_QUANTS.map((q) => [QUANT_LAYOUT[q].ggmlType, q])),
};
/** ggml's names of the types the reader accepts, for error messages: "F32 (0), F16 (1), ...". */
const SUPPORTED_TYPES = Object.entries(GGML_TYPE).map(([name, code]) => `${name} (${code})`).join(", ");
/** ggml_type names of the codes we do not read, so an error can say what a file holds (ggml.h enum ggml_type). */
const OTHER_GGML_TYPES: Record<number, string> = {
  9: "Q8_1", 10: "Q2_K", 11: "Q3_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL",
  21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
};

/** The ggml block type (q4_0 … q6_k, or q8_0) of a ggml type code, or null for f32/f16/bf16. */
function blockType(type: number): BlockType | null {
  const d = GGML_DTYPE[type];
  return d === "q8_0" || (GGML_QUANTS as readonly string[]).includes(d) ? (d as BlockType) : null;
}

/** GGUF metadata value types. */
export const GGUF_VALUE = { UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12 } as const;

export type GgufValue =
  | { type: "u32"; value: number }
  | { type: "i32"; value: number }
  | { type: "f32"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "string[]"; value: string[] }
  | { type: "i32[]"; value: number[] }
  | { type: "f32[]"; value: number[] };

export interface GgufTensorOut {
  name: string; // GGUF name, e.g. "blk.0.attn_q.weight"
  shape: number[]; // PyTorch order, e.g. [N, Kin]; written reversed as ne
  type: "f32" | "f16" | "bf16" | "q8_0" | GgmlQuant;
  bytes: number; // data size
  write: (emit: (chunk: Uint8Array) => void) => void; // produces exactly `bytes` bytes
}

class Buf {
  parts: Buffer[] = [];
  size = 0;
  push(b: Buffer): void {
    this.parts.push(b);
    this.size += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  i32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.push(b);
  }
  f32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
  }
  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.push(b);
  }
}

function writeValue(buf: Buf, v: GgufValue): void {
  const T = GGUF_VALUE;
  switch (v.type) {
    case "u32": buf.u32(T.UINT32); buf.u32(v.value); break;
    case "i32": buf.u32(T.INT32); buf.i32(v.value); break;
    case "f32": buf.u32(T.FLOAT32); buf.f32(v.value); break;
    case "bool": buf.u32(T.BOOL); buf.push(Buffer.from([v.value ? 1 : 0])); break;
    case "string": buf.u32(T.STRING); buf.str(v.value); break;
    case "string[]": buf.u32(T.ARRAY); buf.u32(T.STRING); buf.u64(v.value.length); v.value.forEach((s) => buf.str(s)); break;
    case "i32[]": buf.u32(T.ARRAY); buf.u32(T.INT32); buf.u64(v.value.length); v.value.forEach((x) => buf.i32(x)); break;
    case "f32[]": buf.u32(T.ARRAY); buf.u32(T.FLOAT32); buf.u64(v.value.length); v.value.forEach((x) => buf.f32(x)); break;
  }
}

const pad = (n: number) => (GGUF_ALIGNMENT - (n % GGUF_ALIGNMENT)) % GGUF_ALIGNMENT;

/** Writes a GGUF v3 file, streaming tensor data (never the whole model in memory). */
export function writeGguf(path: string, metadata: [string, GgufValue][], tensors: GgufTensorOut[]): void {
  const head = new Buf();
  head.push(Buffer.from("GGUF"));
  head.u32(3);
  head.u64(tensors.length);
  head.u64(metadata.length);
  for (const [key, v] of metadata) {
    head.str(key);
    writeValue(head, v);
  }
  let offset = 0;
  for (const t of tensors) {
    head.str(t.name);
    head.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) head.u64(d);
    head.u32(t.type === "f32" ? GGML_TYPE.F32 : t.type === "f16" ? GGML_TYPE.F16 : t.type === "bf16" ? GGML_TYPE.BF16 : t.type === "q8_0" ? GGML_TYPE.Q8_0 : QUANT_LAYOUT[t.type].ggmlType);
    head.u64(offset);
    offset += t.bytes + pad(t.bytes);
  }
  head.push(Buffer.alloc(pad(head.size)));
  // Written beside the target and renamed at the end: a failed conversion (bad tensor, full disk)
  // leaves no half-written .gguf behind, and never truncates an existing file before it succeeds.
  const partial = `${path}.partial-${process.pid}`;
  let fd: number;
  try {
    fd = openSync(partial, "w");
  } catch (e) {
    throw new UserError(`${path}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); expected a writable path in an existing folder`);
  }
  try {
    for (const p of head.parts) writeSync(fd, p);
    for (const t of tensors) {
      let n = 0;
      t.write((chunk) => {
        writeSync(fd, chunk);
        n += chunk.length;
      });
      if (n !== t.bytes) throw new Error(`writeGguf: tensor ${t.name} wrote ${n} bytes; expected ${t.bytes}`);
      writeSync(fd, Buffer.alloc(pad(t.bytes)));
    }
    closeSync(fd);
    renameSync(partial, path);
  } catch (e) {
    try { closeSync(fd); } catch { /* already closed */ }
    rmSync(partial, { force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EISDIR") throw new UserError(`${path}: is a folder; expected an output file path`);
    if (typeof code === "string") throw new UserError(`${path}: writing failed (${code}: ${(e as Error).message.split("\n")[0]})`);
    throw e;
  }
}

/** HF rotate_half rows → GGML interleaved rows, per head; w [heads·D, width] (any element array). */
export function permuteQK<T extends Float32Array | Uint16Array>(w: T, heads: number, width: number): T {
  const D = w.length / width / heads;
  const out = new (w.constructor as new (n: number) => T)(w.length);
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < D / 2; i++)
      for (let j = 0; j < 2; j++) {
        const src = (h * D + j * (D / 2) + i) * width;
        out.set(w.subarray(src, src + width), (h * D + 2 * i + j) * width);
      }
  return out;
}

/** The inverse of permuteQK: GGML interleaved rows → HF rotate_half rows. */
export function unpermuteQK<T extends Float32Array | Uint16Array>(w: T, heads: number, width: number): T {
  const out = new (w.constructor as new (n: number) => T)(w.length);
  unpermuteQKInto(w, out, heads, width);
  return out;
}

/** unpermuteQK writing into `out` (same type and length as w, not overlapping it). */
export function unpermuteQKInto<T extends Float32Array | Uint16Array | Uint8Array>(w: T, out: T, heads: number, width: number): void {
  const D = w.length / width / heads;
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < D / 2; i++)
      for (let j = 0; j < 2; j++) {
        const dst = (h * D + j * (D / 2) + i) * width;
        out.set(w.subarray((h * D + 2 * i + j) * width, (h * D + 2 * i + j + 1) * width), dst);
      }
}

/**
 * Falcon's fused query_key_value rows: HF groups them per KV head (K groups of G = H/K query heads, then that group's
 * key, then its value; D rows each), llama.cpp's attn_qkv holds all queries, then all keys, then all values (its
 * converter's reshape). Moves whole rows of `rowBytes` bytes from src to dst; toGguf picks the direction.
 * @example regroupFalconQkv(src, dst, rowBytes, 6, 2, 8, true) // [q0 q1 q2 k0 v0 q3 q4 q5 k1 v1] → [q0..q5 k0 k1 v0 v1]
 */
export function regroupFalconQkv(src: Uint8Array, dst: Uint8Array, rowBytes: number, H: number, K: number, D: number, toGguf: boolean): void {
  const G = H / K;
  const block = D * rowBytes;
  for (let g = 0; g < K; g++) {
    const hf = g * (G + 2); // first head slot of group g in HF's layout
    // [HF head slot, GGUF head slot]: the group's G queries, its key, its value
    const moves: [number, number][] = [...Array.from({ length: G }, (_, j): [number, number] => [hf + j, g * G + j]), [hf + G, H + g], [hf + G + 1, H + K + g]];
    for (const [a, b] of moves) {
      const [from, to] = toGguf ? [a, b] : [b, a];
      dst.set(src.subarray(from * block, (from + 1) * block), to * block);
    }
  }
}

// ---------------------------------------------------------------------------------- reader

/** GGUF name → HF name for the llama and qwen2 architectures (blk.N.* per layer). */
const LLAMA_NAMES: [RegExp, string][] = [
  [/^token_embd\.weight$/, "model.embed_tokens.weight"],
  [/^output_norm\.weight$/, "model.norm.weight"],
  [/^output\.weight$/, "lm_head.weight"],
  [/^blk\.(\d+)\.attn_norm\.weight$/, "model.layers.$1.input_layernorm.weight"],
  [/^blk\.(\d+)\.attn_q\.(weight|bias)$/, "model.layers.$1.self_attn.q_proj.$2"],
  [/^blk\.(\d+)\.attn_k\.(weight|bias)$/, "model.layers.$1.self_attn.k_proj.$2"],
  [/^blk\.(\d+)\.attn_v\.(weight|bias)$/, "model.layers.$1.self_attn.v_proj.$2"],
  [/^blk\.(\d+)\.attn_output\.(weight|bias)$/, "model.layers.$1.self_attn.o_proj.$2"],
  [/^blk\.(\d+)\.attn_q_norm\.weight$/, "model.layers.$1.self_attn.q_norm.weight"], // qwen3
  [/^blk\.(\d+)\.attn_k_norm\.weight$/, "model.layers.$1.self_attn.k_norm.weight"],
  [/^blk\.(\d+)\.ffn_norm\.weight$/, "model.layers.$1.post_attention_layernorm.weight"],
  [/^blk\.(\d+)\.ffn_gate\.weight$/, "model.layers.$1.mlp.gate_proj.weight"],
  [/^blk\.(\d+)\.ffn_up\.weight$/, "model.layers.$1.mlp.up_proj.weight"],
  [/^blk\.(\d+)\.ffn_down\.weight$/, "model.layers.$1.mlp.down_proj.weight"],
];

/** GGUF name → HF name for phi3: the llama names, with fused attn_qkv and ffn_up (gate | up rows) kept fused. */
const PHI3_NAMES: [RegExp, string][] = [
  [/^blk\.(\d+)\.attn_qkv\.weight$/, "model.layers.$1.self_attn.qkv_proj.weight"],
  [/^blk\.(\d+)\.ffn_up\.weight$/, "model.layers.$1.mlp.gate_up_proj.weight"],
  ...LLAMA_NAMES,
];

/** GGUF name → HF name for gemma2 / gemma3: the llama names with the four "sandwich" norms (see ggufNameOf). */
const GEMMA2_NAMES: [RegExp, string][] = [
  [/^blk\.(\d+)\.post_attention_norm\.weight$/, "model.layers.$1.post_attention_layernorm.weight"],
  [/^blk\.(\d+)\.ffn_norm\.weight$/, "model.layers.$1.pre_feedforward_layernorm.weight"],
  [/^blk\.(\d+)\.post_ffw_norm\.weight$/, "model.layers.$1.post_feedforward_layernorm.weight"],
  ...LLAMA_NAMES,
];

/** GGUF name → HF name for falcon (attn_norm_2 is ln_attn; attn_norm is ln_mlp when attn_norm_2 exists, else input_layernorm). */
function falconNames(twoNorms: boolean): [RegExp, string][] {
  return [
    [/^token_embd\.weight$/, "transformer.word_embeddings.weight"],
    [/^output_norm\.(weight|bias)$/, "transformer.ln_f.$1"],
    [/^output\.weight$/, "lm_head.weight"],
    [/^blk\.(\d+)\.attn_norm_2\.(weight|bias)$/, "transformer.h.$1.ln_attn.$2"],
    [/^blk\.(\d+)\.attn_norm\.(weight|bias)$/, `transformer.h.$1.${twoNorms ? "ln_mlp" : "input_layernorm"}.$2`],
    [/^blk\.(\d+)\.attn_qkv\.weight$/, "transformer.h.$1.self_attention.query_key_value.weight"],
    [/^blk\.(\d+)\.attn_output\.weight$/, "transformer.h.$1.self_attention.dense.weight"],
    [/^blk\.(\d+)\.ffn_up\.weight$/, "transformer.h.$1.mlp.dense_h_to_4h.weight"],
    [/^blk\.(\d+)\.ffn_down\.weight$/, "transformer.h.$1.mlp.dense_4h_to_h.weight"],
  ];
}

/** GGUF name → HF name for the starcoder architecture (HF gpt_bigcode; fused c_attn = attn_qkv). */
const STARCODER_NAMES: [RegExp, string][] = [
  [/^token_embd\.weight$/, "transformer.wte.weight"],
  [/^position_embd\.weight$/, "transformer.wpe.weight"],
  [/^output_norm\.(weight|bias)$/, "transformer.ln_f.$1"],
  [/^output\.weight$/, "lm_head.weight"],
  [/^blk\.(\d+)\.attn_norm\.(weight|bias)$/, "transformer.h.$1.ln_1.$2"],
  [/^blk\.(\d+)\.attn_qkv\.(weight|bias)$/, "transformer.h.$1.attn.c_attn.$2"],
  [/^blk\.(\d+)\.attn_output\.(weight|bias)$/, "transformer.h.$1.attn.c_proj.$2"],
  [/^blk\.(\d+)\.ffn_norm\.(weight|bias)$/, "transformer.h.$1.ln_2.$2"],
  [/^blk\.(\d+)\.ffn_up\.(weight|bias)$/, "transformer.h.$1.mlp.c_fc.$2"],
  [/^blk\.(\d+)\.ffn_down\.(weight|bias)$/, "transformer.h.$1.mlp.c_proj.$2"],
];

/**
 * HF name → GGUF name (llama, qwen2, gemma, gemma2 / gemma3_text, and gpt_bigcode as starcoder); null for tensors GGUF
 * does not store. `family` (the HF model_type) matters for Gemma-2/3, whose post_attention_layernorm is the norm on the
 * attention output (post_attention_norm), not the MLP's input norm (ffn_norm = pre_feedforward_layernorm).
 */
export function ggufNameOf(hf: string, family = ""): string | null {
  if (family === "falcon") {
    const falcon: [RegExp, string][] = [
      [/^transformer\.word_embeddings\.weight$/, "token_embd.weight"],
      [/^transformer\.ln_f\.(weight|bias)$/, "output_norm.$1"],
      [/^lm_head\.weight$/, "output.weight"],
      [/^transformer\.h\.(\d+)\.(input_layernorm|ln_mlp)\.(weight|bias)$/, "blk.$1.attn_norm.$3"], // llama.cpp's FFN input norm
      [/^transformer\.h\.(\d+)\.ln_attn\.(weight|bias)$/, "blk.$1.attn_norm_2.$2"],
      [/^transformer\.h\.(\d+)\.self_attention\.query_key_value\.weight$/, "blk.$1.attn_qkv.weight"],
      [/^transformer\.h\.(\d+)\.self_attention\.dense\.weight$/, "blk.$1.attn_output.weight"],
      [/^transformer\.h\.(\d+)\.mlp\.dense_h_to_4h\.weight$/, "blk.$1.ffn_up.weight"],
      [/^transformer\.h\.(\d+)\.mlp\.dense_4h_to_h\.weight$/, "blk.$1.ffn_down.weight"],
    ];
    for (const [re, to] of falcon) if (re.test(hf)) return hf.replace(re, to);
    return null;
  }
  if (family === "gemma2" || family === "gemma3_text") {
    const sandwich: [RegExp, string][] = [
      [/^model\.layers\.(\d+)\.post_attention_layernorm\.weight$/, "blk.$1.post_attention_norm.weight"],
      [/^model\.layers\.(\d+)\.pre_feedforward_layernorm\.weight$/, "blk.$1.ffn_norm.weight"],
      [/^model\.layers\.(\d+)\.post_feedforward_layernorm\.weight$/, "blk.$1.post_ffw_norm.weight"],
    ];
    for (const [re, to] of sandwich) if (re.test(hf)) return hf.replace(re, to);
  }
  const starcoder: [RegExp, string][] = [
    [/^transformer\.wte\.weight$/, "token_embd.weight"],
    [/^transformer\.wpe\.weight$/, "position_embd.weight"],
    [/^transformer\.ln_f\.(weight|bias)$/, "output_norm.$1"],
    [/^transformer\.h\.(\d+)\.ln_1\.(weight|bias)$/, "blk.$1.attn_norm.$2"],
    [/^transformer\.h\.(\d+)\.attn\.c_attn\.(weight|bias)$/, "blk.$1.attn_qkv.$2"],
    [/^transformer\.h\.(\d+)\.attn\.c_proj\.(weight|bias)$/, "blk.$1.attn_output.$2"],
    [/^transformer\.h\.(\d+)\.ln_2\.(weight|bias)$/, "blk.$1.ffn_norm.$2"],
    [/^transformer\.h\.(\d+)\.mlp\.c_fc\.(weight|bias)$/, "blk.$1.ffn_up.$2"],
    [/^transformer\.h\.(\d+)\.mlp\.c_proj\.(weight|bias)$/, "blk.$1.ffn_down.$2"],
  ];
  for (const [re, to] of starcoder) if (re.test(hf)) return hf.replace(re, to);
  const table: [RegExp, string][] = [
    [/^model\.embed_tokens\.weight$/, "token_embd.weight"],
    [/^model\.norm\.weight$/, "output_norm.weight"],
    [/^lm_head\.weight$/, "output.weight"],
    [/^model\.layers\.(\d+)\.input_layernorm\.weight$/, "blk.$1.attn_norm.weight"],
    [/^model\.layers\.(\d+)\.self_attn\.(q|k|v)_proj\.(weight|bias)$/, "blk.$1.attn_$2.$3"],
    [/^model\.layers\.(\d+)\.self_attn\.o_proj\.(weight|bias)$/, "blk.$1.attn_output.$2"],
    [/^model\.layers\.(\d+)\.self_attn\.(q|k)_norm\.weight$/, "blk.$1.attn_$2_norm.weight"], // qwen3
    [/^model\.layers\.(\d+)\.self_attn\.qkv_proj\.weight$/, "blk.$1.attn_qkv.weight"], // phi3: q | k | v rows
    [/^model\.layers\.(\d+)\.mlp\.gate_up_proj\.weight$/, "blk.$1.ffn_up.weight"], // phi3: gate | up rows
    [/^model\.layers\.(\d+)\.post_attention_layernorm\.weight$/, "blk.$1.ffn_norm.weight"],
    [/^model\.layers\.(\d+)\.mlp\.(gate|up|down)_proj\.weight$/, "blk.$1.ffn_$2.weight"],
  ];
  for (const [re, to] of table) if (re.test(hf)) return hf.replace(re, to);
  return null;
}

interface GgufTensor {
  ggufName: string;
  type: number;
  shape: number[]; // PyTorch order
  offset: number; // absolute file offset
  bytes: number;
}

export interface GgufFile {
  metadata: Record<string, unknown>;
  tensors: Map<string, GgufTensor>; // by GGUF name
}

/** The parsed header of a GGUF file (@huggingface/gguf's result), checked for version and truncation. */
export type ParsedGguf = Awaited<ReturnType<typeof import("@huggingface/gguf").gguf>>;

/**
 * Opens a GGUF file's header: the one sequence the planner (spec from metadata) and the runtime (tensors) share.
 * Magic and version are checked first (other versions parse as garbage counts), then the parse, then truncation.
 * `bytes`: the whole file already in memory (the web page's picked file); `path` then only names it in messages.
 */
export async function openGguf(path: string, bytes?: Uint8Array): Promise<ParsedGguf> {
  checkGgufPrelude(path, bytes);
  const { gguf } = await import("@huggingface/gguf");
  let parsed: ParsedGguf;
  try {
    // In memory (the web page): @huggingface/gguf reads through range requests, which memoryFetch answers from `bytes`.
    parsed = bytes ? await gguf(`https://memory.invalid/${encodeURIComponent(path)}`, { fetch: memoryFetch(bytes) }) : await gguf(resolve(path), { allowLocalFile: true });
  } catch (e) {
    throw new UserError(`${path}: cannot read GGUF metadata (${errorLine(e)})`);
  }
  checkGgufComplete(path, parsed, bytes ? bytes.byteLength : statSync(path).size);
  return parsed;
}

/** Parses a GGUF file's metadata and tensor table (from disk, or from `bytes` in memory), validating every tensor against the file size. */
export async function readGguf(path: string, bytes?: Uint8Array): Promise<GgufFile> {
  const parsed = await openGguf(path, bytes);
  const fileBytes = bytes ? bytes.byteLength : statSync(path).size;
  const dataStart = Number(parsed.tensorDataOffset);
  const alignment = Number((parsed.metadata as Record<string, unknown>)["general.alignment"] ?? GGUF_ALIGNMENT);
  if (!Number.isInteger(alignment) || alignment < 1) throw new UserError(`${path}: general.alignment is ${alignment}; expected a positive integer (default 32)`);
  const tensors = new Map<string, GgufTensor>();
  for (const t of parsed.tensorInfos) {
    // llama.cpp rejects a tensor whose data does not start on the file's alignment; so do we.
    if (Number(t.offset) % alignment !== 0) throw new UserError(`${path}: tensor "${t.name}" data offset ${t.offset} is not a multiple of general.alignment ${alignment}; the file is corrupt`);
    if (tensors.has(t.name)) throw new UserError(`${path}: tensor "${t.name}" appears twice in the tensor table; the file is corrupt`);
    const shape = t.shape.map(Number).reverse();
    const numel = shape.reduce((a, b) => a * b, 1);
    const type = Number(t.dtype);
    let bytes: number;
    if (type === GGML_TYPE.F32 || type === GGML_TYPE.F16 || type === GGML_TYPE.BF16) bytes = rowBytes(GGML_DTYPE[type], numel);
    else if (blockType(type) !== null) {
      const bt = blockType(type)!, qk = blockValuesOf(bt);
      if (shape[shape.length - 1] % qk !== 0) throw new UserError(`${path}: ${bt.toUpperCase()} tensor "${t.name}" has a row of ${shape[shape.length - 1]} values; expected a multiple of ${qk}`);
      bytes = rowBytes(bt, numel);
    } else {
      const name = OTHER_GGML_TYPES[type] ? `${OTHER_GGML_TYPES[type]} (${type})` : `${type}`;
      throw new UserError(`${path}: tensor "${t.name}" has ggml type ${name}, which mqa does not read; supported: ${SUPPORTED_TYPES}`);
    }
    const offset = dataStart + Number(t.offset);
    if (offset + bytes > fileBytes) throw new UserError(`${path}: tensor "${t.name}" ends at byte ${offset + bytes} but the file has ${fileBytes} bytes (truncated?)`);
    tensors.set(t.name, { ggufName: t.name, type, shape, offset, bytes });
  }
  const metadata: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(parsed.metadata)) metadata[k] = typeof v === "bigint" ? Number(v) : v;
  return { metadata, tensors };
}

/** A `fetch` that answers "Range: bytes=a-b" requests from bytes in memory (206 with Content-Range, as a file server would). */
function memoryFetch(bytes: Uint8Array): typeof fetch {
  return (async (_url: string, init?: { headers?: Record<string, string> }) => {
    const m = /bytes=(\d+)-(\d+)/.exec(init?.headers?.Range ?? "");
    const [a, b] = m ? [Number(m[1]), Math.min(Number(m[2]), bytes.byteLength - 1)] : [0, bytes.byteLength - 1];
    return new Response(bytes.slice(a, b + 1), { status: 206, headers: { "content-range": `bytes ${a}-${b}/${bytes.byteLength}` } });
  }) as unknown as typeof fetch;
}

/** A tensor's raw bytes: copied from the file in memory, or read from disk (readRaw). */
type RawReader = (t: GgufTensor, into?: Uint8Array) => Uint8Array;

function rawReader(path: string, bytes?: Uint8Array): RawReader {
  if (!bytes) return (t, into) => readRaw(path, t, into);
  return (t, into) => {
    if (into && into.byteLength !== t.bytes) throw new RangeError(`GGUF read of "${t.ggufName}": destination has ${into.byteLength} bytes, tensor has ${t.bytes}`);
    const out = into ?? new Uint8Array(t.bytes);
    out.set(bytes.subarray(t.offset, t.offset + t.bytes));
    return out;
  };
}

function readRaw(path: string, t: GgufTensor, into?: Uint8Array): Uint8Array {
  if (into && into.byteLength !== t.bytes) throw new RangeError(`GGUF read of "${t.ggufName}": destination has ${into.byteLength} bytes, tensor has ${t.bytes}`);
  const out = into ?? new Uint8Array(t.bytes);
  const fd = openSync(path, "r");
  try {
    let done = 0;
    while (done < t.bytes) {
      const n = readSync(fd, out, done, t.bytes - done, t.offset + done);
      if (n <= 0) throw new UserError(`${path}: unexpected end of file in tensor "${t.ggufName}"`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/**
 * Opens a GGUF llama model as a spec plus a TensorSource under HF names: Q/K rows are
 * un-permuted (block-quantized rows as whole blocks), Q8_0 and the 4/5/6-bit types stay quantized
 * (loadWeights keeps them for matmul weights and dequantizes the rest), and llama.cpp's rope_freqs tensor (llama3 scaling)
 * becomes ropeScaling { type: "freq_factors", factors }.
 */
export async function ggufModelSource(path: string, bytes?: Uint8Array): Promise<{ spec: ModelSpec; source: TensorSource; file: GgufFile }> {
  const file = await readGguf(path, bytes); // bytes: the whole file in memory (the web page), else read from `path`
  const raw = rawReader(path, bytes);
  const arch = file.metadata["general.architecture"];
  const ARCHS = ["llama", "qwen2", "qwen3", "phi3", "gemma", "gemma2", "gemma3", "falcon", "gpt2", "starcoder"];
  if (arch === undefined) throw new UserError(`${path}: missing GGUF key general.architecture; expected one of ${ARCHS.join(", ")}`);
  if (typeof arch !== "string" || !ARCHS.includes(arch)) {
    throw new UserError(`${path}: GGUF architecture "${String(arch)}" is not supported by the runtime; expected one of ${ARCHS.join(", ")}`);
  }
  const spec = specFromGgufMetadata(file.metadata, path, [...file.tensors.keys()]);
  if (arch === "starcoder") {
    // llama.cpp's "starcoder" is HF's gpt_bigcode (biases everywhere, tanh GELU, learned positions).
    spec.family = "gpt_bigcode";
  }
  if (arch === "starcoder" || arch === "gpt2") spec.qkvBias = spec.attnOutBias = spec.mlpBias = true;
  if (arch === "gemma3") spec.family = "gemma3_text"; // llama.cpp's gemma3 is HF's text-only Gemma-3
  const gemmaArch = arch === "gemma" || arch === "gemma2" || arch === "gemma3";
  // GPT-2 in GGUF stores its Conv1D weights as [out, in]; the gpt2 weight table reads HF's [in, out],
  // so these four are handed out transposed back (Q8_0 ones dequantized: blocks run along rows).
  const conv1d = (name: string) => arch === "gpt2" && /\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/.test(name);
  const byHf = new Map<string, GgufTensor>();
  for (const [name, t] of file.tensors) {
    const names = arch === "starcoder" || arch === "gpt2" ? STARCODER_NAMES : arch === "phi3" ? PHI3_NAMES : arch === "gemma2" || arch === "gemma3" ? GEMMA2_NAMES
      : arch === "falcon" ? falconNames(file.tensors.has("blk.0.attn_norm_2.weight")) : LLAMA_NAMES;
    const rule = names.find(([re]) => re.test(name));
    if (rule) byHf.set(name.replace(rule[0], rule[1]), t);
  }
  const freqs = file.tensors.get("rope_freqs.weight");
  if (freqs) {
    const f = decodeToF32(path, freqs, raw);
    spec.ropeScaling = { type: "freq_factors", factors: Array.from(f) };
  }
  let scratch = new Uint8Array(0);
  const source: TensorSource = {
    path,
    names: () => [...byHf.keys()],
    info: (name) => {
      const t = byHf.get(name);
      if (!t) return undefined;
      const gemmaNorm = gemmaArch && /norm\.weight$/.test(name);
      const bt = blockType(t.type);
      if (conv1d(name)) return { dtype: bt !== null || t.type === GGML_TYPE.F32 ? "F32" : t.type === GGML_TYPE.F16 ? "F16" : "BF16", shape: [t.shape[1], t.shape[0]] };
      const dtype = t.type === GGML_TYPE.F32 || gemmaNorm ? "F32" : bt !== null ? bt.toUpperCase() : t.type === GGML_TYPE.F16 ? "F16" : "BF16";
      return { dtype, shape: t.shape };
    },
    read: (name, dst) => {
      const t = byHf.get(name)!;
      const m = arch === "llama" ? /self_attn\.(q|k)_proj\.(weight|bias)$/.exec(name) : null; // qwen2: NEOX RoPE = HF layout
      const gemmaNorm = gemmaArch && /norm\.weight$/.test(name);
      if (gemmaNorm) {
        // GGUF Gemma norms hold (1 + w); the runtime's Gemma RMSNorm adds the 1 itself.
        const f = decodeToF32(path, t, raw).map((x) => x - 1);
        return dst.set(new Uint8Array(f.buffer));
      }
      if (conv1d(name)) return readTransposed(t, dst, raw);
      if (arch === "falcon" && name.endsWith("query_key_value.weight")) {
        // llama.cpp's q | k | v rows back into HF's per-group layout (the falcon table splits that one).
        return regroupFalconQkv(raw(t), dst, t.bytes / t.shape[0], spec.numHeads, spec.numKvHeads, spec.headDim, false);
      }
      if (!m) return raw(t, dst); // straight into the destination
      // One reused scratch buffer for the Q/K reads, so loading does not leave a garbage copy per layer.
      if (scratch.byteLength < t.bytes) scratch = new Uint8Array(t.bytes);
      const rows0 = raw(t, scratch.subarray(0, t.bytes));
      const heads = m[1] === "q" ? spec.numHeads : spec.numKvHeads;
      const rows = t.shape[0];
      // Rows are permuted whole: bytes of one row (Q8_0 rows are whole blocks), one unit per byte.
      unpermuteQKInto(rows0.subarray(0, t.bytes), dst, heads, t.bytes / rows);
    },
  };
  return { spec, source, file };
}

/** A [rows, cols] GGUF matrix into dst as [cols, rows]: 2- or 4-byte elements moved, block types dequantized to f32. */
function readTransposed(t: GgufTensor, dst: Uint8Array, read: RawReader): void {
  const [rows, cols] = t.shape;
  const raw = read(t);
  const bt = blockType(t.type);
  if (bt !== null || t.type === GGML_TYPE.F32) {
    const src = bt !== null ? new Uint32Array(decodeBlocks(bt, raw, rows * cols).buffer) : new Uint32Array(raw.buffer);
    transposeInto(src, new Uint32Array(dst.buffer, dst.byteOffset, rows * cols), rows, cols);
  } else transposeInto(new Uint16Array(raw.buffer), new Uint16Array(dst.buffer, dst.byteOffset, rows * cols), rows, cols);
}

function decodeToF32(path: string, t: GgufTensor, read: RawReader): Float32Array {
  const raw = read(t);
  if (t.type === GGML_TYPE.F32) return new Float32Array(raw.buffer);
  if (t.type === GGML_TYPE.F16) {
    const table = f16DecodeTable();
    return Float32Array.from(new Uint16Array(raw.buffer), (h) => table[h]);
  }
  throw new UserError(`${path}: tensor "${t.ggufName}" must be F32 or F16`);
}

/**
 * The 8 bytes every GGUF starts with: "GGUF" and a little-endian u32 version, 2 or 3 (the same layout; v1 had 32-bit
 * counts and is long obsolete). Checked before @huggingface/gguf, which reads other versions as garbage counts.
 */
export function checkGgufPrelude(path: string, bytes?: Uint8Array): void {
  // `bytes`: a file already in memory (the web page's picked file), read with plain typed arrays (no Buffer in a browser).
  let head: Uint8Array = new Uint8Array(8);
  let n: number;
  if (bytes) {
    head = bytes.subarray(0, 8);
    n = head.byteLength;
  } else {
    const fd = openSync(path, "r");
    try {
      n = readSync(fd, head, 0, 8, 0);
    } finally {
      closeSync(fd);
    }
  }
  if (n < 8) throw new UserError(`${path}: ${n} bytes is too short for a GGUF file (expected the "GGUF" magic and a version)`);
  const magic = String.fromCharCode(...head.subarray(0, 4));
  if (magic !== "GGUF") throw new UserError(`${path}: not a GGUF file (starts with ${JSON.stringify(magic)}; expected "GGUF")`);
  const view = new DataView(head.buffer, head.byteOffset, 8);
  const version = view.getUint32(4, true);
  if (version === 2 || version === 3) return;
  if (view.getUint32(4, false) === 2 || view.getUint32(4, false) === 3) throw new UserError(`${path}: big-endian GGUF is not supported; expected a little-endian file`);
  throw new UserError(`${path}: GGUF version ${version} is not supported; expected version 2 or 3`);
}

/**
 * @huggingface/gguf reads past the end of a truncated file as zeros (garbage keys, missing fields). A cut-off download
 * is reported as such: the metadata and tensor table must end inside the file, and every tensor's data must start in it.
 */
export function checkGgufComplete(path: string, parsed: { tensorInfoByteRange: [number, number]; tensorDataOffset: bigint | number; tensorInfos: { name: string; offset: bigint | number }[] }, size = statSync(path).size): void {
  const headerEnd = parsed.tensorInfoByteRange[1];
  if (headerEnd > size) throw new UserError(`${path}: truncated GGUF file (${size} bytes; its metadata alone needs ${headerEnd}); expected a complete download`);
  const dataStart = Number(parsed.tensorDataOffset);
  const last = parsed.tensorInfos.reduce((m, t) => (Number(t.offset) > Number(m.offset) ? t : m), parsed.tensorInfos[0]);
  const lastStart = last ? dataStart + Number(last.offset) : 0;
  if (last && lastStart >= size) {
    throw new UserError(`${path}: tensor "${last.name}" starts at byte ${lastStart} but the file has ${size} bytes; the file is truncated (expected a complete download) or its tensor table is corrupt`);
  }
}
