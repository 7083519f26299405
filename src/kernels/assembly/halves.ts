// Q·K and P·V over a tile of f16 or bf16 K and V rows, widened in registers (AssemblyScript,
// f32x4): the decode shape with few query rows per KV head (MHA, G = 2), where widening the tile
// into scratch first cost more than the memory it reads (attention.ts, attnTileHalf). Both take
// keys in pairs; see docs/benchmarks/attention.md, session 11, for what V8 makes of these loops.
//
// Legend: nk keys of the tile, Dp values per row (Dp % 8 == 0).
//
// One v128 load holds 8 halves; read as 4 i32 lanes, the even halves (d = 0, 2, 4, 6) and the odd
// halves (d = 1, 3, 5, 7) widen with two or three integer ops and no shuffles (matvec.ts hEven,
// hOdd). So output rows here are in even/odd order: per 8 values, d = 0, 2, 4, 6, 1, 3, 5, 7
// (toEvenOdd / fromEvenOdd convert in place).
import { DT_F16, DT_BF16, fma, hsum } from "./simd";
import { hEven, hOdd, F16_MASK, BF16_HI, matvecStrided, rowTail } from "./matvec";

// bf16 (BF16_HI): the high half of each i32 lane is already an f32 (odd); the low half shifted up (even).
// @ts-ignore: decorator
@inline function wEven(f16: bool, h: v128, km: v128): v128 {
  return f16 ? hEven(h, km) : i32x4.shl(h, 16);
}
// @ts-ignore: decorator
@inline function wOdd(f16: bool, h: v128, km: v128): v128 {
  return f16 ? hOdd(h, km) : v128.and(h, km);
}

/**
 * o_r = o_r·alpha_r + Σ_j p_r[j]·v_j over j < nk for nr = 1 or 2 output rows (o_r = o + r·so, f32
 * [Dp], even/odd order; weights p_r = p + r·sp; alpha_r at al + 4r), V rows of Dp halves at byte
 * stride vs, one pass over V for both rows. f16: the halves are read as h·2^-112 (exact for every
 * finite half, subnormals included), so p must hold the weights times 2^112 and every product is
 * the exact p·v; returns true if a half of the tile is inf/NaN (o is then wrong and the caller
 * redoes the tile on the exact path). bf16 widening is exact for every value and returns false.
 * o (in L1) is scaled once and then updated key by key, so each V row is read whole and in order:
 * one sequential stream, as in tiles.ts pvRow (holding 32 values of o in registers walks V in
 * columns strided by the row length instead). The per-value sums are the same in either order.
 */
export function pvRowF16(p: usize, sp: usize, nr: i32, v: usize, vs: usize, nk: i32, Dp: i32, o: usize, so: usize, al: usize): bool {
  return nr == 2 ? pvHalf(true, true, true, p, sp, v, vs, nk, Dp, o, so, al) : pvHalf(true, true, false, p, sp, v, vs, nk, Dp, o, so, al);
}
/** pvRowF16 without the inf/NaN check, for rows the caller promised finite (AttentionCall.kvFinite). */
export function pvRowF16Finite(p: usize, sp: usize, nr: i32, v: usize, vs: usize, nk: i32, Dp: i32, o: usize, so: usize, al: usize): void {
  if (nr == 2) pvHalf(true, false, true, p, sp, v, vs, nk, Dp, o, so, al);
  else pvHalf(true, false, false, p, sp, v, vs, nk, Dp, o, so, al);
}
export function pvRowBF16(p: usize, sp: usize, nr: i32, v: usize, vs: usize, nk: i32, Dp: i32, o: usize, so: usize, al: usize): void {
  if (nr == 2) pvHalf(false, false, true, p, sp, v, vs, nk, Dp, o, so, al);
  else pvHalf(false, false, false, p, sp, v, vs, nk, Dp, o, so, al);
}

