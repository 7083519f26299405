// The weight size table: every tensor of a spec with its shape, its group (Q, K, V, O projections, MLP,
// embeddings, ...) and how tensor parallelism splits it. Parameter counts, weight bytes and per-GPU weight
// bytes are all sums over this one table (llm.c's fill_in_parameter_sizes idea). Pure.
//
// Shapes are [out, in] (PyTorch nn.Linear order); a vector is [n].
// E hidden, H query heads, K kv heads, D head dim, F MLP width, V vocab, X experts.
import { rowBytes } from "../dtypes/table.js";
import type { ModelSpec } from "../config/types.js";

export type ParamGroup = "q" | "k" | "v" | "o" | "mlp" | "router" | "embeddings" | "positions" | "lmHead" | "norms";

/** How tensor parallelism places a tensor: split over tp, KV heads (replicated past tp = K), or replicated. */
export type TpSplit = "split" | "kvHeads" | "replicated";

export interface TensorEntry {
  name: string; // e.g. "layers.0.q" (HF-like, for messages and debugging)
  group: ParamGroup;
  shape: number[]; // [out, in] or [n]
  split: TpSplit;
  kvHeads?: number; // for split "kvHeads": the tensor's KV head count (rows = kvHeads × D)
  expert?: "routed" | "shared"; // MoE expert weights: only `expertsPerToken` routed experts are active per token
  count?: number; // identical tensors this entry stands for (all routed experts of a layer: e.g. 256), default 1
}

export type ParamCounts = Record<ParamGroup, number> & { total: number; active: number; kvProj: number };

/** Every weight tensor of the spec. */
export function tensorTable(spec: ModelSpec): TensorEntry[] {
  const E = spec.hiddenSize;
  const out: TensorEntry[] = [];
  const add = (name: string, group: ParamGroup, shape: number[], split: TpSplit, extra: Partial<TensorEntry> = {}) => out.push({ name, group, shape, split, ...extra });
  const normSize = (n: number) => (spec.normWeights === false ? [0] : spec.norm === "layernorm" ? [2 * n] : [n]); // LayerNorm has weight + bias
  add("embed_tokens", "embeddings", [spec.vocabSize, E], "split");
  if (spec.positions === "learned") add("embed_positions", "positions", [spec.maxPositions, E], "replicated");
  spec.layers.forEach((layer, i) => {
    const { numHeads: H, numKvHeads: K, headDim: D } = layer;
    const p = `layers.${i}`;
    if (spec.mla) {
      const { kvLoraRank, qkRopeHeadDim, qkNopeHeadDim, vHeadDim, qLoraRank } = spec.mla;
      if (qLoraRank === null) add(`${p}.q_proj`, "q", [H * (qkNopeHeadDim + qkRopeHeadDim), E], "split");
      else {
        add(`${p}.q_a_proj`, "q", [qLoraRank, E], "replicated");
        add(`${p}.q_a_layernorm`, "q", [qLoraRank], "replicated");
        add(`${p}.q_b_proj`, "q", [H * (qkNopeHeadDim + qkRopeHeadDim), qLoraRank], "split");
      }
      // K: the shared down-projection to the cached latent and RoPE key; V: the per-head up-projection.
      add(`${p}.kv_a_proj_with_mqa`, "k", [kvLoraRank + qkRopeHeadDim, E], "replicated");
      add(`${p}.kv_a_layernorm`, "k", [kvLoraRank], "replicated");
      add(`${p}.kv_b_proj`, "v", [H * (qkNopeHeadDim + vHeadDim), kvLoraRank], "split");
      add(`${p}.o_proj`, "o", [E, H * vHeadDim], "split");
    } else {
      add(`${p}.q_proj`, "q", [H * D, E], "split");
      add(`${p}.k_proj`, "k", [K * D, E], "kvHeads", { kvHeads: K });
      add(`${p}.v_proj`, "v", [K * D, E], "kvHeads", { kvHeads: K });
      if (spec.qkvBias) {
        add(`${p}.q_bias`, "q", [H * D], "split");
        add(`${p}.k_bias`, "k", [K * D], "kvHeads", { kvHeads: K });
        add(`${p}.v_bias`, "v", [K * D], "kvHeads", { kvHeads: K });
      }
      add(`${p}.o_proj`, "o", [E, H * D], "split");
      if (spec.attnOutBias) add(`${p}.o_bias`, "o", [E], "replicated");
      if (spec.qkNorm) add(`${p}.qk_norm`, "norms", [2 * D], "replicated");
    }
    addMlp(spec, i, p, add);
    add(`${p}.norms`, "norms", normSize((spec.normsPerLayer ?? 2) * E), "replicated");
  });
  add("final_norm", "norms", normSize(E), "replicated");
  if (!spec.tieWordEmbeddings) add("lm_head", "lmHead", [spec.vocabSize, E], "split");
  if (spec.lmHeadBias) add("lm_head_bias", "lmHead", [spec.vocabSize], "split");
  return out;
}

