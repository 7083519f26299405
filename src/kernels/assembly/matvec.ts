// Decode projections: out[m, :] = x[m, :] · wᵀ for the M < 4 rows of a decode step (AssemblyScript,
// f32x4), called by matmulItem (matmul.ts) per item of NB rows of w. Bandwidth-bound: w streams once
// with 4 rows in flight and is widened in registers (f16: 8 halves per load by shifts and masks
// only, see matvecF16); 2 or 3 rows of x (batched decode) share one pass over w.
import { DT_F32, DT_F16, DT_BF16, POW2_112, fma, hsum, hmax, load1, load4, elemBytes, wMagic, wMask, wBig, wExp, wOne } from "./simd";

// ROWS4, the rows4 layout of an f16 or bf16 w [N, Kin] with Kin % 8 == 0 (MatmulCall.wRows4; the host
// packs it at load, src/kernels/rows4.ts): each block of 4 rows 4b .. 4b+3 keeps its 4·Kin halves in
// place, as Kin/8 groups of 64 bytes, group g holding halves 8g .. 8g+7 of row 4b + r at byte 16r.
// Rows past the last whole block keep the row layout. The 4-row loops then read one sequential
// stream from one pointer instead of 4 rows 2·Kin bytes apart (the layout llama.cpp's CPU backend
// repacks to). Every product is the same as in the row layout, in the same order, so results are
// bit-identical. Same-run A/B, same build, rows4 against rows (bench/matvec.ts --rows4 --baseline,
// AMD EPYC Zen 4, 1 and 2 threads, 2026-12-07): f16 1.07-1.19x at Kin = 768, 1.46-1.72x at Kin =
// 2048 (the MLP down projection, whose 4 KiB-apart rows ran at ~14 GB/s a thread), 0.98-1.04x at
// 4096; bf16 1.07-1.96x at 768 and 2048, 1.02-1.03x at 4096. The rows4 loops take no read-ahead:
// touching the same stream 4 KiB ahead measured 0.61-1.08x.

/** out[n] = x · w_n for n0 <= n < n1, reading w in its own dtype (inlined per dtype). */
// @ts-ignore: decorator
@inline export function matvec(dt: i32, x: usize, w: usize, n0: i32, n1: i32, Kin: i32, out: usize): void {
  matvecStrided(dt, x, w, <usize>Kin * elemBytes(dt), n0, n1, Kin, out);
}

/** matvec over rows of w at a byte stride of rowBytes (attention's K rows in a paged cache). */
// @ts-ignore: decorator
@inline export function matvecStrided(dt: i32, x: usize, w: usize, rowBytes: usize, n0: i32, n1: i32, Kin: i32, out: usize): void {
  const eb = elemBytes(dt);
  const K4 = Kin & ~3;
  const one = wOne(), mg = wMagic(), km = wMask(), bg = wBig(), ex = wExp();
  let n = n0;
  for (; n + 4 <= n1; n += 4) {
    const w0 = w + <usize>n * rowBytes, w1 = w0 + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes;
    let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
    for (let d = 0; d < K4; d += 4) {
      const xv = v128.load(x + (<usize>d << 2));
      const off = <usize>d * eb;
      c0 = fma(xv, load4(dt, w0 + off, one, mg, km, bg, ex), c0);
      c1 = fma(xv, load4(dt, w1 + off, one, mg, km, bg, ex), c1);
      c2 = fma(xv, load4(dt, w2 + off, one, mg, km, bg, ex), c2);
      c3 = fma(xv, load4(dt, w3 + off, one, mg, km, bg, ex), c3);
    }
    const o = out + (<usize>n << 2);
    store<f32>(o, rowTail(dt, hsum(c0), x, w0, K4, Kin));
    store<f32>(o, rowTail(dt, hsum(c1), x, w1, K4, Kin), 4);
    store<f32>(o, rowTail(dt, hsum(c2), x, w2, K4, Kin), 8);
    store<f32>(o, rowTail(dt, hsum(c3), x, w3, K4, Kin), 12);
  }
  for (; n < n1; n++) {
    const w0 = w + <usize>n * rowBytes;
    let c0 = f32x4.splat(0);
    for (let d = 0; d < K4; d += 4) c0 = fma(v128.load(x + (<usize>d << 2)), load4(dt, w0 + <usize>d * eb, one, mg, km, bg, ex), c0);
    store<f32>(out + (<usize>n << 2), rowTail(dt, hsum(c0), x, w0, K4, Kin));
  }
}

// Short f32 rows (Kin < SEQ_BELOW, e.g. the 768-wide projections and LM head of a small model) are
// read one row at a time, front to back, with 4 accumulators over d (d mod 16 = 0-3, 4-7, 8-11,
// 12-15), instead of 4 rows in flight: a single sequential stream. Same-run A/B against the 4-row
// loop (bench/matvec.ts --baseline, AMD EPYC Zen 5, 2026-12-07): 1.03-1.13x for Kin = 768
// (768 x 768, 2048 x 768, 32000 x 768, 1 and 2 threads), but 0.62-0.82x for Kin = 2048 and 4096, which
// keep the 4-row loop. The batched rows (matvecF32x2/x3) use the same per-row arithmetic.
const SEQ_BELOW = 1024;