// @ts-ignore: decorator
@inline function pvHalf(f16: bool, check: bool, two: bool, p: usize, sp: usize, v: usize, vs: usize, nk: i32, Dp: i32, o: usize, so: usize, al: usize): bool {
  const km = f16 ? v128.load(F16_MASK) : v128.load(BF16_HI), am = v128.load(F16_MASK, 16);
  const o1 = o + so, p1 = p + sp;
  const al0 = v128.load32_splat(al), al1 = v128.load32_splat(al, 4);
  let hx = i16x8.splat(0);
  const hbytes = <usize>Dp << 1; // a V row's bytes; the matching o offset of byte d is 2d
  for (let d: usize = 0; d < hbytes << 1; d += 16) {
    v128.store(o + d, f32x4.mul(v128.load(o + d), al0));
    if (two) v128.store(o1 + d, f32x4.mul(v128.load(o1 + d), al1));
  }
  // Keys in groups (4 for one row, 2 for two): o is loaded and stored once per group, not per key,
  // and each value still takes the keys' products in key order, the same sums bit for bit.
  let j = 0;
  if (two) {
    for (; j + 2 <= nk; j += 2) {
      const pj = p + (<usize>j << 2), qj = p1 + (<usize>j << 2);
      const u0 = v128.load32_splat(pj), u1 = v128.load32_splat(pj, 4);
      const t0 = v128.load32_splat(qj), t1 = v128.load32_splat(qj, 4);
      const vr = v + <usize>j * vs;
      for (let d: usize = 0; d < hbytes; d += 16) {
        const h0 = v128.load(vr + d), h1 = v128.load(vr + vs + d);
        if (check) hx = i16x8.max_u(hx, i16x8.max_u(v128.and(h0, am), v128.and(h1, am)));
        const od = o + (d << 1);
        const e0 = wEven(f16, h0, km), q0 = wOdd(f16, h0, km), e1 = wEven(f16, h1, km), q1 = wOdd(f16, h1, km);
        v128.store(od, fma(u1, e1, fma(u0, e0, v128.load(od))));
        v128.store(od, fma(u1, q1, fma(u0, q0, v128.load(od, 16))), 16);
        v128.store(od + so, fma(t1, e1, fma(t0, e0, v128.load(od + so))));
        v128.store(od + so, fma(t1, q1, fma(t0, q0, v128.load(od + so, 16))), 16);
      }
    }
  } else {
    for (; j + 2 <= nk; j += 2) {
      const pj = p + (<usize>j << 2);
      const u0 = v128.load32_splat(pj), u1 = v128.load32_splat(pj, 4);
      const vr = v + <usize>j * vs;
      for (let d: usize = 0; d < hbytes; d += 16) {
        const od = o + (d << 1);
        const h0 = v128.load(vr + d), h1 = v128.load(vr + vs + d);
        if (check) hx = i16x8.max_u(hx, i16x8.max_u(v128.and(h0, am), v128.and(h1, am)));
        v128.store(od, fma(u1, wEven(f16, h1, km), fma(u0, wEven(f16, h0, km), v128.load(od))));
        v128.store(od, fma(u1, wOdd(f16, h1, km), fma(u0, wOdd(f16, h0, km), v128.load(od, 16))), 16);
      }
    }
  }
  for (; j < nk; j++) {
    const w0 = v128.load32_splat(p + (<usize>j << 2));
    const w1 = two ? v128.load32_splat(p1 + (<usize>j << 2)) : w0;
    const vr = v + <usize>j * vs;
    for (let d: usize = 0; d < hbytes; d += 16) {
      const h = v128.load(vr + d);
      if (check) hx = i16x8.max_u(hx, v128.and(h, am));
      const od = o + (d << 1);
      const e = wEven(f16, h, km), q = wOdd(f16, h, km);
      v128.store(od, fma(w0, e, v128.load(od)));
      v128.store(od, fma(w0, q, v128.load(od, 16)), 16);
      if (two) {
        v128.store(od + so, fma(w1, e, v128.load(od + so)));
        v128.store(od + so, fma(w1, q, v128.load(od + so, 16)), 16);
      }
    }
  }
  return check && v128.any_true(i16x8.ge_u(hx, i16x8.splat(0x7c00)));
}

