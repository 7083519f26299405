// The decoder's row steps between the matmuls (AssemblyScript, f32x4 and f64x2), so that prefill
// does not spend its time in TypeScript on the host: RMSNorm and LayerNorm (optionally after the
// residual add), RoPE, and the KV cache's f32 -> f16/bf16 narrowing. src/models/blocks.ts and
// src/dtypes/codecs.ts are the specification; test/kernels-rows.test.ts holds these to them.
//
// Legend: n rows of width C; heads × D per token for RoPE (half = D/2); R rows per KV head.
// Arguments use the TR_ words of layout.ts (op, n, C, chunk, pointers, ints); the norms' eps is a
// float64 at TR_F0 (words 16-17), as the TypeScript norms compute in float64. An item is `chunk` rows.
//
// Numerics. The norms sum in float64 like the reference (in two f64x2 lanes instead of one running
// sum: the sums differ in the last bits of a double, far below the float32 result's half-ulp) and
// compute (x·r)·w in float64 before rounding once, as the reference does. RoPE computes
// a·cos − b·sin in float64 (both products exact) and rounds once: bit-identical to the reference.
// The narrowing is round-to-nearest-even, bit-identical to codecs.ts f32ToF16 / f32ToBf16,
// including subnormals, overflow to inf, and NaN (f16 0x7e00 | sign; bf16 quieted).
import * as L from "./layout";

export const ROW_RMS = 0; // P0 out, P1 x, P2 w, P3 residual or 0, I0 plusOne; eps f64
export const ROW_LAYER = 1; // P0 out, P1 x, P2 w, P3 residual or 0, P4 b; eps f64
export const ROW_ROPE = 2; // P0 x [n, heads, D], P1 cos [·, half], P2 sin, P3 pos i32 [n]; I0 heads, I1 D
export const ROW_NARROW = 3; // see narrow()

// @ts-ignore: decorator
@inline function ptr(ctl: usize, i: i32): usize {
  return <usize>load<u32>(ctl + L.CTL_ARGS + (<usize>(L.TR_P0 + i) << 2));
}
// @ts-ignore: decorator
@inline function int(ctl: usize, i: i32): i32 {
  return load<i32>(ctl + L.CTL_ARGS + (<usize>(L.TR_I0 + i) << 2));
}
// @ts-ignore: decorator
@inline function word(ctl: usize, i: i32): i32 {
  return load<i32>(ctl + L.CTL_ARGS + (<usize>i << 2));
}

export function rowsItem(ctl: usize, item: i32): void {
  const op = word(ctl, L.TR_OP), n = word(ctl, L.TR_N), chunk = word(ctl, L.TR_CHUNK);
  const i0 = item * chunk, i1 = min(n, i0 + chunk);
  if (op == ROW_RMS || op == ROW_LAYER) norm(ctl, op, i0, i1);
  else if (op == ROW_ROPE) rope(ctl, i0, i1);
  else if (op == ROW_NARROW) narrow(ctl, i0, i1);
}

// @ts-ignore: decorator
@inline function hi2(v: v128): v128 {
  return i32x4.shuffle(v, v, 2, 3, 2, 3);
}