/** x · w0 over Kin f32 values, the short-row order: 4 accumulators over d step 16, then the Kin tail (also quants.ts's dequantized rows). */
// @ts-ignore: decorator
@inline export function seqDot(x: usize, w0: usize, Kin: i32): f32 {
  const K16 = Kin & ~15;
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
  for (let d = 0; d < K16; d += 16) {
    const off = <usize>d << 2;
    c0 = fma(v128.load(x + off), v128.load(w0 + off), c0);
    c1 = fma(v128.load(x + off, 16), v128.load(w0 + off, 16), c1);
    c2 = fma(v128.load(x + off, 32), v128.load(w0 + off, 32), c2);
    c3 = fma(v128.load(x + off, 48), v128.load(w0 + off, 48), c3);
  }
  return rowTail(DT_F32, hsum(f32x4.add(f32x4.add(c0, c1), f32x4.add(c2, c3))), x, w0, K16, Kin);
}

/** out[n] = x · w_n for n0 <= n < n1, f32 w (short rows: seqDot; longer: the 4-row matvec). */
export function matvecF32(x: usize, w: usize, n0: i32, n1: i32, Kin: i32, out: usize): void {
  if (Kin >= SEQ_BELOW) {
    matvec(DT_F32, x, w, n0, n1, Kin, out);
    return;
  }
  const rowBytes = <usize>Kin << 2;
  for (let n = n0; n < n1; n++) store<f32>(out + (<usize>n << 2), seqDot(x, w + <usize>n * rowBytes, Kin));
}

/** seqDot of two x rows against each w row (rows at a stride of rowBytes), w loaded once (8 accumulators + 4 w vectors fit V8's 15 xmm). */
export function seqRows2(x0: usize, x1: usize, o0: usize, o1: usize, w: usize, rowBytes: usize, n0: i32, n1: i32, Kin: i32): void {
  const K16 = Kin & ~15;
  for (let n = n0; n < n1; n++) {
    const w0 = w + <usize>n * rowBytes;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
    for (let d = 0; d < K16; d += 16) {
      const off = <usize>d << 2;
      const v0 = v128.load(w0 + off), v1 = v128.load(w0 + off, 16), v2 = v128.load(w0 + off, 32), v3 = v128.load(w0 + off, 48);
      a0 = fma(v128.load(x0 + off), v0, a0);
      a1 = fma(v128.load(x0 + off, 16), v1, a1);
      a2 = fma(v128.load(x0 + off, 32), v2, a2);
      a3 = fma(v128.load(x0 + off, 48), v3, a3);
      b0 = fma(v128.load(x1 + off), v0, b0);
      b1 = fma(v128.load(x1 + off, 16), v1, b1);
      b2 = fma(v128.load(x1 + off, 32), v2, b2);
      b3 = fma(v128.load(x1 + off, 48), v3, b3);
    }
    const o = <usize>n << 2;
    store<f32>(o0 + o, rowTail(DT_F32, hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3))), x0, w0, K16, Kin));
    store<f32>(o1 + o, rowTail(DT_F32, hsum(f32x4.add(f32x4.add(b0, b1), f32x4.add(b2, b3))), x1, w0, K16, Kin));
  }
}

/**
 * matvec for f32 w and 2 or 3 rows of x: each w vector is loaded once and multiplied with every
 * row, W w rows at a time (2·W or 3·W accumulators). Per row the sums are matvec's, bit for bit
 * (the same fma order over d, hsum, then the scalar Kin tail), whatever W is.
 */
export function matvecF32x2(x0: usize, x1: usize, o0: usize, o1: usize, w: usize, n0: i32, n1: i32, Kin: i32): void {
  if (Kin < SEQ_BELOW) {
    seqRows2(x0, x1, o0, o1, w, <usize>Kin << 2, n0, n1, Kin);
    return;
  }
  let n = n0;
  for (; n + 4 <= n1; n += 4) f32Rows(2, 4, x0, x1, 0, o0, o1, 0, w, n, Kin);
  for (; n < n1; n++) f32Rows(2, 1, x0, x1, 0, o0, o1, 0, w, n, Kin);
}
export function matvecF32x3(x0: usize, x1: usize, x2: usize, o0: usize, o1: usize, o2: usize, w: usize, n0: i32, n1: i32, Kin: i32): void {
  if (Kin < SEQ_BELOW) {
    // 12 accumulators would not fit the registers: rows 0-1 share a pass, row 2 rereads the item's w (from L2)
    seqRows2(x0, x1, o0, o1, w, <usize>Kin << 2, n0, n1, Kin);
    matvecF32(x2, w, n0, n1, Kin, o2);
    return;
  }
  let n = n0;
  for (; n + F32X3_W <= n1; n += F32X3_W) f32Rows(3, F32X3_W, x0, x1, x2, o0, o1, o2, w, n, Kin);
  for (; n < n1; n++) f32Rows(3, 1, x0, x1, x2, o0, o1, o2, w, n, Kin);
}
const F32X3_W = 3;

