// Checkpoint loading as a table (nanoGPT's from_pretrained): every row names a checkpoint tensor,
// the shape it must have, how to transform it (transpose a Conv1D, pick rows of a fused q|k|v) and
// how to store it (matmul weights keep their f32/f16/bf16 dtype; norms and biases become f32).
// Every row is asserted; a wrong shape or dtype names the tensor, the expected and the found value.
// Weights live in the Arena; rows without a transform are read from disk straight into it.
import { UserError } from "../errors.js";
import type { Arena } from "../kernels/memory.js";
import type { WeightDtype } from "../kernels/types.js";
import { decodeBf16, decodeF16 } from "../dtypes/codecs.js";
import { blockValuesOf, decodeBlocks, isBlockType, type BlockType } from "../dtypes/ggml_quants.js";
import { elementBytes, rowBytes } from "../dtypes/table.js";
import { packRows4, rows4Eligible, rows4Index } from "../kernels/rows4.js";

// TensorSource (what a checkpoint reader offers) is declared where the readers live, in formats.
import { transposeInto, type TensorSource } from "../formats/source.js";
export type { TensorSource };

/** A weight in the arena. */
export interface Weight {
  ptr: number; // byte offset
  dtype: WeightDtype; // matmul weights: checkpoint dtype; everything else f32
  shape: number[]; // after the transform, e.g. [N, Kin] for a matmul weight
  finite?: boolean; // f16 matmul weights: no inf/NaN half (checked at load), so decode may skip its check (MatmulCall.wFinite)
  rows4?: boolean; // an f16 or bf16 [N, Kin] weight stored in the rows4 layout (src/kernels/rows4.ts; MatmulCall.wRows4)
}

export interface WeightRow {
  key: string; // our name, e.g. "layers.0.q"
  source: string; // checkpoint name, e.g. "model.layers.0.self_attn.q_proj.weight"
  shape: number[]; // the shape the checkpoint must have
  store: "matmul" | "f32"; // keep dtype (matmul operand, [N, Kin]) or convert to f32
  transpose?: boolean; // 2-D [a, b] -> [b, a] (GPT-2 Conv1D stores [in, out])
  rows?: [number, number][]; // after the transpose: keep these [start, end) row ranges, concatenated
  optional?: boolean; // absent is allowed (e.g. lm_head when embeddings are tied)
}

const DTYPES: Record<string, WeightDtype> = {
  F32: "f32", F16: "f16", BF16: "bf16", Q8_0: "q8_0", Q4_0: "q4_0", Q4_1: "q4_1", Q5_0: "q5_0", Q5_1: "q5_1", Q4_K: "q4_k", Q5_K: "q5_k", Q6_K: "q6_k",
};

/**
 * Loads every row of the table from `src` into the arena. Extra checkpoint tensors that no row
 * reads are reported back (callers may warn) rather than silently ignored.
 */
export function loadWeights(arena: Arena, src: TensorSource, table: WeightRow[]): { weights: Map<string, Weight>; unused: string[] } {
  const { present, unused } = checkWeights(src, table);
  const weights = new Map<string, Weight>();
  for (const row of present) weights.set(row.key, loadRow(arena, src, row, DTYPES[src.info(row.source)!.dtype]));
  return { weights, unused };
}

/**
 * Asserts every row of the table against the checkpoint's headers (presence, dtype, shape) without
 * reading any data: `mqa info` and `mqa export-gguf` call it too, so a checkpoint that does not
 * match its config is rejected by every command, naming the tensor, the found and expected values.
 */
