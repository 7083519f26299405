// The machine's limits as the WASM kernels see them, measured in the calling process: streaming read
// bandwidth (SIMD loads over a buffer larger than the caches, all threads) and the SIMD peak
// (independent f32x4 multiply-adds in registers, all threads). Benchmarks report their kernels as a
// share of these, measured in the same run, and the planner can take them as a CPU target.
import type { Arena } from "./memory.js";
import type { Kernels } from "./types.js";

interface Probes {
  streamRead(ptr: number, bytes: number, chunkBytes?: number): void;
  simdPeak(iters: number, items: number): void;
}

function probes(kernels: Kernels): Probes | null {
  const k = kernels as unknown as Partial<Probes>;
  return typeof k.streamRead === "function" && typeof k.simdPeak === "function" ? (k as Probes) : null;
}

export interface MachineLimits {
  streamBytesPerSecond: number; // best of `reps` reads of `bytes`
  simdFlopsPerSecond: number; // best of `reps` runs
  threads: number;
}

/** Measures both limits; null for kernels without the probes (the reference backend). */
export function measureLimits(arena: Arena, kernels: Kernels & { threads?: number }, opts: { bytes?: number; reps?: number } = {}): MachineLimits | null {
  const p = probes(kernels);
  if (!p) return null;
  const bytes = opts.bytes ?? 256 * 1024 * 1024, reps = opts.reps ?? 5;
  const ptr = arena.alloc(bytes, "stream-read probe");
  let stream = 0, peak: number;
  try {
    new Uint8Array(arena.memory.buffer, ptr, bytes).fill(1); // touch every page first
    p.streamRead(ptr, bytes);
    for (let r = 0; r < reps; r++) {
      const t = performance.now();
      p.streamRead(ptr, bytes);
      stream = Math.max(stream, bytes / ((performance.now() - t) / 1000));
    }
  } finally {
    arena.release(ptr);
  }
  peak = simdPeakOf(p, reps);
  return { streamBytesPerSecond: stream, simdFlopsPerSecond: peak, threads: kernels.threads ?? 1 };
}

/** The SIMD peak alone (FLOP/s, best of `reps` runs of 64 items, ~10 ms each on 2 threads); null without the probes. */
export function measureSimdPeak(kernels: Kernels, reps = 5): number | null {
  const p = probes(kernels);
  return p ? simdPeakOf(p, reps) : null;
}

function simdPeakOf(p: Probes, reps: number): number {
  const iters = 100_000, items = 64;
  p.simdPeak(iters, 4);
  let peak = 0;
  for (let r = 0; r < reps; r++) {
    const t = performance.now();
    p.simdPeak(iters, items);
    peak = Math.max(peak, (items * iters * 12 * 8) / ((performance.now() - t) / 1000)); // 12 multiply-adds of 8 flops per iteration
  }
  return peak;
}