/** out_r[n .. n+W) for R rows of x (see matvecF32x2). */
// @ts-ignore: decorator
@inline function f32Rows(R: i32, W: i32, x0: usize, x1: usize, x2: usize, o0: usize, o1: usize, o2: usize, w: usize, n: i32, Kin: i32): void {
  const rowBytes = <usize>Kin << 2;
  const K4 = Kin & ~3;
  const w0 = w + <usize>n * rowBytes, w1 = w0 + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes;
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c02 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0), c12 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c22 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0), c32 = f32x4.splat(0);
  for (let d = 0; d < K4; d += 4) {
    const off = <usize>d << 2;
    const xa = v128.load(x0 + off), xb = v128.load(x1 + off), xc = R > 2 ? v128.load(x2 + off) : xa;
    let wv = v128.load(w0 + off);
    c00 = fma(xa, wv, c00);
    c01 = fma(xb, wv, c01);
    if (R > 2) c02 = fma(xc, wv, c02);
    if (W > 1) {
      wv = v128.load(w1 + off);
      c10 = fma(xa, wv, c10);
      c11 = fma(xb, wv, c11);
      if (R > 2) c12 = fma(xc, wv, c12);
    }
    if (W > 2) {
      wv = v128.load(w2 + off);
      c20 = fma(xa, wv, c20);
      c21 = fma(xb, wv, c21);
      if (R > 2) c22 = fma(xc, wv, c22);
    }
    if (W > 3) {
      wv = v128.load(w3 + off);
      c30 = fma(xa, wv, c30);
      c31 = fma(xb, wv, c31);
      if (R > 2) c32 = fma(xc, wv, c32);
    }
  }
  const o = <usize>n << 2;
  store<f32>(o0 + o, rowTail(DT_F32, hsum(c00), x0, w0, K4, Kin));
  store<f32>(o1 + o, rowTail(DT_F32, hsum(c01), x1, w0, K4, Kin));
  if (R > 2) store<f32>(o2 + o, rowTail(DT_F32, hsum(c02), x2, w0, K4, Kin));
  if (W > 1) {
    store<f32>(o0 + o, rowTail(DT_F32, hsum(c10), x0, w1, K4, Kin), 4);
    store<f32>(o1 + o, rowTail(DT_F32, hsum(c11), x1, w1, K4, Kin), 4);
    if (R > 2) store<f32>(o2 + o, rowTail(DT_F32, hsum(c12), x2, w1, K4, Kin), 4);
  }
  if (W > 2) {
    store<f32>(o0 + o, rowTail(DT_F32, hsum(c20), x0, w2, K4, Kin), 8);
    store<f32>(o1 + o, rowTail(DT_F32, hsum(c21), x1, w2, K4, Kin), 8);
    if (R > 2) store<f32>(o2 + o, rowTail(DT_F32, hsum(c22), x2, w2, K4, Kin), 8);
  }
  if (W > 3) {
    store<f32>(o0 + o, rowTail(DT_F32, hsum(c30), x0, w3, K4, Kin), 12);
    store<f32>(o1 + o, rowTail(DT_F32, hsum(c31), x1, w3, K4, Kin), 12);
    if (R > 2) store<f32>(o2 + o, rowTail(DT_F32, hsum(c32), x2, w3, K4, Kin), 12);
  }
}

// f16 matvec fast path. A half h read as f32 bits (h & 0x7fff) << 13 with the sign moved to bit 31
// is exactly h·2^-112 for every finite half, normal or subnormal (the same bits h2f builds). Instead
// of multiplying each weight by 2^112 (h2f), x is multiplied by 2^112 once per item (prepX, into
// the thread's scratch) and shared by all rows: (x·2^112)·(h·2^-112) is the same real product, so
// every product rounds exactly as on the h2f path (only the summation order differs: per 8 values
// the 4 even halves, then the 4 odd ones, go into one accumulator per row). It needs |x| < 2^14 so x·2^112 stays finite (larger or NaN x
// take the h2f path). Inf/NaN halves would read as finite here: unless the caller promised an
// all-finite w (MatmulCall.wFinite), a max over |h| per 4 rows detects them, and that block is
// recomputed on the exact h2f path.
export const X_FAST_MAX: f32 = 16384.0;
// Two measured details of the loop (bench/matvec.ts --baseline, f16, 1 thread: 1.09-1.23x against the
// previous build on the 768-wide shapes, where the same build against itself reads 1.03-1.10x, so
// ~1.05-1.15x; no change for Kin >= 2048):
// - The masks are loaded from F16_MASK before the loop. Written as i32x4.splat(constant), each use
//   inside the loop became a v128.const, which V8 rematerialises per use (TurboFan does not hoist
//   loop invariants), and the extra instructions cost ~8 %.
// - Read-ahead: each iteration also loads one byte of the next 4-row block, one per 64-byte line,
//   so the next block's lines are in flight while this one is computed. It pays for rows shorter
//   than a 4 KiB page (Kin < 2048: 768-wide projections, the LM head), where the hardware prefetcher
//   keeps restarting on short runs; for longer rows it was 12-25 % slower, so those skip it.
// - One accumulator per row, not one for the even and one for the odd halves (2026-12-07, same-run
//   A/B against the previous build, both with wFinite, AMD EPYC Zen 5: 1.03-1.10x for Kin = 768,
//   1.20-1.29x for Kin = 2048 and 4096; identical builds read 0.98-1.02x). With 8
//   accumulators, the 4 hoisted w loads, the masks and x, V8 ran out of xmm registers and kept one
//   accumulator on the stack: a load-FMA-store chain through memory every iteration. The two
//   dependent FMAs per row are no bottleneck (mul + fma + add per row measured the same, 0.98-1.04x).
const READ_AHEAD_BELOW = 2048; // Kin, in halves: 4 KiB rows
export const F16_MASK = memory.data<u32>([0x8fffe000, 0x8fffe000, 0x8fffe000, 0x8fffe000, 0x7fff7fff, 0x7fff7fff, 0x7fff7fff, 0x7fff7fff], 16);

