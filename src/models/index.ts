// Families: llama, mistral, qwen2, qwen3, phi3, gemma, gemma2, gemma3_text, falcon, gpt2, gpt_bigcode.
// Model loading: a model folder (config.json + safetensors) or a .gguf file → spec → weight table
// → DecoderModel. The family registry maps HF model_type to its table and switches; anything
// else is rejected by name.
import { UserError } from "../errors.js";
import type { Arena } from "../kernels/memory.js";
import type { Kernels } from "../kernels/types.js";
import { safetensorsSource } from "../formats/source.js";
import { loadHfConfigSpec, resolveModelPath } from "../formats/model-file.js";
import type { ModelSpec } from "../config/types.js";
import { DecoderModel, type DecoderOptions } from "./decoder.js";
import { gemmaOptions, gemmaTable } from "./gemma.js";
import { gemma2Options, gemma2Table } from "./gemma2.js";
import { falconOptions, falconTable } from "./falcon.js";
import { gpt2Options, gpt2Table } from "./gpt2.js";
import { gptBigcodeOptions, gptBigcodeTable } from "./gpt_bigcode.js";
import { llamaOptions, llamaTable } from "./llama.js";
import { phi3Options, phi3Table } from "./phi3.js";
import { qwen3Options, qwen3Table } from "./qwen3.js";
import { checkWeights, loadWeights, packRows4Weights, type TensorSource, type WeightRow } from "./weights.js";

export { DecoderModel, type CacheOptions, type DecoderOptions } from "./decoder.js";
export type { TensorSource, Weight, WeightRow } from "./weights.js";

interface Family {
  table(spec: ModelSpec): WeightRow[];
  options(spec: ModelSpec): DecoderOptions;
}

/** HF model_type → family. */
export const FAMILIES: Record<string, Family> = {
  llama: { table: llamaTable, options: llamaOptions },
  mistral: { table: llamaTable, options: llamaOptions },
  qwen2: { table: llamaTable, options: llamaOptions },
  qwen3: { table: qwen3Table, options: qwen3Options },
  phi3: { table: phi3Table, options: phi3Options },
  gemma: { table: gemmaTable, options: gemmaOptions },
  gemma2: { table: gemma2Table, options: gemma2Options },
  gemma3_text: { table: gemma2Table, options: gemma2Options }, // GGUF "gemma3" is read as gemma3_text (formats/gguf.ts)
  gpt2: { table: gpt2Table, options: gpt2Options },
  falcon: { table: falconTable, options: falconOptions },
  gpt_bigcode: { table: gptBigcodeTable, options: gptBigcodeOptions },
};

/** Rejects specs the runtime cannot run, naming the feature. */
export function checkSupported(spec: ModelSpec, where: string): Family {
  const family = FAMILIES[spec.family];
  if (!family && spec.family === "unknown") throw new UserError(`${where}: missing field model_type; expected one of ${Object.keys(FAMILIES).join(", ")}`);
  if (!family) throw new UserError(`${where}: model_type "${spec.family}" is not supported; expected one of ${Object.keys(FAMILIES).join(", ")}`);
  if (spec.mla) throw new UserError(`${where}: multi-head latent attention is not supported by the runtime`);
  if (spec.mlp.numExperts > 1) throw new UserError(`${where}: mixture-of-experts MLPs are not supported by the runtime`);
  if (spec.layers.some((l) => l.numHeads !== spec.numHeads || l.numKvHeads !== spec.numKvHeads || l.headDim !== spec.headDim)) {
    throw new UserError(`${where}: layers with different head shapes are not supported`);
  }
  if (spec.positions === "rope" && spec.headDim % 2 !== 0) throw new UserError(`${where}: head_dim ${spec.headDim} is odd; RoPE needs an even head dim`);
  if ((spec.partialRotaryFactor ?? 1) !== 1) throw new UserError(`${where}: partial rotary embeddings are not supported`);
  // The family tables read no MLP or LM-head biases for LLaMA-style models: a config that has them
  // would load and silently drop those tensors.
  if (spec.family === "phi3" && (spec.qkvBias || spec.attnOutBias)) throw new UserError(`${where}: attention biases are not supported for model_type "phi3" (Phi-3's qkv_proj and o_proj have none); expected no attn_qkv / attn_output bias`);
  if (spec.mlpBias && ["llama", "mistral", "qwen2", "qwen3", "phi3", "gemma", "gemma2", "gemma3_text"].includes(spec.family)) throw new UserError(`${where}: mlp_bias true is not supported for model_type "${spec.family}"; expected mlp_bias false`);
  if (spec.lmHeadBias) throw new UserError(`${where}: an LM head bias is not supported; expected lm_head without bias`);
  if ((spec.family === "gemma2" || spec.family === "gemma3_text") && (spec.qkvBias || spec.attnOutBias)) {
    throw new UserError(`${where}: attention_bias true is not supported for model_type "${spec.family}"; expected attention_bias false`);
  }
  if (spec.positions === "alibi") throw new UserError(`${where}: field alibi true (ALiBi positions) is not supported by the runtime; expected alibi false (RoPE)`);
  if (spec.family === "falcon") checkFalcon(spec, where);
  checkActivation(spec, where);
  if (spec.positions === "rope") checkRopeScaling(spec, where);
  return family;
}

