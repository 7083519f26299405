// HF folder → GGUF (llama, mistral as llama, qwen2, qwen3 (attn_q_norm / attn_k_norm), phi3 (fused attn_qkv and
// ffn_up = gate | up, written as they are), gemma, gemma2 / gemma3 (sandwich norms, soft-caps, window; see
// gemma2Metadata), falcon (fused query_key_value regrouped to q | k | v), gpt2, and starcoder = gpt_bigcode MQA; gemma norms stored
// as 1 + w; GPT-2's Conv1D weights transposed to [out, in]), the way llama.cpp's convert_hf_to_gguf.py writes
// it: metadata keys llama.cpp requires, Q/K rows permuted to GGML's RoPE layout (llama only: qwen2
// uses llama.cpp's NEOX RoPE, which is HF's rotate_half layout), q/k/v biases (qwen2), norms in f32,
// matrices in the requested dtype, llama3 rope_scaling as the rope_freqs tensor, and the
// tokenizer.json vocabulary as a "gpt2" (byte-level BPE) tokenizer.
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { UserError } from "../errors.js";
import { bf16ToF32, f16DecodeTable, f32ToBf16, f32ToF16 } from "../dtypes/codecs.js";
import { encodeQ8_0, Q8_0_BLOCK } from "../dtypes/q8_0.js";
import { encodeQuant, isGgmlQuant, QUANT_LAYOUT, type GgmlQuant } from "../dtypes/ggml_quants.js";
import { rowBytes } from "../dtypes/table.js";
import { transposeInto } from "../formats/source.js";
import { ropeInvFreq } from "../models/blocks.js";
import { checkModel, checkSupported } from "../models/index.js";
import { loadHfConfigSpec } from "../formats/model-file.js";
import type { ModelSpec } from "../config/types.js";
import { ggufNameOf, permuteQK, regroupFalconQkv, writeGguf, type GgufTensorOut, type GgufValue } from "../formats/gguf.js";
import { noConfig } from "../formats/model-file.js";
import { safetensorsSource } from "../formats/source.js";
import { chatTemplateOf, readJsonFile, specialTokenIds } from "../formats/tokenizer.js";

export interface ExportResult {
  tensors: number;
  bytes: number; // data bytes written
  spec: ModelSpec;
}

// llama.cpp's llama_ftype: ALL_F32, MOSTLY_F16, MOSTLY_Q8_0, MOSTLY_BF16, MOSTLY_Q4_0, Q4_1, Q5_0, Q5_1,
// and for the k-quants the _S variants (every matrix one type, as here; _M mixes in Q6_K rows).
const FILE_TYPE = { f32: 0, f16: 1, q8_0: 7, bf16: 32, q4_0: 2, q4_1: 3, q5_0: 8, q5_1: 9, q4_k: 14, q5_k: 16, q6_k: 18 } as const;

/** The matrix dtypes exportGguf writes. */
export const GGUF_EXPORT_DTYPES = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k"] as const;
export type ExportDtype = (typeof GGUF_EXPORT_DTYPES)[number];

/**
 * The type a matrix with rows of `width` values is stored in when `dtype` was asked for, as
 * llama.cpp's llama-quantize decides (llama-quant.cpp, incompatible tensors): a k-quant row that is
 * not whole 256-value super-blocks falls back to Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0; any block type
 * whose rows are not whole 32-value blocks falls back to F16.
 * @example matrixType("q4_k", 64) // "q5_0"
 */
export function matrixType(dtype: ExportDtype, width: number): ExportDtype {
  if (dtype === "f32" || dtype === "f16" || dtype === "bf16") return dtype;
  let t: ExportDtype = dtype;
  if (isGgmlQuant(t) && width % QUANT_LAYOUT[t].blockValues !== 0) t = ({ q4_k: "q5_0", q5_k: "q5_1", q6_k: "q8_0" } as Record<string, ExportDtype>)[t] ?? t;
  return width % Q8_0_BLOCK === 0 ? t : "f16";
}

