// HF config.json → ModelSpec. This is the one place that knows the naming quirks of HF configs:
//   n_head / n_layer / n_embd / n_positions / n_inner  (GPT-2, gpt_bigcode)
//   num_key_value_heads absent = MHA; num_kv_heads, multi_query and new_decoder_architecture (Falcon)
//   explicit head_dim (Gemma: 256 ≠ hidden/heads)
//   sliding_window + use_sliding_window (Qwen2: false = unused), layer_types, Gemma-2 alternation
//   MLA (kv_lora_rank, qk_rope_head_dim, ...), MoE (num_local_experts, n_routed_experts, ...)
//   tie_word_embeddings defaults that differ per family
// Pure: takes the parsed object, never touches the file system (the web page uses it too).
import { UserError } from "../errors.js";
import type { LayerSpec, MlaSpec, MlpKind, MlpSpec, ModelSpec, PositionKind } from "./types.js";
import { parseRopeScaling, type RopeScaling } from "./rope.js";
import { bool, has, int, isObject, LIMITS, num, optInt, optNum, pick, str, type FieldSource, type Json } from "./fields.js";

// Families whose MLP is a plain two-matrix MLP (fc → act → proj) rather than a gated one.
const NON_GATED = new Set(["gpt2", "gpt_bigcode", "falcon", "gpt_neox", "gptj", "opt", "bloom", "phi", "starcoder2", "mpt", "RefinedWeb", "RefinedWebModel"]);
// Families that use LayerNorm (weight + bias); everything else here uses RMSNorm (weight only).
const LAYERNORM = new Set([...NON_GATED, "phimoe"]);
// Attention-free or hybrid families: some or all layers are state-space (Mamba, RWKV, RG-LRU) blocks with a
// per-sequence state instead of a KV cache. Planning them as attention layers would be silently wrong.
const NOT_ATTENTION = new Set([
  "mamba", "mamba2", "falcon_mamba", "jamba", "zamba", "zamba2", "bamba", "falcon_h1", "nemotron_h", "granitemoehybrid",
  "rwkv", "rwkv5", "rwkv6", "rwkv7", "recurrent_gemma", "xlstm", "lfm2", "qwen3_next", "minimax", "plamo2",
]);
// Config fields that only hybrid (attention + state-space) configs carry; the first one present is named in the error.
const HYBRID_FIELDS = ["attn_layer_period", "attn_layer_indices", "layers_block_type", "hybrid_override_pattern", "block_types", "layer_block_types", "ssm_cfg", "mamba_d_state", "ssm_state_size"];
// Families whose config class defaults tie_word_embeddings to false (PretrainedConfig's default is true).
const UNTIED_BY_DEFAULT = new Set([
  "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "phi3", "gpt_neox", "deepseek_v2", "deepseek_v3",
  "olmo", "olmo2", "granite", "internlm2", "starcoder2", "gptj", "mpt", "exaone", "minicpm",
]);
// Families where a missing intermediate size means 4 × hidden (the config classes' default).
const FOUR_X_MLP = new Set(["gpt2", "gpt_bigcode", "falcon", "gptj", "bloom", "opt", "RefinedWeb", "RefinedWebModel"]);

// Config-class defaults of the activation where it is not "silu" (GPT2Config: gelu_new; GPTBigCodeConfig and GemmaConfig: gelu_pytorch_tanh).
const DEFAULT_ACTIVATION: Record<string, string> = { gpt2: "gelu_new", gpt_bigcode: "gelu_pytorch_tanh", gemma: "gelu_pytorch_tanh", gemma2: "gelu_pytorch_tanh", gemma3_text: "gelu_pytorch_tanh", falcon: "gelu" };

