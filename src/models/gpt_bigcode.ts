// gpt_bigcode (SantaCoder, StarCoder): GPT-2's block with Linear ([out, in]) weights. With
// multi_query the fused c_attn is [E + 2D, E] = q (H heads) | k (1 head) | v (1 head): the classic
// MQA layout. Without it, c_attn rows are per head [q_h | k_h | v_h] (transformers views them as
// [H, 3D]), so the table gathers every head's slice.
import { UserError } from "../errors.js";
import type { ModelSpec } from "../config/types.js";
import type { DecoderOptions } from "./decoder.js";
import { gpt2Options } from "./gpt2.js";
import type { WeightRow } from "./weights.js";

export function gptBigcodeTable(spec: ModelSpec): WeightRow[] {
  const { hiddenSize: E, vocabSize: V, numLayers: L, maxPositions: P, numHeads: H, numKvHeads: K, headDim: D } = spec;
  const F = spec.mlp.intermediateSize;
  const multiQuery = K === 1;
  if (!multiQuery && K !== H) throw new UserError(`${spec.source ?? "gpt_bigcode"}: ${K} KV heads; gpt_bigcode has 1 (multi_query true) or num_attention_heads = ${H} (multi_query false)`);
  const fused = multiQuery ? E + 2 * D : 3 * E;
  // Row ranges of q, k, v inside c_attn.
  const ranges: Record<string, [number, number][]> = multiQuery
    ? { q: [[0, E]], k: [[E, E + D]], v: [[E + D, E + 2 * D]] }
    : Object.fromEntries(["q", "k", "v"].map((n, i) => [n, Array.from({ length: H }, (_, h): [number, number] => [h * 3 * D + i * D, h * 3 * D + (i + 1) * D])]));
  const rows: WeightRow[] = [
    { key: "embed", source: "transformer.wte.weight", shape: [V, E], store: "matmul" },
    { key: "pos", source: "transformer.wpe.weight", shape: [P, E], store: "f32" },
  ];
  for (let l = 0; l < L; l++) {
    const p = `transformer.h.${l}.`;
    const k = `layers.${l}.`;
    rows.push(
      { key: k + "attn_norm.w", source: p + "ln_1.weight", shape: [E], store: "f32" },
      { key: k + "attn_norm.b", source: p + "ln_1.bias", shape: [E], store: "f32" },
      ...["q", "k", "v"].flatMap((name): WeightRow[] => [
        { key: k + name, source: p + "attn.c_attn.weight", shape: [fused, E], store: "matmul", rows: ranges[name] },
        { key: k + name + ".b", source: p + "attn.c_attn.bias", shape: [fused], store: "f32", rows: ranges[name] },
      ]),
      { key: k + "o", source: p + "attn.c_proj.weight", shape: [E, E], store: "matmul" },
      { key: k + "o.b", source: p + "attn.c_proj.bias", shape: [E], store: "f32" },
      { key: k + "mlp_norm.w", source: p + "ln_2.weight", shape: [E], store: "f32" },
      { key: k + "mlp_norm.b", source: p + "ln_2.bias", shape: [E], store: "f32" },
      { key: k + "fc", source: p + "mlp.c_fc.weight", shape: [F, E], store: "matmul" },
      { key: k + "fc.b", source: p + "mlp.c_fc.bias", shape: [F], store: "f32" },
      { key: k + "proj", source: p + "mlp.c_proj.weight", shape: [E, F], store: "matmul" },
      { key: k + "proj.b", source: p + "mlp.c_proj.bias", shape: [E], store: "f32" },
    );
  }
  rows.push(
    { key: "final_norm.w", source: "transformer.ln_f.weight", shape: [E], store: "f32" },
    { key: "final_norm.b", source: "transformer.ln_f.bias", shape: [E], store: "f32" },
  );
  return rows;
}

export function gptBigcodeOptions(): DecoderOptions {
  return gpt2Options();
}