/** max |x[i]| over n values (NaN if any is NaN). */
export function absMax(x: usize, n: i32): f32 {
  let m = f32x4.splat(0);
  const n4 = n & ~3;
  let d = 0;
  for (; d < n4; d += 4) m = f32x4.max(m, f32x4.abs(v128.load(x + (<usize>d << 2))));
  let s = hmax(m);
  for (; d < n; d++) s = max(s, abs(load<f32>(x + (<usize>d << 2))));
  return s;
}

/**
 * 8 halves in one v128, read as 4 i32 lanes of 2 halves: the odd half (bits 16..31) and the even
 * half (bits 0..15) of each lane as f32 bits scaled by 2^-112, in two shifts and masks, no shuffles.
 */
// @ts-ignore: decorator
@inline export function hOdd(h: v128, km: v128): v128 {
  return v128.and(i32x4.shr_s(h, 3), km);
}
// @ts-ignore: decorator
@inline export function hEven(h: v128, km: v128): v128 {
  return v128.and(i32x4.shr_s(i32x4.shl(h, 16), 3), km);
}

/**
 * xs[8j .. 8j+3] = x[8j + 0, 2, 4, 6]·2^112, xs[8j+4 .. 8j+7] = x[8j + 1, 3, 5, 7]·2^112 for j < Kin/8:
 * the even and odd halves' x, scaled, laid out once per item so the 4-row blocks only load them.
 */
export function prepX(x: usize, Kin: i32, xs: usize, scale: f32 = POW2_112): void {
  const K8 = Kin & ~7;
  const sc = f32x4.splat(scale);
  for (let d = 0; d < K8; d += 8) {
    const x0 = v128.load(x + (<usize>d << 2)), x1 = v128.load(x + (<usize>d << 2), 16);
    v128.store(xs + (<usize>d << 2), f32x4.mul(v128.shuffle<f32>(x0, x1, 0, 2, 4, 6), sc));
    v128.store(xs + (<usize>d << 2), f32x4.mul(v128.shuffle<f32>(x0, x1, 1, 3, 5, 7), sc), 16);
  }
}

// Two copies of one body: `check` is a constant after inlining, so the finite-weight copy has no
// inf/NaN detection in its loop (the caller promised w is all-finite: MatmulCall.wFinite).
function matvecF16Checked(x: usize, xs: usize, w: usize, n0: i32, n1: i32, Kin: i32, out: usize): void {
  if (Kin < READ_AHEAD_BELOW) matvecF16(x, xs, w, n0, n1, Kin, out, true, true, false);
  else matvecF16(x, xs, w, n0, n1, Kin, out, true, false, false);
}
function matvecF16Finite(x: usize, xs: usize, w: usize, n0: i32, n1: i32, Kin: i32, out: usize): void {
  if (Kin < READ_AHEAD_BELOW) matvecF16(x, xs, w, n0, n1, Kin, out, false, true, false);
  else matvecF16(x, xs, w, n0, n1, Kin, out, false, false, false);
}
// rows4 w: one sequential stream per 4-row block, so no read-ahead.
function matvecF16Rows4Checked(x: usize, xs: usize, w: usize, n0: i32, n1: i32, Kin: i32, out: usize): void {
  matvecF16(x, xs, w, n0, n1, Kin, out, true, false, true);
}
function matvecF16Rows4Finite(x: usize, xs: usize, w: usize, n0: i32, n1: i32, Kin: i32, out: usize): void {
  matvecF16(x, xs, w, n0, n1, Kin, out, false, false, true);
}

/**
 * out[n] = x · w_n for n0 <= n < n1, f16 w, with xs = prepX(x) (see the comment above X_FAST_MAX).
 * rows4: w is in the rows4 layout (ROWS4): the same loads of the same 4-row block, from one pointer.
 */
