// Attention configuration: one shape for MHA, GQA and MQA. The variant is the parameter numKvHeads.
//
// Legend: H query heads, K kv heads, G = H/K query heads per kv head, D head dim.

/** User-facing configuration. */
export interface AttentionConfig {
  numHeads: number; // H, e.g. 32 query heads
  numKvHeads: number; // K, e.g. 8 (GQA); 1 = MQA, numHeads = MHA. Must divide numHeads.
  headDim: number; // D, e.g. 128; may differ from hiddenSize / numHeads (Gemma: 256)
  hiddenSize?: number; // model width, e.g. 4096; defaults to numHeads × headDim (used by the projections)
  scale?: number; // score scale, default 1 / sqrt(headDim)
  window?: number | null; // sliding window W in tokens (Mistral: 4096): key pos must be > qPos - W; null = global
  softcap?: number | null; // Gemma-2 attn_logit_softcapping, e.g. 50: scores become c · tanh(score / c); null = none
}

/** The configuration with defaults filled in and G derived. */
export interface ResolvedAttentionConfig {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  hiddenSize: number;
  scale: number;
  window: number | null;
  softcap: number | null;
  groupSize: number; // G = numHeads / numKvHeads: query heads that share one kv head
}

/**
 * Validates a configuration; errors name the field and the values.
 * @example resolveAttentionConfig({ numHeads: 32, numKvHeads: 8, headDim: 128 }).groupSize // 4
 */
export function resolveAttentionConfig(config: AttentionConfig): ResolvedAttentionConfig {
  const where = "attention config";
  const { numHeads, numKvHeads, headDim } = config;
  for (const [name, value] of [["numHeads", numHeads], ["numKvHeads", numKvHeads], ["headDim", headDim]] as const) {
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
      throw new RangeError(`${where}: ${name} must be a positive integer, got ${value}`);
    }
  }
  if (numHeads % numKvHeads !== 0) {
    throw new RangeError(`${where}: numHeads = ${numHeads} is not divisible by numKvHeads = ${numKvHeads} (each kv head must serve a whole group of query heads)`);
  }
  const hiddenSize = config.hiddenSize ?? numHeads * headDim;
  if (!Number.isInteger(hiddenSize) || hiddenSize < 1) throw new RangeError(`${where}: hiddenSize must be a positive integer, got ${hiddenSize}`);
  const scale = config.scale ?? 1 / Math.sqrt(headDim);
  if (!Number.isFinite(scale) || scale <= 0) throw new RangeError(`${where}: scale must be a positive finite number, got ${scale}`);
  const window = config.window ?? null;
  if (window !== null && (!Number.isInteger(window) || window < 1)) {
    throw new RangeError(`${where}: window must be a positive integer or null, got ${window}`);
  }
  const softcap = config.softcap ?? null;
  if (softcap !== null && !(Number.isFinite(softcap) && softcap > 0)) throw new RangeError(`${where}: softcap must be a positive finite number or null, got ${softcap}`);
  return { numHeads, numKvHeads, headDim, hiddenSize, scale, window, softcap, groupSize: numHeads / numKvHeads };
}

/** The kv head query head h reads: floor(h / G), the HF and llama.cpp convention. */
export function kvHeadOf(h: number, config: Pick<ResolvedAttentionConfig, "groupSize">): number {
  return Math.floor(h / config.groupSize);
}
