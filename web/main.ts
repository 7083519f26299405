// The planner page: reads the controls, calls the planner library (the same code as `mqa plan`), and
// shows the result. No planning logic lives here: plan(), the spec readers, the GPU catalog and the chart
// builders all come from src/.
//
// Test hooks: <body data-status="ready|error" data-plans="n" data-charts="n">: data-plans counts plans,
// data-charts is the plan number whose charts are drawn (equal to data-plans once the charts caught up); every exact number has data-key (its path in `mqa plan --json`) and data-value.
import { canonicalDtype, DTYPES } from "../src/dtypes/table.js";
import { cacheVsContextChart, heatmapChart, throughputChart } from "../src/planner/charts.js";
import { customGpu, divisors, listGpus, listPresets, plan, presetSpec, specFromHfConfig, trainPlan, type Optimizer, type PlanOptions, type PlanResult, type TrainOptions } from "../src/planner/index.js";
import type { ModelSpec } from "../src/config/types.js";
import type { TopLevelSpec } from "vega-lite";
import { clearChart, showChart } from "./charts.js";
import { formatInt, formatTokens } from "./format.js";
import { renderCards, renderParams, renderVariants } from "./view.js";
import { renderTraining } from "./train-view.js";
import { OptionError } from "../src/errors.js";

/**
 * A planner error as the page says it: the library names option fields (kvHeads, gpuMemoryUtilization),
 * which the page replaces by the label of the input that sets the field (<input name="kvHeads">).
 */
function withFieldLabels(e: unknown): string {
  let message = (e as Error).message;
  if (!(e instanceof OptionError)) return message;
  for (const field of e.fields) {
    const input = document.querySelector(`[name="${field}"]`);
    const label = input?.closest("label")?.querySelector("span")?.firstChild?.textContent?.trim();
    if (label) message = message.replace(new RegExp(`(^|[^\\w.-])${field.replace(/\./g, "\\.")}(?![\\w-])`), `$1${label}`);
  }
  return message;
}

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

/** Slider stops: powers of two and 1.5 × powers of two. */
function stops(from: number, to: number): number[] {
  const out: number[] = [];
  for (let p = 1; p <= to; p *= 2) for (const x of [p, p * 1.5]) if (x >= from && x <= to && Number.isInteger(x)) out.push(x);
  return out;
}
const CONTEXTS = stops(128, 2 ** 21); // 128 … 2M tokens
const BATCHES = stops(1, 4096);

interface PageState {
  source: "preset" | "config";
  preset: string; // preset name, e.g. "llama-2-7b"
  config: string; // pasted config.json text
  kvHeads: string; // what-if KV heads, e.g. "32,8,1"
  gpu: string; // catalog id, e.g. "a100-80gb", or "custom"
  gpuMemoryGiB: number; // custom GPU, e.g. 80
  gpuBandwidthGBs: number; // custom GPU, e.g. 2000
  gpuTflops: number; // custom GPU, dense bf16, e.g. 300
  gpus: number;
  tp: number;
  kvDtype: string;
  weightDtype: string;
  blockSize: number; // paged block in tokens, 0 = contiguous
  gpuMemoryUtilization: number; // vLLM's fraction, e.g. 0.9
  context: number; // tokens
  batch: number; // sequences
}

const DEFAULTS: PageState = {
  source: "preset",
  preset: "llama-2-7b",
  config: "",
  kvHeads: "",
  gpu: "a100-80gb",
  gpuMemoryGiB: 80,
  gpuBandwidthGBs: 2000,
  gpuTflops: 300,
  gpus: 1,
  tp: 1,
  kvDtype: "f16",
  weightDtype: "bf16",
  blockSize: 16,
  gpuMemoryUtilization: 0.9,
  context: 4096,
  batch: 1,
};