// @ts-ignore: decorator
@inline function matvecF16(x: usize, xs: usize, w: usize, n0: i32, n1: i32, Kin: i32, out: usize, check: bool, readAhead: bool, rows4: bool): void {
  const rowBytes = <usize>Kin << 1;
  const K8 = Kin & ~7;
  const km = v128.load(F16_MASK), am = v128.load(F16_MASK, 16);
  let n = n0;
  let touch: u8 = 0;
  for (; n + 4 <= n1; n += 4) {
    const w0 = w + <usize>n * rowBytes, w1 = w0 + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let hx = i16x8.splat(0);
    const ahead = n + 8 <= n1 ? w0 + (rowBytes << 2) : w0;
    for (let d = 0; d < K8; d += 8) {
      if (readAhead) touch |= load<u8>(ahead + (<usize>d << 3));
      const xe = v128.load(xs + (<usize>d << 2)), xo = v128.load(xs + (<usize>d << 2), 16);
      const off = <usize>d << 1, pb = w0 + (<usize>d << 3); // rows4: the block's 64 bytes of values d .. d+7
      let h = rows4 ? v128.load(pb) : v128.load(w0 + off);
      if (check) hx = i16x8.max_u(hx, v128.and(h, am));
      a0 = fma(xo, hOdd(h, km), fma(xe, hEven(h, km), a0));
      h = rows4 ? v128.load(pb, 16) : v128.load(w1 + off);
      if (check) hx = i16x8.max_u(hx, v128.and(h, am));
      a1 = fma(xo, hOdd(h, km), fma(xe, hEven(h, km), a1));
      h = rows4 ? v128.load(pb, 32) : v128.load(w2 + off);
      if (check) hx = i16x8.max_u(hx, v128.and(h, am));
      a2 = fma(xo, hOdd(h, km), fma(xe, hEven(h, km), a2));
      h = rows4 ? v128.load(pb, 48) : v128.load(w3 + off);
      if (check) hx = i16x8.max_u(hx, v128.and(h, am));
      a3 = fma(xo, hOdd(h, km), fma(xe, hEven(h, km), a3));
    }
    if (check && v128.any_true(i16x8.ge_u(hx, i16x8.splat(0x7c00)))) {
      // an inf/NaN weight: exact path for these 4 rows
      if (rows4) matvecExactRows4(x, w, n, n + 4, Kin, out);
      else matvecStrided(DT_F16, x, w, rowBytes, n, n + 4, Kin, out);
      continue;
    }
    const o = out + (<usize>n << 2);
    store<f32>(o, rowTail(DT_F16, hsum(a0), x, w0, K8, Kin));
    store<f32>(o, rowTail(DT_F16, hsum(a1), x, w1, K8, Kin), 4);
    store<f32>(o, rowTail(DT_F16, hsum(a2), x, w2, K8, Kin), 8);
    store<f32>(o, rowTail(DT_F16, hsum(a3), x, w3, K8, Kin), 12);
  }
  if (readAhead) store<u8>(xs, touch); // keeps the read-ahead loads (xs is not read again in this item)
  if (n < n1) matvecStrided(DT_F16, x, w, rowBytes, n, n1, Kin, out);
}

/**
 * out[m, n0:n1] for m0 <= m < m1 (at most 3 rows), f16 w. Rows whose x is eligible (|x| < 2^14) get
 * their scaled x in the thread's scratch (prepX, one Kp-value row each) and share one pass over w
 * (matvecF16Rows); the others take the exact h2f path, as a single row would.
 */
export function matvecF16Item(x: usize, xs: usize, w: usize, out: usize, m0: i32, m1: i32, n0: i32, n1: i32, N: i32, Kin: i32, finite: bool, rows4: bool): void {
  const xsStride = <usize>((Kin + 7) & ~7) << 2;
  let r = 0;
  let x0: usize = 0, x1: usize = 0, x2: usize = 0, o0: usize = 0, o1: usize = 0, o2: usize = 0;
  for (let m = m0; m < m1; m++) {
    const xr = x + (<usize>m * <usize>Kin << 2), or = out + (<usize>m * <usize>N << 2);
    if (xs == 0 || !(absMax(xr, Kin) < X_FAST_MAX)) {
      if (rows4) matvecExactRows4(xr, w, n0, n1, Kin, or);
      else matvecExactF16(xr, w, n0, n1, Kin, or);
      continue;
    }
    prepX(xr, Kin, xs + <usize>r * xsStride);
    if (r == 0) { x0 = xr; o0 = or; }
    else if (r == 1) { x1 = xr; o1 = or; }
    else { x2 = xr; o2 = or; }
    r++;
  }
  if (r == 1) {
    if (rows4 && finite) matvecF16Rows4Finite(x0, xs, w, n0, n1, Kin, o0);
    else if (rows4) matvecF16Rows4Checked(x0, xs, w, n0, n1, Kin, o0);
    else if (finite) matvecF16Finite(x0, xs, w, n0, n1, Kin, o0);
    else matvecF16Checked(x0, xs, w, n0, n1, Kin, o0);
  } else if (r == 2) {
    if (finite) matvecF16x2Finite(x0, x1, o0, o1, xs, xsStride, w, n0, n1, Kin, rows4);
    else matvecF16x2Checked(x0, x1, o0, o1, xs, xsStride, w, n0, n1, Kin, rows4);
  } else if (r == 3) {
    if (finite) matvecF16x3Finite(x0, x1, x2, o0, o1, o2, xs, xsStride, w, n0, n1, Kin, rows4);
    else matvecF16x3Checked(x0, x1, x2, o0, o1, o2, xs, xsStride, w, n0, n1, Kin, rows4);
  }
}