/**
 * out_r[j] = x_r · k_j for j < nk and nr = 1 or 2 query rows (x_r = x + r·xb, xs_r = xs + r·xb with
 * xs = prepX(x): f16 scaled by 2^112, bf16 by 1; out_r = out + r·ob), f16 or bf16 K rows at byte
 * stride rowBytes, D % 8 == 0. Each K row is read whole before the next, one sequential stream for
 * MHA's short rows, where the weight matvec's 4 rows in flight walk a tile in strided steps; both
 * query rows share each load and its widening. Each row has 4 accumulators over the 4 loads of a
 * 64-byte line, in the same order for one row or two, so a G = 2 row's score is the MHA row's bit
 * for bit; one row takes keys in pairs (D % 32 == 0). f16 with `check`: a key holding an inf/NaN
 * half is recomputed on the exact h2f path (both keys of a pair). `sink`: 128 bytes of scratch,
 * written and never read (the stores that order each accumulator's update before the next loads).
 */
export function qkSeqF16(x: usize, xs: usize, xb: usize, nr: i32, k: usize, rowBytes: usize, nk: i32, D: i32, out: usize, ob: usize, sink: usize): void {
  if (nr == 2) qkSeqHalf2(true, true, x, xs, xb, k, rowBytes, nk, D, out, ob, sink);
  else qkSeqHalf(true, true, x, xs, k, rowBytes, nk, D, out, sink);
}
/** qkSeqF16 without the inf/NaN check, for rows the caller promised finite (AttentionCall.kvFinite). */
export function qkSeqF16Finite(x: usize, xs: usize, xb: usize, nr: i32, k: usize, rowBytes: usize, nk: i32, D: i32, out: usize, ob: usize, sink: usize): void {
  if (nr == 2) qkSeqHalf2(true, false, x, xs, xb, k, rowBytes, nk, D, out, ob, sink);
  else qkSeqHalf(true, false, x, xs, k, rowBytes, nk, D, out, sink);
}
export function qkSeqBF16(x: usize, xs: usize, xb: usize, nr: i32, k: usize, rowBytes: usize, nk: i32, D: i32, out: usize, ob: usize, sink: usize): void {
  if (nr == 2) qkSeqHalf2(false, false, x, xs, xb, k, rowBytes, nk, D, out, ob, sink);
  else qkSeqHalf(false, false, x, xs, k, rowBytes, nk, D, out, sink);
}