// Config-class defaults of the Gemma-2/3 attention details when a config omits the key (an explicit null
// means "off"): Gemma2Config query_pre_attn_scalar 256, attn_logit_softcapping 50, final_logit_softcapping 30;
// Gemma3TextConfig query_pre_attn_scalar 256, no soft-capping, rope_local_base_freq 10000.
const GEMMA_DEFAULTS: Record<string, Record<string, number | null>> = {
  gemma2: { query_pre_attn_scalar: 256, attn_logit_softcapping: 50, final_logit_softcapping: 30 },
  gemma3_text: { query_pre_attn_scalar: 256, attn_logit_softcapping: null, final_logit_softcapping: null, rope_local_base_freq: 10000 },
};

// transformers' config-class defaults, applied only inside a wrapper's text_config (see above).
const TEXT_CONFIG_DEFAULTS: Record<string, Json> = {
  llama: { vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, max_position_embeddings: 2048, rms_norm_eps: 1e-6 },
  mistral: { vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, max_position_embeddings: 131072, rms_norm_eps: 1e-6, sliding_window: 4096 },
  gemma3_text: {
    vocab_size: 262208, hidden_size: 2304, intermediate_size: 9216, num_hidden_layers: 26, num_attention_heads: 8, num_key_value_heads: 4, head_dim: 256,
    max_position_embeddings: 131072, rms_norm_eps: 1e-6, rope_theta: 1000000, query_pre_attn_scalar: 256, sliding_window: 4096, hidden_activation: "gelu_pytorch_tanh",
  },
};

/**
 * Normalises a parsed HF config.json into a ModelSpec.
 * @param json the parsed config object
 * @param sourceName the file (or preset) it came from; every error message starts with it
 * @example specFromHfConfig({ model_type: "llama", hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32,
 *   intermediate_size: 11008, vocab_size: 32000, max_position_embeddings: 4096 }, "config.json").numKvHeads // 32 (MHA)
 */
