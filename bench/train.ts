// Training throughput: mqa (hand-written backward, Kernels.matmul on WASM SIMD) vs PyTorch CPU on the
// same decoder, batch, sequence length and thread count, in one run.
//
//   npx tsx bench/train.ts [--layers 4 --hidden 256 --heads 8 --kv-heads 2 --ffn 704 --vocab 4096
//                           --batch 8 --context 256 --steps 5 --threads 2 --backend auto --json]
//
// Both sides train on random tokens (speed does not depend on the text) with AdamW and clipping, after
// one warm-up update. The PyTorch side is bench/train_torch.py under /usr/bin/python3; it reports the
// BLAS library it actually loaded (read from /proc/self/maps).
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { availableParallelism, cpus, loadavg } from "node:os";
import { createKernels } from "../src/kernels/index.js";
import { measureSimdPeak } from "../src/kernels/limits.js";
import { enableRelaxedSimdFlag } from "../src/kernels/wasm-node.js";
import { Arena } from "../src/kernels/memory.js";
import { arenaAllocator } from "../src/train/alloc.js";
import { TextBatches, Trainer } from "../src/train/loop.js";
import { kernelMatmuls, tsMatmuls } from "../src/train/matmul.js";
import { f32Allocator, TrainModel } from "../src/train/model.js";
import { kernelTrainOps } from "../src/train/trainops.js";
import { Rng } from "../src/random.js";

const defaults = { layers: 4, hidden: 256, heads: 8, "kv-heads": 2, ffn: 704, vocab: 4096, batch: 8, context: 256, steps: 5, threads: 2 };
type Key = keyof typeof defaults;
const a: Record<Key, number> = { ...defaults };
let backend = "auto";
let json = false;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const k = argv[i].replace(/^--/, "");
  if (k === "json") json = true;
  else if (k === "backend") backend = argv[++i];
  else if (k in a) a[k as Key] = Number(argv[++i]);
  else throw new Error(`bench/train.ts: unknown flag ${argv[i]}`);
}

async function mqa() {
  enableRelaxedSimdFlag(); // as the mqa CLI does (src/cli/main.ts)
  const arena = new Arena({ initialBytes: 64 << 20, base: 1 << 20 });
  const kernels = backend === "ts" ? null : await createKernels({ arena, backend: backend as "auto", threads: a.threads });
  const cfg = {
    vocabSize: a.vocab, hiddenSize: a.hidden, numLayers: a.layers, numHeads: a.heads, numKvHeads: a["kv-heads"], headDim: a.hidden / a.heads,
    intermediateSize: a.ffn, maxPositions: a.context, ropeTheta: 10000, normEps: 1e-5,
  };
  const mm = kernels ? kernelMatmuls(kernels, arena) : tsMatmuls();
  const model = kernels ? new TrainModel(cfg, mm, arenaAllocator(arena), kernelTrainOps(kernels, arena, mm)) : new TrainModel(cfg, mm, f32Allocator);
  model.init(0);
  const rng = new Rng(0);
  const ids = Uint16Array.from({ length: 1 << 20 }, () => rng.int(a.vocab));
  const trainer = new Trainer(model, { steps: a.steps + 1, batch: a.batch, seqLen: a.context, accum: 1, lr: 3e-3, minLr: 3e-4, warmup: 1, weightDecay: 0.1, clip: 1, seed: 0 }, new TextBatches(ids));
  trainer.trainStep();
  // The SIMD peak (independent f32x4 multiply-adds in registers, both threads), measured before and
  // after the timed updates; the higher is the limit the step is held to.
  const peak = () => (kernels ? (measureSimdPeak(kernels, 1) ?? 0) / 1e9 : 0);
  const peakBefore = peak();
  const t0 = performance.now();
  for (let s = 0; s < a.steps; s++) trainer.trainStep();
  const seconds = (performance.now() - t0) / 1000;
  const peakGflops = Math.max(peakBefore, peak());
  const threads = kernels ? kernels.threads : 1; // read before close(), which stops the workers
  kernels?.close();
  const tokensPerSecond = (a.steps * a.batch * a.context) / seconds;
  const gflops = (tokensPerSecond * flopsPerToken()) / 1e9;
  return { impl: "mqa", backend: kernels ? kernels.name : "ts", params: model.numParams, threads, steps: a.steps, seconds, tokens_per_second: tokensPerSecond, gflops, peakGflops, peakFraction: peakGflops ? gflops / peakGflops : null };
}

/**
 * FLOPs of one training token: forward 2 per weight of every matrix (embedding lookup excluded) plus
 * causal attention, 2·2·D per (query head, visible key) for scores and weighted values, counted at
 * half of T×T (the average row sees (T + 1) / 2 keys); backward twice the forward.
 */
function flopsPerToken(): number {
  const C = a.hidden, H = a.heads, K = a["kv-heads"], D = C / H, F = a.ffn, L = a.layers, T = a.context;
  const matrices = L * (C * H * D + 2 * C * K * D + H * D * C + 3 * C * F) + C * a.vocab;
  const attention = L * H * 4 * D * ((T + 1) / 2);
  return 3 * (2 * matrices + attention);
}

function torch() {
  const script = join(dirname(fileURLToPath(import.meta.url)), "train_torch.py");
  const args = [script, ...Object.entries(a).flatMap(([k, v]) => [`--${k}`, String(v)])];
  const r = spawnSync("/usr/bin/python3", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`bench/train.ts: PyTorch run failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

const ours = await mqa();
const theirs = torch();
const result = {
  config: a, cpu: cpus()[0]?.model, cores: availableParallelism(), loadavgBefore: loadavg(),
  mqa: ours, pytorch: theirs, ratio: ours.tokens_per_second / theirs.tokens_per_second,
};
if (json) console.log(JSON.stringify(result, null, 2));
else {
  console.log(`model: ${a.layers} layers, hidden ${a.hidden}, ${a.heads} heads / ${a["kv-heads"]} KV heads, ffn ${a.ffn}, vocab ${a.vocab}; ${ours.params} parameters (PyTorch: ${theirs.params})`);
  console.log(`batch ${a.batch} × context ${a.context}, ${a.steps} timed updates after 1 warm-up, ${a.threads} threads; load average ${loadavg().map((x) => x.toFixed(1)).join(" ")}`);
  console.log(`| | tokens/s | seconds | backend |`);
  console.log(`|---|---|---|---|`);
  console.log(`| mqa | ${ours.tokens_per_second.toFixed(0)} | ${ours.seconds.toFixed(1)} | ${ours.backend}, ${ours.threads} threads |`);
  console.log(`| PyTorch ${theirs.torch} | ${theirs.tokens_per_second.toFixed(0)} | ${theirs.seconds.toFixed(1)} | BLAS: ${theirs.blas.join(", ")}; ${theirs.threads} threads |`);
  console.log(`ratio mqa / PyTorch: ${result.ratio.toFixed(2)}×`);
  if (ours.peakGflops) console.log(`mqa: ${ours.gflops.toFixed(1)} GFLOP/s of ${(flopsPerToken() / 1e6).toFixed(1)} MFLOP per token (causal attention at half) = ${(100 * ours.peakFraction!).toFixed(0)} % of the SIMD peak measured in this run (${ours.peakGflops.toFixed(1)} GFLOP/s, ${ours.threads} threads)`);
}