function addMlp(spec: ModelSpec, i: number, p: string, add: (name: string, group: ParamGroup, shape: number[], split: TpSplit, extra?: Partial<TensorEntry>) => void) {
  const E = spec.hiddenSize;
  const { kind, intermediateSize, numExperts, sharedExperts, moeIntermediateSize, firstDenseLayers } = spec.mlp;
  const gated = kind === "swiglu" || kind === "geglu";
  // One entry per kind of tensor with a count: DeepSeek-V3's 256 experts × 58 layers would otherwise be ~60k entries
  // rebuilt on every plan (0.4 s per plan, too slow for the web page's sliders).
  const mlp = (name: string, F: number, expert?: "routed" | "shared", count = 1) => {
    add(`${name}.up`, "mlp", [(gated ? 2 : 1) * F, E], "split", { expert, count }); // gate and up (gated) or fc
    add(`${name}.down`, "mlp", [E, F], "split", { expert, count });
    if (spec.mlpBias) {
      add(`${name}.up_bias`, "mlp", [(gated ? 2 : 1) * F], "split", { expert, count });
      add(`${name}.down_bias`, "mlp", [E], "replicated", { expert, count });
    }
  };
  const step = spec.mlp.moeLayerStep ?? 1;
  if (numExperts > 1 && i >= firstDenseLayers && (i + 1) % step === 0) {
    const F = moeIntermediateSize ?? intermediateSize;
    add(`${p}.router`, "router", [numExperts, E], "replicated");
    mlp(`${p}.experts`, F, "routed", numExperts);
    if (sharedExperts > 0) mlp(`${p}.shared_experts`, F, "shared", sharedExperts);
  } else mlp(`${p}.mlp`, intermediateSize);
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Parameter counts per group, the total, the active count per token (MoE) and the K+V projection count. */
export function paramCounts(spec: ModelSpec): ParamCounts {
  const c: ParamCounts = { q: 0, k: 0, v: 0, o: 0, mlp: 0, router: 0, embeddings: 0, positions: 0, lmHead: 0, norms: 0, total: 0, active: 0, kvProj: 0 };
  const { numExperts, expertsPerToken } = spec.mlp;
  for (const t of tensorTable(spec)) {
    const n = numel(t.shape) * (t.count ?? 1);
    c[t.group] += n;
    c.total += n;
    c.active += t.expert === "routed" ? (n * expertsPerToken) / numExperts : n;
  }
  c.kvProj = c.k + c.v;
  return c;
}

/** Storage type for 1-D tensors (norms, biases): ggml keeps them f32, fp8/int8 checkpoints keep them bf16. */
export function vectorDtype(weightDtype: string): string {
  const d = weightDtype.toLowerCase();
  if (d === "f32" || d === "f16" || d === "bf16") return d;
  return d === "fp8" || d === "int8" ? "bf16" : "f32";
}

/** Bytes of one tensor (of `count` identical ones): matrices as `out` rows of `in` values in the weight dtype (exact for block types). */
export function tensorBytes(t: TensorEntry, weightDtype: string): number {
  if (t.shape.length === 1) return rowBytes(vectorDtype(weightDtype), t.shape[0]);
  const [rows, cols] = t.shape;
  return rows * rowBytes(weightDtype, cols);
}

export interface WeightBytes {
  total: number; // all tensors once
  perGpu: number; // one GPU of a tp group: split tensors ⌈bytes / tp⌉, KV projections max(⌈K / tp⌉, 1) heads, the rest replicated
  byGroup: Record<ParamGroup, number>;
  activePerToken: number; // bytes of weights one token touches (MoE: expertsPerToken of numExperts routed experts)
  routedPerGpu: number; // the part of perGpu that is routed MoE experts (0 for dense models)
  lookupPerGpu: number; // the part of perGpu that decode only looks rows up in: an untied input embedding, learned positions
}

export function weightBytes(spec: ModelSpec, weightDtype: string, tp = 1): WeightBytes {
  const byGroup: Record<ParamGroup, number> = { q: 0, k: 0, v: 0, o: 0, mlp: 0, router: 0, embeddings: 0, positions: 0, lmHead: 0, norms: 0 };
  let total = 0;
  let perGpu = 0;
  let activePerToken = 0;
  let routedPerGpu = 0;
  let lookupPerGpu = 0;
  const { numExperts, expertsPerToken } = spec.mlp;
  for (const t of tensorTable(spec)) {
    const lookup = t.group === "positions" || (t.group === "embeddings" && !spec.tieWordEmbeddings);
    const one = tensorBytes(t, weightDtype);
    const count = t.count ?? 1;
    const b = one * count;
    byGroup[t.group] += b;
    total += b;
    activePerToken += t.expert === "routed" ? (b * expertsPerToken) / numExperts : b;
    if (t.split === "replicated") {
      perGpu += b;
      if (lookup) lookupPerGpu += b;
    } else if (t.split === "split") {
      perGpu += Math.ceil(one / tp) * count; // each tensor is split on its own
      if (lookup) lookupPerGpu += Math.ceil(one / tp) * count;
      if (t.expert === "routed") routedPerGpu += Math.ceil(one / tp) * count;
    }
    else perGpu += (b / t.kvHeads!) * Math.max(Math.ceil(t.kvHeads! / tp), 1);
  }
  return { total, perGpu, byGroup, activePerToken: Math.round(activePerToken), routedPerGpu, lookupPerGpu };
}

/** Parameters a token multiplies by: all but the input embedding and positions (a tied head counts the table once). */
export function matmulParams(spec: ModelSpec): number {
  const p = paramCounts(spec);
  return p.active - p.embeddings - p.positions + (spec.tieWordEmbeddings ? spec.vocabSize * spec.hiddenSize : 0);
}

/** Per query head and key, the QK + AV widths attention multiplies over (MLA: the latent and RoPE parts). */
export function attentionWidths(spec: ModelSpec, layer: { headDim: number }): number {
  return spec.mla ? 2 * spec.mla.kvLoraRank + spec.mla.qkRopeHeadDim : 2 * layer.headDim;
}