export function specFromHfConfig(json: unknown, sourceName: string): ModelSpec {
  if (!isObject(json)) throw new UserError(`${sourceName}: expected a JSON object (an HF config.json), got ${Array.isArray(json) ? "an array" : json === null ? "null" : typeof json}`);
  // Multimodal wrappers (Gemma-3, Llava, Mistral-3, Llama-4) keep the language model in text_config.
  let obj: Json = json;
  const notes: string[] = [];
  if (!has({ obj, file: sourceName }, "num_hidden_layers") && !has({ obj, file: sourceName }, "n_layer") && isObject(json.text_config)) {
    // Nested text configs often store only what differs from their config class's defaults.
    const text = json.text_config;
    const type = typeof text.model_type === "string" ? text.model_type : "llama";
    const defaults = TEXT_CONFIG_DEFAULTS[type] ?? {};
    const used = Object.keys(defaults).filter((k) => text[k] === undefined);
    if (used.length) notes.push(`text_config: ${type} config-class defaults used for ${used.join(", ")}`);
    // The wrapper's own vocab_size and tie_word_embeddings describe the language model too (Llama-4 unties at the top).
    const outer: Json = {};
    for (const k of ["vocab_size", "tie_word_embeddings"]) if (json[k] !== undefined && json[k] !== null) outer[k] = json[k];
    obj = { ...defaults, ...outer, ...text, model_type: type };
    sourceName = `${sourceName} (text_config)`;
  }
  const src: FieldSource = { obj, file: sourceName };
  rejectNonAttention(src);
  if (isObject(json.quantization_config)) {
    const q = json.quantization_config;
    notes.push(`checkpoint is quantized (${String(q.quant_method ?? "unknown method")}${q.bits ? `, ${q.bits} bits` : ""}); pass a matching --weight-dtype`);
  }
  const family = str(src, ["model_type"]) ?? "unknown";
  const name = str(src, ["_name_or_path", "name"]) || sourceName;

  const numLayers = int(src, ["num_hidden_layers", "n_layer", "num_layers", "n_layers"], { what: "decoder layers", max: LIMITS.layers });
  const hiddenSize = int(src, ["hidden_size", "n_embd", "d_model"], { what: "model width" });
  const numHeads = int(src, ["num_attention_heads", "n_head", "n_heads", "num_heads"], { what: "query heads" });
  const vocabSize = int(src, ["vocab_size", "n_vocab", "padded_vocab_size"], { what: "vocabulary size", strict: false });
  const numKvHeads = readKvHeads(src, family, numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new UserError(`${sourceName}: num_attention_heads ${numHeads} is not divisible by the KV head count ${numKvHeads}; expected a divisor of ${numHeads}`);
  }
  const mla = readMla(src);
  let headDim: number;
  if (mla) headDim = mla.qkNopeHeadDim + mla.qkRopeHeadDim;
  else if (has(src, "head_dim") || has(src, "kv_channels")) headDim = int(src, ["head_dim", "kv_channels"]);
  else {
    if (hiddenSize % numHeads !== 0) {
      throw new UserError(`${sourceName}: hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads} and head_dim is not set; expected head_dim`);
    }
    headDim = hiddenSize / numHeads;
  }

  let windows = readWindows(src, family, numLayers);
  let unappliedWindow: number | null = null;
  if (family === "phi3" && windows.some((w) => w !== null)) {
    unappliedWindow = windows.find((w) => w !== null) ?? null;
    // Phi-3 configs set sliding_window (2047 for mini-4k) but engines serve them with full attention
    // (llama.cpp: "Phi SWA is currently disabled"), so the cache is planned without a cap. transformers
    // does apply it (create_sliding_window_causal_mask), so the runtime keeps runs within the window,
    // where full and sliding attention are the same computation (spec.unappliedWindow).
    notes.push(`phi3 sliding_window ${windows.find((w) => w !== null)} not applied (engines run Phi-3 with full attention)`);
    windows = windows.map(() => null);
  }
  const layers: LayerSpec[] = windows.map((window) => ({ numHeads, numKvHeads: mla ? numHeads : numKvHeads, headDim, window }));
  const maxPositions = readMaxPositions(src, family, notes);
  const { ropeTheta, ropeScaling } = readRope(src);
  // FalconConfig names it `activation` (default "gelu", the exact erf form).
  const actKeys = ["hidden_activation", "hidden_act", "activation_function", "hidden_activation_function", ...(family === "falcon" ? ["activation"] : [])];
  const activation = str(src, actKeys) ?? DEFAULT_ACTIVATION[family] ?? "silu";
  const mlp = readMlp(src, family, hiddenSize, activation, numLayers, notes);
  const layerNorm = LAYERNORM.has(family);
  const isFalcon = family === "falcon" || family === "RefinedWeb" || family === "RefinedWebModel";
  const falconNew = isFalcon && bool(src, ["new_decoder_architecture"], family === "RefinedWeb");
  const bias = bool(src, ["bias"], false); // Falcon's one switch for every linear bias
  // Phi3Attention's projections are bias-free whatever the config says (nn.Linear(..., bias=False)).
  const attentionBias = family === "phi3" ? false : bool(src, ["attention_bias"], family === "gpt_neox");
  const allBias = family === "gpt2" || family === "gpt_bigcode" || family === "phi" || (family === "starcoder2" && bool(src, ["use_bias"], true));
  // ChatGLM: add_qkv_bias; GPT-J: biases on the MLP only; gpt-oss: every expert has biases.
  const qkvBias = allBias || family === "qwen2" || family === "qwen2_moe" || bool(src, ["add_qkv_bias"], false) || (isFalcon ? bias : attentionBias);
  const attnOutBias = allBias || (isFalcon ? bias : family.startsWith("qwen2") ? false : attentionBias);
  const mlpBias = allBias || family === "gpt_neox" || family === "gptj" || family === "gpt_oss" || (isFalcon ? bias : bool(src, ["mlp_bias"], false));
  // Parallel blocks with one norm feeding attention and MLP: Phi-1/2, GPT-J, Cohere (GPT-NeoX keeps two norms).
  const oneNorm = family === "phi" || family === "gptj" || family === "cohere" || family === "cohere2";
  const parallelResidual = isFalcon ? bool(src, ["parallel_attn"], true) : oneNorm || bool(src, ["use_parallel_residual"], family === "gpt_neox");

  return {
    name,
    family,
    numLayers,
    hiddenSize,
    vocabSize,
    numHeads,
    numKvHeads: mla ? numHeads : numKvHeads,
    headDim,
    layers,
    mla,
    mlp,
    norm: layerNorm ? "layernorm" : "rmsnorm",
    normEps: num(src, ["rms_norm_eps", "layer_norm_epsilon", "layer_norm_eps", "norm_epsilon", "layernorm_epsilon"], 1e-5, { positive: true }),
    positions: readPositions(src, family),
    ropeTheta,
    ropeScaling,
    maxPositions,
    tieWordEmbeddings: bool(src, ["tie_word_embeddings"], !UNTIED_BY_DEFAULT.has(family)),
    qkvBias,
    attnOutBias,
    mlpBias,
    lmHeadBias: family === "phi" || family === "gptj" || bool(src, ["lm_head_bias"], false),
    normsPerLayer: family.startsWith("gemma2") || family.startsWith("gemma3") ? 4 : isFalcon ? (falconNew ? int(src, ["num_ln_in_parallel_attn"], { fallback: 2 }) : parallelResidual ? 1 : 2) : oneNorm ? 1 : 2,
    normWeights: family !== "olmo", // OLMo (v1) LayerNorms have no weight or bias
    qkNorm: family === "qwen3" || family === "qwen3_moe" || family.startsWith("gemma3") || family === "olmo2",
    ...(unappliedWindow !== null ? { unappliedWindow } : {}),
    partialRotaryFactor: num(src, ["partial_rotary_factor", "rotary_pct"], 1, { positive: true }),
    parallelResidual,
    queryPreAttnScalar: gemmaField(src, family, "query_pre_attn_scalar"),
    attnLogitSoftcapping: gemmaField(src, family, "attn_logit_softcapping"),
    finalLogitSoftcapping: gemmaField(src, family, "final_logit_softcapping"),
    ropeLocalTheta: gemmaField(src, family, "rope_local_base_freq"),
    activation,
    source: sourceName,
    notes,
  };
}

