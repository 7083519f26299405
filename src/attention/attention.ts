// One attention for any numKvHeads: MHA (K = H), GQA (1 < K < H) and MQA (K = 1) are the same code
// called with a different numKvHeads. K/V are written to the cache once per kv head and never
// repeated per query head; the kernel applies each kv head to its G query heads.
//
// Legend: B sequences in the batch, T_b new tokens of sequence b, N = Σ_b T_b packed tokens,
//         H query heads, K kv heads, G = H/K, D head dim, S cached positions of a sequence.

import type { Arena } from "../kernels/memory.js";
import type { AttentionCall, Kernels } from "../kernels/types.js";
import type { KvCache } from "../kvcache/cache.js";
import { referenceAttentionProbs } from "../kernels/reference.js";
import { type AttentionConfig, type ResolvedAttentionConfig, resolveAttentionConfig } from "./config.js";

/** Where the kernels run: the arena holding the cache and the kernels built over that arena. */
export interface AttentionBackend {
  arena: Arena;
  kernels: Kernels; // referenceKernels(arena) or the WASM backend over the same arena
}

/** A packed ragged batch: sequence b's T_b tokens follow sequence b-1's in q, k, v and out. */
export interface AttentionBatch {
  cache: KvCache;
  layer: number; // e.g. 0 .. numLayers-1 of the cache
  seqs: number[]; // [B] cache sequence ids, each at most once
  lengths: number[]; // [B] new tokens T_b per sequence (decode: all 1); 0 is allowed
  q: Float32Array; // [N, H, D] queries (RoPE already applied)
  k: Float32Array; // [N, K, D] new keys, appended to the cache
  v: Float32Array; // [N, K, D] new values, appended to the cache
  out?: Float32Array; // [N, H, D] output; allocated when omitted. An arena view is written in place.
  probsHeads?: number[]; // query heads whose attention probabilities to return, e.g. [0, 7]; recomputed after the kernel from the same q and cached K (referenceAttentionProbs)
}

/** Probabilities of one query token and one head over the keys it could see. */
export interface AttentionProbs {
  seq: number; // cache sequence id
  t: number; // query index within this call's tokens of that sequence
  pos: number; // the query's position
  head: number; // query head
  keyPositions: Int32Array; // [S'] positions of the visible keys
  probs: Float64Array; // [S'] softmax weights, summing to 1
}

export interface AttentionResult {
  out: Float32Array; // [N, H, D]
  probs: AttentionProbs[]; // empty unless probsHeads was given
}

/**
 * Causal scaled-dot-product attention over a KV cache, for any grouping of query heads:
 *
 *   out[t, h] = Σ_s softmax_s( scale · q[t, h] · K[kv(h), s] ) · V[kv(h), s],   kv(h) = floor(h / G)
 *
 * over the cached positions s <= pos(t) (and s > pos(t) - window when a window is set).
 * Shapes: q [N, H, D], k and v [N, K, D], out [N, H, D], packed sequence after sequence.
 * Both prefill and decode first append the new K/V to the cache, then attend over it.
 *
 * @example
 * import { Arena, Attention, ContiguousKvCache, referenceKernels } from "mqa"; // or src/index.ts
 * const arena = new Arena();
 * const attn = new Attention({ numHeads: 8, numKvHeads: 2, headDim: 64 }, { arena, kernels: referenceKernels(arena) });
 * const cache = new ContiguousKvCache(arena, { numLayers: 1, numKvHeads: 2, headDim: 64, dtype: "f16" });
 * const a = cache.addSequence(), b = cache.addSequence();
 * // Prefill 5 tokens of a and 3 of b: q is [8, 8, 64], k and v are [8, 2, 64] (N = 8 packed tokens).
 * const rand = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
 * const { out } = attn.prefill({ cache, layer: 0, seqs: [a, b], lengths: [5, 3], q: rand(8 * 8 * 64), k: rand(8 * 2 * 64), v: rand(8 * 2 * 64) });
 * // One decode step for both: q [2, 8, 64], k and v [2, 2, 64]; positions 5 and 3.
 * const step = attn.decode({ cache, layer: 0, seqs: [a, b], q: rand(2 * 8 * 64), k: rand(2 * 2 * 64), v: rand(2 * 2 * 64) });
 * // out: [8, 8, 64], step.out: [2, 8, 64]; cache.bytes() = 2 × 2 heads × 64 × 2 bytes × 10 tokens = 5120
 * // For the WASM SIMD kernels: kernels: await createKernels({ arena }) from src/kernels/index.ts.
 */
