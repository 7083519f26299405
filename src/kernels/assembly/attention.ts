// Attention over a KV cache, one work item at a time (AssemblyScript, f32x4).
//
// Legend: T query positions, H query heads, K kv heads, G = H/K, D head dim (Dp = D rounded up to 4),
// BQ query positions per item, BK keys per tile, NR = BQ*G query rows per item.
//
// An item is (kv head k, query tile qt, key split s). Its query rows are the G heads of group k at
// BQ positions, row r = tl*G + g, so every K and V row of head k is read ONCE per tile and applied
// to all G heads (the group-shared loop; MHA is G = 1, MQA is G = H). Keys stream in tiles of BK
// rows with an online softmax (flash attention): scratch never grows with T. With several splits
// (split-KV / flash-decoding) each item leaves (m, l, O) and attnMerge combines them by log-sum-exp.
// Scores are kept in base 2: q is pre-multiplied by scale*log2(e), so weights are exp2(s - m).
// Soft-capping (Gemma-2: c·tanh(s/c)) commutes with the change of base: with C = c·log2(e), the base-2
// score s2 = s·log2(e) becomes C·tanh(s2/C), applied to every score of a tile before the mask.
import { DT_F32, DT_F16, DT_BF16, POW2_112, POW2_M112, exp2v, exp2s, hmax, hsum, widenRow, widenBF16x2, elemBytes } from "./simd";
import { pvTile, pvRow, qkQuad, pvQuad } from "./tiles";
import { X_FAST_MAX, absMax, prepX, seqDot, seqRows2 } from "./matvec";
import { qkSeqF16, qkSeqF16Finite, qkSeqBF16, pvRowF16, pvRowF16Finite, pvRowBF16, toEvenOdd, fromEvenOdd, scaleRow, widenEvenOddF16 } from "./halves";
import * as L from "./layout";

// @ts-ignore: decorator
@inline function arg(ctl: usize, i: i32): u32 {
  return load<u32>(ctl + L.CTL_ARGS + (<usize>i << 2));
}
// @ts-ignore: decorator
@inline function seg(tab: usize, s: i32, w: i32): u32 {
  return load<u32>(tab + (<usize>s * L.SEG_WORDS + <usize>w) * 4);
}
// @ts-ignore: decorator
@inline function al4(n: i32): i32 {
  return (n + 3) & ~3;
}

// Scratch layout of one thread (byte addresses), mirrored by attentionScratchBytes in wasm.ts.
// Module globals are per instance, so each thread has its own; nothing is ever allocated.
let sQp: usize = 0; // f32 [NRp, Dp] scaled queries
let sO: usize = 0; // f32 [NRp, Dp] running outputs
let sM: usize = 0; // f32 [NRp] running max (base 2)
let sL: usize = 0; // f32 [NRp] running sum
let sAl: usize = 0; // f32 [NRp] rescale of this tile
let sLo: usize = 0; // i32 [NRp] first visible key position
let sHi: usize = 0; // i32 [NRp] last visible key position
let sVis: usize = 0; // i32 [NRp] 1 once the row has seen a visible key
let sS: usize = 0; // f32 [NRp, BK] scores, then weights
let sKt: usize = 0; // f32 [BK, Dp] widened K tile
let sVt: usize = 0; // f32 [BK, Dp] widened V tile
let sQx: usize = 0; // f32 [NRp, Dp] prepX(queries) for the in-register f16/bf16 path
// The item runs on the in-register f16/bf16 path (attnTileHalf): O rows are then in even/odd order.
let fusedHalf = false;
// The item's f16 tiles are widened in even/odd order, times 2^-112 (widenEvenOddF16; row quads,
// kvFinite, D % 8 == 0, |q| < X_FAST_MAX): queries (times 2^112) and O rows are in even/odd order
// too, and each tile's weights are scaled by 2^112 before p·v, so every product is the exact one.
let eoHalf = false;
let kvFinite = false; // the caller promised no inf/NaN half (A_KVFINITE): the in-register f16 path skips its checks

function scratchAt(base: usize, nrp: i32, dp: i32, bk: i32): void {
  const rowBytes = <usize>dp << 2;
  const bkw = min(bk, L.ATTN_WIDE_TILE);
  sQp = base;
  sO = sQp + <usize>nrp * rowBytes;
  sM = sO + <usize>nrp * rowBytes;
  sL = sM + (<usize>nrp << 2);
  sAl = sL + (<usize>nrp << 2);
  sLo = sAl + (<usize>nrp << 2);
  sHi = sLo + (<usize>nrp << 2);
  sVis = sHi + (<usize>nrp << 2);
  sS = sVis + (<usize>nrp << 2);
  sKt = sS + (<usize>nrp * <usize>bk << 2);
  sVt = sKt + <usize>bkw * rowBytes;
  sQx = sVt + <usize>bkw * rowBytes;
}

