// Batched decode (M = 1..4 rows of x against one weight matrix) of the WASM matmul, as `mqa serve`
// runs it with several sequences decoding at once. Never a test: timings depend on load.
//
// Legend: M rows of x (sequences in the step), N output features (rows of w), Kin input features.
// Each shape rotates over enough copies of w (>= 96 MiB) that every call reads its weights from
// DRAM, as in decode. One round times, in order, every M on the current build, every M on the
// --baseline build (if given) and a streaming read of the same bytes; each figure is the best of
// its rounds, so the variants see the same load (this machine is shared and noisy).
//   node --import tsx bench/batch-decode.ts [--threads 1] [--dtypes f32,f16,q8_0] [--shapes 2048x768]
//        [--ms 1,2,3,4] [--seconds 1] [--baseline old/build/kernels-relaxed.wasm] [--hot]
// --hot: one copy of w, cache-resident when it fits L2 (what the arithmetic alone costs).
// Columns: ms/call; ×M=1, the call against M = 1 of the same build (1.00 would mean the extra rows
// are free); stream, the streaming read's ms for the same bytes; base ms and ×base (base ms / ms).
import { cpus, loadavg } from "node:os";
import { readFileSync } from "node:fs";
import { Arena } from "../src/kernels/memory.js";
import { createKernels, type KernelHandle } from "../src/kernels/index.js";
import type { WasmKernels } from "../src/kernels/wasm.js";
import type { WeightDtype } from "../src/kernels/types.js";
import { enableRelaxedSimdFlag } from "../src/kernels/wasm-node.js";
import { encodeF16 } from "../src/dtypes/codecs.js";
import { encodeQ8_0 } from "../src/dtypes/q8_0.js";
import { rowBytes } from "../src/dtypes/table.js";
import { flag } from "./flags.js";

const MiB = 1024 * 1024;
const ROTATE_BYTES = 96 * MiB;

const threadList = flag("threads", "1").split(",").map(Number);
const dtypes = flag("dtypes", "f32,f16,q8_0").split(",") as WeightDtype[];
const shapes = flag("shapes", "2048x768").split(",").map((s) => s.split("x").map(Number) as [number, number]);
const Ms = flag("ms", "1,2,3,4").split(",").map(Number);
const seconds = Number(flag("seconds", "1"));
const baselinePath = flag("baseline", "");
const hot = process.argv.includes("--hot");
const maxM = Math.max(...Ms);

enableRelaxedSimdFlag();
const loadBefore = loadavg();
const maxWBytes = Math.max(...shapes.map(([N, Kin]) => N * Kin * 4));
const arena = new Arena({ initialBytes: ROTATE_BYTES + 2 * maxWBytes + 64 * MiB });
const cur = new Map<number, KernelHandle>();
const base = new Map<number, KernelHandle>();
const baseModule = baselinePath ? new WebAssembly.Module(readFileSync(baselinePath)) : undefined;
for (const t of threadList) {
  cur.set(t, await createKernels({ arena, backend: "wasm", threads: t, relaxed: "auto" }));
  if (baseModule) base.set(t, await createKernels({ arena, backend: "wasm", threads: t, relaxed: "auto", module: baseModule }));
}

// Random weights in [-0.1, 0.1), activations in [-2, 2): finite, typical of a trained model, so f16
// takes its fast path with wFinite as the model runtime sets it.
let seed = 12345;
const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0), seed / 2147483648 - 1);
const maxKin = Math.max(...shapes.map(([, k]) => k)), maxN = Math.max(...shapes.map(([n]) => n));
const x = arena.alloc(maxM * maxKin * 4, "bench x"); // [M, Kin]
const out = arena.alloc(maxM * maxN * 4, "bench out"); // [M, N]
arena.f32(x, maxM * maxKin).forEach((_, i, a) => (a[i] = 2 * rnd()));

console.log(`# ${new Date().toISOString()} ${cpus()[0]?.model} x${cpus().length}, node ${process.version}, load ${loadBefore.map((l) => l.toFixed(2)).join(" ")}, kernels ${cur.get(threadList[0])!.name}${hot ? ", hot (one copy of w)" : ""}${baseModule ? `, baseline ${baselinePath}` : ""}`);
console.log(`dtype  N      Kin   thr  M   ms/call  ×M=1   stream ms${baseModule ? "   base ms  base ×M=1  ×base" : ""}`);
for (const dt of dtypes) {
  for (const [N, Kin] of shapes) {
    const wf = Float32Array.from({ length: N * Kin }, () => 0.1 * rnd());
    const wBytes = N * rowBytes(dt, Kin);
    const encoded = dt === "f32" ? new Uint8Array(wf.buffer) : dt === "f16" ? new Uint8Array(encodeF16Array(wf).buffer) : encodeQ8_0(wf);
    const stride = Math.ceil(wBytes / 4096) * 4096;
    const copies = hot ? 1 : Math.max(2, Math.ceil(ROTATE_BYTES / stride));
    const pool = arena.alloc(copies * stride, "bench w");
    for (let c = 0; c < copies; c++) arena.u8(pool + c * stride, wBytes).set(encoded);
    for (const t of threadList) {
      const k = cur.get(t)!, b = base.get(t);
      const best = { cur: Ms.map(() => Infinity), base: Ms.map(() => Infinity), stream: Infinity };
      let i = 0;
      const next = () => pool + (i++ % copies) * stride;
      const time = (f: () => void): number => {
        const t0 = performance.now();
        f();
        return performance.now() - t0;
      };
      const start = performance.now();
      for (let round = 0; round < 8 || performance.now() - start < seconds * 1000; round++) {
        const keep = round > 0; // the first round compiles and faults pages in
        for (const [j, M] of Ms.entries()) {
          const ms = time(() => k.matmul({ x, w: next(), bias: 0, out, M, N, Kin, wDtype: dt, wFinite: true }));
          if (keep) best.cur[j] = Math.min(best.cur[j], ms);
        }
        if (b) {
          for (const [j, M] of Ms.entries()) {
            const ms = time(() => b.matmul({ x, w: next(), bias: 0, out, M, N, Kin, wDtype: dt, wFinite: true }));
            if (keep) best.base[j] = Math.min(best.base[j], ms);
          }
        }
        const ms = time(() => (k as unknown as WasmKernels).streamRead(next(), wBytes));
        if (keep) best.stream = Math.min(best.stream, ms);
        if (round > 20000) break;
      }
      const one = best.cur[Ms.indexOf(1)] ?? NaN, baseOne = best.base[Ms.indexOf(1)] ?? NaN;
      for (const [j, M] of Ms.entries()) {
        const row = `${dt.padEnd(6)} ${String(N).padEnd(6)} ${String(Kin).padEnd(5)} ${String(t).padEnd(4)} ${M}  ${best.cur[j].toFixed(3).padStart(8)}  ${(best.cur[j] / one).toFixed(2)}  ${best.stream.toFixed(3).padStart(9)}`;
        console.log(b ? `${row}  ${best.base[j].toFixed(3).padStart(8)}  ${(best.base[j] / baseOne).toFixed(2).padStart(9)}  ${(best.base[j] / best.cur[j]).toFixed(2).padStart(5)}` : row);
      }
    }
    arena.release(pool);
  }
}
for (const k of [...cur.values(), ...base.values()]) k.close();
console.log(`# load after ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);

function encodeF16Array(a: Float32Array): Uint16Array {
  const h = new Uint16Array(a.length);
  encodeF16(a, h);
  return h;
}
