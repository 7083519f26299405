// safetensors reader: single files and sharded folders (model.safetensors.index.json).
//
// Layout: u64 little-endian header length N, N bytes of JSON { name: { dtype, shape, data_offsets:
// [begin, end] } , "__metadata__": {...} }, then the data; offsets are relative to the data start.
// Every header is validated against the real file size before anything is read: a truncated or
// forged header is a UserError naming the file and the tensor, never a crash or a huge allocation.
// Tensor bytes are read straight into their destination (an Arena view) with fs.readSync, so the
// weights are never held twice in memory.
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { errorLine, UserError } from "../errors.js";
import { encodeBf16, encodeF16 } from "../dtypes/codecs.js";

export type StDtype = "F32" | "F16" | "BF16" | "F64" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";
const DTYPE_BYTES: Record<StDtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
/** Headers larger than this are rejected before allocation (real checkpoints use well under 1 MiB). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** One tensor of a checkpoint: where its bytes are and what they hold. */
export interface TensorEntry {
  name: string; // e.g. "model.layers.0.self_attn.q_proj.weight"
  dtype: StDtype;
  shape: number[]; // PyTorch order, e.g. [4096, 4096]
  file: string; // path of the .safetensors file holding it
  offset: number; // absolute byte offset in `file`
  bytes: number; // = product(shape) × element bytes
}

export interface SafetensorsHeader {
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
  fileBytes: number;
}

/** Element size in bytes of a safetensors dtype. */
export function stDtypeBytes(dtype: StDtype): number {
  return DTYPE_BYTES[dtype];
}

/**
 * Reads and validates the header of one .safetensors file (the data is not read).
 * @example readSafetensorsHeader("model.safetensors").tensors.get("lm_head.weight")?.shape // [32000, 4096]
 */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  if (!existsSync(path)) throw new UserError(`${path}: no such file`);
  if (!statSync(path).isFile()) throw new UserError(`${path}: is not a file; expected a .safetensors file`);
  const fd = openSync(path, "r");
  try {
    const fileBytes = fstatSync(fd).size;
    if (fileBytes < 8) throw new UserError(`${path}: ${fileBytes} bytes is too short for a safetensors file (needs an 8-byte header length)`);
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const headerLen = lenBuf.readBigUInt64LE(0);
    if (headerLen > BigInt(Math.min(fileBytes - 8, MAX_HEADER_BYTES))) {
      throw new UserError(`${path}: header length ${headerLen} bytes exceeds the file (${fileBytes} bytes) or the ${MAX_HEADER_BYTES / 1048576} MiB limit; the file is truncated or not safetensors`);
    }
    const n = Number(headerLen);
    const text = Buffer.alloc(n);
    readSync(fd, text, 0, n, 8);
    let json: unknown;
    try {
      json = JSON.parse(text.toString("utf8"));
    } catch (e) {
      throw new UserError(`${path}: safetensors header is not valid JSON (${errorLine(e)})`);
    }
    if (typeof json !== "object" || json === null || Array.isArray(json)) throw new UserError(`${path}: safetensors header must be a JSON object`);
    return { ...parseEntries(path, json as Record<string, unknown>, 8 + n, fileBytes), fileBytes };
  } finally {
    closeSync(fd);
  }
}

/** Validates a parsed safetensors header (entries, offsets, overlaps) of a file of fileBytes bytes; shared by the file and in-memory readers. */
export function parseEntries(path: string, json: Record<string, unknown>, dataStart: number, fileBytes: number): Omit<SafetensorsHeader, "fileBytes"> {
  const tensors = new Map<string, TensorEntry>();
  const metadata: Record<string, string> = {};
  const dataBytes = fileBytes - dataStart;
  for (const [name, raw] of Object.entries(json)) {
    if (name === "__metadata__") {
      if (raw && typeof raw === "object") for (const [k, v] of Object.entries(raw)) metadata[k] = String(v);
      continue;
    }
    const where = `${path}: tensor "${name}"`;
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!e || typeof e !== "object") throw new UserError(`${where}: header entry is not an object`);
    if (typeof e.dtype !== "string" || !(e.dtype in DTYPE_BYTES)) throw new UserError(`${where}: unknown dtype ${JSON.stringify(e.dtype)}; expected one of ${Object.keys(DTYPE_BYTES).join(", ")}`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new UserError(`${where}: shape ${JSON.stringify(e.shape)} is not a list of non-negative integers`);
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0) || offs[1] < offs[0]) {
      throw new UserError(`${where}: data_offsets ${JSON.stringify(offs)} must be [begin, end] with 0 <= begin <= end`);
    }
    const dtype = e.dtype as StDtype;
    const shape = e.shape as number[];
    const bytes = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
    if (offs[1] - offs[0] !== bytes) {
      throw new UserError(`${where}: data_offsets [${offs[0]}, ${offs[1]}] span ${offs[1] - offs[0]} bytes but ${dtype} [${shape.join(", ")}] needs ${bytes}`);
    }
    if (offs[1] > dataBytes) {
      throw new UserError(`${where}: data ends at byte ${dataStart + offs[1]} but the file has ${fileBytes} bytes (truncated download?)`);
    }
    tensors.set(name, { name, dtype, shape, file: path, offset: dataStart + offs[0], bytes });
  }
  // Overlapping tensors mean a forged or corrupt header.
  const sorted = [...tensors.values()].filter((t) => t.bytes > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const [a, b] = [sorted[i - 1], sorted[i]];
    if (a.offset + a.bytes > b.offset) throw new UserError(`${path}: tensors "${a.name}" and "${b.name}" overlap in the data section; the header is corrupt`);
  }
  return { tensors, metadata };
}