/** Processes work item `item` of the attention task described in the control block. */
export function attnItem(ctl: usize, item: i32, tid: i32): void {
  const T = <i32>arg(ctl, L.A_T), H = <i32>arg(ctl, L.A_H), K = <i32>arg(ctl, L.A_K), D = <i32>arg(ctl, L.A_D);
  const G = H / K;
  const BQ = <i32>arg(ctl, L.A_BQ), NQT = <i32>arg(ctl, L.A_NQT), NSPLIT = <i32>arg(ctl, L.A_NSPLIT);
  const Dp = <i32>arg(ctl, L.A_DP), BK = <i32>arg(ctl, L.A_BK);
  const window = <i32>arg(ctl, L.A_WINDOW);
  const qPos0 = <i32>arg(ctl, L.A_QPOS0);
  const split = item % NSPLIT;
  const rest = item / NSPLIT;
  const k = rest % K;
  const qt = NQT - 1 - rest / K; // last (most keys) first: better dynamic balance in prefill
  const t0 = qt * BQ;
  const tq = min(BQ, T - t0);
  const nr = tq * G;
  const nrp = al4(BQ * G);
  scratchAt(<usize>arg(ctl, L.A_SCRATCH) + <usize>tid * <usize>arg(ctl, L.A_SCRATCH_STRIDE), nrp, Dp, BK);
  packQueries(ctl, k, t0, tq, G, H, D, Dp, qPos0, window);
  const dt = <i32>arg(ctl, L.A_DTYPE);
  fusedHalf = (dt == DT_F16 || dt == DT_BF16) && prepHalf(dt == DT_F16, nr, D, Dp);
  kvFinite = arg(ctl, L.A_KVFINITE) != 0;
  eoHalf = !fusedHalf && dt == DT_F16 && kvFinite && prepQuadsEvenOddF16(nr, D, Dp);

  // Visible key positions of the whole tile; per-row limits are applied in the softmax step.
  const loAll = load<i32>(sLo), hiAll = load<i32>(sHi + (<usize>(nr - 1) << 2));
  const total = <i32>arg(ctl, L.A_TOTAL);
  const splitRows = <i32>arg(ctl, L.A_SPLIT_ROWS);
  const j0 = split * splitRows, j1 = min(total, j0 + splitRows);
  const tab = <usize>arg(ctl, L.A_SEGS);
  const nseg = <i32>arg(ctl, L.A_NSEG);
  // Tiles read in place (in-register halves, f32 direct) take BK keys; tiles widened into sKt/sVt
  // at most ATTN_WIDE_TILE.
  const inPlace = fusedHalf || arg(ctl, L.A_DIRECT) != 0;
  const step = inPlace ? BK : min(BK, L.ATTN_WIDE_TILE);
  for (let s = 0; s < nseg; s++) {
    const cum = <i32>seg(tab, s, L.S_CUM);
    const r0 = <i32>seg(tab, s, L.S_R0), r1 = <i32>seg(tab, s, L.S_R1);
    if (cum + (r1 - r0) <= j0) continue;
    if (cum >= j1) break;
    const fp = <i32>seg(tab, s, L.S_FIRST_POS);
    let ra = r0 + max(0, j0 - cum);
    let rb = r0 + min(r1 - r0, j1 - cum);
    if (window > 0) ra = max(ra, loAll - fp);
    rb = min(rb, hiAll - fp + 1);
    for (let rt = ra; rt < rb; rt += step) attnTile(ctl, tab, s, k, rt, min(step, rb - rt), nr, fp + rt, Dp, BK, D);
  }
  if (fusedHalf || eoHalf) for (let r = 0; r < nr; r++) fromEvenOdd(sO + <usize>r * (<usize>Dp << 2), Dp);
  if (NSPLIT == 1) writeOutput(<usize>arg(ctl, L.A_OUT), k, t0, nr, G, H, D, Dp);
  else writePartial(<usize>arg(ctl, L.A_PART), item, nr, nrp, Dp);
}