/** A Gemma attention detail: the config's value, null when it says null, else the config class's default (GEMMA_DEFAULTS). */
function gemmaField(src: FieldSource, family: string, key: string): number | null {
  if (src.obj[key] === null) return null;
  if (src.obj[key] === undefined) return GEMMA_DEFAULTS[family]?.[key] ?? null;
  const v = optNum(src, [key]);
  if (v !== null && !(v > 0)) throw new UserError(`${src.file}: field ${key} is ${v}; expected a positive number or null`);
  return v;
}

/**
 * State-space and hybrid models (Mamba, Jamba, Zamba, RWKV, ...) keep a fixed-size recurrent state for most layers and a
 * KV cache only for their attention layers, so an attention-only byte count would be wrong (Jamba-v0.1: 8× too big).
 * They are refused with the field that gives them away rather than planned wrongly.
 */
function rejectNonAttention(src: FieldSource): void {
  const type = typeof src.obj.model_type === "string" ? src.obj.model_type : "";
  const field = HYBRID_FIELDS.find((k) => has(src, k));
  if (!NOT_ATTENTION.has(type) && !field) return;
  const what = field ? `field ${field}=${JSON.stringify(src.obj[field]).slice(0, 40)}` : `model_type "${type}"`;
  throw new UserError(
    `${src.file}: ${what} marks a state-space or hybrid model (layers without attention keep a recurrent state, not a KV cache); ` +
      `the planner covers attention-only decoders, expected every layer to be attention`,
  );
}

