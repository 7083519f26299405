// The WASM SIMD backend of the Kernels interface (browser-neutral: the module and, for threads, a
// WorkerHost come from the caller; Node's are in wasm-node.ts and pool-node.ts).
//
// Legend: T query positions, H query heads, K kv heads, G = H/K, D head dim, Dp = D rounded up to 4,
// S visible cached rows, BQ query positions per work item, BK keys per tile.
//
// The host turns a call into work items in the control block (see assembly/layout.ts):
//   attention: items (kv head, query tile, key split); decode (T = 1) splits long contexts across
//   threads (split-KV) and merges by log-sum-exp; prefill tiles queries and never splits keys.
//   matmul: items (block of x rows, block of w rows); nn/tn: (block of out rows, block of out columns).
import type { ActivationCall, ActivationOp, AttentionCall, Kernels, KvDtype, KvSegment, MatmulCall, MatmulLayout, RowOpCall, TrainOp, TrainOpCall, WeightDtype } from "./types.js";
import type { Arena } from "./memory.js";
import { A, ACTIVATION_OP, ATTN, CTL, E, KIND, LAYOUT, M, MP, P, ROW_OP, S, SCRATCH, SEG, TR, TRAIN_OP } from "./abi.js";
import { Pool, instantiateKernels, type WorkerHost } from "./pool.js";
import { validateActivationCall, validateAttentionCall, validateMatmulLayout } from "./reference.js";
import { elementBytes, rowBytes } from "../dtypes/table.js";

const DTYPE_CODE: Record<KvDtype, number> = { f32: 0, f16: 1, bf16: 2, int8: 3 };
// Keys per tile. Tiles widened into scratch take ATTN.WIDE_TILE (64: K and V tiles of 32 KiB, f32,
// D = 128, stay in L1/L2). Tiles read in place with fewer than 3 query rows per item (f32, or f16/bf16
// with D % 8 == 0: assembly/attention.ts attnTileHalf) take BK_IN_PLACE: nothing to keep in L1 but
// the scores, and each tile reads one K stream, then one V stream. MHA decode, H = K = 32, D = 128,
// 2 threads, AMD EPYC Zen 4, same-process A/B against 128 keys (bench/decode-ab.ts --finite), 2026-12-08:
// f16 1.12-1.28x, bf16 1.12-1.31x at T = 4096 and 16384 with 2048 keys; 512 keys gave 1.16-1.22x, 256
// keys 1.06-1.19x. (Zen 5, session 8: 128 against 64 keys, f16 1.07-1.36x, bf16 1.09-1.33x.) With 3 or
// more query rows per item an f16/bf16 tile is widened (MQA: 0.96-0.98x with 128).
const BK_IN_PLACE = 2048;
// Keys per tile for f32 tiles read in place by row quads (3 or more query rows: GQA, MQA, prefill).
// Same-process A/B against 64, 2 threads, AMD EPYC Zen 4, H = 32, D = 128, 2026-12-08: decode
// 1.02-1.05x with 128 keys, 1.03-1.12x with 256 (two runs), 1.02-1.07x with 512, 0.79-1.12x with
// 1024; prefill (bench/prefill-ab.ts: H = 12, D = 64, T = 512, S = 512 and 8192) 0.98-1.03x with 256.
// (On the Zen 5 of session 8, 128 keys for row quads measured 0.96-0.98x for MQA.)
const BK_QUADS_IN_PLACE = 256;
const ROWS_PER_ITEM = 64; // target query rows (positions × group heads) per prefill item
const MIN_SPLIT_ROWS = 256; // extra decode splits (beyond one per thread) are never shorter than this
// Split lengths are a multiple of this: every split but the last covers whole 16-row blocks, so its
// key tiles stay multiples of 4 and 8 (the tile kernels' vector and quad widths).
const SPLIT_ALIGN = 16;
const MATMUL_MB = 512;
const MATMUL_NB = 16;
// Decode matmul (M < 4) items per thread. Each item prepares its x (f16: scaled, even/odd) and
// restarts its row streams, so fewer, longer items win while the balance holds: a decode step of
// the 110M bench models (2 threads, steps alternating in one process) took 6-8 % less time with
// f16 weights at 4 per thread than at 16, 2-3 % less with f32 (MHA f32: +1 %); 2 per thread was
// no better than 4, 32 was 10-14 % slower.
const DECODE_ITEMS_PER_THREAD = 4;
const MATMUL_KN_B = 64; // nn/tn items: up to 64 rows × 64 columns
const MATMUL_KN_KC = 128; // nn/tn reduction chunk, = KC in assembly/matmulkn.ts: the packed w panel [KC, 64] is 32 KiB

