// Renders a TrainPlanResult (the training / uptraining view): one column per KV-head variant, one row per memory
// component, plus fit, max micro-batch and hours. Presentation only: every number comes from trainPlan(). Each exact
// number carries data-train-key = its path in `mqa plan --train --json` (e.g. "variants.1.memory.total") and
// data-value = the integer, so a test can compare the page with the CLI key by key.
import type { TrainPlanResult, TrainVariant } from "../src/planner/index.js";
import { formatBytes, formatInt, formatRate } from "./format.js";
import { h } from "./view.js";

type MemoryKey = keyof TrainVariant["memory"];

const MEMORY_ROWS: [MemoryKey, string][] = [
  ["weights", "Weights (fp16)"],
  ["gradients", "Gradients (fp16)"],
  ["optimizerStates", "Optimizer states"],
  ["activations", "Activations"],
  ["logits", "Logits (fp32)"],
  ["overhead", "Overhead"],
  ["total", "Total per GPU"],
];

function trainExact(key: string, value: number, text: string, cls = "exact"): HTMLElement {
  return h("span", { class: cls, "data-train-key": key, "data-value": String(value) }, text);
}

/** The training table for the model as configured and each KV-head variant. */
export function renderTraining(table: HTMLElement, caption: HTMLElement, r: TrainPlanResult): void {
  const o = r.options;
  const vs = r.variants;
  const name = (v: TrainVariant, i: number) => (i === 0 ? `as configured (${v.attention.toUpperCase()})` : v.label);
  const head = h("thead", {}, h("tr", {}, h("th", {}, "Per GPU"), ...vs.map((v, i) => h("th", {}, name(v, i)))));
  const row = (label: string, cells: (v: TrainVariant, i: number) => (Node | string)[], cls = "") => h("tr", { class: cls }, h("td", {}, label), ...vs.map((v, i) => h("td", {}, ...cells(v, i))));
  const rows = [
    row("Trainable parameters", (v, i) => [trainExact(`variants.${i}.trainableParams`, v.trainableParams, formatRate(v.trainableParams), "plain")]),
    ...MEMORY_ROWS.map(([k, label]) => row(label, (v, i) => [formatBytes(v.memory[k]), trainExact(`variants.${i}.memory.${k}`, v.memory[k], `${formatInt(v.memory[k])} B`)], k === "total" ? "total" : "")),
    row(`Fits in ${formatBytes(r.memoryBytesPerGpu)}`, (v) => [h("span", { class: v.fits ? "fits-yes" : "fits-no", "data-train-fits": String(v.fits) }, v.fits ? "yes" : "no")]),
    row(`Max micro-batch at ${formatInt(o.seq)} tokens`, (v, i) => [trainExact(`variants.${i}.maxMicroBatch`, v.maxMicroBatch, formatInt(v.maxMicroBatch), "plain")]),
    row(`Tokens/s (${o.gpus} GPUs, MFU ${o.mfu})`, (v) => [v.tokensPerSecond === null ? "—" : formatRate(v.tokensPerSecond)]),
    row(o.tokens !== null ? `Hours for ${o.tokens.toExponential(2)} tokens` : "Hours (set tokens)", (v) => [h("span", { "data-train-hours": v.hours === null ? "" : v.hours.toFixed(1) }, v.hours === null ? "—" : v.hours.toFixed(1))]),
  ];
  table.replaceChildren(head, h("tbody", {}, ...rows));
  const opt = o.optimizer === "lora" ? `LoRA rank ${o.loraRank}` : o.optimizer;
  caption.textContent = `${opt}, ZeRO ${o.zero} over ${o.gpus} × ${r.gpu.name}${o.checkpointing ? ", checkpointing" : ""}${o.flashAttention ? ", FlashAttention" : ""}; micro-batch ${o.microBatch} × ${formatInt(o.seq)} tokens`;
}
