// Chart builders: pure functions from a spec (and a plan) to Vega-Lite specs. The CLI renders them to
// SVG/PNG (render.ts, node only); the web page renders the same specs in the browser.
//   cacheVsContextChart: KV cache vs context for MHA / GQA / MQA variants (the seed's plot), log axes
//   heatmapChart:        batch × context feasibility on a GPU, one panel per variant (the seed's heatmap)
//   throughputChart:     roofline decode tokens/s vs batch, one line per variant
import type { TopLevelSpec } from "vega-lite";
import { kvCacheBytes } from "../kvcache/bytes.js";
import type { ModelSpec } from "../config/types.js";
import { kvHeadsLabel, withKvHeads } from "../config/variant.js";
import { weightBytes } from "./params.js";
import { decodeEstimate, type PlanResult } from "./plan.js";

const GiB = 1024 ** 3;
const FONT = "DejaVu Sans, Liberation Sans, Arial, sans-serif";
const CONFIG = { font: FONT, view: { stroke: null }, axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11, titleFontSize: 12 } };

export type ChartKind = "cache-vs-context" | "heatmap" | "throughput";
export const CHART_KINDS: ChartKind[] = ["cache-vs-context", "heatmap", "throughput"];

/** KV-head counts to chart: the requested ones, else MHA, the configured count and MQA. */
export function chartKvHeads(spec: ModelSpec, kvHeads: number[] = []): number[] {
  // The configured count is always drawn, so a GQA model shows itself beside its MHA/MQA what-ifs.
  const ks = kvHeads.length ? (spec.mla ? kvHeads : [...kvHeads, spec.numKvHeads]) : [spec.numHeads, spec.numKvHeads, 1];
  return [...new Set(ks)].sort((a, b) => b - a);
}

function variantSpec(spec: ModelSpec, k: number): ModelSpec {
  return !spec.mla && k === spec.numKvHeads ? spec : withKvHeads(spec, k);
}

const labelOf = (spec: ModelSpec, k: number) => `${kvHeadsLabel(spec.numHeads, k)} (${k} KV head${k === 1 ? "" : "s"})`;

/** Powers of two from `from` to `to` inclusive (to is added when it is not a power of two). */
export function powersOfTwo(from: number, to: number): number[] {
  const out: number[] = [];
  for (let x = from; x <= to; x *= 2) out.push(x);
  if (out[out.length - 1] !== to && to > from) out.push(to);
  return out;
}

export interface CacheChartOptions {
  kvHeads?: number[]; // default: MHA, as configured, MQA
  kvDtype?: string; // default "f16"
  batch?: number; // default 1
  contexts?: number[]; // default 512 … max(maxPositions, 131072)
  budgetBytes?: number | null; // draws a horizontal rule, e.g. a GPU's KV budget
}

/** KV cache (GiB, log) vs context (tokens, log₂) for each KV-head variant. */
export function cacheVsContextChart(spec: ModelSpec, opts: CacheChartOptions = {}): TopLevelSpec {
  const { kvDtype = "f16", batch = 1 } = opts;
  const contexts = opts.contexts ?? powersOfTwo(512, Math.max(spec.maxPositions, 131072));
  const values = chartKvHeads(spec, opts.kvHeads).flatMap((k) => {
    const s = variantSpec(spec, k);
    return contexts.map((context) => ({ variant: labelOf(spec, k), kvHeads: k, context, gib: kvCacheBytes(s, { tokens: context, dtype: kvDtype, batch }) / GiB }));
  });
  const layers: unknown[] = [
    {
      mark: { type: "line", point: true, strokeWidth: 2 },
      encoding: {
        x: { field: "context", type: "quantitative", scale: { type: "log", base: 2 }, axis: { title: "context (tokens)", values: contexts.filter((_, i) => i % 2 === 0) } },
        y: { field: "gib", type: "quantitative", scale: { type: "log" }, axis: { title: `KV cache (GiB, ${kvDtype}, batch ${batch})` } },
        color: { field: "variant", type: "nominal", sort: { field: "kvHeads", order: "descending" }, title: "attention" },
        tooltip: [{ field: "variant" }, { field: "context" }, { field: "gib", format: ".3f", title: "GiB" }],
      },
    },
  ];
  if (opts.budgetBytes && opts.budgetBytes > 0) {
    layers.push({
      data: { values: [{ gib: opts.budgetBytes / GiB, label: `KV budget ${(opts.budgetBytes / GiB).toFixed(1)} GiB` }] },
      layer: [
        { mark: { type: "rule", strokeDash: [6, 4], color: "#555" }, encoding: { y: { field: "gib", type: "quantitative" } } },
        { mark: { type: "text", align: "left", dx: 4, dy: -6, color: "#333" }, encoding: { y: { field: "gib", type: "quantitative" }, x: { value: 0 }, text: { field: "label" } } },
      ],
    });
  }
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: `${spec.name}: KV cache vs context`, subtitle: `${spec.numLayers} layers, ${spec.numHeads} query heads, head dim ${spec.headDim}` },
    width: 520,
    height: 320,
    data: { values },
    layer: layers,
    config: CONFIG,
  } as TopLevelSpec;
}

