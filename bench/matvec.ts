// Decode matvec (M = 1) speed of the WASM kernels beside a streaming read of the same weight bytes,
// measured interleaved in the same run over the same threads. Never a test: timings depend on load.
//
// Shapes: the decode projections and LM head of a 110M LLaMA (dim 768, hidden 2048, vocab 32000),
// plus N = Kin = 4096. Each shape rotates over enough copies of w (>= 96 MiB) that, as in decode,
// every call reads its weights from DRAM, not cache; the probe reads the same copy right after.
//   node --import tsx bench/matvec.ts [--threads 1,2] [--dtypes f32,f16,bf16,q8_0,q4_k,…] [--rows 1|2|3] [--seconds 0.5] [--hot] [--baseline old.wasm]
// --baseline: an older build/kernels-relaxed.wasm, timed interleaved with the current one (same-run
// A/B on this shared, noisy machine); its GB/s is printed as "base" and the speed-up as "×base".
// Calibrate first: --baseline with a copy of the current build read 1.03-1.15x (2026-11-29), a bias
// toward the current build that an A/B must exceed to count.
// --finite: the calls (current build and baseline alike) set MatmulCall.wFinite (f16: no in-loop inf/NaN check).
// --rows4: the current build's f16/bf16 calls read w in the rows4 layout (MatmulCall.wRows4; the same bytes,
// so the same traffic: timing only), the baseline's in rows. With --baseline a copy of the current
// build (cp build/kernels-relaxed.wasm /tmp/cur.wasm) this is a same-run A/B of the two layouts.
// --rows4-both: both builds read rows4 (an A/B of kernel changes in the layout a loaded model uses).
import { cpus, loadavg } from "node:os";
import { readFileSync } from "node:fs";
import { Arena } from "../src/kernels/memory.js";
import { createKernels, type KernelHandle } from "../src/kernels/index.js";
import type { WasmKernels } from "../src/kernels/wasm.js";
import { enableRelaxedSimdFlag } from "../src/kernels/wasm-node.js";
import { encodeF16 } from "../src/dtypes/codecs.js";
import { rowBytes } from "../src/dtypes/table.js";
import { encodeQ8_0 } from "../src/dtypes/q8_0.js";
import { encodeQuant, isGgmlQuant, type GgmlQuant } from "../src/dtypes/ggml_quants.js";
import { rows4Eligible } from "../src/kernels/rows4.js";
import { flag } from "./flags.js";

const MiB = 1024 * 1024;
const ROTATE_BYTES = 96 * MiB;

const threadList = flag("threads", "1,2").split(",").map(Number);
const dtypes = flag("dtypes", "f32,f16").split(",") as ("f32" | "f16" | "bf16" | "q8_0" | GgmlQuant)[];
const seconds = Number(flag("seconds", "0.5"));
const finite = process.argv.includes("--finite");
const rowsM = Number(flag("rows", "1")); // M: 1 (decode) or 2-3 (batched decode)
const rows4Both = process.argv.includes("--rows4-both"); // both builds read rows4: an A/B of kernel changes in the runtime's layout
const rows4 = rows4Both || process.argv.includes("--rows4");
const hot = process.argv.includes("--hot"); // one copy of w: cache-resident for the small shapes (compute bound)
const shapes: [number, number][] = [
  [768, 768],
  [2048, 768],
  [768, 2048],
  [32000, 768],
  [4096, 4096],
];

enableRelaxedSimdFlag();
const loadBefore = loadavg();
const arena = new Arena({ initialBytes: 256 * MiB });
const kernels = new Map<number, KernelHandle>();
for (const t of threadList) kernels.set(t, await createKernels({ arena, backend: "wasm", threads: t, relaxed: "auto" }));
const wasm = (t: number) => kernels.get(t) as unknown as WasmKernels;
const baselinePath = flag("baseline", "");
const baseModule = baselinePath ? new WebAssembly.Module(readFileSync(baselinePath)) : undefined;
const baseKernels = new Map<number, KernelHandle>();
if (baseModule) for (const t of threadList) baseKernels.set(t, await createKernels({ arena, backend: "wasm", threads: t, relaxed: "auto", module: baseModule }));

const maxW = Math.max(...shapes.map(([n, k]) => n * k * 4));
const poolBytes = Math.max(ROTATE_BYTES, maxW) + maxW;
const wPool = arena.alloc(poolBytes, "bench w");
const x = arena.alloc(3 * 4096 * 4, "bench x");
const out = arena.alloc(3 * 32000 * 4, "bench out");
// Random weights in [-0.1, 0.1), activations in [-2, 2): finite, typical of a trained model.
{
  let s = 12345;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s / 2147483648 - 1);
  const xs = arena.f32(x, 3 * 4096);
  for (let i = 0; i < xs.length; i++) xs[i] = 2 * rnd();
  const block = new Float32Array(MiB);
  for (let i = 0; i < block.length; i++) block[i] = 0.1 * rnd();
  const f32bytes = new Uint8Array(block.buffer);
  const dst = arena.u8(wPool, poolBytes);
  for (let o = 0; o < poolBytes; o += f32bytes.length) dst.set(f32bytes.subarray(0, Math.min(f32bytes.length, poolBytes - o)), o);
}

