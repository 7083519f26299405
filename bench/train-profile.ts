// Where one training update spends its time: wall time per update, the share spent inside the matrix
// products (per product kind), and each TrainOps kernel (cross-entropy, SwiGLU, norms, attention, AdamW).
//
//   npx tsx bench/train-profile.ts [--steps 4] [--threads 2] [--ts-ops]
//
// Same model, batch and sequence length as bench/train.ts (4.9M parameters, 8 × 256 tokens, GQA 8/2).
// --ts-ops runs the plain-TypeScript TrainOps (the specification) instead of the WASM ones, which is the
// "before" of the training-speed work. Timings wrap each call on the main thread, so a kernel's time
// includes dispatching to and waiting for the worker pool.
import { cpus, loadavg } from "node:os";
import { createKernels } from "../src/kernels/index.js";
import { enableRelaxedSimdFlag } from "../src/kernels/wasm-node.js";
import { Arena } from "../src/kernels/memory.js";
import { arenaAllocator } from "../src/train/alloc.js";
import { TextBatches, Trainer } from "../src/train/loop.js";
import { kernelMatmuls, type Matmuls } from "../src/train/matmul.js";
import { TrainModel } from "../src/train/model.js";
import { kernelTrainOps, tsTrainOps, type TrainOps } from "../src/train/trainops.js";
import { Rng } from "../src/random.js";
import { flag } from "./flags.js";

const steps = Number(flag("steps", "4"));
const threads = Number(flag("threads", "2"));
const tsOps = process.argv.includes("--ts-ops");

/** Wraps every method of `obj` so its wall time accumulates under its name in `into`. */
function timed<T extends object>(obj: T, into: Map<string, number>, prefix: string): T {
  for (const k of Object.keys(obj) as (keyof T & string)[]) {
    const f = obj[k];
    if (typeof f !== "function") continue;
    (obj as Record<string, unknown>)[k] = (...args: unknown[]) => {
      const t = performance.now();
      const r = (f as (...a: unknown[]) => unknown).apply(obj, args);
      into.set(prefix + k, (into.get(prefix + k) ?? 0) + performance.now() - t);
      return r;
    };
  }
  return obj;
}

enableRelaxedSimdFlag();
const arena = new Arena({ initialBytes: 64 << 20, base: 1 << 20 });
const kernels = await createKernels({ arena, backend: "auto", threads });
const cfg = { vocabSize: 4096, hiddenSize: 256, numLayers: 4, numHeads: 8, numKvHeads: 2, headDim: 32, intermediateSize: 704, maxPositions: 256, ropeTheta: 10000, normEps: 1e-5 };
const times = new Map<string, number>();
const mm: Matmuls = timed(kernelMatmuls(kernels, arena), times, "matmul.");
const ops: TrainOps = timed(tsOps ? tsTrainOps(mm) : kernelTrainOps(kernels, arena, mm), times, "op.");
const model = new TrainModel(cfg, mm, arenaAllocator(arena), ops);
model.init(0);
const rng = new Rng(0);
const ids = Uint16Array.from({ length: 1 << 20 }, () => rng.int(cfg.vocabSize));
const trainer = new Trainer(model, { steps: steps + 1, batch: 8, seqLen: 256, accum: 1, lr: 3e-3, minLr: 3e-4, warmup: 1, weightDecay: 0.1, clip: 1, seed: 0 }, new TextBatches(ids));
trainer.trainStep();
times.clear();
const t0 = performance.now();
for (let s = 0; s < steps; s++) trainer.trainStep();
const total = performance.now() - t0;
kernels.close();

console.log(`CPU ${cpus()[0]?.model ?? "?"}, load ${loadavg()[0].toFixed(2)}, ${kernels.name}, ${threads} threads, ${tsOps ? "TS" : "WASM"} train ops`);
console.log(`${((steps * 8 * 256) / total * 1000).toFixed(0)} tokens/s, ${(total / steps).toFixed(0)} ms per update`);
// Ops that call matmuls (attention on the TS path) include those products; matmul rows are shown apart.
for (const [k, t] of [...times].sort((x, y) => y[1] - x[1])) {
  if (t / steps < 0.5) continue;
  console.log(`  ${k.padEnd(28)} ${(t / steps).toFixed(1).padStart(7)} ms  ${((100 * t) / total).toFixed(0).padStart(3)} %`);
}