// @ts-ignore: decorator
@inline function qkSeqHalf(f16: bool, check: bool, x: usize, xs: usize, k: usize, rowBytes: usize, nk: i32, D: i32, out: usize, sink: usize): void {
  const km = f16 ? v128.load(F16_MASK) : v128.load(BF16_HI), am = v128.load(F16_MASK, 16);
  const D32 = D & ~31, D8 = D & ~7;
  let j = 0;
  // Two keys per pass when the rows are whole 32-value blocks: x is loaded once for both, and each
  // key keeps its own 4 accumulators, so its sum is the one-key loop's, bit for bit. Each
  // accumulator is also stored to `sink` (scratch, never read) after its update: TurboFan otherwise
  // schedules all of a block's loads before its arithmetic, runs out of xmm registers and spills
  // accumulators, whose FMA chains then pass through the stack (see docs/benchmarks/attention.md).
  if (D32 == D) {
    for (; j + 2 <= nk; j += 2) {
      const kr = k + <usize>j * rowBytes, kq = kr + rowBytes;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
      let hx = i16x8.splat(0);
      for (let d = 0; d < D32; d += 32) {
        const xd = xs + (<usize>d << 2), off = <usize>d << 1;
        let xe = v128.load(xd), xo = v128.load(xd, 16);
        let h = v128.load(kr + off), g = v128.load(kq + off);
        if (check) hx = i16x8.max_u(hx, i16x8.max_u(v128.and(h, am), v128.and(g, am)));
        a0 = fma(xo, wOdd(f16, h, km), fma(xe, wEven(f16, h, km), a0));
        b0 = fma(xo, wOdd(f16, g, km), fma(xe, wEven(f16, g, km), b0));
        v128.store(sink, a0);
        v128.store(sink, b0, 16);
        xe = v128.load(xd, 32);
        xo = v128.load(xd, 48);
        h = v128.load(kr + off, 16);
        g = v128.load(kq + off, 16);
        if (check) hx = i16x8.max_u(hx, i16x8.max_u(v128.and(h, am), v128.and(g, am)));
        a1 = fma(xo, wOdd(f16, h, km), fma(xe, wEven(f16, h, km), a1));
        b1 = fma(xo, wOdd(f16, g, km), fma(xe, wEven(f16, g, km), b1));
        v128.store(sink, a1, 32);
        v128.store(sink, b1, 48);
        xe = v128.load(xd, 64);
        xo = v128.load(xd, 80);
        h = v128.load(kr + off, 32);
        g = v128.load(kq + off, 32);
        if (check) hx = i16x8.max_u(hx, i16x8.max_u(v128.and(h, am), v128.and(g, am)));
        a2 = fma(xo, wOdd(f16, h, km), fma(xe, wEven(f16, h, km), a2));
        b2 = fma(xo, wOdd(f16, g, km), fma(xe, wEven(f16, g, km), b2));
        v128.store(sink, a2, 64);
        v128.store(sink, b2, 80);
        xe = v128.load(xd, 96);
        xo = v128.load(xd, 112);
        h = v128.load(kr + off, 48);
        g = v128.load(kq + off, 48);
        if (check) hx = i16x8.max_u(hx, i16x8.max_u(v128.and(h, am), v128.and(g, am)));
        a3 = fma(xo, wOdd(f16, h, km), fma(xe, wEven(f16, h, km), a3));
        b3 = fma(xo, wOdd(f16, g, km), fma(xe, wEven(f16, g, km), b3));
        v128.store(sink, a3, 96);
        v128.store(sink, b3, 112);
      }
      if (check && v128.any_true(i16x8.ge_u(hx, i16x8.splat(0x7c00)))) {
        matvecStrided(DT_F16, x, k, rowBytes, j, j + 2, D, out); // an inf/NaN half in one of the two: the exact path for both
        continue;
      }
      store<f32>(out + (<usize>j << 2), hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3))));
      store<f32>(out + (<usize>j << 2), hsum(f32x4.add(f32x4.add(b0, b1), f32x4.add(b2, b3))), 4);
    }
  }
  for (; j < nk; j++) {
    const kr = k + <usize>j * rowBytes;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let hx = i16x8.splat(0);
    let d = 0;
    for (; d < D32; d += 32) {
      const xd = xs + (<usize>d << 2), kd = kr + (<usize>d << 1);
      let h = v128.load(kd);
      if (check) hx = i16x8.max_u(hx, v128.and(h, am));
      a0 = fma(v128.load(xd, 16), wOdd(f16, h, km), fma(v128.load(xd), wEven(f16, h, km), a0));
      h = v128.load(kd, 16);
      if (check) hx = i16x8.max_u(hx, v128.and(h, am));
      a1 = fma(v128.load(xd, 48), wOdd(f16, h, km), fma(v128.load(xd, 32), wEven(f16, h, km), a1));
      h = v128.load(kd, 32);
      if (check) hx = i16x8.max_u(hx, v128.and(h, am));
      a2 = fma(v128.load(xd, 80), wOdd(f16, h, km), fma(v128.load(xd, 64), wEven(f16, h, km), a2));
      h = v128.load(kd, 48);
      if (check) hx = i16x8.max_u(hx, v128.and(h, am));
      a3 = fma(v128.load(xd, 112), wOdd(f16, h, km), fma(v128.load(xd, 96), wEven(f16, h, km), a3));
    }
    for (; d < D8; d += 8) {
      const xd = xs + (<usize>d << 2);
      const h = v128.load(kr + (<usize>d << 1));
      if (check) hx = i16x8.max_u(hx, v128.and(h, am));
      a0 = fma(v128.load(xd, 16), wOdd(f16, h, km), fma(v128.load(xd), wEven(f16, h, km), a0));
    }
    if (check && v128.any_true(i16x8.ge_u(hx, i16x8.splat(0x7c00)))) {
      matvecStrided(DT_F16, x, k, rowBytes, j, j + 1, D, out); // an inf/NaN half: the exact path for this key
      continue;
    }
    store<f32>(out + (<usize>j << 2), rowTail(f16 ? DT_F16 : DT_BF16, hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3))), x, kr, D8, D));
  }
}

