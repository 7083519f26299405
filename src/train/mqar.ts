// Multi-query associative recall (MQAR), generated the way Zoology's
// zoology/data/multiquery_ar.py does (Arora, Eyuboglu et al. 2023), with mqa's seeded PRNG in place
// of numpy's:
//  - keys are drawn without replacement from [1, V/2), values from [V/2, V);
//  - the first 2·D positions are k1 v1 … kD vD;
//  - each key is queried once, at position 2·D + 2·gap, where the D gaps are drawn without
//    replacement from [0, space), space = (T − 2D)/2, with p(gap = i−1) ∝ a·i^(a−1), a = 0.01;
//  - the label at a query position is that key's value; every other label is −100 (ignored);
//  - every other input position (the zeros) gets a uniform random token from [0, V)
//    (random_non_queries = True, the reference default).
// Legend: V vocab, T sequence length, D key-value pairs.
import type { BatchSource } from "./loop.js";
import type { TrainModel } from "./model.js";
import { Rng } from "../random.js";

export interface MqarOptions {
  vocabSize: number; // V, e.g. 8192 in Zoology; must exceed T
  seqLen: number; // T, even
  numPairs: number; // D; needs 4·D ≤ T
  powerA?: number; // a, default 0.01
  randomNonQueries?: boolean; // default true
}

/** Weighted sampling of k distinct indices from [0, p.length) (numpy's choice(replace=False, p=p)). */
function choiceNoReplace(p: Float64Array, k: number, rng: Rng): number[] {
  const w = Float64Array.from(p);
  const out: number[] = [];
  for (let j = 0; j < k; j++) {
    let total = 0;
    for (let i = 0; i < w.length; i++) total += w[i];
    let u = rng.uniform() * total;
    let pick = w.length - 1;
    for (let i = 0; i < w.length; i++) {
      if (w[i] === 0) continue;
      u -= w[i];
      if (u < 0) {
        pick = i;
        break;
      }
    }
    while (w[pick] === 0) pick--; // float edge case: fall back to the last remaining index
    out.push(pick);
    w[pick] = 0;
  }
  return out;
}

function distinct(lo: number, hi: number, k: number, rng: Rng): number[] {
  const pool = Array.from({ length: hi - lo }, (_, i) => lo + i);
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(pool.length - i);
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, k);
}

/** One example: inputs[T] and labels[T] (−100 except at the D query positions). */
export function mqarExample(o: MqarOptions, rng: Rng, inputs: Int32Array, labels: Int32Array): void {
  const { vocabSize: V, seqLen: T, numPairs: D } = o;
  const a = o.powerA ?? 0.01;
  if (T % 2 !== 0) throw new Error(`mqar: seqLen ${T} must be even`);
  if (V <= T) throw new Error(`mqar: vocabSize ${V} must exceed seqLen ${T}`);
  if (4 * D > T) throw new Error(`mqar: ${D} pairs need seqLen ≥ ${4 * D}, got ${T}`);
  const context = 2 * D;
  const keys = distinct(1, Math.floor(V / 2), D, rng);
  const values = distinct(Math.floor(V / 2), V, D, rng);
  const space = (T - context) / 2;
  const p = new Float64Array(space);
  for (let i = 1; i <= space; i++) p[i - 1] = a * Math.pow(i, a - 1);
  const gaps = choiceNoReplace(p, D, rng);
  // examples = [kvs, queries] with length T + 1; inputs = examples[:-1], labels = labels_full[1:].
  const full = new Int32Array(T + 1);
  const fullLabels = new Int32Array(T + 1).fill(-100);
  for (let d = 0; d < D; d++) {
    full[2 * d] = keys[d];
    full[2 * d + 1] = values[d];
    full[context + 2 * gaps[d]] = keys[d];
    fullLabels[context + 2 * gaps[d] + 1] = values[d];
  }
  for (let t = 0; t < T; t++) {
    inputs[t] = full[t];
    labels[t] = fullLabels[t + 1];
  }
  if (o.randomNonQueries ?? true) {
    for (let t = 0; t < T; t++) if (inputs[t] === 0) inputs[t] = rng.int(V);
  }
}

/** Training batches that mix several pair counts (one count per sequence, drawn uniformly). */
export class MqarBatches implements BatchSource {
  constructor(readonly vocabSize: number, readonly pairCounts: number[], readonly powerA = 0.01) {}
  fill(tokens: Int32Array, targets: Int32Array, B: number, T: number, rng: Rng): void {
    for (let b = 0; b < B; b++) {
      const D = this.pairCounts[rng.int(this.pairCounts.length)];
      mqarExample({ vocabSize: this.vocabSize, seqLen: T, numPairs: D, powerA: this.powerA }, rng, tokens.subarray(b * T, (b + 1) * T), targets.subarray(b * T, (b + 1) * T));
    }
  }
}

/** Accuracy (argmax = value) over the query positions of `examples` fresh examples with D pairs. */
export function mqarAccuracy(model: TrainModel, D: number, examples: number, B: number, T: number, seed: number): number {
  const V = model.cfg.vocabSize;
  const rng = new Rng(seed);
  const tokens = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  let right = 0, total = 0;
  for (let done = 0; done < examples; done += B) {
    for (let b = 0; b < B; b++) mqarExample({ vocabSize: V, seqLen: T, numPairs: D }, rng, tokens.subarray(b * T, (b + 1) * T), targets.subarray(b * T, (b + 1) * T));
    model.forward(tokens, targets, B, T);
    const probs = model.lastProbs();
    for (let n = 0; n < B * T; n++) {
      if (targets[n] < 0) continue;
      let best = 0;
      for (let v = 1; v < V; v++) if (probs[n * V + v] > probs[n * V + best]) best = v;
      right += best === targets[n] ? 1 : 0;
      total++;
    }
  }
  return right / total;
}