export interface HeatmapOptions {
  kvHeads?: number[];
  batches?: number[]; // default 1, 2, 4 … 256
  contexts?: number[]; // default 512 … 131072
}

/** Batch × context feasibility on the plan's GPU(s), one panel per KV-head variant. */
export function heatmapChart(spec: ModelSpec, result: PlanResult, opts: HeatmapOptions = {}): TopLevelSpec {
  const o = result.options;
  const batches = opts.batches ?? powersOfTwo(1, 256);
  const contexts = opts.contexts ?? powersOfTwo(512, 131072);
  const values = heatmapCells(spec, result, { ...opts, batches, contexts });
  const beyond = contexts.some((c) => c > spec.maxPositions);
  const [within, outside] = positionRanges(spec);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: `${spec.name} on ${o.gpus} × ${o.gpu.name}: which batch × context fits`,
      subtitle: [
        `KV ${o.kvDtype}, weights ${o.weightDtype}, tp ${o.tp}, gpu_memory_utilization ${o.gpuMemoryUtilization}; cell text = KV cache per GPU in GiB`,
        ...(beyond ? [`faded cells: context beyond the model's max_position_embeddings (${spec.maxPositions}); memory only, quality not guaranteed`] : []),
      ],
    },
    data: { values },
    facet: { column: { field: "variant", type: "nominal", sort: { field: "kvHeads", order: "descending" }, title: null, header: { labelFontSize: 13 } } },
    spec: {
      width: 30 * contexts.length,
      height: 26 * batches.length,
      layer: [
        {
          mark: { type: "rect", stroke: "white", strokeWidth: 1 },
          encoding: {
            x: { field: "context", type: "ordinal", sort: contexts, axis: { title: "context (tokens)", labelAngle: -45, labelExpr: "datum.value >= 1024 ? datum.value / 1024 + 'K' : datum.value" } },
            y: { field: "batch", type: "ordinal", sort: [...batches].reverse(), axis: { title: "batch (sequences)" } },
            color: { field: "status", type: "nominal", scale: { domain: ["fits", "does not fit", "weights do not fit"], range: ["#4c9a5b", "#d9534f", "#888888"] }, title: null },
            // Contexts the model was not trained for are faded, with their own legend entry.
            opacity: { field: "range", type: "ordinal", sort: [within, outside], scale: { domain: [within, outside], range: [1, 0.35] }, title: null, legend: beyond ? { labelLimit: 480 } : null },
            tooltip: [{ field: "variant" }, { field: "batch" }, { field: "context" }, { field: "gibPerGpu", format: ".2f", title: "KV GiB per GPU" }, { field: "status" }, { field: "range" }],
          },
        },
        {
          mark: { type: "text", fontSize: 8, color: "white" },
          encoding: {
            x: { field: "context", type: "ordinal", sort: contexts },
            y: { field: "batch", type: "ordinal", sort: [...batches].reverse() },
            text: { field: "short" },
          },
        },
      ],
    },
    config: CONFIG,
  } as TopLevelSpec;
}

export interface HeatmapCell {
  variant: string;
  kvHeads: number;
  batch: number;
  context: number;
  kvBytesPerGpu: number; // paged, per GPU, for the replica's share of the batch
  gibPerGpu: number;
  fits: boolean;
  status: "fits" | "does not fit" | "weights do not fit";
  short: string; // cell label
  beyondMaxPositions: boolean; // context > the model's max_position_embeddings (faded in the chart)
  range: string; // the legend label for beyondMaxPositions
}

/** Legend labels for contexts within / beyond the model's max_position_embeddings. */
export function positionRanges(spec: ModelSpec): [string, string] {
  return [`context ≤ ${spec.maxPositions} (max positions)`, `context > ${spec.maxPositions}: beyond max positions`];
}

