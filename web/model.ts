// The model page (model.html): loads a model into the engine worker (web/engine-worker.ts), streams
// greedy generation, and draws what each step hands back: per-head attention rows, the KV cache's bytes,
// and the projection diagram of the loaded config. No model logic here: the worker runs the library.
//
// URL: ?autoload loads the default model at once; ?threads=N sets the kernel threads.
// Test hooks: <body data-model="idle|loading|ready|generating|done|error" data-steps="n">, and
// window.mqaModelPage (the state drawn: prompt and generated tokens, attention rows per layer, KV bytes).
import type { EngineEvent, EngineRequest, LayerDivergence } from "./engine-protocol.js";
import type { ModelSpec } from "../src/config/types.js";
import { KV_DTYPE, parseKvList, renderDiagram, renderKv, renderMaps } from "./model-view.js";
import { formatBytes } from "./format.js";
import { kvCacheBytes } from "../src/kvcache/bytes.js";
import { withKvHeads } from "../src/config/variant.js";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const DEFAULT_MODEL = "models/default/";
const DEFAULT_FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"];

interface PageModelState {
  spec: ModelSpec | null;
  kernels: string;
  threads: number;
  prompt: number[];
  promptLabels: string[];
  tokens: number[];
  labels: string[];
  text: string;
  rows: number[][][][]; // [L][H][position][key]: every attention row handed back so far
  positions: number;
  kvEngineBytes: number;
  kvHistory: { tokens: number; bytes: number }[];
  divergence: LayerDivergence[]; // per layer, over every row so far (the engine's headDivergence)
  steps: number;
  result: Extract<EngineEvent, { type: "done" }> | null;
  maxTokens: number;
}

const state: PageModelState = { spec: null, kernels: "", threads: 0, prompt: [], promptLabels: [], tokens: [], labels: [], text: "", rows: [], positions: 0, kvEngineBytes: 0, kvHistory: [], divergence: [], steps: 0, result: null, maxTokens: 0 };
(window as unknown as { mqaModelPage: PageModelState }).mqaModelPage = state;

const engine = new Worker(new URL("engine-worker.js", import.meta.url), { type: "module", name: "mqa-engine" });
const send = (req: EngineRequest, transfer: Transferable[] = []) => engine.postMessage(req, transfer);

function status(s: string): void {
  document.body.dataset.model = s;
  ($("generate") as HTMLButtonElement).disabled = !state.spec || s === "generating" || s === "loading";
  ($("stop") as HTMLButtonElement).disabled = s !== "generating";
}

function showError(message: string | null): void {
  const e = $("model-error");
  e.hidden = message === null;
  e.textContent = message ?? "";
}

async function loadFiles(files: [string, ArrayBuffer][], where: string): Promise<void> {
  showError(null);
  status("loading");
  $("model-summary").textContent = `Loading ${where} (${formatBytes(files.reduce((a, [, b]) => a + b.byteLength, 0))})…`;
  // ?threads=N pins the kernel threads (default: navigator.hardwareConcurrency); bench/browser.ts uses it.
  const threads = Number(new URLSearchParams(location.search).get("threads")) || undefined;
  send({ type: "load", files, where, threads }, files.map(([, b]) => b));
}

async function loadDefault(): Promise<void> {
  const files = await Promise.all(DEFAULT_FILES.map(async (f): Promise<[string, ArrayBuffer]> => {
    const r = await fetch(DEFAULT_MODEL + f);
    if (!r.ok) throw new Error(`${DEFAULT_MODEL}${f}: HTTP ${r.status}`);
    return [f, await r.arrayBuffer()];
  }));
  await loadFiles(files, "models/default");
}

/** The files of a model folder the engine reads (anything else in the folder is left unread). */
const WANTED = /^(config\.json|generation_config\.json|tokenizer\.json|tokenizer_config\.json|model\.safetensors\.index\.json|.*\.safetensors)$/;

