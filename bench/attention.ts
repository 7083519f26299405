// `mqa bench attention`: decode and prefill speed of the WASM kernels beside the machine's own
// limits, measured in the same run over the same threads:
//   - streaming-read bandwidth: a plain SIMD read of exactly the bytes a decode step reads;
//   - SIMD peak: independent f32x4 multiply-adds in registers (the fma the kernels use).
// Never a test: timings depend on the machine and on its load.
//
// Legend: H query heads, K kv heads, D head dim, T cached tokens (decode) or prompt tokens (prefill).
import { cpus, loadavg } from "node:os";
import { Arena } from "../src/kernels/memory.js";
import { createKernels, type KernelHandle } from "../src/kernels/index.js";
import type { WasmKernels } from "../src/kernels/wasm.js";
import type { AttentionCall, KvDtype } from "../src/kernels/types.js";
import { enableRelaxedSimdFlag } from "../src/kernels/wasm-node.js";
import { encodeBf16, encodeF16 } from "../src/dtypes/codecs.js";
import { rows4Eligible } from "../src/kernels/rows4.js";
import { elementBytes, rowBytes } from "../src/dtypes/table.js";

export interface AttentionBenchOptions {
  quick?: boolean; // ~1 minute: fewer contexts, shorter prefill, fewer repeats
  threads?: number[]; // default [1, 2]
  relaxed?: boolean; // default true: turn on V8's relaxed SIMD and use the FMA build
  log?: (line: string) => void; // progress lines
}

export interface DecodeResult {
  dtype: KvDtype;
  K: number;
  T: number;
  threads: number;
  ms: number; // best time per decode step
  kvBytes: number; // bytes of K and V read per step
  gbps: number; // kvBytes / time
  streamGbps: number; // streaming read of the same bytes, same threads
  bwFraction: number; // gbps / streamGbps
  gflops: number; // 4·H·T·D flops (q·k and p·v) per step / time
  peakGflops: number; // SIMD peak measured interleaved with this decode, same threads
  peakFraction: number; // gflops / peakGflops
}

export interface PrefillResult {
  K: number;
  T: number;
  threads: number;
  seconds: number;
  tokensPerSecond: number;
  gflops: number; // 4·H·D·T(T+1)/2 causal flops / time
  peakGflops: number; // measured interleaved with this prefill
  peakFraction: number;
}

export interface MatmulResult {
  M: number;
  N: number;
  Kin: number;
  wDtype: "f32" | "f16" | "bf16";
  threads: number;
  ms: number;
  gbps: number; // weight bytes / time (what bounds M = 1)
  gflops: number; // 2·M·N·Kin / time
  limit: number; // M = 1: streaming read of the weight bytes (GB/s); else SIMD peak (GFLOP/s), measured interleaved
  limitFraction: number; // gbps or gflops over limit
}

export interface Target {
  name: string;
  target: string;
  measured: string;
  pass: boolean;
  note: string;
}

export interface AttentionBenchResult {
  command: string;
  date: string;
  machine: { cpu: string; cpus: number; loadBefore: number[]; loadAfter: number[]; node: string };
  kernels: string;
  shape: { H: number; D: number };
  peak: { threads: number; gflops: number }[];
  stream: { threads: number; bytes: number; gbps: number }[];
  decode: DecodeResult[];
  prefill: PrefillResult[];
  matmul: MatmulResult[];
  targets: Target[];
}

const H = 32;
const D = 128;
const MiB = 1024 * 1024;

/**
 * Best seconds of each fn, called in turn (a, b, c, a, b, c, ...) after one warm-up round, so a
 * kernel and the probe it is compared with see the same load on this shared machine.
 */
function timeTogether(fns: (() => void)[], minSeconds: number, minReps = 3, maxReps = 200): number[] {
  fns.forEach((f) => f());
  const best = fns.map(() => Infinity);
  const start = performance.now();
  for (let rep = 0; rep < maxReps && (rep < minReps || performance.now() - start < minSeconds * 1000); rep++) {
    fns.forEach((f, i) => {
      const t0 = performance.now();
      f();
      best[i] = Math.min(best[i], (performance.now() - t0) / 1000);
    });
  }
  return best;
}

