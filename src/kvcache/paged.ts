// Paged KV cache (vLLM style): fixed-size blocks of bs tokens come from one pool allocated up front;
// each (layer, sequence) has a block table, and freeing a sequence returns its blocks to the pool.
// Each block holds K [K, bs, D], V [K, bs, D] (+ int8 scales [K, bs]); a sequence's rows are one
// KvSegment per block, in block-table order.
//
// Legend: K kv heads, D head dim, bs block size in tokens, S cached rows, T new tokens.

import { UserError } from "../errors.js";
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

export interface PagedKvCacheOptions {
  blockSize?: number; // tokens per block, e.g. 16 (vLLM's default)
  numBlocks: number; // blocks in the pool, shared by all layers and sequences, e.g. 1024
}

interface Table {
  blocks: number[][]; // [L][blocks] block ids
  lens: number[]; // [L] tokens written
}

/**
 * @example
 * const cache = new PagedKvCache(arena, { numLayers: 2, numKvHeads: 1, headDim: 64 }, { blockSize: 16, numBlocks: 64 });
 * const seq = cache.addSequence();
 * cache.write(0, seq, k, v); // k, v: f32 [T, 1, 64]; takes ceil(T / 16) blocks from the pool
 * cache.freeSequence(seq); // blocks return to the pool
 */
export class PagedKvCache implements KvCache {
  readonly kind = "paged" as const;
  readonly config: Required<KvCacheConfig>;
  readonly blockSize: number;
  readonly numBlocks: number;
  private readonly poolPtr: number;
  private readonly blockBytes: number;
  private readonly freeBlocks: number[]; // a stack: the most recently freed block is reused first
  private readonly tables = new Map<number, Table>();
  private nextSeq = 0;
  private readonly writer: RowWriter;

  constructor(readonly arena: Arena, config: KvCacheConfig, opts: PagedKvCacheOptions) {
    this.config = normalizeCacheConfig("PagedKvCache", config);
    this.blockSize = opts.blockSize ?? 16;
    this.numBlocks = opts.numBlocks;
    for (const [field, value] of [["blockSize", this.blockSize], ["numBlocks", this.numBlocks]] as const) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`PagedKvCache: ${field} must be a positive integer, got ${value}`);
    }
    this.blockBytes = Math.ceil(regionLayout(this.config, this.blockSize, 0).bytes / 64) * 64;
    this.poolPtr = arena.alloc(this.blockBytes * this.numBlocks, `paged KV pool (${this.numBlocks} blocks × ${this.blockSize} tokens)`);
    this.freeBlocks = Array.from({ length: this.numBlocks }, (_, i) => this.numBlocks - 1 - i); // pops block 0 first
    this.writer = new RowWriter(arena, this.config.numKvHeads, this.config.headDim, this.config.dtype);
  }

  /** Blocks currently free in the pool. */
  freeBlockCount(): number {
    return this.freeBlocks.length;
  }

  /** The block table of (layer, seq): block ids in position order. */
  blockTable(layer: number, seq: number): readonly number[] {
    return this.get(seq).blocks[layer];
  }

  addSequence(): number {
    const seq = this.nextSeq++;
    const L = this.config.numLayers;
    this.tables.set(seq, { blocks: Array.from({ length: L }, () => []), lens: new Array(L).fill(0) });
    return seq;
  }

  freeSequence(seq: number): void {
    for (const blocks of this.get(seq).blocks) this.freeBlocks.push(...blocks);
    this.tables.delete(seq);
  }

  sequences(): number[] {
    return [...this.tables.keys()];
  }

  length(seq: number, layer = 0): number {
    return this.get(seq).lens[layer];
  }

  write(layer: number, seq: number, k: Float32Array, v: Float32Array): KvSegment[] {
    const T = checkWriteInputs("PagedKvCache.write", this.config, layer, k, v);
    const table = this.get(seq);
    const blocks = table.blocks[layer];
    const len = table.lens[layer];
    const bs = this.blockSize;
    const need = Math.ceil((len + T) / bs) - blocks.length;
    if (need > this.freeBlocks.length) {
      // Checked before writing anything, so a failed write leaves the cache unchanged.
      throw new UserError(
        `PagedKvCache: pool exhausted: sequence ${seq} layer ${layer} needs ${need} more block(s) of ${bs} tokens ` +
          `for ${len + T} tokens, but only ${this.freeBlocks.length} of ${this.numBlocks} are free; free finished sequences or raise numBlocks`,
      );
    }
    for (let i = 0; i < need; i++) blocks.push(this.freeBlocks.pop()!);
    for (let t = 0; t < T; t++) {
      const pos = len + t;
      this.writer.write(this.place(blocks[Math.floor(pos / bs)]), pos % bs, k, v, t);
    }
    table.lens[layer] = len + T;
    return this.segments(layer, seq);
  }

  segments(layer: number, seq: number): KvSegment[] {
    const table = this.get(seq);
    const len = table.lens[layer];
    const bs = this.blockSize;
    return table.blocks[layer].map((b, i) => segmentOf(this.place(b), 0, Math.min(bs, len - i * bs), i * bs, this.writer.rowStride));
  }

  /** Bytes held by sequences: whole blocks, equal to kvCacheBytes with blockSize. */
  bytes(): number {
    const lens: number[] = [];
    for (const t of this.tables.values()) lens.push(...t.lens);
    return countBytes(this.config, lens, { blockSize: this.blockSize });
  }

  /** The whole pool, counted as numBlocks × blockSize tokens of one layer. */
  reservedBytes(): number {
    return countBytes(this.config, [this.numBlocks * this.blockSize]);
  }

  dispose(): void {
    this.tables.clear();
    this.arena.release(this.poolPtr);
  }

  private place(block: number): RowPlace {
    return regionLayout(this.config, this.blockSize, this.poolPtr + block * this.blockBytes).place;
  }

  private get(seq: number): Table {
    const t = this.tables.get(seq);
    if (!t) throw new RangeError(`PagedKvCache: unknown sequence ${seq}; live sequences are [${this.sequences().join(", ")}]`);
    return t;
  }
}