// Items with at least this many query rows run as row quads, padded to a multiple of 4 with zero
// rows. 3 rows (e.g. a decode step of 12 heads over 4 kv heads) pay for one padding row, which
// costs less than running the three rows one at a time through dotTile's single-row path.
const QUAD_MIN_ROWS = 3;

/**
 * Copies the item's query rows into scratch, times scale*log2(e), zero-padded to Dp. With
 * QUAD_MIN_ROWS rows or more they go in row quads ([Dp/4][4 rows][4], see tiles.ts) and the rows up to the next multiple
 * of 4 are zero (they see every key, get score 0, and are never written out); else plain [nr][Dp].
 */
function packQueries(ctl: usize, k: i32, t0: i32, tq: i32, G: i32, H: i32, D: i32, Dp: i32, qPos0: i32, window: i32): void {
  const nr = tq * G;
  const quad = nr >= QUAD_MIN_ROWS;
  const nrq = quad ? al4(nr) : nr;
  const q = <usize>arg(ctl, L.A_Q);
  const scale = reinterpret<f32>(arg(ctl, L.A_SCALE2));
  const sv = f32x4.splat(scale);
  const D4 = D & ~3;
  const rowBytes = <usize>Dp << 2;
  for (let tl = 0; tl < tq; tl++) {
    const pos = qPos0 + t0 + tl;
    for (let g = 0; g < G; g++) {
      const r = tl * G + g;
      const src = q + (<usize>((t0 + tl) * H + k * G + g) * <usize>D << 2);
      // chunk c of row r: plain at r*rowBytes + 16c; quad at (r>>2)*4*rowBytes + 64c + 16(r&3)
      const dst = quad ? sQp + <usize>(r >> 2) * (rowBytes << 2) + (<usize>(r & 3) << 4) : sQp + <usize>r * rowBytes;
      const step: usize = quad ? 64 : 16;
      let d = 0;
      let at = dst;
      for (; d < D4; d += 4, at += step) v128.store(at, f32x4.mul(v128.load(src + (<usize>d << 2)), sv));
      if (d < Dp) {
        let tail = f32x4.splat(0);
        if (d < D) tail = f32x4.replace_lane(tail, 0, load<f32>(src + (<usize>d << 2)) * scale);
        if (d + 1 < D) tail = f32x4.replace_lane(tail, 1, load<f32>(src + (<usize>d << 2), 4) * scale);
        if (d + 2 < D) tail = f32x4.replace_lane(tail, 2, load<f32>(src + (<usize>d << 2), 8) * scale);
        v128.store(at, tail);
      }
      initRow(r, Dp, window > 0 ? pos - window + 1 : i32.MIN_VALUE, pos);
    }
  }
  // Padding rows of the last quad: zero queries that see everything (never written out).
  for (let r = nr; r < nrq; r++) {
    const dst = sQp + <usize>(r >> 2) * (rowBytes << 2) + (<usize>(r & 3) << 4);
    for (let c: usize = 0; c < (<usize>Dp >> 2); c++) v128.store(dst + (c << 6), f32x4.splat(0));
    initRow(r, Dp, i32.MIN_VALUE, i32.MAX_VALUE);
  }
}

function initRow(r: i32, Dp: i32, lo: i32, hi: i32): void {
  const o = sO + (<usize>r * <usize>Dp << 2);
  for (let c = 0; c < Dp; c += 4) v128.store(o + (<usize>c << 2), f32x4.splat(0));
  const ri = <usize>r << 2;
  store<f32>(sM + ri, -Infinity);
  store<f32>(sL + ri, 0);
  store<i32>(sLo + ri, lo);
  store<i32>(sHi + ri, hi);
  store<i32>(sVis + ri, 0);
}

/**
 * Whether the item's nr query rows (plain layout) can take the in-register f16/bf16 path: few rows
 * (the tile would be widened for too few of them to pay), D % 8 == 0 and, for f16, |q| < X_FAST_MAX;
 * if so, writes prepX of each row (f16: times 2^112) to sQx. O rows start as zeros, the same in either order.
 */
function prepHalf(f16: bool, nr: i32, D: i32, Dp: i32): bool {
  if (nr >= QUAD_MIN_ROWS || (D & 7) != 0 || D != Dp) return false;
  const rowBytes = <usize>Dp << 2;
  if (f16) for (let r = 0; r < nr; r++) if (!(absMax(sQp + <usize>r * rowBytes, D) < X_FAST_MAX)) return false;
  for (let r = 0; r < nr; r++) prepX(sQp + <usize>r * rowBytes, D, sQx + <usize>r * rowBytes, f16 ? POW2_112 : 1);
  return true;
}