/** The heatmap's data: one cell per variant × batch × context, using the plan's per-GPU KV budget. */
export function heatmapCells(spec: ModelSpec, result: PlanResult, opts: HeatmapOptions = {}): HeatmapCell[] {
  const o = result.options;
  const batches = opts.batches ?? powersOfTwo(1, 256);
  const contexts = opts.contexts ?? powersOfTwo(512, 131072);
  const ks = chartKvHeads(spec, opts.kvHeads ?? o.kvHeads);
  const [within, outside] = positionRanges(spec);
  return ks.flatMap((k) => {
    const s = variantSpec(spec, k);
    // Weights (and so the budget) depend on the variant: fewer KV heads also shrink the K/V projections.
    const budget = budgetFor(s, result);
    return batches.flatMap((batch) =>
      contexts.map((context): HeatmapCell => {
        const bytes = kvCacheBytes(s, { tokens: context, dtype: o.kvDtype, batch: Math.ceil(batch / o.replicas), tp: o.tp, blockSize: o.blockSize, applyWindow: o.applyWindow });
        const fits = budget > 0 && bytes <= budget;
        const gib = bytes / GiB;
        return {
          variant: labelOf(spec, k),
          kvHeads: k,
          batch,
          context,
          kvBytesPerGpu: bytes,
          gibPerGpu: gib,
          fits,
          status: budget <= 0 ? "weights do not fit" : fits ? "fits" : "does not fit",
          short: gib >= 100 ? gib.toFixed(0) : gib >= 10 ? gib.toFixed(0) : gib >= 1 ? gib.toFixed(1) : gib.toFixed(2),
          beyondMaxPositions: context > spec.maxPositions,
          range: context > spec.maxPositions ? outside : within,
        };
      }),
    );
  });
}

function budgetFor(s: ModelSpec, result: PlanResult): number {
  const o = result.options;
  if (o.kvBudgetBytes !== null) return o.kvBudgetBytes;
  const v = result.variants.find((x) => x.numKvHeads === s.numKvHeads && x.attention !== "mla");
  if (v) return v.kvBudgetBytesPerGpu;
  if (s.numKvHeads === result.numKvHeads && !!s.mla === !!result.model.mla) return result.kvBudgetBytesPerGpu;
  // Not planned yet: same budget rule, with this variant's weights.
  return result.memory.usableBytesPerGpu - result.memory.activationBytesPerGpu - weightsPerGpu(s, result);
}

const weightsPerGpu = (s: ModelSpec, r: PlanResult) => weightBytes(s, r.options.weightDtype, r.options.tp).perGpu;

export interface ThroughputOptions {
  kvHeads?: number[];
  batches?: number[]; // default 1, 2, 4 … 512
}

/** Roofline decode tokens/s vs batch at the plan's context; batches that do not fit are left out. */
export function throughputChart(spec: ModelSpec, result: PlanResult, opts: ThroughputOptions = {}): TopLevelSpec {
  const o = result.options;
  const batches = opts.batches ?? powersOfTwo(1, 512);
  const values = chartKvHeads(spec, opts.kvHeads ?? o.kvHeads).flatMap((k) => {
    const s = variantSpec(spec, k);
    const budget = budgetFor(s, result);
    return batches
      .filter((b) => budget > 0 && kvCacheBytes(s, { tokens: o.context, dtype: o.kvDtype, batch: Math.ceil(b / o.replicas), tp: o.tp, blockSize: o.blockSize, applyWindow: o.applyWindow }) <= budget)
      .map((batch) => {
        const d = decodeEstimate(s, o, batch);
        return { variant: labelOf(spec, k), kvHeads: k, batch, tokensPerSecond: d.tokensPerSecond, bound: d.bound };
      });
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: `${spec.name}: roofline decode throughput at ${o.context} tokens of context`, subtitle: `${o.gpus} × ${o.gpu.name}, tp ${o.tp}; a line ends at the largest batch that fits` },
    width: 520,
    height: 320,
    data: { values },
    mark: { type: "line", point: true, strokeWidth: 2 },
    encoding: {
      x: { field: "batch", type: "quantitative", scale: { type: "log", base: 2 }, axis: { title: "batch (sequences)" } },
      y: { field: "tokensPerSecond", type: "quantitative", scale: { type: "log" }, axis: { title: "decode tokens/s (all sequences)" } },
      color: { field: "variant", type: "nominal", sort: { field: "kvHeads", order: "descending" }, title: "attention" },
      shape: { field: "bound", type: "nominal", title: "bound" },
      tooltip: [{ field: "variant" }, { field: "batch" }, { field: "tokensPerSecond", format: ",.0f" }, { field: "bound" }],
    },
    config: CONFIG,
  } as TopLevelSpec;
}

/** The chart kind a file name asks for: it must contain "heatmap", "throughput" or "cache"/"context". */
export function chartKindFromPath(path: string): ChartKind | null {
  const base = path.split(/[\\/]/).pop()!.toLowerCase();
  if (base.includes("heatmap") || base.includes("feasib")) return "heatmap";
  if (base.includes("throughput") || base.includes("decode")) return "throughput";
  if (base.includes("cache") || base.includes("context")) return "cache-vs-context";
  return null;
}

/** Builds the chart of a kind for a planned spec. */
export function buildChart(kind: ChartKind, spec: ModelSpec, result: PlanResult): TopLevelSpec {
  const o = result.options;
  if (kind === "heatmap") return heatmapChart(spec, result);
  if (kind === "throughput") return throughputChart(spec, result);
  return cacheVsContextChart(spec, { kvHeads: o.kvHeads, kvDtype: o.kvDtype, batch: o.batch });
}