// Activations each family runs (the MLP kernels are SwiGLU for the LLaMA tables and tanh-GELU for
// the others; exact "gelu" differs from the tanh form by < 1e-3 and is what llama.cpp runs too).
const GELU = ["gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast"];
const SILU = ["silu", "swish"];
const ACTIVATIONS: Record<string, string[]> = { llama: SILU, mistral: SILU, qwen2: SILU, qwen3: SILU, phi3: SILU, gemma: GELU, gemma2: GELU, gemma3_text: GELU, gpt2: GELU, gpt_bigcode: GELU, falcon: GELU };

/** What the Falcon table does not read: biases (config `bias`), sequential blocks (`parallel_attn` false). */
function checkFalcon(spec: ModelSpec, where: string): void {
  if (spec.qkvBias || spec.attnOutBias || spec.mlpBias) throw new UserError(`${where}: field bias true is not supported for model_type "falcon" (Falcon-7B/40B/180B have none); expected bias false`);
  if (!spec.parallelResidual) throw new UserError(`${where}: field parallel_attn false (sequential attention then MLP) is not supported for model_type "falcon"; expected parallel_attn true`);
  if (spec.normsPerLayer !== 1 && spec.normsPerLayer !== 2) throw new UserError(`${where}: field num_ln_in_parallel_attn ${spec.normsPerLayer} is not supported; expected 1 or 2`);
}

function checkActivation(spec: ModelSpec, where: string): void {
  const allowed = ACTIVATIONS[spec.family];
  if (spec.activation === undefined || !allowed || allowed.includes(spec.activation)) return; // GGUF specs carry no activation name
  throw new UserError(`${where}: activation "${spec.activation}" is not supported for model_type "${spec.family}"; expected ${allowed.join(" or ")}`);
}

/**
 * rope_scaling must be one the runtime implements (see ropeInvFreq) with every field it reads present (config/rope.ts
 * marks the others "unsupported" with the problem): a llama3 object without `factor` would turn every frequency into NaN.
 */
function checkRopeScaling(spec: ModelSpec, where: string): void {
  const s = spec.ropeScaling;
  if (s?.type === "unsupported") throw new UserError(`${where}: ${s.problem}`);
  if (s?.type === "freq_factors") {
    const f = s.factors;
    if (f.length !== spec.headDim / 2 || !f.every((x) => typeof x === "number" && Number.isFinite(x) && x > 0)) {
      throw new UserError(`${where}: rope_freqs has ${f.length} entries (or non-positive ones); expected head_dim / 2 = ${spec.headDim / 2} positive factors`);
    }
  }
}

export interface LoadOptions {
  arena: Arena;
  kernels: Kernels;
  /** "auto" (default): f16 and bf16 matmul weights take the rows4 layout when the kernels prefer it (Kernels.prefersRows4); "rows": as in the file. */
  weightLayout?: "auto" | "rows";
}

/** A loaded model plus where it came from. */
export interface LoadedModel {
  model: DecoderModel;
  spec: ModelSpec;
  dir: string; // folder holding tokenizer files ("" for a bare .gguf)
  unusedTensors: string[];
  ggufMetadata?: Record<string, unknown>; // a .gguf's metadata (holds its tokenizer), parsed once
}

/** Checks a checkpoint against its spec from the headers alone (no weights read); returns the unused tensor names. */
export function checkModel(spec: ModelSpec, src: TensorSource): string[] {
  return checkWeights(src, checkSupported(spec, src.path).table(spec)).unused;
}

/** Builds the model from a spec and a tensor source (shared by safetensors and GGUF). */
export function buildModel(spec: ModelSpec, src: TensorSource, opts: LoadOptions): { model: DecoderModel; unused: string[] } {
  const family = checkSupported(spec, src.path);
  const { weights, unused } = loadWeights(opts.arena, src, family.table(spec));
  if (opts.kernels.prefersRows4 && opts.weightLayout !== "rows") packRows4Weights(opts.arena, weights);
  return { model: new DecoderModel(spec, weights, family.options(spec), opts.arena, opts.kernels), unused };
}

/** Loads an HF model folder (config.json + model.safetensors or shards) or a .gguf file. */
export async function loadModel(path: string, opts: LoadOptions): Promise<LoadedModel> {
  const found = resolveModelPath(path);
  if (found.kind === "hf") {
    const spec = loadHfConfigSpec(found.config);
    checkSupported(spec, found.config);
    const { model, unused } = buildModel(spec, safetensorsSource(found.dir), opts);
    return { model, spec, dir: found.dir, unusedTensors: unused };
  }
  if (found.kind === "gguf") {
    const { ggufModelSource } = await import("../formats/gguf.js");
    const { spec, source, file } = await ggufModelSource(found.path);
    const { model, unused } = buildModel(spec, source, opts);
    return { model, spec, dir: "", unusedTensors: unused, ggufMetadata: file.metadata };
  }
  throw new UserError(`${path}: expected a model folder (config.json + safetensors) or a .gguf file`);
}