const ACTIVATION_CODE: Record<ActivationOp, number> = { swiglu: ACTIVATION_OP.SWIGLU, geglu: ACTIVATION_OP.GEGLU, gelu: ACTIVATION_OP.GELU, relu: ACTIVATION_OP.RELU };
const ACTIVATION_CHUNK = 16384; // values per activation item (64 KiB of x)
const TRAIN_CODE: Record<TrainOp, number> = {
  xentForward: TRAIN_OP.XENT_FWD, xentBackward: TRAIN_OP.XENT_BWD, swigluForward: TRAIN_OP.SWIGLU_FWD, swigluBackward: TRAIN_OP.SWIGLU_BWD,
  add: TRAIN_OP.ADD, sumsq: TRAIN_OP.SUMSQ, scale: TRAIN_OP.SCALE, adamw: TRAIN_OP.ADAMW, rmsForward: TRAIN_OP.RMS_FWD, rmsBackward: TRAIN_OP.RMS_BWD,
  attnForward: TRAIN_OP.ATTN_FWD, attnBackward: TRAIN_OP.ATTN_BWD,
};

/** A growable buffer in the arena, reallocated only when a call needs more than it has. */
class ArenaBuffer {
  ptr = 0;
  bytes = 0;
  constructor(private readonly arena: Arena, private readonly what: string) {}
  need(bytes: number): number {
    if (bytes <= this.bytes) return this.ptr;
    if (this.ptr) this.arena.release(this.ptr);
    this.bytes = Math.max(bytes, Math.ceil(this.bytes * 1.5));
    this.ptr = this.arena.alloc(this.bytes, this.what);
    return this.ptr;
  }
  free(): void {
    if (this.ptr) this.arena.release(this.ptr);
    this.ptr = this.bytes = 0;
  }
}

export interface WasmKernelsOptions {
  arena: Arena;
  module: WebAssembly.Module; // one of build/kernels-*.wasm, matching the arena's memory (shared or not)
  name: string; // "wasm-simd" | "wasm-relaxed-simd"
  threads: number; // 1 = calling thread only
  host?: WorkerHost; // required when threads > 1
}

export class WasmKernels implements Kernels {
  readonly name: string;
  readonly prefersRows4 = true; // the f16/bf16 4-row loops read one stream (assembly/matvec.ts ROWS4)
  private readonly segs: ArenaBuffer;
  private readonly mmParts: ArenaBuffer;
  private readonly scratch: ArenaBuffer;
  private readonly part: ArenaBuffer;

  private constructor(
    private readonly arena: Arena,
    private readonly pool: Pool,
  ) {
    this.segs = new ArenaBuffer(arena, "kernel segment table");
    this.mmParts = new ArenaBuffer(arena, "matmul parts table");
    this.scratch = new ArenaBuffer(arena, "kernel scratch");
    this.part = new ArenaBuffer(arena, "kernel split-KV partials");
    this.name = "";
  }

  static async create(opts: WasmKernelsOptions): Promise<WasmKernels> {
    const { arena, module, threads } = opts;
    const exports = instantiateKernels(module, arena.memory);
    const ctl = arena.alloc(CTL.BYTES, "kernel control block");
    if (ctl < exports.heapBase()) {
      arena.release(ctl);
      throw new Error(`kernels: the arena starts at ${ctl}, below the module's static data (${exports.heapBase()}); use a larger Arena base`);
    }
    new Uint8Array(arena.memory.buffer, ctl, CTL.BYTES).fill(0);
    const pool = await Pool.start({ memory: arena.memory, module, exports, ctl, threads, host: opts.host });
    const k = new WasmKernels(arena, pool);
    (k as { name: string }).name = opts.name;
    return k;
  }

  get threads(): number {
    return this.pool.threads;
  }

