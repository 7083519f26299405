// Gemma (v1): the LLaMA layout with three differences: embeddings are scaled by sqrt(hidden),
// RMSNorm multiplies by (1 + w), and the MLP is GeGLU (tanh GELU). Gemma-2B is MQA with head_dim 256.
import type { ModelSpec } from "../config/types.js";
import type { DecoderOptions } from "./decoder.js";
import { llamaTable } from "./llama.js";
import type { WeightRow } from "./weights.js";

export function gemmaTable(spec: ModelSpec): WeightRow[] {
  return llamaTable(spec);
}

export function gemmaOptions(spec: ModelSpec): DecoderOptions {
  // transformers' GemmaModel: normalizer = sqrt(hidden) cast to the activation dtype (f32 here).
  return { norm: "rmsnorm", normPlusOne: true, embedScale: Math.fround(Math.sqrt(spec.hiddenSize)), learnedPositions: false, mlp: "geglu" };
}
