// The report of bench/from-scratch.ts: docs/experiments/from-scratch.md (+ .json, + the validation
// curves chart), written only from the per-job result files (docs/experiments/from-scratch/results/).
// Jobs not yet run are listed, never filled in.
import { writeFileSync } from "node:fs";
import { renderChartFile } from "../src/planner/render.js";
import { fmtStats, stats, type Stats } from "./stats.js";

export interface Job {
  id: string; // e.g. "lm-kv2-s1"
  kind: "lm" | "matched" | "mqar";
  K: number; // KV heads
  seed: number;
  ffn: number; // SwiGLU width
}
export interface Result extends Job {
  params: number;
  nonEmbedding: number;
  steps: number;
  tokens: number;
  trainSeconds: number;
  seconds: number;
  cpu: string;
  load: number;
  date: string;
  resumed: boolean;
  loss?: number;
  bitsPerByte?: number;
  perplexity?: number;
  evalTokens?: number;
  curve?: { step: number; loss: number; bitsPerByte: number }[];
  accuracy?: Record<string, number>;
}
export interface ReportCtx {
  X: { heads: number; hidden: number; layers: number; ffn: number; context: number; batch: number; kvHeads: number[]; matched: number[]; seeds: number[]; tokensPerParam: number; lr: number; minLr: number; warmup: number; evals: number; curveTokens: number; finalTokens: number; data: string; vocab: number; mqar: { hidden: number; layers: number; ffn: number; context: number; vocab: number; pairs: number[]; batch: number; steps: number; lr: number; examples: number } };
  steps: number;
  cpu: string;
  jobs: Job[];
  trainTokens: number | null; // tokens in the training split (for epochs), from the data's meta.json
  command: string;
}

const DOC = "docs/experiments/from-scratch";
/** A curve is called flat when validation loss fell by less than this over the last 20 % of training. */
export const FLAT = 0.01;

const name = (K: number, heads: number) => (K === heads ? "MHA" : K === 1 ? "MQA" : `GQA-${K}`);
const pct = (x: number, d = 2) => `${x >= 0 ? "+" : ""}${x.toFixed(d)} %`;

/** Relative fall of validation loss from 80 % of training to the end: (L(0.8) − L(1)) / L(0.8). */
export function lastFifthImprovement(curve: { step: number; loss: number }[], steps: number): number | null {
  const at80 = curve.find((p) => p.step === Math.round(0.8 * steps));
  const end = curve.find((p) => p.step === steps);
  return at80 && end ? (at80.loss - end.loss) / at80.loss : null;
}

/** Seed-paired relative perplexity change of `rs` against the MHA runs, in %. */
function pairedVsMha(rs: Result[], mha: Result[]): (Stats & { se: number }) | null {
  const byseed = new Map(mha.map((r) => [r.seed, r.perplexity!]));
  const d = rs.filter((r) => byseed.has(r.seed)).map((r) => (r.perplexity! / byseed.get(r.seed)! - 1) * 100);
  if (!d.length) return null;
  const s = stats(d);
  return { ...s, se: s.n > 1 ? s.std / Math.sqrt(s.n) : NaN };
}

function lmTable(rows: Result[][], c: ReportCtx, mha: Result[]): string[] {
  const { X } = c;
  const hd = X.hidden / X.heads;
  const out = [
    "| variant | KV heads | SwiGLU width | params | non-embedding params | tokens / non-embedding param | KV bytes/token (f16) | val bits/byte | val perplexity | vs MHA (perplexity, paired) | loss fall over the last 20 % | train minutes | tokens/s |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const rs of rows) {
    if (!rs.length) continue;
    const r0 = rs[0];
    const imp = stats(rs.map((r) => lastFifthImprovement(r.curve ?? [], r.steps)).filter((x): x is number => x != null).map((x) => x * 100));
    const vs = r0.K === X.heads && r0.kind === "lm" ? null : pairedVsMha(rs, mha);
    const secs = stats(rs.map((r) => r.trainSeconds));
    out.push(`| ${name(r0.K, X.heads)}${r0.kind === "matched" ? " (wide MLP)" : ""} | ${r0.K} | ${r0.ffn} | ${r0.params.toLocaleString("en-US")} | ${r0.nonEmbedding.toLocaleString("en-US")} | ${(r0.tokens / r0.nonEmbedding).toFixed(2)} | ${2 * X.layers * r0.K * hd * 2} | ${fmtStats(stats(rs.map((r) => r.bitsPerByte!)))} | ${fmtStats(stats(rs.map((r) => r.perplexity!)), 2)} | ${vs ? `${pct(vs.mean)}${vs.n > 1 ? ` ± ${vs.se.toFixed(2)} (s.e.)` : " (n = 1)"}` : "—"} | ${imp.n ? (imp.n > 1 ? `${imp.mean.toFixed(2)} % ± ${imp.std.toFixed(2)}` : `${imp.mean.toFixed(2)} % (n = 1)`) : "—"} | ${(secs.mean / 60).toFixed(1)} | ${Math.round(r0.tokens / secs.mean).toLocaleString("en-US")} |`);
  }
  return out;
}