  /** softmax(q·kᵀ·scale, masked by position and window) · v for every query head; see types.ts. */
  attention(call: AttentionCall): void {
    const { q, out, T, H, K, D, qPos0, scale, window, kvDtype, segments } = call;
    // The reference's checks (shapes, alignment, every pointer inside memory): a bad pointer must be
    // a RangeError here, not a trap in a worker.
    validateAttentionCall(this.arena, call);
    if (T === 0) return;
    const G = H / K;
    const Dp = (D + 3) & ~3;
    const win = window && window > 0 ? window : 0;
    // Visible rows of each segment for the union of this call's query positions.
    const hiPos = qPos0 + T - 1;
    const loPos = win ? qPos0 - win + 1 : -Infinity;
    const tab = this.segs.need(Math.max(1, segments.length) * SEG.WORDS * 4);
    const u = new Uint32Array(this.arena.memory.buffer, tab, segments.length * SEG.WORDS);
    let nseg = 0;
    let total = 0;
    const eb = elementBytes(kvDtype);
    for (const s of segments) {
      const r0 = Math.max(0, loPos - s.firstPos);
      const r1 = Math.min(s.rows, hiPos - s.firstPos + 1);
      if (r1 <= r0) continue;
      const o = nseg * SEG.WORDS;
      u[o + S.KPTR] = s.kPtr;
      u[o + S.VPTR] = s.vPtr;
      u[o + S.HEAD_STRIDE] = s.headStride;
      u[o + S.ROW_STRIDE] = D * eb; // a head's rows are contiguous in every cache (KvSegment has no row stride)
      u[o + S.FIRST_POS] = s.firstPos | 0;
      u[o + S.R0] = r0;
      u[o + S.R1] = r1;
      u[o + S.KSCALE] = s.kScalePtr ?? 0;
      u[o + S.VSCALE] = s.vScalePtr ?? 0;
      u[o + S.SCALE_HEAD_STRIDE] = s.scaleHeadStride ?? 0;
      u[o + S.CUM] = total;
      nseg++;
      total += r1 - r0;
    }
    const threads = this.pool.threads;
    const BQ = T === 1 ? 1 : Math.min(T, Math.max(1, Math.floor(ROWS_PER_ITEM / G)));
    const NQT = Math.ceil(T / BQ);
    let nsplit = 1;
    if (threads > 1 && K * NQT < 8 * threads) {
      // Up to 8 items per thread for balance, in splits of at least MIN_SPLIT_ROWS; but never fewer
      // items than threads while each split keeps 4 tiles' worth of rows. Without that floor an
      // MQA decode step (K = 1) with 256-511 cached rows ran on one thread: 1.8x slower at 511
      // rows than at 512 (2026-12-07, AMD EPYC, 2 threads, H = 12, D = 64).
      const atLeast = Math.min(Math.ceil(threads / (K * NQT)), Math.floor(total / (4 * SPLIT_ALIGN)));
      nsplit = Math.max(1, atLeast, Math.min(Math.ceil((8 * threads) / (K * NQT)), Math.floor(total / MIN_SPLIT_ROWS)));
    }
    const splitRows = Math.max(1, Math.ceil(Math.ceil(total / nsplit) / SPLIT_ALIGN) * SPLIT_ALIGN);
    nsplit = Math.max(1, Math.ceil(total / splitRows));
    const nrp = (BQ * G + 3) & ~3;
    const few = BQ * G < 3; // MHA / G = 2 decode: one or two query rows per item
    const direct = kvDtype === "f32" && D % 4 === 0; // f32 rows read in place (A.DIRECT)
    const halvesInRegisters = (kvDtype === "f16" || kvDtype === "bf16") && D % 8 === 0; // attnTileHalf, with few rows
    const bk = few && (halvesInRegisters || kvDtype === "f32") ? BK_IN_PLACE : direct ? BK_QUADS_IN_PLACE : ATTN.WIDE_TILE;
    const stride = align64(4 * (3 * nrp * Dp + 6 * nrp + nrp * bk + 2 * Math.min(bk, ATTN.WIDE_TILE) * Dp));
    const scratch = this.scratch.need(stride * threads);
    const nitems = K * NQT * nsplit;
    const part = nsplit > 1 ? this.part.need(nitems * nrp * (Dp + 2) * 4) : 0;
    const a = this.pool.args();
    const f = new Float32Array(a.buffer, a.byteOffset, a.length);
    a[A.Q] = q;
    a[A.OUT] = out;
    a[A.T] = T;
    a[A.H] = H;
    a[A.K] = K;
    a[A.D] = D;
    a[A.QPOS0] = qPos0 | 0;
    f[A.SCALE2] = scale * Math.LOG2E;
    a[A.WINDOW] = win;
    a[A.DTYPE] = DTYPE_CODE[kvDtype];
    a[A.SEGS] = tab;
    a[A.NSEG] = nseg;
    a[A.TOTAL] = total;
    a[A.BQ] = BQ;
    a[A.NQT] = NQT;
    a[A.NSPLIT] = nsplit;
    a[A.SPLIT_ROWS] = splitRows;
    a[A.PART] = part;
    a[A.SCRATCH] = scratch;
    a[A.SCRATCH_STRIDE] = stride;
    a[A.DP] = Dp;
    a[A.BK] = bk;
    a[A.DIRECT] = direct ? 1 : 0;
    a[A.KVFINITE] = call.kvFinite ? 1 : 0;
    f[A.SOFTCAP2] = call.softcap ? call.softcap * Math.LOG2E : 0;
    this.pool.run(KIND.ATTENTION, nitems);
    if (nsplit > 1) this.pool.exports.attnMerge(this.pool.ctl);
  }

