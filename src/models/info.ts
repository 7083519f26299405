// Model facts for `mqa info`, read from headers only (config.json + safetensors headers, or GGUF
// metadata + tensor table): parameters are counted from the real tensor shapes.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../errors.js";
import { openSafetensors } from "../formats/safetensors.js";
import { kvBytesPerToken } from "../kvcache/bytes.js";
import { loadHfConfigSpec } from "../spec/load.js";
import { attentionKind, type ModelSpec } from "../spec/types.js";

export interface ModelInfo {
  model: string;
  architecture: string; // HF model_type or GGUF general.architecture
  attention: "mha" | "gqa" | "mqa" | "mla";
  parameters: number;
  layers: number;
  hiddenSize: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  context: number;
  vocabSize: number;
  kvBytesPerToken: Record<string, number>; // by cache dtype, all layers, K and V
  weightDtypes: Record<string, number>; // dtype → parameters stored in it
  weightBytes: number;
  tiedEmbeddings: boolean;
  window: number | null;
}

export async function modelInfo(path: string): Promise<ModelInfo> {
  if (!existsSync(path)) throw new UserError(`${path}: no such file or folder`);
  let spec: ModelSpec;
  const dtypes: Record<string, number> = {};
  let weightBytes = 0;
  let parameters = 0;
  const add = (dtype: string, numel: number, bytes: number) => {
    dtypes[dtype] = (dtypes[dtype] ?? 0) + numel;
    parameters += numel;
    weightBytes += bytes;
  };
  if (statSync(path).isDirectory()) {
    const config = join(path, "config.json");
    if (!existsSync(config)) throw new UserError(`${path}: no config.json in this folder`);
    spec = loadHfConfigSpec(config);
    for (const t of openSafetensors(path).values()) add(t.dtype.toLowerCase(), t.shape.reduce((a, b) => a * b, 1), t.bytes);
  } else {
    const { ggufModelSource } = await import("../formats/gguf.js");
    const { spec: s, file } = await ggufModelSource(path);
    spec = s;
    const names: Record<number, string> = { 0: "f32", 1: "f16", 8: "q8_0", 30: "bf16" };
    for (const t of file.tensors.values()) add(names[t.type] ?? `type${t.type}`, t.shape.reduce((a, b) => a * b, 1), t.bytes);
  }
  const kv: Record<string, number> = {};
  for (const d of ["f32", "f16", "int8"]) kv[d] = kvBytesPerToken(spec, d);
  const windows = spec.layers.map((l) => l.window).filter((w): w is number => w !== null);
  return {
    model: path,
    architecture: spec.family,
    attention: attentionKind(spec),
    parameters,
    layers: spec.numLayers,
    hiddenSize: spec.hiddenSize,
    heads: spec.numHeads,
    kvHeads: spec.numKvHeads,
    headDim: spec.headDim,
    context: spec.maxPositions,
    vocabSize: spec.vocabSize,
    kvBytesPerToken: kv,
    weightDtypes: dtypes,
    weightBytes,
    tiedEmbeddings: spec.tieWordEmbeddings,
    window: windows.length ? Math.max(...windows) : null,
  };
}