/** KV heads: num_key_value_heads, else num_kv_heads, else multi_query (1), else MHA. */
function readKvHeads(src: FieldSource, family: string, numHeads: number): number {
  const multiQuery = bool(src, ["multi_query"], family === "gpt_bigcode"); // GPTBigCodeConfig defaults to true
  if (family === "falcon" || family === "RefinedWeb" || family === "RefinedWebModel") {
    // transformers' FalconAttention: num_kv_heads if (new_decoder_architecture or not multi_query) else 1;
    // FalconConfig's num_kv_heads defaults to num_attention_heads. RW remote code calls it n_head_kv.
    // FalconConfig and RWConfig default multi_query to true; the old "RefinedWeb" (40B) code is the new decoder.
    const multi = bool(src, ["multi_query"], true);
    if (bool(src, ["new_decoder_architecture"], family === "RefinedWeb") || !multi) return int(src, ["num_kv_heads", "n_head_kv", "num_key_value_heads"], { fallback: numHeads });
    return 1;
  }
  const explicit = optInt(src, ["num_key_value_heads", "num_kv_heads", "n_head_kv", "multi_query_group_num"]);
  if (explicit !== null) {
    if (has(src, "multi_query") && multiQuery && explicit !== 1) {
      throw new UserError(`${src.file}: multi_query is true but the KV head count is ${explicit}; expected 1 or multi_query false`);
    }
    if (explicit > numHeads) throw new UserError(`${src.file}: KV head count ${explicit} exceeds num_attention_heads ${numHeads}; expected at most ${numHeads}`);
    return explicit;
  }
  return multiQuery ? 1 : numHeads;
}

function readMla(src: FieldSource): MlaSpec | null {
  if (!has(src, "kv_lora_rank")) return null;
  return {
    kvLoraRank: int(src, ["kv_lora_rank"]),
    qkRopeHeadDim: int(src, ["qk_rope_head_dim"], { what: "MLA decoupled RoPE key width" }),
    qkNopeHeadDim: int(src, ["qk_nope_head_dim"], { what: "MLA per-head key width without RoPE" }),
    vHeadDim: int(src, ["v_head_dim"], { what: "MLA per-head value width" }),
    qLoraRank: optInt(src, ["q_lora_rank"]),
  };
}

/** Per-layer sliding windows (null = global attention). */
function readWindows(src: FieldSource, family: string, numLayers: number): (number | null)[] {
  const all = (w: number | null) => Array.from({ length: numLayers }, () => w);
  if (bool(src, ["use_sliding_window"], true) === false) return all(null); // Qwen2: the window is configured but unused
  const windowHit = pick(src, ["sliding_window", "sliding_window_size", "attention_window_size"]);
  const window = windowHit ? int(src, [windowHit.key]) : null;
  const chunk = optInt(src, ["attention_chunk_size"]);
  const layerTypes = src.obj.layer_types;
  if (Array.isArray(layerTypes)) {
    if (layerTypes.length !== numLayers) {
      throw new UserError(`${src.file}: layer_types has ${layerTypes.length} entries; expected ${numLayers} (num_hidden_layers)`);
    }
    return layerTypes.map((t, i) => {
      if (t === "full_attention" || t === "attention" || t === "global") return null;
      if (t === "chunked_attention") {
        // Llama-4: a chunked layer attends within its chunk, so it never holds more than attention_chunk_size tokens.
        if (chunk === null) throw new UserError(`${src.file}: layer_types[${i}] is "chunked_attention" but attention_chunk_size is missing; expected a chunk length`);
        return chunk;
      }
      if (t === "sliding_attention" || t === "sliding" || t === "local") {
        if (window === null) throw new UserError(`${src.file}: layer_types[${i}] is "${t}" but sliding_window is missing; expected a window length`);
        return window;
      }
      const hint = /mamba|linear|conv|recurrent|ssm/i.test(String(t)) ? " (a layer without a KV cache: hybrid models are not planned)" : "";
      throw new UserError(`${src.file}: layer_types[${i}] is ${JSON.stringify(t)}${hint}; expected "full_attention" or "sliding_attention"`);
    });
  }
  if (family.startsWith("llama4") && chunk !== null) {
    // transformers' Llama4TextConfig: layers with RoPE use chunked attention, the NoPE layers (every 4th) are global;
    // no_rope_layers[i] = 1 marks a RoPE (chunked) layer when the config lists them.
    const noRope = src.obj.no_rope_layers;
    const chunked = (i: number) => (Array.isArray(noRope) && noRope.length === numLayers ? noRope[i] === 1 || noRope[i] === true : (i + 1) % 4 !== 0);
    return Array.from({ length: numLayers }, (_, i) => (chunked(i) ? chunk : null));
  }
  if (family === "gemma2") {
    // transformers' Gemma2: even layers (0, 2, ...) slide, odd layers are global.
    const w = window ?? 4096;
    return Array.from({ length: numLayers }, (_, i) => (i % 2 === 0 ? w : null));
  }
  const pattern = optInt(src, ["sliding_window_pattern"]) ?? (family.startsWith("gemma3") ? 6 : null); // Gemma3TextConfig default
  if (pattern !== null && window !== null) {
    // Gemma-3: every pattern-th layer is global, the others slide.
    return Array.from({ length: numLayers }, (_, i) => ((i + 1) % pattern === 0 ? null : window));
  }
  if (window === null) return all(null);
  if (family.startsWith("qwen2") || family.startsWith("qwen3")) {
    // Qwen2 with use_sliding_window true: layers from max_window_layers on slide.
    const first = int(src, ["max_window_layers"], { min: 0, fallback: 0 });
    return Array.from({ length: numLayers }, (_, i) => (i >= first ? window : null));
  }
  return all(window);
}

