// Drawing for the model page (web/model.ts): the per-head attention maps, the projection diagram and the
// KV-cache bars. Every number comes from the library: parameter counts from the planner's paramCounts on
// withKvHeads(spec, k) (src/planner/params.ts, src/config/variant.ts), bytes from kvCacheBytes
// (src/kvcache/bytes.ts). Exact numbers carry data-key / data-value for the browser test.
//
// Legend: N positions so far, H query heads, K kv heads, G = H/K, D head dim, E hidden; kv(h) = floor(h / G).
import { paramCounts } from "../src/planner/params.js";
import { kvHeadsLabel, withKvHeads } from "../src/config/variant.js";
import { kvBytesPerToken, kvCacheBytes } from "../src/kvcache/bytes.js";
import type { ModelSpec } from "../src/config/types.js";
import { formatInt } from "./format.js";
import type { LayerDivergence } from "./engine-protocol.js";

type Attrs = Record<string, string>;
export function h(tag: string, attrs: Attrs = {}, ...kids: (Node | string)[]): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const k of kids) e.append(k);
  return e;
}
const num = (key: string, value: number, text = formatInt(value)) => h("span", { "data-key": key, "data-value": String(value) }, text);

/** Engine KV cache dtype: the page generates with the library default (f32), as `mqa generate` does. */
export const KV_DTYPE = "f32";

// Viridis at 5 stops, linearly interpolated: 0 → dark purple, 1 → yellow.
const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function colorAt(p: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, p)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const [a, b] = [VIRIDIS[i], VIRIDIS[i + 1]];
  return [0, 1, 2].map((c) => Math.round(a[c] + f * (b[c] - a[c]))) as [number, number, number];
}
// 256 precomputed RGBA colours as u32 (little-endian ABGR), so a 200 × 200 map is one table lookup per cell.
const LUT = Uint32Array.from({ length: 256 }, (_, i) => {
  const [r, g, b] = colorAt(i / 255);
  return (255 << 24) | (b << 16) | (g << 8) | r;
});
const BLANK = (255 << 24) | (249 << 16) | (247 << 8) | 246;

/**
 * One heatmap per query head of a layer, in boxes per KV head. rows[h][i] = weights query position i
 * gives keys 0 .. i (row lengths grow; missing rows are blank). mode "last" draws only the newest row.
 */
export function renderMaps(el: HTMLElement, spec: ModelSpec, layer: number, rows: number[][][], labels: string[], mode: "all" | "last", divergence: LayerDivergence | undefined): void {
  const { numHeads: H, numKvHeads: K } = spec.layers[layer];
  const G = H / K;
  const N = Math.max(0, ...rows.map((r) => r.length));
  const cell = Math.max(2, Math.min(14, Math.floor(190 / Math.max(1, N))));
  const groups: HTMLElement[] = [];
  for (let k = 0; k < K; k++) {
    const heads: HTMLElement[] = [];
    for (let hq = k * G; hq < (k + 1) * G; hq++) {
      const r = rows[hq] ?? [];
      const shown = mode === "last" ? r.slice(-1) : r;
      const canvas = document.createElement("canvas");
      canvas.width = Math.max(1, N);
      canvas.height = Math.max(1, shown.length);
      canvas.style.width = `${canvas.width * cell}px`;
      canvas.style.height = `${mode === "last" ? 3 * cell : canvas.height * cell}px`;
      canvas.dataset.head = String(hq);
      canvas.dataset.kvHead = String(k);
      canvas.title = `layer ${layer}, head ${hq} reads KV head ${k}`;
      // Hover: which query and key a cell is, and its weight.
      canvas.onmousemove = (e) => {
        const j = Math.floor(e.offsetX / cell);
        const i = mode === "last" ? shown.length - 1 : Math.floor(e.offsetY / cell);
        const row = shown[i];
        const qi = mode === "last" ? r.length - 1 : i;
        canvas.title = row && j < row.length ? `head ${hq} (KV ${k}): query ${qi} ${JSON.stringify(labels[qi] ?? "")} → key ${j} ${JSON.stringify(labels[j] ?? "")}: ${row[j].toFixed(4)}` : `layer ${layer}, head ${hq} reads KV head ${k}`;
      };
      const ctx = canvas.getContext("2d");
      if (ctx && N > 0) {
        const img = ctx.createImageData(canvas.width, canvas.height);
        const px = new Uint32Array(img.data.buffer);
        shown.forEach((row, i) => {
          const n = row?.length ?? 0;
          for (let j = 0; j < N; j++) px[i * N + j] = j < n ? LUT[Math.round(Math.min(1, Math.max(0, row[j])) * 255)] : BLANK;
        });
        ctx.putImageData(img, 0, 0);
      }
      heads.push(h("div", { class: "head-map" }, canvas, `head ${hq}`));
    }
    groups.push(h("div", { class: "kv-group", "data-kv-head": String(k) }, h("h3", {}, `KV head ${k} ← query heads ${k * G}–${(k + 1) * G - 1}`), h("div", { class: "heads" }, ...heads)));
  }
  const axis = labels.map((s, i) => `${i}:${s.replace(/\s/g, "·")}`).join("  ");
  el.replaceChildren(...groups, divergenceLine(layer, divergence), h("p", { class: "hint" }, N ? `positions (rows and columns): ${axis}` : "Generate to see the maps."));
}

