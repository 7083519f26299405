// Falcon (transformers' modeling_falcon): LayerNorm (weight + bias), RoPE (rotate_half), a plain MLP
// (dense_h_to_4h → exact erf GELU → dense_4h_to_h) and parallel attention / MLP:
//   x = x + attn(ln_attn(x)) + mlp(ln_mlp(x))      (Falcon-7B: one input_layernorm feeds both)
// The fused query_key_value [(H + 2K)·D, E] holds K groups of (G query heads, 1 key, 1 value) rows, D each — one
// layout for all three of FalconAttention._split_heads's cases: new_decoder_architecture (K = num_kv_heads),
// multi_query (K = 1: H query heads, then k, then v) and MHA (K = H: q_h, k_h, v_h per head). It is split here
// by row ranges. ALiBi, biases and parallel_attn false are refused by checkSupported (models/index.ts).
import type { ModelSpec } from "../config/types.js";
import type { DecoderOptions } from "./decoder.js";
import type { WeightRow } from "./weights.js";

/** Row ranges of q, k and v inside Falcon's grouped query_key_value (see the file header). */
export function falconQkvRows(H: number, K: number, D: number): { q: [number, number][]; k: [number, number][]; v: [number, number][] } {
  const G = H / K;
  const group = (G + 2) * D;
  const q: [number, number][] = [], k: [number, number][] = [], v: [number, number][] = [];
  for (let g = 0; g < K; g++) {
    const o = g * group;
    q.push([o, o + G * D]);
    k.push([o + G * D, o + (G + 1) * D]);
    v.push([o + (G + 1) * D, o + group]);
  }
  return { q, k, v };
}

export function falconTable(spec: ModelSpec): WeightRow[] {
  const { hiddenSize: E, numHeads: H, numKvHeads: K, headDim: D, vocabSize: V, numLayers: L } = spec;
  const F = spec.mlp.intermediateSize;
  const twoNorms = (spec.normsPerLayer ?? 1) === 2;
  const { q, k, v } = falconQkvRows(H, K, D);
  const rows: WeightRow[] = [{ key: "embed", source: "transformer.word_embeddings.weight", shape: [V, E], store: "matmul" }];
  const ln = (key: string, source: string): WeightRow[] => [
    { key: key + ".w", source: source + ".weight", shape: [E], store: "f32" },
    { key: key + ".b", source: source + ".bias", shape: [E], store: "f32" },
  ];
  for (let l = 0; l < L; l++) {
    const p = `transformer.h.${l}.`;
    const n = `layers.${l}.`;
    const qkv = (key: string, ranges: [number, number][]): WeightRow => ({ key: n + key, source: p + "self_attention.query_key_value.weight", shape: [(H + 2 * K) * D, E], store: "matmul", rows: ranges });
    rows.push(
      ...(twoNorms ? [...ln(n + "attn_norm", p + "ln_attn"), ...ln(n + "mlp_norm", p + "ln_mlp")] : ln(n + "attn_norm", p + "input_layernorm")),
      qkv("q", q),
      qkv("k", k),
      qkv("v", v),
      { key: n + "o", source: p + "self_attention.dense.weight", shape: [E, H * D], store: "matmul" },
      { key: n + "fc", source: p + "mlp.dense_h_to_4h.weight", shape: [F, E], store: "matmul" },
      { key: n + "proj", source: p + "mlp.dense_4h_to_h.weight", shape: [E, F], store: "matmul" },
    );
  }
  rows.push(...ln("final_norm", "transformer.ln_f"));
  if (!spec.tieWordEmbeddings) rows.push({ key: "lm_head", source: "lm_head.weight", shape: [V, E], store: "matmul" });
  return rows;
}

export function falconOptions(spec: ModelSpec): DecoderOptions {
  // One norm (Falcon-7B): the attention's normed input feeds the MLP too; two (new decoder): ln_mlp's own.
  const parallel = (spec.normsPerLayer ?? 1) === 2 ? "twoNorms" : "oneNorm";
  return { norm: "layernorm", normPlusOne: false, embedScale: 1, learnedPositions: false, mlp: "gelu", geluExact: (spec.activation ?? "gelu") === "gelu", parallel };
}