function readMaxPositions(src: FieldSource, family: string, notes: string[]): number {
  const hit = optInt(src, ["max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx", "model_max_length"], 1, false);
  if (hit !== null) return hit;
  if (family === "falcon" || family === "RefinedWeb" || family === "RefinedWebModel") {
    notes.push("max_position_embeddings absent: FalconConfig's default 2048");
    return 2048;
  }
  return int(src, ["max_position_embeddings"], { what: "context length" });
}

function readRope(src: FieldSource): { ropeTheta: number; ropeScaling: RopeScaling | null } {
  // transformers v5 folds rope_theta and rope_scaling into rope_parameters.
  const params = isObject(src.obj.rope_parameters) ? src.obj.rope_parameters : null;
  let ropeTheta = num(src, ["rope_theta", "rotary_emb_base", "rope_embedding_base"], 10000, { positive: true });
  if (params && typeof params.rope_theta === "number") ropeTheta = params.rope_theta;
  if (has(src, "rope_scaling") && !isObject(src.obj.rope_scaling)) {
    throw new UserError(`${src.file}: field rope_scaling is ${JSON.stringify(src.obj.rope_scaling).slice(0, 60)}; expected an object such as {"rope_type": "llama3", "factor": 8.0, ...} or null`);
  }
  let raw: Record<string, unknown> | null = isObject(src.obj.rope_scaling) ? src.obj.rope_scaling : null;
  if (!raw && params) {
    const { rope_theta: _theta, ...rest } = params;
    raw = rest;
  }
  return { ropeTheta, ropeScaling: raw ? parseRopeScaling(raw) : null };
}

function readPositions(src: FieldSource, family: string): PositionKind {
  if (family === "gpt2" || family === "gpt_bigcode" || family === "opt") return "learned";
  if (family === "bloom" || family === "mpt" || bool(src, ["alibi"], false)) return "alibi";
  return "rope";
}

function mlpKind(family: string, activation: string): MlpKind {
  const act = activation.toLowerCase();
  const gated = !NON_GATED.has(family);
  if (act.startsWith("relu")) return "relu";
  if (act === "silu" || act === "swish" || act === "swiglu") return gated ? "swiglu" : "gelu";
  if (act.startsWith("gelu")) return gated ? "geglu" : "gelu";
  return gated ? "swiglu" : "gelu";
}

