// The seed article's tables and figures, recomputed by the planner (docs/seed-tables.md). Pure: returns the
// markdown and the chart specs; src/cli/seed-tables.ts writes the files.
// Where the seed's own numbers are wrong, the table says so beside the right ones; every claim and its verdict is
// computed in src/planner/seed-claims.ts and listed in §7.
import type { TopLevelSpec } from "vega-lite";
import { kvCacheBytes, kvBytesPerToken } from "../kvcache/bytes.js";
import { presetSpec } from "../config/presets.js";
import type { ModelSpec } from "../config/types.js";
import { kvHeadsLabel, withKvHeads } from "../config/variant.js";
import { cacheVsContextChart, heatmapCells, heatmapChart } from "./charts.js";
import { paramCounts } from "./params.js";
import { plan } from "./plan.js";
import { bin, claimNote, exactMaxBatch, seedClaims, type SeedClaim } from "./seed-claims.js";

export const SEED_COMMAND = "npm run build && npx mqa seed-tables";
export const HEATMAP_FILE = "seed-heatmap-a100-80gb.png";
export const CACHE_CHART_FILE = "seed-cache-vs-context.png";

const n = (x: number) => x.toLocaleString("en-US");
/** A markdown table; columns whose cells all start with a digit are right-aligned. */
const md = (header: string[], rows: string[][]) => {
  const numeric = header.map((_, i) => rows.every((r) => /^\d/.test(r[i])));
  return [`| ${header.join(" | ")} |`, `|${numeric.map((x) => (x ? "---:" : "---")).join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
};

interface Shape {
  label: string; // e.g. "7B (32 layers × 32 heads × 128)"
  spec: ModelSpec; // MHA version of the shape
}

/** The seed's three scales as MHA shapes (the Llama-2 configs with every head a KV head). */
export function seedShapes(): Shape[] {
  return [
    { label: "7B (32 L × 32 H × 128)", spec: presetSpec("llama-2-7b") },
    { label: "13B (40 L × 40 H × 128)", spec: presetSpec("llama-2-13b") },
    { label: "70B (80 L × 64 H × 128)", spec: withKvHeads(presetSpec("llama-2-70b"), 64) },
  ];
}

export interface SeedOutput {
  markdown: string;
  charts: { file: string; spec: TopLevelSpec }[];
}

/** The GPU of the seed's heatmap. */
export const SEED_GPU = "a100-80gb";
export const HEATMAP_CONTEXTS = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072];

export function seedTables(): SeedOutput {
  const shapes = seedShapes();
  const seven = shapes[0].spec;
  const claims = seedClaims({ seven, seventy: shapes[2].spec, gpu: SEED_GPU });
  const out: string[] = [];
  out.push("# The seed's tables, recomputed by the planner");
  out.push("");
  out.push(`Regenerate with \`${SEED_COMMAND}\` (writes this file, \`docs/${HEATMAP_FILE}\` and \`docs/${CACHE_CHART_FILE}\`).`);
  out.push("Every number below comes from `src/kvcache/bytes.ts` (the byte count the caches allocate with) and `src/planner/`.");
  out.push("Units: KiB/MiB/GiB are binary (2^10, 2^20, 2^30 bytes). KV cache in fp16 (2 bytes per value) unless stated. Where the");
  out.push("seed article's own figure is wrong, the **seed said** column says so beside the right value; §7 lists every claim checked.");
  out.push("");
  out.push(perTokenSection(seven));
  out.push(sevenBSection(seven, claims));
  out.push(scalesSection(shapes));
  out.push(savingsSection(shapes, claims));
  out.push(paramsSection(shapes));
  const heat = heatmapSection(seven, claims);
  out.push(heat.markdown);
  out.push(claimsSection(claims));
  return {
    markdown: out.join("\n") + "\n",
    charts: [
      { file: HEATMAP_FILE, spec: heat.spec },
      { file: CACHE_CHART_FILE, spec: cacheVsContextChart(seven, { kvHeads: [32, 8, 1], contexts: [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072] }) },
    ],
  };
}

