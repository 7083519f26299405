// The engine of the model page (bundled to dist/web/engine-worker.js): a dedicated worker that holds the
// arena, the WASM kernels (their threads are Web Workers over the same shared memory, kernel-worker.js)
// and the model, and runs the library's own generation loop (src/generate/generate.ts Batch) one step
// per turn of its event loop, so a stop request is seen between steps. The page's main thread never
// computes: it only draws what arrives here (web/engine-protocol.ts). No model logic lives in this file.
import { Arena } from "../src/kernels/memory.js";
import { createKernels, detectWasmFeatures, type KernelHandle } from "../src/kernels/index.js";
import { webWorkerHost } from "../src/kernels/pool-browser.js";
import { openModelFromFiles, type FilesModel } from "../src/generate/runtime-files.js";
import { Batch } from "../src/generate/generate.js";
import type { AttentionProbs } from "../src/attention/attention.js";
import { headDivergence } from "../src/generate/attention-maps.js";
import type { EngineEvent, EngineRequest, LayerDivergence, StepMaps } from "./engine-protocol.js";

let arena: Arena | null = null;
let kernels: KernelHandle | null = null;
let loaded: FilesModel | null = null;
let stopRequested = false;
let running = false;

const post = (e: EngineEvent) => (self as unknown as Worker).postMessage(e);

/** Returns to the event loop without setTimeout's 4 ms clamp (a MessageChannel task). */
function nextTask(): Promise<void> {
  return new Promise((ok) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => ok();
    ch.port2.postMessage(null);
  });
}

async function load(req: Extract<EngineRequest, { type: "load" }>): Promise<void> {
  const t0 = performance.now();
  kernels?.close();
  loaded = null;
  // A fresh memory per model: the arena only grows, and a new model should not inherit the old one's pages.
  arena = new Arena({ initialBytes: 64 * 1024 * 1024 });
  const features = detectWasmFeatures();
  const shared = typeof SharedArrayBuffer === "function" && arena.memory.buffer instanceof SharedArrayBuffer && crossOriginIsolated;
  const variant = `kernels-${features.relaxedSimd ? "relaxed" : "simd"}${shared ? "" : "-st"}`;
  const module = await WebAssembly.compileStreaming(fetch(new URL(`${variant}.wasm`, self.location.href)));
  const threads = shared ? (req.threads ?? navigator.hardwareConcurrency ?? 1) : 1;
  kernels = await createKernels({ arena, module, threads, host: webWorkerHost(new URL("kernel-worker.js", self.location.href)) });
  const files = new Map(req.files.map(([name, buf]) => [name, new Uint8Array(buf)] as const));
  loaded = await openModelFromFiles(files, { arena, kernels, where: req.where });
  post({ type: "loaded", spec: loaded.spec, where: req.where, kernels: kernels.name, threads: kernels.threads, weightBytes: loaded.model.weightBytes(), loadSeconds: (performance.now() - t0) / 1000, hasTokenizer: loaded.tokenizer !== null });
}

/** "1,2,3" as token ids; anything else is text for the tokenizer. */
function promptTokens(m: FilesModel, prompt: string): number[] {
  const ids = /^\s*\d+(\s*,\s*\d+)*\s*$/.test(prompt) && !m.tokenizer ? prompt.split(",").map(Number) : null;
  if (ids) return ids;
  if (!m.tokenizer) throw new Error("this model folder has no tokenizer.json; give the prompt as comma-separated token ids");
  return m.tokenizer.encode(prompt);
}

