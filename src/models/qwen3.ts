// Qwen3: the LLaMA layout plus q_norm / k_norm, an RMSNorm over head_dim applied to every query and
// key head (one [D] weight shared by the heads of a layer) after the projections and before RoPE.
// head_dim is explicit (Qwen3-8B: 128 with hidden 4096 / 32 heads; it need not be hidden / heads), and
// the projections carry biases only when attention_bias is true (the spec's qkvBias / attnOutBias).
import type { ModelSpec } from "../config/types.js";
import type { DecoderOptions } from "./decoder.js";
import { llamaOptions, llamaTable } from "./llama.js";
import type { WeightRow } from "./weights.js";

export function qwen3Table(spec: ModelSpec): WeightRow[] {
  const D = spec.headDim;
  const rows = llamaTable(spec);
  for (let l = 0; l < spec.numLayers; l++) {
    const p = `model.layers.${l}.self_attn.`;
    rows.push(
      { key: `layers.${l}.q_norm.w`, source: p + "q_norm.weight", shape: [D], store: "f32" },
      { key: `layers.${l}.k_norm.w`, source: p + "k_norm.weight", shape: [D], store: "f32" },
    );
  }
  return rows;
}

export function qwen3Options(spec: ModelSpec): DecoderOptions {
  return { ...llamaOptions(spec), qkNorm: true };
}
