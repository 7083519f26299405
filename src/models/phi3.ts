// Phi-3: the LLaMA block with two fused projections, split at load by row ranges:
//   self_attn.qkv_proj [H·D + 2·K·D, E]: rows q (H·D) | k (K·D) | v (K·D)   (Phi3Attention's query_pos slicing)
//   mlp.gate_up_proj   [2F, E]:          rows gate (F) | up (F)             (Phi3MLP's chunk(2))
// No biases. rope_scaling longrope/su is refused by checkSupported (see models/index.ts), and the
// config's sliding_window is handled by the spec (spec.unappliedWindow).
import type { ModelSpec } from "../config/types.js";
import type { DecoderOptions } from "./decoder.js";
import { llamaOptions } from "./llama.js";
import type { WeightRow } from "./weights.js";

export function phi3Table(spec: ModelSpec): WeightRow[] {
  const { hiddenSize: E, numHeads: H, numKvHeads: K, headDim: D, vocabSize: V, numLayers: L } = spec;
  const F = spec.mlp.intermediateSize;
  const Q = H * D, KD = K * D;
  const rows: WeightRow[] = [{ key: "embed", source: "model.embed_tokens.weight", shape: [V, E], store: "matmul" }];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    const k = `layers.${l}.`;
    const qkv = (key: string, range: [number, number]): WeightRow => ({ key: k + key, source: p + "self_attn.qkv_proj.weight", shape: [Q + 2 * KD, E], store: "matmul", rows: [range] });
    const gateUp = (key: string, range: [number, number]): WeightRow => ({ key: k + key, source: p + "mlp.gate_up_proj.weight", shape: [2 * F, E], store: "matmul", rows: [range] });
    rows.push(
      { key: k + "attn_norm.w", source: p + "input_layernorm.weight", shape: [E], store: "f32" },
      qkv("q", [0, Q]),
      qkv("k", [Q, Q + KD]),
      qkv("v", [Q + KD, Q + 2 * KD]),
      { key: k + "o", source: p + "self_attn.o_proj.weight", shape: [E, Q], store: "matmul" },
      { key: k + "mlp_norm.w", source: p + "post_attention_layernorm.weight", shape: [E], store: "f32" },
      gateUp("gate", [0, F]),
      gateUp("up", [F, 2 * F]),
      { key: k + "down", source: p + "mlp.down_proj.weight", shape: [E, F], store: "matmul" },
    );
  }
  rows.push({ key: "final_norm.w", source: "model.norm.weight", shape: [E], store: "f32" });
  if (!spec.tieWordEmbeddings) rows.push({ key: "lm_head", source: "lm_head.weight", shape: [V, E], store: "matmul" });
  return rows;
}

export function phi3Options(spec: ModelSpec): DecoderOptions {
  return llamaOptions(spec);
}
