// Attention maps of a prompt: the softmax weights each query position gives each key position, for
// chosen layers and query heads, taken from the model's own forward (the WASM fast path when the
// kernels are WASM; see referenceAttentionProbs), plus the Vega-Lite picture and the head-divergence
// measure of docs/attention-maps.md. mqa attention (src/cli/attention.ts) only parses flags.
//
// Legend: T prompt tokens, L layers, H query heads, K kv heads, G = H/K; kv(h) = floor(h / G).
import type { TopLevelSpec } from "vega-lite";
import { OptionError } from "../errors.js";
import type { AttentionProbs } from "../attention/attention.js";
import type { KvDtype } from "../kernels/types.js";
import type { DecoderModel } from "../models/decoder.js";

export interface AttentionMapOptions {
  layers?: number[]; // e.g. [0, 3]; default every layer
  heads?: number[]; // query heads, e.g. [0, 1, 2]; default every head of each chosen layer
  kvDtype?: KvDtype; // KV cache storage, default "f32"
  decodeSteps?: number; // the last decodeSteps tokens go one per forward (decode), default 0: one prefill
}

export interface HeadMap {
  head: number; // query head h
  kvHead: number; // the kv head it reads, floor(h / G)
  probs: number[][]; // [T, T]: probs[i][j] = weight query position i gives key position j (0 where masked)
}

export interface LayerMap {
  layer: number;
  numKvHeads: number; // K of this layer
  window: number | null; // sliding window of this layer (keys j > i - window), null = global
  heads: HeadMap[];
}

export interface AttentionMaps {
  tokens: number[]; // [T] token ids
  layers: LayerMap[];
}

/**
 * Runs `tokens` through `model` on a fresh KV cache and returns the attention probabilities of the
 * chosen layers and heads:
 *
 *   probs[i][j] = softmax_j( scale · q_i,h · k_j,kv(h) )  over j <= i (and j > i - window), else 0
 *
 * Each row sums to 1. Option errors name the field (OptionError).
 * @example
 * const rt = await openRuntime("models/default");
 * const maps = attentionMaps(rt.model, rt.tokenizer!.encode("In the beginning"), { layers: [0], heads: [0, 1] });
 * maps.layers[0].heads[1].probs[2]; // [p0, p1, p2, 0, ...]: what position 2 attends to in head 1
 */
export function attentionMaps(model: DecoderModel, tokens: number[], opts: AttentionMapOptions = {}): AttentionMaps {
  const { spec } = model;
  const T = tokens.length;
  if (T === 0) throw new OptionError("tokens", "tokens: the prompt is empty; give at least one token");
  if (T > model.maxContext) throw new OptionError("tokens", `tokens: ${T} prompt tokens exceed the model's context of ${model.maxContext}`);
  const bad = tokens.find((id) => !Number.isInteger(id) || id < 0 || id >= spec.vocabSize);
  if (bad !== undefined) throw new OptionError("tokens", `tokens: id ${bad} is outside the vocabulary [0, ${spec.vocabSize})`);
  const layers = unique(opts.layers ?? spec.layers.map((_, l) => l));
  for (const l of layers) {
    if (!Number.isInteger(l) || l < 0 || l >= spec.numLayers) throw new OptionError("layers", `layers: ${l} is not a layer of this model; it has ${spec.numLayers} (0 to ${spec.numLayers - 1})`);
  }
  const heads = new Map<number, number[]>();
  for (const l of layers) {
    const H = spec.layers[l].numHeads;
    const hs = unique(opts.heads ?? Array.from({ length: H }, (_, h) => h));
    for (const h of hs) {
      if (!Number.isInteger(h) || h < 0 || h >= H) throw new OptionError("heads", `heads: ${h} is not a query head of layer ${l}; it has ${H} (0 to ${H - 1})`);
    }
    heads.set(l, hs);
  }
  const decodeSteps = opts.decodeSteps ?? 0;
  if (!Number.isInteger(decodeSteps) || decodeSteps < 0 || decodeSteps >= T) throw new OptionError("decodeSteps", `decodeSteps: ${decodeSteps} is not an integer from 0 to ${T - 1} (the prompt has ${T} tokens and the first goes in a prefill)`);

  // maps[l][h] = [T, T] rows, filled as each layer's attention hands over its probabilities.
  const maps = new Map<number, Map<number, Float64Array[]>>();
  for (const l of layers) maps.set(l, new Map(heads.get(l)!.map((h) => [h, Array.from({ length: T }, () => new Float64Array(T))])));
  const onProbs = (layer: number, probs: AttentionProbs[]) => {
    for (const p of probs) {
      const row = maps.get(layer)!.get(p.head)![p.pos];
      p.keyPositions.forEach((j, s) => (row[j] = p.probs[s]));
    }
  };
  const cache = model.createCache({ dtype: opts.kvDtype ?? "f32", maxTokens: T });
  const saved = model.probsRequest;
  model.probsRequest = { heads, onProbs };
  try {
    const seq = cache.addSequence();
    const split = T - decodeSteps;
    model.forward(cache, [seq], [tokens.slice(0, split)], "last");
    for (let t = split; t < T; t++) model.forward(cache, [seq], [[tokens[t]]], "last");
  } finally {
    model.probsRequest = saved;
    cache.dispose();
  }
  return {
    tokens: [...tokens],
    layers: layers.map((l) => {
      const { numHeads: H, numKvHeads: K, window } = spec.layers[l];
      return {
        layer: l, numKvHeads: K, window,
        heads: heads.get(l)!.map((h) => ({ head: h, kvHead: Math.floor(h / (H / K)), probs: maps.get(l)!.get(h)!.map((r) => Array.from(r)) })),
      };
    }),
  };
}

