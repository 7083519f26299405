// Token sampling: greedy, temperature, top-k, top-p (nucleus), min-p, repetition penalty,
// frequency / presence penalties (OpenAI's), seed.
// Order as in transformers' generate() and vLLM: penalties on the logits (repetition, then
// frequency and presence), then temperature, then the top-k / top-p / min-p filters on the
// resulting distribution, then one draw.
//
// Legend: V vocabulary size.

import { UserError } from "../errors.js";

export interface SamplingOptions {
  temperature?: number; // 0 = greedy (argmax); e.g. 0.8
  topK?: number; // keep the k most likely tokens; 0 = off
  topP?: number; // keep the smallest set with cumulative probability >= p; 1 = off
  minP?: number; // drop tokens with p < minP · p_max; 0 = off
  repetitionPenalty?: number; // CTRL's penalty on tokens already seen: logit / r if > 0 else logit · r; 1 = off
  frequencyPenalty?: number; // OpenAI's: logit -= f · (times the token was generated); 0 = off, e.g. 0.5
  presencePenalty?: number; // OpenAI's: logit -= p once the token was generated; 0 = off, e.g. 0.5
  seed?: number; // RNG seed; the same seed and inputs give the same tokens
}

export { seededRandom } from "../random.js";

/** Validates options; messages name the flag and the value. */
export function checkSampling(o: SamplingOptions): Required<SamplingOptions> {
  const r = { temperature: o.temperature ?? 0, topK: o.topK ?? 0, topP: o.topP ?? 1, minP: o.minP ?? 0, repetitionPenalty: o.repetitionPenalty ?? 1, frequencyPenalty: o.frequencyPenalty ?? 0, presencePenalty: o.presencePenalty ?? 0, seed: o.seed ?? Math.floor(Math.random() * 2 ** 31) };
  const bad = (name: string, v: number, want: string) => new UserError(`--${name} ${v}: expected ${want}`);
  if (!(r.temperature >= 0) || !Number.isFinite(r.temperature)) throw bad("temperature", r.temperature, "a finite number >= 0 (0 = greedy)");
  if (!Number.isInteger(r.topK) || r.topK < 0) throw bad("top-k", r.topK, "an integer >= 0 (0 = off)");
  if (!(r.topP > 0 && r.topP <= 1)) throw bad("top-p", r.topP, "a number in (0, 1]");
  if (!(r.minP >= 0 && r.minP < 1)) throw bad("min-p", r.minP, "a number in [0, 1)");
  if (!(r.repetitionPenalty > 0) || !Number.isFinite(r.repetitionPenalty)) throw bad("repetition-penalty", r.repetitionPenalty, "a positive number (1 = off)");
  if (!(Math.abs(r.frequencyPenalty) <= 2)) throw bad("frequency-penalty", r.frequencyPenalty, "a number in [-2, 2] (0 = off)");
  if (!(Math.abs(r.presencePenalty) <= 2)) throw bad("presence-penalty", r.presencePenalty, "a number in [-2, 2] (0 = off)");
  if (!Number.isInteger(r.seed)) throw bad("seed", r.seed, "an integer");
  return r;
}

/** Applies the repetition penalty in place to the logits of tokens in `seen`. */
export function applyRepetitionPenalty(logits: Float32Array, seen: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  for (const t of new Set(seen)) logits[t] = logits[t] > 0 ? logits[t] / penalty : logits[t] * penalty;
}

/**
 * OpenAI's frequency and presence penalties, in place: logit[t] -= frequency · count(t) + presence
 * for every token t in `generated` (the completion so far, not the prompt, as in vLLM).
 */
export function applyFrequencyPenalties(logits: Float32Array, generated: number[], frequency: number, presence: number): void {
  if (frequency === 0 && presence === 0) return;
  const counts = new Map<number, number>();
  for (const t of generated) counts.set(t, (counts.get(t) ?? 0) + 1);
  for (const [t, n] of counts) logits[t] -= frequency * n + presence;
}

/**
 * The filtered distribution after temperature, top-k, top-p and min-p: token ids and their
 * probabilities (renormalised), most likely first. Exposed for tests.
 */