/**
 * Do heads that share a KV head still attend differently? The mean Jensen–Shannon divergence (bits) between
 * the rows of heads in the same group and of heads in different groups, computed by the engine with the
 * library's headDivergence (the measure of docs/attention-maps.md) over every row so far.
 */
function divergenceLine(layer: number, d: LayerDivergence | undefined): HTMLElement {
  if (!d || d.rows < 1) return h("p", { class: "hint" });
  const bits = (key: string, v: number | null) => (v === null ? h("span", {}, "–") : h("span", { "data-key": key, "data-value": String(v) }, v.toFixed(3)));
  return h("p", { class: "divergence" }, `layer ${layer}, ${d.rows} query rows: mean JS divergence between heads that share a KV head `, bits("maps.divergence.within", d.withinGroup), ` bits (${d.pairsWithin} pairs), between heads of different KV heads `, bits("maps.divergence.between", d.betweenGroups), ` bits (${d.pairsBetween} pairs)`);
}

/** Parses "8,2,1" into KV-head counts, each dividing H (the planner's withKvHeads checks them). */
export function parseKvList(text: string, spec: ModelSpec): number[] {
  const list = text.split(",").map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw new Error("give one or more KV-head counts, e.g. 8,2,1");
  return list.map((s) => withKvHeads(spec, s === "full" ? spec.numHeads : s === "mqa" ? 1 : Number(s)).numKvHeads);
}

/** One figure per KV-head count: Q/K/V boxes, the q → kv lines, and the projections' parameter counts. */
export function renderDiagram(el: HTMLElement, spec: ModelSpec, kvList: number[]): void {
  const figs = kvList.map((k, i) => {
    const s = withKvHeads(spec, k);
    const c = paramCounts(s);
    const { numHeads: H, headDim: D, hiddenSize: E, numLayers: L } = s;
    const G = H / k;
    const box = 14, gap = 4;
    const width = Math.max(H * (box + gap), 120) + 40;
    const x = (j: number, n: number) => 30 + ((j + 0.5) * (width - 40)) / n;
    const svgNs = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(svgNs, "svg");
    svg.setAttribute("width", String(width));
    svg.setAttribute("height", "130");
    const add = (tag: string, a: Record<string, string | number>, text?: string) => {
      const e = document.createElementNS(svgNs, tag);
      for (const [key, v] of Object.entries(a)) e.setAttribute(key, String(v));
      if (text) e.textContent = text;
      svg.append(e);
    };
    const rowY = { q: 14, k: 84, v: 108 };
    for (let hq = 0; hq < H; hq++) add("line", { x1: x(hq, H), y1: rowY.q + box, x2: x(Math.floor(hq / G), k), y2: rowY.k, stroke: "#9aa7c7", "stroke-width": 1 });
    for (const [row, n, fill] of [["q", H, "#2f5bd3"], ["k", k, "#1f7a4d"], ["v", k, "#b26b00"]] as const) {
      add("text", { x: 2, y: rowY[row] + 11, "font-size": 11, fill: "#5b6572" }, row.toUpperCase());
      for (let j = 0; j < n; j++) add("rect", { x: x(j, n) - box / 2, y: rowY[row], width: box, height: box - 2, rx: 2, fill, "data-row": row, "data-index": j });
    }
    const key = `diagram.${i}`;
    const table = h("table", {},
      h("tr", {}, h("td", {}, "Q"), h("td", {}, `${L} × [${H}·${D}, ${E}]`), h("td", {}, num(`${key}.params.q`, c.q))),
      h("tr", {}, h("td", {}, "K"), h("td", {}, `${L} × [${k}·${D}, ${E}]`), h("td", {}, num(`${key}.params.k`, c.k))),
      h("tr", {}, h("td", {}, "V"), h("td", {}, `${L} × [${k}·${D}, ${E}]`), h("td", {}, num(`${key}.params.v`, c.v))),
      h("tr", {}, h("td", {}, "O"), h("td", {}, `${L} × [${E}, ${H}·${D}]`), h("td", {}, num(`${key}.params.o`, c.o))),
      h("tr", {}, h("td", {}, "K+V"), h("td", {}, "kvProjParams"), h("td", {}, num(`${key}.kvProjParams`, c.kvProj))),
      h("tr", {}, h("td", {}, "KV/token"), h("td", {}, `${KV_DTYPE}, all layers`), h("td", {}, num(`${key}.kvBytesPerToken`, kvBytesPerToken(s, KV_DTYPE), `${formatInt(kvBytesPerToken(s, KV_DTYPE))} B`))),
    );
    const caption = `${kvHeadsLabel(H, k)}: ${k} KV head${k > 1 ? "s" : ""}, ${G} query head${G > 1 ? "s" : ""} each${k === spec.numKvHeads ? " (as loaded)" : ""}`;
    return h("figure", { "data-kv-heads": String(k) }, h("figcaption", {}, caption), svg as unknown as Node, table);
  });
  el.replaceChildren(...figs);
}