/**
 * Whether the item's row quads can take even/odd widened f16 tiles (eoHalf): quads, D % 8 == 0 and
 * |q| < X_FAST_MAX (so q·2^112 stays finite); if so, puts each query row of sQp in even/odd order,
 * times 2^112, so that q·2^112 times k·2^-112 is the exact product q·k.
 */
function prepQuadsEvenOddF16(nr: i32, D: i32, Dp: i32): bool {
  if (nr < QUAD_MIN_ROWS || (D & 7) != 0 || D != Dp) return false;
  const quadBytes = <usize>Dp << 4, nq = (nr + 3) >> 2;
  if (!(absMax(sQp, nq * (Dp << 2)) < X_FAST_MAX)) return false;
  const sc = f32x4.splat(POW2_112);
  // Quad layout: chunk c (d = 4c..4c+3) of row i at 64c + 16i; an 8-value block m is chunks 2m, 2m+1.
  for (let qd = 0; qd < nq; qd++) {
    const base = sQp + <usize>qd * quadBytes;
    for (let m: usize = 0; m < (<usize>Dp >> 3); m++) {
      const c0 = base + (m << 7);
      for (let i: usize = 0; i < 4; i++) {
        const a = v128.load(c0 + (i << 4)), b = v128.load(c0 + (i << 4), 64);
        v128.store(c0 + (i << 4), f32x4.mul(v128.shuffle<f32>(a, b, 0, 2, 4, 6), sc));
        v128.store(c0 + (i << 4), f32x4.mul(v128.shuffle<f32>(a, b, 1, 3, 5, 7), sc), 64);
      }
    }
  }
  return true;
}

/**
 * attnTile for f16/bf16 K and V read in place, widened in registers, for nr = 1 or 2 query rows:
 * q·k by qkSeqF16/BF16, p·v by pvRowF16/BF16 (one pass over K and V for both rows), O in even/odd
 * order. bf16 widening is exact for every value. f16 weights are scaled by 2^112 (see pvRowF16), and
 * a V tile holding an inf/NaN half is redone on the exact h2f path from a copy of O taken before it
 * (sKt is free here).
 */
function attnTileHalf(f16: bool, kp: usize, vp: usize, rowStride: usize, nk: i32, nr: i32, p0: i32, Dp: i32, BK: i32, D: i32, cap: f32): void {
  const rowBytes = <usize>Dp << 2, sRow = <usize>BK << 2;
  if (!f16) {
    qkSeqBF16(sQp, sQx, rowBytes, nr, kp, rowStride, nk, D, sS, sRow, sKt);
    softmaxTile(nr, nk, p0, sRow, cap);
    pvRowBF16(sS, sRow, nr, vp, rowStride, nk, Dp, sO, rowBytes, sAl);
    return;
  }
  if (kvFinite) qkSeqF16Finite(sQp, sQx, rowBytes, nr, kp, rowStride, nk, D, sS, sRow, sKt);
  else qkSeqF16(sQp, sQx, rowBytes, nr, kp, rowStride, nk, D, sS, sRow, sKt);
  softmaxTile(nr, nk, p0, sRow, cap);
  for (let r = 0; r < nr; r++) scaleRow(sS + <usize>r * sRow, nk, POW2_112);
  if (kvFinite) {
    pvRowF16Finite(sS, sRow, nr, vp, rowStride, nk, Dp, sO, rowBytes, sAl);
    return;
  }
  memory.copy(sKt, sO, <usize>nr * rowBytes);
  if (!pvRowF16(sS, sRow, nr, vp, rowStride, nk, Dp, sO, rowBytes, sAl)) return;
  memory.copy(sO, sKt, <usize>nr * rowBytes);
  for (let r = 0; r < nr; r++) {
    scaleRow(sS + <usize>r * sRow, nk, POW2_M112); // back to the weights, exactly
    fromEvenOdd(sO + <usize>r * rowBytes, Dp);
  }
  // sVt holds ATTN_WIDE_TILE widened rows: the tile in chunks, alpha on the first (o·1 is exact after).
  for (let j0 = 0; j0 < nk; j0 += L.ATTN_WIDE_TILE) {
    const n = min(L.ATTN_WIDE_TILE, nk - j0);
    for (let j = 0; j < n; j++) widenRow(DT_F16, vp + <usize>(j0 + j) * rowStride, D, Dp, sVt + <usize>j * rowBytes, 1);
    for (let r = 0; r < nr; r++) {
      const alpha: f32 = j0 == 0 ? load<f32>(sAl + (<usize>r << 2)) : 1;
      pvRow(sS + <usize>r * sRow + (<usize>j0 << 2), sVt, rowBytes, n, Dp, sO + <usize>r * rowBytes, alpha);
    }
  }
  for (let r = 0; r < nr; r++) toEvenOdd(sO + <usize>r * rowBytes, Dp);
}

