// Same-process A/B of decode attention: the current build against an older build/kernels-relaxed.wasm,
// interleaved call by call with a streaming read of the same KV bytes, so all three see the same load
// on a shared machine. Never a test: timings depend on the machine and its load.
//   node --import tsx bench/decode-ab.ts --baseline old.wasm [--threads 2] [--dtypes f32,f16,bf16] [--T 4096,16384] [--K 32,8,1] [--seconds 1]
//   node --import tsx bench/decode-ab.ts --finite-ab [...]   # current build with kvFinite (A) against without (B)
//   node --import tsx bench/decode-ab.ts --baseline old.wasm --finite [...]   # both builds with kvFinite
//   node --import tsx bench/decode-ab.ts --cold [...]   # every timed call after a 64 MiB read (untimed): KV from DRAM, as in a model's decode step
// Legend: H query heads (--H, default 32), K kv heads, D head dim (--D, default 128), T cached tokens. Prints the best time of each.
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

const MiB = 1024 * 1024;
const H = Number(flag("H", "32")), D = Number(flag("D", "128"));
const threads = Number(flag("threads", "2"));
const dtypes = flag("dtypes", "f32,f16,bf16").split(",") as KvDtype[];
const contexts = flag("T", "4096,16384").split(",").map(Number);
const kvHeads = flag("K", "32,8,1").split(",").map(Number);
const seconds = Number(flag("seconds", "1"));
const baselinePath = flag("baseline", "");
const finiteAb = process.argv.includes("--finite-ab");
const finite = process.argv.includes("--finite"); // both builds' calls set kvFinite (what KvCache.finite passes for a clean cache)
const cold = process.argv.includes("--cold");

enableRelaxedSimdFlag();
const loadBefore = loadavg();
const arena = new Arena({ initialBytes: 64 * MiB });
const cur = await createKernels({ arena, backend: "wasm", threads, relaxed: "auto" });
const base: KernelHandle | undefined = finiteAb ? cur : baselinePath
  ? await createKernels({ arena, backend: "wasm", threads, relaxed: "auto", module: new WebAssembly.Module(readFileSync(baselinePath)) })
  : undefined;
const maxT = Math.max(...contexts), maxK = Math.max(...kvHeads);
const kvMax = 2 * maxK * maxT * D * 4;
const kv = arena.alloc(kvMax, "ab kv");
const q = arena.alloc(H * D * 4, "ab q");
const FLUSH_BYTES = 64 * MiB; // beyond the 32 MiB L3
const flush = cold ? arena.alloc(FLUSH_BYTES, "ab flush") : 0;
const out = arena.alloc(H * D * 4, "ab out");

/** Random values in [-1, 1) in dtype, a repeated 1 MiB block. */
function fill(ptr: number, bytes: number, dtype: KvDtype, seed: number): void {
  const block = new Float32Array(MiB / 4);
  let s = seed >>> 0;
  for (let i = 0; i < block.length; i++) block[i] = ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s / 2147483648 - 1);
  let src: Uint8Array;
  if (dtype === "f32") src = new Uint8Array(block.buffer);
  else if (dtype === "f16") {
    const h = new Uint16Array(MiB / 2);
    encodeF16(block.subarray(0, MiB / 2), h);
    src = new Uint8Array(h.buffer);
  } else {
    const h = new Uint16Array(MiB / 2);
    const u = new Uint32Array(block.buffer);
    for (let i = 0; i < h.length; i++) h[i] = u[i] >>> 16;
    src = new Uint8Array(h.buffer);
  }
  const dst = arena.u8(ptr, bytes);
  for (let o = 0; o < bytes; o += MiB) dst.set(o + MiB <= bytes ? src : src.subarray(0, bytes - o), o);
}
fill(q, H * D * 4, "f32", 7);

console.log(`# ${new Date().toISOString()} ${cpus()[0]?.model} x${cpus().length}, node ${process.version}, load ${loadBefore.map((l) => l.toFixed(2)).join(" ")}, ${threads} threads, kernels ${cur.name}${cold ? ", cold: each call after a 64 MiB read" : ""}`);
console.log(`cache K   T      ms/step  GB/s  stream GB/s  % stream${base ? "  base ms  base % stream  ×base" : ""}`);
for (const dtype of dtypes) {
  fill(kv, kvMax, dtype, 13);
  const eb = elementBytes(dtype);
  for (const T of contexts) {
    for (const K of kvHeads) {
      const headStride = T * D * eb, kvBytes = 2 * K * headStride;
      const call: AttentionCall = {
        q, out, T: 1, H, K, D, qPos0: T - 1, scale: 1 / Math.sqrt(D), window: null, kvDtype: dtype,
        segments: [{ kPtr: kv, vPtr: kv + K * headStride, rows: T, headStride, firstPos: 0 }],
        kvFinite: finite,
      };
      const fns = [() => cur.attention({ ...call, kvFinite: finiteAb || finite }), () => (cur as unknown as WasmKernels).streamRead(kv, kvBytes), () => base?.attention(call)];
      fns.forEach((f) => f());
      const best = [Infinity, Infinity, Infinity];
      const start = performance.now();
      for (let rep = 0; rep < 400 && (rep < 5 || performance.now() - start < seconds * 1000); rep++) {
        // alternate which build runs first so neither always follows the probe
        const order = rep % 2 === 0 ? [0, 1, 2] : [2, 1, 0];
        for (const i of order) {
          if (cold) (cur as unknown as WasmKernels).streamRead(flush, FLUSH_BYTES);
          const t0 = performance.now();
          fns[i]();
          best[i] = Math.min(best[i], performance.now() - t0);
        }
      }
      const gbps = kvBytes / best[0] / 1e6, sg = kvBytes / best[1] / 1e6;
      const tail = base ? `  ${best[2].toFixed(3).padStart(7)}  ${((100 * kvBytes) / best[2] / 1e6 / sg).toFixed(0).padStart(12)} %  ${(best[2] / best[0]).toFixed(2)}` : "";
      console.log(`${dtype.padEnd(5)} ${String(K).padEnd(3)} ${String(T).padEnd(6)} ${best[0].toFixed(3).padStart(7)}  ${gbps.toFixed(1).padStart(4)}  ${sg.toFixed(1).padStart(10)}  ${((100 * gbps) / sg).toFixed(0).padStart(6)} %${tail}`);
    }
  }
}
cur.close();
if (base !== cur) base?.close();
console.log(`# load after ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
