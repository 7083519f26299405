// An attention block with its projections: x -> q, k, v -> (RoPE) -> attention over the cache -> o.
// The projections run through kernels.matmul (PyTorch Linear layout, f32/f16/bf16 weights), and
// the K/V projections produce only numKvHeads heads: GQA/MQA save projection work as well as cache.
//
// Legend: N packed tokens (all sequences), E hidden size, H query heads, K kv heads, D head dim.
//
//   q = x · Wqᵀ (+ bq)   [N, H·D]      Wq [H·D, E]
//   k = x · Wkᵀ (+ bk)   [N, K·D]      Wk [K·D, E]
//   v = x · Wvᵀ (+ bv)   [N, K·D]      Wv [K·D, E]
//   a = attention(q, k, v)  [N, H·D]   (appends k, v to the cache first)
//   y = a · Woᵀ (+ bo)   [N, E]        Wo [E, H·D]

import type { Arena } from "../kernels/memory.js";
import type { WeightDtype } from "../kernels/types.js";
import type { KvCache } from "../kvcache/cache.js";
import { Attention, type AttentionBackend, type AttentionProbs } from "./attention.js";
import type { AttentionConfig } from "./config.js";

/** Arena byte offsets of the weights (0 = no bias). */
export interface AttentionWeights {
  dtype: WeightDtype; // e.g. "f16"; biases are always f32
  wq: number; // [H·D, E]
  wk: number; // [K·D, E]
  wv: number; // [K·D, E]
  wo: number; // [E, H·D]
  bq?: number; // [H·D]
  bk?: number; // [K·D]
  bv?: number; // [K·D]
  bo?: number; // [E]
}

/**
 * Rotates q or k in place: x is f32 [N, heads, D] (an arena view), positions[n] is token n's
 * position. The model family supplies it (RoPE variants differ); omit it for learned positions.
 */
export type PositionHook = (x: Float32Array, heads: number, positions: Int32Array) => void;

export interface AttentionLayerInput {
  cache: KvCache;
  layer: number;
  seqs: number[]; // [B]
  lengths: number[]; // [B] new tokens per sequence (decode: all 1)
  x: Float32Array; // [N, E] hidden states, packed sequence after sequence
  probsHeads?: number[];
}

/**
 * @example
 * const layer = new AttentionLayer({ numHeads: 8, numKvHeads: 2, headDim: 64, hiddenSize: 512 }, { arena, kernels }, weights, { rope });
 * const y = layer.forward({ cache, layer: 0, seqs: [a], lengths: [5], x }).out; // x, y: [5, 512]
 */
export class AttentionLayer {
  readonly attention: Attention;
  private scratch = { ptr: 0, bytes: 0 };

  constructor(config: AttentionConfig, readonly backend: AttentionBackend, readonly weights: AttentionWeights, readonly opts: { rope?: PositionHook } = {}) {
    this.attention = new Attention(config, backend);
  }

  /** y [N, E] for x [N, E]; also returns probabilities when probsHeads is set. */
  forward(input: AttentionLayerInput): { out: Float32Array; probs: AttentionProbs[] } {
    const { numHeads: H, numKvHeads: K, headDim: D, hiddenSize: E } = this.attention.config;
    const { arena, kernels } = this.backend;
    const { cache, layer, seqs, lengths } = input;
    // Reserving scratch may grow (and, when not shared, detach) the arena memory an input view lives in.
    const x = input.x.buffer === arena.memory.buffer ? input.x.slice() : input.x;
    const N = lengths.reduce((a, b) => a + b, 0);
    if (x.length !== N * E) throw new RangeError(`AttentionLayer: x must be f32 [N=${N}, E=${E}] = ${N * E} values, got ${x.length}`);
    if (N === 0) return { out: new Float32Array(0), probs: [] };
    // One scratch block: x [N, E], q [N, H·D], k [N, K·D], v [N, K·D], a [N, H·D], y [N, E].
    const sizes = [N * E, N * H * D, N * K * D, N * K * D, N * H * D, N * E];
    const base = this.reserve(sizes.reduce((a, b) => a + b, 0) * 4 + 16 * sizes.length);
    const [xPtr, qPtr, kPtr, vPtr, aPtr, yPtr] = offsets(base, sizes);
    arena.f32(xPtr, N * E).set(x);
    const w = this.weights;
    const linear = (wPtr: number, bias: number | undefined, out: number, rows: number, Kin: number, inPtr: number) =>
      kernels.matmul({ x: inPtr, w: wPtr, bias: bias ?? 0, out, M: N, N: rows, Kin, wDtype: w.dtype });
    linear(w.wq, w.bq, qPtr, H * D, E, xPtr);
    linear(w.wk, w.bk, kPtr, K * D, E, xPtr);
    linear(w.wv, w.bv, vPtr, K * D, E, xPtr);
    if (this.opts.rope) {
      const positions = new Int32Array(N);
      let n = 0;
      seqs.forEach((seq, b) => {
        const p0 = cache.length(seq, layer);
        for (let t = 0; t < lengths[b]; t++) positions[n++] = p0 + t;
      });
      this.opts.rope(arena.f32(qPtr, N * H * D), H, positions);
      this.opts.rope(arena.f32(kPtr, N * K * D), K, positions);
    }
    const { probs } = this.attention.forward({
      cache, layer, seqs, lengths,
      q: arena.f32(qPtr, N * H * D), k: arena.f32(kPtr, N * K * D), v: arena.f32(vPtr, N * K * D), out: arena.f32(aPtr, N * H * D),
      probsHeads: input.probsHeads,
    });
    linear(w.wo, w.bo, yPtr, E, H * D, aPtr);
    return { out: arena.f32(yPtr, N * E).slice(), probs };
  }

  dispose(): void {
    if (this.scratch.ptr) this.backend.arena.release(this.scratch.ptr);
    this.scratch = { ptr: 0, bytes: 0 };
    this.attention.dispose();
  }

  private reserve(bytes: number): number {
    const arena: Arena = this.backend.arena;
    if (bytes > this.scratch.bytes) {
      if (this.scratch.ptr) arena.release(this.scratch.ptr);
      const size = Math.max(bytes, Math.ceil(this.scratch.bytes * 1.5));
      this.scratch = { ptr: arena.alloc(size, "attention layer scratch"), bytes: size };
    }
    return this.scratch.ptr;
  }
}

/** Byte offsets of consecutive f32 buffers of the given lengths, each 16-byte aligned. */
function offsets(base: number, lengths: number[]): number[] {
  const out: number[] = [];
  let p = base;
  for (const n of lengths) {
    out.push(p);
    p += Math.ceil((n * 4) / 16) * 16;
  }
  return out;
}