/** Converts `hfDir` (model_type llama or qwen2) to a GGUF file readable by llama.cpp. */
export function exportGguf(hfDir: string, out: string, dtype: ExportDtype, opts: { tokenizer?: [string, GgufValue][] } = {}): ExportResult {
  if (!existsSync(hfDir)) throw new UserError(`${hfDir}: no such file or folder`);
  if (!statSync(hfDir).isDirectory()) throw new UserError(`${hfDir}: expected an HF model folder (config.json + safetensors + tokenizer.json)`);
  const configPath = join(hfDir, "config.json");
  if (!existsSync(configPath)) throw noConfig(hfDir);
  const spec = loadHfConfigSpec(configPath);
  checkSupported(spec, configPath);
  if (!["llama", "mistral", "qwen2", "qwen3", "phi3", "gemma", "gemma2", "gemma3_text", "falcon", "gpt2", "gpt_bigcode"].includes(spec.family)) {
    throw new UserError(`${configPath}: export-gguf writes the llama, mistral (as llama), qwen2, qwen3, phi3, gemma, gemma2, gemma3_text (gemma3), falcon, gpt2 and gpt_bigcode (starcoder) architectures; model_type "${spec.family}" is not supported`);
  }
  if (spec.family === "falcon" && spec.ropeScaling) throw new UserError(`${configPath}: field rope_scaling is set; llama.cpp's falcon has no RoPE scaling, expected null`);
  const gemmaMeta = spec.family === "gemma2" || spec.family === "gemma3_text" ? gemma2Metadata(spec, configPath) : null;
  if (spec.family === "phi3" && spec.numHeads * spec.headDim !== spec.hiddenSize) {
    // llama.cpp's phi3 loader sizes attn_qkv as [E + 2·K·D] and attn_output as [E, E].
    throw new UserError(`${configPath}: phi3 with num_attention_heads ${spec.numHeads} x head_dim ${spec.headDim} != hidden_size ${spec.hiddenSize} cannot be written: llama.cpp's phi3 layout assumes heads x head_dim = hidden`);
  }
  if (spec.family === "gpt_bigcode" && spec.numKvHeads !== 1) {
    throw new UserError(`${configPath}: gpt_bigcode without multi_query stores c_attn per head ([q_h | k_h | v_h]), which llama.cpp's starcoder layout does not; expected multi_query true`);
  }
  // llama.cpp converts Mistral as llama; its sliding window goes into llama.attention.sliding_window
  // (below), which our reader applies and llama.cpp's llama architecture ignores.
  const arch = spec.family === "gpt_bigcode" ? "starcoder" : spec.family === "mistral" ? "llama" : spec.family === "gemma3_text" ? "gemma3" : spec.family;
  const src = safetensorsSource(hfDir);
  // The checkpoint must match its config (as loading demands) before anything is written: a GGUF
  // with a missing or misshapen tensor would only fail later, in llama.cpp or in `mqa generate`.
  const unused = new Set(checkModel(spec, src));
  // Every tensor the model reads must have a GGUF name: one skipped here would be missing from the file.
  const unnamed = src.names().find((n) => !unused.has(n) && ggufNameOf(n, spec.family) === null);
  if (unnamed !== undefined) throw new UserError(`${hfDir}: tensor "${unnamed}" has no GGUF name in the ${spec.family} layout; export-gguf cannot write this model`);
  const inputs = new Set([configPath, join(hfDir, "tokenizer.json"), join(hfDir, "tokenizer_config.json"), ...(src.files?.() ?? [])].map((f) => resolve(f)));
  if (inputs.has(resolve(out))) throw new UserError(`${out}: is one of the input files being converted; expected a new output path`);
  const { numHeads: H, numKvHeads: K, headDim: D, hiddenSize: E } = spec;
  const tensors: GgufTensorOut[] = [];
  let bytes = 0;
  for (const name of src.names()) {
    const gname = ggufNameOf(name, spec.family);
    if (!gname) continue; // e.g. rotary_emb.inv_freq buffers
    const info = src.info(name)!;
    if (!["F32", "F16", "BF16"].includes(info.dtype)) throw new UserError(`${hfDir}: tensor "${name}" has dtype ${info.dtype}; expected F32, F16 or BF16`);
    const matrix = info.shape.length === 2;
    // GPT-2's Conv1D weights are stored [in, out]; GGUF (like llama.cpp's converter) wants [out, in].
    const conv1d = arch === "gpt2" && matrix && /\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/.test(name);
    const shape = conv1d ? [info.shape[1], info.shape[0]] : info.shape;
    // Matrices take the requested dtype, or llama-quantize's fallback when their rows are not whole
    // blocks (matrixType); vectors (norms, biases) stay f32, as llama.cpp keeps them.
    const type = !matrix ? "f32" : matrixType(dtype, shape[1]);
    const numel = info.shape.reduce((a, b) => a * b, 1);
    const tensorBytes = rowBytes(type, numel);
    const qk = /self_attn\.(q|k)_proj\.(weight|bias)$/.exec(name); // llama.cpp's converter permutes the biases too
    tensors.push({
      name: gname, shape, type, bytes: tensorBytes,
      write: (emit) => {
        let f = readF32(src.read.bind(src), name, info.dtype, numel);
        if (conv1d) f = transposeInto(f, new Float32Array(numel), info.shape[0], info.shape[1]);
        if (qk && arch === "llama") f = permuteQK(f, qk[1] === "q" ? H : K, info.shape[1] ?? 1);
        if (arch === "falcon" && name.endsWith("query_key_value.weight")) {
          // HF's per-KV-group rows → llama.cpp's q | k | v (see regroupFalconQkv).
          const g = new Float32Array(numel);
          regroupFalconQkv(new Uint8Array(f.buffer), new Uint8Array(g.buffer), 4 * info.shape[1], H, K, D, true);
          f = g;
        }
        // llama.cpp's Gemma multiplies by the stored norm weight: store HF's (1 + w).
        if ((arch === "gemma" || gemmaMeta) && /norm\.weight$/.test(name)) f = f.map((x) => x + 1);
        // llama.cpp scales Gemma-2/3 queries by its own fixed factor (see gemma2Metadata): fold the ratio to
        // query_pre_attn_scalar^-1/2 into the q projection (Gemma-2) or the q norm that follows it (Gemma-3).
        if (gemmaMeta && gemmaMeta.qFold !== 1 && (spec.qkNorm ? /self_attn\.q_norm\.weight$/ : /self_attn\.q_proj\.weight$/).test(name)) f = f.map((x) => x * gemmaMeta.qFold);
        if (type === "f32") emit(new Uint8Array(f.buffer));
        else if (type === "q8_0") emit(encodeQ8_0(f));
        else if (isGgmlQuant(type)) emit(encodeQuant(type as GgmlQuant, f));
        else {
          const h = new Uint16Array(numel);
          const encode = type === "bf16" ? f32ToBf16 : f32ToF16;
          for (let i = 0; i < numel; i++) h[i] = encode(f[i]);
          emit(new Uint8Array(h.buffer));
        }
      },
    });
    bytes += tensorBytes;
  }
  if (spec.ropeScaling && !gemmaMeta) {
    // llama.cpp divides each RoPE frequency by rope_freqs[i]: store base / scaled.
    const base = ropeInvFreq(D, spec.ropeTheta, null);
    const scaled = ropeInvFreq(D, spec.ropeTheta, spec.ropeScaling);
    const f = Float32Array.from(base, (b, i) => b / scaled[i]);
    tensors.push({ name: "rope_freqs.weight", shape: [D / 2], type: "f32", bytes: f.byteLength, write: (emit) => emit(new Uint8Array(f.buffer)) });
  }
  const meta: [string, GgufValue][] = [
    ["general.architecture", { type: "string", value: arch }],
    ["general.name", { type: "string", value: spec.name }],
    ["general.file_type", { type: "u32", value: FILE_TYPE[dtype] }],
    [`${arch}.context_length`, { type: "u32", value: spec.maxPositions }],
    [`${arch}.embedding_length`, { type: "u32", value: E }],
    [`${arch}.block_count`, { type: "u32", value: spec.numLayers }],
    [`${arch}.feed_forward_length`, { type: "u32", value: spec.mlp.intermediateSize }],
    [`${arch}.attention.head_count`, { type: "u32", value: H }],
    [`${arch}.attention.head_count_kv`, { type: "u32", value: K }],
    [`${arch}.attention.${spec.norm === "layernorm" ? "layer_norm_epsilon" : "layer_norm_rms_epsilon"}`, { type: "f32", value: spec.normEps }],
    ...(spec.positions === "rope"
      ? ([[`${arch}.rope.freq_base`, { type: "f32", value: spec.ropeTheta }], [`${arch}.rope.dimension_count`, { type: "u32", value: D }]] as [string, GgufValue][])
      : []),
    [`${arch}.attention.key_length`, { type: "u32", value: D }],
    ...(spec.family === "mistral" && spec.layers[0].window !== null ? ([[`${arch}.attention.sliding_window`, { type: "u32", value: spec.layers[0].window }]] as [string, GgufValue][]) : []),
    // Phi-3's config window, as llama.cpp's converter writes it (its loader then disables Phi SWA; our reader keeps it unapplied).
    ...(spec.family === "phi3" && spec.unappliedWindow ? ([[`${arch}.attention.sliding_window`, { type: "u32", value: spec.unappliedWindow }]] as [string, GgufValue][]) : []),
    [`${arch}.attention.value_length`, { type: "u32", value: D }],
    [`${arch}.vocab_size`, { type: "u32", value: spec.vocabSize }],
    ...(gemmaMeta?.keys.map(([k, v]) => [`${arch}.${k}`, v] as [string, GgufValue]) ?? []),
    ...(opts.tokenizer ?? tokenizerMetadata(hfDir, spec.vocabSize)), // opts.tokenizer: tests write other vocabularies
  ];
  writeGguf(out, meta, tensors);
  return { tensors: tensors.length, bytes, spec };
}

