// A quick MHA vs GQA vs MQA comparison on random data (the `mqa attention-demo` command): KV-cache
// bytes per token, decode time per step, and two correctness checks per variant:
//   1. the chosen backend against the reference kernels on the last decode step;
//   2. the variant against MHA run over its K/V heads repeated G times (they must agree: the
//      grouping is only a parameter, K/V are never copied in the real path).
//
// Legend: H query heads, K kv heads, G = H/K, D head dim, S cached positions, L layers.

import { Arena } from "../kernels/memory.js";
import { seededRandom } from "../random.js";
import { createKernels, type KernelBackend } from "../kernels/index.js";
import { referenceKernels } from "../kernels/reference.js";
import type { AttentionCall, Kernels, KvDtype, KvSegment } from "../kernels/types.js";
import { ContiguousKvCache } from "../kvcache/contiguous.js";
import { elementBytes } from "../dtypes/table.js";
import { kvBytesPerToken } from "../kvcache/bytes.js";
import type { LayerSpec } from "../config/types.js";
import { Attention } from "./attention.js";
import { resolveAttentionConfig } from "./config.js";

export interface CompareOptions {
  numHeads?: number; // H, e.g. 32 (Llama-2-7B)
  headDim?: number; // D, e.g. 128
  kvHeads?: number[]; // variants, e.g. [32, 8, 1] = MHA, GQA-8, MQA
  context?: number; // cached tokens before timing, e.g. 1024
  steps?: number; // timed decode steps, e.g. 8
  dtype?: KvDtype; // cache storage, e.g. "f16"
  layers?: number; // layers of the imagined model for bytes per token, e.g. 32 (one layer is run)
  backend?: KernelBackend; // "auto" (WASM SIMD when available), "wasm" or "reference"
  threads?: number; // worker threads for the WASM backend
  seed?: number;
}

export interface VariantResult {
  kind: "mha" | "gqa" | "mqa";
  numKvHeads: number;
  groupSize: number;
  cacheBytesPerToken: number; // all `layers` layers, from kvBytesPerToken
  cacheBytes: number; // at the final length (context + 2 warm-up + steps tokens), all layers
  decodeMsPerStep: number; // median over the timed steps (one layer)
  maxAbsDiffVsReference: number | null; // null when the backend is the reference itself
  maxAbsDiffVsRepeatedMha: number;
}

export interface CompareResult {
  backend: string;
  threads: number;
  numHeads: number;
  headDim: number;
  context: number;
  steps: number;
  dtype: KvDtype;
  layers: number;
  variants: VariantResult[];
}

/** Runs the comparison; see the file header. Timings are wall-clock on a possibly busy machine. */
export async function compareAttentionVariants(opts: CompareOptions = {}): Promise<CompareResult> {
  const { numHeads: H = 32, headDim: D = 128, kvHeads = [32, 8, 1], context = 1024, steps = 8, dtype = "f16", layers = 32, seed = 1 } = opts;
  for (const [name, v] of [["context", context], ["steps", steps], ["layers", layers]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`attention-demo: ${name} must be a positive integer, got ${v}`);
  }
  for (const K of kvHeads) resolveAttentionConfig({ numHeads: H, numKvHeads: K, headDim: D }); // validate all first
  const arena = new Arena({ initialBytes: 64 << 20 });
  const kernels = await createKernels({ arena, backend: opts.backend ?? "auto", threads: opts.threads });
  try {
    const variants = kvHeads.map((K) => runVariant({ arena, kernels, H, K, D, context, steps, dtype, layers, seed }));
    return { backend: kernels.name, threads: kernels.threads, numHeads: H, headDim: D, context, steps, dtype, layers, variants };
  } finally {
    kernels.close();
  }
}

interface VariantArgs {
  arena: Arena;
  kernels: Kernels;
  H: number;
  K: number;
  D: number;
  context: number;
  steps: number;
  dtype: KvDtype;
  layers: number;
  seed: number;
}

