// Paged KV cache (vLLM style): fixed-size blocks of bs tokens come from one pool allocated up front;
// each (layer, sequence) has a block table, and freeing a sequence returns its blocks to the pool.
// Each block holds K [K, bs, D], V [K, bs, D] (+ int8 scales [K, bs]); a sequence's rows are one
// KvSegment per block, in block-table order.
//
// With prefixCache, full blocks of prompts are indexed by their tokens (prefix.ts) and reference
// counted: a new sequence whose prompt starts with cached blocks attaches them (attachPrefix) instead
// of computing them, and copies the matching rows of a partly matching block into a block of its own
// (copy-on-write: shared blocks are never written). A cached block no sequence uses stays until the
// pool runs short; then the least recently used ones are evicted.
//
// Legend: K kv heads, D head dim, bs block size in tokens, S cached rows, T new tokens.

import { UserError } from "../errors.js";
import type { Arena } from "../kernels/memory.js";
import type { KvSegment } from "../kernels/types.js";
import { PrefixIndex, type PrefixEntry } from "./prefix.js";
import {
  type KvCache,
  type KvCacheConfig,
  type KvWriteOptions,
  type RowPlace,
  RowWriter,
  checkWriteInputs,
  countBytes,
  normalizeCacheConfig,
  regionLayout,
  segmentOf,
} from "./cache.js";

export interface PagedKvCacheOptions extends KvWriteOptions {
  blockSize?: number; // tokens per block, e.g. 16 (vLLM's default)
  numBlocks: number; // blocks in the pool, shared by all layers and sequences, e.g. 1024
  prefixCache?: boolean; // index full prompt blocks for reuse by later sequences (default false)
}