/**
 * The Gemma-2/3 keys llama.cpp reads, and what it cannot express refused by field (llama-model.cpp): the sliding layers
 * must follow its fixed pattern (Gemma-2: even layers; Gemma-3: all but every 6th), Gemma-2 always soft-caps (both caps
 * required), Gemma-3 never does and rotates its sliding layers with base 10000, and its global layers take linear
 * rope_scaling only (rope.scaling.type / factor; no rope_freqs tensor, which its graph does not read). llama.cpp's query
 * scale is 1/sqrt(head_dim) (1/sqrt(hidden / heads) for the 27B layer counts); qFold = that ÷ query_pre_attn_scalar^-1/2
 * is folded into the weights by the caller.
 */
function gemma2Metadata(spec: ModelSpec, where: string): { keys: [string, GgufValue][]; qFold: number } {
  const g3 = spec.family === "gemma3_text";
  const n = g3 ? 6 : 2;
  const windows = spec.layers.map((l) => l.window);
  const w = windows.find((x) => x !== null) ?? null;
  const bad = windows.findIndex((x, i) => (i % n < n - 1 ? x !== w : x !== null));
  if (w === null || bad >= 0) {
    throw new UserError(`${where}: layer_types / sliding_window put layer ${Math.max(bad, 0)} at window ${windows[Math.max(bad, 0)] ?? "global"}; llama.cpp's ${g3 ? "gemma3" : "gemma2"} slides layer i iff i % ${n} < ${n - 1} with one sliding_window`);
  }
  const keys: [string, GgufValue][] = [["attention.sliding_window", { type: "u32", value: w }]];
  if (g3) {
    if (spec.attnLogitSoftcapping || spec.finalLogitSoftcapping) throw new UserError(`${where}: field ${spec.attnLogitSoftcapping ? "attn_logit_softcapping" : "final_logit_softcapping"} is set; llama.cpp's gemma3 does not soft-cap, expected null`);
    if ((spec.ropeLocalTheta ?? 10000) !== 10000) throw new UserError(`${where}: field rope_local_base_freq is ${spec.ropeLocalTheta}; llama.cpp's gemma3 fixes it at 10000`);
    const s = spec.ropeScaling;
    if (s && s.type !== "linear") throw new UserError(`${where}: field rope_scaling is ${s.type}; llama.cpp's gemma3 takes linear scaling only`);
    if (s) keys.push(["rope.scaling.type", { type: "string", value: "linear" }], ["rope.scaling.factor", { type: "f32", value: s.factor }]);
  } else {
    if (!spec.attnLogitSoftcapping || !spec.finalLogitSoftcapping) throw new UserError(`${where}: field ${spec.attnLogitSoftcapping ? "final_logit_softcapping" : "attn_logit_softcapping"} is null; llama.cpp's gemma2 always soft-caps, expected a number`);
    if (spec.ropeScaling) throw new UserError(`${where}: field rope_scaling is set; llama.cpp's gemma2 has no RoPE scaling, expected null`);
    keys.push(["attn_logit_softcapping", { type: "f32", value: spec.attnLogitSoftcapping }], ["final_logit_softcapping", { type: "f32", value: spec.finalLogitSoftcapping }]);
  }
  const big = spec.numLayers === (g3 ? 62 : 46);
  const llamaCppScalar = big ? spec.hiddenSize / spec.numHeads : spec.headDim;
  const qFold = Math.sqrt(llamaCppScalar / (spec.queryPreAttnScalar ?? spec.headDim));
  return { keys, qFold };
}