function unique(xs: number[]): number[] {
  return [...new Set(xs)];
}

/** Jensen–Shannon divergence of two distributions, in bits: 0 for equal, 1 for disjoint supports. */
export function jsDivergence(p: ArrayLike<number>, q: ArrayLike<number>): number {
  let d = 0;
  for (let j = 0; j < p.length; j++) {
    const m = 0.5 * (p[j] + q[j]);
    if (p[j] > 0) d += 0.5 * p[j] * Math.log2(p[j] / m);
    if (q[j] > 0) d += 0.5 * q[j] * Math.log2(q[j] / m);
  }
  return Math.max(0, d);
}

export interface HeadDivergence {
  layer: number;
  withinGroup: number | null; // mean JS divergence (bits) over pairs of heads sharing a kv head; null if no such pair
  betweenGroups: number | null; // the same over pairs of heads of different kv heads; null if no such pair
  pairsWithin: number;
  pairsBetween: number;
  rows: number; // query rows averaged over (rows 1 .. T-1: row 0 sees one key, every head gives it 1)
}

/**
 * How differently a layer's heads attend: for every pair of heads, the JS divergence of their rows,
 * averaged over query rows 1 .. T-1, then averaged over the pairs that share a kv head and over the
 * pairs that do not. Sharing K/V forces nothing on the weights: each head has its own queries.
 */
export function headDivergence(layer: LayerMap): HeadDivergence {
  const T = layer.heads[0]?.probs.length ?? 0;
  let within = 0, between = 0, nw = 0, nb = 0;
  for (let a = 0; a < layer.heads.length; a++) {
    for (let b = a + 1; b < layer.heads.length; b++) {
      const [x, y] = [layer.heads[a], layer.heads[b]];
      let d = 0;
      for (let i = 1; i < T; i++) d += jsDivergence(x.probs[i], y.probs[i]);
      d /= Math.max(1, T - 1);
      if (x.kvHead === y.kvHead) (within += d), nw++;
      else (between += d), nb++;
    }
  }
  return { layer: layer.layer, withinGroup: nw ? within / nw : null, betweenGroups: nb ? between / nb : null, pairsWithin: nw, pairsBetween: nb, rows: Math.max(0, T - 1) };
}

export interface MapChartOptions {
  title?: string;
  cellPixels?: number; // side of one query × key cell, default 14 (at most 320 pixels per heatmap)
}

/**
 * One heatmap per (layer, head): rows are query tokens, columns key tokens, colour the weight.
 * Each layer is a row of the grid; within it the heads sit in boxes titled by the kv head they
 * share. `labels[i]` is token i's text (decoded piece).
 */
export function attentionMapChart(maps: AttentionMaps, labels: string[], opts: MapChartOptions = {}): TopLevelSpec {
  const T = maps.tokens.length;
  if (labels.length !== T) throw new OptionError("labels", `labels: ${labels.length} token labels for ${T} tokens`);
  const side = Math.min(320, (opts.cellPixels ?? 14) * T);
  // Vega-Lite sorts ordinal fields; keep positions as numbers and map them to token text on the axes.
  const text = JSON.stringify(labels.map((s, i) => `${i}:${s.replace(/\s/g, "·")}`));
  const axis = (title: string) => ({ title, labelExpr: `${text}[datum.value]`, labelFontSize: 8, labelAngle: title === "key" ? -90 : 0 });
  const values: { layer: number; head: number; kv: number; i: number; j: number; p: number }[] = [];
  for (const l of maps.layers) for (const h of l.heads) h.probs.forEach((row, i) => row.forEach((p, j) => j <= i && values.push({ layer: l.layer, head: h.head, kv: h.kvHead, i, j, p })));
  const heatmap = (layer: number, kv: number) => ({
    title: { text: `KV head ${kv}`, fontSize: 11 },
    transform: [{ filter: `datum.layer === ${layer} && datum.kv === ${kv}` }],
    facet: { column: { field: "head", type: "ordinal", header: { labelExpr: "'head ' + datum.value", title: null } } },
    spec: {
      width: side,
      height: side,
      mark: { type: "rect" },
      encoding: {
        x: { field: "j", type: "ordinal", axis: axis("key"), scale: { domain: range(T) } },
        y: { field: "i", type: "ordinal", axis: axis("query"), scale: { domain: range(T) } },
        color: { field: "p", type: "quantitative", scale: { scheme: "viridis", domain: [0, 1] }, title: "weight" },
        tooltip: [{ field: "head" }, { field: "i", title: "query" }, { field: "j", title: "key" }, { field: "p", format: ".3f" }],
      },
    },
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: opts.title ?? "Attention weights (query row → key column)",
    data: { values },
    vconcat: maps.layers.map((l) => ({
      title: { text: `layer ${l.layer} (${l.numKvHeads} KV heads${l.window !== null ? `, window ${l.window}` : ""})`, anchor: "start" },
      hconcat: unique(l.heads.map((h) => h.kvHead)).map((kv) => heatmap(l.layer, kv)),
    })),
    config: { view: { stroke: null }, concat: { spacing: 24 } },
  } as unknown as TopLevelSpec;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
