// The KV-cache interface shared by the three forms (contiguous, paged, sliding window), and the
// row encoder they all use. Every form keeps its rows in the Arena, so kernels read them in place
// through KvSegment lists; no form ever stores a K/V head more than once (numKvHeads, never numHeads).
//
// Legend: L layers, B sequences, T new tokens, K kv heads, D head dim, S cached rows,
//         W window, bs block size in tokens.
//
// Input rows come as the K/V projections produce them: f32 [T, K, D] (token-major).
// Stored rows are head-major per (layer, sequence): [K, S, D], so one head's rows are contiguous
// and a decode kernel streams them; int8 rows carry one f32 scale each, [K, S].

import type { Kernels, KvDtype, KvSegment } from "../kernels/types.js";
import type { Arena } from "../kernels/memory.js";
import { kvCacheBytes, type KvShape } from "./bytes.js";
import { canonicalDtype, dtypeInfo, elementBytes } from "../dtypes/table.js";
import { f16DecodeTable, f32ToBf16, f32ToF16, quantizeInt8Row } from "../dtypes/codecs.js";

export const KV_DTYPES: readonly KvDtype[] = ["f32", "f16", "bf16", "int8"];

/** What every cache form stores. */
export interface KvCacheConfig {
  numLayers: number; // e.g. 32
  numKvHeads: number; // e.g. 8: heads actually stored (1 = MQA); never repeated per query head
  headDim: number; // e.g. 128
  dtype?: KvDtype; // storage type, default "f32"; int8 adds one f32 scale per row
}

export type KvCacheKind = "contiguous" | "paged" | "window";

/** What every cache form takes besides its shape. */
export interface KvWriteOptions {
  kernels?: Pick<Kernels, "rowOp">; // narrows f16/bf16 rows on the kernel threads (else row by row in TypeScript)
  kernelMinValues?: number; // only writes of at least this many values per K or V (default 8192): a decode step's few rows cost less in TypeScript than a dispatch
}

/**
 * One interface, three forms. Sequences are added and freed by id; each (layer, sequence) holds
 * its own rows. `write` appends T tokens for one layer and returns the segments the T new queries
 * attend over (valid until the next write to this cache).
 */
export interface KvCache {
  readonly kind: KvCacheKind;
  readonly config: Required<KvCacheConfig>;
  readonly arena: Arena; // where the rows live; kernels over another arena cannot read them
  readonly window?: number; // window caches only: W positions kept per (layer, sequence)
  /** No inf/NaN half has been stored (f16 caches; always true for the others): attention may skip its check (AttentionCall.kvFinite). */
  readonly finite: boolean;
  /** Starts an empty sequence and returns its id. */
  addSequence(): number;
  /** Frees a sequence's rows (paged: its blocks go back to the pool). */
  freeSequence(seq: number): void;
  /** Ids of live sequences, in creation order. */
  sequences(): number[];
  /** Tokens written so far for (seq, layer): the position of the next token. */
  length(seq: number, layer?: number): number;
  /**
   * Appends T tokens of K and V, each f32 [T, K, D], for one layer of one sequence, and returns
   * the segments that queries at positions length .. length + T - 1 must attend over.
   */
  write(layer: number, seq: number, k: Float32Array, v: Float32Array): KvSegment[];
  /** The segments currently cached for (layer, seq), in position order. */
  segments(layer: number, seq: number): KvSegment[];
  /** Bytes of the cached rows: Σ over layers and sequences of kvCacheBytes (the planner's count). */
  bytes(): number;
  /** Bytes reserved in the arena (spare contiguous capacity, the whole paged pool, the full window). */
  reservedBytes(): number;
  /** Returns every allocation to the arena; the cache is unusable afterwards. */
  dispose(): void;
}

/** Validates and fills defaults; messages name the field and the value. */
export function normalizeCacheConfig(where: string, config: KvCacheConfig): Required<KvCacheConfig> {
  let dtype: KvDtype;
  try {
    dtype = canonicalDtype(config.dtype ?? "f32", KV_DTYPES) as KvDtype;
  } catch (e) {
    throw new RangeError(`${where}: dtype: ${(e as Error).message}`);
  }
  for (const field of ["numLayers", "numKvHeads", "headDim"] as const) {
    const value = config[field];
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`${where}: ${field} must be a positive integer, got ${value}`);
  }
  return { numLayers: config.numLayers, numKvHeads: config.numKvHeads, headDim: config.headDim, dtype };
}

/** A one-layer shape for kvCacheBytes, so per-layer lengths are counted with the planner's function. */
export function layerShape(config: Required<KvCacheConfig>, window: number | null = null): KvShape {
  return { layers: [{ numKvHeads: config.numKvHeads, headDim: config.headDim, window }], mla: null };
}

/** Σ over (layer, seq) of kvCacheBytes for that layer's token count. */
export function countBytes(config: Required<KvCacheConfig>, lengths: Iterable<number>, opts: { blockSize?: number; window?: number } = {}): number {
  const shape = layerShape(config, opts.window ?? null);
  let bytes = 0;
  for (const tokens of lengths) bytes += kvCacheBytes(shape, { tokens, dtype: config.dtype, blockSize: opts.blockSize ?? null });
  return bytes;
}

