// Same-process A/B of the f16 weight layouts in end-to-end generation: the bench GGUF (bench/generate.ts
// benchModel, ~110M LLaMA, f16 weights) loaded twice into one arena, once in the rows4 layout the
// WASM kernels prefer (src/kernels/rows4.ts) and once in the file's row layout, on the same kernels.
// Prefill chunks (the prompt 4 times, into fresh sequences) and decode tokens alternate between the
// two, the order flipping every step, so both see the same load; the logits of every step must be
// bit-identical. "pack s": packRows4 over as many halves as the model's weights (the load-time cost). Never a test: timings depend
// on the machine and its load.
//   node --experimental-wasm-relaxed-simd --import tsx bench/layout-ab.ts [--kv-heads 12,4,1] [--context 512] [--decode 64] [--threads 2]
import { cpus, loadavg, tmpdir } from "node:os";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Arena } from "../src/kernels/memory.js";
import { createKernels } from "../src/kernels/index.js";
import { enableRelaxedSimdFlag } from "../src/kernels/wasm-node.js";
import { loadModel } from "../src/models/index.js";
import { packRows4 } from "../src/kernels/rows4.js";
import { benchModel, promptTokens } from "./generate.js";
import { flag } from "./flags.js";

const kvList = flag("kv-heads", "12,4,1").split(",").map(Number);
const context = Number(flag("context", "512"));
const decode = Number(flag("decode", "64"));
const threads = Number(flag("threads", "2"));
const PREFILL_REPS = 4;

enableRelaxedSimdFlag();
const dir = join(tmpdir(), "mqa-bench-models");
mkdirSync(dir, { recursive: true });
const arena = new Arena({ initialBytes: 64 << 20 });
const kernels = await createKernels({ arena, backend: "wasm", threads, relaxed: "auto" });
console.log(`# f16 weight layout A/B, ${new Date().toISOString()}, ${cpus()[0]?.model} x${cpus().length}, ${kernels.name}, ${threads} threads, context ${context}, ${decode} decode tokens, load ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
console.log("| KV heads | pack s | prefill tok/s rows4 / rows | ratio | decode ms/token rows4 / rows (median) | ratio |");
console.log("|---|---|---|---|---|---|");
const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
for (const kv of kvList) {
  const path = benchModel(dir, kv, "f16", context);
  const rows = (await loadModel(path, { arena, kernels, weightLayout: "rows" })).model;
  const rows4 = (await loadModel(path, { arena, kernels })).model;
  // Packing's cost at load: packRows4 over as many halves as the model's weights, [N, 768].
  const halves = new Uint16Array(Math.floor(rows.weightBytes() / 2 / 3072) * 3072).fill(1); // touched, as the loaded weights are
  const t = performance.now();
  packRows4(halves, halves.length / 768, 768);
  const packSeconds = (performance.now() - t) / 1000;
  const engines = [rows4, rows];
  const caches = engines.map((m) => m.createCache({ dtype: "f16", maxTokens: context }));
  const seqs = caches.map((c) => c.addSequence());
  const P = context - decode - 2;
  const prompt = promptTokens(P);
  const pre = [0, 0];
  const dec: number[][] = [[], []];
  const step = (i: number, ids: number[], acc: (e: number, ms: number) => void) => {
    const order = i % 2 === 0 ? [0, 1] : [1, 0];
    const out: Float32Array[] = [];
    for (const e of order) {
      const a = performance.now();
      out[e] = engines[e].forward(caches[e], [seqs[e]], [ids], "last");
      acc(e, performance.now() - a);
    }
    if (!same(out[0], out[1])) throw new Error(`KV heads ${kv}: logits differ between the layouts at step ${i}`);
  };
  // The prompt's prefill PREFILL_REPS times into fresh sequences, the order flipping each time.
  for (let r = 0; r < PREFILL_REPS; r++) {
    if (r > 0) caches.forEach((c, e) => { c.freeSequence(seqs[e]); seqs[e] = c.addSequence(); });
    for (let s0 = 0, i = r; s0 < P; s0 += 512, i++) step(i, prompt.slice(s0, s0 + 512), (e, ms) => (pre[e] += ms));
  }
  step(0, [prompt[P - 1]], () => {}); // warm-up decode step, untimed (bench/generate.ts DECODE_WARMUP)
  for (let i = 0; i < decode; i++) step(i, [prompt[i % P]], (e, ms) => dec[e].push(ms));
  const [d4, dr] = dec.map(median);
  console.log(`| ${kv} | ${packSeconds.toFixed(2)} | ${(PREFILL_REPS * P / pre[0] * 1000).toFixed(1)} / ${(PREFILL_REPS * P / pre[1] * 1000).toFixed(1)} | ${(pre[1] / pre[0]).toFixed(2)} | ${d4.toFixed(2)} / ${dr.toFixed(2)} | ${(dr / d4).toFixed(2)} |`);
  caches.forEach((c) => c.dispose());
}
console.log(`# load at end ${loadavg().map((x) => x.toFixed(2)).join(" ")}; ratios are rows time / rows4 time (> 1: rows4 faster)`);
kernels.close();