// @ts-ignore: decorator
@inline function qkSeqHalf2(f16: bool, check: bool, x: usize, xs: usize, xb: usize, k: usize, rowBytes: usize, nk: i32, D: i32, out: usize, ob: usize, sink: usize): void {
  const km = f16 ? v128.load(F16_MASK) : v128.load(BF16_HI), am = v128.load(F16_MASK, 16);
  const D32 = D & ~31, D8 = D & ~7;
  const ys = xs + xb;
  for (let j = 0; j < nk; j++) {
    const kr = k + <usize>j * rowBytes;
    // Per row the 4 accumulators and the order of qkSeqHalf (one row), so each row's score is the
    // one-row path's bit for bit; stored to `sink` after each update (see qkSeqHalf: keeps TurboFan
    // from hoisting the block's loads and spilling the FMA chains).
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
    let hx = i16x8.splat(0);
    let d = 0;
    for (; d < D32; d += 32) {
      const off = <usize>d << 2, kd = kr + (<usize>d << 1);
      let h = v128.load(kd);
      if (check) hx = i16x8.max_u(hx, v128.and(h, am));
      let e = wEven(f16, h, km), q = wOdd(f16, h, km);
      a0 = fma(v128.load(xs + off, 16), q, fma(v128.load(xs + off), e, a0));
      b0 = fma(v128.load(ys + off, 16), q, fma(v128.load(ys + off), e, b0));
      v128.store(sink, a0);
      v128.store(sink, b0, 16);
      h = v128.load(kd, 16);
      if (check) hx = i16x8.max_u(hx, v128.and(h, am));
      e = wEven(f16, h, km);
      q = wOdd(f16, h, km);
      a1 = fma(v128.load(xs + off, 48), q, fma(v128.load(xs + off, 32), e, a1));
      b1 = fma(v128.load(ys + off, 48), q, fma(v128.load(ys + off, 32), e, b1));
      v128.store(sink, a1, 32);
      v128.store(sink, b1, 48);
      h = v128.load(kd, 32);
      if (check) hx = i16x8.max_u(hx, v128.and(h, am));
      e = wEven(f16, h, km);
      q = wOdd(f16, h, km);
      a2 = fma(v128.load(xs + off, 80), q, fma(v128.load(xs + off, 64), e, a2));
      b2 = fma(v128.load(ys + off, 80), q, fma(v128.load(ys + off, 64), e, b2));
      v128.store(sink, a2, 64);
      v128.store(sink, b2, 80);
      h = v128.load(kd, 48);
      if (check) hx = i16x8.max_u(hx, v128.and(h, am));
      e = wEven(f16, h, km);
      q = wOdd(f16, h, km);
      a3 = fma(v128.load(xs + off, 112), q, fma(v128.load(xs + off, 96), e, a3));
      b3 = fma(v128.load(ys + off, 112), q, fma(v128.load(ys + off, 96), e, b3));
      v128.store(sink, a3, 96);
      v128.store(sink, b3, 112);
    }
    for (; d < D8; d += 8) {
      const off = <usize>d << 2;
      const h = v128.load(kr + (<usize>d << 1));
      if (check) hx = i16x8.max_u(hx, v128.and(h, am));
      const e = wEven(f16, h, km), q = wOdd(f16, h, km);
      a0 = fma(v128.load(xs + off, 16), q, fma(v128.load(xs + off), e, a0));
      b0 = fma(v128.load(ys + off, 16), q, fma(v128.load(ys + off), e, b0));
    }
    const o = <usize>j << 2;
    if (check && v128.any_true(i16x8.ge_u(hx, i16x8.splat(0x7c00)))) {
      matvecStrided(DT_F16, x, k, rowBytes, j, j + 1, D, out); // an inf/NaN half: the exact path for this key
      matvecStrided(DT_F16, x + xb, k, rowBytes, j, j + 1, D, out + ob);
      continue;
    }
    const dt = f16 ? DT_F16 : DT_BF16;
    store<f32>(out + o, rowTail(dt, hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3))), x, kr, D8, D));
    store<f32>(out + ob + o, rowTail(dt, hsum(f32x4.add(f32x4.add(b0, b1), f32x4.add(b2, b3))), x + xb, kr, D8, D));
  }
}