interface Table {
  blocks: number[][]; // [L][blocks] block ids
  lens: number[]; // [L] tokens written
  chain: PrefixEntry[]; // prefix entries of its first blocks, in order (prefixCache)
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
  get finite(): boolean {
    return !this.writer.nonFinite;
  }
  private readonly refs: Int32Array; // sequences using each block
  private readonly prefix: PrefixIndex | null;

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
    this.writer = new RowWriter(arena, this.config.numKvHeads, this.config.headDim, this.config.dtype, opts);
    this.refs = new Int32Array(this.numBlocks);
    this.prefix = opts.prefixCache ? new PrefixIndex(this.blockSize) : null;
  }

  /** Blocks currently free in the pool (cached prefix blocks not counted). */
  freeBlockCount(): number {
    return this.freeBlocks.length;
  }

  /** Blocks a write can take: free ones plus cached prefix blocks no sequence uses. */
  availableBlockCount(): number {
    return this.freeBlocks.length + (this.prefix ? this.prefix.idleBlocks((b) => this.refs[b] === 0) : 0);
  }

  /** Blocks held by the prefix index (in use or idle). */
  cachedBlockCount(): number {
    return this.prefix ? this.prefix.size * this.config.numLayers : 0;
  }

  /** The block table of (layer, seq): block ids in position order. */
  blockTable(layer: number, seq: number): readonly number[] {
    return this.get(seq).blocks[layer];
  }

  addSequence(): number {
    const seq = this.nextSeq++;
    const L = this.config.numLayers;
    this.tables.set(seq, { blocks: Array.from({ length: L }, () => []), lens: new Array(L).fill(0), chain: [] });
    return seq;
  }

  freeSequence(seq: number): void {
    for (const blocks of this.get(seq).blocks) {
      for (const b of blocks) if (--this.refs[b] === 0 && !this.prefix?.holds(b)) this.freeBlocks.push(b);
    }
    this.tables.delete(seq);
  }

  /**
   * Starts the empty sequence `seq` with the longest cached prefix of `tokens`, at most `maxRows`
   * rows (a prompt keeps at least its last token to compute): whole cached blocks are shared, and the
   * rows of a partly matching block are copied into a new block. Returns the rows reused (0 without
   * prefixCache); the sequence's length is then that many tokens in every layer.
   */
  attachPrefix(seq: number, tokens: readonly number[], maxRows = tokens.length - 1): number {
    const table = this.get(seq);
    if (!this.prefix || maxRows <= 0) return 0;
    if (table.lens.some((n) => n > 0)) throw new RangeError(`PagedKvCache.attachPrefix: sequence ${seq} already holds rows`);
    const bs = this.blockSize, L = this.config.numLayers;
    const chain: PrefixEntry[] = [];
    let parent: PrefixEntry | null = null;
    while ((chain.length + 1) * bs <= maxRows) {
      const e = this.prefix.find(parent, tokens.slice(chain.length * bs, (chain.length + 1) * bs));
      if (!e) break;
      chain.push(e);
      parent = e;
    }
    for (const e of chain) for (const b of e.blocks) this.refs[b]++;
    this.prefix.touch(chain);
    for (let l = 0; l < L; l++) table.blocks[l] = chain.map((e) => e.blocks[l]);
    table.chain = chain;
    let rows = chain.length * bs;
    // Copy-on-write: the next block's cached copy may share some rows with this prompt.
    const rest = tokens.slice(rows, Math.min(maxRows, rows + bs));
    const partial = rest.length > 0 ? this.prefix.longestPartial(parent, rest) : null;
    if (partial && this.freeBlocksFor(L, partial.entry.blocks)) {
      const src = partial.entry.blocks;
      for (const b of src) this.refs[b]++; // pinned: taking blocks below must not evict the source
      for (let l = 0; l < L; l++) {
        const dst = this.takeBlock();
        for (let r = 0; r < partial.rows; r++) this.writer.copy(this.place(src[l]), r, this.place(dst), r);
        table.blocks[l].push(dst);
      }
      for (const b of src) this.refs[b]--;
      this.prefix.touch([partial.entry]);
      rows += partial.rows;
    }
    table.lens.fill(rows);
    return rows;
  }

  /**
   * Indexes the full blocks of `seq` whose rows hold `tokens` (its first tokens, e.g. the prompt), so
   * later sequences can attach them. Blocks already indexed, or whose prefix another sequence indexed
   * first, are left as they are.
   */
  registerPrefix(seq: number, tokens: readonly number[]): void {
    if (!this.prefix) return;
    const table = this.get(seq);
    const bs = this.blockSize;
    const full = Math.floor(Math.min(tokens.length, ...table.lens) / bs);
    let parent: PrefixEntry | null = table.chain[table.chain.length - 1] ?? null;
    for (let i = table.chain.length; i < full; i++) {
      const blocks = table.blocks.map((b) => b[i]);
      const e = this.prefix.add(parent, tokens.slice(i * bs, (i + 1) * bs), blocks);
      if (e.blocks.some((b, l) => b !== blocks[l])) break; // another sequence's copy: ours stays private
      table.chain.push(e);
      parent = e;
    }
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
    if (need > this.freeBlocks.length && need > this.availableBlockCount()) {
      // Checked before writing anything, so a failed write leaves the cache unchanged.
      throw new UserError(
        `PagedKvCache: pool exhausted: sequence ${seq} layer ${layer} needs ${need} more block(s) of ${bs} tokens ` +
          `for ${len + T} tokens, but only ${this.availableBlockCount()} of ${this.numBlocks} are free; free finished sequences or raise numBlocks`,
      );
    }
    for (let i = 0; i < need; i++) blocks.push(this.takeBlock());
    for (let t = 0; t < T; ) {
      const pos = len + t, run = Math.min(T - t, bs - (pos % bs)); // the rest of this block
      this.writer.writeRows(this.place(blocks[Math.floor(pos / bs)]), pos % bs, k, v, t, run);
      t += run;
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

  /** A block for a sequence (reference count 1): a free one, else an evicted idle prefix block. */
  private takeBlock(): number {
    if (this.freeBlocks.length === 0 && this.prefix) {
      const freed = this.prefix.evict((b) => this.refs[b] === 0);
      if (freed) this.freeBlocks.push(...freed);
    }
    const b = this.freeBlocks.pop();
    if (b === undefined) throw new RangeError("PagedKvCache: no free block (checked by the caller)");
    this.refs[b] = 1;
    return b;
  }

  /** Whether n blocks can be taken without evicting any of `keep`. */
  private freeBlocksFor(n: number, keep: readonly number[]): boolean {
    const pinned = keep.filter((b) => this.refs[b] === 0).length;
    return this.availableBlockCount() - pinned >= n;
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