/** Where the rows of one (layer, seq) storage region live: kv head k, row r at ptr + k*headStride + r*rowStride. */
export interface RowPlace {
  kPtr: number;
  vPtr: number;
  headStride: number; // bytes
  kScalePtr?: number; // int8 only
  vScalePtr?: number;
  scaleHeadStride?: number; // f32 elements
}

/**
 * Encodes token t (0-based in the f32 [T, K, D] inputs) into row `row` of `place`, converting to the
 * storage dtype. Views are made once per call because arena growth can replace the buffer.
 */
export class RowWriter {
  private f32!: Float32Array;
  private u16!: Uint16Array;
  private i8!: Int8Array;
  private buffer: ArrayBufferLike | null = null;
  readonly rowStride: number; // bytes between consecutive rows of one head
  nonFinite = false; // an f16 write stored an inf/NaN half (a copy only moves rows already counted)

  private readonly kernels?: Pick<Kernels, "rowOp">;
  private readonly kernelMinValues: number;

  constructor(private readonly arena: Arena, private readonly K: number, private readonly D: number, private readonly dtype: KvDtype, opts: KvWriteOptions = {}) {
    this.rowStride = D * elementBytes(dtype);
    this.kernels = opts.kernels;
    this.kernelMinValues = opts.kernelMinValues ?? 8192;
  }

  /**
   * Tokens t0 .. t0 + count − 1 into rows row0 .. row0 + count − 1 of `place`. f16/bf16 rows of
   * inputs that live in the arena, kernelMinValues or more, go through one kernel call (rows.ts narrow, bit-identical to
   * codecs.ts); anything else token by token.
   */
  writeRows(place: RowPlace, row0: number, k: Float32Array, v: Float32Array, t0: number, count: number): void {
    const buf = this.arena.memory.buffer;
    const { K, D } = this;
    if (count * K * D >= this.kernelMinValues && this.kernels?.rowOp && (this.dtype === "f16" || this.dtype === "bf16") && k.buffer === buf && v.buffer === buf) {
      const src = t0 * K * D * 4;
      const special = this.kernels.rowOp({
        op: "narrow", dtype: this.dtype, kSrc: k.byteOffset + src, vSrc: v.byteOffset + src, kDst: place.kPtr + row0 * this.rowStride, vDst: place.vPtr + row0 * this.rowStride,
        heads: K, rows: count, width: D, srcRowBytes: K * D * 4, srcHeadBytes: D * 4, dstHeadBytes: place.headStride, dstRowBytes: this.rowStride,
      });
      if (special && this.dtype === "f16") this.nonFinite = true;
      return;
    }
    for (let i = 0; i < count; i++) this.write(place, row0 + i, k, v, t0 + i);
  }

  private views(): void {
    const buf = this.arena.memory.buffer;
    if (buf === this.buffer && this.f32.length * 4 === buf.byteLength) return;
    this.buffer = buf;
    this.f32 = new Float32Array(buf);
    this.u16 = new Uint16Array(buf);
    this.i8 = new Int8Array(buf);
  }

  write(place: RowPlace, row: number, k: Float32Array, v: Float32Array, t: number): void {
    this.views();
    const { K, D } = this;
    for (let kh = 0; kh < K; kh++) {
      const src = (t * K + kh) * D;
      const off = kh * place.headStride + row * this.rowStride;
      const scaleIdx = kh * (place.scaleHeadStride ?? 0) + row;
      this.writeOne(k, src, place.kPtr + off, place.kScalePtr, scaleIdx);
      this.writeOne(v, src, place.vPtr + off, place.vScalePtr, scaleIdx);
    }
  }

  private writeOne(src: Float32Array, srcOff: number, ptr: number, scalePtr: number | undefined, scaleIdx: number): void {
    const D = this.D;
    if (this.dtype === "f32") {
      this.f32.set(src.subarray(srcOff, srcOff + D), ptr >>> 2);
    } else if (this.dtype === "f16") {
      const base = ptr >>> 1;
      let special = 0;
      for (let d = 0; d < D; d++) {
        const h = f32ToF16(src[srcOff + d]);
        this.u16[base + d] = h;
        special |= (h & 0x7c00) === 0x7c00 ? 1 : 0;
      }
      if (special) this.nonFinite = true;
    } else if (this.dtype === "bf16") {
      const base = ptr >>> 1;
      for (let d = 0; d < D; d++) this.u16[base + d] = f32ToBf16(src[srcOff + d]);
    } else {
      const scale = quantizeInt8Row(src.subarray(srcOff, srcOff + D), this.i8, ptr);
      this.f32[(scalePtr! >>> 2) + scaleIdx] = scale;
    }
  }

