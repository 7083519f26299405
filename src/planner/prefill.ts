// Prefill and time-to-first-token estimates beside the decode roofline (plan.ts decodeEstimate).
// Prefill is compute-bound: a prompt of P tokens costs 2 × matmul parameters × P FLOPs plus causal
// attention, 2 × P(P+1)/2 × heads × (QK + AV widths) per layer (each query row attends to the keys
// before it); the weights are read once per prefill chunk, the memory floor. Time = the larger of the
// two. Time to first token = the prefill: the first token is sampled from its last row of logits
// (queueing and network time not included).
//
// Legend: P prompt tokens, b sequences prefilled together, tp tensor-parallel degree.
import { kvCacheBytes, storedTokens } from "../kvcache/bytes.js";
import type { ModelSpec } from "../config/types.js";
import { attentionWidths, matmulParams, weightBytes } from "./params.js";
import type { ResolvedPlanOptions } from "./plan.js";

export interface PrefillEstimate {
  promptTokens: number;
  batch: number; // prompts prefilled together (per replica)
  flopsPerGpu: number;
  attentionFlopsPerGpu: number; // of flopsPerGpu: the causal attention part
  bytesPerGpu: number; // weights once per chunk + the KV cache written
  computeSeconds: number | null; // null when the device has no FLOP/s figure
  memorySeconds: number;
  seconds: number; // time to first token (the prefill)
  tokensPerSecond: number; // prompt tokens per second (all prompts of the batch)
  bound: "compute" | "memory";
}

/**
 * Prefill of `batch` prompts of `promptTokens` tokens each, chunked by `chunk` tokens (a weight read
 * per chunk; vLLM's max_num_batched_tokens, mqa's prefillChunk).
 * @example prefillEstimate(spec, resolvePlanOptions(spec, { gpu: "h100-sxm" }), 4096).seconds
 */
export function prefillEstimate(spec: ModelSpec, o: ResolvedPlanOptions, promptTokens: number, batch = 1, chunk = 512): PrefillEstimate {
  const { tp, gpu, applyWindow, kvDtype } = o;
  const P = promptTokens;
  const mm = matmulParams(spec);
  let attn = 0;
  for (const layer of spec.layers) {
    const heads = Math.ceil(layer.numHeads / tp);
    const widths = attentionWidths(spec, layer);
    // Query row i attends to min(i + 1, window) keys: the causal (and windowed) count of pairs.
    const w = Math.min(storedTokens(layer, P, { applyWindow }), P);
    const pairs = w >= P ? (P * (P + 1)) / 2 : w * P - (w * (w - 1)) / 2;
    attn += 2 * batch * pairs * heads * widths;
  }
  const flops = (2 * mm * P * batch) / tp + attn;
  const chunks = Math.ceil((P * batch) / chunk);
  const bytes = weightBytes(spec, o.weightDtype, tp).perGpu * chunks + kvCacheBytes(spec, { tokens: P, dtype: kvDtype, batch, tp, applyWindow });
  const memorySeconds = bytes / gpu.bandwidthBytesPerSecond;
  const computeSeconds = gpu.tflopsBf16 ? flops / (gpu.tflopsBf16 * 1e12) : null;
  const seconds = Math.max(memorySeconds, computeSeconds ?? 0);
  return {
    promptTokens: P, batch, flopsPerGpu: Math.round(flops), attentionFlopsPerGpu: Math.round(attn), bytesPerGpu: Math.round(bytes),
    computeSeconds, memorySeconds, seconds, tokensPerSecond: (P * batch) / seconds,
    bound: computeSeconds !== null && computeSeconds > memorySeconds ? "compute" : "memory",
  };
}
