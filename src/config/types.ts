// The one normalised description of a model. Config readers (HF config.json, GGUF metadata,
// presets) produce it; the planner, runtime, converter and trainer consume it. Nothing outside
// src/config/ reads raw config fields.
import type { RopeScaling } from "./rope.js";

export type { RopeScaling };

/** Attention shape of one decoder layer. */
export interface LayerSpec {
  numHeads: number; // query heads, e.g. 32
  numKvHeads: number; // key/value heads, e.g. 8 (1 = MQA, numHeads = MHA)
  headDim: number; // e.g. 128; may differ from hidden/heads (Gemma: 256)
  window: number | null; // sliding-window length in tokens, null = global attention
}

/** Multi-head latent attention (DeepSeek-V2/V3): the cache holds a latent, not per-head K/V. */
export interface MlaSpec {
  kvLoraRank: number; // e.g. 512, the compressed KV latent cached per token
  qkRopeHeadDim: number; // e.g. 64, the decoupled RoPE key cached per token
  qkNopeHeadDim: number; // e.g. 128
  vHeadDim: number; // e.g. 128
  qLoraRank: number | null; // e.g. 1536, null when queries are not compressed
}

export type MlpKind = "swiglu" | "geglu" | "gelu" | "relu";

export interface MlpSpec {
  kind: MlpKind; // swiglu: gate/up/down; gelu: fc/proj (GPT-2)
  intermediateSize: number; // e.g. 11008
  numExperts: number; // 1 = dense; Mixtral: 8
  expertsPerToken: number; // Mixtral: 2
  sharedExperts: number; // DeepSeek: 2, else 0
  moeIntermediateSize: number | null; // expert width when it differs from intermediateSize
  firstDenseLayers: number; // DeepSeek: leading layers that stay dense
  moeLayerStep?: number; // MoE on layers with (i + 1) % step = 0, dense MLP elsewhere (Llama-4 Maverick: 2); default 1
}

export type PositionKind = "rope" | "learned" | "alibi";

export interface ModelSpec {
  name: string; // e.g. "Llama-2-7B"
  family: string; // HF model_type, e.g. "llama", "gpt2", "gpt_bigcode", "gemma"
  numLayers: number; // e.g. 32
  hiddenSize: number; // e.g. 4096
  vocabSize: number; // e.g. 32000
  numHeads: number; // uniform query heads (layers[i] may override)
  numKvHeads: number;
  headDim: number;
  layers: LayerSpec[]; // length numLayers
  mla: MlaSpec | null;
  mlp: MlpSpec;
  norm: "rmsnorm" | "layernorm";
  normEps: number; // e.g. 1e-5
  positions: PositionKind;
  ropeTheta: number; // e.g. 10000
  ropeScaling: RopeScaling | null; // e.g. { type: "llama3", factor: 8, ... }; parsed once in config/rope.ts
  maxPositions: number; // max_position_embeddings, e.g. 4096
  tieWordEmbeddings: boolean;
  qkvBias: boolean; // Qwen2: true
  attnOutBias: boolean; // GPT-2: true
  mlpBias: boolean; // GPT-2: true
  // Optional details (added by the spec readers; older hand-built specs may omit them).
  normsPerLayer?: number; // norms inside each block: 2 for Llama, 4 for Gemma-2, 1 for Falcon-7B (parallel attn)
  lmHeadBias?: boolean; // Phi-1/2, GPT-J, Phi-3.5-MoE: the LM head has a bias
  normWeights?: boolean; // false when the norms have no parameters (OLMo v1); default true
  qkNorm?: boolean; // per-head RMSNorm on q and k (Qwen3, Gemma-3)
  partialRotaryFactor?: number; // fraction of headDim that is rotated, e.g. 0.25 for Pythia; 1 = all
  parallelResidual?: boolean; // attention and MLP read the same input (Falcon, GPT-NeoX)
  queryPreAttnScalar?: number | null; // Gemma-2: scores are scaled by 1/sqrt(this) instead of 1/sqrt(headDim)
  attnLogitSoftcapping?: number | null; // Gemma-2: 50
  finalLogitSoftcapping?: number | null; // Gemma-2: 30
  // Gemma-3: sliding-window layers rotate with this base and no rope_scaling (rope_local_base_freq, e.g. 10000);
  // global layers use ropeTheta (1e6) and ropeScaling. null/absent = every layer uses ropeTheta.
  ropeLocalTheta?: number | null;
  // A sliding window the config sets but the spec does not apply (Phi-3's sliding_window 2047: engines run
  // full attention); runs longer than it would differ from transformers, which applies it. e.g. 2047
  unappliedWindow?: number | null;
  activation?: string; // the config's activation name, e.g. "silu", "gelu_pytorch_tanh"
  source?: string; // where the spec came from, e.g. "preset llama-2-7b" or a file path
  notes?: string[]; // defaults that were assumed while reading the config
}

/** 1 = MQA, numHeads = MHA, otherwise GQA; "mla" when the cache is a latent. */
export function attentionKind(spec: ModelSpec): "mha" | "gqa" | "mqa" | "mla" {
  if (spec.mla) return "mla";
  if (spec.numKvHeads === spec.numHeads) return "mha";
  return spec.numKvHeads === 1 ? "mqa" : "gqa";
}