/** The part of the File System Access API used here (a directory handle's entries; not in TypeScript's DOM lib). */
interface DirHandle {
  name: string;
  entries(): AsyncIterable<[string, { kind: "file" | "directory"; getFile?: () => Promise<File> }]>;
}

/** A folder opened through window.showDirectoryPicker (Chromium, Edge): its top-level model files, read locally. */
async function loadDirectory(): Promise<void> {
  let dir: DirHandle;
  try {
    dir = await (window as unknown as { showDirectoryPicker(o?: object): Promise<DirHandle> }).showDirectoryPicker({ mode: "read" });
  } catch (e) {
    if ((e as Error).name === "AbortError") return; // the user closed the picker
    throw e;
  }
  const files: [string, ArrayBuffer][] = [];
  for await (const [name, handle] of dir.entries()) {
    if (handle.kind === "file" && WANTED.test(name)) files.push([name, await (await handle.getFile!()).arrayBuffer()]);
  }
  if (files.length === 0) throw new Error(`${dir.name}: no config.json / *.safetensors / tokenizer.json at the top of the folder`);
  await loadFiles(files, dir.name);
}

/** A picked folder: its top-level files by name (read locally; nothing leaves the machine). */
async function loadPicked(list: FileList): Promise<void> {
  const wanted = WANTED;
  const picked = [...list].filter((f) => wanted.test(f.name) && (f.webkitRelativePath.split("/").length <= 2));
  const root = list[0]?.webkitRelativePath.split("/")[0] ?? "picked folder";
  if (picked.length === 0) throw new Error(`${root}: no config.json / *.safetensors / tokenizer.json at the top of the folder`);
  await loadFiles(await Promise.all(picked.map(async (f): Promise<[string, ArrayBuffer]> => [f.name, await f.arrayBuffer()])), root);
}

let drawPending = false;
function draw(): void {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    const spec = state.spec;
    if (!spec) return;
    $("output-prompt").textContent = state.promptLabels.join("");
    $("output-text").textContent = state.text;
    const layer = Number(($("layer") as HTMLSelectElement).value || 0);
    const mode = (document.querySelector<HTMLInputElement>('input[name="rows"]:checked')?.value ?? "all") as "all" | "last";
    renderMaps($("maps"), spec, layer, state.rows[layer] ?? [], [...state.promptLabels, ...state.labels].slice(0, state.positions), mode, state.divergence[layer]);
    renderKv($("kv"), spec, state.positions, state.kvEngineBytes, state.prompt.length + state.maxTokens, state.kvHistory);
  });
}

function drawDiagram(): void {
  const spec = state.spec;
  if (!spec) return;
  const input = $<HTMLInputElement>("kv-heads");
  const err = $("kv-heads-error");
  try {
    renderDiagram($("diagram"), spec, parseKvList(input.value, spec));
    err.hidden = true;
  } catch (e) {
    err.hidden = false;
    err.textContent = (e as Error).message;
  }
}

