// Renders a PlanResult into the page: the summary cards and the MHA/GQA/MQA table. Presentation only:
// every number comes from the planner's result. Each exact number carries data-key = its path in the
// `mqa plan --json` output (e.g. "kvCacheBytes", "variants.2.maxBatch") and data-value = the integer,
// so a test can compare the page with the CLI key by key.
import type { ParamGroup, PlanResult, VariantPlan } from "../src/planner/index.js";
import { formatBytes, formatInt, formatRate } from "./format.js";

type Child = Node | string;

/** document.createElement with a class and children (text is always set as text, never parsed as HTML). */
export function h(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v;
    else el.setAttribute(k, v);
  }
  for (const c of children) el.append(c);
  return el;
}

/** An exact integer with its JSON key. */
function exact(key: string, value: number, text = `${formatInt(value)} B`, cls = "exact"): HTMLElement {
  return h("span", { class: cls, "data-key": key, "data-value": String(value) }, text);
}

function card(title: string, big: Child, exactEl: Child | null, sub: Child[] = [], cls = ""): HTMLElement {
  const parts: Child[] = [h("h3", {}, title), h("div", { class: "big" }, big)];
  if (exactEl) parts.push(h("div", {}, exactEl));
  if (sub.length) parts.push(h("div", { class: "sub" }, ...sub));
  return h("article", { class: `card ${cls}`.trim() }, ...parts);
}

function kvFormula(r: PlanResult): string {
  const m = r.model;
  if (m.mla) return `${m.numLayers} layers × (${m.mla.kvLoraRank} latent + ${m.mla.qkRopeHeadDim} rope) × ${r.options.kvDtype}`;
  return `2 × ${m.numLayers} layers × ${m.numKvHeads} KV heads × ${m.headDim} × ${r.options.kvDtype}`;
}

/** The summary cards for the model as configured. */
export function renderCards(container: HTMLElement, r: PlanResult): void {
  const o = r.options;
  const seqs = `${formatInt(o.batch)} × ${formatInt(o.context)} tokens`;
  const maxContextText = r.maxContextUnbounded ? "unbounded" : formatInt(r.maxContext);
  const cards = [
    card("KV cache per token", formatBytes(r.kvBytesPerToken), exact("kvBytesPerToken", r.kvBytesPerToken), [kvFormula(r)]),
    card("KV cache, whole batch", formatBytes(r.kvCacheBytes), exact("kvCacheBytes", r.kvCacheBytes), [seqs, r.model.slidingLayers ? `, ${r.model.slidingLayers} windowed layers capped` : ""]),
    card("KV cache per GPU", formatBytes(r.kvCacheBytesPerGpu), exact("kvCacheBytesPerGpu", r.kvCacheBytesPerGpu), [
      `tp ${o.tp}: ${r.kvHeadsPerGpu} KV head${r.kvHeadsPerGpu === 1 ? "" : "s"} per GPU`,
      o.replicas > 1 ? `, ${o.replicas} replicas` : "",
    ]),
    card("Weights", formatBytes(r.weightBytes), exact("weightBytes", r.weightBytes), [
      `${formatBytes(r.weightBytesPerGpu)} per GPU, `,
      exact("params.total", r.params.total, `${formatRate(r.params.total)} params`, "plain"),
      ` in ${o.weightDtype}`,
    ]),
    card("KV budget per GPU", formatBytes(r.memory.kvBudgetBytesPerGpu), exact("memory.kvBudgetBytesPerGpu", r.memory.kvBudgetBytesPerGpu), [
      `${formatBytes(r.memory.usableBytesPerGpu)} usable − weights − ${formatBytes(r.memory.activationBytesPerGpu)} activations`,
    ], r.memory.kvBudgetBytesPerGpu > 0 ? "" : "nofit"),
    card("Max batch", exact("maxBatch", r.maxBatch, formatInt(r.maxBatch), "plain"), null, [
      `sequences of ${formatInt(o.context)} tokens; vLLM: `,
      exact("numBlocks", r.numBlocks, formatInt(r.numBlocks), "plain"),
      o.blockSize ? ` blocks of ${o.blockSize}, ${r.maxConcurrency.toFixed(2)}× concurrency` : " tokens (contiguous)",
    ], r.maxBatch >= o.batch ? "fits" : "nofit"),
    card("Max context", exact("maxContext", r.maxContext, maxContextText, "plain"), null, [`tokens for ${formatInt(o.batch)} sequence${o.batch === 1 ? "" : "s"}`], r.maxContext >= o.context ? "fits" : "nofit"),
    card("Decode (roofline)", `${formatRate(r.decode.tokensPerSecond)} tok/s`, null, [
      `${r.decode.bound}-bound, ${(r.decode.stepSeconds * 1e3).toPrecision(3)} ms per step on ${r.gpu.name}`,
    ]),
  ];
  container.replaceChildren(...cards);
}

