// GGUF metadata → ModelSpec. Keys are llama.cpp's: `<arch>.block_count`, `<arch>.attention.head_count_kv`
// (a number, or an array with one entry per layer), `<arch>.attention.key_length` (head dim when it is not
// embedding_length / head_count), `<arch>.attention.sliding_window`, `<arch>.expert_count`, ...
// Pure: takes the metadata object (as parsed by @huggingface/gguf), no file access.
import { UserError } from "../errors.js";
import type { LayerSpec, MlaSpec, MlpKind, ModelSpec } from "./types.js";
import { checkInt, LIMITS, type Json } from "./fields.js";
import { parseRopeScaling } from "./rope.js";

// Architectures whose GGUF feed-forward is ungated (llama.cpp LLM_FFN_SEQ rather than LLM_FFN_PAR).
const SEQ_FFN = new Set(["gpt2", "starcoder", "falcon", "gptneox", "gptj", "bloom", "mpt", "phi2", "starcoder2"]);
const LAYERNORM_ARCH = SEQ_FFN;

/**
 * Normalises GGUF metadata into a ModelSpec.
 * @param meta metadata keyed by GGUF names, e.g. { "general.architecture": "llama", "llama.block_count": 32, ... }
 * @param sourceName the file it came from, for messages
 * @param tensorNames optional tensor names: a missing `output.weight` means tied embeddings
 */