engine.onmessage = (e: MessageEvent<EngineEvent>) => {
  const ev = e.data;
  if (ev.type === "error") {
    showError(ev.message);
    return status(state.spec ? "ready" : "error");
  }
  if (ev.type === "loaded") {
    Object.assign(state, { spec: ev.spec, kernels: ev.kernels, threads: ev.threads, rows: [], positions: 0, tokens: [], prompt: [] });
    const s = ev.spec;
    $("model-summary").innerHTML = "";
    $("model-summary").append(`${ev.where}: ${s.family}, ${s.numLayers} layers, ${s.numHeads} query heads, ${s.numKvHeads} KV heads, head dim ${s.headDim}; ${formatBytes(ev.weightBytes)} of weights; ${ev.kernels} on ${ev.threads} thread${ev.threads > 1 ? "s" : ""}; loaded in ${ev.loadSeconds.toFixed(2)} s.`);
    const layer = $<HTMLSelectElement>("layer");
    layer.replaceChildren(...s.layers.map((_, l) => Object.assign(document.createElement("option"), { value: String(l), textContent: `layer ${l}` })));
    const kv = $<HTMLInputElement>("kv-heads");
    kv.value = [...new Set([s.numHeads, s.numKvHeads, 1])].join(",");
    drawDiagram();
    status("ready");
    return draw();
  }
  if (ev.type === "prompt") {
    Object.assign(state, { prompt: ev.tokens, promptLabels: ev.labels, tokens: [], labels: [], text: "", positions: 0, kvEngineBytes: 0, kvHistory: [], divergence: [], steps: 0, result: null });
    state.rows = state.spec!.layers.map((l) => Array.from({ length: l.numHeads }, () => []));
    return draw();
  }
  if (ev.type === "step") {
    for (const m of ev.maps) m.rows.forEach((rs, hq) => rs.forEach((r, i) => (state.rows[m.layer][hq][m.pos0 + i] = r)));
    Object.assign(state, { tokens: ev.tokens, labels: ev.labels, text: ev.text, positions: ev.positions, kvEngineBytes: ev.kvCacheBytes, steps: state.steps + 1 });
    if (ev.divergence.length) state.divergence = ev.divergence;
    state.kvHistory.push({ tokens: ev.positions, bytes: ev.kvCacheBytes });
    document.body.dataset.steps = String(state.steps);
    $("output-caption").textContent = `${ev.tokens.length} tokens generated`;
    return draw();
  }
  if (ev.type === "done") {
    state.result = ev;
    const decode = ev.decodeTokens > 0 ? ev.decodeTokens / ev.decodeSeconds : 0;
    $("speed").textContent = `prefill ${ev.prefillTokens} tokens in ${(ev.prefillSeconds * 1000).toFixed(1)} ms; decode ${decode.toFixed(1)} tokens/s (${ev.decodeTokens} steps); KV ${formatBytes(ev.kvCacheBytes)} (${KV_DTYPE}) vs MHA ${formatBytes(kvCacheBytes(withKvHeads(state.spec!, state.spec!.numHeads), { tokens: state.positions, dtype: KV_DTYPE }))}${ev.aborted ? "; stopped" : ""}`;
    status("done");
    return draw();
  }
};
engine.onerror = (e) => {
  showError(`engine worker failed: ${e.message}`);
  status("error");
};

function guard(f: () => Promise<void>): () => void {
  return () => void f().catch((e) => {
    showError((e as Error).message);
    status(state.spec ? "ready" : "error");
  });
}

$("load-default").addEventListener("click", guard(loadDefault));
$("pick-dir").hidden = !("showDirectoryPicker" in window);
$("pick-dir").addEventListener("click", guard(loadDirectory));
$<HTMLInputElement>("folder").addEventListener("change", guard(async () => loadPicked($<HTMLInputElement>("folder").files!)));
$<HTMLInputElement>("gguf").addEventListener("change", guard(async () => {
  const f = $<HTMLInputElement>("gguf").files![0];
  if (f) await loadFiles([[f.name, await f.arrayBuffer()]], f.name);
}));
$("generate").addEventListener("click", () => {
  state.maxTokens = Number($<HTMLInputElement>("max-tokens").value) || 24;
  document.body.dataset.steps = "0"; // the steps of this run (a test waits for them before pressing Stop)
  status("generating");
  send({ type: "generate", prompt: $<HTMLTextAreaElement>("prompt").value, maxTokens: state.maxTokens, maps: $<HTMLInputElement>("record-maps").checked, ignoreEos: $<HTMLInputElement>("ignore-eos").checked });
});
$("stop").addEventListener("click", () => send({ type: "stop" }));
$("layer").addEventListener("change", draw);
for (const r of document.querySelectorAll('input[name="rows"]')) r.addEventListener("change", draw);
$("kv-heads").addEventListener("input", drawDiagram);
if (!crossOriginIsolated) showError("This page is not cross-origin isolated (COOP/COEP headers missing): the kernels run on one thread. `mqa web` sends the headers.");
status("idle");
if (new URLSearchParams(location.search).has("autoload")) guard(loadDefault)();