// The same copy-per-flag scheme as matvecF16Finite/Checked, for 2 and 3 x rows (rows4: no read-ahead).
function matvecF16x2Finite(x0: usize, x1: usize, o0: usize, o1: usize, xs: usize, xsStride: usize, w: usize, n0: i32, n1: i32, Kin: i32, rows4: bool): void {
  if (rows4) matvecF16Rows(2, F16X2_W, false, false, true, x0, x1, 0, o0, o1, 0, xs, xsStride, w, n0, n1, Kin);
  else if (Kin < READ_AHEAD_BELOW) matvecF16Rows(2, F16X2_W, false, true, false, x0, x1, 0, o0, o1, 0, xs, xsStride, w, n0, n1, Kin);
  else matvecF16Rows(2, F16X2_W, false, false, false, x0, x1, 0, o0, o1, 0, xs, xsStride, w, n0, n1, Kin);
}
function matvecF16x2Checked(x0: usize, x1: usize, o0: usize, o1: usize, xs: usize, xsStride: usize, w: usize, n0: i32, n1: i32, Kin: i32, rows4: bool): void {
  if (rows4) matvecF16Rows(2, F16X2_W, true, false, true, x0, x1, 0, o0, o1, 0, xs, xsStride, w, n0, n1, Kin);
  else if (Kin < READ_AHEAD_BELOW) matvecF16Rows(2, F16X2_W, true, true, false, x0, x1, 0, o0, o1, 0, xs, xsStride, w, n0, n1, Kin);
  else matvecF16Rows(2, F16X2_W, true, false, false, x0, x1, 0, o0, o1, 0, xs, xsStride, w, n0, n1, Kin);
}
function matvecF16x3Finite(x0: usize, x1: usize, x2: usize, o0: usize, o1: usize, o2: usize, xs: usize, xsStride: usize, w: usize, n0: i32, n1: i32, Kin: i32, rows4: bool): void {
  if (rows4) matvecF16Rows(3, F16X3_W, false, false, true, x0, x1, x2, o0, o1, o2, xs, xsStride, w, n0, n1, Kin);
  else if (Kin < READ_AHEAD_BELOW) matvecF16Rows(3, F16X3_W, false, true, false, x0, x1, x2, o0, o1, o2, xs, xsStride, w, n0, n1, Kin);
  else matvecF16Rows(3, F16X3_W, false, false, false, x0, x1, x2, o0, o1, o2, xs, xsStride, w, n0, n1, Kin);
}
function matvecF16x3Checked(x0: usize, x1: usize, x2: usize, o0: usize, o1: usize, o2: usize, xs: usize, xsStride: usize, w: usize, n0: i32, n1: i32, Kin: i32, rows4: bool): void {
  if (rows4) matvecF16Rows(3, F16X3_W, true, false, true, x0, x1, x2, o0, o1, o2, xs, xsStride, w, n0, n1, Kin);
  else if (Kin < READ_AHEAD_BELOW) matvecF16Rows(3, F16X3_W, true, true, false, x0, x1, x2, o0, o1, o2, xs, xsStride, w, n0, n1, Kin);
  else matvecF16Rows(3, F16X3_W, true, false, false, x0, x1, x2, o0, o1, o2, xs, xsStride, w, n0, n1, Kin);
}

const F16X2_W = 2;
const F16X3_W = 1;

/**
 * out_r[n] = x_r · w_n for R (2 or 3) x rows at once, each w vector loaded and widened once and
 * multiplied with all R prepared x rows (xs + r·xsStride). Per x row it computes exactly what
 * matvecF16 computes: the same products into the same accumulator (even halves, then odd, per
 * 8 values), summed in the same order, the same inf/NaN check per 4-row block and the same h2f path for the row tail, so each
 * row is bit-identical to an M = 1 call. The 4-row blocks are walked W rows at a time so the
 * R·W accumulators fit V8's 15 xmm registers with the widened halves and the masks.
 */