export function specFromGgufMetadata(meta: Json, sourceName: string, tensorNames?: string[]): ModelSpec {
  const arch = meta["general.architecture"];
  if (typeof arch !== "string") throw new UserError(`${sourceName}: missing GGUF key general.architecture; expected a string such as "llama"`);
  const key = (k: string) => `${arch}.${k}`;
  const get = (k: string) => {
    const v = meta[key(k)];
    return typeof v === "bigint" ? Number(v) : v;
  };
  const req = (k: string, min = 1): number => {
    const v = get(k);
    if (v === undefined || v === null) throw new UserError(`${sourceName}: missing GGUF key ${key(k)}; expected an integer >= ${min}`);
    return checkInt(sourceName, key(k), v, min);
  };
  const opt = (k: string, min = 1): number | null => {
    const v = get(k);
    return v === undefined || v === null ? null : checkInt(sourceName, key(k), v, min);
  };
  if (meta[key("ssm.state_size")] !== undefined || meta[key("wkv.head_size")] !== undefined) {
    const field = meta[key("ssm.state_size")] !== undefined ? key("ssm.state_size") : key("wkv.head_size");
    throw new UserError(`${sourceName}: GGUF key ${field} marks a state-space or hybrid model (layers keep a recurrent state, not a KV cache); the planner covers attention-only decoders`);
  }
  const notes: string[] = [];
  const numLayers = req("block_count");
  if (numLayers > LIMITS.layers) throw new UserError(`${sourceName}: ${key("block_count")} is ${numLayers}; expected at most ${LIMITS.layers}`);
  const hiddenSize = req("embedding_length");
  const headCount = get("attention.head_count");
  const numHeads = Array.isArray(headCount) ? Math.max(...headCount.map((h, i) => checkInt(sourceName, `${key("attention.head_count")}[${i}]`, h))) : req("attention.head_count");
  const kvRaw = get("attention.head_count_kv");
  const kvPerLayer: number[] = Array.isArray(kvRaw)
    ? kvRaw.map((h, i) => checkInt(sourceName, `${key("attention.head_count_kv")}[${i}]`, typeof h === "bigint" ? Number(h) : h))
    : Array.from({ length: numLayers }, () => (kvRaw === undefined ? numHeads : checkInt(sourceName, key("attention.head_count_kv"), kvRaw)));
  if (kvPerLayer.length !== numLayers) throw new UserError(`${sourceName}: ${key("attention.head_count_kv")} has ${kvPerLayer.length} entries; expected ${numLayers}`);
  for (const kv of kvPerLayer) {
    if (numHeads % kv !== 0) throw new UserError(`${sourceName}: head_count ${numHeads} is not divisible by head_count_kv ${kv}; expected a divisor`);
  }
  const kvLora = opt("attention.kv_lora_rank");
  let mla: MlaSpec | null = null;
  let headDim: number;
  if (kvLora !== null) {
    const rope = req("rope.dimension_count");
    const keyLength = opt("attention.key_length_mla") ?? req("attention.key_length");
    mla = { kvLoraRank: kvLora, qkRopeHeadDim: rope, qkNopeHeadDim: keyLength - rope, vHeadDim: opt("attention.value_length_mla") ?? req("attention.value_length"), qLoraRank: opt("attention.q_lora_rank") };
    headDim = keyLength;
  } else {
    const keyLength = opt("attention.key_length");
    if (keyLength !== null) headDim = keyLength;
    else if (hiddenSize % numHeads === 0) headDim = hiddenSize / numHeads;
    else throw new UserError(`${sourceName}: embedding_length ${hiddenSize} is not divisible by head_count ${numHeads} and ${key("attention.key_length")} is missing`);
  }
  const window = opt("attention.sliding_window");
  const pattern = opt("attention.sliding_window_pattern");
  // llama.cpp hard-codes the sliding pattern of some architectures (set_swa_pattern(n): layer i slides when
  // i % n < n - 1, i.e. every n-th layer is global); the GGUF then carries only the window length.
  const FIXED_PATTERN: Record<string, number> = { gemma2: 2, gemma3: 6, "gpt-oss": 2, cohere2: 4, exaone4: 4 };
  const windowOf = (i: number): number | null => {
    if (window === null) return null;
    const n = pattern ?? FIXED_PATTERN[arch] ?? null;
    if (n !== null) return i % n < n - 1 ? window : null;
    return window;
  };
  // llama.cpp disables Phi-3's sliding window ("Phi SWA is currently disabled"); like the HF reader, the spec
  // keeps it as unappliedWindow, the longest run on which full and sliding attention agree.
  const phi3Window = arch === "phi3" ? window : null;
  const layers: LayerSpec[] = kvPerLayer.map((kv, i) => ({ numHeads, numKvHeads: mla ? numHeads : kv, headDim, window: arch === "phi3" ? null : windowOf(i) }));
  const vocabFromTokens = Array.isArray(meta["tokenizer.ggml.tokens"]) ? (meta["tokenizer.ggml.tokens"] as unknown[]).length : null;
  const vocabSize = opt("vocab_size") ?? vocabFromTokens;
  if (vocabSize === null) throw new UserError(`${sourceName}: missing ${key("vocab_size")} and tokenizer.ggml.tokens; expected a vocabulary size`);
  const numExperts = opt("expert_count") ?? 1;
  if (numLayers * numExperts > LIMITS.tableEntries) throw new UserError(`${sourceName}: ${key("expert_count")} ${numExperts} × ${numLayers} layers is beyond any real model; expected at most ${LIMITS.tableEntries} expert MLPs`);
  const ffn = get("feed_forward_length");
  const intermediateSize = Array.isArray(ffn) ? Math.max(...ffn.map(Number)) : req("feed_forward_length");
  const kind: MlpKind = SEQ_FFN.has(arch) ? "gelu" : arch.startsWith("gemma") ? "geglu" : "swiglu";
  // Floats: a string or NaN here would reach every norm / RoPE angle as NaN.
  const float = (k: string, fallback: number): number => {
    const v = get(k);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw new UserError(`${sourceName}: GGUF key ${key(k)} is ${JSON.stringify(v)?.slice(0, 40)}; expected a positive number`);
    return v;
  };
  const eps = get("attention.layer_norm_rms_epsilon") !== undefined ? float("attention.layer_norm_rms_epsilon", 1e-5) : float("attention.layer_norm_epsilon", 1e-5);
  const ctx = opt("context_length");
  if (ctx === null) notes.push("context_length absent: assumed 2048");
  const tied = tensorNames ? !tensorNames.includes("output.weight") : false;
  if (!tensorNames) notes.push("tensor list not given: assumed untied output weights");
  const name = typeof meta["general.name"] === "string" ? (meta["general.name"] as string) : sourceName;
  const ropeDims = opt("rope.dimension_count");
  return {
    name,
    family: arch,
    numLayers,
    hiddenSize,
    vocabSize,
    numHeads,
    numKvHeads: mla ? numHeads : Math.max(...kvPerLayer),
    headDim,
    layers,
    mla,
    mlp: {
      kind,
      intermediateSize,
      numExperts,
      expertsPerToken: numExperts > 1 ? req("expert_used_count") : 1,
      sharedExperts: opt("expert_shared_count", 0) ?? 0,
      moeIntermediateSize: numExperts > 1 ? opt("expert_feed_forward_length") : null,
      firstDenseLayers: numExperts > 1 ? opt("leading_dense_block_count", 0) ?? 0 : 0,
    },
    norm: LAYERNORM_ARCH.has(arch) ? "layernorm" : "rmsnorm",
    normEps: Number(eps),
    positions: arch === "gpt2" || arch === "starcoder" ? "learned" : arch === "bloom" || arch === "mpt" ? "alibi" : "rope",
    ropeTheta: float("rope.freq_base", 10000),
    ropeScaling: typeof meta[key("rope.scaling.type")] === "string" && meta[key("rope.scaling.type")] !== "none" ? parseRopeScaling({ rope_type: meta[key("rope.scaling.type")], factor: meta[key("rope.scaling.factor")] }) : null,
    maxPositions: ctx ?? 2048,
    tieWordEmbeddings: tied,
    qkvBias: tensorNames ? tensorNames.some((n) => /^blk\.0\.attn_(q|qkv)\.bias$/.test(n)) : arch === "qwen2",
    attnOutBias: tensorNames ? tensorNames.includes("blk.0.attn_output.bias") : false,
    mlpBias: tensorNames ? tensorNames.includes("blk.0.ffn_down.bias") : false,
    // Falcon: attn_norm_2 (ln_attn) exists with the new decoder's two norms; without the tensor list, MQA means Falcon-7B's one.
    normsPerLayer: arch === "gemma2" || arch === "gemma3" ? 4 : arch === "falcon" ? ((tensorNames ? tensorNames.includes("blk.0.attn_norm_2.weight") : kvPerLayer[0] !== 1) ? 2 : 1) : 2,
    // llama.cpp's falcon always runs attention and MLP in parallel; its GGUF carries no activation name: HF Falcon's is
    // the exact "gelu" (llama.cpp computes the tanh form; the parity test's tolerance covers the difference).
    ...(arch === "falcon" ? { parallelResidual: true, activation: "gelu" } : {}),
    ...(phi3Window !== null ? { unappliedWindow: phi3Window } : {}),
    qkNorm: tensorNames ? tensorNames.includes("blk.0.attn_q_norm.weight") : arch === "qwen3",
    partialRotaryFactor: ropeDims !== null && !mla ? ropeDims / headDim : 1,
    ...gemmaAttention(arch, numLayers, hiddenSize, numHeads, headDim, (k, d) => (get(k) === undefined ? d : float(k, d))),
    source: sourceName,
    notes,
  };
}