export class Attention {
  readonly config: ResolvedAttentionConfig;
  private scratch = { ptr: 0, bytes: 0 }; // arena copy of q and out when they are not arena views

  constructor(config: AttentionConfig, readonly backend: AttentionBackend) {
    this.config = resolveAttentionConfig(config);
  }

  /** Prefill: a ragged batch of prompts (lengths[b] tokens each), causal within and across calls. */
  prefill(batch: AttentionBatch): AttentionResult {
    return this.forward(batch);
  }

  /** Decode: one new token per sequence; q [B, H, D], k and v [B, K, D]. */
  decode(batch: Omit<AttentionBatch, "lengths">): AttentionResult {
    return this.forward({ ...batch, lengths: batch.seqs.map(() => 1) });
  }

  /** The shared path of prefill and decode. */
  forward(batch: AttentionBatch): AttentionResult {
    const { numHeads: H, numKvHeads: K, headDim: D, scale } = this.config;
    const { arena, kernels } = this.backend;
    const { cache, layer, seqs, lengths } = batch;
    const N = this.checkBatch(batch);
    const window = this.windowFor(cache);
    const shared = isShared(arena);
    // A view of a non-shared arena memory is detached when the memory grows: read through
    // byte offsets taken now, and copy k/v, which the cache reads as arrays.
    const qPtr = this.isArenaView(batch.q) ? batch.q.byteOffset : -1;
    const out = batch.out ?? new Float32Array(N * H * D);
    const outPtr = this.isArenaView(out) ? out.byteOffset : -1;
    let { k, v } = batch;
    if (!shared && this.isArenaView(k)) k = k.slice();
    if (!shared && this.isArenaView(v)) v = v.slice();
    const { qBase, outBase } = this.stage(batch.q, qPtr, outPtr, N);
    const probs: AttentionProbs[] = [];
    // Checked once per call: without probsHeads the loop below does no extra work.
    const probsHeads = batch.probsHeads?.length ? batch.probsHeads : null;
    let row = 0; // first packed token of the current sequence
    seqs.forEach((seq, b) => {
      const T = lengths[b];
      if (T === 0) return;
      const qPos0 = cache.length(seq, layer);
      const segments = cache.write(layer, seq, k.subarray(row * K * D, (row + T) * K * D), v.subarray(row * K * D, (row + T) * K * D));
      const call: AttentionCall = {
        q: qBase + row * H * D * 4,
        out: outBase + row * H * D * 4,
        T, H, K, D, qPos0, scale, window,
        softcap: this.config.softcap,
        kvDtype: cache.config.dtype,
        segments,
        kvFinite: cache.finite,
      };
      kernels.attention(call);
      if (probsHeads) {
        // Recomputed from the same q and cached K the kernel just read (see referenceAttentionProbs).
        const qPos0 = call.qPos0;
        referenceAttentionProbs(arena, call, probsHeads, (t, head, keyPositions, p) => probs.push({ seq, t, pos: qPos0 + t, head, keyPositions, probs: p }));
      }
      row += T;
    });
    if (outPtr < 0) out.set(arena.f32(outBase, N * H * D));
    return { out, probs };
  }