  /** out[M, N] (+)= x · w (+ bias[N]) in the call's layout; by default x[M, Kin] · w[N, Kin]ᵀ (see types.ts). */
  matmul(call: MatmulCall): void {
    checkMatmul(call, this.arena.memory.buffer.byteLength);
    this.runMatmul(call, null);
  }

  /**
   * Several decode products of one x as one task: the parts' n blocks are the task's items (parts
   * table: MP_* words), so a step's small projections (an MQA k or v of 64 rows) share one dispatch
   * and one barrier. Each output row is computed by the same kernel code as in matmul: blocks of 4
   * rows inside a part start at the part's row 0 as they would alone, so the results are identical.
   */
  matmulMany(calls: MatmulCall[]): void {
    const memBytes = this.arena.memory.buffer.byteLength;
    for (const c of calls) checkMatmul(c, memBytes);
    const live = calls.filter((c) => c.M > 0 && c.N > 0);
    const first = live[0];
    const fusable = live.length > 1 && first.M < 4 && live.every((c) =>
      (c.layout ?? "nt") === "nt" && c.x === first.x && c.M === first.M && c.Kin === first.Kin && c.wDtype === first.wDtype && !!c.wFinite === !!first.wFinite && !!c.wRows4 === !!first.wRows4);
    if (!fusable) {
      for (const c of live) this.runMatmul(c, null);
      return;
    }
    this.runMatmul({ ...first, N: live.reduce((n, c) => n + c.N, 0) }, live);
  }