/**
 * Widens n finite f16 halves (n % 8 == 0) at a and at b (K and V of a tile) to f32 h·2^-112 at da
 * and db in even/odd order (per 8 values: d = 0, 2, 4, 6, 1, 3, 5, 7): 5 integer ops per 8 values
 * where widenRow's finite path takes 8 (two 4-value loads, each extended, shifted, masked and
 * rebiased by a multiply). Exact for every finite half, subnormals included; an inf/NaN half comes
 * out as a wrong finite value. One 16-byte step of each run per iteration, so the two streams are
 * read at once: GQA K = 8 decode from DRAM 1.16-1.18x against one run after the other (session 11).
 */
export function widenEvenOddF16(a: usize, b: usize, n: i32, da: usize, db: usize): void {
  const km = v128.load(F16_MASK);
  const end = a + (<usize>n << 1);
  for (let at = a, bt = b, o = da, p = db; at < end; at += 16, bt += 16, o += 32, p += 32) {
    const h = v128.load(at), g = v128.load(bt);
    v128.store(o, hEven(h, km));
    v128.store(o, hOdd(h, km), 16);
    v128.store(p, hEven(g, km));
    v128.store(p, hOdd(g, km), 16);
  }
}

/** In place, n % 8 == 0: per 8 values, natural order d = 0..7 to even/odd order 0, 2, 4, 6, 1, 3, 5, 7. */
export function toEvenOdd(o: usize, n: i32): void {
  for (let at = o, end = o + (<usize>n << 2); at < end; at += 32) {
    const a = v128.load(at), b = v128.load(at, 16);
    v128.store(at, v128.shuffle<f32>(a, b, 0, 2, 4, 6));
    v128.store(at, v128.shuffle<f32>(a, b, 1, 3, 5, 7), 16);
  }
}

/** The inverse of toEvenOdd. */
export function fromEvenOdd(o: usize, n: i32): void {
  for (let at = o, end = o + (<usize>n << 2); at < end; at += 32) {
    const e = v128.load(at), d = v128.load(at, 16);
    v128.store(at, v128.shuffle<f32>(e, d, 0, 4, 1, 5));
    v128.store(at, v128.shuffle<f32>(e, d, 2, 6, 3, 7), 16);
  }
}

/** p[j] *= s for j < n (weights to and from the 2^112 scale of pvRowF16 and widenEvenOddF16's V). */
export function scaleRow(p: usize, n: i32, s: f32): void {
  const sv = f32x4.splat(s);
  const end4 = p + (<usize>(n & ~3) << 2), end = p + (<usize>n << 2);
  let at = p;
  for (; at < end4; at += 16) v128.store(at, f32x4.mul(v128.load(at), sv));
  for (; at < end; at += 4) store<f32>(at, load<f32>(at) * s);
}