function runVariant(a: VariantArgs): VariantResult {
  const { arena, kernels, H, K, D, context, steps, dtype, layers } = a;
  const attn = new Attention({ numHeads: H, numKvHeads: K, headDim: D }, { arena, kernels });
  const cache = new ContiguousKvCache(arena, { numLayers: 1, numKvHeads: K, headDim: D, dtype }, { initialTokens: context + steps + 2 });
  const seq = cache.addSequence();
  const rand = uniform(a.seed * 7919 + K);
  // Fill the context straight into the cache (no attention needed to time decode).
  cache.write(0, seq, rand(context * K * D), rand(context * K * D));
  const times: number[] = [];
  const warmup = 2; // untimed steps: JIT tiers and worker wake-up
  const qPtr = arena.alloc(H * D * 4, "demo q");
  const out = new Float32Array(H * D);
  for (let s = 0; s < warmup + steps; s++) {
    const q = arena.f32(qPtr, H * D);
    q.set(rand(H * D));
    const k = rand(K * D), v = rand(K * D);
    const t0 = performance.now();
    attn.decode({ cache, layer: 0, seqs: [seq], q: arena.f32(qPtr, H * D), k, v, out });
    if (s >= warmup) times.push(performance.now() - t0);
  }
  // The last step again, as a raw kernel call, for both checks.
  const S = cache.length(seq);
  const call: AttentionCall = {
    q: qPtr, out: 0, T: 1, H, K, D, qPos0: S - 1, scale: 1 / Math.sqrt(D), window: null, kvDtype: dtype, segments: cache.segments(0, seq),
  };
  const vsRef = kernels.name === "reference" ? null : maxAbsDiff(out, runCall(arena, referenceKernels(arena), call));
  const mha = repeatToMha(arena, call);
  const vsMha = maxAbsDiff(out, runCall(arena, kernels, mha.call));
  arena.release(mha.ptr);
  const shape = { layers: Array.from({ length: layers }, (): LayerSpec => ({ numHeads: H, numKvHeads: K, headDim: D, window: null })), mla: null };
  const result: VariantResult = {
    kind: K === H ? "mha" : K === 1 ? "mqa" : "gqa",
    numKvHeads: K,
    groupSize: H / K,
    cacheBytesPerToken: kvBytesPerToken(shape, dtype),
    cacheBytes: cache.bytes() * layers,
    decodeMsPerStep: median(times),
    maxAbsDiffVsReference: vsRef,
    maxAbsDiffVsRepeatedMha: vsMha,
  };
  arena.release(qPtr);
  cache.dispose();
  attn.dispose();
  return result;
}

/** Runs one call into a fresh output buffer and returns the output. */
function runCall(arena: Arena, kernels: Kernels, call: AttentionCall): Float32Array {
  const n = call.T * call.H * call.D;
  const outPtr = arena.alloc(n * 4, "demo check output");
  kernels.attention({ ...call, out: outPtr });
  const out = arena.f32(outPtr, n).slice();
  arena.release(outPtr);
  return out;
}

/**
 * Copies each kv head's rows G times so an MHA call (K = H) reads what query head h read.
 * Returns the call and the arena allocation to release afterwards.
 */
function repeatToMha(arena: Arena, call: AttentionCall): { call: AttentionCall; ptr: number } {
  const { H, K, D, kvDtype } = call;
  const G = H / K;
  const [seg] = call.segments; // the contiguous cache gives one segment
  const rowBytes = D * elementBytes(kvDtype);
  const headBytes = Math.ceil((seg.rows * rowBytes) / 4) * 4;
  const scaleBytes = kvDtype === "int8" ? 4 * seg.rows : 0;
  const ptr = arena.alloc(2 * H * (headBytes + scaleBytes), "demo repeated K/V");
  const bytes = new Uint8Array(arena.memory.buffer);
  const kPtr = ptr, vPtr = ptr + H * headBytes, sPtr = ptr + 2 * H * headBytes;
  for (let h = 0; h < H; h++) {
    const kh = Math.floor(h / G);
    bytes.copyWithin(kPtr + h * headBytes, seg.kPtr + kh * seg.headStride, seg.kPtr + kh * seg.headStride + seg.rows * rowBytes);
    bytes.copyWithin(vPtr + h * headBytes, seg.vPtr + kh * seg.headStride, seg.vPtr + kh * seg.headStride + seg.rows * rowBytes);
    if (scaleBytes) {
      const from = (p: number) => p + 4 * kh * seg.scaleHeadStride!;
      bytes.copyWithin(sPtr + h * scaleBytes, from(seg.kScalePtr!), from(seg.kScalePtr!) + scaleBytes);
      bytes.copyWithin(sPtr + (H + h) * scaleBytes, from(seg.vScalePtr!), from(seg.vScalePtr!) + scaleBytes);
    }
  }
  const rep: KvSegment = { kPtr, vPtr, rows: seg.rows, headStride: headBytes, firstPos: seg.firstPos };
  if (scaleBytes) Object.assign(rep, { kScalePtr: sPtr, vScalePtr: sPtr + H * scaleBytes, scaleHeadStride: seg.rows });
  return { call: { ...call, K: H, segments: [rep] }, ptr };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Uniform(-1, 1) draws from a deterministic generator (mulberry32). */
function uniform(seed: number): (n: number) => Float32Array {
  const next = seededRandom(seed);
  return (n) => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = next() * 2 - 1;
    return out;
  };
}
