// Starting a training run from an existing checkpoint (`mqa train --init <hf-dir>`): a llama-family
// HF folder (one written by mqa train or mqa convert, or any LlamaForCausalLM / MistralForCausalLM
// without biases) becomes the initial weights of a TrainModel. Optimizer state and schedule are fresh.
//
// Every tensor of the trainer's parameter table must be in the checkpoint with its shape (a table,
// nanoGPT's from_pretrained); F32, F16 and BF16 tensors are widened to f32. A checkpoint with tied
// embeddings starts the untied lm_head from the embedding (the trainer's head is untied), and
// rotary inv_freq buffers are ignored. Anything else the trainer cannot represent is refused by name.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { OptionError, UserError } from "../errors.js";
import { readTensorF32, safetensorsSource } from "../formats/source.js";
import { parameterTable, type TrainModelConfig } from "./model.js";

export interface InitCheckpoint {
  dir: string;
  cfg: TrainModelConfig;
  weights: Map<string, { shape: number[]; data: Float32Array }>;
  tiedHead: boolean; // lm_head started from embed_tokens
  tokenizerJson: unknown;
  trainedTokens: number | null; // from trainer_state.json when mqa train wrote the folder
}

const FAMILIES = new Set(["llama", "mistral"]);

/** The TrainModelConfig of an HF llama/mistral config.json, refusing what the trainer does not have. */
export function initConfigFromHf(json: Record<string, unknown>, file: string): { cfg: TrainModelConfig; tied: boolean } {
  const num = (k: string): number => {
    const v = json[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) throw new UserError(`${file}: ${k} must be a positive integer, got ${JSON.stringify(v)}`);
    return v;
  };
  const mt = json.model_type;
  if (typeof mt !== "string" || !FAMILIES.has(mt)) throw new UserError(`${file}: model_type ${JSON.stringify(mt)}; training from a checkpoint starts from llama or mistral checkpoints only`);
  for (const k of ["attention_bias", "mlp_bias"]) if (json[k]) throw new UserError(`${file}: ${k} is true; the trainer's layers have no biases`);
  const act = json.hidden_act ?? "silu";
  if (act !== "silu") throw new UserError(`${file}: hidden_act ${JSON.stringify(act)}; the trainer's MLP is SwiGLU (silu)`);
  if (json.rope_scaling != null) throw new UserError(`${file}: rope_scaling ${JSON.stringify(json.rope_scaling)}; the trainer has plain RoPE (rope_scaling null)`);
  const heads = num("num_attention_heads");
  const hidden = num("hidden_size");
  const maxPositions = num("max_position_embeddings");
  const sw = json.sliding_window;
  if (typeof sw === "number" && sw < maxPositions) throw new UserError(`${file}: sliding_window ${sw} < max_position_embeddings ${maxPositions}; the trainer's attention is full causal`);
  const kv = json.num_key_value_heads === undefined || json.num_key_value_heads === null ? heads : num("num_key_value_heads");
  if (heads % kv !== 0) throw new UserError(`${file}: num_key_value_heads ${kv} must divide num_attention_heads ${heads}`);
  const headDim = json.head_dim === undefined || json.head_dim === null ? hidden / heads : num("head_dim");
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw new UserError(`${file}: head dim ${headDim} must be an even integer for RoPE`);
  const cfg: TrainModelConfig = {
    vocabSize: num("vocab_size"), hiddenSize: hidden, numLayers: num("num_hidden_layers"), numHeads: heads, numKvHeads: kv, headDim,
    intermediateSize: num("intermediate_size"), maxPositions,
    ropeTheta: typeof json.rope_theta === "number" ? json.rope_theta : 10000,
    normEps: typeof json.rms_norm_eps === "number" ? json.rms_norm_eps : 1e-6,
  };
  return { cfg, tied: json.tie_word_embeddings === true };
}

const IGNORED = /\.rotary_emb\.inv_freq$/;

/** Reads `dir` (config.json, safetensors, tokenizer.json) into f32 tensors keyed by the trainer's names. */
export function loadInitCheckpoint(dir: string): InitCheckpoint {
  const cfgPath = join(dir, "config.json");
  if (!existsSync(cfgPath)) throw new OptionError("init", `init ${dir}: no config.json; expected an HF model folder`);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(cfgPath, "utf8"));
  } catch (e) {
    throw new UserError(`${cfgPath}: not valid JSON (${(e as Error).message})`);
  }
  const { cfg, tied } = initConfigFromHf(json, cfgPath);
  const tokPath = join(dir, "tokenizer.json");
  if (!existsSync(tokPath)) throw new OptionError("init", `init ${dir}: no tokenizer.json; training needs the checkpoint's tokenizer to check it matches the data's`);
  const tokenizerJson = JSON.parse(readFileSync(tokPath, "utf8"));
  const src = safetensorsSource(dir);
  const table = parameterTable(cfg);
  const wanted = new Set(table.map((t) => t.name));
  for (const name of src.names()) {
    if (wanted.has(name) || IGNORED.test(name)) continue;
    throw new UserError(`${src.path}: tensor ${name} has no place in the trainer's llama model (biases and extra tensors cannot be trained here)`);
  }
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  let tiedHead = false;
  for (const t of table) {
    let name = t.name;
    if (name === "lm_head.weight" && !src.info(name)) {
      if (!tied) throw new UserError(`${src.path}: missing tensor lm_head.weight and tie_word_embeddings is not true`);
      name = "model.embed_tokens.weight";
      tiedHead = true;
    }
    const info = src.info(name);
    if (!info) throw new UserError(`${src.path}: missing tensor ${name} (shape [${t.shape}])`);
    if (info.shape.join(",") !== t.shape.join(",")) throw new UserError(`${src.path}: ${name} has shape [${info.shape}], expected [${t.shape}] from config.json`);
    weights.set(t.name, { shape: t.shape, data: readTensorF32(src, name, "--init") });
  }
  let trainedTokens: number | null = null;
  const statePath = join(dir, "trainer_state.json");
  if (existsSync(statePath)) {
    const s = JSON.parse(readFileSync(statePath, "utf8")) as { step?: number; options?: { batch?: number; seqLen?: number; accum?: number } };
    if (s.step && s.options?.batch && s.options.seqLen) trainedTokens = s.step * s.options.batch * s.options.seqLen * (s.options.accum ?? 1);
  }
  return { dir, cfg, weights, tiedHead, tokenizerJson, trainedTokens };
}

/**
 * Refuses a checkpoint whose tokenizer is not the prepared data's: the same token ids must mean the
 * same bytes, so the vocabularies, merges, added tokens and pre-tokenizers must be equal.
 */
export function checkSameTokenizer(ckpt: unknown, data: unknown, ckptFile: string, dataFile: string): void {
  const a = ckpt as Record<string, unknown>, b = data as Record<string, unknown>;
  for (const k of ["model", "added_tokens", "pre_tokenizer", "normalizer"]) {
    if (canonical(a?.[k]) !== canonical(b?.[k])) {
      throw new UserError(`${ckptFile}: its tokenizer differs from ${dataFile} (field "${k}"); train on data prepared with the checkpoint's tokenizer`);
    }
  }
}

function canonical(v: unknown): string {
  if (v === undefined || v === null) return "null";
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}
