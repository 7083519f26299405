// AdamW (decoupled weight decay, Loshchilov & Hutter), the learning-rate schedule (linear warmup
// then cosine decay to minLr) and global gradient-norm clipping. Plain loops over the flat
// parameter / gradient buffers of TrainModel.
import type { Buf } from "./matmul.js";
import type { TensorInfo } from "./model.js";

export interface AdamWConfig {
  beta1: number; // e.g. 0.9
  beta2: number; // e.g. 0.95 (nanoGPT / LLaMA pretraining)
  eps: number; // e.g. 1e-8
  weightDecay: number; // e.g. 0.1, applied to matrices only (not norm gains)
}

export const DEFAULT_ADAMW: AdamWConfig = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

/** One AdamW update's constants: bias corrections c1 = 1 − β1^t, c2 = 1 − β2^t, decay = 1 − lr·wd or 1. */
export interface AdamWStep {
  beta1: number;
  beta2: number;
  eps: number;
  lr: number;
  c1: number;
  c2: number;
  decay: number;
}

export type AdamWRange = (params: Buf, grads: Buf, m: Buf, v: Buf, offset: number, size: number, s: AdamWStep) => void;

/** AdamW on elements [offset, offset + size): the plain-loop specification. */
export function adamwRange(params: Buf, grads: Buf, m: Buf, v: Buf, offset: number, size: number, s: AdamWStep): void {
  const { beta1, beta2, eps, lr, c1, c2, decay } = s;
  for (let i = offset, end = offset + size; i < end; i++) {
    const g = grads[i];
    m[i] = beta1 * m[i] + (1 - beta1) * g;
    v[i] = beta2 * v[i] + (1 - beta2) * g * g;
    params[i] = params[i] * decay - (lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + eps);
  }
}

export class AdamW {
  readonly m: Float32Array; // first moment, same layout as the parameters
  readonly v: Float32Array; // second moment
  step = 0; // completed updates (bias correction uses step + 1)

  /** `alloc` places the moments (e.g. in the kernel arena, for the WASM update). */
  constructor(readonly numParams: number, readonly cfg: AdamWConfig = DEFAULT_ADAMW, alloc: (n: number, what: string) => Float32Array = (n) => new Float32Array(n)) {
    this.m = alloc(numParams, "adamw m");
    this.v = alloc(numParams, "adamw v");
  }

  /** One update of params from grads at learning rate lr; runs of tensors with the same decay go to `range` together. */
  update(params: Buf, grads: Buf, tensors: TensorInfo[], lr: number, range: AdamWRange = adamwRange): void {
    const { beta1, beta2, eps, weightDecay } = this.cfg;
    this.step++;
    const base = { beta1, beta2, eps, lr, c1: 1 - Math.pow(beta1, this.step), c2: 1 - Math.pow(beta2, this.step) };
    for (let i = 0; i < tensors.length; ) {
      let j = i + 1;
      while (j < tensors.length && tensors[j].decay === tensors[i].decay && tensors[j].offset === tensors[j - 1].offset + tensors[j - 1].size) j++;
      const offset = tensors[i].offset, size = tensors[j - 1].offset + tensors[j - 1].size - offset;
      range(params, grads, this.m, this.v, offset, size, { ...base, decay: tensors[i].decay ? 1 - lr * weightDecay : 1 });
      i = j;
    }
  }
}

/** The learning-rate schedules: cosine (the default) and warmup-stable-decay. */
export const SCHEDULES = ["cosine", "wsd"] as const;
export type ScheduleKind = (typeof SCHEDULES)[number];

/** Warmup updates when none is given: min(100, steps / 10). */
export function defaultWarmup(steps: number): number {
  return Math.min(100, Math.floor(steps / 10));
}

export interface Schedule {
  kind?: ScheduleKind; // default "cosine"
  maxLr: number; // e.g. 3e-3
  minLr: number; // e.g. 3e-4 (10 % of max)
  warmupSteps: number; // e.g. 100
  totalSteps: number; // the run length; the schedule reaches minLr here
  decayFraction?: number; // wsd: the last round(decayFraction · totalSteps) updates decay linearly, e.g. 0.2
}

/** The first update of the decay of a wsd schedule: every run whose total is T shares the constant trunk before it. */
export function decayStart(s: Schedule): number {
  return s.totalSteps - Math.round((s.decayFraction ?? 0.2) * s.totalSteps);
}

/**
 * Learning rate for update `step` (0-based): linear warmup to maxLr, then either a cosine to minLr
 * (kind "cosine") or maxLr held constant until decayStart and a linear decay to minLr at totalSteps
 * (kind "wsd", warmup-stable-decay, Hägele et al. 2024). A wsd run of T updates and one of T' > T
 * share their learning rates up to decayStart of the shorter, so one constant trunk with a short
 * decay branched off at each length stands for a family of runs.
 */
export function learningRate(step: number, s: Schedule): number {
  if (step < s.warmupSteps) return (s.maxLr * (step + 1)) / s.warmupSteps;
  if (step >= s.totalSteps) return s.minLr;
  if (s.kind === "wsd") {
    const d0 = Math.max(decayStart(s), s.warmupSteps);
    if (step < d0) return s.maxLr;
    return s.maxLr + ((s.minLr - s.maxLr) * (step + 1 - d0)) / Math.max(1, s.totalSteps - d0);
  }
  const progress = (step - s.warmupSteps) / Math.max(1, s.totalSteps - s.warmupSteps);
  return s.minLr + 0.5 * (s.maxLr - s.minLr) * (1 + Math.cos(Math.PI * progress));
}

/** Scales grads so their global L2 norm is at most maxNorm (0 = no clipping); returns the norm before clipping. */
export function clipGradNorm(grads: Buf, maxNorm: number): number {
  let ss = 0;
  for (let i = 0; i < grads.length; i++) ss += grads[i] * grads[i];
  const norm = Math.sqrt(ss);
  if (maxNorm > 0 && norm > maxNorm) {
    const k = maxNorm / (norm + 1e-6);
    for (let i = 0; i < grads.length; i++) grads[i] *= k;
  }
  return norm;
}