/**
 * Best (minimum) seconds of fn over at least minReps calls and minSeconds, after one warm-up call.
 * The minimum, for kernels and probes alike: other jobs share the 2 vCPUs, and preemption only
 * ever adds time.
 */
function timeIt(fn: () => void, minSeconds: number, minReps = 3, maxReps = 200): number {
  fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minReps || (performance.now() - start < minSeconds * 1000 && times.length < maxReps)) {
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) / 1000);
  }
  return Math.min(...times);
}

/** Fills `bytes` at ptr with a repeated 1 MiB block of random values in [-1, 1) in dtype. */
function fillRandom(arena: Arena, ptr: number, bytes: number, dtype: "f32" | "f16" | "bf16", seed: number): void {
  const block = new Float32Array(MiB / 4);
  let s = seed >>> 0;
  for (let i = 0; i < block.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    block[i] = s / 2147483648 - 1;
  }
  const src = new Uint8Array(MiB);
  if (dtype === "f32") src.set(new Uint8Array(block.buffer));
  else if (dtype === "f16") encodeF16(block.subarray(0, MiB / 2), new Uint16Array(src.buffer));
  else encodeBf16(block.subarray(0, MiB / 2), new Uint16Array(src.buffer));
  const dst = arena.u8(ptr, bytes);
  for (let o = 0; o < bytes; o += MiB) dst.set(o + MiB <= bytes ? src : src.subarray(0, bytes - o), o);
}

