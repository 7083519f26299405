// The one KV-cache byte count. The caches allocate with it and the planner reports it,
// so the engine and the planner cannot disagree.
//
// Per layer and per cached token the cache holds K and V for numKvHeads heads of headDim values:
//   2 × numKvHeads × rowBytes(dtype, headDim)
// MLA layers hold one latent row instead: rowBytes(dtype, kvLoraRank + qkRopeHeadDim).
// A sliding-window layer holds at most `window` tokens. A paged cache rounds each layer's
// tokens up to whole blocks of blockSize tokens.
import type { LayerSpec, MlaSpec } from "../config/types.js";
import { rowBytes } from "../dtypes/table.js";

/** The part of one layer the byte count needs (a LayerSpec satisfies it; so does a cache's config). */
export type KvLayer = Pick<LayerSpec, "numKvHeads" | "headDim" | "window">;

/** The part of a model spec the byte count needs (a ModelSpec satisfies it). */
export interface KvShape {
  layers: KvLayer[];
  mla: MlaSpec | null;
}

export interface KvBytesOptions {
  tokens: number; // cached tokens per sequence, e.g. 4096
  dtype?: string; // "f16" by default
  batch?: number; // sequences, default 1
  blockSize?: number | null; // paged block size in tokens (vLLM: 16), null = contiguous
  tp?: number; // tensor-parallel degree: KV heads per GPU = max(numKvHeads / tp, 1)
  applyWindow?: boolean; // cap sliding-window layers at their window (default true)
}

/**
 * KV heads one GPU stores under tensor parallelism: the heads split over tp GPUs, and when tp
 * exceeds them each GPU keeps a whole replicated head (vLLM), so never fewer than 1.
 * @example kvHeadsPerGpu(8, 4) // 2; kvHeadsPerGpu(1, 8) // 1 (MQA replicates its one head)
 */
export function kvHeadsPerGpu(numKvHeads: number, tp = 1): number {
  return Math.max(Math.ceil(numKvHeads / tp), 1);
}

/** Bytes one layer needs per cached token (per GPU when tp > 1). */
export function layerBytesPerToken(layer: KvLayer, mla: MlaSpec | null, dtype: string, tp = 1): number {
  if (mla) return rowBytes(dtype, mla.kvLoraRank + mla.qkRopeHeadDim); // the latent is not split by TP
  return 2 * kvHeadsPerGpu(layer.numKvHeads, tp) * rowBytes(dtype, layer.headDim);
}

/** KV bytes per token for one sequence over all layers, before any window cap. */
export function kvBytesPerToken(shape: KvShape, dtype = "f16", tp = 1): number {
  let bytes = 0;
  for (const layer of shape.layers) bytes += layerBytesPerToken(layer, shape.mla, dtype, tp);
  return bytes;
}

/** Tokens a layer actually stores for a sequence of `tokens` tokens. */
export function storedTokens(layer: KvLayer, tokens: number, opts: { blockSize?: number | null; applyWindow?: boolean } = {}): number {
  const capped = opts.applyWindow !== false && layer.window !== null ? Math.min(tokens, layer.window) : tokens;
  const bs = opts.blockSize ?? null;
  return bs ? Math.ceil(capped / bs) * bs : capped;
}

/**
 * Exact KV-cache bytes: Σ_layers layerBytesPerToken × storedTokens × batch.
 * @example kvCacheBytes({ layers: Array(32).fill({ numHeads: 32, numKvHeads: 32, headDim: 128, window: null }), mla: null },
 *                       { tokens: 4096, dtype: "f16" }) // 2 GiB = 2147483648
 */
export function kvCacheBytes(shape: KvShape, opts: KvBytesOptions): number {
  const { tokens, dtype = "f16", batch = 1, tp = 1 } = opts;
  if (!Number.isInteger(tokens) || tokens < 0) throw new RangeError(`kvCacheBytes: tokens must be a non-negative integer, got ${tokens}`);
  if (!Number.isInteger(batch) || batch < 0) throw new RangeError(`kvCacheBytes: batch must be a non-negative integer, got ${batch}`);
  let bytes = 0;
  for (const layer of shape.layers) {
    bytes += layerBytesPerToken(layer, shape.mla, dtype, tp) * storedTokens(layer, tokens, opts);
  }
  return bytes * batch;
}
