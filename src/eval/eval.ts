// Sliding-window evaluation of a token sequence (what llama.cpp's llama-perplexity and the strided
// perplexity of HF transformers do): windows of `context` tokens start every `stride` tokens; each
// window scores only the targets no earlier window scored, so every target after the first token is
// scored exactly once, with at least context − stride tokens of context (all of them in the first
// window). stride = context gives back-to-back windows: the trainer's evaluation (src/train/loop.ts).
//
// With a reference model the same windows run through both, and each scored target adds the KL
// divergence of the model's next-token distribution from the reference's and whether their top-1
// tokens agree (llama-perplexity's --kl-divergence report).
import type { KvDtype } from "../kernels/types.js";
import type { DecoderModel } from "../models/decoder.js";
import { UserError } from "../errors.js";
import { klDivergence, logSumExp, newTally, summarize, type ReferenceScores, type Scores, type Tally } from "./score.js";

export interface Window {
  start: number; // position of the window's first input token
  inputs: number; // input tokens: positions start … start + inputs − 1
  first: number; // first target scored (a position; target p is predicted from input p − 1)
  last: number; // last target scored, inclusive (= start + inputs)
}

/**
 * The windows over a sequence of n tokens whose targets 1 … min(n − 1, maxTargets) are scored.
 * Throws when stride is not in [1, context].
 */
export function slidingWindows(n: number, context: number, stride: number, maxTargets = Infinity): Window[] {
  if (!(context >= 1 && stride >= 1 && stride <= context)) throw new RangeError(`slidingWindows: need 1 <= stride (${stride}) <= context (${context})`);
  const lastTarget = Math.min(n - 1, maxTargets);
  const out: Window[] = [];
  let scored = 0; // last target position scored so far
  for (let start = 0; scored < lastTarget; start += stride) {
    const inputs = Math.min(context, lastTarget - start);
    const last = start + inputs;
    if (last > scored) out.push({ start, inputs, first: scored + 1, last });
    scored = last;
  }
  return out;
}

export interface EvalModel {
  model: DecoderModel;
  kvDtype: KvDtype;
}

export interface EvalOptions {
  context: number;
  stride: number;
  maxTokens?: number; // score at most this many targets (the first ones)
  onProgress?: (scored: number, total: number) => void;
}

export type EvalScores = Scores & Partial<ReferenceScores> & { windows: number; seconds: number; tokensPerSecond: number };

/**
 * Scores ids[1 …] under `m` (and compares with `reference` when given). bytesOf(k) is the number of
 * text bytes the first k targets stand for, which makes bits per byte comparable across tokenizers.
 */
export function evaluateTokens(ids: ArrayLike<number>, bytesOf: (targets: number) => number, m: EvalModel, opts: EvalOptions, reference?: EvalModel): EvalScores {
  const { context, stride } = opts;
  if (ids.length < 2) throw new UserError(`eval: the text is ${ids.length} token${ids.length === 1 ? "" : "s"} long; at least 2 are needed (one to predict from, one to score)`);
  for (const x of reference ? [m, reference] : [m]) {
    if (context > x.model.maxContext) throw new UserError(`eval: context ${context} exceeds the model's maximum of ${x.model.maxContext} positions`);
  }
  if (reference && reference.model.spec.vocabSize !== m.model.spec.vocabSize) {
    throw new UserError(`eval: the reference has ${reference.model.spec.vocabSize} tokens in its vocabulary and the model ${m.model.spec.vocabSize}; a KL divergence needs the same vocabulary`);
  }
  const windows = slidingWindows(ids.length, context, stride, opts.maxTokens);
  const total = windows.reduce((a, w) => a + w.last - w.first + 1, 0);
  const V = m.model.spec.vocabSize;
  const t: Tally = newTally();
  const t0 = performance.now();
  opts.onProgress?.(0, total);
  for (const w of windows) {
    const input = Array.from({ length: w.inputs }, (_, i) => ids[w.start + i]);
    const logits = windowLogits(m, input);
    const refLogits = reference ? windowLogits(reference, input) : null;
    for (let p = w.first; p <= w.last; p++) {
      const r = p - 1 - w.start; // the logits row that predicts position p
      const row = logits.subarray(r * V, (r + 1) * V);
      const { lse, argmax } = logSumExp(row);
      const nll = lse - row[ids[p]];
      t.tokens++;
      t.nats += nll;
      t.natsSq += nll * nll;
      if (refLogits) {
        const ref = refLogits.subarray(r * V, (r + 1) * V);
        const s = logSumExp(ref);
        t.kl.push(klDivergence(ref, s.lse, row, lse));
        t.top1 += s.argmax === argmax ? 1 : 0;
        t.refNats += s.lse - ref[ids[p]];
      }
    }
    opts.onProgress?.(t.tokens, total);
  }
  const seconds = (performance.now() - t0) / 1000;
  return { ...summarize(t, bytesOf(t.tokens)), windows: windows.length, seconds, tokensPerSecond: t.tokens / Math.max(seconds, 1e-9) };
}

/** Logits [n, V] of one window run from an empty cache of the given storage. */
function windowLogits(m: EvalModel, input: number[]): Float32Array {
  const cache = m.model.createCache({ maxTokens: input.length, dtype: m.kvDtype });
  try {
    return m.model.forward(cache, [cache.addSequence()], [input], "all");
  } finally {
    cache.dispose();
  }
}