export async function runAttentionBench(opts: AttentionBenchOptions = {}): Promise<AttentionBenchResult> {
  const quick = opts.quick ?? false;
  const threadList = opts.threads ?? [1, 2];
  const log = opts.log ?? (() => {});
  if (opts.relaxed ?? true) enableRelaxedSimdFlag();
  const loadBefore = loadavg();
  const contexts = quick ? [4096, 16384] : [1024, 4096, 16384, 32768];
  const kvHeads = [32, 8, 1];
  const dtypes: ("f32" | "f16" | "bf16")[] = ["f32", "f16", "bf16"];
  const decodeSeconds = quick ? 0.15 : 1;
  const maxT = Math.max(...contexts);
  const prefillT = quick ? 1024 : 4096;

  const arena = new Arena({ initialBytes: 64 * MiB });
  const kernels: Map<number, KernelHandle> = new Map();
  for (const t of threadList) kernels.set(t, await createKernels({ arena, backend: "wasm", threads: t, relaxed: opts.relaxed === false ? "off" : "auto" }));
  const wasm = (t: number) => kernels.get(t) as unknown as WasmKernels;
  const kernelName = kernels.get(threadList[0])!.name;

  // One buffer holds [2, K, T, D] (K rows then V rows) for the largest f32 case; smaller cases use a prefix.
  const kvMax = 2 * Math.max(...kvHeads) * maxT * D * 4;
  const kvPtr = arena.alloc(kvMax, "bench kv cache");
  const q = arena.alloc(Math.max(prefillT, 1) * H * D * 4, "bench q");
  const out = arena.alloc(Math.max(prefillT, 1) * H * D * 4, "bench out");
  fillRandom(arena, q, prefillT * H * D * 4, "f32", 7);

  // SIMD peak per thread count.
  const peak: AttentionBenchResult["peak"] = [];
  for (const t of threadList) {
    const k = wasm(t);
    // Many short items taken dynamically, as the kernels do, so one preempted thread is not the clock.
    const iters = 100_000, items = 64;
    k.simdPeak(iters, items);
    const sec = timeIt(() => k.simdPeak(iters, items), quick ? 0.3 : 1);
    peak.push({ threads: t, gflops: (items * iters * 12 * 8) / sec / 1e9 });
    log(`peak ${t} thread(s): ${peak.at(-1)!.gflops.toFixed(1)} GFLOP/s`);
  }
  // A short peak probe (16 items) to interleave with every measurement.
  const probeFlops = 16 * 100_000 * 12 * 8;
  const peakProbe = (t: number) => () => wasm(t).simdPeak(100_000, 16);
  const notePeak = (t: number, gflops: number) => {
    const p = peak.find((x) => x.threads === t)!;
    p.gflops = Math.max(p.gflops, gflops);
  };

  // Decode steps.
  const stream: AttentionBenchResult["stream"] = [];
  const noteStream = (t: number, bytes: number, gbps: number) => {
    const hit = stream.find((x) => x.threads === t && x.bytes === bytes);
    if (hit) hit.gbps = Math.max(hit.gbps, gbps);
    else stream.push({ threads: t, bytes, gbps });
  };
  const decode: DecodeResult[] = [];
  for (const dtype of dtypes) {
    const eb = elementBytes(dtype);
    fillRandom(arena, kvPtr, kvMax, dtype, dtype === "f32" ? 11 : 13);
    for (const T of contexts) {
      for (const K of kvHeads) {
        const headStride = T * D * eb;
        const kvBytes = 2 * K * headStride;
        const call: AttentionCall = {
          q, out, T: 1, H, K, D, qPos0: T - 1, scale: 1 / Math.sqrt(D), window: null, kvDtype: dtype,
          segments: [{ kPtr: kvPtr, vPtr: kvPtr + K * headStride, rows: T, headStride, firstPos: 0 }],
          kvFinite: true, // random values in [-1, 1): what a cache that stored no inf/NaN passes (KvCache.finite)
        };
        for (const t of threadList) {
          const k = kernels.get(t)!;
          const [sec, streamSec, peakSec] = timeTogether([() => k.attention(call), () => wasm(t).streamRead(kvPtr, kvBytes), peakProbe(t)], decodeSeconds);
          const streamGbps = kvBytes / streamSec / 1e9;
          const peakGflops = probeFlops / peakSec / 1e9;
          noteStream(t, kvBytes, streamGbps);
          notePeak(t, peakGflops);
          const gflops = (4 * H * T * D) / sec / 1e9;
          const r: DecodeResult = {
            dtype, K, T, threads: t, ms: sec * 1000, kvBytes, gbps: kvBytes / sec / 1e9, streamGbps,
            bwFraction: kvBytes / sec / 1e9 / streamGbps, gflops, peakGflops, peakFraction: gflops / peakGflops,
          };
          decode.push(r);
          log(`decode ${dtype} K=${K} T=${T} threads=${t}: ${r.ms.toFixed(3)} ms, ${r.gbps.toFixed(1)} GB/s (${pct(r.bwFraction)} of stream), ${gflops.toFixed(1)} GFLOP/s (${pct(r.peakFraction)} of peak)`);
        }
      }
    }
  }

  // Prefill: T prompt tokens attending causally to themselves (cache holds exactly those T rows).
  const prefill: PrefillResult[] = [];
  fillRandom(arena, kvPtr, 2 * 32 * prefillT * D * 4, "f32", 17);
  const prefillRuns: [number, number][] = quick ? [[8, Math.max(...threadList)]] : [[32, 2], [8, 2], [1, 2], [8, 1]];
  for (const [K, t] of prefillRuns) {
    if (!kernels.has(t)) continue;
    const headStride = prefillT * D * 4;
    const call: AttentionCall = {
      q, out, T: prefillT, H, K, D, qPos0: 0, scale: 1 / Math.sqrt(D), window: null, kvDtype: "f32",
      segments: [{ kPtr: kvPtr, vPtr: kvPtr + K * headStride, rows: prefillT, headStride, firstPos: 0 }],
    };
    const k = kernels.get(t)!;
    const [sec, peakSec] = timeTogether([() => k.attention(call), peakProbe(t)], 0, quick ? 1 : 2, 3);
    const peakGflops = probeFlops / peakSec / 1e9;
    notePeak(t, peakGflops);
    const gflops = (4 * H * D * ((prefillT * (prefillT + 1)) / 2)) / sec / 1e9;
    prefill.push({ K, T: prefillT, threads: t, seconds: sec, tokensPerSecond: prefillT / sec, gflops, peakGflops, peakFraction: gflops / peakGflops });
    log(`prefill K=${K} T=${prefillT} threads=${t}: ${sec.toFixed(2)} s, ${(prefillT / sec).toFixed(0)} tokens/s, ${gflops.toFixed(1)} GFLOP/s (${pct(gflops / peakGflops)} of peak)`);
  }
  // Projections: matvec (decode, bandwidth-bound) and a prefill-sized matmul (compute-bound).
  const matmul: MatmulResult[] = [];
  const Kin = 4096, N = 4096, Mbig = quick ? 64 : 256;
  const w = kvPtr; // reuse the cache buffer for weights (N·Kin·4 = 64 MiB)
  fillRandom(arena, w, N * Kin * 4, "f16", 19);
  for (const wDtype of ["f32", "f16", "bf16"] as const) {
    for (const M of [1, Mbig]) {
      for (const t of threadList) {
        const k = kernels.get(t)!;
        // As a loaded model calls it: weights checked finite at load, in the layout the kernels prefer.
        const call = { x: q, w, bias: 0, out, M, N, Kin, wDtype, wFinite: wDtype === "f16", wRows4: !!k.prefersRows4 && rows4Eligible(wDtype, N, Kin) };
        const wBytes = N * rowBytes(wDtype, Kin);
        const probe = M === 1 ? () => wasm(t).streamRead(w, wBytes) : peakProbe(t);
        const [sec, probeSec] = timeTogether([() => k.matmul(call), probe], decodeSeconds);
        const gflops = (2 * M * N * Kin) / sec / 1e9;
        const limit = M === 1 ? wBytes / probeSec / 1e9 : probeFlops / probeSec / 1e9;
        const got = M === 1 ? wBytes / sec / 1e9 : gflops;
        matmul.push({ M, N, Kin, wDtype, threads: t, ms: sec * 1000, gbps: wBytes / sec / 1e9, gflops, limit, limitFraction: got / limit });
        log(`matmul ${wDtype} M=${M} N=${N} Kin=${Kin} threads=${t}: ${(sec * 1000).toFixed(2)} ms, ${(wBytes / sec / 1e9).toFixed(1)} GB/s, ${gflops.toFixed(1)} GFLOP/s`);
      }
    }
  }
  for (const k of kernels.values()) k.close();

  const result: AttentionBenchResult = {
    command: `mqa bench attention${quick ? " --quick" : ""}`,
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model ?? "?", cpus: cpus().length, loadBefore, loadAfter: loadavg(), node: process.version },
    kernels: kernelName,
    shape: { H, D },
    peak,
    stream,
    decode,
    prefill,
    matmul,
    targets: [],
  };
  result.targets = evaluateTargets(result);
  return result;
}

