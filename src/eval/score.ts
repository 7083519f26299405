// The numbers of an evaluation: per-token negative log-likelihood from a logits row, the KL divergence
// between two models' next-token distributions, and the running tally that turns them into the
// report (mean NLL with its standard error, perplexity, bits per byte, KL mean / p99, top-1 agreement).
// Everything accumulates in float64; logits arrive as float32 rows.

/** log Σ exp(row) (float64, max-shifted) and the index of the largest logit (the first, on ties). */
export function logSumExp(row: Float32Array): { lse: number; argmax: number } {
  let max = -Infinity, argmax = 0;
  for (let v = 0; v < row.length; v++) if (row[v] > max) { max = row[v]; argmax = v; }
  let sum = 0;
  for (let v = 0; v < row.length; v++) sum += Math.exp(row[v] - max);
  return { lse: max + Math.log(sum), argmax };
}

/**
 * KL(P_ref ‖ P) = Σ_v p_ref(v) (log p_ref(v) − log p(v)) in nats, for two logits rows with their
 * log-sum-exps. Non-negative up to rounding; clamped at 0.
 */
export function klDivergence(ref: Float32Array, refLse: number, row: Float32Array, lse: number): number {
  let kl = 0;
  for (let v = 0; v < ref.length; v++) {
    const lr = ref[v] - refLse;
    kl += Math.exp(lr) * (lr - (row[v] - lse));
  }
  return Math.max(0, kl);
}

export interface Tally {
  tokens: number;
  nats: number; // Σ NLL
  natsSq: number; // Σ NLL², for the standard error
  kl: number[]; // per token, with a reference
  top1: number; // tokens whose argmax equals the reference's
  refNats: number; // the reference's Σ NLL
}

export const newTally = (): Tally => ({ tokens: 0, nats: 0, natsSq: 0, kl: [], top1: 0, refNats: 0 });

export interface Scores {
  tokens: number; // targets scored
  bytes: number; // text bytes those targets stand for
  nll: number; // mean negative log-likelihood per token, nats
  nllStdErr: number; // its standard error (sample std / √tokens)
  perplexity: number; // exp(nll), per token
  bitsPerByte: number; // Σ NLL / ln 2 / bytes: comparable across tokenizers
}

export interface ReferenceScores {
  klMean: number; // mean KL(reference ‖ model), nats per token
  klP99: number; // 99th percentile (nearest rank) of the per-token KL
  klMax: number;
  top1Agreement: number; // fraction of tokens where both models' most likely next token agree
  referenceNll: number;
  referencePerplexity: number;
  referenceBitsPerByte: number;
}

/** The report of a tally whose targets stand for `bytes` bytes of text. */
export function summarize(t: Tally, bytes: number): Scores & Partial<ReferenceScores> {
  const n = Math.max(1, t.tokens);
  const nll = t.nats / n;
  const variance = t.tokens > 1 ? Math.max(0, (t.natsSq - t.nats * nll) / (t.tokens - 1)) : 0;
  const out: Scores & Partial<ReferenceScores> = {
    tokens: t.tokens, bytes, nll, nllStdErr: Math.sqrt(variance / n), perplexity: Math.exp(nll), bitsPerByte: t.nats / Math.LN2 / Math.max(1, bytes),
  };
  if (t.kl.length > 0) {
    const sorted = Float64Array.from(t.kl).sort();
    out.klMean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
    out.klP99 = sorted[Math.max(0, Math.ceil(0.99 * sorted.length) - 1)];
    out.klMax = sorted[sorted.length - 1];
    out.top1Agreement = t.top1 / t.kl.length;
    out.referenceNll = t.refNats / n;
    out.referencePerplexity = Math.exp(t.refNats / n);
    out.referenceBitsPerByte = t.refNats / Math.LN2 / Math.max(1, bytes);
  }
  return out;
}
