// LLaMA family: llama, mistral (sliding window: the spec's per-layer window), qwen2 (q/k/v biases).
// RMSNorm, RoPE (rotate_half layout, llama3 rope_scaling), SwiGLU, any numKvHeads.
import type { ModelSpec } from "../config/types.js";
import type { DecoderOptions } from "./decoder.js";
import type { WeightRow } from "./weights.js";

/** The checkpoint table of a LLaMA-style model: HF name → expected shape → storage. */
export function llamaTable(spec: ModelSpec): WeightRow[] {
  const { hiddenSize: E, numHeads: H, numKvHeads: K, headDim: D, vocabSize: V, numLayers: L } = spec;
  const F = spec.mlp.intermediateSize;
  const rows: WeightRow[] = [{ key: "embed", source: "model.embed_tokens.weight", shape: [V, E], store: "matmul" }];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    const k = `layers.${l}.`;
    rows.push(
      { key: k + "attn_norm.w", source: p + "input_layernorm.weight", shape: [E], store: "f32" },
      { key: k + "q", source: p + "self_attn.q_proj.weight", shape: [H * D, E], store: "matmul" },
      { key: k + "k", source: p + "self_attn.k_proj.weight", shape: [K * D, E], store: "matmul" },
      { key: k + "v", source: p + "self_attn.v_proj.weight", shape: [K * D, E], store: "matmul" },
      { key: k + "o", source: p + "self_attn.o_proj.weight", shape: [E, H * D], store: "matmul" },
      { key: k + "mlp_norm.w", source: p + "post_attention_layernorm.weight", shape: [E], store: "f32" },
      { key: k + "gate", source: p + "mlp.gate_proj.weight", shape: [F, E], store: "matmul" },
      { key: k + "up", source: p + "mlp.up_proj.weight", shape: [F, E], store: "matmul" },
      { key: k + "down", source: p + "mlp.down_proj.weight", shape: [E, F], store: "matmul" },
    );
    if (spec.qkvBias) {
      rows.push(
        { key: k + "q.b", source: p + "self_attn.q_proj.bias", shape: [H * D], store: "f32" },
        { key: k + "k.b", source: p + "self_attn.k_proj.bias", shape: [K * D], store: "f32" },
        { key: k + "v.b", source: p + "self_attn.v_proj.bias", shape: [K * D], store: "f32" },
      );
    }
    if (spec.attnOutBias) rows.push({ key: k + "o.b", source: p + "self_attn.o_proj.bias", shape: [E], store: "f32" });
  }
  rows.push({ key: "final_norm.w", source: "model.norm.weight", shape: [E], store: "f32" });
  if (!spec.tieWordEmbeddings) rows.push({ key: "lm_head", source: "lm_head.weight", shape: [V, E], store: "matmul" });
  return rows;
}

export function llamaOptions(spec: ModelSpec): DecoderOptions {
  return { norm: "rmsnorm", normPlusOne: false, embedScale: 1, learnedPositions: false, mlp: spec.mlp.kind === "geglu" ? "geglu" : "swiglu" };
}
