// The planner's roofline against mqa's own measured prefill and decode on this machine (issue 17):
// the CPU is the "GPU" (streaming-read bandwidth and SIMD peak measured in the same run by the WASM
// kernels, src/kernels/limits.ts), the model is bench/generate.ts's random-weight 12-layer, 768-wide
// LLaMA (f16 weights, f16 KV cache) with 12 (MHA), 4 (GQA) and 1 (MQA) KV heads, and for each
// context the planner's decodeEstimate / prefillEstimate are put beside the measured times.
// Never a test: timings depend on the machine and its load. Writes docs/benchmarks/roofline.md.
//
//   npx tsx bench/roofline.ts [--contexts 512,2048,4096] [--decode 32] [--threads 2] [--kv-heads 12,4,1]
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { generate } from "../src/generate/generate.js";
import { openRuntime } from "../src/generate/runtime.js";
import { measureLimits } from "../src/kernels/limits.js";
import { customGpu } from "../src/planner/gpus.js";
import { decodeEstimate, resolvePlanOptions } from "../src/planner/plan.js";
import { prefillEstimate } from "../src/planner/prefill.js";
import { loadSpec } from "../src/formats/model-file.js";
import { benchModel } from "./generate.js";

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const CONTEXTS = arg("--contexts", "512,2048,4096").split(",").map(Number);
const DECODE = Number(arg("--decode", "32"));
const THREADS = Number(arg("--threads", "2"));
const KV = arg("--kv-heads", "12,4,1").split(",").map(Number);
const CHUNK = 512;

const dir = join(tmpdir(), "mqa-bench");
mkdirSync(dir, { recursive: true });
const rows: string[] = [];
let limitsText = "";
const t0 = Date.now();
for (const K of KV) {
  const path = benchModel(dir, K, "f16", Math.max(...CONTEXTS) + DECODE);
  const spec = await loadSpec(path);
  const rt = await openRuntime(path, { threads: THREADS, tokenizer: false });
  try {
    const lim = measureLimits(rt.arena, rt.kernels);
    if (!lim) throw new Error(`${rt.kernels.name}: no stream/peak probes (the WASM backend has them)`);
    const gpu = customGpu({ memoryGiB: 24, bandwidthGBs: lim.streamBytesPerSecond / 1e9, tflops: lim.simdFlopsPerSecond / 1e12, name: "this CPU" });
    limitsText ||= `stream read ${(lim.streamBytesPerSecond / 1e9).toFixed(1)} GB/s, SIMD peak ${(lim.simdFlopsPerSecond / 1e9).toFixed(1)} GFLOP/s (${lim.threads} threads; measured again before each model: the table's ratios use that model's)`;
    for (const context of CONTEXTS) {
      const P = context - DECODE;
      const prompt = Array.from({ length: P }, (_, i) => 300 + ((i * 7919) % 31000));
      const r = generate(rt.model, [prompt], { maxTokens: DECODE, temperature: 0, stopTokens: [], kvDtype: "f16", prefillChunk: CHUNK });
      const o = resolvePlanOptions(spec, { gpu, context: P + DECODE / 2, weightDtype: "f16", kvDtype: "f16", batch: 1 });
      const dec = decodeEstimate(spec, o, 1);
      const pre = prefillEstimate(spec, o, P, 1, CHUNK);
      const measuredStep = r.decodeSeconds / Math.max(1, r.decodeTokens);
      const label = K === spec.numHeads ? "MHA" : K === 1 ? "MQA" : `GQA-${K}`;
      rows.push(`| ${label} | ${context} | ${(dec.stepSeconds * 1000).toFixed(2)} (${dec.bound}) | ${(measuredStep * 1000).toFixed(2)} | ${(dec.stepSeconds / measuredStep * 100).toFixed(0)} % | ${pre.seconds.toFixed(2)} (${pre.bound}) | ${r.prefillSeconds.toFixed(2)} | ${(pre.seconds / r.prefillSeconds * 100).toFixed(0)} % | ${(lim.streamBytesPerSecond / 1e9).toFixed(1)} / ${(lim.simdFlopsPerSecond / 1e9).toFixed(1)} |`);
      console.error(rows[rows.length - 1]);
    }
  } finally {
    rt.close();
  }
}
const md = [
  "# The planner's roofline against measured decode and prefill (this CPU)",
  "",
  `Command: \`npx tsx bench/roofline.ts${args.length ? " " + args.join(" ") : ""}\` (${new Date().toISOString()}, ${((Date.now() - t0) / 60000).toFixed(1)} min). CPU: ${cpus()[0]?.model ?? "?"} (lscpu model name), ${cpus().length} vCPUs, ${THREADS} kernel threads; load average at the end ${loadavg().map((x) => x.toFixed(2)).join(" ")}.`,
  "",
  `Target given to the planner: ${limitsText}. Model: random-weight LLaMA, 12 layers, width 768, 12 query heads of 64, SwiGLU 2048, vocab 32000, tied embeddings, f16 weights, f16 KV cache; one sequence; prefill in chunks of ${CHUNK} tokens, then ${DECODE} decode steps. Decode estimate at the middle of the decode steps (prompt + ${DECODE / 2} cached tokens).`,
  "",
  "“Roofline / measured” is the share of the roofline mqa reaches (100 % = at the limit). Decode reads every weight and the whole KV cache once per token (memory-bound here); prefill is compute-bound (2 × parameters × tokens plus causal attention; planner/prefill.ts).",
  "",
  "| attention | context | decode step, roofline (ms) | decode step, measured (ms) | roofline / measured | prefill, roofline (s) | prefill, measured (s) | roofline / measured | stream GB/s / peak GFLOP/s (same run) |",
  "|---|---|---|---|---|---|---|---|---|",
  ...rows,
  "",
  "The test `roofline: the planner's decode bytes are the bytes mqa's decode reads` (test/planner-roofline.test.ts) checks on fixture models that the estimate's numerator — weight bytes and KV bytes per step — equals what the runtime holds and reads; the ratio above is then the kernels' efficiency, not an accounting error.",
  "",
].join("\n");
writeFileSync("docs/benchmarks/roofline.md", md);
console.log(md);