export function checkWeights(src: TensorSource, table: WeightRow[]): { present: WeightRow[]; unused: string[] } {
  const present: WeightRow[] = [];
  const used = new Set<string>();
  for (const row of table) {
    const info = src.info(row.source);
    if (!info) {
      if (row.optional) continue;
      throw new UserError(`${src.path}: missing tensor "${row.source}" (expected shape [${row.shape.join(", ")}])`);
    }
    used.add(row.source);
    if (!DTYPES[info.dtype]) throw new UserError(`${src.path}: tensor "${row.source}" has dtype ${info.dtype}; expected F32, F16 or BF16`); // block types come only from GGUF files, whose reader checks its types
    if (info.shape.length !== row.shape.length || info.shape.some((d, i) => d !== row.shape[i])) {
      throw new UserError(`${src.path}: tensor "${row.source}" has shape [${info.shape.join(", ")}]; expected [${row.shape.join(", ")}] from the config`);
    }
    present.push(row);
  }
  return { present, unused: src.names().filter((n) => !used.has(n)) };
}

function loadRow(arena: Arena, src: TensorSource, row: WeightRow, dtype: WeightDtype): Weight {
  if (isBlockType(dtype)) return loadBlockRow(arena, src, row, dtype);
  const eb = elementBytes(dtype);
  const numel = row.shape.reduce((a, b) => a * b, 1);
  const direct = !row.transpose && !row.rows && (row.store === "matmul" || dtype === "f32");
  if (direct) {
    const ptr = arena.alloc(numel * eb, `weight ${row.source}`);
    src.read(row.source, arena.u8(ptr, numel * eb));
    return { ptr, dtype, shape: row.shape.slice(), finite: dtype === "f16" ? allFiniteF16(arena.u16(ptr, numel)) : undefined };
  }
  // Transform in element space (dtype-agnostic: 2- or 4-byte elements are moved, not converted).
  const raw = new Uint8Array(numel * eb);
  src.read(row.source, raw);
  let el: Uint16Array | Uint32Array = eb === 4 ? new Uint32Array(raw.buffer) : new Uint16Array(raw.buffer);
  let shape = row.shape.slice();
  if (row.transpose) {
    const [a, b] = shape;
    el = transposeInto(el, eb === 4 ? new Uint32Array(numel) : new Uint16Array(numel), a, b);
    shape = [b, a];
  }
  if (row.rows) {
    const width = shape.length === 2 ? shape[1] : 1;
    const total = row.rows.reduce((s, [a, b]) => s + (b - a), 0);
    el = pickRows(el, eb === 4 ? new Uint32Array(total * width) : new Uint16Array(total * width), width, shape[0], row);
    shape = shape.length === 2 ? [total, width] : [total];
  }
  const n = el.length;
  if (row.store === "matmul" || dtype === "f32") {
    const ptr = arena.alloc(n * eb, `weight ${row.source}`);
    arena.u8(ptr, n * eb).set(new Uint8Array(el.buffer, el.byteOffset, n * eb));
    return { ptr, dtype, shape, finite: dtype === "f16" ? allFiniteF16(el as Uint16Array) : undefined };
  }
  const ptr = arena.alloc(n * 4, `weight ${row.source}`);
  const out = arena.f32(ptr, n);
  if (dtype === "f16") decodeF16(el as Uint16Array, out);
  else decodeBf16(el as Uint16Array, out);
  return { ptr, dtype: "f32", shape };
}

/**
 * A block-quantized tensor (GGUF: Q8_0, Q4_0 … Q6_K): matmul weights [N, Kin] whose rows are whole
 * blocks stay quantized (the kernels read the blocks in place; row ranges are whole rows of blocks);
 * anything else (norms, biases, a transposed layout) is dequantized once and loaded as f32.
 */