  /** Copies q into arena scratch when needed and returns the byte offsets the kernels use. */
  private stage(q: Float32Array, qPtr: number, outPtr: number, N: number): { qBase: number; outBase: number } {
    const { arena } = this.backend;
    const bytes = N * this.config.numHeads * this.config.headDim * 4;
    const need = (qPtr < 0 ? bytes : 0) + (outPtr < 0 ? bytes : 0);
    if (need > this.scratch.bytes) {
      if (this.scratch.ptr) arena.release(this.scratch.ptr);
      const size = Math.max(need, 2 * this.scratch.bytes);
      this.scratch = { ptr: arena.alloc(size, "attention q/out scratch"), bytes: size };
    }
    let next = this.scratch.ptr;
    let qBase = qPtr;
    if (qPtr < 0) {
      qBase = next;
      arena.f32(qBase, q.length).set(q);
      next += bytes;
    }
    return { qBase, outBase: outPtr < 0 ? next : outPtr };
  }

  /** Returns the scratch memory to the arena. */
  dispose(): void {
    if (this.scratch.ptr) this.backend.arena.release(this.scratch.ptr);
    this.scratch = { ptr: 0, bytes: 0 };
  }

  private isArenaView(a: Float32Array): boolean {
    return a.buffer === this.backend.arena.memory.buffer && a.length > 0;
  }

  /** The window the kernel masks with; a window cache must hold at least the configured window. */
  private windowFor(cache: KvCache): number | null {
    const w = this.config.window;
    if (cache.kind === "window") {
      const cw = cache.window!;
      if (w === null) throw new RangeError(`attention: a sliding-window cache (window ${cw}) needs config.window; global attention would silently lose keys`);
      if (w > cw) throw new RangeError(`attention: config.window = ${w} exceeds the cache's window ${cw}`);
    }
    return w;
  }

  /** Checks shapes against the config and the cache; returns N = Σ lengths. */
  private checkBatch(batch: AttentionBatch): number {
    const { numHeads: H, numKvHeads: K, headDim: D } = this.config;
    const { cache, seqs, lengths } = batch;
    const where = "attention";
    if (cache.arena !== this.backend.arena) throw new RangeError(`${where}: the cache lives in a different Arena than the kernels; build both over one arena`);
    if (cache.config.numKvHeads !== K || cache.config.headDim !== D) {
      throw new RangeError(`${where}: cache stores numKvHeads = ${cache.config.numKvHeads}, headDim = ${cache.config.headDim}, but the config has numKvHeads = ${K}, headDim = ${D}`);
    }
    if (seqs.length !== lengths.length) throw new RangeError(`${where}: seqs has ${seqs.length} entries but lengths has ${lengths.length}`);
    if (new Set(seqs).size !== seqs.length) throw new RangeError(`${where}: seqs [${seqs.join(", ")}] repeats a sequence`);
    let N = 0;
    for (const T of lengths) {
      if (!Number.isInteger(T) || T < 0) throw new RangeError(`${where}: lengths must be non-negative integers, got [${lengths.join(", ")}]`);
      N += T;
    }
    const expect = (name: string, a: Float32Array, width: number, shape: string) => {
      if (a.length !== N * width) throw new RangeError(`${where}: ${name} must be f32 ${shape} = ${N * width} values for N = ${N} tokens, got ${a.length}`);
    };
    expect("q", batch.q, H * D, `[N, H=${H}, D=${D}]`);
    expect("k", batch.k, K * D, `[N, K=${K}, D=${D}]`);
    expect("v", batch.v, K * D, `[N, K=${K}, D=${D}]`);
    if (batch.out) expect("out", batch.out, H * D, `[N, H=${H}, D=${D}]`);
    for (const h of batch.probsHeads ?? []) {
      if (!Number.isInteger(h) || h < 0 || h >= H) throw new RangeError(`${where}: probsHeads entry ${h} is not a query head in [0, ${H})`);
    }
    return N;
  }
}

function isShared(arena: Arena): boolean {
  return typeof SharedArrayBuffer !== "undefined" && arena.memory.buffer instanceof SharedArrayBuffer;
}
