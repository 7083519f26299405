// Same-process A/B of prefill attention (one chunk of T queries at the end of a context of S
// tokens, causal): the current build against an older build/kernels-relaxed.wasm, interleaved call
// by call with the SIMD peak probe. Never a test: timings depend on the machine and its load.
//   node --import tsx bench/prefill-ab.ts [--baseline old.wasm] [--threads 2] [--dtypes f16,f32] [--S 512,8192] [--T 512] [--H 12] [--K 12,4,1] [--D 64] [--seconds 2]
// Legend: H query heads, K kv heads, D head dim, S context after the chunk, T queries in the chunk.
// FLOPs: q·k and p·v over the visible keys, 4·D·H·Σ_t (S − T + t + 1).
import { cpus, loadavg } from "node:os";
import { readFileSync } from "node:fs";
import { Arena } from "../src/kernels/memory.js";
import { createKernels, type KernelHandle } from "../src/kernels/index.js";
import type { WasmKernels } from "../src/kernels/wasm.js";
import type { AttentionCall, KvDtype } from "../src/kernels/types.js";
import { enableRelaxedSimdFlag } from "../src/kernels/wasm-node.js";
import { encodeF16 } from "../src/dtypes/codecs.js";
import { elementBytes } from "../src/dtypes/table.js";
import { flag } from "./flags.js";
import { timeTogether } from "./stats.js";

const threads = Number(flag("threads", "2"));
const dtypes = flag("dtypes", "f16,f32").split(",") as KvDtype[];
const contexts = flag("S", "512,8192").split(",").map(Number);
const T = Number(flag("T", "512"));
const H = Number(flag("H", "12"));
const kvHeads = flag("K", "12,4,1").split(",").map(Number);
const D = Number(flag("D", "64"));
const seconds = Number(flag("seconds", "2"));
const baselinePath = flag("baseline", "");

enableRelaxedSimdFlag();
const MiB = 1024 * 1024;
const arena = new Arena({ initialBytes: 64 * MiB });
const cur = await createKernels({ arena, backend: "wasm", threads, relaxed: "auto" });
const base: KernelHandle | undefined = baselinePath
  ? await createKernels({ arena, backend: "wasm", threads, relaxed: "auto", module: new WebAssembly.Module(readFileSync(baselinePath)) })
  : undefined;
const maxS = Math.max(...contexts), maxK = Math.max(...kvHeads);
const kv = arena.alloc(2 * maxK * maxS * D * 4, "kv");
const q = arena.alloc(T * H * D * 4, "q");
const out = arena.alloc(T * H * D * 4, "out");
const values = (n: number, seed: number) => {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s / 2147483648 - 1));
};
arena.f32(q, T * H * D).set(values(T * H * D, 7));

const peakIters = 20_000, peakItems = 8 * threads, peakFlops = peakItems * peakIters * 12 * 8;
console.log(`# ${new Date().toISOString()} ${cpus()[0]?.model} x${cpus().length}, node ${process.version}, load ${loadavg().map((l) => l.toFixed(2)).join(" ")}, ${threads} threads, kernels ${cur.name}, H ${H}, D ${D}, T ${T}`);
console.log(`cache K   S      ms      GFLOP/s  peak GFLOP/s  of peak${base ? "  base ms  ×base" : ""}`);
for (const dtype of dtypes) {
  const eb = elementBytes(dtype);
  for (const S of contexts) {
    for (const K of kvHeads) {
      const headStride = S * D * eb;
      const n = 2 * K * S * D;
      const src = values(n, 13 + S + K);
      if (dtype === "f32") arena.f32(kv, n).set(src);
      else if (dtype === "f16") encodeF16(src, arena.u16(kv, n));
      else throw new Error(`prefill-ab: dtype ${dtype}: f32 or f16`);
      const call: AttentionCall = {
        q, out, T, H, K, D, qPos0: S - T, scale: 1 / Math.sqrt(D), window: null, kvDtype: dtype,
        segments: [{ kPtr: kv, vPtr: kv + K * headStride, rows: S, headStride, firstPos: 0 }], kvFinite: true,
      };
      let visible = 0;
      for (let t = 0; t < T; t++) visible += S - T + t + 1;
      const flops = 4 * D * H * visible;
      const fns = [() => cur.attention(call), () => (cur as unknown as WasmKernels).simdPeak(peakIters, peakItems), ...(base ? [() => base.attention(call)] : [])];
      const [ms, peakMs, baseMs] = timeTogether(fns, seconds);
      const gf = flops / ms / 1e6, peak = peakFlops / peakMs / 1e6;
      console.log(`${dtype.padEnd(5)} ${String(K).padStart(2)}  ${String(S).padStart(5)}  ${ms.toFixed(2).padStart(7)}  ${gf.toFixed(1).padStart(7)}  ${peak.toFixed(1).padStart(12)}  ${(100 * gf / peak).toFixed(0).padStart(5)} %` + (base ? `  ${baseMs.toFixed(2).padStart(7)}  ${(baseMs / ms).toFixed(2).padStart(5)}` : ""));
    }
  }
}
cur.close();
base?.close();