const el = {
  form: $<HTMLFormElement>("controls"),
  preset: $<HTMLSelectElement>("preset"),
  presetField: $("preset-field"),
  config: $<HTMLTextAreaElement>("config"),
  configField: $("config-field"),
  configError: $("config-error"),
  modelSummary: $("model-summary"),
  kvHeads: $<HTMLInputElement>("kv-heads"),
  gpu: $<HTMLSelectElement>("gpu"),
  customGpu: $("custom-gpu"),
  gpuMemoryGiB: $<HTMLInputElement>("gpu-memory"),
  gpuBandwidthGBs: $<HTMLInputElement>("gpu-bandwidth"),
  gpuTflops: $<HTMLInputElement>("gpu-tflops"),
  blockSize: $<HTMLInputElement>("block-size"),
  gpuMemoryUtilization: $<HTMLInputElement>("gpu-util"),
  gpuSummary: $("gpu-summary"),
  gpus: $<HTMLInputElement>("gpus"),
  tp: $<HTMLInputElement>("tp"),
  kvDtype: $<HTMLSelectElement>("kv-dtype"),
  weightDtype: $<HTMLSelectElement>("weight-dtype"),
  context: $<HTMLInputElement>("context"),
  contextOut: $("context-out"),
  batch: $<HTMLInputElement>("batch"),
  batchOut: $("batch-out"),
  planError: $("plan-error"),
  results: $("results"),
  cards: $("cards"),
  warnings: $("warnings"),
  variants: $("variants"),
  params: $("params"),
  variantsCaption: $("variants-caption"),
  chartContext: $("chart-context"),
  chartHeatmap: $("chart-heatmap"),
  chartThroughput: $("chart-throughput"),
  cli: $("cli-command"),
  optimizer: $<HTMLSelectElement>("optimizer"),
  loraRank: $<HTMLInputElement>("lora-rank"),
  loraRankField: $("lora-rank-field"),
  zero: $<HTMLSelectElement>("zero"),
  microBatch: $<HTMLInputElement>("micro-batch"),
  seq: $<HTMLInputElement>("seq"),
  trainTokens: $<HTMLInputElement>("train-tokens"),
  mfu: $<HTMLInputElement>("mfu"),
  checkpointing: $<HTMLInputElement>("checkpointing"),
  flashAttention: $<HTMLInputElement>("flash-attention"),
  trainTable: $("train-table"),
  trainCaption: $("train-caption"),
  trainError: $("train-error"),
  trainCli: $("train-cli-command"),
};

function option(value: string, text: string): HTMLOptionElement {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = text;
  return o;
}

function fillControls(): void {
  el.preset.replaceChildren(...listPresets().map((p) => Object.assign(option(p.name, p.name), { title: `${p.hf}: ${p.source}` })));
  el.gpu.replaceChildren(...listGpus().map((g) => option(g.id, g.name)), option("custom", "Custom GPU…"));
  const dtypes = Object.keys(DTYPES);
  el.kvDtype.replaceChildren(...dtypes.map((d) => option(d, d)));
  el.weightDtype.replaceChildren(...dtypes.map((d) => option(d, d)));
  el.context.max = String(CONTEXTS.length - 1);
  el.batch.max = String(BATCHES.length - 1);
  const ends = (list: number[], fmt: (n: number) => string) => [list[0], list[list.length - 1]].map((n) => Object.assign(document.createElement("span"), { textContent: fmt(n) }));
  $("context-ends").replaceChildren(...ends(CONTEXTS, formatTokens));
  $("batch-ends").replaceChildren(...ends(BATCHES, formatInt));
}

const nearestIndex = (list: number[], v: number) => list.reduce((best, x, i) => (Math.abs(x - v) < Math.abs(list[best] - v) ? i : best), 0);

/** A number input's value; a blank field is NaN so the planner reports it instead of reading 0. */
const numberOf = (input: HTMLInputElement) => (input.value.trim() === "" ? NaN : Number(input.value));

const NUMBER_FIELDS = ["gpuMemoryGiB", "gpuBandwidthGBs", "gpuTflops", "gpus", "tp", "blockSize", "gpuMemoryUtilization"] as const;
const TEXT_FIELDS = ["preset", "kvHeads", "gpu", "kvDtype", "weightDtype"] as const;

