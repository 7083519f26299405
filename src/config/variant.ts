// What-if variants of a spec: the same model with a different number of KV heads (MHA, GQA-g, MQA).
// Used by the planner's what-ifs and by the converter. Pure.
import { OptionError, UserError } from "../errors.js";
import type { ModelSpec } from "./types.js";

/** "full"/"mha" = numHeads, "mqa" = 1, else an integer that must divide numHeads. */
export function parseKvHeads(value: string | number, numHeads: number): number {
  const v = typeof value === "number" ? value : value.trim().toLowerCase();
  if (v === "full" || v === "mha") return numHeads;
  if (v === "mqa") return 1;
  const k = typeof v === "number" ? v : /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(k) || k < 1) throw new OptionError("kvHeads", `kvHeads: "${value}" is not a positive integer, "full" or "mqa"`);
  if (k > numHeads || numHeads % k !== 0) {
    throw new OptionError("kvHeads", `kvHeads: ${k} does not divide the ${numHeads} query heads; expected one of ${divisors(numHeads).join(", ")}`);
  }
  return k;
}

/** Divisors of n in ascending order (O(√n), so a huge head count in a broken config cannot hang the message). */
export function divisors(n: number): number[] {
  const low: number[] = [];
  const high: number[] = [];
  for (let d = 1; d * d <= n; d++) {
    if (n % d !== 0) continue;
    low.push(d);
    if (d * d !== n) high.unshift(n / d);
  }
  return [...low, ...high];
}

/** "MHA" when k = numHeads, "MQA" when k = 1, else "GQA-k" (k KV heads, i.e. k groups). */
export function kvHeadsLabel(numHeads: number, k: number): string {
  return k === numHeads ? "MHA" : k === 1 ? "MQA" : `GQA-${k}`;
}

/**
 * The same model with `numKvHeads` KV heads on every layer (windows kept). An MLA model becomes a plain
 * per-head cache whose K rows are qk_nope + qk_rope wide and V rows v_head_dim wide; the byte count's one
 * headDim is their mean, which gives exactly 2 × k × mean = k × (dk + dv) values per token and layer.
 */
export function withKvHeads(spec: ModelSpec, numKvHeads: number): ModelSpec {
  const k = parseKvHeads(numKvHeads, spec.numHeads);
  let headDim = spec.headDim;
  if (spec.mla) {
    const kv = spec.mla.qkNopeHeadDim + spec.mla.qkRopeHeadDim + spec.mla.vHeadDim;
    if (kv % 2 !== 0) throw new UserError(`${spec.name}: MLA K+V width ${kv} is odd; cannot express it as one head dim`);
    headDim = kv / 2;
  }
  return {
    ...spec,
    numKvHeads: k,
    headDim,
    mla: null,
    layers: spec.layers.map((l) => ({ ...l, numKvHeads: Math.min(k, l.numHeads), headDim })),
  };
}