/** One tile of nk keys (rows rt.. of segment s, first position p0) against the item's nr query rows. */
function attnTile(ctl: usize, tab: usize, s: i32, k: i32, rt: i32, nk: i32, nr: i32, p0: i32, Dp: i32, BK: i32, D: i32): void {
  const dt = <i32>arg(ctl, L.A_DTYPE);
  const rowStride = <usize>seg(tab, s, L.S_ROW_STRIDE);
  const headOff = <usize>k * <usize>seg(tab, s, L.S_HEAD_STRIDE) + <usize>rt * rowStride;
  let kp = <usize>seg(tab, s, L.S_KPTR) + headOff;
  let vp = <usize>seg(tab, s, L.S_VPTR) + headOff;
  let ks = rowStride, vs = rowStride;
  const cap = reinterpret<f32>(arg(ctl, L.A_SOFTCAP2));
  if (fusedHalf) {
    attnTileHalf(<i32>arg(ctl, L.A_DTYPE) == DT_F16, kp, vp, rowStride, nk, nr, p0, Dp, BK, D, cap);
    return;
  }
  const direct = arg(ctl, L.A_DIRECT) != 0;
  if (!direct) {
    // Widen the tile once to f32 (zero-padded to Dp); all NR query rows then reuse it. (Widening
    // inside the dot and p·v loops instead measured 20 % slower for MHA f16: more live registers.)
    const kScale = <usize>seg(tab, s, L.S_KSCALE), vScale = <usize>seg(tab, s, L.S_VSCALE);
    const scOff = (<usize>k * <usize>seg(tab, s, L.S_SCALE_HEAD_STRIDE) + <usize>rt) << 2;
    const dst = <usize>Dp << 2;
    if (eoHalf) {
      if (rowStride == <usize>D << 1) {
        widenEvenOddF16(kp, vp, nk * D, sKt, sVt);
      } else {
        for (let j = 0; j < nk; j++) widenEvenOddF16(kp + <usize>j * rowStride, vp + <usize>j * rowStride, D, sKt + <usize>j * dst, sVt + <usize>j * dst);
      }
    } else if (!kScale && D == Dp && rowStride == <usize>D * elemBytes(dt)) {
      // Packed rows without per-row scales (f16/bf16, D % 4 == 0): the tile is one run of nk·D values.
      if (dt == DT_BF16) widenBF16x2(kp, vp, nk * D, sKt, sVt);
      else {
        widenRow(dt, kp, nk * D, nk * D, sKt, 1, kvFinite);
        widenRow(dt, vp, nk * D, nk * D, sVt, 1, kvFinite);
      }
    } else {
      for (let j = 0; j < nk; j++) {
        const ksc: f32 = kScale ? load<f32>(kScale + scOff + (<usize>j << 2)) : 1;
        const vsc: f32 = vScale ? load<f32>(vScale + scOff + (<usize>j << 2)) : 1;
        widenRow(dt, kp + <usize>j * rowStride, D, Dp, sKt + <usize>j * dst, ksc, kvFinite);
        widenRow(dt, vp + <usize>j * rowStride, D, Dp, sVt + <usize>j * dst, vsc, kvFinite);
      }
    }
    kp = sKt;
    vp = sVt;
    ks = dst;
    vs = dst;
  }
  const rowBytes = <usize>Dp << 2;
  if (nr >= QUAD_MIN_ROWS) {
    // Row quads: K and V rows of the tile are applied to 4 query rows per load.
    const nq = (nr + 3) >> 2;
    if (direct) {
      // f32 tiles read in place: one pass over both tiles' lines in address order first, so the
      // strided column walks of qkQuad/pvQuad hit L1/L2 instead of DRAM. GQA decode, f32, H = 32,
      // T = 16k, 2 threads, AMD EPYC Zen 5: 1.39x (K = 8), 1.26x (K = 4); MQA 0.99-1.01x (session 7).
      touchRows2(kp, vp, ks, nk, <usize>D << 2);
    }
    for (let qd = 0; qd < nq; qd++) {
      const s4 = sS + <usize>qd * (<usize>BK << 4);
      const smax = qkQuad(sQp + <usize>qd * (rowBytes << 2), kp, ks, nk, Dp, s4);
      softmaxQuad(qd, s4, nk, p0, cap, smax);
      if (eoHalf) scaleRow(s4, nk << 2, POW2_112); // weights times 2^112 against v·2^-112
      pvQuad(s4, vp, vs, nk, Dp, sO + <usize>qd * (rowBytes << 2), rowBytes, sAl + (<usize>qd << 4));
    }
    return;
  }
  const sRow = <usize>BK << 2;
  // One or two query rows (MHA, G = 2; nr < QUAD_MIN_ROWS): each K row is read whole before the
  // next (seqDot, seqRows2), one sequential stream, like pvRow's V. dotTile's 4 rows in flight walk
  // a 512-byte-row tile in strided 16-byte steps: MHA decode Q·K alone, f32, D = 128, 1 thread: 1.54x (session 7).
  if (nr == 2) seqRows2(sQp, sQp + rowBytes, sS, sS + sRow, kp, ks, 0, nk, Dp);
  else for (let j = 0; j < nk; j++) store<f32>(sS + (<usize>j << 2), seqDot(sQp, kp + <usize>j * ks, Dp));
  softmaxTile(nr, nk, p0, sRow, cap);
  pvTile(sS, sRow, nr, vp, vs, nk, Dp, sO, rowBytes, sAl);
}