function readF32(read: (name: string, dst: Uint8Array) => void, name: string, dtype: string, numel: number): Float32Array {
  if (dtype === "F32") {
    const f = new Float32Array(numel);
    read(name, new Uint8Array(f.buffer));
    return f;
  }
  const h = new Uint16Array(numel);
  read(name, new Uint8Array(h.buffer));
  const f = new Float32Array(numel);
  if (dtype === "F16") {
    const t = f16DecodeTable();
    for (let i = 0; i < numel; i++) f[i] = t[h[i]];
  } else for (let i = 0; i < numel; i++) f[i] = bf16ToF32(h[i]);
  return f;
}

/**
 * tokenizer.json → tokenizer.ggml.* keys; the vocabulary is padded to vocabSize. Byte-level BPE (GPT-2,
 * Llama-3, Qwen2, StarCoder) is written as "gpt2" with its merges; SentencePiece-style BPE (Llama-2,
 * Mistral, Gemma: "▁" pieces, <0xNN> byte fallback) as "llama" with scores, as llama.cpp's converter
 * does: a piece made by merge r scores -(r + 1), so merging the best-scoring piece first follows the
 * merge ranks.
 */
export function tokenizerMetadata(hfDir: string, vocabSize: number): [string, GgufValue][] {
  const path = join(hfDir, "tokenizer.json");
  if (!existsSync(path)) throw new UserError(`${hfDir}: no tokenizer.json (GGUF files carry the vocabulary; llama.cpp needs it)`);
  const tj = readJsonFile(path) as {
    model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[]; byte_fallback?: boolean; unk_token?: string | null };
    added_tokens?: { id: number; content: string; special?: boolean }[];
    normalizer?: unknown; pre_tokenizer?: unknown; decoder?: unknown; post_processor?: unknown;
  };
  if (tj.model?.type !== "BPE" || !tj.model.vocab) throw new UserError(`${path}: export-gguf supports byte-level BPE tokenizers (model.type "BPE"); got ${tj.model?.type === undefined ? "no model.type" : JSON.stringify(tj.model.type)}`);
  const tokens: string[] = new Array(vocabSize).fill("");
  const types: number[] = new Array(vocabSize).fill(1); // 1 normal, 3 control, 5 unused
  for (const [tok, id] of Object.entries(tj.model.vocab)) if (id < vocabSize) tokens[id] = tok;
  for (const t of tj.added_tokens ?? []) {
    if (t.id < vocabSize) {
      tokens[t.id] = t.content;
      types[t.id] = t.special ? 3 : 4;
    }
  }
  tokens.forEach((t, i) => {
    if (t === "") {
      tokens[i] = `[PAD${i}]`;
      types[i] = 5;
    }
  });
  const merges = (tj.model.merges ?? []).map((m) => (typeof m === "string" ? m : m.join(" ")));
  const cfgPath = join(hfDir, "tokenizer_config.json");
  const tc = readJsonFile(cfgPath);
  const text = (v: unknown) => JSON.stringify(v ?? null);
  const byteLevel = text(tj.pre_tokenizer).includes('"ByteLevel"') || text(tj.decoder).includes('"ByteLevel"');
  const sentencePiece = !byteLevel && (tj.model.byte_fallback === true || /Metaspace|\u2581|▁/.test(text(tj.normalizer) + text(tj.pre_tokenizer) + text(tj.decoder)));
  if (!byteLevel && !sentencePiece) throw new UserError(`${path}: export-gguf writes byte-level BPE (a ByteLevel pre-tokenizer) or SentencePiece-style BPE ("▁" pieces, byte fallback); this BPE tokenizer is neither`);
  const meta: [string, GgufValue][] = sentencePiece
    ? sentencePieceMetadata(tj, tokens, types, merges)
    : [
        ["tokenizer.ggml.model", { type: "string", value: "gpt2" }],
        ["tokenizer.ggml.pre", { type: "string", value: "default" }],
        ["tokenizer.ggml.tokens", { type: "string[]", value: tokens }],
        ["tokenizer.ggml.token_type", { type: "i32[]", value: types }],
        ["tokenizer.ggml.merges", { type: "string[]", value: merges }],
        ["tokenizer.ggml.add_bos_token", { type: "bool", value: addsBos(tj) }], // Llama-3's post-processor adds <|begin_of_text|>
      ];
  // GGUF has one eos id: the first of a list (Llama-3.1-Instruct: [128001, 128008, 128009]); the others
  // go into eot/eom, which llama.cpp (and our reader) also treat as end of generation.
  const ids = specialTokenIds(hfDir, vocabSize);
  if (ids.bos.length > 0) meta.push(["tokenizer.ggml.bos_token_id", { type: "u32", value: ids.bos[0] }]);
  (["eos", "eot", "eom"] as const).forEach((kind, i) => {
    if (ids.eos[i] !== undefined) meta.push([`tokenizer.ggml.${kind}_token_id`, { type: "u32", value: ids.eos[i] }]);
  });
  const template = tc ? chatTemplateOf(tc) : null;
  if (template !== null) meta.push(["tokenizer.chat_template", { type: "string", value: template }]);
  return meta;
}

