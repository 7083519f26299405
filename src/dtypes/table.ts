// Storage types for the KV cache, weights and files, and their exact byte sizes: the one table
// every layer (kernels, kvcache, formats, models, planner, web page) reads sizes from.
// Block-quantised types (q8_0, q4_0, q4_K, ...) store a row of n values in ceil(n / blockValues)
// blocks of blockBytes each; int8 stores one byte per value plus one f32 scale per row.

export interface DtypeInfo {
  name: string;
  blockValues: number; // values per block, 1 for plain types
  blockBytes: number; // bytes per block
  rowOverheadBytes: number; // extra bytes per row (int8: its f32 scale)
  note: string;
}

export const DTYPES: Record<string, DtypeInfo> = {
  f32: { name: "f32", blockValues: 1, blockBytes: 4, rowOverheadBytes: 0, note: "IEEE float32" },
  f16: { name: "f16", blockValues: 1, blockBytes: 2, rowOverheadBytes: 0, note: "IEEE float16" },
  bf16: { name: "bf16", blockValues: 1, blockBytes: 2, rowOverheadBytes: 0, note: "bfloat16" },
  fp8: { name: "fp8", blockValues: 1, blockBytes: 1, rowOverheadBytes: 0, note: "e4m3/e5m2, per-tensor scale (vLLM)" },
  int8: { name: "int8", blockValues: 1, blockBytes: 1, rowOverheadBytes: 4, note: "int8 with one f32 scale per row (per token, per head)" },
  q8_0: { name: "q8_0", blockValues: 32, blockBytes: 34, rowOverheadBytes: 0, note: "ggml: 32 int8 + f16 scale" },
  // GGML's 4/5/6-bit weight blocks (layouts in ggml_quants.ts, from ggml-common.h).
  q4_0: { name: "q4_0", blockValues: 32, blockBytes: 18, rowOverheadBytes: 0, note: "ggml: 32 4-bit + f16 scale" },
  q4_1: { name: "q4_1", blockValues: 32, blockBytes: 20, rowOverheadBytes: 0, note: "ggml: 32 4-bit + f16 scale + f16 min" },
  q5_0: { name: "q5_0", blockValues: 32, blockBytes: 22, rowOverheadBytes: 0, note: "ggml: 32 5-bit (u32 high bits) + f16 scale" },
  q5_1: { name: "q5_1", blockValues: 32, blockBytes: 24, rowOverheadBytes: 0, note: "ggml: 32 5-bit + f16 scale + f16 min" },
  // k-quants use 256-value super-blocks (ggml-common.h block_q4_K: 2 f16 + 12 scale bytes + 128 nibbles).
  q4_k: { name: "q4_k", blockValues: 256, blockBytes: 144, rowOverheadBytes: 0, note: "ggml block_q4_K: 4.5 bits/value" },
  q5_k: { name: "q5_k", blockValues: 256, blockBytes: 176, rowOverheadBytes: 0, note: "ggml block_q5_K: 5.5 bits/value" },
  q6_k: { name: "q6_k", blockValues: 256, blockBytes: 210, rowOverheadBytes: 0, note: "ggml block_q6_K: 6.5625 bits/value" },
};

export type DtypeName = keyof typeof DTYPES;

/**
 * The spellings users bring from other tools (PyTorch, HF transformers, vLLM, llama.cpp), each
 * mapped to one canonical name. Lookups are case-insensitive.
 */
export const DTYPE_ALIASES: Readonly<Record<string, string>> = {
  fp32: "f32", float32: "f32", float: "f32",
  fp16: "f16", float16: "f16", half: "f16",
  bfloat16: "bf16",
  fp8_e4m3: "fp8", float8_e4m3fn: "fp8",
};

/**
 * The canonical name of a dtype spelled any accepted way ("FP16", "half", "bfloat16", ...), checked
 * against `allowed` (default: every dtype in the table). Throws one line listing the accepted names.
 */
export function canonicalDtype(name: string, allowed: readonly string[] = Object.keys(DTYPES)): string {
  const lower = String(name).toLowerCase();
  const canonical = DTYPE_ALIASES[lower] ?? lower;
  if (allowed.includes(canonical)) return canonical;
  const aliases = Object.entries(DTYPE_ALIASES).filter(([, c]) => allowed.includes(c)).map(([a]) => a);
  throw new RangeError(`unknown dtype "${name}"; expected one of ${allowed.join(", ")}${aliases.length ? ` (or ${aliases.join(", ")})` : ""}`);
}

/** Looks up a dtype by name or alias (case-insensitive); throws a message that lists the valid names. */
export function dtypeInfo(name: string): DtypeInfo {
  return DTYPES[canonicalDtype(name)];
}

/** Exact bytes to store one row of `values` values, e.g. rowBytes("q8_0", 128) = 4 × 34 = 136. */
export function rowBytes(dtype: string, values: number): number {
  const d = dtypeInfo(dtype);
  return Math.ceil(values / d.blockValues) * d.blockBytes + d.rowOverheadBytes;
}

const PLAIN_DTYPES: readonly string[] = ["f32", "f16", "bf16", "int8"];

/** Bytes of one stored element of a plain (unblocked) type: f32 4, f16 2, bf16 2, int8 1 (int8 row scales live apart). */
export function elementBytes(dtype: "f32" | "f16" | "bf16" | "int8"): number {
  if (!PLAIN_DTYPES.includes(dtype)) throw new RangeError(`elementBytes: unknown dtype "${dtype as string}"; expected f32, f16, bf16 or int8`);
  return DTYPES[dtype].blockBytes;
}