console.log(`# ${new Date().toISOString()} ${cpus()[0]?.model} x${cpus().length}, node ${process.version}, load ${loadBefore.map((l) => l.toFixed(2)).join(" ")}, kernels ${kernels.get(threadList[0])!.name}${finite ? ", wFinite" : ""}${rows4Both ? ", both builds read f16/bf16 w as rows4" : rows4 ? ", current build reads f16/bf16 w as rows4" : ""}`);
console.log(`dtype  N      Kin   thr   ms/call   GB/s   stream GB/s  fraction${baseModule ? "   base GB/s  ×base" : ""}`);
const orig = arena.f32(wPool, poolBytes / 4).slice(); // the f32 weights each dtype is encoded from
for (const dt of dtypes) {
  let validBytes = dt === "f32" ? poolBytes : poolBytes / 2; // bytes of the pool holding encoded weights
  // Re-encode the pool in place: f16/bf16 in the first half of the f32 bytes.
  if (dt === "f32") arena.f32(wPool, poolBytes / 4).set(orig);
  else if (dt === "q8_0" || isGgmlQuant(dt)) {
    // Block types: the first maxW f32 weights encoded (every copy the timing loop reads lies inside them)
    const enc = dt === "q8_0" ? encodeQ8_0(orig.subarray(0, poolBytes / 8)) : encodeQuant(dt, orig.subarray(0, poolBytes / 8));
    arena.u8(wPool, enc.length).set(enc);
    validBytes = enc.length;
  } else {
    const h = new Uint16Array(poolBytes / 4);
    if (dt === "f16") encodeF16(orig, h);
    else {
      const u = new Uint32Array(orig.buffer);
      for (let i = 0; i < h.length; i++) h[i] = u[i] >>> 16; // bf16: the high half (truncation)
    }
    arena.u8(wPool, poolBytes).set(new Uint8Array(h.buffer, 0, poolBytes / 2));
  }
  for (const [N, Kin] of shapes) {
    const wBytes = N * rowBytes(dt, Kin);
    const stride = Math.ceil(wBytes / 4096) * 4096;
    const copies = hot ? 1 : Math.max(1, Math.floor(Math.min(ROTATE_BYTES, validBytes - stride) / stride));
    for (const t of threadList) {
      const k = kernels.get(t)!;
      let i = 0;
      const bk = baseKernels.get(t);
      let best = Infinity, bestProbe = Infinity, bestBase = Infinity;
      const start = performance.now();
      for (let rep = 0; rep < 3 * copies || performance.now() - start < seconds * 1000; rep++) {
        // Current build, probe and baseline each read their own copy of w; the order alternates
        // (current first on even reps, baseline first on odd) so neither always follows the probe.
        let t0 = 0, t1 = 0, t2 = 0, tb = Infinity;
        const runBase = () => {
          if (!bk) return;
          const w3 = wPool + (i++ % copies) * stride;
          const t3 = performance.now();
          bk.matmul({ x, w: w3, bias: 0, out, M: rowsM, N, Kin, wDtype: dt, wFinite: finite, wRows4: rows4Both && rows4Eligible(dt, N, Kin) }); // the same call as the current build
          tb = performance.now() - t3;
        };
        if (rep % 2 === 1) runBase();
        const w = wPool + (i++ % copies) * stride;
        t0 = performance.now();
        k.matmul({ x, w, bias: 0, out, M: rowsM, N, Kin, wDtype: dt, wFinite: finite, wRows4: rows4 && rows4Eligible(dt, N, Kin) });
        t1 = performance.now();
        const w2 = wPool + (i++ % copies) * stride;
        wasm(t).streamRead(w2, wBytes);
        t2 = performance.now();
        if (rep % 2 === 0) runBase();
        if (rep > 0) {
          best = Math.min(best, t1 - t0);
          bestProbe = Math.min(bestProbe, t2 - t1);
          bestBase = Math.min(bestBase, tb);
        }
        if (rep > 4000) break;
      }
      const gbps = wBytes / best / 1e6, sgbps = wBytes / bestProbe / 1e6;
      console.log(`${dt.padEnd(6)} ${String(N).padEnd(6)} ${String(Kin).padEnd(5)} ${t}   ${best.toFixed(3).padStart(8)}  ${gbps.toFixed(1).padStart(5)}   ${sgbps.toFixed(1).padStart(9)}     ${(gbps / sgbps).toFixed(2)}${bk ? `   ${(wBytes / bestBase / 1e6).toFixed(1).padStart(9)}  ${(bestBase / best).toFixed(2).padStart(5)}` : ""}`);
    }
  }
}
for (const k of [...kernels.values(), ...baseKernels.values()]) k.close();
console.log(`# load after ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
