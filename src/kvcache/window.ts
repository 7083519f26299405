// Sliding-window KV cache (Mistral's rolling buffer): each (layer, sequence) keeps the last W
// positions in a ring of W rows; position p lives in slot p mod W. Its rows form at most two
// segments in position order: slots [start, W) then [0, start), where start = len mod W.
//
// Prefill needs more than W rows at once: the query at position p sees keys (p - W, p], so writing
// T > 1 tokens into a W-row ring first would overwrite keys that earlier queries of the same
// prefill still need. For T > 1, `write` therefore returns one staging segment holding the last
// W - 1 cached positions plus the T new rows (in the cache's dtype, so values match decode
// exactly), and commits the newest min(T, W) rows to the ring. A decode step (T = 1) reads the
// ring directly.
//
// Legend: K kv heads, D head dim, W window in tokens, T new tokens.

import type { Arena } from "../kernels/memory.js";
import type { KvSegment } from "../kernels/types.js";
import { type KvCacheConfig, type KvWriteOptions, type RowPlace, checkWriteInputs, countBytes, regionLayout, segmentOf } from "./cache.js";
import { type Region, RegionKvCache, emptyPlace } from "./regions.js";

export interface SlidingWindowKvCacheOptions extends KvWriteOptions {
  window: number; // W, e.g. 4096 for Mistral-7B: keys with pos <= qPos - W are dropped
}

/** A W-row ring; len counts positions written and may exceed W. */
type Ring = Region;

/**
 * @example
 * const cache = new SlidingWindowKvCache(arena, { numLayers: 1, numKvHeads: 8, headDim: 128 }, { window: 4096 });
 * const seq = cache.addSequence();
 * const segments = cache.write(0, seq, k, v); // attend with window: 4096
 */
export class SlidingWindowKvCache extends RegionKvCache<Ring> {
  readonly kind = "window" as const;
  readonly window: number;
  private staging: { ptr: number; cap: number; place: RowPlace } = { ptr: 0, cap: 0, place: emptyPlace() };

  constructor(arena: Arena, config: KvCacheConfig, opts: SlidingWindowKvCacheOptions) {
    super(arena, "SlidingWindowKvCache", config, opts);
    this.window = opts.window;
    if (!Number.isInteger(this.window) || this.window < 1) throw new RangeError(`SlidingWindowKvCache: window must be a positive integer, got ${this.window}`);
  }

  protected emptyRegion(): Ring {
    return { ptr: 0, len: 0, place: emptyPlace() };
  }

  write(layer: number, seq: number, k: Float32Array, v: Float32Array): KvSegment[] {
    const T = checkWriteInputs("SlidingWindowKvCache.write", this.config, layer, k, v);
    const ring = this.get(seq)[layer];
    const W = this.window;
    const len = ring.len;
    const keep = Math.min(len, W - 1); // cached positions the first new query can still see
    const needsStaging = T > 1 && keep + T > this.staging.cap;
    if (ring.ptr === 0 || needsStaging) {
      // Allocation may grow a non-shared memory and detach views of it: keep copies of the inputs.
      k = this.survivingGrowth(k);
      v = this.survivingGrowth(v);
      if (ring.ptr === 0) this.allocRing(ring);
      if (needsStaging) this.growStaging(keep + T);
    }
    if (T === 1) {
      this.writer.write(ring.place, len % W, k, v, 0);
      ring.len = len + 1;
      return this.segments(layer, seq);
    }
    const st = this.staging.place;
    for (let i = 0; i < keep; i++) this.writer.copy(ring.place, (len - keep + i) % W, st, i);
    this.writer.writeRows(st, keep, k, v, 0, T);
    for (let t = Math.max(0, T - W); t < T; t++) this.writer.copy(st, keep + t, ring.place, (len + t) % W);
    ring.len = len + T;
    return [segmentOf(st, 0, keep + T, len - keep, this.writer.rowStride)];
  }

  segments(layer: number, seq: number): KvSegment[] {
    const ring = this.get(seq)[layer];
    const W = this.window;
    const { len, place } = ring;
    const stride = this.writer.rowStride;
    if (len === 0) return [];
    if (len <= W) return [segmentOf(place, 0, len, 0, stride)];
    const start = len % W; // slot of the oldest kept position, len - W
    const segs = [segmentOf(place, start, W - start, len - W, stride)];
    if (start > 0) segs.push(segmentOf(place, 0, start, len - start, stride));
    return segs;
  }

  /** Bytes of the cached rows: min(len, W) per (layer, seq), equal to kvCacheBytes with the window applied. */
  bytes(): number {
    return countBytes(this.config, this.perRegion((r) => r.len), { window: this.window });
  }

  /** W rows per allocated ring, plus the prefill staging rows. */
  reservedBytes(): number {
    const rows = this.perRegion((r) => (r.ptr ? this.window : null));
    return countBytes(this.config, [this.staging.cap, ...rows]);
  }

  override dispose(): void {
    super.dispose();
    if (this.staging.ptr) this.arena.release(this.staging.ptr);
    this.staging = { ptr: 0, cap: 0, place: emptyPlace() };
  }

  private allocRing(ring: Ring): void {
    const bytes = regionLayout(this.config, this.window, 0).bytes;
    ring.ptr = this.arena.alloc(bytes, `sliding-window KV cache (${this.window} tokens)`);
    ring.place = regionLayout(this.config, this.window, ring.ptr).place;
  }

  private growStaging(rows: number): void {
    const cap = Math.max(rows, 2 * this.staging.cap);
    if (this.staging.ptr) this.arena.release(this.staging.ptr);
    const ptr = this.arena.alloc(regionLayout(this.config, cap, 0).bytes, `sliding-window prefill staging (${cap} tokens)`);
    this.staging = { ptr, cap, place: regionLayout(this.config, cap, ptr).place };
  }

}
