// Checkpoints in HF layout, loadable by `mqa generate` and by transformers' LlamaForCausalLM:
//   config.json (model_type "llama"), model.safetensors (F32), tokenizer.json, tokenizer_config.json,
// plus what resuming needs: optimizer.safetensors (AdamW moments per parameter: "<name>.exp_avg",
// "<name>.exp_avg_sq") and trainer_state.json (step, options, batch RNG state, data, log).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../errors.js";
import { readSafetensorsHeader, readTensorBytes, writeSafetensors } from "../formats/safetensors.js";
import type { TrainOptions } from "./loop.js";
import type { Buf } from "./matmul.js";
import type { TensorInfo, TrainModelConfig } from "./model.js";

/** Reads every tensor of an F32 safetensors file (validated by the formats reader). */
export function readSafetensorsF32(path: string): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of readSafetensorsHeader(path).tensors) {
    if (t.dtype !== "F32") throw new UserError(`${path}: tensor ${name} is ${t.dtype}; training checkpoints hold F32 only`);
    const data = new Float32Array(t.bytes / 4);
    readTensorBytes(t, new Uint8Array(data.buffer));
    out.set(name, { shape: t.shape, data });
  }
  return out;
}

/** The HF config.json of a training model (LlamaForCausalLM, untied head). */
export function hfConfig(cfg: TrainModelConfig, eosId: number | null): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: cfg.hiddenSize,
    intermediate_size: cfg.intermediateSize,
    num_hidden_layers: cfg.numLayers,
    num_attention_heads: cfg.numHeads,
    num_key_value_heads: cfg.numKvHeads,
    head_dim: cfg.headDim,
    vocab_size: cfg.vocabSize,
    max_position_embeddings: cfg.maxPositions,
    rms_norm_eps: cfg.normEps,
    rope_theta: cfg.ropeTheta,
    rope_scaling: null,
    hidden_act: "silu",
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: false,
    bos_token_id: eosId,
    eos_token_id: eosId,
    torch_dtype: "float32",
  };
}

/** Reads the fields of a config.json written by hfConfig back into a TrainModelConfig. */
export function trainConfigFromHf(json: Record<string, unknown>, file: string): TrainModelConfig {
  const int = (k: string): number => {
    const v = json[k];
    if (typeof v !== "number") throw new UserError(`${file}: ${k} must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  if (json.model_type !== "llama") throw new UserError(`${file}: model_type ${JSON.stringify(json.model_type)}; training resumes llama checkpoints only`);
  if (json.tie_word_embeddings) throw new UserError(`${file}: tie_word_embeddings is true; the trainer uses an untied lm_head`);
  const numHeads = int("num_attention_heads");
  const hiddenSize = int("hidden_size");
  return {
    vocabSize: int("vocab_size"), hiddenSize, numLayers: int("num_hidden_layers"), numHeads,
    numKvHeads: typeof json.num_key_value_heads === "number" ? json.num_key_value_heads : numHeads,
    headDim: typeof json.head_dim === "number" ? json.head_dim : hiddenSize / numHeads,
    intermediateSize: int("intermediate_size"), maxPositions: int("max_position_embeddings"),
    ropeTheta: typeof json.rope_theta === "number" ? json.rope_theta : 10000,
    normEps: typeof json.rms_norm_eps === "number" ? json.rms_norm_eps : 1e-6,
  };
}

export interface TrainerState {
  version: 1;
  step: number;
  options: TrainOptions;
  rng: { state: number; spare: number | null };
  adamw: { beta1: number; beta2: number; eps: number; weightDecay: number; step: number };
  data: string; // e.g. "data" (the prepared-data folder) or "mqar:..."
  elapsedSeconds: number; // training wall time so far
  extra?: Record<string, unknown>;
}

export interface CheckpointParts {
  cfg: TrainModelConfig;
  tensors: TensorInfo[];
  params: Buf;
  m: Float32Array;
  v: Float32Array;
  state: TrainerState;
  tokenizerJson: unknown | null;
  eosId: number | null;
}

export function saveCheckpoint(dir: string, parts: CheckpointParts): void {
  mkdirSync(dir, { recursive: true });
  const { cfg, tensors, params, m, v, state } = parts;
  writeFileSync(join(dir, "config.json"), JSON.stringify(hfConfig(cfg, parts.eosId), null, 2) + "\n");
  const view = (b: Buf, t: TensorInfo) => b.subarray(t.offset, t.offset + t.size);
  writeSafetensors(join(dir, "model.safetensors"), tensors.map((t) => ({ name: t.name, shape: t.shape, data: view(params, t) })));
  writeSafetensors(join(dir, "optimizer.safetensors"), [
    ...tensors.map((t) => ({ name: `${t.name}.exp_avg`, shape: t.shape, data: view(m, t) })),
    ...tensors.map((t) => ({ name: `${t.name}.exp_avg_sq`, shape: t.shape, data: view(v, t) })),
  ]);
  if (parts.tokenizerJson) {
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(parts.tokenizerJson));
    writeFileSync(
      join(dir, "tokenizer_config.json"),
      JSON.stringify({ tokenizer_class: "PreTrainedTokenizerFast", eos_token: "<|endoftext|>", bos_token: "<|endoftext|>", add_bos_token: false, model_max_length: cfg.maxPositions, clean_up_tokenization_spaces: false }, null, 2) + "\n",
    );
  }
  writeFileSync(join(dir, "trainer_state.json"), JSON.stringify(state, null, 2) + "\n");
}

export interface LoadedCheckpoint {
  cfg: TrainModelConfig;
  weights: Map<string, { shape: number[]; data: Float32Array }>;
  optimizer: Map<string, { shape: number[]; data: Float32Array }> | null;
  state: TrainerState | null;
}

export function loadCheckpoint(dir: string): LoadedCheckpoint {
  const cfgPath = join(dir, "config.json");
  if (!existsSync(cfgPath)) throw new UserError(`${dir}: no config.json; expected a checkpoint folder written by mqa train`);
  const cfg = trainConfigFromHf(JSON.parse(readFileSync(cfgPath, "utf8")), cfgPath);
  const weights = readSafetensorsF32(join(dir, "model.safetensors"));
  const optPath = join(dir, "optimizer.safetensors");
  const statePath = join(dir, "trainer_state.json");
  return {
    cfg,
    weights,
    optimizer: existsSync(optPath) ? readSafetensorsF32(optPath) : null,
    state: existsSync(statePath) ? (JSON.parse(readFileSync(statePath, "utf8")) as TrainerState) : null,
  };
}

/** Copies checkpoint tensors into the flat buffers, asserting every name and shape (a table, nanoGPT style). */
export function restoreInto(tensors: TensorInfo[], dst: Buf, src: Map<string, { shape: number[]; data: Float32Array }>, suffix = "", what = "model.safetensors"): void {
  for (const t of tensors) {
    const s = src.get(t.name + suffix);
    if (!s) throw new UserError(`${what}: missing tensor ${t.name + suffix} (shape [${t.shape}])`);
    if (s.shape.join(",") !== t.shape.join(",")) throw new UserError(`${what}: ${t.name + suffix} has shape [${s.shape}], expected [${t.shape}]`);
    dst.set(s.data, t.offset);
  }
}