/**
 * What llama.cpp's Gemma-2/3 loaders fix rather than read (llama-model.cpp): the query scale is 1/sqrt(head_dim),
 * except for the 27B shapes (46 layers for Gemma-2, 62 for Gemma-3), which use 1/sqrt(hidden / heads); Gemma-2 always
 * soft-caps, with 50 / 30 when the keys are absent; Gemma-3's sliding layers rotate with base 10000 and no scaling.
 * Other architectures keep the keys' values (or null).
 */
function gemmaAttention(arch: string, L: number, E: number, H: number, D: number, float: (k: string, fallback: number) => number): Partial<ModelSpec> {
  const opt = (k: string) => {
    const v = float(k, NaN);
    return Number.isNaN(v) ? null : v;
  };
  if (arch !== "gemma2" && arch !== "gemma3") return { attnLogitSoftcapping: opt("attn_logit_softcapping"), finalLogitSoftcapping: opt("final_logit_softcapping") };
  const big = (arch === "gemma2" && L === 46) || (arch === "gemma3" && L === 62);
  const queryPreAttnScalar = big ? E / H : D;
  if (arch === "gemma3") return { queryPreAttnScalar, attnLogitSoftcapping: null, finalLogitSoftcapping: null, ropeLocalTheta: 10000 };
  return { queryPreAttnScalar, attnLogitSoftcapping: float("attn_logit_softcapping", 50), finalLogitSoftcapping: float("final_logit_softcapping", 30) };
}