function perTokenSection(spec: ModelSpec): string {
  const perToken = kvBytesPerToken(spec, "f16");
  return [
    "## 1. Bytes per token",
    "",
    "KV cache per token = 2 (K and V) × layers × KV heads × head dim × bytes per value.",
    "",
    `For the 7B shape: 2 × 32 × 32 × 128 × 2 B = **${n(perToken)} bytes = ${bin(perToken)} per token**. As MQA (1 KV head) it is`,
    `${n(perToken / 32)} bytes = ${bin(perToken / 32)}; as GQA-8 ${n(perToken / 4)} bytes = ${bin(perToken / 4)}.`,
    "",
  ].join("\n");
}

function sevenBSection(spec: ModelSpec, claims: SeedClaim[]): string {
  const rows: string[][] = [];
  for (const tokens of [4096, 131072]) {
    for (const k of [32, 8, 1]) {
      const s = k === spec.numKvHeads ? spec : withKvHeads(spec, k);
      const label = kvHeadsLabel(32, k);
      const bytes = kvCacheBytes(s, { tokens, dtype: "f16" });
      rows.push([`${n(tokens)}`, `${label} (${k} KV)`, n(bytes), bin(bytes), claimNote(claims, `s2:${label}@${tokens}`)]);
    }
  }
  return ["## 2. The 7B cache at 4K and 128K tokens (one sequence)", "", md(["context (tokens)", "attention", "bytes", "binary", "seed said"], rows), ""].join("\n");
}

function scalesSection(shapes: Shape[]): string {
  const rows: string[][] = [];
  for (const { label, spec } of shapes) {
    for (const k of [spec.numHeads, 8, 1]) {
      const s = withKvHeads(spec, k);
      const perToken = kvBytesPerToken(s, "f16");
      rows.push([label, `${kvHeadsLabel(spec.numHeads, k)} (${k} KV)`, bin(perToken), bin(kvCacheBytes(s, { tokens: 4096 })), bin(kvCacheBytes(s, { tokens: 32768 })), bin(kvCacheBytes(s, { tokens: 131072 })), `${spec.numHeads / k}×`]);
    }
  }
  return [
    "## 3. Comparison across scales",
    "",
    "One sequence, fp16. The 70B row is the seed's MHA shape (80 layers × 64 heads); the released Llama-2-70B is GQA-8.",
    "",
    md(["shape", "attention", "per token", "4K tokens", "32K tokens", "128K tokens", "smaller than MHA"], rows),
    "",
  ].join("\n");
}

function savingsSection(shapes: Shape[], claims: SeedClaim[]): string {
  const rows: string[][] = [];
  for (const { label, spec } of shapes) {
    for (const tokens of [4096, 16384, 131072]) {
      const mha = kvCacheBytes(spec, { tokens });
      const mqa = kvCacheBytes(withKvHeads(spec, 1), { tokens });
      const short = label.split(" ")[0];
      rows.push([label, n(tokens), bin(mha), bin(mqa), bin(mha - mqa), `${mha / mqa}×`, [claimNote(claims, `s4:${short}@${tokens}`), tokens === 4096 ? claimNote(claims, `s4:ratio-${short}`) : ""].filter(Boolean).join("; ")]);
    }
  }
  return [
    "## 4. Savings from MQA",
    "",
    "The MQA ratio is the number of query heads (KV bytes scale with the KV heads); the seed's ratios are checked in the",
    "4,096-token rows. Its absolute figures give no context; the **seed said** column names the one where they hold.",
    "",
    md(["shape", "tokens", "MHA", "MQA", "saved", "ratio", "seed said"], rows),
    "",
  ].join("\n");
}

function paramsSection(shapes: Shape[]): string {
  const rows: string[][] = [];
  for (const { label, spec } of shapes) {
    const mha = paramCounts(spec);
    for (const k of [spec.numHeads, 8, 1]) {
      const c = paramCounts(withKvHeads(spec, k));
      rows.push([label, kvHeadsLabel(spec.numHeads, k), n(c.q), n(c.k), n(c.v), n(c.o), n(c.mlp), n(c.embeddings + c.lmHead), n(c.total), `${(100 * (1 - c.kvProj / mha.kvProj)).toFixed(1)}%`, `${(100 * (1 - c.total / mha.total)).toFixed(2)}%`]);
    }
  }
  return [
    "## 5. Parameter counts",
    "",
    "Per projection, all layers. MLP = gate + up + down (SwiGLU); embeddings include the untied LM head; norms are in the total.",
    "MQA/GQA shrink only the K and V projections: the model loses 12–16 % of its parameters while the cache loses 75–98 % of its bytes.",
    "The MHA rows of the 7B and 13B shapes are the released Llama-2 models (6,738,415,616 and 13,015,864,320 parameters).",
    "",
    md(["shape", "attention", "Q", "K", "V", "O", "MLP", "embeddings + head", "total", "K+V proj. saved", "total saved"], rows),
    "",
  ].join("\n");
}