/**
 * Reads one 16-byte value per 64-byte line of nk rows of two tiles with the same row stride (K and
 * V), in address order, both streams at once (into a scratch sink). Against one tile after the
 * other: f32 GQA/MQA decode, 2 threads, Zen 4, 1.00-1.07x (session 11).
 */
function touchRows2(p: usize, q: usize, stride: usize, nk: i32, bytes: usize): void {
  let x = i32x4.splat(0);
  for (let j = 0; j < nk; j++) {
    const r = <usize>j * stride;
    for (let b: usize = 0; b < bytes; b += 64) x = v128.xor(x, v128.xor(v128.load(p + r + b), v128.load(q + r + b)));
  }
  v128.store(sKt, x);
}

/** n base-2 scores at p become cap · tanh(s / cap) (cap = softcap·log2(e)); scalar: only soft-capped models pay. */
function softcapRun(p: usize, n: i32, cap: f32): void {
  const inv: f32 = 1 / cap;
  for (let j = 0; j < n; j++) {
    const at = p + (<usize>j << 2);
    store<f32>(at, cap * Mathf.tanh(load<f32>(at) * inv));
  }
}

/**
 * softmaxTile for one row quad: the 4 rows' scores of a key are one vector, masked by lane. smax:
 * the lane-wise max of the tile's raw scores (qkQuad's), used when no mask or soft-cap applies.
 */
function softmaxQuad(qd: i32, s4: usize, nk: i32, p0: i32, cap: f32, smax: v128): void {
  const qi = <usize>qd << 4;
  if (cap > 0) softcapRun(s4, nk << 2, cap);
  const lo = v128.load(sLo + qi), hi = v128.load(sHi + qi);
  const pLast = p0 + nk - 1;
  const sEnd = s4 + (<usize>nk << 4);
  let mv = f32x4.splat(-Infinity);
  let vis = v128.load(sVis + qi);
  const partial = v128.any_true(v128.or(i32x4.lt_s(i32x4.splat(p0), lo), i32x4.gt_s(i32x4.splat(pLast), hi)));
  if (partial) {
    let pos = i32x4.splat(p0);
    const ninf = f32x4.splat(-Infinity);
    for (let p = s4; p < sEnd; p += 16) {
      const ok = v128.and(i32x4.ge_s(pos, lo), i32x4.le_s(pos, hi));
      const sc = v128.bitselect(v128.load(p), ninf, ok);
      v128.store(p, sc);
      mv = f32x4.max(mv, sc);
      vis = v128.or(vis, ok);
      pos = i32x4.add(pos, i32x4.splat(1));
    }
  } else if (cap > 0) {
    vis = i32x4.splat(-1);
    for (let p = s4; p < sEnd; p += 16) mv = f32x4.max(mv, v128.load(p));
  } else {
    vis = i32x4.splat(-1);
    // qkQuad's max of these very scores (no soft-cap changed them): a chain of nk NaN-propagating
    // f32x4.max (several instructions each on x64) was on the softmax's critical path here.
    mv = smax;
  }
  const mOld = v128.load(sM + qi);
  const mNew = f32x4.max(mOld, mv);
  let sum = f32x4.splat(0);
  for (let p = s4; p < sEnd; p += 16) {
    const w = exp2v(f32x4.sub(v128.load(p), mNew));
    v128.store(p, w);
    sum = f32x4.add(sum, w);
  }
  const alpha = exp2v(f32x4.sub(mOld, mNew)); // 0 while a row has seen nothing (-inf - -inf = NaN -> 0)
  v128.store(sAl + qi, alpha);
  v128.store(sL + qi, f32x4.add(f32x4.mul(v128.load(sL + qi), alpha), sum));
  v128.store(sM + qi, mNew);
  v128.store(sVis + qi, vis);
}

