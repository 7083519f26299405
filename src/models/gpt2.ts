// GPT-2: learned positions, LayerNorm, tanh-GELU MLP, biases everywhere, tied LM head. Its linear
// layers are Conv1D, stored [in, out]: the table transposes them to PyTorch's Linear [out, in], and
// splits the fused c_attn [E, 3E] into q, k, v.
import type { ModelSpec } from "../config/types.js";
import type { DecoderOptions } from "./decoder.js";
import type { WeightRow } from "./weights.js";

export function gpt2Table(spec: ModelSpec): WeightRow[] {
  const { hiddenSize: E, vocabSize: V, numLayers: L, maxPositions: P } = spec;
  const F = spec.mlp.intermediateSize;
  const rows: WeightRow[] = [
    { key: "embed", source: "transformer.wte.weight", shape: [V, E], store: "matmul" },
    { key: "pos", source: "transformer.wpe.weight", shape: [P, E], store: "f32" },
  ];
  for (let l = 0; l < L; l++) {
    const p = `transformer.h.${l}.`;
    const k = `layers.${l}.`;
    const part = (i: number): [number, number][] => [[i * E, (i + 1) * E]];
    rows.push(
      { key: k + "attn_norm.w", source: p + "ln_1.weight", shape: [E], store: "f32" },
      { key: k + "attn_norm.b", source: p + "ln_1.bias", shape: [E], store: "f32" },
      ...["q", "k", "v"].flatMap((name, i): WeightRow[] => [
        { key: k + name, source: p + "attn.c_attn.weight", shape: [E, 3 * E], store: "matmul", transpose: true, rows: part(i) },
        { key: k + name + ".b", source: p + "attn.c_attn.bias", shape: [3 * E], store: "f32", rows: part(i) },
      ]),
      { key: k + "o", source: p + "attn.c_proj.weight", shape: [E, E], store: "matmul", transpose: true },
      { key: k + "o.b", source: p + "attn.c_proj.bias", shape: [E], store: "f32" },
      { key: k + "mlp_norm.w", source: p + "ln_2.weight", shape: [E], store: "f32" },
      { key: k + "mlp_norm.b", source: p + "ln_2.bias", shape: [E], store: "f32" },
      { key: k + "fc", source: p + "mlp.c_fc.weight", shape: [E, F], store: "matmul", transpose: true },
      { key: k + "fc.b", source: p + "mlp.c_fc.bias", shape: [F], store: "f32" },
      { key: k + "proj", source: p + "mlp.c_proj.weight", shape: [F, E], store: "matmul", transpose: true },
      { key: k + "proj.b", source: p + "mlp.c_proj.bias", shape: [E], store: "f32" },
    );
  }
  rows.push(
    { key: "final_norm.w", source: "transformer.ln_f.weight", shape: [E], store: "f32" },
    { key: "final_norm.b", source: "transformer.ln_f.bias", shape: [E], store: "f32" },
  );
  return rows;
}

export function gpt2Options(): DecoderOptions {
  return { norm: "layernorm", normPlusOne: false, embedScale: 1, learnedPositions: true, mlp: "gelu" };
}
