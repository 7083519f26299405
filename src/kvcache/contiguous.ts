// Contiguous KV cache: one arena region per (layer, sequence) holding K [K, cap, D] and V [K, cap, D]
// (+ int8 scales [K, cap]). When a write needs more than `cap` rows the region is reallocated with
// geometric growth (×2 by default), so a decode loop reallocates O(log S) times, not every step
// (transformers.js loses 3× at some lengths by growing its cache on every token).
//
// Legend: K kv heads, D head dim, S cached rows, cap rows reserved, T new tokens.

import type { Arena } from "../kernels/memory.js";
import type { KvSegment } from "../kernels/types.js";
import {
  type KvCache,
  type KvCacheConfig,
  type RowPlace,
  RowWriter,
  checkWriteInputs,
  countBytes,
  normalizeCacheConfig,
  regionLayout,
  segmentOf,
} from "./cache.js";

export interface ContiguousKvCacheOptions {
  initialTokens?: number; // rows reserved at the first write, e.g. 16 (at least the first write's T)
  growth?: number; // capacity multiplier when full, e.g. 2; must be > 1
}

interface Region {
  ptr: number; // arena allocation, 0 = none yet
  cap: number; // rows reserved per kv head
  len: number; // rows written
  place: RowPlace;
}

/**
 * @example
 * const cache = new ContiguousKvCache(arena, { numLayers: 2, numKvHeads: 2, headDim: 64, dtype: "f16" });
 * const seq = cache.addSequence();
 * const segments = cache.write(0, seq, k, v); // k, v: f32 [T, 2, 64]
 */
export class ContiguousKvCache implements KvCache {
  readonly kind = "contiguous" as const;
  readonly config: Required<KvCacheConfig>;
  /** How many times a region was (re)allocated; tests use it to prove growth is geometric. */
  reallocations = 0;
  private readonly regions = new Map<number, Region[]>(); // seq -> [L]
  private nextSeq = 0;
  private readonly writer: RowWriter;
  private readonly initialTokens: number;
  private readonly growth: number;

  constructor(readonly arena: Arena, config: KvCacheConfig, opts: ContiguousKvCacheOptions = {}) {
    this.config = normalizeCacheConfig("ContiguousKvCache", config);
    this.initialTokens = opts.initialTokens ?? 16;
    this.growth = opts.growth ?? 2;
    if (!Number.isInteger(this.initialTokens) || this.initialTokens < 1) throw new RangeError(`ContiguousKvCache: initialTokens must be a positive integer, got ${this.initialTokens}`);
    if (!(this.growth > 1)) throw new RangeError(`ContiguousKvCache: growth must be > 1, got ${this.growth}`);
    this.writer = new RowWriter(arena, this.config.numKvHeads, this.config.headDim, this.config.dtype);
  }

  addSequence(): number {
    const seq = this.nextSeq++;
    const empty = (): Region => ({ ptr: 0, cap: 0, len: 0, place: { kPtr: 0, vPtr: 0, headStride: 0 } });
    this.regions.set(seq, Array.from({ length: this.config.numLayers }, empty));
    return seq;
  }

  freeSequence(seq: number): void {
    for (const r of this.get(seq)) if (r.ptr) this.arena.release(r.ptr);
    this.regions.delete(seq);
  }

  sequences(): number[] {
    return [...this.regions.keys()];
  }

  length(seq: number, layer = 0): number {
    return this.get(seq)[layer].len;
  }

  write(layer: number, seq: number, k: Float32Array, v: Float32Array): KvSegment[] {
    const T = checkWriteInputs("ContiguousKvCache.write", this.config, layer, k, v);
    const region = this.get(seq)[layer];
    if (region.len + T > region.cap) {
      // Growing may grow the arena memory, which detaches views of a non-shared memory: keep copies.
      if (k.buffer === this.arena.memory.buffer) k = k.slice();
      if (v.buffer === this.arena.memory.buffer) v = v.slice();
      this.grow(region, region.len + T);
    }
    for (let t = 0; t < T; t++) this.writer.write(region.place, region.len + t, k, v, t);
    region.len += T;
    return this.segments(layer, seq);
  }

  segments(layer: number, seq: number): KvSegment[] {
    const region = this.get(seq)[layer];
    if (region.len === 0) return [];
    return [segmentOf(region.place, 0, region.len, 0, this.writer.rowStride)];
  }

  bytes(): number {
    return countBytes(this.config, this.lengths((r) => r.len));
  }

  reservedBytes(): number {
    return countBytes(this.config, this.lengths((r) => r.cap));
  }

  dispose(): void {
    for (const seq of this.sequences()) this.freeSequence(seq);
  }

  private lengths(pick: (r: Region) => number): number[] {
    const out: number[] = [];
    for (const regions of this.regions.values()) for (const r of regions) out.push(pick(r));
    return out;
  }

  private get(seq: number): Region[] {
    const r = this.regions.get(seq);
    if (!r) throw new RangeError(`ContiguousKvCache: unknown sequence ${seq}; live sequences are [${this.sequences().join(", ")}]`);
    return r;
  }

  /** Reallocates a region to hold at least `need` rows, copying the rows already written. */
  private grow(region: Region, need: number): void {
    const cap = Math.max(need, region.cap === 0 ? this.initialTokens : Math.ceil(region.cap * this.growth));
    const size = regionLayout(this.config, cap, 0).bytes;
    const ptr = this.arena.alloc(size, `contiguous KV cache (${cap} tokens)`);
    const { place } = regionLayout(this.config, cap, ptr);
    for (let r = 0; r < region.len; r++) this.writer.copy(region.place, r, place, r);
    if (region.ptr) this.arena.release(region.ptr);
    Object.assign(region, { ptr, cap, place });
    this.reallocations++;
  }
}