export function filteredDistribution(logits: Float32Array, o: Required<SamplingOptions>): { ids: number[]; probs: number[] } {
  const V = logits.length;
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
  const max = logits[order[0]];
  let ids = o.topK > 0 ? order.slice(0, o.topK) : order;
  let w = ids.map((i) => Math.exp((logits[i] - max) / o.temperature));
  let z = w.reduce((a, b) => a + b, 0);
  if (o.topP < 1) {
    let cum = 0;
    let keep = ids.length;
    for (let i = 0; i < ids.length; i++) {
      cum += w[i] / z;
      if (cum >= o.topP) {
        keep = i + 1;
        break;
      }
    }
    ids = ids.slice(0, keep);
    w = w.slice(0, keep);
  }
  if (o.minP > 0) {
    const cut = o.minP * w[0];
    const keep = w.findIndex((x) => x < cut);
    if (keep > 0) {
      ids = ids.slice(0, keep);
      w = w.slice(0, keep);
    }
  }
  z = w.reduce((a, b) => a + b, 0);
  return { ids, probs: w.map((x) => x / z) };
}

/**
 * Picks the next token. `logits` [V] may be modified (penalties). `seen` (prompt and completion)
 * feeds the repetition penalty; `generated` (the completion only, default `seen`) feeds the
 * frequency and presence penalties.
 * @example sampleToken(logits, checkSampling({ temperature: 0 }), [], Math.random) // argmax
 */
export function sampleToken(logits: Float32Array, opts: Required<SamplingOptions>, seen: number[], random: () => number, generated: number[] = seen): number {
  applyRepetitionPenalty(logits, seen, opts.repetitionPenalty);
  applyFrequencyPenalties(logits, generated, opts.frequencyPenalty, opts.presencePenalty);
  if (opts.temperature === 0) {
    // Argmax, noting the first NaN on the way (NaN compares false, so it is never the best).
    let best = 0;
    let nan = Number.isNaN(logits[0]) ? 0 : -1;
    for (let i = 1; i < logits.length; i++) {
      const v = logits[i];
      if (v > logits[best]) best = i;
      else if (nan < 0 && v !== v) nan = i;
    }
    if (nan >= 0) throw nanLogits(nan);
    return best;
  }
  for (let i = 0; i < logits.length; i++) if (logits[i] !== logits[i]) throw nanLogits(i);
  const { ids, probs } = filteredDistribution(logits, opts);
  let u = random();
  for (let i = 0; i < ids.length; i++) {
    u -= probs[i];
    if (u < 0) return ids[i];
  }
  return ids[ids.length - 1];
}

/** Argmax would silently pick token 0 and sampling would stop; a checkpoint with inf/NaN weights does this. */
function nanLogits(first: number): UserError {
  return new UserError(`the model produced NaN logits (first at token ${first}); its weights hold inf/NaN values or its activations overflowed`);
}

/** A token's log-probability under the model and the most likely alternatives at its position. */
export interface TokenLogprob {
  token: number;
  logprob: number; // natural log, e.g. -0.105
  top: { token: number; logprob: number }[]; // the k most likely tokens, most likely first
}

/**
 * log softmax(logits)[token] and the top k entries, in float64. These are the model's raw
 * probabilities (before penalties, temperature and filters), as OpenAI and vLLM report them.
 * @example tokenLogprob(new Float32Array([0, Math.log(3)]), 1, 1) // {token: 1, logprob: log 0.75, top: [{token: 1, logprob: log 0.75}]}
 */
export function tokenLogprob(logits: Float32Array, token: number, k: number): TokenLogprob {
  const V = logits.length;
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (logits[i] > max) max = logits[i];
  let z = 0;
  for (let i = 0; i < V; i++) z += Math.exp(logits[i] - max);
  const logZ = max + Math.log(z);
  // Top k by insertion into a short sorted list: O(V·k) with k ≤ 20, no sort of V entries.
  const top: number[] = [];
  for (let i = 0; i < V && k > 0; i++) {
    if (top.length === k && logits[i] <= logits[top[k - 1]]) continue;
    let j = Math.min(top.length, k - 1);
    while (j > 0 && logits[top[j - 1]] < logits[i]) j--;
    top.splice(j, 0, i);
    if (top.length > k) top.pop();
  }
  return { token, logprob: logits[token] - logZ, top: top.map((t) => ({ token: t, logprob: logits[t] - logZ })) };
}