/**
 * Opens a checkpoint: a .safetensors file, or a folder with model.safetensors or
 * model.safetensors.index.json (shards). Returns every tensor by name.
 */
export function openSafetensors(pathOrDir: string): Map<string, TensorEntry> {
  let index = "";
  let single = "";
  if (pathOrDir.endsWith(".safetensors")) single = pathOrDir;
  else if (pathOrDir.endsWith(".index.json")) index = pathOrDir;
  else if (existsSync(join(pathOrDir, "model.safetensors.index.json"))) index = join(pathOrDir, "model.safetensors.index.json");
  else single = join(pathOrDir, "model.safetensors");
  if (single) {
    if (!existsSync(single)) throw new UserError(`${pathOrDir}: no model.safetensors or model.safetensors.index.json${weightFilesHint(pathOrDir)}`);
    return readSafetensorsHeader(single).tensors;
  }
  let json: { weight_map?: Record<string, string> };
  try {
    json = JSON.parse(readFileSync(index, "utf8"));
  } catch (e) {
    throw new UserError(`${index}: cannot read the shard index (${errorLine(e)})`);
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) throw new UserError(`${index}: expected a JSON object with "weight_map"`);
  if (!json.weight_map || typeof json.weight_map !== "object" || Array.isArray(json.weight_map)) {
    throw new UserError(`${index}: "weight_map" is ${json.weight_map === undefined ? "missing" : JSON.stringify(json.weight_map).slice(0, 40)}; expected an object { tensor name: shard file }`);
  }
  const all = new Map<string, TensorEntry>();
  const shards = new Map<string, Map<string, TensorEntry>>();
  for (const [name, shard] of Object.entries(json.weight_map)) {
    if (typeof shard !== "string" || basename(shard) !== shard) throw new UserError(`${index}: weight_map["${name}"] = ${JSON.stringify(shard)} is not a file name in the folder`);
    if (!shards.has(shard)) shards.set(shard, readSafetensorsHeader(join(dirname(index), shard)).tensors);
    const t = shards.get(shard)!.get(name);
    if (!t) throw new UserError(`${index}: weight_map puts "${name}" in ${shard}, but that file has no such tensor`);
    all.set(name, t);
  }
  return all;
}

/** What the folder holds instead of model.safetensors, for the error message (shards without their index, PyTorch pickles). */
function weightFilesHint(dir: string): string {
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return "";
  }
  const st = files.filter((f) => f.endsWith(".safetensors")).sort();
  if (st.length) return `; it holds ${st.slice(0, 3).join(", ")}${st.length > 3 ? ", ..." : ""} (shards need their model.safetensors.index.json)`;
  const pt = files.filter((f) => /\.(bin|pt|pth)$/.test(f)).sort();
  if (pt.length) return `; it holds ${pt.slice(0, 3).join(", ")} (PyTorch pickle weights are not read: convert them to safetensors)`;
  return "";
}

/**
 * Reads a tensor's raw bytes into `dst` (e.g. an Arena view) with no intermediate copy.
 * `dst.byteLength` must equal the tensor's size.
 */
export function readTensorBytes(t: TensorEntry, dst: Uint8Array): void {
  if (dst.byteLength !== t.bytes) throw new RangeError(`readTensorBytes(${t.name}): destination has ${dst.byteLength} bytes, tensor has ${t.bytes}`);
  const fd = openSync(t.file, "r");
  try {
    let done = 0;
    while (done < t.bytes) {
      const chunk = Math.min(t.bytes - done, 1 << 30);
      const n = readSync(fd, dst, done, chunk, t.offset + done);
      if (n <= 0) throw new UserError(`${t.file}: unexpected end of file while reading tensor "${t.name}"`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}

/** A tensor to write: row-major values, stored as F32 unless dtype says F16. */
export interface NamedTensor {
  name: string; // e.g. "model.layers.0.mlp.up_proj.weight"
  shape: number[];
  data: Float32Array | Float64Array | number[];
  dtype?: "F32" | "F16" | "BF16";
}

/**
 * Writes a safetensors file (training checkpoints, optimizer state, shipped f16 models): u64 header
 * length, the JSON header padded so the data starts 8-byte aligned, then each tensor's values in order.
 */
export function writeSafetensors(path: string, tensors: NamedTensor[], metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = { __metadata__: { format: "pt", ...metadata } };
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.data.length * (t.dtype === "F16" || t.dtype === "BF16" ? 2 : 4);
    header[t.name] = { dtype: t.dtype ?? "F32", shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, "utf8");
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let o = 8 + headerBytes.length;
  for (const t of tensors) {
    const f32 = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
    let f: Float32Array | Uint16Array = f32;
    if (t.dtype === "F16") encodeF16(f32, (f = new Uint16Array(f32.length)));
    else if (t.dtype === "BF16") encodeBf16(f32, (f = new Uint16Array(f32.length)));
    Buffer.from(f.buffer, f.byteOffset, f.byteLength).copy(out, o);
    o += f.byteLength;
  }
  writeFileSync(path, out);
}