// @ts-ignore: decorator
@inline function matvecF16Rows(R: i32, W: i32, check: bool, readAhead: bool, rows4: bool, x0: usize, x1: usize, x2: usize, o0: usize, o1: usize, o2: usize, xs: usize, xsStride: usize, w: usize, n0: i32, n1: i32, Kin: i32): void {
  const rowBytes = <usize>Kin << 1;
  const K8 = Kin & ~7;
  const km = v128.load(F16_MASK), am = v128.load(F16_MASK, 16);
  const xs1 = xs + xsStride, xs2 = xs1 + xsStride;
  const nEnd = n0 + ((n1 - n0) & ~3);
  let touch: u8 = 0;
  for (let n = n0; n < nEnd; n += 4) {
    let hx = i16x8.splat(0);
    const ahead = n + 8 <= n1 ? w + <usize>(n + 4) * rowBytes : w + <usize>n * rowBytes;
    for (let j = 0; j < 4; j += W) {
      const w0 = w + <usize>(n + j) * rowBytes, w1 = w0 + rowBytes;
      const pj = w + <usize>n * rowBytes + (<usize>j << 4); // rows4: row n + j's 16 bytes of each 64-byte group
      const ra = ahead + <usize>j * rowBytes; // the same rows of the next block: 16·W bytes per step
      let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a02 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0), a12 = f32x4.splat(0);
      for (let d = 0; d < K8; d += 8) {
        if (readAhead) touch |= load<u8>(ra + <usize>d * <usize>(2 * W));
        // Both w vectors are widened first, then each x vector is loaded once and used W times:
        // R·W accumulators + 2·W halves + km + one x vector stay in registers (R = 2, W = 2: 10).
        const xo = <usize>d << 2, off = <usize>d << 1;
        const h0 = rows4 ? v128.load(pj + (<usize>d << 3)) : v128.load(w0 + off);
        if (check) hx = i16x8.max_u(hx, v128.and(h0, am));
        const e0 = hEven(h0, km), d0 = hOdd(h0, km);
        let h1 = h0, e1 = e0, d1 = d0;
        if (W > 1) {
          h1 = rows4 ? v128.load(pj + (<usize>d << 3), 16) : v128.load(w1 + off);
          if (check) hx = i16x8.max_u(hx, v128.and(h1, am));
          e1 = hEven(h1, km);
          d1 = hOdd(h1, km);
        }
        let xv = v128.load(xs + xo);
        a00 = fma(xv, e0, a00);
        if (W > 1) a10 = fma(xv, e1, a10);
        xv = v128.load(xs + xo, 16);
        a00 = fma(xv, d0, a00);
        if (W > 1) a10 = fma(xv, d1, a10);
        xv = v128.load(xs1 + xo);
        a01 = fma(xv, e0, a01);
        if (W > 1) a11 = fma(xv, e1, a11);
        xv = v128.load(xs1 + xo, 16);
        a01 = fma(xv, d0, a01);
        if (W > 1) a11 = fma(xv, d1, a11);
        if (R > 2) {
          xv = v128.load(xs2 + xo);
          a02 = fma(xv, e0, a02);
          if (W > 1) a12 = fma(xv, e1, a12);
          xv = v128.load(xs2 + xo, 16);
          a02 = fma(xv, d0, a02);
          if (W > 1) a12 = fma(xv, d1, a12);
        }
      }
      const o = <usize>(n + j) << 2;
      store<f32>(o0 + o, rowTail(DT_F16, hsum(a00), x0, w0, K8, Kin));
      store<f32>(o1 + o, rowTail(DT_F16, hsum(a01), x1, w0, K8, Kin));
      if (R > 2) store<f32>(o2 + o, rowTail(DT_F16, hsum(a02), x2, w0, K8, Kin));
      if (W > 1) {
        store<f32>(o0 + o, rowTail(DT_F16, hsum(a10), x0, w1, K8, Kin), 4);
        store<f32>(o1 + o, rowTail(DT_F16, hsum(a11), x1, w1, K8, Kin), 4);
        if (R > 2) store<f32>(o2 + o, rowTail(DT_F16, hsum(a12), x2, w1, K8, Kin), 4);
      }
    }
    if (check && v128.any_true(i16x8.ge_u(hx, i16x8.splat(0x7c00)))) {
      // an inf/NaN weight in these 4 rows: the exact path for them, as matvecF16 does
      if (rows4) {
        matvecExactRows4(x0, w, n, n + 4, Kin, o0);
        matvecExactRows4(x1, w, n, n + 4, Kin, o1);
        if (R > 2) matvecExactRows4(x2, w, n, n + 4, Kin, o2);
      } else {
        matvecExactF16(x0, w, n, n + 4, Kin, o0);
        matvecExactF16(x1, w, n, n + 4, Kin, o1);
        if (R > 2) matvecExactF16(x2, w, n, n + 4, Kin, o2);
      }
    }
  }
  store<u8>(xs, touch); // keeps the read-ahead loads; xs is not read again in this item
  if (nEnd < n1) {
    matvecExactF16(x0, w, nEnd, n1, Kin, o0);
    matvecExactF16(x1, w, nEnd, n1, Kin, o1);
    if (R > 2) matvecExactF16(x2, w, nEnd, n1, Kin, o2);
  }
}

// bf16 matvec fast path. One v128 load holds 8 bf16 values; read as 4 i32 lanes, the odd value is
// the lane & 0xffff0000 and the even value the lane << 16, each an exact f32 in one op (inf and NaN
// included, so nothing is checked). x is laid out even/odd once per item (prepX with scale 1) as for
// f16, and rows shorter than READ_AHEAD_BELOW read the next 4-row block ahead as matvecF16 does.
// One accumulator per row, as matvecF16 (the even/odd pair of accumulators spilled one to the stack;
// 2026-12-07 same-run A/B, AMD EPYC Zen 5, 2 threads: 1.04-1.09x for Kin = 768). With that fixed,
// rows of Kin >= 2048 also take this path (1.10-1.16x against the generic load4 path, which was
// 1.03-1.2x faster than the spilling version).
// Per row and 8 values the two products are summed off the accumulator's chain (mul, fma) and
// added to it once: with 4 rows the loop was bound by its 4 chains of 2 dependent FMAs (8 cycles
// per 64 bytes), not by its 4 ops per row. bench/matvec.ts --finite --baseline, AMD EPYC Zen 5,
// 2026-12-07: 1.07-1.38x with w in cache (--hot), 0.9-1.1x from DRAM. (f16's 5 widening ops per
// row make its loop throughput-bound: the same change there measured 0.86-0.94x.)
export const BF16_HI = memory.data<u32>([0xffff0000, 0xffff0000, 0xffff0000, 0xffff0000], 16);