  /** Copies row `fromRow` of `from` to row `toRow` of `to` (same dtype), scales included. */
  copy(from: RowPlace, fromRow: number, to: RowPlace, toRow: number): void {
    this.views();
    const bytes = new Uint8Array(this.arena.memory.buffer);
    for (let kh = 0; kh < this.K; kh++) {
      const a = kh * from.headStride + fromRow * this.rowStride;
      const b = kh * to.headStride + toRow * this.rowStride;
      bytes.copyWithin(to.kPtr + b, from.kPtr + a, from.kPtr + a + this.rowStride);
      bytes.copyWithin(to.vPtr + b, from.vPtr + a, from.vPtr + a + this.rowStride);
      if (this.dtype === "int8") {
        const sa = kh * from.scaleHeadStride! + fromRow;
        const sb = kh * to.scaleHeadStride! + toRow;
        this.f32[(to.kScalePtr! >>> 2) + sb] = this.f32[(from.kScalePtr! >>> 2) + sa];
        this.f32[(to.vScalePtr! >>> 2) + sb] = this.f32[(from.vScalePtr! >>> 2) + sa];
      }
    }
  }
}

/** A segment of `rows` rows starting at row `row0` of a place. */
export function segmentOf(place: RowPlace, row0: number, rows: number, firstPos: number, rowStride: number): KvSegment {
  const seg: KvSegment = {
    kPtr: place.kPtr + row0 * rowStride,
    vPtr: place.vPtr + row0 * rowStride,
    rows,
    headStride: place.headStride,
    firstPos,
  };
  if (place.kScalePtr !== undefined) {
    seg.kScalePtr = place.kScalePtr + 4 * row0;
    seg.vScalePtr = place.vScalePtr! + 4 * row0;
    seg.scaleHeadStride = place.scaleHeadStride;
  }
  return seg;
}

/**
 * Lays out one region of `rows` rows per kv head: K [K, rows, D], V [K, rows, D], then (int8)
 * kScale [K, rows], vScale [K, rows]. Returns the byte size and the place at `base`.
 *
 * The size is the planner's byte count (kvCacheBytes of `rows` tokens) split into its parts: the
 * per-row overhead of the dtype table (int8: one f32 scale per row) and the K and V values. Each
 * value half is padded to 4 bytes so V and the f32 scales stay aligned; that padding (at most 3
 * bytes per half, only when K × rows × D × elementBytes is not a multiple of 4) is all the
 * allocation ever adds to the count.
 */
export function regionLayout(config: Required<KvCacheConfig>, rows: number, base: number): { bytes: number; place: RowPlace } {
  const { numKvHeads: K, headDim: D, dtype } = config;
  const counted = kvCacheBytes(layerShape(config), { tokens: rows, dtype, applyWindow: false });
  const scaleBytes = 2 * K * rows * dtypeInfo(dtype).rowOverheadBytes; // kScale + vScale, f32 [K, rows] each
  const headStride = rows * D * elementBytes(dtype);
  const valueBytes = align4((counted - scaleBytes) / 2); // = align4(K × headStride)
  const place: RowPlace = { kPtr: base, vPtr: base + valueBytes, headStride };
  if (scaleBytes > 0) {
    place.kScalePtr = base + 2 * valueBytes;
    place.vScalePtr = place.kScalePtr + scaleBytes / 2;
    place.scaleHeadStride = rows;
  }
  return { bytes: 2 * valueBytes + scaleBytes, place };
}

function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/** Checks the K/V inputs of a write: both f32 [T, K, D] with the same T. Returns T. */
export function checkWriteInputs(where: string, config: Required<KvCacheConfig>, layer: number, k: Float32Array, v: Float32Array): number {
  const { numLayers, numKvHeads: K, headDim: D } = config;
  if (!Number.isInteger(layer) || layer < 0 || layer >= numLayers) throw new RangeError(`${where}: layer ${layer} out of range [0, ${numLayers})`);
  if (k.length !== v.length || k.length % (K * D) !== 0) {
    throw new RangeError(`${where}: k and v must both be f32 [T, K=${K}, D=${D}]; got lengths ${k.length} and ${v.length}`);
  }
  return k.length / (K * D);
}

/** Decodes one stored row (for tests and debugging): kv head kh, row r of a segment. */
export function readSegmentRow(arena: Arena, dtype: KvDtype, D: number, seg: KvSegment, which: "k" | "v", kh: number, r: number): Float32Array {
  const out = new Float32Array(D);
  const ptr = (which === "k" ? seg.kPtr : seg.vPtr) + kh * seg.headStride + r * D * elementBytes(dtype);
  if (dtype === "f32") out.set(arena.f32(ptr, D));
  else if (dtype === "f16") {
    const t = f16DecodeTable();
    arena.u16(ptr, D).forEach((h, d) => (out[d] = t[h]));
  } else if (dtype === "bf16") {
    const bits = arena.u16(ptr, D);
    const u = new Uint32Array(out.buffer);
    for (let d = 0; d < D; d++) u[d] = bits[d] << 16;
  } else {
    const scalePtr = which === "k" ? seg.kScalePtr! : seg.vScalePtr!;
    const scale = arena.f32(scalePtr + 4 * (kh * seg.scaleHeadStride! + r), 1)[0];
    arena.i8(ptr, D).forEach((q, d) => (out[d] = q * scale));
  }
  return out;
}