function heatmapSection(spec: ModelSpec, claims: SeedClaim[]): { markdown: string; spec: TopLevelSpec } {
  const result = plan(spec, { gpu: SEED_GPU, kvHeads: [32, 8, 1], context: 4096 });
  const contexts = HEATMAP_CONTEXTS;
  const batches = [1, 2, 4, 8, 16, 32, 64, 128, 256];
  const cells = heatmapCells(spec, result, { batches, contexts });
  const rows = result.variants.map((v) => {
    const cols = contexts.map((ctx) => {
      const fit = cells.filter((c) => c.kvHeads === v.numKvHeads && c.context === ctx && c.fits).map((c) => c.batch);
      return fit.length ? String(Math.max(...fit)) : "0";
    });
    return [`${v.label} (${v.numKvHeads} KV)`, bin(v.kvBudgetBytesPerGpu), ...cols];
  });
  // Exact maxima (the planner's maxBatch at each context), with the seed's batch claims beside their cells.
  const exact = result.variants.map((v) => {
    const m = exactMaxBatch(spec, v.numKvHeads, contexts, SEED_GPU);
    return [`${v.label} (${v.numKvHeads} KV)`, ...contexts.map((ctx) => n(m.get(ctx)!))];
  });
  const mhaNotes = contexts.map((ctx) => [ctx, claimNote(claims, `s6:MHA@${ctx}`)] as const).filter(([, note]) => note);
  const head = (c: number) => `${c >= 1024 ? `${c / 1024}K` : String(c)}${c > spec.maxPositions ? "†" : ""}`;
  const chart = heatmapChart(spec, result, { batches, contexts });
  return {
    spec: chart,
    markdown: [
      "## 6. Which batch × context fits on one A100-80GB (Llama-2-7B shape)",
      "",
      `![heatmap](${HEATMAP_FILE})`,
      "",
      "Largest power-of-two batch that fits at each context (paged cache, 16-token blocks; 256 is the top of the grid, so",
      "\"256\" means at least 256). The KV budget follows vLLM's",
      "rule: 80 GiB × 0.9 − bf16 weights − activations; the activation model is stated below.",
      `† and the faded heatmap cells: beyond Llama-2-7B's max_position_embeddings (${n(spec.maxPositions)} tokens). The memory`,
      "figures hold for the shape; the released model is not trained for those contexts.",
      "",
      md(["attention", "KV budget", ...contexts.map(head)], rows),
      "",
      "Exact max batch at each context (the planner's `maxBatch`, not rounded to a power of two):",
      "",
      md(["attention", ...contexts.map(head)], exact),
      "",
      ...(mhaNotes.length ? ["Seed said, beside the MHA row's cells:", "", ...mhaNotes.map(([ctx, note]) => `- ${head(ctx)}: ${note}`), ""] : []),
      "Exact maxima from the planner at 4K context:",
      "",
      md(["attention", "weights", "max batch at 4K", "max context at batch 1", "vLLM max concurrency at 4K"], result.variants.map((v) => [`${v.label}`, bin(v.weightBytesPerGpu), n(v.maxBatch), n(v.maxContext), `${v.maxConcurrency.toFixed(2)}x`])),
      "",
      "Assumptions:",
      "",
      ...result.assumptions.map((a) => `- ${a}`),
      "",
      `![KV cache vs context](${CACHE_CHART_FILE})`,
      "",
    ].join("\n"),
  };
}

function claimsSection(claims: SeedClaim[]): string {
  const wrong = claims.filter((c) => c.contradicted);
  return [
    "## 7. The seed's claims, checked",
    "",
    `${wrong.length} of the ${claims.length} claims checked are contradicted by the planner. Each row is computed from the planner,`,
    "so it changes when the planner does (`src/planner/seed-claims.ts`).",
    "",
    md(["seed said", "planner", "where", "verdict"], claims.map((c) => [`"${c.quote}"`, c.planner, c.where, c.contradicted ? c.verdict : `agrees (${c.verdict})`])),
    "",
  ].join("\n");
}