/** out[n] = x · w_n for n0 <= n < n1, bf16 w rows at byte stride rowBytes, xs = prepX(x, Kin, xs, 1). */
// @ts-ignore: decorator
@inline function matvecBF16(x: usize, xs: usize, w: usize, n0: i32, n1: i32, Kin: i32, out: usize, readAhead: bool, rows4: bool): void {
  const rowBytes = <usize>Kin << 1;
  const K8 = Kin & ~7;
  const hi = v128.load(BF16_HI);
  let n = n0;
  let touch: u8 = 0;
  for (; n + 4 <= n1; n += 4) {
    const w0 = w + <usize>n * rowBytes, w1 = w0 + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    const ahead = n + 8 <= n1 ? w0 + (rowBytes << 2) : w0;
    for (let d = 0; d < K8; d += 8) {
      if (readAhead) touch |= load<u8>(ahead + (<usize>d << 3));
      const xe = v128.load(xs + (<usize>d << 2)), xo = v128.load(xs + (<usize>d << 2), 16);
      const off = <usize>d << 1, pb = w0 + (<usize>d << 3); // rows4: the block's 64 bytes of values d .. d+7
      let h = rows4 ? v128.load(pb) : v128.load(w0 + off);
      a0 = f32x4.add(a0, fma(xo, v128.and(h, hi), f32x4.mul(xe, i32x4.shl(h, 16))));
      h = rows4 ? v128.load(pb, 16) : v128.load(w1 + off);
      a1 = f32x4.add(a1, fma(xo, v128.and(h, hi), f32x4.mul(xe, i32x4.shl(h, 16))));
      h = rows4 ? v128.load(pb, 32) : v128.load(w2 + off);
      a2 = f32x4.add(a2, fma(xo, v128.and(h, hi), f32x4.mul(xe, i32x4.shl(h, 16))));
      h = rows4 ? v128.load(pb, 48) : v128.load(w3 + off);
      a3 = f32x4.add(a3, fma(xo, v128.and(h, hi), f32x4.mul(xe, i32x4.shl(h, 16))));
    }
    const o = out + (<usize>n << 2);
    store<f32>(o, rowTail(DT_BF16, hsum(a0), x, w0, K8, Kin));
    store<f32>(o, rowTail(DT_BF16, hsum(a1), x, w1, K8, Kin), 4);
    store<f32>(o, rowTail(DT_BF16, hsum(a2), x, w2, K8, Kin), 8);
    store<f32>(o, rowTail(DT_BF16, hsum(a3), x, w3, K8, Kin), 12);
  }
  if (readAhead) store<u8>(xs, touch);
  if (n < n1) matvecStrided(DT_BF16, x, w, rowBytes, n, n1, Kin, out);
}

/** out[m, n0:n1] for m0 <= m < m1 (at most 3 rows), bf16 w: each row's x laid out even/odd in xs, then one pass over w per row. */
export function matvecBF16Item(x: usize, xs: usize, w: usize, out: usize, m0: i32, m1: i32, n0: i32, n1: i32, N: i32, Kin: i32, rows4: bool): void {
  for (let m = m0; m < m1; m++) {
    const xr = x + (<usize>m * <usize>Kin << 2), or = out + (<usize>m * <usize>N << 2);
    prepX(xr, Kin, xs, 1);
    if (rows4) matvecBF16(xr, xs, w, n0, n1, Kin, or, false, true); // one stream per block: no read-ahead
    else if (Kin >= READ_AHEAD_BELOW) matvecBF16(xr, xs, w, n0, n1, Kin, or, false, false);
    else matvecBF16(xr, xs, w, n0, n1, Kin, or, true, false);
  }
}

/**
 * matvecExactF16 over an f16 w in the rows4 layout (ROWS4): the 4-row blocks with exactly
 * matvecStrided's arithmetic (the same 4-value loads, FMAs and sums, so each row is bit-identical
 * to the row layout's), then the rows past the last block, which keep the row layout.
 */
function matvecExactRows4(x: usize, w: usize, n0: i32, n1: i32, Kin: i32, out: usize): void {
  const rowBytes = <usize>Kin << 1;
  const one = wOne(), mg = wMagic(), km = wMask(), bg = wBig(), ex = wExp();
  let n = n0;
  for (; n + 4 <= n1; n += 4) {
    const b = w + <usize>n * rowBytes;
    let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
    for (let d = 0; d < Kin; d += 4) {
      const xv = v128.load(x + (<usize>d << 2));
      const g = b + (<usize>(d >> 3) << 6) + (<usize>(d & 4) << 1); // values d .. d+3 of row 0 of the block
      c0 = fma(xv, load4(DT_F16, g, one, mg, km, bg, ex), c0);
      c1 = fma(xv, load4(DT_F16, g + 16, one, mg, km, bg, ex), c1);
      c2 = fma(xv, load4(DT_F16, g + 32, one, mg, km, bg, ex), c2);
      c3 = fma(xv, load4(DT_F16, g + 48, one, mg, km, bg, ex), c3);
    }
    const o = out + (<usize>n << 2);
    store<f32>(o, hsum(c0));
    store<f32>(o, hsum(c1), 4);
    store<f32>(o, hsum(c2), 8);
    store<f32>(o, hsum(c3), 12);
  }
  if (n < n1) matvecExactF16(x, w, n, n1, Kin, out);
}

/** matvec on the exact h2f path, not inlined: the fallback of the batched copies above. */
function matvecExactF16(x: usize, w: usize, n0: i32, n1: i32, Kin: i32, out: usize): void {
  matvec(DT_F16, x, w, n0, n1, Kin, out);
}

/** s + Σ x[d]·w[d] over the Kin tail k0 <= d < Kin, w in dtype dt read one value at a time (f16 by
 * h2f): every kernel's scalar tail, so a row's sum is the same whichever kernel computed it. */
// @ts-ignore: decorator
@inline export function rowTail(dt: i32, s: f32, x: usize, w: usize, k0: i32, Kin: i32): f32 {
  const eb = elemBytes(dt);
  for (let d = k0; d < Kin; d++) s += load<f32>(x + (<usize>d << 2)) * load1(dt, w + <usize>d * eb);
  return s;
}