async function run(req: Extract<EngineRequest, { type: "generate" }>): Promise<void> {
  if (!loaded) throw new Error("no model loaded");
  const m = loaded;
  const { model, spec, tokenizer } = m;
  const prompt = promptTokens(m, req.prompt);
  const label = (id: number) => (tokenizer ? tokenizer.decode([id]) : String(id));
  post({ type: "prompt", tokens: prompt, labels: prompt.map(label) });
  // Every layer and head hands over its probabilities after each forward (DecoderModel.probsRequest,
  // the path `mqa attention` reads): the prefill gives the prompt's rows, each decode step one more row.
  const all = new Map(spec.layers.map((l, i) => [i, Array.from({ length: l.numHeads }, (_, h) => h)]));
  let stepMaps: StepMaps[] = [];
  // Every row so far, [L][H][position][key], for the within/between-group divergence of each layer.
  const rowsSoFar: number[][][][] = spec.layers.map((l) => Array.from({ length: l.numHeads }, () => []));
  const divergence = (): LayerDivergence[] => req.maps === false ? [] : spec.layers.map(({ numHeads: H, numKvHeads: K, window }, layer) => {
    const d = headDivergence({ layer, numKvHeads: K, window, heads: rowsSoFar[layer].map((probs, h) => ({ head: h, kvHead: Math.floor(h / (H / K)), probs })) });
    return { layer, withinGroup: d.withinGroup, betweenGroups: d.betweenGroups, pairsWithin: d.pairsWithin, pairsBetween: d.pairsBetween, rows: d.rows };
  });
  model.probsRequest = req.maps === false ? null : {
    heads: all,
    onProbs: (layer: number, probs: AttentionProbs[]) => {
      const H = spec.layers[layer].numHeads;
      const pos0 = Math.min(...probs.map((p) => p.pos));
      const rows: number[][][] = Array.from({ length: H }, () => []);
      for (const p of probs) {
        const row = new Array<number>(p.pos + 1).fill(0);
        p.keyPositions.forEach((j, s) => (row[j] = p.probs[s]));
        rows[p.head][p.pos - pos0] = row;
      }
      stepMaps.push({ layer, pos0, rows });
      rows.forEach((rs, h) => rs.forEach((r, i) => (rowsSoFar[layer][h][pos0 + i] = r)));
    },
  };
  const batch = new Batch(model, { kind: "contiguous", maxSequences: 1, keepFinished: true });
  stopRequested = false;
  running = true;
  try {
    let text = "";
    const out = batch.add(prompt, {
      maxTokens: req.maxTokens, temperature: 0, stopTokens: req.ignoreEos ? [] : m.stopTokens,
      decode: tokenizer ? (ids) => tokenizer.decode(ids) : undefined,
      onText: (d) => (text += d),
    });
    let positions = 0;
    let more = true;
    while (more) {
      if (stopRequested) break;
      stepMaps = [];
      const before = batch.prefillSeconds + batch.decodeSeconds;
      const phase = positions === 0 ? "prefill" : "decode";
      more = batch.step();
      positions = phase === "prefill" ? prompt.length : positions + 1;
      post({ type: "step", phase, tokens: [...out.tokens], labels: out.tokens.map(label), text, positions, kvCacheBytes: batch.cache.bytes(), maps: stepMaps, divergence: divergence(), stepSeconds: batch.prefillSeconds + batch.decodeSeconds - before });
      await nextTask(); // lets a "stop" message in
    }
    post({ type: "done", tokens: out.tokens, text: out.text, finishReason: out.finishReason, prefillTokens: prompt.length, prefillSeconds: batch.prefillSeconds, decodeTokens: batch.decodeTokens, decodeSeconds: batch.decodeSeconds, kvCacheBytes: batch.cache.bytes(), aborted: stopRequested });
  } finally {
    model.probsRequest = null;
    batch.dispose();
    running = false;
  }
}

self.onmessage = async (e: MessageEvent<EngineRequest>) => {
  const req = e.data;
  if (req.type === "stop") {
    stopRequested = true;
    return;
  }
  if (running) return post({ type: "error", message: "the engine is busy generating; stop it first" });
  try {
    if (req.type === "load") await load(req);
    else await run(req);
  } catch (err) {
    post({ type: "error", message: err instanceof Error ? err.message : String(err) });
  }
};
