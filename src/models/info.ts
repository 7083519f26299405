// Model facts for `mqa info`, read from headers only (config.json + safetensors headers, or GGUF
// metadata + tensor table): parameters are counted from the real tensor shapes.
import { UserError } from "../errors.js";
import { stDtypeBytes, type StDtype } from "../formats/safetensors.js";
import { safetensorsSource } from "../formats/source.js";
import { checkModel, checkSupported } from "./index.js";
import { kvBytesPerToken } from "../kvcache/bytes.js";
import { loadHfConfigSpec, resolveModelPath } from "../formats/model-file.js";
import { attentionKind, type ModelSpec } from "../config/types.js";

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
  const found = resolveModelPath(path);
  let spec: ModelSpec;
  const dtypes: Record<string, number> = {};
  let weightBytes = 0;
  let parameters = 0;
  const add = (dtype: string, numel: number, bytes: number) => {
    dtypes[dtype] = (dtypes[dtype] ?? 0) + numel;
    parameters += numel;
    weightBytes += bytes;
  };
  // The same checks as loading (supported architecture, every tensor present with the config's
  // shape and a supported dtype), from the headers alone: info never describes a model that
  // generate would then refuse.
  if (found.kind === "hf") {
    spec = loadHfConfigSpec(found.config);
    checkSupported(spec, found.config);
    const source = safetensorsSource(found.dir);
    checkModel(spec, source);
    for (const name of source.names()) {
      const t = source.info(name)!;
      const numel = t.shape.reduce((a, b) => a * b, 1);
      add(t.dtype.toLowerCase(), numel, numel * stDtypeBytes(t.dtype as StDtype));
    }
  } else if (found.kind === "gguf") {
    const { ggufModelSource } = await import("../formats/gguf.js");
    const { spec: s, source, file } = await ggufModelSource(found.path);
    spec = s;
    checkModel(spec, source);
    const names: Record<number, string> = { 0: "f32", 1: "f16", 2: "q4_0", 3: "q4_1", 6: "q5_0", 7: "q5_1", 8: "q8_0", 12: "q4_k", 13: "q5_k", 14: "q6_k", 30: "bf16" };
    for (const t of file.tensors.values()) {
      if (t.ggufName === "rope_freqs.weight") continue; // llama3 RoPE factors: a constant, not a parameter
      add(names[t.type] ?? `type${t.type}`, t.shape.reduce((a, b) => a * b, 1), t.bytes);
    }
  } else throw new UserError(`${path}: expected a model folder (config.json + safetensors) or a .gguf file`);
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