/** Masks scores by position, updates each row's running max and sum, turns scores into weights. */
function softmaxTile(nr: i32, nk: i32, p0: i32, sRow: usize, cap: f32): void {
  const nk4 = al4(nk);
  const pLast = p0 + nk - 1;
  for (let r = 0; r < nr; r++) {
    const row = sS + <usize>r * sRow;
    if (cap > 0) softcapRun(row, nk, cap);
    const ri = <usize>r << 2;
    const lo = load<i32>(sLo + ri), hi = load<i32>(sHi + ri);
    if (min(hi, pLast) >= max(lo, p0)) store<i32>(sVis + ri, -1);
    if (p0 < lo || pLast > hi) {
      for (let j = 0; j < nk; j++) {
        const pos = p0 + j;
        if (pos < lo || pos > hi) store<f32>(row + (<usize>j << 2), -Infinity);
      }
    }
    for (let j = nk; j < nk4; j++) store<f32>(row + (<usize>j << 2), -Infinity);
    let mv = f32x4.splat(-Infinity);
    for (let j = 0; j < nk4; j += 4) mv = f32x4.max(mv, v128.load(row + (<usize>j << 2)));
    const mOld = load<f32>(sM + ri);
    const mNew = max(mOld, hmax(mv));
    const mNewV = f32x4.splat(mNew);
    let sum = f32x4.splat(0);
    for (let j = 0; j < nk4; j += 4) {
      const p = exp2v(f32x4.sub(v128.load(row + (<usize>j << 2)), mNewV));
      v128.store(row + (<usize>j << 2), p);
      sum = f32x4.add(sum, p);
    }
    const alpha = exp2s(mOld - mNew); // 0 on the first visible tile (-inf - m), NaN-safe: exp2v(NaN) = 0
    store<f32>(sAl + ri, alpha);
    store<f32>(sL + ri, load<f32>(sL + ri) * alpha + hsum(sum));
    store<f32>(sM + ri, mNew);
  }
}

/**
 * 1/l of a finished row, with the reference's edge cases: no visible key gives 0 (inverse 0); visible
 * keys but l == 0 (all -inf, or a NaN/+inf score that poisoned the max) give NaN.
 */
function rowInverse(ri: usize): f32 {
  const l = load<f32>(sL + ri);
  if (load<i32>(sVis + ri) == 0) return 0;
  return l > 0 && l < Infinity ? 1 / l : NaN;
}

/** out[t, h, :] = O / l for the item's rows (see rowInverse for rows without a usable sum). */
function writeOutput(out: usize, k: i32, t0: i32, nr: i32, G: i32, H: i32, D: i32, Dp: i32): void {
  const D4 = D & ~3;
  for (let r = 0; r < nr; r++) {
    const ri = <usize>r << 2;
    const inv = rowInverse(ri);
    const iv = f32x4.splat(inv);
    const t = t0 + r / G, g = r % G;
    const dst = out + (<usize>(t * H + k * G + g) * <usize>D << 2);
    const src = sO + (<usize>r * <usize>Dp << 2);
    let d = 0;
    for (; d < D4; d += 4) v128.store(dst + (<usize>d << 2), f32x4.mul(v128.load(src + (<usize>d << 2)), iv));
    for (; d < D; d++) store<f32>(dst + (<usize>d << 2), load<f32>(src + (<usize>d << 2)) * inv);
  }
}

