// TensorSource over safetensors files (single or sharded): HF names, PyTorch shapes, raw bytes.
import type { TensorSource } from "../models/weights.js";
import { openSafetensors, readTensorBytes } from "./safetensors.js";

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