  /** One matmul task; with `parts`, call.N is their total and the parts carry w, out, bias and N. */
  private runMatmul(call: MatmulCall, parts: MatmulCall[] | null): void {
    const { x, w, bias, out, M: rows, N, Kin, wDtype } = call;
    if (rows === 0 || N === 0) return;
    const threads = this.pool.threads;
    const layout = call.layout ?? "nt";
    let MB: number, NB: number;
    if (layout !== "nt") {
      // Items of up to 64 × 64 outputs (the w panel of a KC chunk is 32 KiB), smaller when that
      // would leave a thread idle: at least 4 items per thread where the shape allows.
      MB = MATMUL_KN_B;
      NB = MATMUL_KN_B;
      while (Math.ceil(rows / MB) * Math.ceil(N / NB) < 4 * threads && (MB > 8 || NB > 8)) {
        if (MB >= NB && MB > 8) MB /= 2;
        else NB /= 2;
      }
    } else if (rows < 4) {
      MB = rows;
      NB = Math.max(4, Math.ceil(N / (DECODE_ITEMS_PER_THREAD * threads) / 4) * 4);
    } else {
      // An item is NB w rows against up to MATMUL_MB rows of x, so each w block is read from
      // memory (and widened, for f16/bf16) once per MATMUL_MB rows instead of once per 64: the
      // weights of a layer do not fit in L2, the x rows of a prefill chunk do. Smaller row blocks
      // only when that would leave a thread without items.
      MB = Math.min(rows, MATMUL_MB);
      NB = MATMUL_NB;
      while (Math.ceil(rows / MB) * Math.ceil(N / NB) < 4 * threads && MB > 64) MB = Math.ceil(MB / 2);
    }
    const NNB = Math.ceil(N / NB);
    let nitems = Math.ceil(rows / MB) * NNB;
    let partsPtr = 0;
    if (parts) {
      // Decode only (rows < 4: one m block). Items count per part, so no block straddles two parts.
      partsPtr = this.mmParts.need(parts.length * MP.WORDS * 4);
      const u = new Uint32Array(this.arena.memory.buffer, partsPtr, parts.length * MP.WORDS);
      nitems = 0;
      parts.forEach((p, i) => {
        const o = i * MP.WORDS;
        u[o + MP.W] = p.w;
        u[o + MP.OUT] = p.out;
        u[o + MP.BIAS] = p.bias;
        u[o + MP.N] = p.N;
        u[o + MP.FIRST] = nitems;
        nitems += Math.ceil(p.N / NB);
      });
    }
    // Scratch per thread (0: none): nn/tn pack w as [NB/8][KC][8] and x as [MB/4][KC][4]
    // (assembly/matmulkn.ts); nt with M >= 4 widens NB f16/bf16 w rows; an f16 matvec keeps the
    // scaled x of each of its M rows (matvec.ts prepX, matvecF16Item), a bf16 one x in even/odd order.
    let stride = 0;
    if (layout !== "nt") stride = align64(MATMUL_KN_KC * (NB + MB) * 4);
    else if (rows >= 4 && wDtype !== "f32") stride = align64(NB * (((Kin + 3) & ~3) + (call.wRows4 ? SCRATCH.ROWS4_PAD : 0)) * 4); // widened w rows (rows4: padded, assembly/matmul.ts)
    else if (rows < 4 && wDtype === "f16") stride = align64(rows * ((Kin + 7) & ~7) * 4);
    else if (rows < 4 && wDtype === "bf16") stride = align64(((Kin + 7) & ~7) * 4); // one even/odd x row (matvec.ts matvecBF16Item)
    else if (rows < 4 && WEIGHT_CODE[wDtype] >= WEIGHT_CODE.q4_0) stride = align64(Kin * 4); // one dequantized w row (assembly/quants.ts matvecQuant)
    const scratch = stride ? this.scratch.need(stride * threads) : 0;
    const a = this.pool.args();
    a[M.X] = x;
    a[M.W] = w;
    a[M.BIAS] = bias;
    a[M.OUT] = out;
    a[M.M] = rows;
    a[M.N] = N;
    a[M.KIN] = Kin;
    a[M.DTYPE] = WEIGHT_CODE[wDtype];
    a[M.MB] = MB;
    a[M.NB] = NB;
    a[M.NNB] = NNB;
    a[M.SCRATCH] = scratch;
    a[M.SCRATCH_STRIDE] = stride;
    a[M.LAYOUT] = LAYOUT_CODE[layout];
    a[M.ACC] = call.accumulate ? 1 : 0;
    a[M.WFINITE] = call.wFinite ? 1 : 0;
    a[M.WROWS4] = call.wRows4 ? 1 : 0;
    a[M.NPARTS] = parts ? parts.length : 0;
    a[M.PARTS] = partsPtr;
    this.pool.run(KIND.MATMUL, nitems);
  }

  /** x = act(x) (· y), in place, in items of ACTIVATION_CHUNK values (see ActivationCall). */
  activation(call: ActivationCall): void {
    validateActivationCall(this.arena, call);
    if (call.n === 0) return;
    const a = this.pool.args();
    a[E.X] = call.x;
    a[E.Y] = call.y;
    a[E.N] = call.n;
    a[E.OP] = ACTIVATION_CODE[call.op];
    a[E.CHUNK] = ACTIVATION_CHUNK;
    this.pool.run(KIND.ACTIVATION, Math.ceil(call.n / ACTIVATION_CHUNK));
  }