/**
 * Whether encoding adds a BOS: a post-processor that writes a special token first (what loadTokenizer's
 * tokenizer.json does; tokenizer_config's add_bos_token is not read there either, so the GGUF matches the folder).
 */
function addsBos(tj: { post_processor?: unknown }): boolean {
  const single = JSON.stringify(tj.post_processor ?? null).match(/"single":\[\{"SpecialToken"/);
  return single !== null;
}

/** The "llama" (SentencePiece) tokenizer keys for an SPM-style BPE tokenizer.json (see tokenizerMetadata). */
function sentencePieceMetadata(
  tj: { model?: { unk_token?: string | null; vocab?: Record<string, number> }; normalizer?: unknown; pre_tokenizer?: unknown; post_processor?: unknown },
  tokens: string[], types: number[], merges: string[],
): [string, GgufValue][] {
  const rank = new Map<string, number>();
  merges.forEach((m, r) => {
    const piece = m.split(" ").join("");
    if (!rank.has(piece)) rank.set(piece, r);
  });
  // Pieces no merge makes (single characters, bytes, specials) score 0, except multi-character ones, which
  // come after every merge (HF's BPE never produces them; llama.cpp would only as a last resort).
  const scores = tokens.map((t, id) => (rank.has(t) ? -(rank.get(t)! + 1) : [...t].length > 1 && types[id] === 1 ? -(merges.length + 1) : 0));
  const unk = tj.model?.unk_token ? tj.model.vocab?.[tj.model.unk_token] : undefined;
  const spmTypes = types.map((ty, id) => (id === unk ? 2 : ty === 1 && /^<0x[0-9A-Fa-f]{2}>$/.test(tokens[id]) ? 6 : ty)); // 2 unknown, 6 byte
  // A leading "▁" is added by a Prepend normalizer (Llama-2) or a Metaspace pre-tokenizer that prepends; Gemma has neither.
  const norm = JSON.stringify(tj.normalizer ?? null), pre = JSON.stringify(tj.pre_tokenizer ?? null);
  const addSpacePrefix = norm.includes('"Prepend"') || (pre.includes('"Metaspace"') && !/"prepend_scheme":"never"|"add_prefix_space":false/.test(pre));
  const addBos = addsBos(tj);
  return [
    ["tokenizer.ggml.model", { type: "string", value: "llama" }],
    ["tokenizer.ggml.tokens", { type: "string[]", value: tokens }],
    ["tokenizer.ggml.scores", { type: "f32[]", value: scores }],
    ["tokenizer.ggml.token_type", { type: "i32[]", value: spmTypes }],
    ...(unk !== undefined ? ([["tokenizer.ggml.unknown_token_id", { type: "u32", value: unk }]] as [string, GgufValue][]) : []),
    ["tokenizer.ggml.add_bos_token", { type: "bool", value: addBos }],
    ["tokenizer.ggml.add_space_prefix", { type: "bool", value: addSpacePrefix }],
  ];
}
