// Bookkeeping shared by the cache forms that give each (layer, sequence) one arena region of their
// own: the contiguous cache (a growable [K, cap, D] region) and the sliding-window cache (a W-row
// ring). The paged cache instead keeps block tables over one shared pool.
//
// Legend: L layers, K kv heads, D head dim.

import type { Arena } from "../kernels/memory.js";
import type { KvSegment } from "../kernels/types.js";
import { type KvCache, type KvCacheConfig, type KvCacheKind, type KvWriteOptions, type RowPlace, RowWriter, normalizeCacheConfig } from "./cache.js";

/** One (layer, sequence) region: its allocation (0 = none yet), the tokens written, where its rows live. */
export interface Region {
  ptr: number;
  len: number; // positions written
  place: RowPlace;
}

export function emptyPlace(): RowPlace {
  return { kPtr: 0, vPtr: 0, headStride: 0 };
}

export abstract class RegionKvCache<R extends Region> implements KvCache {
  abstract readonly kind: KvCacheKind;
  readonly config: Required<KvCacheConfig>;
  protected readonly regions = new Map<number, R[]>(); // seq -> [L]
  protected readonly writer: RowWriter;
  get finite(): boolean {
    return !this.writer.nonFinite;
  }
  private nextSeq = 0;

  constructor(readonly arena: Arena, private readonly where: string, config: KvCacheConfig, opts: KvWriteOptions) {
    this.config = normalizeCacheConfig(where, config);
    this.writer = new RowWriter(arena, this.config.numKvHeads, this.config.headDim, this.config.dtype, opts);
  }

  /** A fresh, unallocated region for one layer of a new sequence. */
  protected abstract emptyRegion(): R;
  abstract write(layer: number, seq: number, k: Float32Array, v: Float32Array): KvSegment[];
  abstract segments(layer: number, seq: number): KvSegment[];
  abstract bytes(): number;
  abstract reservedBytes(): number;

  addSequence(): number {
    const seq = this.nextSeq++;
    this.regions.set(seq, Array.from({ length: this.config.numLayers }, () => this.emptyRegion()));
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

  dispose(): void {
    for (const seq of this.sequences()) this.freeSequence(seq);
  }

  /** `pick` of every (layer, sequence) region, e.g. its written length, for countBytes. */
  protected perRegion(pick: (r: R) => number | null): number[] {
    const out: number[] = [];
    for (const regions of this.regions.values()) {
      for (const r of regions) {
        const n = pick(r);
        if (n !== null) out.push(n);
      }
    }
    return out;
  }

  /**
   * `a` itself, or a copy when it is a view of a non-shared arena memory (growing such a memory
   * detaches its views). A shared memory never detaches, so no copy is made: copying every
   * layer's prefill k and v left ~1 MiB of garbage per layer for a 511-token chunk.
   */
  protected survivingGrowth(a: Float32Array): Float32Array {
    const shared = typeof SharedArrayBuffer !== "undefined" && a.buffer instanceof SharedArrayBuffer;
    return !shared && a.buffer === this.arena.memory.buffer ? a.slice() : a;
  }

  protected get(seq: number): R[] {
    const r = this.regions.get(seq);
    if (!r) throw new RangeError(`${this.where}: unknown sequence ${seq}; live sequences are [${this.sequences().join(", ")}]`);
    return r;
  }
}