function mqarTable(rows: Result[][], c: ReportCtx): string[] {
  const { X } = c;
  const out = [`| variant | KV heads | seeds | ${X.mqar.pairs.map((p) => `D = ${p}`).join(" | ")} |`, `|---|---|---|${X.mqar.pairs.map(() => "---|").join("")}`];
  for (const rs of rows) {
    if (!rs.length) continue;
    const cells = X.mqar.pairs.map((p) => {
      const s = stats(rs.map((r) => r.accuracy![String(p)]));
      return s.n > 1 ? `${s.mean.toFixed(3)} ± ${s.std.toFixed(3)}` : s.mean.toFixed(3);
    });
    out.push(`| ${name(rs[0].K, X.heads)} | ${rs[0].K} | ${rs.length} | ${cells.join(" | ")} |`);
  }
  return out;
}

/** What the runs say beside Shazeer 2019 and Ainslie et al. 2023, computed from the results. */
function findings(lm: Result[][], matched: Result[][], mqar: Result[][], c: ReportCtx, mha: Result[]): string[] {
  const { X } = c;
  const out: string[] = [];
  const all = [...new Map([...lm, ...matched].flat().map((r) => [r.id, r])).values()];
  const lmTokensPerRun = all[0]?.tokens ?? 0;
  const tpsAll = all.reduce((a, r) => a + r.tokens, 0) / Math.max(1e-9, all.reduce((a, r) => a + r.trainSeconds, 0));
  const lmRunsAll = (X.kvHeads.length + X.matched.length) * X.seeds.length;
  const imps = all.map((r) => lastFifthImprovement(r.curve ?? [], r.steps)).filter((x): x is number => x != null);
  const flat = imps.length > 0 && Math.max(...imps) < FLAT;
  if (imps.length) {
    out.push(`- **Convergence.** Validation loss fell by ${(Math.min(...imps) * 100).toFixed(2)}–${(Math.max(...imps) * 100).toFixed(2)} % over the last 20 % of training (${imps.length} runs; the learning rate decays by cosine to ${X.minLr} over the same stretch, which accounts for part of the fall). ${flat ? `Every curve is flat by this report's rule (< ${FLAT * 100} %).` : `By this report's rule (< ${FLAT * 100} % over the last 20 %) the curves have **not** flattened: the models are still learning at ${X.tokensPerParam} tokens per non-embedding parameter. The comparisons below are therefore **not findings about converged models**: they compare models at the same, unconverged, budget of ${X.tokensPerParam} tokens per parameter. A flat curve was not reached and its cost was not measured; a run with 4× the tokens (Chinchilla's ≈ 20 tokens per parameter, doubled) would take about ${((4 * lmTokensPerRun) / tpsAll / 3600 * lmRunsAll).toFixed(0)} hours for the ${lmRunsAll} language-model runs at the measured ${Math.round(tpsAll).toLocaleString("en-US")} tokens/s.`}`);
  }
  const rel = (rows: Result[][]) => rows.filter((rs) => rs.length && rs[0].K !== X.heads).map((rs) => ({ K: rs[0].K, d: pairedVsMha(rs, mha) })).filter((x) => x.d);
  for (const [label, rows] of [["Same width (fewer parameters as K/V heads are shared)", lm], ["Parameter-matched (MLP widened, Shazeer's matching)", matched]] as const) {
    const rs = rel(rows);
    if (!rs.length) continue;
    const parts = rs.map(({ K, d }) => `${name(K, X.heads)} ${pct(d!.mean)}${d!.n > 1 ? ` (± ${d!.se.toFixed(2)} s.e., ${Math.abs(d!.mean) > 2 * d!.se ? "outside" : "within"} seed noise)` : " (one seed)"}`);
    const means = [...rs].sort((a, b) => b.K - a.K).map((x) => x.d!.mean); // GQA-4, GQA-2, MQA
    const ordered = means.every((m, i) => m >= 0 && (i === 0 || means[i - 1] <= m));
    out.push(`- **${label}**, validation perplexity against MHA, paired by seed: ${parts.join("; ")}. ${ordered ? "The ordering MHA ≤ GQA-4 ≤ GQA-2 ≤ MQA holds in the means." : "The ordering MHA ≤ GQA-4 ≤ GQA-2 ≤ MQA does not hold in the means."}`);
  }
  const mqa = rel(lm).find((x) => x.K === 1)?.d;
  const mqaM = rel(matched).find((x) => x.K === 1)?.d;
  if (mqa) {
    const shaz = (30.2 / 29.9 - 1) * 100;
    out.push(`- **Beside Shazeer 2019** (Table 3, Billion-Word LM from scratch, parameter-matched: dev perplexity 29.9 MHA vs 30.2 MQA, ${pct(shaz)}): MQA here is ${pct(mqa.mean)} at the same width${mqaM ? ` and ${pct(mqaM.mean)} parameter-matched` : ""}. ${mqa.mean > 0 ? "The direction agrees (MQA is worse)" : "The direction disagrees (MQA is not worse here)"}${mqaM ? (mqaM.mean > 0 ? "; with the MLP widened the gap " + (mqaM.mean < mqa.mean ? "narrows, as it should if part of it was lost capacity" : "does not narrow") : "; with the MLP widened MQA is not worse") : ""}. The size of the gap is not comparable: Shazeer's Billion-Word models had 192M parameters (MQA widened to d_ff 9088) and were trained on a billion-word corpus.`);
  }
  const g = rel(lm);
  if (g.length) {
    const ain = { 8: (47.1 / 47.2 - 1) * 100, 1: (46.6 / 47.2 - 1) * 100 };
    out.push(`- **Beside Ainslie et al. 2023** (Table 1, T5-XXL uptrained from MHA: average 47.2 MHA, 47.1 GQA-8, 46.6 MQA, i.e. GQA ${pct(ain[8])} and MQA ${pct(ain[1])} in score): their claim is that GQA sits between MHA and MQA and close to MHA. Here, from scratch: ${g.map(({ K, d }) => `${name(K, X.heads)} ${pct(d!.mean)}`).join(", ")} in perplexity. ${g.every((x) => !mqa || x.K === 1 || (x.d!.mean >= 0 && x.d!.mean <= mqa.mean)) ? "Every GQA variant is between MHA and MQA, which agrees." : "Not every GQA variant is between MHA and MQA."} Their numbers are task scores after uptraining, ours perplexity from scratch: only directions compare.`);
  }
  if (mqar.length >= 2) {
    const byK = new Map(mqar.filter((rs) => rs.length).map((rs) => [rs[0].K, rs]));
    const mean = (K: number, p: number) => stats(byK.get(K)!.map((r) => r.accuracy![String(p)])).mean;
    const Ks = [...byK.keys()].sort((a, b) => b - a);
    const monotone = X.mqar.pairs.filter((p) => Ks.every((K, i) => i === 0 || mean(Ks[i - 1], p) >= mean(K, p)));
    if (byK.has(X.heads) && byK.has(1)) {
      const mqaLowest = X.mqar.pairs.filter((p) => Ks.every((K) => K === 1 || mean(K, p) >= mean(1, p)));
      out.push(`- **MQAR recall.** The full ordering ${Ks.map((K) => name(K, X.heads)).join(" ≥ ")} holds at ${monotone.length} of ${X.mqar.pairs.length} pair counts${monotone.length ? ` (D = ${monotone.join(", ")})` : ""}; MQA is the lowest at ${mqaLowest.length} of ${X.mqar.pairs.length} and keeps ${X.mqar.pairs.map((p) => `${Math.round((mean(1, p) / mean(X.heads, p)) * 100)} %`).join(" / ")} of MHA's accuracy at D = ${X.mqar.pairs.join(" / ")}; the GQA variants' seed spread (± in the table) is as large as their gaps to MHA, so only MQA's loss is clear. Accuracies are far below 1 (${X.mqar.steps} updates; the probe is not trained to saturation), so this measures how fast each variant learns to recall; MQA's deficit is in the direction of both papers' quality results (neither paper ran MQAR).`);
    }
  }
  out.push(`- **Scale.** These are ${Math.min(...all.map((r) => r.params)).toLocaleString("en-US")}–${Math.max(...all.map((r) => r.params)).toLocaleString("en-US")}-parameter models trained on ${(all[0]?.tokens / 1e6).toFixed(2)}M tokens each; the papers' models have 10⁸–10¹⁰ parameters. With 8 heads of dimension ${X.hidden / X.heads}, one shared K/V head is a much larger share of the attention parameters than in a large model.`);
  return out;
}

/** Mean ± std of validation bits/byte at each curve step, and the seed-paired gap to MHA at that step. */
function curvePoints(rs: Result[], mha: Result[], c: ReportCtx) {
  const steps = [...new Set(rs.flatMap((r) => (r.curve ?? []).map((p) => p.step)))].sort((a, b) => a - b);
  const at = (r: Result, step: number) => r.curve?.find((p) => p.step === step)?.bitsPerByte;
  return steps.map((step) => {
    const s = stats(rs.map((r) => at(r, step)).filter((x): x is number => x != null));
    const gaps = rs.flatMap((r) => {
      const m = mha.find((q) => q.seed === r.seed);
      const a = at(r, step), b = m && at(m, step);
      return a != null && b != null ? [a - b] : [];
    });
    return { tokens: (step * c.X.batch * c.X.context) / 1e6, bpb: s.mean, lo: s.mean - s.std, hi: s.mean + s.std, gap: gaps.length ? stats(gaps).mean : null };
  });
}

/** Two charts: the validation curves (one panel per table), and each variant's gap to MHA along training. */
async function curvesChart(tables: [string, Result[][]][], mha: Result[], c: ReportCtx): Promise<boolean> {
  const order = c.X.kvHeads.map((K) => name(K, c.X.heads));
  const values = tables.flatMap(([table, rows]) => rows.filter((rs) => rs.length).flatMap((rs) => curvePoints(rs, mha, c).map((p) => ({ ...p, table, variant: name(rs[0].K, c.X.heads) }))));
  if (!values.length) return false;
  const color = { field: "variant", type: "nominal", title: "attention", sort: order };
  const x = { field: "tokens", type: "quantitative", title: "training tokens (millions)" };
  const curves = {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: { text: "From scratch: validation bits per byte during training", subtitle: `mean over seeds (bands: ± 1 std); ${c.X.curveTokens.toLocaleString("en-US")} validation tokens per point` },
    data: { values },
    facet: { column: { field: "table", type: "nominal", title: null, sort: tables.map(([t]) => t) } },
    spec: {
      width: 330, height: 300,
      layer: [
        { mark: { type: "errorband", opacity: 0.12 }, encoding: { x, color, y: { field: "lo", type: "quantitative", title: "validation bits per byte", scale: { zero: false } }, y2: { field: "hi" } } },
        { mark: { type: "line", point: true, strokeWidth: 1.5 }, encoding: { x, color, y: { field: "bpb", type: "quantitative", scale: { zero: false } } } },
      ],
    },
  };
  const gap = {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: { text: "Gap to MHA along training", subtitle: "validation bits per byte minus MHA's at the same step and seed (mean over seeds)" },
    data: { values: values.filter((v) => v.gap != null && v.variant !== "MHA") },
    facet: { column: { field: "table", type: "nominal", title: null, sort: tables.map(([t]) => t) } },
    spec: {
      width: 330, height: 240,
      layer: [
        { mark: { type: "rule", color: "#888", strokeDash: [4, 3] }, encoding: { y: { datum: 0 } } },
        { mark: { type: "line", point: true, strokeWidth: 1.5 }, encoding: { x, color, y: { field: "gap", type: "quantitative", title: "Δ bits per byte vs MHA" } } },
      ],
    },
  };
  for (const [spec, file] of [[curves, "curves"], [gap, "gap-to-mha"]] as const) {
    await renderChartFile(spec as never, `${DOC}/${file}.svg`);
    await renderChartFile(spec as never, `${DOC}/${file}.png`);
  }
  return true;
}

export async function writeFromScratchReport(results: Result[], c: ReportCtx): Promise<void> {
  const { X } = c;
  const group = (kind: Result["kind"], Ks: number[]) => Ks.map((K) => results.filter((r) => r.kind === kind && r.K === K).sort((a, b) => a.seed - b.seed));
  const lm = group("lm", X.kvHeads);
  const mha = lm.find((rs) => rs[0]?.K === X.heads) ?? [];
  const matched = [mha, ...group("matched", X.matched)];
  const mqar = group("mqar", X.kvHeads);
  const missing = c.jobs.filter((j) => !results.some((r) => r.id === j.id)).map((j) => j.id);
  const trainSecs = results.reduce((a, r) => a + r.seconds, 0);
  const dates = results.map((r) => Date.parse(r.date)).sort((a, b) => a - b);
  const cpus = [...new Set(results.map((r) => r.cpu))];
  const loads = results.map((r) => r.load);
  const lmTokens = [...lm, ...matched.slice(1)].flat().reduce((a, r) => a + r.tokens, 0);
  const hasChart = await curvesChart([["same width", lm], ["parameter-matched", matched]], mha, c);
  const perRun = c.steps * X.batch * X.context;
  const mhaNonEmb = mha[0]?.nonEmbedding;
  const lmDone = [...lm, ...matched.slice(1)].flat();
  const tps = lmDone.reduce((a, r) => a + r.tokens, 0) / Math.max(1e-9, lmDone.reduce((a, r) => a + r.trainSeconds, 0));
  const lmRuns = (X.kvHeads.length + X.matched.length) * X.seeds.length;

  const md = [
    "# From scratch: MHA vs GQA vs MQA, at 10 tokens per parameter",
    "",
    `Regenerated by \`${c.command}\` (runs every job not yet in \`${DOC}/results/\`, then this report; \`--report\` rebuilds it from the committed results alone). Last result ${new Date(dates[dates.length - 1] ?? Date.now()).toISOString()}.`,
    "",
    `**Machine and cost.** ${cpus.join(", ")} (2 vCPUs), ${results[0] ? "2 kernel threads per run, one run at a time" : ""}; load average at the end of each job ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)}. The ${results.length} finished jobs took ${(trainSecs / 3600).toFixed(2)} hours of wall clock summed over jobs (${lmTokens.toLocaleString("en-US")} language-model training tokens)${dates.length > 1 ? `; first finished ${new Date(dates[0]).toISOString()}, last ${new Date(dates[dates.length - 1]).toISOString()} (the runs were spread over ${Math.ceil((dates[dates.length - 1] - dates[0]) / 86400000) + 1} sessions or days, and other work shared the machine at times)` : ""}.`,
    missing.length ? `\n**Not yet run** (${missing.length} of ${c.jobs.length} jobs; rerun the command to continue): ${missing.join(", ")}. Tables below use the seeds that have finished.` : `\nAll ${c.jobs.length} jobs have finished.`,
    "",
    "## Design and budget",
    "",
    `- **Data:** \`${X.data}\` (KJV Bible, State of the Union addresses and the Brown corpus, split by document; docs/data.md), byte-level BPE with ${X.vocab} tokens${c.trainTokens ? `, ${c.trainTokens.toLocaleString("en-US")} training tokens` : ""}.`,
    `- **Models:** LLaMA-style decoder, ${X.layers} layers, width ${X.hidden}, ${X.heads} query heads of dimension ${X.hidden / X.heads}, SwiGLU ${X.ffn} (the wide-MLP variants: ${matched.slice(1).filter((rs) => rs.length).map((rs) => `${name(rs[0].K, X.heads)} ${rs[0].ffn}`).join(", ")}, the nearest multiple of 8 that restores MHA's non-embedding parameter count), untied head, RoPE, context ${X.context}.`,
    `- **Budget:** ${c.steps} AdamW updates of ${X.batch} × ${X.context} = ${X.batch * X.context} tokens = ${perRun.toLocaleString("en-US")} tokens per run, ${X.tokensPerParam} per non-embedding parameter of MHA${mhaNonEmb ? ` (${mhaNonEmb.toLocaleString("en-US")})` : ""}, the same tokens for every variant${c.trainTokens ? ` (${(perRun / c.trainTokens).toFixed(2)} epochs)` : ""}. Learning rate ${X.lr}, ${X.warmup} warmup updates, cosine to ${X.minLr}; weight decay 0.1, clip 1. Seeds ${X.seeds.join(", ")}.`,
    `- **Why this size:** the whole experiment had to fit in about two hours of this machine (issue 13). The trainer ran this model at ${Math.round(tps).toLocaleString("en-US")} tokens/s on 2 threads (mean over the finished language-model runs), so ${lmRuns} language-model runs (${X.kvHeads.length + X.matched.length} variants × ${X.seeds.length} seeds) at ${X.tokensPerParam} tokens per parameter allow about ${((2 * 3600 * tps) / lmRuns / X.tokensPerParam / 1e6).toFixed(2)}M non-embedding parameters per model; the embedding and head (2 × ${X.vocab} × ${X.hidden}) are not counted in the budget, which is why the vocabulary is ${X.vocab} rather than 4096. (The runs took longer than two hours in total; the cost line above gives the measured time.)`,
    `- **Evaluation:** validation loss every ${100 / X.evals} % of training on ${X.curveTokens.toLocaleString("en-US")} held-out tokens (the curve), and at the end on ${X.finalTokens.toLocaleString("en-US")} held-out tokens (the tables; a larger sample than the curve's, so the two differ). Bits per byte = nats per token × tokens / bytes / ln 2 over the same text; perplexity is per token.`,
    `- **MQAR:** Zoology's multiquery_ar generator (keys from [1, V/2), values from [V/2, V), power-law gaps), V = ${X.mqar.vocab}, T = ${X.mqar.context}, trained on a mix of ${X.mqar.pairs.join("/")} key-value pairs; ${X.mqar.layers} layers, width ${X.mqar.hidden}, ${X.heads} query heads; ${X.mqar.steps} updates of ${X.mqar.batch} sequences, lr ${X.mqar.lr}; ${X.mqar.examples} fresh test examples per pair count; accuracy at the query positions; mean ± std over seeds.`,
    "",
    "## Language modelling, same width",
    "",
    "Sharing K/V heads removes parameters; the variants have the same width and MLP.",
    "",
    ...lmTable(lm, c, mha),
    "",
    "## Language modelling, parameter-matched (Shazeer 2019's matching)",
    "",
    "The K/V-sharing variants get a wider MLP so that every variant has MHA's non-embedding parameter count.",
    "",
    ...lmTable(matched, c, mha),
    "",
    "“vs MHA” is the seed-paired relative change of validation perplexity (mean ± standard error over seeds). “Loss fall over the last 20 %” is (L(80 %) − L(100 %)) / L(80 %) on the validation curve (mean ± std over seeds).",
    "",
    hasChart ? "![validation curves](from-scratch/curves.svg)\n\n![gap to MHA](from-scratch/gap-to-mha.svg)\n" : "",
    "## MQAR recall (accuracy at the query positions)",
    "",
    ...mqarTable(mqar, c),
    "",
    "## What it says, beside the papers",
    "",
    ...findings(lm, matched, mqar, c, mha),
    "",
  ].join("\n");
  writeFileSync("docs/experiments/from-scratch.md", md);
  writeFileSync("docs/experiments/from-scratch.json", JSON.stringify({ config: X, steps: c.steps, missing, results }, null, 2) + "\n");
}