function pct(x: number): string {
  return `${(100 * x).toFixed(0)} %`;
}

function find(r: AttentionBenchResult, dtype: KvDtype, K: number, T: number, threads: number): DecodeResult | undefined {
  return r.decode.find((d) => d.dtype === dtype && d.K === K && d.T === T && d.threads === threads);
}

/** The issue's targets, each with the measured value and what limits it when it falls short. */
export function evaluateTargets(r: AttentionBenchResult): Target[] {
  const targets: Target[] = [];
  const tMax = Math.max(...r.decode.map((d) => d.threads));
  for (const dtype of ["f32", "f16"] as KvDtype[]) {
    const mha = r.decode.filter((d) => d.dtype === dtype && d.K === 32 && d.T >= 4096 && d.threads === tMax);
    if (mha.length === 0) continue;
    const worst = mha.reduce((a, b) => (a.bwFraction < b.bwFraction ? a : b));
    targets.push({
      name: `MHA decode ${dtype}, T >= 4k, ${tMax} threads: share of streaming-read bandwidth`,
      target: ">= 90 %",
      measured: `${pct(worst.bwFraction)} (worst, T=${worst.T}); ${mha.map((d) => `T=${d.T}: ${pct(d.bwFraction)}`).join(", ")}`,
      pass: worst.bwFraction >= 0.9,
      note:
        dtype === "f16"
          ? "ALU-bound in cache: WASM has no f16 loads, so K and V halves are widened in registers (5 integer ops per 8 halves, exact for finite halves and subnormals; bf16 needs 2), and Q·K plus P·V are ~480 instructions a key (D = 128) at ~4 a cycle per core; from DRAM a core's loads run only as far ahead as the hardware prefetcher (WASM has no prefetch instruction)"
          : "per head the kernel reads a K tile, then its V tile (each row in address order), with a softmax between; the probe is one stream with no arithmetic",
    });
  }
  const T16 = r.decode.some((d) => d.T === 16384) ? 16384 : Math.max(...r.decode.map((d) => d.T));
  for (const dtype of ["f32", "f16"] as KvDtype[]) {
    const mqa = find(r, dtype, 1, T16, tMax);
    const mha = find(r, dtype, 32, T16, tMax);
    if (!mqa || !mha) continue;
    targets.push({
      name: `MQA decode ${dtype}, T=${T16}, ${tMax} threads: share of SIMD peak`,
      target: ">= 70 %",
      measured: `${pct(mqa.peakFraction)} (${mqa.gflops.toFixed(1)} of ${mqa.peakGflops.toFixed(1)} GFLOP/s)`,
      pass: mqa.peakFraction >= 0.7,
      note: "the 4x2 register tiles reach 64-85 % of the 1-thread peak even on L1-resident data (q·k 64 %, p·v 75 % on Zen 5; 82-85 % on Zen 4): V8 gives 15 xmm registers, so 8 FMA chains fit beside the loads, exactly FMA latency x ports with no slack; plus widening (f16), exp and the split-KV merge",
    });
    targets.push({
      name: `MQA vs MHA decode speed, ${dtype}, T=${T16}, ${tMax} threads`,
      target: ">= 5x",
      measured: `${(mha.ms / mqa.ms).toFixed(1)}x (${mha.ms.toFixed(2)} ms vs ${mqa.ms.toFixed(2)} ms)`,
      pass: mha.ms / mqa.ms >= 5,
      note: "MHA is bound by DRAM bandwidth, MQA by SIMD throughput: the ratio is (bytes/bandwidth) / (flops/throughput)",
    });
  }
  for (const p of r.prefill.filter((x) => x.threads === tMax)) {
    targets.push({
      name: `Prefill K=${p.K}, T=${p.T}, ${p.threads} threads: share of SIMD peak`,
      target: ">= 50 %",
      measured: `${pct(p.peakFraction)} (${p.gflops.toFixed(1)} GFLOP/s, ${p.tokensPerSecond.toFixed(0)} tokens/s)`,
      pass: p.peakFraction >= 0.5,
      note: "same register tiles as MQA decode (~64-75 % of peak in isolation) plus per-tile softmax, causal masking on diagonal tiles and wasted work in them",
    });
  }
  return targets;
}

