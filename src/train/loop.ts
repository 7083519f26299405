// The training loop as a library: batches, one optimizer step (with gradient accumulation and
// clipping), and evaluation in nats per token, bits per byte and perplexity.
// The CLI (src/cli/train.ts) drives it and prints; nothing here reads files.
//
// Legend: B batch, T positions, V vocab.
import type { TrainModel } from "./model.js";
import { AdamW, learningRate, type AdamWConfig, type Schedule, type ScheduleKind } from "./optim.js";
import { Rng } from "../random.js";

export interface TrainOptions {
  steps: number; // optimizer updates, e.g. 2000
  batch: number; // B sequences per micro-batch, e.g. 8
  seqLen: number; // T tokens per sequence, e.g. 256
  accum: number; // micro-batches per update (gradient accumulation), e.g. 1
  lr: number; // peak learning rate, e.g. 3e-3
  minLr: number; // final learning rate of the cosine, e.g. 3e-4
  warmup: number; // linear warmup updates, e.g. 100
  weightDecay: number; // AdamW decoupled decay on matrices, e.g. 0.1
  clip: number; // max global gradient norm, 0 = off, e.g. 1.0
  seed: number; // initialisation seed; batches use seed + 1
  schedule?: ScheduleKind; // "cosine" (default) or "wsd" (warmup-stable-decay)
  decayFraction?: number; // wsd: share of the updates in the final linear decay, e.g. 0.2
}

/** Fills tokens[B·T] and targets[B·T] (−100 = not scored). */
export interface BatchSource {
  fill(tokens: Int32Array, targets: Int32Array, B: number, T: number, rng: Rng): void;
}

/** Random windows of a token stream: targets are the next tokens. */
export class TextBatches implements BatchSource {
  constructor(readonly ids: Uint16Array) {}
  fill(tokens: Int32Array, targets: Int32Array, B: number, T: number, rng: Rng): void {
    const span = this.ids.length - T - 1;
    if (span <= 0) throw new Error(`TextBatches: ${this.ids.length} tokens is too short for T = ${T}`);
    for (let b = 0; b < B; b++) {
      const s = rng.int(span);
      for (let t = 0; t < T; t++) {
        tokens[b * T + t] = this.ids[s + t];
        targets[b * T + t] = this.ids[s + t + 1];
      }
    }
  }
}

export interface StepRecord {
  step: number; // 1-based count of completed updates
  loss: number; // mean training cross-entropy of this update, nats per token
  lr: number;
  gradNorm: number; // before clipping
  tokens: number; // scored tokens in this update
}

export class Trainer {
  readonly opt: AdamW;
  readonly rng: Rng; // batch order
  step = 0;
  private readonly tokens: Int32Array;
  private readonly targets: Int32Array;

  constructor(readonly model: TrainModel, readonly opts: TrainOptions, readonly source: BatchSource, adamw?: Partial<AdamWConfig>) {
    const f32 = model.params instanceof Float32Array ? (n: number, what: string) => model.alloc(n, what) as Float32Array : undefined;
    this.opt = new AdamW(model.numParams, { beta1: 0.9, beta2: 0.95, eps: 1e-8, ...adamw, weightDecay: opts.weightDecay }, f32);
    this.rng = new Rng(opts.seed + 1);
    this.tokens = new Int32Array(opts.batch * opts.seqLen);
    this.targets = new Int32Array(opts.batch * opts.seqLen);
  }

  schedule(): Schedule {
    const { lr, minLr, warmup, steps, schedule, decayFraction } = this.opts;
    return { kind: schedule ?? "cosine", maxLr: lr, minLr, warmupSteps: warmup, totalSteps: steps, decayFraction };
  }

  /** One update: accum micro-batches of forward + backward, clip, AdamW. */
  trainStep(): StepRecord {
    const { batch: B, seqLen: T, accum, clip } = this.opts;
    const m = this.model;
    m.zeroGrad();
    let sum = 0, count = 0;
    for (let a = 0; a < accum; a++) {
      this.source.fill(this.tokens, this.targets, B, T, this.rng);
      const r = m.forward(this.tokens, this.targets, B, T);
      // Each micro-batch contributes its mean loss / accum, so the update follows the mean over all.
      m.backward(r.count > 0 ? 1 / (r.count * accum) : 0);
      sum += r.sum;
      count += r.count;
    }
    const gradNorm = m.ops.clipGradNorm(m.grads, clip);
    const lr = learningRate(this.step, this.schedule());
    this.opt.update(m.params, m.grads, m.tensors, lr, m.ops.adamw);
    this.step++;
    return { step: this.step, loss: count ? sum / count : NaN, lr, gradNorm, tokens: count };
  }
}

export interface EvalResult {
  loss: number; // nats per scored token
  bitsPerByte: number; // total bits / total text bytes of the scored tokens (tokenizer-independent)
  perplexity: number; // exp(loss), per token of this tokenizer
  tokens: number;
  bytes: number;
}

/**
 * Scores ids in consecutive windows of T + 1 tokens (stride T), B windows per forward pass, up to
 * maxTokens scored tokens. bytesOf(id) is the number of text bytes token id stands for.
 */
export function evaluateText(model: TrainModel, ids: Uint16Array, bytesOf: (id: number) => number, B: number, T: number, maxTokens: number): EvalResult {
  const tokens = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  let nats = 0, count = 0, bytes = 0;
  let start = 0;
  while (count < maxTokens && start + 1 < ids.length) {
    targets.fill(-100);
    tokens.fill(0);
    for (let b = 0; b < B && start + 1 < ids.length; b++, start += T) {
      const n = Math.min(T, ids.length - 1 - start);
      for (let t = 0; t < n; t++) {
        tokens[b * T + t] = ids[start + t];
        targets[b * T + t] = ids[start + t + 1];
        bytes += bytesOf(ids[start + t + 1]);
      }
    }
    const r = model.forward(tokens, targets, B, T);
    nats += r.sum;
    count += r.count;
  }
  const loss = nats / Math.max(1, count);
  return { loss, bitsPerByte: nats / Math.LN2 / Math.max(1, bytes), perplexity: Math.exp(loss), tokens: count, bytes };
}