  /** One training op over ceil(n / chunk) items on all threads (see TrainOpCall); returns the item count. */
  trainOp(call: TrainOpCall): number {
    const { n, chunk, ptrs, scalars = [], ints = [] } = call;
    const code = TRAIN_CODE[call.op];
    if (code === undefined) throw new RangeError(`trainOp: unknown op "${call.op}"`);
    if (!(Number.isInteger(n) && n >= 0 && Number.isInteger(chunk) && chunk > 0)) throw new RangeError(`trainOp ${call.op}: bad n ${n} or chunk ${chunk}`);
    if (ptrs.length > 12 || scalars.length > 8 || ints.length > 8) throw new RangeError(`trainOp ${call.op}: at most 12 pointers, 8 scalars and 8 integers`);
    const mem = this.arena.memory.buffer.byteLength;
    for (const p of ptrs) if (!(Number.isInteger(p) && p > 0 && p < mem)) throw new RangeError(`trainOp ${call.op}: pointer ${p} is outside memory (${mem} bytes)`);
    if (n === 0) return 0;
    const a = this.pool.args();
    a[TR.OP] = code;
    a[TR.N] = n;
    a[TR.C] = call.c ?? 0;
    a[TR.CHUNK] = chunk;
    ptrs.forEach((p, i) => (a[TR.P0 + i] = p));
    const f = new Float32Array(a.buffer, a.byteOffset, 64);
    scalars.forEach((s, i) => (f[TR.F0 + i] = s));
    ints.forEach((v, i) => (a[TR.I0 + i] = v));
    const items = Math.ceil(n / chunk);
    this.pool.run(KIND.TRAIN, items);
    return items;
  }

  /** One of the decoder's row steps on all threads, in items of rows (see RowOpCall); true when "narrow" stored an inf/NaN half. */
  rowOp(call: RowOpCall): boolean {
    const mem = this.arena.memory.buffer.byteLength;
    const span = (name: string, ptr: number, bytes: number, align: number) => {
      if (!(Number.isInteger(ptr) && ptr > 0 && ptr % align === 0 && ptr + bytes <= mem)) {
        throw new RangeError(`rowOp ${call.op}: ${name} = ${ptr} (+ ${bytes} bytes, ${align}-byte aligned) is outside memory (${mem} bytes)`);
      }
    };
    const a = this.pool.args();
    const rows = call.rows;
    if (!(Number.isInteger(rows) && rows >= 0)) throw new RangeError(`rowOp ${call.op}: rows must be a non-negative integer, got ${rows}`);
    if (rows === 0) return false;
    let width: number, chunk: number, n = rows;
    if (call.op === "rope") {
      const { heads, headDim: D } = call;
      width = heads * D;
      if (!(Number.isInteger(heads) && heads > 0 && Number.isInteger(D) && D > 0 && D % 2 === 0)) throw new RangeError(`rowOp rope: bad heads ${heads} or headDim ${D} (even)`);
      span("x", call.x, rows * width * 4, 4);
      span("pos", call.pos, rows * 4, 4);
      span("cos", call.cos, D * 2, 4); // rows of the tables are checked by the caller's ensure()
      span("sin", call.sin, D * 2, 4);
      a[TR.OP] = ROW_OP.ROPE;
      [call.x, call.cos, call.sin, call.pos].forEach((p, i) => (a[TR.P0 + i] = p));
      a[TR.I0] = heads;
      a[TR.I0 + 1] = D;
      chunk = Math.max(1, Math.ceil(16384 / width));
    } else if (call.op === "narrow") {
      const { heads, width: C } = call;
      width = C;
      n = heads * rows;
      for (const [name, v] of [["heads", heads], ["width", C], ["srcRowBytes", call.srcRowBytes], ["srcHeadBytes", call.srcHeadBytes], ["dstHeadBytes", call.dstHeadBytes], ["dstRowBytes", call.dstRowBytes]] as const) {
        if (!(Number.isInteger(v) && v >= 0)) throw new RangeError(`rowOp narrow: ${name} must be a non-negative integer, got ${v}`);
      }
      const src = (rows - 1) * call.srcRowBytes + (heads - 1) * call.srcHeadBytes + C * 4, dst = (heads - 1) * call.dstHeadBytes + (rows - 1) * call.dstRowBytes + C * 2;
      span("kSrc", call.kSrc, src, 4);
      span("vSrc", call.vSrc, src, 4);
      span("kDst", call.kDst, dst, 2);
      span("vDst", call.vDst, dst, 2);
      a[TR.OP] = ROW_OP.NARROW;
      [call.kSrc, call.kDst, call.vSrc, call.vDst].forEach((p, i) => (a[TR.P0 + i] = p));
      [rows, call.srcRowBytes, call.srcHeadBytes, call.dstHeadBytes, call.dstRowBytes, call.dtype === "bf16" ? 2 : 1].forEach((v, i) => (a[TR.I0 + i] = v));
      chunk = Math.max(1, Math.ceil(8192 / C));
    } else {
      width = call.width;
      if (!(Number.isInteger(width) && width > 0)) throw new RangeError(`rowOp ${call.op}: width must be a positive integer, got ${width}`);
      const bytes = rows * width * 4;
      span("x", call.x, bytes, 4);
      span("out", call.out, bytes, 4);
      span("w", call.w, width * 4, 4);
      if (call.residual) span("residual", call.residual, bytes, 4);
      if (call.op === "layerNorm") span("b", call.b ?? 0, width * 4, 4);
      a[TR.OP] = call.op === "rmsNorm" ? ROW_OP.RMS : ROW_OP.LAYER;
      [call.out, call.x, call.w, call.residual ?? 0, call.b ?? 0].forEach((p, i) => (a[TR.P0 + i] = p));
      a[TR.I0] = call.plusOne ? 1 : 0;
      new Float64Array(a.buffer, a.byteOffset + TR.F0 * 4, 1)[0] = call.eps;
      chunk = Math.max(1, Math.ceil(8192 / width));
    }
    a[TR.N] = n;
    a[TR.C] = width;
    a[TR.CHUNK] = chunk;
    const result = new Int32Array(this.arena.memory.buffer, this.pool.ctl + CTL.RESULT, 1);
    result[0] = 0;
    this.pool.run(KIND.ROWS, Math.ceil(n / chunk)); // allocates nothing: the view stays valid
    return result[0] !== 0;
  }

