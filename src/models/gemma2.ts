// Gemma 2 and Gemma 3 (text): Gemma's layout (embeddings × sqrt(hidden), RMSNorm × (1 + w), GeGLU) with
// four norms per layer ("sandwich" norms) and attention details the spec carries:
//   x = x + post_attention_layernorm(attn(input_layernorm(x)))
//   x = x + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(x)))
// (HF's post_attention_layernorm is the norm on the attention OUTPUT here, not the MLP's input norm as in LLaMA.)
// Scores are scaled by query_pre_attn_scalar^-1/2; layers alternate sliding / global (spec.layers[i].window).
//   gemma2: attention-logit and final-logit soft-capping (spec.attnLogitSoftcapping / finalLogitSoftcapping);
//   gemma3_text: q_norm / k_norm over head_dim (× (1 + w)) before RoPE, and sliding layers rotate with
//   rope_local_base_freq without scaling (spec.ropeLocalTheta) while global layers use rope_theta and rope_scaling.
import type { ModelSpec } from "../config/types.js";
import type { DecoderOptions } from "./decoder.js";
import { gemmaOptions } from "./gemma.js";
import type { WeightRow } from "./weights.js";

export function gemma2Table(spec: ModelSpec): WeightRow[] {
  const { hiddenSize: E, numHeads: H, numKvHeads: K, headDim: D, vocabSize: V, numLayers: L } = spec;
  const F = spec.mlp.intermediateSize;
  const rows: WeightRow[] = [{ key: "embed", source: "model.embed_tokens.weight", shape: [V, E], store: "matmul" }];
  const vec = (key: string, source: string, n: number): WeightRow => ({ key, source, shape: [n], store: "f32" });
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    const k = `layers.${l}.`;
    rows.push(
      vec(k + "attn_norm.w", p + "input_layernorm.weight", E),
      { key: k + "q", source: p + "self_attn.q_proj.weight", shape: [H * D, E], store: "matmul" },
      { key: k + "k", source: p + "self_attn.k_proj.weight", shape: [K * D, E], store: "matmul" },
      { key: k + "v", source: p + "self_attn.v_proj.weight", shape: [K * D, E], store: "matmul" },
      { key: k + "o", source: p + "self_attn.o_proj.weight", shape: [E, H * D], store: "matmul" },
      vec(k + "post_attn_norm.w", p + "post_attention_layernorm.weight", E),
      vec(k + "mlp_norm.w", p + "pre_feedforward_layernorm.weight", E),
      { key: k + "gate", source: p + "mlp.gate_proj.weight", shape: [F, E], store: "matmul" },
      { key: k + "up", source: p + "mlp.up_proj.weight", shape: [F, E], store: "matmul" },
      { key: k + "down", source: p + "mlp.down_proj.weight", shape: [E, F], store: "matmul" },
      vec(k + "post_mlp_norm.w", p + "post_feedforward_layernorm.weight", E),
    );
    if (spec.qkNorm) rows.push(vec(k + "q_norm.w", p + "self_attn.q_norm.weight", D), vec(k + "k_norm.w", p + "self_attn.k_norm.weight", D));
  }
  rows.push(vec("final_norm.w", "model.norm.weight", E));
  if (!spec.tieWordEmbeddings) rows.push({ key: "lm_head", source: "lm_head.weight", shape: [V, E], store: "matmul" });
  return rows;
}

export function gemma2Options(spec: ModelSpec): DecoderOptions {
  return { ...gemmaOptions(spec), postNorms: true, qkNorm: spec.qkNorm === true };
}