function readState(): PageState {
  const source = (el.form.elements.namedItem("source") as RadioNodeList).value === "config" ? "config" : "preset";
  const s = { ...DEFAULTS, source, config: el.config.value } as PageState;
  for (const k of TEXT_FIELDS) s[k] = el[k].value;
  for (const k of NUMBER_FIELDS) s[k] = numberOf(el[k]);
  s.context = CONTEXTS[Number(el.context.value)];
  s.batch = BATCHES[Number(el.batch.value)];
  return s;
}

function writeState(s: PageState): void {
  (el.form.elements.namedItem("source") as RadioNodeList).value = s.source;
  el.config.value = s.config;
  for (const k of TEXT_FIELDS) el[k].value = s[k];
  for (const k of NUMBER_FIELDS) el[k].value = String(s[k]);
  el.context.value = String(nearestIndex(CONTEXTS, s.context));
  el.batch.value = String(nearestIndex(BATCHES, s.batch));
}

/** State from the URL hash (e.g. #preset=llama-3.1-70b&gpu=h100-sxm&tp=4&context=32768), over the defaults. */
function stateFromHash(): PageState {
  const q = new URLSearchParams(location.hash.slice(1));
  const s = { ...DEFAULTS };
  for (const k of TEXT_FIELDS) s[k] = q.get(k) ?? s[k];
  for (const k of ["kvDtype", "weightDtype"] as const) {
    try {
      s[k] = canonicalDtype(s[k]); // a link may spell it fp16, half, bfloat16, ...
    } catch {
      s[k] = DEFAULTS[k];
    }
  }
  for (const k of [...NUMBER_FIELDS, "context", "batch"] as const) {
    const v = Number(q.get(k) ?? NaN);
    if (Number.isFinite(v) && v >= 0) s[k] = v;
  }
  return s;
}

function hashOf(s: PageState): string {
  const q = new URLSearchParams();
  if (s.source === "preset") q.set("preset", s.preset);
  for (const k of ["kvHeads", "gpu", "gpus", "tp", "kvDtype", "weightDtype", "context", "batch"] as const) q.set(k, String(s[k]));
  if (s.gpu === "custom") for (const k of ["gpuMemoryGiB", "gpuBandwidthGBs", "gpuTflops"] as const) q.set(k, String(s[k]));
  for (const k of ["blockSize", "gpuMemoryUtilization"] as const) if (s[k] !== DEFAULTS[k]) q.set(k, String(s[k]));
  for (const [k, value] of Object.entries(trainControlValues())) if (value !== TRAIN_DEFAULTS[k as TrainKey]) q.set(k, value);
  return `#${q}`;
}

// Training controls in the URL hash, by the option names of trainPlan (written only when not the default).
const TRAIN_DEFAULTS = { optimizer: "adamw", loraRank: "16", zero: "0", microBatch: "1", seq: "4096", tokens: "1e11", mfu: "0.4", checkpointing: "0", flashAttention: "0" };
type TrainKey = keyof typeof TRAIN_DEFAULTS;
const trainControls = (): Record<TrainKey, HTMLInputElement | HTMLSelectElement> => ({
  optimizer: el.optimizer, loraRank: el.loraRank, zero: el.zero, microBatch: el.microBatch, seq: el.seq, tokens: el.trainTokens, mfu: el.mfu,
  checkpointing: el.checkpointing, flashAttention: el.flashAttention,
});

function trainControlValues(): Record<TrainKey, string> {
  const out = {} as Record<TrainKey, string>;
  for (const [k, input] of Object.entries(trainControls()) as [TrainKey, HTMLInputElement | HTMLSelectElement][]) {
    out[k] = input instanceof HTMLInputElement && input.type === "checkbox" ? (input.checked ? "1" : "0") : input.value;
  }
  return out;
}

/** Sets the training controls from the URL hash (missing keys: the defaults). */
function writeTrainControls(): void {
  const q = new URLSearchParams(location.hash.slice(1));
  for (const [k, input] of Object.entries(trainControls()) as [TrainKey, HTMLInputElement | HTMLSelectElement][]) {
    const value = q.get(k) ?? TRAIN_DEFAULTS[k];
    if (input instanceof HTMLInputElement && input.type === "checkbox") input.checked = value === "1";
    else if (input instanceof HTMLSelectElement && ![...input.options].some((o) => o.value === value)) input.value = TRAIN_DEFAULTS[k];
    else input.value = value;
  }
}