function loadBlockRow(arena: Arena, src: TensorSource, row: WeightRow, dtype: BlockType): Weight {
  const [rows, width] = row.shape;
  const QK = blockValuesOf(dtype);
  if (row.store === "matmul" && !row.transpose && row.shape.length === 2 && width % QK === 0) {
    const qRowBytes = rowBytes(dtype, width);
    const ranges = row.rows ?? [[0, rows]];
    const total = ranges.reduce((s, [a, b]) => s + (b - a), 0);
    const ptr = arena.alloc(total * qRowBytes, `weight ${row.source}`);
    const dst = arena.u8(ptr, total * qRowBytes);
    if (!row.rows) src.read(row.source, dst);
    else {
      const raw = new Uint8Array(rows * qRowBytes);
      src.read(row.source, raw);
      pickRows(raw, dst, qRowBytes, rows, row); // a row of blocks is `qRowBytes` one-byte elements
    }
    return { ptr, dtype, shape: [total, width] };
  }
  const numel = row.shape.reduce((a, b) => a * b, 1);
  if (numel % QK !== 0) throw new UserError(`${src.path}: ${dtype.toUpperCase()} tensor "${row.source}" has ${numel} values; expected a multiple of ${QK}`);
  const dequantized: TensorSource = {
    path: src.path,
    names: () => src.names(),
    info: (name) => src.info(name),
    read: (name, dst) => {
      const raw = new Uint8Array(rowBytes(dtype, numel));
      src.read(name, raw);
      decodeBlocks(dtype, raw, numel, new Float32Array(dst.buffer, dst.byteOffset, numel));
    },
  };
  return loadRow(arena, dequantized, row, "f32");
}

type Elements = Uint8Array | Uint16Array | Uint32Array | Float32Array;

/** out = the row ranges row.rows of el ([rows, width] elements), concatenated; returns out. */
function pickRows<T extends Elements>(el: T, out: T, width: number, rows: number, row: WeightRow): T {
  let o = 0;
  for (const [a, b] of row.rows!) {
    if (a < 0 || b > rows || a > b) throw new Error(`loadWeights(${row.source}): row range [${a}, ${b}) outside [0, ${rows})`);
    out.set(el.subarray(a * width, b * width), o);
    o += (b - a) * width;
  }
  return out;
}

/** True if no half in h is inf or NaN (exponent bits all ones). One pass at load, ~0.1 s per 100M halves. */
export function allFiniteF16(h: Uint16Array): boolean {
  for (let i = 0; i < h.length; i++) if ((h[i] & 0x7c00) === 0x7c00) return false;
  return true;
}

/**
 * Stores every f16 and bf16 matmul weight that can take it in the rows4 layout, in place (for kernels that
 * prefer it, Kernels.prefersRows4); weightRow and the kernels read it from then on.
 */
export function packRows4Weights(arena: Arena, weights: Map<string, Weight>): void {
  for (const w of weights.values()) {
    if (w.rows4 || w.shape.length !== 2 || !rows4Eligible(w.dtype, w.shape[0], w.shape[1])) continue;
    const [N, Kin] = w.shape;
    packRows4(arena.u16(w.ptr, N * Kin), N, Kin);
    w.rows4 = true;
  }
}

/** Reads row `r` of a [rows, width] weight as f32 (embedding lookup). */
export function weightRow(arena: Arena, w: Weight, r: number, out: Float32Array): void {
  const width = w.shape[1];
  if (w.rows4 && r < w.shape[0] - (w.shape[0] % 4)) {
    const h = arena.u16(w.ptr + rows4Index(r, 0, w.shape[0], width) * 2, 4 * width - 8 * (r % 4)); // from the row's first group to the block's end
    const row = new Uint16Array(width);
    for (let k = 0; k < width; k += 8) for (let i = 0; i < 8; i++) row[k + i] = h[4 * k + i]; // rows4Index(r, k + i) - rows4Index(r, 0)
    (w.dtype === "f16" ? decodeF16 : decodeBf16)(row, out);
  } else if (w.dtype === "f32") out.set(arena.f32(w.ptr + r * width * 4, width));
  else if (w.dtype === "f16") decodeF16(arena.u16(w.ptr + r * width * 2, width), out);
  else if (isBlockType(w.dtype)) decodeBlocks(w.dtype, arena.u8(w.ptr + r * rowBytes(w.dtype, width), rowBytes(w.dtype, width)), width, out);
  else decodeBf16(arena.u16(w.ptr + r * width * 2, width), out);
}

/** Bytes held by the weights. */
export function weightBytes(weights: Map<string, Weight>): number {
  let b = 0;
  for (const w of weights.values()) {
    const width = w.shape[w.shape.length - 1];
    b += (w.shape.reduce((a, c) => a * c, 1) / width) * rowBytes(w.dtype, width);
  }
  return b;
}