/** The results as the markdown tables of docs/benchmarks/attention.md. */
export function renderAttentionMarkdown(r: AttentionBenchResult): string {
  const lines: string[] = [];
  const f = (x: number, d = 1) => x.toFixed(d);
  lines.push(`Command: \`${r.command}\` — ${r.date}, kernels \`${r.kernels}\`, Node ${r.machine.node}, ${r.machine.cpus} × ${r.machine.cpu}.`);
  lines.push(`Load average (1/5/15 min) before: ${r.machine.loadBefore.map((x) => f(x, 2)).join(" / ")}, after: ${r.machine.loadAfter.map((x) => f(x, 2)).join(" / ")} (2 vCPUs shared with other jobs: timings are noisy).`);
  lines.push("");
  lines.push("**Machine limits measured in the same run** (WASM SIMD, same threads; best values seen — each row of the tables below is compared with the probes measured interleaved with it):");
  lines.push("");
  lines.push("| threads | SIMD peak GFLOP/s | streaming read GB/s (by footprint) |");
  lines.push("|---|---|---|");
  for (const p of r.peak) {
    const s = r.stream.filter((x) => x.threads === p.threads).sort((a, b) => a.bytes - b.bytes);
    lines.push(`| ${p.threads} | ${f(p.gflops)} | ${s.map((x) => `${f(x.bytes / MiB, x.bytes < MiB ? 2 : 0)} MiB: ${f(x.gbps)}`).join(", ")} |`);
  }
  lines.push("");
  lines.push(`**Decode** (one new token, H = ${r.shape.H}, D = ${r.shape.D}; best of repeated steps):`);
  lines.push("");
  lines.push("| cache | K | T | threads | ms/step | KV MiB | GB/s | stream GB/s | % of stream | GFLOP/s | peak GFLOP/s | % of peak | speed vs MHA | 1→2 threads |");
  lines.push("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const d of r.decode) {
    const mha = find(r, d.dtype, 32, d.T, d.threads);
    const one = find(r, d.dtype, d.K, d.T, 1);
    const scaling = d.threads > 1 && one ? `${f(one.ms / d.ms, 2)}x` : "";
    lines.push(
      `| ${d.dtype} | ${d.K} | ${d.T} | ${d.threads} | ${f(d.ms, 3)} | ${f(d.kvBytes / MiB, 1)} | ${f(d.gbps)} | ${f(d.streamGbps)} | ${pct(d.bwFraction)} | ${f(d.gflops)} | ${f(d.peakGflops)} | ${pct(d.peakFraction)} | ${mha ? `${f(mha.ms / d.ms, 1)}x` : ""} | ${scaling} |`,
    );
  }
  lines.push("");
  lines.push(`**Prefill** (causal, f32 cache, H = ${r.shape.H}, D = ${r.shape.D}):`);
  lines.push("");
  lines.push("| K | T | threads | seconds | tokens/s | GFLOP/s | peak GFLOP/s | % of peak |");
  lines.push("|---|---|---|---|---|---|---|---|");
  for (const p of r.prefill) lines.push(`| ${p.K} | ${p.T} | ${p.threads} | ${f(p.seconds, 2)} | ${f(p.tokensPerSecond, 0)} | ${f(p.gflops)} | ${f(p.peakGflops)} | ${pct(p.peakFraction)} |`);
  lines.push("");
  lines.push("**Projections** (`matmul`, out = x·Wᵀ, N = Kin = 4096, as a loaded model calls it: rows4 layout, f16 checked finite; M = 1 is a decode matvec):");
  lines.push("");
  lines.push("| W dtype | M | threads | ms | W GB/s | GFLOP/s | limit (stream GB/s for M = 1, else peak GFLOP/s) | % of limit |");
  lines.push("|---|---|---|---|---|---|---|---|");
  for (const m of r.matmul) lines.push(`| ${m.wDtype} | ${m.M} | ${m.threads} | ${f(m.ms, 2)} | ${f(m.gbps)} | ${f(m.gflops)} | ${f(m.limit)} | ${pct(m.limitFraction)} |`);
  lines.push("");
  lines.push("**Targets** (issue 2):");
  lines.push("");
  lines.push("| target | goal | measured | met | limited by |");
  lines.push("|---|---|---|---|---|");
  for (const t of r.targets) lines.push(`| ${t.name} | ${t.target} | ${t.measured} | ${t.pass ? "yes" : "**no**"} | ${t.pass ? "" : t.note} |`);
  return lines.join("\n");
}