/** Two f64x2 (the low and high lanes of v) back to one f32x4, each lane rounded once. */
// @ts-ignore: decorator
@inline function demote4(lo: v128, hi: v128): v128 {
  return i32x4.shuffle(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
}

/**
 * Rows [i0, i1): if P3 != 0, x += residual (stored, rounded to f32); then RMSNorm
 * out = x / sqrt(mean(x²) + eps) · w (· (1 + w) with I0) or LayerNorm out = (x − μ)/sqrt(var + eps)·w + b.
 * out may be the residual (each row is read whole before it is written).
 */
function norm(ctl: usize, op: i32, i0: i32, i1: i32): void {
  const C = word(ctl, L.TR_C), out = ptr(ctl, 0), X = ptr(ctl, 1), W = ptr(ctl, 2), res = ptr(ctl, 3), B = ptr(ctl, 4);
  const plusOne = int(ctl, 0) != 0, layer = op == ROW_LAYER;
  const eps = load<f64>(ctl + L.CTL_ARGS + (<usize>L.TR_F0 << 2));
  const C4 = C & ~3;
  for (let n = i0; n < i1; n++) {
    const row = <usize>n * <usize>C << 2;
    const x = X + row, o = out + row;
    if (res) {
      const h = res + row;
      let c = 0;
      for (; c < C4; c += 4) v128.store(x + (<usize>c << 2), f32x4.add(v128.load(x + (<usize>c << 2)), v128.load(h + (<usize>c << 2))));
      for (; c < C; c++) store<f32>(x + (<usize>c << 2), load<f32>(x + (<usize>c << 2)) + load<f32>(h + (<usize>c << 2)));
    }
    let mu: f64 = 0;
    if (layer) mu = rowSum(x, C, 0, false) / <f64>C;
    const r = 1 / Math.sqrt(rowSum(x, C, mu, true) / <f64>C + eps);
    const rv = f64x2.splat(r), muv = f64x2.splat(mu), one = f64x2.splat(1);
    let c = 0;
    for (; c < C4; c += 4) {
      const q = <usize>c << 2;
      const v = v128.load(x + q), w = v128.load(W + q);
      let lo = f64x2.mul(f64x2.sub(f64x2.promote_low_f32x4(v), muv), rv);
      let hi = f64x2.mul(f64x2.sub(f64x2.promote_low_f32x4(hi2(v)), muv), rv);
      let wlo = f64x2.promote_low_f32x4(w), whi = f64x2.promote_low_f32x4(hi2(w));
      if (plusOne) {
        wlo = f64x2.add(one, wlo);
        whi = f64x2.add(one, whi);
      }
      lo = f64x2.mul(lo, wlo);
      hi = f64x2.mul(hi, whi);
      if (layer) {
        const b = v128.load(B + q);
        lo = f64x2.add(lo, f64x2.promote_low_f32x4(b));
        hi = f64x2.add(hi, f64x2.promote_low_f32x4(hi2(b)));
      }
      v128.store(o + q, demote4(lo, hi));
    }
    for (; c < C; c++) {
      const q = <usize>c << 2;
      const w = <f64>load<f32>(W + q);
      let y = ((<f64>load<f32>(x + q) - mu) * r) * (plusOne ? 1 + w : w);
      if (layer) y += <f64>load<f32>(B + q);
      store<f32>(o + q, <f32>y);
    }
  }
}

/** Σ (x − mu)² over one row in float64 when `square`, else Σ x. */
function rowSum(x: usize, C: i32, mu: f64, square: bool): f64 {
  const C4 = C & ~3, muv = f64x2.splat(mu);
  let a = f64x2.splat(0), b = f64x2.splat(0);
  let c = 0;
  for (; c < C4; c += 4) {
    const v = v128.load(x + (<usize>c << 2));
    const lo = f64x2.sub(f64x2.promote_low_f32x4(v), muv), hi = f64x2.sub(f64x2.promote_low_f32x4(hi2(v)), muv);
    a = f64x2.add(a, square ? f64x2.mul(lo, lo) : lo);
    b = f64x2.add(b, square ? f64x2.mul(hi, hi) : hi);
  }
  const s = f64x2.add(a, b);
  let sum = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
  for (; c < C; c++) {
    const d = <f64>load<f32>(x + (<usize>c << 2)) - mu;
    sum += square ? d * d : d;
  }
  return sum;
}

/** Rows (tokens) [i0, i1) of x [n, heads, D]: the pair (i, i + half) turns by the table's angle at pos[t]. */
function rope(ctl: usize, i0: i32, i1: i32): void {
  const X = ptr(ctl, 0), COS = ptr(ctl, 1), SIN = ptr(ctl, 2), POS = ptr(ctl, 3);
  const heads = int(ctl, 0), D = int(ctl, 1), half = D >> 1, half4 = half & ~3;
  const hb = <usize>half << 2;
  for (let t = i0; t < i1; t++) {
    const tab = <usize>load<i32>(POS + (<usize>t << 2)) * hb;
    const cs = COS + tab, sn = SIN + tab;
    for (let h = 0; h < heads; h++) {
      const a = X + ((<usize>t * <usize>heads + <usize>h) * <usize>D << 2), b = a + hb;
      let i = 0;
      for (; i < half4; i += 4) {
        const q = <usize>i << 2;
        const av = v128.load(a + q), bv = v128.load(b + q), cv = v128.load(cs + q), sv = v128.load(sn + q);
        const alo = f64x2.promote_low_f32x4(av), ahi = f64x2.promote_low_f32x4(hi2(av));
        const blo = f64x2.promote_low_f32x4(bv), bhi = f64x2.promote_low_f32x4(hi2(bv));
        const clo = f64x2.promote_low_f32x4(cv), chi = f64x2.promote_low_f32x4(hi2(cv));
        const slo = f64x2.promote_low_f32x4(sv), shi = f64x2.promote_low_f32x4(hi2(sv));
        v128.store(a + q, demote4(f64x2.sub(f64x2.mul(alo, clo), f64x2.mul(blo, slo)), f64x2.sub(f64x2.mul(ahi, chi), f64x2.mul(bhi, shi))));
        v128.store(b + q, demote4(f64x2.add(f64x2.mul(blo, clo), f64x2.mul(alo, slo)), f64x2.add(f64x2.mul(bhi, chi), f64x2.mul(ahi, shi))));
      }
      for (; i < half; i++) {
        const q = <usize>i << 2;
        const av = <f64>load<f32>(a + q), bv = <f64>load<f32>(b + q), c = <f64>load<f32>(cs + q), s = <f64>load<f32>(sn + q);
        store<f32>(a + q, <f32>(av * c - bv * s));
        store<f32>(b + q, <f32>(bv * c + av * s));
      }
    }
  }
}

/**
 * KV rows into the cache's storage dtype. Flat rows [i0, i1) of n = heads × R: row i is head
 * h = i / R, row r = i % R, read at P0 + r·I1 + h·I2 (K) and P2 + … (V), written at P1 + h·I3 + r·I4
 * (K) and P3 + … (V); C values per row; I0 = R, I5 = 1 for f16, 2 for bf16. An f16 row that stores
 * an inf or NaN sets CTL_RESULT to 1 (the cache's nonFinite flag).
 */
function narrow(ctl: usize, i0: i32, i1: i32): void {
  const R = int(ctl, 0), srcRow = <usize>int(ctl, 1), srcHead = <usize>int(ctl, 2), dstHead = <usize>int(ctl, 3), dstRow = <usize>int(ctl, 4);
  const bf = int(ctl, 5) == 2, C = word(ctl, L.TR_C);
  let special = i32x4.splat(0);
  for (let i = i0; i < i1; i++) {
    const h = <usize>(i / R), r = <usize>(i % R);
    const s = r * srcRow + h * srcHead, d = h * dstHead + r * dstRow;
    special = v128.or(special, narrowRow(ptr(ctl, 0) + s, ptr(ctl, 1) + d, C, bf));
    special = v128.or(special, narrowRow(ptr(ctl, 2) + s, ptr(ctl, 3) + d, C, bf));
  }
  if (v128.any_true(special)) {
    if (ASC_FEATURE_THREADS) atomic.store<i32>(ctl + L.CTL_RESULT, 1);
    else store<i32>(ctl + L.CTL_RESULT, 1);
  }
}

/** C f32 values at src to halves at dst; returns lanes set where an f16 result is inf or NaN. */
function narrowRow(src: usize, dst: usize, C: i32, bf: bool): v128 {
  let special = i32x4.splat(0);
  const inf = i32x4.splat(0x7c00);
  let c = 0;
  for (; c + 8 <= C; c += 8) {
    const a = v128.load(src + (<usize>c << 2)), b = v128.load(src + (<usize>c << 2), 16);
    const ha = bf ? bf16x4(a) : f16x4(a), hb = bf ? bf16x4(b) : f16x4(b);
    if (!bf) special = v128.or(special, v128.or(i32x4.eq(v128.and(ha, inf), inf), i32x4.eq(v128.and(hb, inf), inf)));
    v128.store(dst + (<usize>c << 1), i16x8.narrow_i32x4_u(ha, hb));
  }
  for (; c < C; c++) {
    const x = load<u32>(src + (<usize>c << 2));
    const hv = bf ? bf16x4(i32x4.splat(<i32>x)) : f16x4(i32x4.splat(<i32>x));
    if (!bf) special = v128.or(special, i32x4.eq(v128.and(hv, inf), inf));
    store<u16>(dst + (<usize>c << 1), <u16>i32x4.extract_lane(hv, 0));
  }
  return special;
}

/**
 * f32 bits -> f16 bits in the low 16 of each lane, round to nearest even (F. Giesen's
 * float_to_half_fast3_rtne): |x| >= 65536 or NaN saturate to inf / 0x7e00; below 2^-14 the FPU's own
 * rounding of |x| + 0.5 places the subnormal mantissa; otherwise the exponent is rebiased by an
 * integer add and 0xfff + (odd mantissa) rounds the 13 dropped bits.
 */
// @ts-ignore: decorator
@inline function f16x4(x: v128): v128 {
  const sign = v128.and(x, i32x4.splat(<i32>0x80000000));
  const a = v128.xor(x, sign);
  const big = i32x4.ge_s(a, i32x4.splat(0x47800000));
  const nan = i32x4.gt_s(a, i32x4.splat(0x7f800000));
  const special = v128.bitselect(i32x4.splat(0x7e00), i32x4.splat(0x7c00), nan);
  const small = i32x4.lt_s(a, i32x4.splat(0x38800000));
  const sub = i32x4.sub(f32x4.add(a, i32x4.splat(0x3f000000)), i32x4.splat(0x3f000000));
  const odd = v128.and(i32x4.shr_u(a, 13), i32x4.splat(1));
  const normal = i32x4.shr_u(i32x4.add(i32x4.add(a, i32x4.splat(<i32>0xc8000fff)), odd), 13);
  const h = v128.bitselect(sub, v128.bitselect(special, normal, big), small);
  return v128.or(h, i32x4.shr_u(sign, 16));
}

/** f32 bits -> bf16 bits in the low 16 of each lane, round to nearest even; NaN keeps its top bits, quieted. */
// @ts-ignore: decorator
@inline function bf16x4(x: v128): v128 {
  const nan = i32x4.gt_u(v128.and(x, i32x4.splat(0x7fffffff)), i32x4.splat(0x7f800000));
  const top = i32x4.shr_u(x, 16);
  const rounded = i32x4.shr_u(i32x4.add(i32x4.add(x, i32x4.splat(0x7fff)), v128.and(top, i32x4.splat(1))), 16);
  return v128.bitselect(v128.or(top, i32x4.splat(0x40)), rounded, nan);
}