/** The cache now (engine's own count and the library's byte count) beside MHA's for the same tokens. */
export function renderKv(el: HTMLElement, spec: ModelSpec, tokens: number, engineBytes: number, maxTokens: number, history: { tokens: number; bytes: number }[]): void {
  const mha = withKvHeads(spec, spec.numHeads);
  const model = kvCacheBytes(spec, { tokens, dtype: KV_DTYPE });
  const mhaBytes = kvCacheBytes(mha, { tokens, dtype: KV_DTYPE });
  const full = Math.max(1, kvCacheBytes(mha, { tokens: Math.max(tokens, maxTokens), dtype: KV_DTYPE }));
  const bar = (cls: string, bytes: number) => h("div", { class: `kv-bar ${cls}`, style: `width:${(100 * bytes) / full}%` });
  const row = (label: string, cls: string, key: string, bytes: number) => h("div", { class: "kv-row" }, h("span", {}, label), h("div", {}, bar(cls, bytes)), h("span", {}, num(key, bytes, `${formatInt(bytes)} B`)));
  const trail = history.map((p) => `${p.tokens}:${formatInt(p.bytes)}`).slice(-6).join(", ");
  const chart = kvChart(history, (n) => kvCacheBytes(mha, { tokens: n, dtype: KV_DTYPE }), Math.max(tokens, maxTokens), full);
  el.replaceChildren(h("div", { class: "kv-bars" },
    h("p", {}, "tokens cached: ", num("kv.tokens", tokens), ` · ${KV_DTYPE} · ratio MHA / this model: ${model ? (mhaBytes / model).toFixed(1) : "–"}×`),
    row(`this model (${spec.numKvHeads} KV)`, "", "kv.model", model),
    row(`engine cache.bytes()`, "", "kv.engine", engineBytes),
    row(`MHA (${spec.numHeads} KV)`, "mha", "kv.mha", mhaBytes),
    chart,
    h("p", { class: "hint" }, trail ? `bytes after each step (tokens:bytes): ${trail}` : ""),
  ));
}

/** Bytes against cached tokens: the engine's count after each step (filled) and MHA's for the same tokens (line). */
function kvChart(history: { tokens: number; bytes: number }[], mhaAt: (tokens: number) => number, maxTokens: number, maxBytes: number): Node {
  const [W, H, P] = [560, 120, 4];
  const svgNs = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNs, "svg");
  svg.setAttribute("width", String(W));
  svg.setAttribute("height", String(H));
  svg.setAttribute("class", "kv-chart");
  const x = (t: number) => P + ((W - 2 * P) * t) / Math.max(1, maxTokens);
  const y = (b: number) => H - P - ((H - 2 * P) * b) / Math.max(1, maxBytes);
  const path = (pts: [number, number][]) => pts.map(([t, b], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${y(b).toFixed(1)}`).join("");
  const add = (d: string, attrs: Record<string, string>) => {
    const e = document.createElementNS(svgNs, "path");
    e.setAttribute("d", d);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    svg.append(e);
  };
  add(`M${P},${H - P}H${W - P}`, { stroke: "#dde1e6", fill: "none" });
  if (history.length > 0) {
    const pts: [number, number][] = [[0, 0], ...history.map((p) => [p.tokens, p.bytes] as [number, number])];
    add(path([[0, 0], ...history.map((p) => [p.tokens, mhaAt(p.tokens)] as [number, number])]), { stroke: "#9aa7c7", fill: "none", "stroke-width": "2", "stroke-dasharray": "4 3" });
    add(`${path(pts)}L${x(pts[pts.length - 1][0]).toFixed(1)},${H - P}Z`, { fill: "#2f5bd3", opacity: "0.8" });
  }
  return h("figure", { class: "kv-figure" }, svg as unknown as Node, h("figcaption", { class: "hint" }, "filled: this model's cache after each step; dashed: MHA for the same tokens; x: tokens cached, up to prompt + new tokens"));
}