/** The model spec from a preset or the pasted config; an error message names the field. */
function readModel(s: PageState): { spec: ModelSpec } | { error: string } {
  try {
    if (s.source === "preset") return { spec: presetSpec(s.preset) };
    if (!s.config.trim()) return { error: "config.json: paste the contents of a Hugging Face config.json" };
    let json: unknown;
    try {
      json = JSON.parse(s.config);
    } catch (e) {
      return { error: `config.json: not valid JSON (${(e as Error).message})` };
    }
    return { spec: specFromHfConfig(json, "config.json") };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** MHA, the configured count, MQA; for an MHA or MQA model also a GQA count (the largest divisor of the heads ≤ 8). */
function defaultKvHeads(spec: ModelSpec): string {
  const H = spec.numHeads;
  const ks = [H, spec.numKvHeads, 1];
  if (spec.numKvHeads === H || spec.numKvHeads === 1) {
    const gqa = divisors(H).filter((d) => d > 1 && d < H && d <= 8).pop();
    if (gqa !== undefined) ks.push(gqa);
  }
  return [...new Set(ks)].sort((a, b) => b - a).join(",");
}

function kvHeadsList(text: string): string[] {
  return text.split(",").map((x) => x.trim()).filter((x) => x !== "");
}

function planOptions(s: PageState): PlanOptions {
  return {
    context: s.context,
    batch: s.batch,
    kvDtype: s.kvDtype,
    weightDtype: s.weightDtype,
    gpu: s.gpu === "custom" ? customGpu({ memoryGiB: s.gpuMemoryGiB, bandwidthGBs: s.gpuBandwidthGBs, tflops: s.gpuTflops }) : s.gpu,
    gpus: s.gpus,
    tp: s.tp,
    blockSize: s.blockSize === 0 ? null : s.blockSize,
    gpuMemoryUtilization: s.gpuMemoryUtilization,
    kvHeads: kvHeadsList(s.kvHeads),
  };
}

/** The `mqa plan` command that prints the same numbers (serving flags only when they differ from the defaults). */
function cliCommand(s: PageState): string {
  const model = s.source === "preset" ? s.preset : "config.json";
  const gpu = s.gpu === "custom" ? `--gpu-memory-gib ${s.gpuMemoryGiB} --gpu-bandwidth-gbs ${s.gpuBandwidthGBs} --gpu-tflops ${s.gpuTflops}` : `--gpu ${s.gpu}`;
  const serving = [
    s.blockSize !== DEFAULTS.blockSize ? ` --block-size ${s.blockSize}` : "",
    s.gpuMemoryUtilization !== DEFAULTS.gpuMemoryUtilization ? ` --gpu-memory-utilization ${s.gpuMemoryUtilization}` : "",
  ].join("");
  return `npx mqa plan --model ${model} ${gpu} --gpus ${s.gpus} --tp ${s.tp} --context ${s.context} --batch ${s.batch} --kv-dtype ${s.kvDtype} --weight-dtype ${s.weightDtype}${serving} --kv-heads ${kvHeadsList(s.kvHeads).join(",")} --json`;
}

/** The training controls as trainPlan options; GPU, GPUs and what-if KV heads come from the serving controls. */
function trainOptions(s: PageState): TrainOptions {
  const optimizer = el.optimizer.value as Optimizer;
  const tokens = el.trainTokens.value.trim();
  return {
    optimizer,
    loraRank: optimizer === "lora" ? numberOf(el.loraRank) : undefined,
    zero: Number(el.zero.value),
    checkpointing: el.checkpointing.checked,
    flashAttention: el.flashAttention.checked,
    microBatch: numberOf(el.microBatch),
    seq: numberOf(el.seq),
    gpus: s.gpus,
    gpu: planOptions(s).gpu,
    tokens: tokens === "" ? null : /^[\d.]+(e\d+)?$/i.test(tokens) ? Number(tokens) : NaN,
    mfu: numberOf(el.mfu),
    kvHeads: kvHeadsList(s.kvHeads),
  };
}

/** The `mqa plan --train` command that prints the same training numbers. */
function trainCliCommand(s: PageState, t: TrainOptions): string {
  const model = s.source === "preset" ? s.preset : "config.json";
  const gpu = s.gpu === "custom" ? `--gpu-memory-gib ${s.gpuMemoryGiB} --gpu-bandwidth-gbs ${s.gpuBandwidthGBs} --gpu-tflops ${s.gpuTflops}` : `--gpu ${s.gpu}`;
  const flags = [
    `--optimizer ${t.optimizer}`,
    t.optimizer === "lora" ? `--lora-rank ${t.loraRank}` : "",
    `--zero ${t.zero}`,
    t.checkpointing ? "--checkpointing" : "",
    t.flashAttention ? "--flash-attention" : "",
    `--micro-batch ${t.microBatch} --seq ${t.seq} --gpus ${s.gpus}`,
    t.tokens !== null ? `--tokens ${el.trainTokens.value.trim()}` : "",
    `--mfu ${t.mfu}`,
  ].filter(Boolean).join(" ");
  return `npx mqa plan --train --model ${model} ${gpu} ${flags} --kv-heads ${kvHeadsList(s.kvHeads).join(",")} --json`;
}

/** The training view; its errors stay in its own panel, so the serving plan above still shows. */
function updateTraining(spec: ModelSpec, s: PageState): void {
  el.loraRankField.hidden = el.optimizer.value !== "lora";
  const t = trainOptions(s);
  el.trainCli.textContent = trainCliCommand(s, t);
  try {
    const r = trainPlan(spec, t);
    showError(el.trainError, null);
    renderTraining(el.trainTable, el.trainCaption, r);
  } catch (e) {
    el.trainTable.replaceChildren();
    el.trainCaption.textContent = "";
    showError(el.trainError, withFieldLabels(e));
  }
}

function showError(box: HTMLElement, message: string | null): void {
  box.hidden = message === null;
  box.textContent = message ?? "";
}

function summarizeModel(spec: ModelSpec, r: PlanResult | null): void {
  const m = spec;
  const kind = m.mla ? `MLA latent ${m.mla.kvLoraRank} + rope ${m.mla.qkRopeHeadDim}` : `${m.numKvHeads} KV heads`;
  const windows = m.layers.filter((l) => l.window !== null).length;
  const parts = [`${m.numLayers} layers`, `${m.numHeads} query heads`, kind, `head dim ${m.headDim}`, `max ${formatInt(m.maxPositions)} positions`];
  if (windows) parts.push(`${windows} sliding-window layers`);
  if (m.mlp.numExperts > 1) parts.push(`${m.mlp.numExperts} experts, top-${m.mlp.expertsPerToken}`);
  el.modelSummary.replaceChildren(Object.assign(document.createElement("b"), { textContent: r ? r.model.attention.toUpperCase() : "" }), ` ${parts.join(" · ")}`);
}

let plans = 0;
let chartJob = 0;
let lastModelKey = "";

/** Recomputes everything from the controls. Synchronous for the numbers; charts follow asynchronously. */
function update(): void {
  let s = readState();
  el.presetField.hidden = s.source !== "preset";
  el.configField.hidden = s.source !== "config";
  el.contextOut.textContent = formatTokens(s.context);
  el.contextOut.dataset.value = String(s.context);
  el.batchOut.textContent = formatInt(s.batch);
  el.batchOut.dataset.value = String(s.batch);
  el.customGpu.hidden = s.gpu !== "custom";
  const gpu = listGpus().find((g) => g.id === s.gpu);
  el.gpuSummary.textContent = gpu ? `${formatInt(gpu.memoryBytes / 2 ** 30)} GiB, ${formatInt(gpu.bandwidthBytesPerSecond / 1e9)} GB/s${gpu.tflopsBf16 ? `, ${gpu.tflopsBf16} TFLOP/s dense bf16` : ""}` : "";

  const model = readModel(s);
  showError(el.configError, s.source === "config" && "error" in model ? model.error : null);
  el.config.classList.toggle("invalid", s.source === "config" && "error" in model);
  if ("error" in model) el.modelSummary.replaceChildren();
  if ("error" in model) return fail(s.source === "preset" ? model.error : "No plan: the pasted config.json has an error (shown under it).");

  // A different model gets its own what-ifs (the divisors of its head count differ); on load a link's list is kept.
  const modelKey = s.source === "preset" ? `preset:${s.preset}` : `config:${s.config}`;
  const kvDefault = defaultKvHeads(model.spec);
  const firstModel = lastModelKey === "";
  if ((!firstModel && modelKey !== lastModelKey) || (firstModel && !el.kvHeads.value.trim())) el.kvHeads.value = kvDefault;
  lastModelKey = modelKey;
  el.kvHeads.placeholder = kvDefault;
  s = readState();
  if (!s.kvHeads.trim()) s.kvHeads = kvDefault; // a cleared field means the defaults
  let result: PlanResult;
  try {
    result = plan(model.spec, planOptions(s));
  } catch (e) {
    summarizeModel(model.spec, null);
    return fail(withFieldLabels(e));
  }
  showError(el.planError, null);
  el.results.classList.remove("failed");
  summarizeModel(model.spec, result);
  renderCards(el.cards, result);
  renderVariants(el.variants, el.variantsCaption, result);
  renderParams(el.params, result);
  el.warnings.replaceChildren(...result.warnings.map((w) => Object.assign(document.createElement("li"), { textContent: w })));
  el.warnings.hidden = result.warnings.length === 0;
  el.cli.textContent = cliCommand(s);
  updateTraining(model.spec, s);
  history.replaceState(null, "", hashOf(s));
  plans++;
  document.body.dataset.plans = String(plans);
  document.body.dataset.status = "ready";
  scheduleCharts(model.spec, result);
}

function fail(message: string): void {
  showError(el.planError, message);
  el.results.classList.add("failed");
  el.cards.replaceChildren();
  el.variants.replaceChildren();
  el.params.replaceChildren();
  el.warnings.hidden = true;
  clearChart(el.chartContext);
  clearChart(el.chartHeatmap);
  clearChart(el.chartThroughput);
  plans++;
  chartJob = plans;
  document.body.dataset.plans = String(plans);
  document.body.dataset.charts = String(plans); // nothing to draw
  document.body.dataset.status = "error";
}

/** Draws the charts for the latest plan only; a slider drag does not queue up stale renders. */
function scheduleCharts(spec: ModelSpec, r: PlanResult): void {
  const job = (chartJob = plans);
  requestAnimationFrame(async () => {
    if (job !== chartJob) return;
    const o = r.options;
    const budgetBytes = o.gpus === 1 ? r.memory.kvBudgetBytesPerGpu : null; // the chart's cache is one GPU's worth only without tp
    try {
      const cacheChart = cacheVsContextChart(spec, { kvHeads: o.kvHeads, kvDtype: o.kvDtype, batch: o.batch, budgetBytes });
      await showChart(el.chartContext, { ...cacheChart, width: "container" } as TopLevelSpec); // fill the panel
      if (job !== chartJob) return;
      await showChart(el.chartHeatmap, heatmapChart(spec, r));
      if (job !== chartJob) return;
      await showChart(el.chartThroughput, { ...throughputChart(spec, r), width: "container" } as TopLevelSpec);
      if (job === chartJob) document.body.dataset.charts = String(job); // = data-plans when the charts show the latest plan
    } catch (e) {
      showError(el.planError, `chart: ${(e as Error).message}`);
    }
  });
}

function main(): void {
  fillControls();
  writeState(stateFromHash());
  writeTrainControls();
  el.form.addEventListener("submit", (e) => e.preventDefault());
  window.addEventListener("hashchange", () => {
    lastModelKey = ""; // keep the what-ifs the link asks for
    writeState(stateFromHash());
    writeTrainControls();
    update();
  });
  el.form.addEventListener("input", (e) => {
    // Keep gpus a multiple of tp when tp grows past it (the planner requires gpus = tp × replicas).
    if (e.target === el.tp) {
      const tp = Number(el.tp.value);
      const gpus = Number(el.gpus.value);
      if (Number.isInteger(tp) && tp > 0 && (gpus < tp || gpus % tp !== 0)) el.gpus.value = String(tp);
    }
    update();
  });
  update();
}

main();
