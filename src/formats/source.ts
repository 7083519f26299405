// TensorSource over safetensors files (single or sharded): HF names, PyTorch shapes, raw bytes.
import { decodeBf16, decodeF16 } from "../dtypes/codecs.js";
import { UserError } from "../errors.js";
import { openSafetensors, readTensorBytes } from "./safetensors.js";

/** What a checkpoint reader offers: HF tensor names, PyTorch shapes, raw bytes. */
export interface TensorSource {
  readonly path: string; // for error messages
  names(): string[];
  /** dtype "F32" | "F16" | "BF16" (anything else is rejected by the loader). */
  info(name: string): { dtype: string; shape: number[] } | undefined;
  /** Reads the raw little-endian bytes of `name` into dst (dst.byteLength = its size). */
  read(name: string, dst: Uint8Array): void;
  /** The files the tensors are read from (export-gguf refuses to overwrite one of them). */
  files?(): string[];
}

export function safetensorsSource(pathOrDir: string): TensorSource {
  const tensors = openSafetensors(pathOrDir);
  return {
    path: pathOrDir,
    names: () => [...tensors.keys()],
    info: (name) => {
      const t = tensors.get(name);
      return t ? { dtype: t.dtype, shape: t.shape } : undefined;
    },
    read: (name, dst) => readTensorBytes(tensors.get(name)!, dst),
    files: () => [...new Set([...tensors.values()].map((t) => t.file))],
  };
}

/**
 * One tensor of a source widened to f32 (F32 copied, F16/BF16 decoded). Any other dtype is a
 * UserError naming the file, the tensor and `who` reads it (e.g. "mqa convert").
 */
export function readTensorF32(src: TensorSource, name: string, who: string): Float32Array {
  const info = src.info(name);
  if (!info) throw new UserError(`${src.path}: no tensor ${name}`);
  const n = info.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  if (info.dtype === "F32") {
    src.read(name, new Uint8Array(out.buffer));
    return out;
  }
  if (info.dtype !== "F16" && info.dtype !== "BF16") throw new UserError(`${src.path}: tensor ${name} is ${info.dtype}; ${who} reads F32, F16 and BF16 checkpoints`);
  const half = new Uint16Array(n);
  src.read(name, new Uint8Array(half.buffer));
  (info.dtype === "F16" ? decodeF16 : decodeBf16)(half, out);
  return out;
}

type Elements = Uint8Array | Uint16Array | Uint32Array | Float32Array;

/** out = a [rows, cols] transposed to [cols, rows] (elements moved as they are); returns out. */
export function transposeInto<T extends Elements>(a: T, out: T, rows: number, cols: number): T {
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = a[i * cols + j];
  return out;
}
