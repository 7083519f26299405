// Prefill projection speed (matmul with M >= 4, compute-bound) of the WASM kernels against the SIMD
// peak (independent f32x4 multiply-adds in registers, WasmKernels.simdPeak) measured in the same run,
// alternating with each case. Shapes: the projections of the 110M LLaMA of bench/generate.ts at a
// 512-token prefill chunk. Never a test: timings depend on the machine and its load.
//   node --import tsx bench/matmul.ts [--threads 1] [--m 512] [--cases nt:f32,nt:f16,nn:f32] [--seconds 1] [--baseline old.wasm]
// --baseline: an older build/kernels-relaxed.wasm, timed interleaved with the current build (same-run A/B).
// --rows4: the current build's nt f16/bf16 calls read w in the rows4 layout (MatmulCall.wRows4; same bytes,
// timing only), the baseline's in rows: with a copy of the current build as baseline, a layout A/B.
import { cpus, loadavg } from "node:os";
import { readFileSync } from "node:fs";
import { Arena } from "../src/kernels/memory.js";
import { createKernels } from "../src/kernels/index.js";
import type { WasmKernels } from "../src/kernels/wasm.js";
import { enableRelaxedSimdFlag } from "../src/kernels/wasm-node.js";
import { encodeF16 } from "../src/dtypes/codecs.js";
import type { Kernels, MatmulCall, MatmulLayout, WeightDtype } from "../src/kernels/types.js";
import { rows4Eligible } from "../src/kernels/rows4.js";
import { flag } from "./flags.js";
import { timeTogether } from "./stats.js";

const threads = Number(flag("threads", "1"));
const M = Number(flag("m", "512"));
const seconds = Number(flag("seconds", "1"));
const cases = flag("cases", "nt:f32,nt:f16").split(",").map((c) => c.split(":") as [MatmulLayout, WeightDtype]);
const shapes: [number, number][] = [[768, 768], [2048, 768], [768, 2048], [256, 768]];
const baselinePath = flag("baseline", "");
const rows4 = process.argv.includes("--rows4");

enableRelaxedSimdFlag();
const MiB = 1024 * 1024;
const arena = new Arena({ initialBytes: 64 * MiB });
const k = await createKernels({ arena, backend: "wasm", threads, relaxed: "auto" });
const base = baselinePath
  ? await createKernels({ arena, backend: "wasm", threads, relaxed: "auto", module: new WebAssembly.Module(readFileSync(baselinePath)) })
  : undefined;
const peakIters = 20_000, peakItems = 8 * threads;
const peakFlops = peakItems * peakIters * 12 * 8;

console.log(`# ${new Date().toISOString()} ${cpus()[0]?.model} x${cpus().length}, node ${process.version}, load ${loadavg().map((l) => l.toFixed(2)).join(" ")}, kernels ${k.name}, threads ${threads}, M ${M}`);
console.log(`layout dtype  N      Kin    ms      GFLOP/s  peak GFLOP/s  of peak${base ? "   base GFLOP/s  ×base" : ""}`);
let s = 1;
const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s / 2147483648 - 1);
for (const [N, Kin] of shapes) {
  const x = arena.alloc(M * Kin * 4, "x"), w = arena.alloc(N * Kin * 4, "w"), out = arena.alloc(M * N * 4, "out");
  const xs = arena.f32(x, M * Kin);
  for (let i = 0; i < xs.length; i++) xs[i] = rnd();
  const wf = new Float32Array(N * Kin);
  for (let i = 0; i < wf.length; i++) wf[i] = 0.1 * rnd();
  for (const [layout, dt] of cases) {
    if (dt === "f32") arena.f32(w, N * Kin).set(wf);
    else if (dt === "f16") encodeF16(wf, arena.u16(w, N * Kin));
    else throw new Error(`bench/matmul: --cases dtype ${dt}: expected f32 or f16`);
    const call: MatmulCall = { x, w, bias: 0, out, M, N, Kin, wDtype: dt, layout, wFinite: true };
    const cur = { ...call, wRows4: rows4 && layout === "nt" && rows4Eligible(dt, N, Kin) };
    const fns = [() => k.matmul(cur), () => (k as unknown as WasmKernels).simdPeak(peakIters, peakItems)];
    if (base) fns.push(() => (base as Kernels).matmul(call));
    const [ms, peakMs, baseMs] = timeTogether(fns, seconds);
    const gf = (2 * M * N * Kin) / ms / 1e6, peak = peakFlops / peakMs / 1e6;
    const b = base ? `   ${((2 * M * N * Kin) / baseMs / 1e6).toFixed(1).padStart(13)}  ${(baseMs / ms).toFixed(2).padStart(5)}` : "";
    console.log(`${layout.padEnd(6)} ${dt.padEnd(6)} ${String(N).padEnd(6)} ${String(Kin).padEnd(6)} ${ms.toFixed(2).padStart(6)}  ${gf.toFixed(1).padStart(7)}  ${peak.toFixed(1).padStart(12)}  ${((100 * gf) / peak).toFixed(0).padStart(6)} %${b}`);
  }
}
console.log(`# load after ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
k.close();
base?.close();