function readMlp(src: FieldSource, family: string, hiddenSize: number, activation: string, numLayers: number, notes: string[]): MlpSpec {
  // Llama-4 names the dense MLP width intermediate_size_mlp and the expert width intermediate_size.
  const llama4 = family.startsWith("llama4");
  const keys = llama4 && has(src, "intermediate_size_mlp") ? ["intermediate_size_mlp"] : ["intermediate_size", "n_inner", "ffn_hidden_size", "ffn_dim"];
  let intermediateSize: number;
  if (pick(src, keys, false)) intermediateSize = int(src, keys, { strict: false });
  else if (FOUR_X_MLP.has(family)) {
    intermediateSize = 4 * hiddenSize;
    notes.push(`intermediate size absent: 4 × hidden = ${intermediateSize} (the ${family} default)`);
  } else intermediateSize = int(src, keys, { what: "MLP width" });

  const numExperts = optInt(src, ["num_local_experts", "n_routed_experts", "num_experts", "moe_num_experts"]) ?? 1;
  if (numExperts > LIMITS.experts || numLayers * numExperts > LIMITS.tableEntries) {
    throw new UserError(`${src.file}: ${numExperts} experts × ${numLayers} layers is beyond any real model; expected at most ${LIMITS.tableEntries} expert MLPs in all`);
  }
  const expertsPerToken = numExperts > 1 ? int(src, ["num_experts_per_tok", "moe_top_k", "num_selected_experts"], { what: "experts routed per token" }) : 1;
  if (expertsPerToken > numExperts) {
    throw new UserError(`${src.file}: num_experts_per_tok ${expertsPerToken} exceeds the expert count ${numExperts}; expected at most ${numExperts}`);
  }
  const moeIntermediateSize = numExperts > 1 ? (llama4 ? int(src, ["intermediate_size"], { what: "Llama-4 expert width" }) : optInt(src, ["moe_intermediate_size"])) : null;
  // Llama-4 MoE layers carry one shared expert beside the routed ones (no config field says so).
  let sharedExperts = numExperts > 1 ? optInt(src, ["n_shared_experts"], 0) ?? (llama4 ? 1 : 0) : 0;
  // MoE on every step-th layer, dense MLPs between (Llama-4 interleave_moe_layer_step, Qwen2/3-MoE decoder_sparse_step).
  const moeLayerStep = numExperts > 1 ? int(src, ["interleave_moe_layer_step", "decoder_sparse_step"], { fallback: 1 }) : 1;
  const mlpOnly = src.obj.mlp_only_layers;
  if (numExperts > 1 && Array.isArray(mlpOnly) && mlpOnly.length > 0) {
    throw new UserError(`${src.file}: mlp_only_layers ${JSON.stringify(mlpOnly).slice(0, 40)} (dense layers inside a MoE model) is not modelled; expected an empty list`);
  }
  const sharedSize = optInt(src, ["shared_expert_intermediate_size"]);
  if (sharedSize !== null && numExperts > 1) {
    // Qwen2-MoE: one shared expert of its own width; expressed as a count of expert-width MLPs.
    const width = moeIntermediateSize ?? intermediateSize;
    if (sharedSize % width !== 0) {
      throw new UserError(`${src.file}: shared_expert_intermediate_size ${sharedSize} is not a multiple of the expert width ${width}; expected a multiple`);
    }
    sharedExperts = sharedSize / width;
  }
  const firstDenseLayers = numExperts > 1 ? int(src, ["first_k_dense_replace"], { min: 0, fallback: 0 }) : 0;
  if (firstDenseLayers > numLayers) {
    throw new UserError(`${src.file}: first_k_dense_replace ${firstDenseLayers} exceeds num_hidden_layers ${numLayers}`);
  }
  return { kind: mlpKind(family, activation), intermediateSize, numExperts, expertsPerToken, sharedExperts, moeIntermediateSize, firstDenseLayers, ...(moeLayerStep > 1 ? { moeLayerStep } : {}) };
}