// Partial result of one item: f32 [NRp, Dp] O, then f32 [NRp] m, then f32 [NRp] l.
// @ts-ignore: decorator
@inline function partBytes(nrp: i32, Dp: i32): usize {
  return (<usize>nrp * <usize>(Dp + 2)) << 2;
}

function writePartial(part: usize, item: i32, nr: i32, nrp: i32, Dp: i32): void {
  const base = part + <usize>item * partBytes(nrp, Dp);
  memory.copy(base, sO, (<usize>nr * <usize>Dp) << 2);
  const mAt = base + ((<usize>nrp * <usize>Dp) << 2);
  // m = -inf marks "no visible key"; NaN marks a poisoned row (visible keys, unusable sum).
  for (let r = 0; r < nr; r++) {
    const ri = <usize>r << 2;
    const l = load<f32>(sL + ri);
    const vis = load<i32>(sVis + ri) != 0;
    store<f32>(mAt + ri, !vis ? -Infinity : l > 0 && l < Infinity ? load<f32>(sM + ri) : NaN);
    store<f32>(mAt + (<usize>nrp << 2) + ri, vis ? l : 0);
  }
}

/** Combines the NSPLIT partials of every (query tile, kv head) by log-sum-exp into out. Host thread. */
export function attnMerge(ctl: usize): void {
  const T = <i32>arg(ctl, L.A_T), H = <i32>arg(ctl, L.A_H), K = <i32>arg(ctl, L.A_K), D = <i32>arg(ctl, L.A_D);
  const G = H / K;
  const BQ = <i32>arg(ctl, L.A_BQ), NQT = <i32>arg(ctl, L.A_NQT), NSPLIT = <i32>arg(ctl, L.A_NSPLIT);
  const Dp = <i32>arg(ctl, L.A_DP);
  const part = <usize>arg(ctl, L.A_PART), out = <usize>arg(ctl, L.A_OUT);
  const nrp = al4(BQ * G);
  const pb = partBytes(nrp, Dp);
  const mOff = (<usize>nrp * <usize>Dp) << 2;
  const D4 = D & ~3;
  for (let qt = 0; qt < NQT; qt++) {
    const t0 = qt * BQ;
    const nr = min(BQ, T - t0) * G;
    for (let k = 0; k < K; k++) {
      // items (qt, k, s) are numbered ((NQT-1-qt)*K + k)*NSPLIT + s
      const first = part + <usize>(((NQT - 1 - qt) * K + k) * NSPLIT) * pb;
      for (let r = 0; r < nr; r++) {
        const ri = <usize>r << 2;
        let mMax: f32 = -Infinity;
        let nan = false;
        for (let s = 0; s < NSPLIT; s++) {
          const m = load<f32>(first + <usize>s * pb + mOff + ri);
          if (m != m || m == Infinity) nan = true;
          mMax = max(mMax, m);
        }
        let l: f32 = 0;
        for (let s = 0; s < NSPLIT; s++) {
          const ps = first + <usize>s * pb;
          const m = load<f32>(ps + mOff + ri);
          if (m > -Infinity) l += load<f32>(ps + mOff + (<usize>nrp << 2) + ri) * exp2s(m - mMax);
        }
        const inv: f32 = nan ? NaN : l > 0 ? 1 / l : 0;
        const t = t0 + r / G, g = r % G;
        const dst = out + (<usize>(t * H + k * G + g) * <usize>D << 2);
        let d = 0;
        for (; d < D4; d += 4) v128.store(dst + (<usize>d << 2), f32x4.splat(0));
        for (; d < D; d++) store<f32>(dst + (<usize>d << 2), 0);
        for (let s = 0; s < NSPLIT; s++) {
          const ps = first + <usize>s * pb;
          const m = load<f32>(ps + mOff + ri);
          if (!(m > -Infinity)) continue;
          const w = f32x4.splat(exp2s(m - mMax) * inv);
          const src = ps + (<usize>r * <usize>Dp << 2);
          d = 0;
          for (; d < D4; d += 4) {
            const at = dst + (<usize>d << 2);
            v128.store(at, f32x4.add(v128.load(at), f32x4.mul(v128.load(src + (<usize>d << 2)), w)));
          }
          for (; d < D; d++) {
            const at = dst + (<usize>d << 2);
            store<f32>(at, load<f32>(at) + load<f32>(src + (<usize>d << 2)) * f32x4.extract_lane(w, 0));
          }
        }
        if (nan) for (d = 0; d < D; d++) store<f32>(dst + (<usize>d << 2), NaN);
      }
    }
  }
}

export { elemBytes };