const COLUMNS = ["Variant", "KV heads", "KV / token", "KV cache", "KV per GPU", "K,V proj. params", "Max batch", "Max context", "Decode tok/s"];

function variantRow(v: VariantPlan, i: number, current: boolean): HTMLElement {
  const k = (name: string) => `variants.${i}.${name}`;
  const bytesCell = (name: "kvBytesPerToken" | "kvCacheBytes" | "kvCacheBytesPerGpu") =>
    h("td", {}, formatBytes(v[name]), exact(k(name), v[name]));
  return h(
    "tr",
    { class: current ? "current" : "", "data-variant": v.label },
    h("td", {}, v.label, current ? " (this model)" : ""),
    h("td", {}, exact(k("numKvHeads"), v.numKvHeads, String(v.numKvHeads), "plain")),
    bytesCell("kvBytesPerToken"),
    bytesCell("kvCacheBytes"),
    bytesCell("kvCacheBytesPerGpu"),
    h("td", {}, exact(k("kvProjParams"), v.kvProjParams, formatRate(v.kvProjParams), "plain"), h("span", { class: "exact" }, v.kvProjParamsSavedVsMha > 0 ? `−${(v.kvProjParamsSavedVsMha * 100).toFixed(1)} % vs MHA` : "MHA size")),
    h("td", {}, exact(k("maxBatch"), v.maxBatch, formatInt(v.maxBatch), "plain")),
    h("td", {}, exact(k("maxContext"), v.maxContext, v.maxContextUnbounded ? "unbounded" : formatInt(v.maxContext), "plain")),
    h("td", {}, formatRate(v.decode.tokensPerSecond)),
  );
}

/** The what-if table: one row per KV-head variant the plan was asked for. */
export function renderVariants(table: HTMLElement, caption: HTMLElement, r: PlanResult): void {
  const head = h("thead", {}, h("tr", {}, ...COLUMNS.map((c) => h("th", {}, c))));
  const current = r.model.attention === "mla" ? -1 : r.variants.findIndex((v) => v.numKvHeads === r.model.numKvHeads);
  const body = h("tbody", {}, ...r.variants.map((v, i) => variantRow(v, i, i === current)));
  table.replaceChildren(head, body);
  caption.textContent = `${r.model.numHeads} query heads, ${formatInt(r.options.batch)} × ${formatInt(r.options.context)} tokens, ${r.options.kvDtype} cache on ${r.options.gpus} × ${r.gpu.name}`;
}

const GROUPS: [ParamGroup, string][] = [
  ["q", "Q projections"],
  ["k", "K projections"],
  ["v", "V projections"],
  ["o", "O projections"],
  ["mlp", "MLP"],
  ["router", "MoE router"],
  ["embeddings", "Token embeddings"],
  ["positions", "Position embeddings"],
  ["lmHead", "LM head"],
  ["norms", "Norms"],
];

/** Parameters and weight bytes per group (the planner's size table, summed), as the seed splits them. */
export function renderParams(table: HTMLElement, r: PlanResult): void {
  const p = r.params;
  const rows = GROUPS.filter(([g]) => p[g] > 0).map(([g, name]) =>
    h(
      "tr",
      {},
      h("td", {}, name),
      h("td", {}, exact(`params.${g}`, p[g], formatInt(p[g]), "plain")),
      h("td", {}, `${((100 * p[g]) / p.total).toFixed(1)} %`),
      h("td", {}, formatBytes(r.weightBytesByGroup[g]), exact(`weightBytesByGroup.${g}`, r.weightBytesByGroup[g])),
    ),
  );
  const total = h("tr", { class: "total" }, h("td", {}, "Total"), h("td", {}, formatInt(p.total)), h("td", {}, "100 %"), h("td", {}, formatBytes(r.weightBytes)));
  const active = p.active !== p.total ? [h("tr", {}, h("td", {}, "Active per token"), h("td", {}, exact("params.active", p.active, formatInt(p.active), "plain")), h("td", {}, `${((100 * p.active) / p.total).toFixed(1)} %`), h("td", {}, ""))] : [];
  const head = h("thead", {}, h("tr", {}, ...["Group", "Parameters", "Share", `Bytes (${r.options.weightDtype})`].map((c) => h("th", {}, c))));
  table.replaceChildren(head, h("tbody", {}, ...rows, total, ...active));
}
