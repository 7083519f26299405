// Contiguous KV cache: one arena region per (layer, sequence) holding K [K, cap, D] and V [K, cap, D]
// (+ int8 scales [K, cap]). When a write needs more than `cap` rows the region is reallocated with
// geometric growth (×2 by default), so a decode loop reallocates O(log S) times, not every step
// (transformers.js loses 3× at some lengths by growing its cache on every token).
//
// Legend: K kv heads, D head dim, S cached rows, cap rows reserved, T new tokens.

import type { Arena } from "../kernels/memory.js";
import type { KvSegment } from "../kernels/types.js";
import { type KvCacheConfig, type KvWriteOptions, checkWriteInputs, countBytes, regionLayout, segmentOf } from "./cache.js";
import { type Region as BaseRegion, RegionKvCache, emptyPlace } from "./regions.js";

export interface ContiguousKvCacheOptions extends KvWriteOptions {
  initialTokens?: number; // rows reserved at the first write, e.g. 16 (at least the first write's T)
  growth?: number; // capacity multiplier when full, e.g. 2; must be > 1
}

interface Region extends BaseRegion {
  cap: number; // rows reserved per kv head
}

/**
 * @example
 * const cache = new ContiguousKvCache(arena, { numLayers: 2, numKvHeads: 2, headDim: 64, dtype: "f16" });
 * const seq = cache.addSequence();
 * const segments = cache.write(0, seq, k, v); // k, v: f32 [T, 2, 64]
 */
export class ContiguousKvCache extends RegionKvCache<Region> {
  readonly kind = "contiguous" as const;
  /** How many times a region was (re)allocated; tests use it to prove growth is geometric. */
  reallocations = 0;
  private readonly initialTokens: number;
  private readonly growth: number;

  constructor(arena: Arena, config: KvCacheConfig, opts: ContiguousKvCacheOptions = {}) {
    super(arena, "ContiguousKvCache", config, opts);
    this.initialTokens = opts.initialTokens ?? 16;
    this.growth = opts.growth ?? 2;
    if (!Number.isInteger(this.initialTokens) || this.initialTokens < 1) throw new RangeError(`ContiguousKvCache: initialTokens must be a positive integer, got ${this.initialTokens}`);
    if (!(this.growth > 1)) throw new RangeError(`ContiguousKvCache: growth must be > 1, got ${this.growth}`);
  }

  protected emptyRegion(): Region {
    return { ptr: 0, cap: 0, len: 0, place: emptyPlace() };
  }

  write(layer: number, seq: number, k: Float32Array, v: Float32Array): KvSegment[] {
    const T = checkWriteInputs("ContiguousKvCache.write", this.config, layer, k, v);
    const region = this.get(seq)[layer];
    if (region.len + T > region.cap) {
      // Growing may grow the arena memory, which detaches views of a non-shared memory: keep copies.
      k = this.survivingGrowth(k);
      v = this.survivingGrowth(v);
      this.grow(region, region.len + T);
    }
    this.writer.writeRows(region.place, region.len, k, v, 0, T);
    region.len += T;
    return this.segments(layer, seq);
  }

  segments(layer: number, seq: number): KvSegment[] {
    const region = this.get(seq)[layer];
    if (region.len === 0) return [];
    return [segmentOf(region.place, 0, region.len, 0, this.writer.rowStride)];
  }

  bytes(): number {
    return countBytes(this.config, this.perRegion((r) => r.len));
  }

  reservedBytes(): number {
    return countBytes(this.config, this.perRegion((r) => r.cap));
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