  /** Benchmark probe: reads [ptr, ptr + bytes) once with SIMD loads on all threads. */
  streamRead(ptr: number, bytes: number, chunkBytes = 1 << 20): void {
    const a = this.pool.args();
    a[P.PTR] = ptr;
    a[P.BYTES] = bytes;
    a[P.CHUNK] = chunkBytes;
    this.pool.run(KIND.STREAM, Math.ceil(bytes / chunkBytes));
  }

  /** Benchmark probe: `items` work items of `iters` × 12 f32x4 multiply-adds (8 flops each) in registers. */
  simdPeak(iters: number, items: number): void {
    const a = this.pool.args();
    a[P.ITERS] = iters;
    this.pool.run(KIND.PEAK, items);
  }

  /** Stops the workers and returns the kernel's arena buffers. */
  close(): void {
    this.pool.close();
    this.segs.free();
    this.mmParts.free();
    this.scratch.free();
    this.part.free();
  }
}

const WEIGHT_CODE: Record<WeightDtype, number> = { f32: 0, f16: 1, bf16: 2, q8_0: 4, q4_0: 5, q4_1: 6, q5_0: 7, q5_1: 8, q4_k: 9, q5_k: 10, q6_k: 11 }; // assembly/simd.ts, quants.ts DT_*
const LAYOUT_CODE: Record<MatmulLayout, number> = { nt: LAYOUT.NT, nn: LAYOUT.NN, tn: LAYOUT.TN };

function align64(n: number): number {
  return Math.ceil(n / 64) * 64;
}

function checkMatmul(c: MatmulCall, memBytes: number): void {
  const { M, N, Kin } = c;
  if (![M, N].every((n) => Number.isInteger(n) && n >= 0) || !(Number.isInteger(Kin) && Kin > 0)) {
    throw new RangeError(`matmul: bad shape M=${M} N=${N} Kin=${Kin} (M, N >= 0, Kin >= 1)`);
  }
  if (!(c.wDtype in WEIGHT_CODE)) throw new RangeError(`matmul: unknown wDtype "${c.wDtype}"`);
  validateMatmulLayout(c);
  const spans: [string, number, number][] = [["x", c.x, M * Kin * 4], ["w", c.w, N * rowBytes(c.wDtype, Kin)], ["out", c.out, M * N * 4]];
  if (c.bias !== 0) spans.push(["bias", c.bias, N * 4]);
  for (const [name, ptr, bytes] of spans) {
    if (!Number.isInteger(ptr) || ptr < 0 || ptr + bytes > memBytes) {
      throw new RangeError(`matmul: ${name} = ${ptr} + ${bytes} bytes is outside memory (${memBytes} bytes)`);
    }
  }
}
