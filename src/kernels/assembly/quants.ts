// GGML's 4/5/6-bit weight blocks (q4_0, q4_1, q5_0, q5_1, q4_K, q5_K, q6_K), read in place
// (AssemblyScript, f32x4). Layouts and the exactness argument: src/dtypes/ggml_quants.ts, the
// specification these kernels must match bit for bit in their dequantized values.
//
// Legend: Kin values per w row (a multiple of the block: 32, or 256 for the k-quants), N rows of w,
// M < 4 rows of x in decode.
// Decode (M < 4): the nibble types (q4_0, q4_1, q4_K) dot the codes directly (a·Σx·q + b·Σx per
// 32-value sub-block, dotNibbleRow); the others dequantize each w row into the thread's scratch (Kin
// f32, L1-sized) and dot it with every x row by four f32x4 accumulators. w is read once, quantized. Prefill dequantizes NB rows into scratch and runs the f32 tiles
// (matmul.ts blockMatmul). Every value is computed in f32 in ggml's operation order: products of an
// f16 by small integers are exact, the one add/subtract rounds once, so the values equal ggml's.
import { fma, hsum, loadF16 } from "./simd";
import { seqDot } from "./matvec"; // x · the dequantized row (4 accumulators over 16-value steps)

export const DT_Q4_0: i32 = 5;
export const DT_Q4_1: i32 = 6;
export const DT_Q5_0: i32 = 7;
export const DT_Q5_1: i32 = 8;
export const DT_Q4_K: i32 = 9;
export const DT_Q5_K: i32 = 10;
export const DT_Q6_K: i32 = 11;

/** Values per block of a block type code. */
// @ts-ignore: decorator
@inline export function quantBlockValues(dt: i32): i32 {
  return dt >= DT_Q4_K ? 256 : 32;
}

/** Bytes per block of a block type code. */
// @ts-ignore: decorator
@inline export function quantBlockBytes(dt: i32): usize {
  if (dt == DT_Q4_0) return 18;
  if (dt == DT_Q4_1) return 20;
  if (dt == DT_Q5_0) return 22;
  if (dt == DT_Q5_1) return 24;
  if (dt == DT_Q4_K) return 144;
  if (dt == DT_Q5_K) return 176;
  return 210;
}

/** Bytes of one w row of Kin values. */
// @ts-ignore: decorator
@inline export function quantRowBytes(dt: i32, Kin: i32): usize {
  return <usize>(Kin / quantBlockValues(dt)) * quantBlockBytes(dt);
}

/**
 * 16 bytes at p: dst[j] = lo_j·sl + bl and (dst + hiOff)[j] = hi_j·sh + bh for j < 16, where lo/hi
 * are the low and high nibbles of byte j (hiOff in bytes). Products are exact; the add rounds once.
 */
// @ts-ignore: decorator
@inline function nibbles16(p: usize, dst: usize, sl: f32, bl: f32, sh: f32, bh: f32, hiOff: usize): void {
  const b = v128.load(p);
  const lo = v128.and(b, i8x16.splat(0x0f)), hi = i8x16.shr_u(b, 4);
  const s = f32x4.splat(sl), c = f32x4.splat(bl), s2 = f32x4.splat(sh), c2 = f32x4.splat(bh);
  const l0 = i16x8.extend_low_i8x16_u(lo), l1 = i16x8.extend_high_i8x16_u(lo);
  const h0 = i16x8.extend_low_i8x16_u(hi), h1 = i16x8.extend_high_i8x16_u(hi);
  v128.store(dst, f32x4.add(f32x4.mul(cvtLo(l0), s), c));
  v128.store(dst, f32x4.add(f32x4.mul(cvtHi(l0), s), c), 16);
  v128.store(dst, f32x4.add(f32x4.mul(cvtLo(l1), s), c), 32);
  v128.store(dst, f32x4.add(f32x4.mul(cvtHi(l1), s), c), 48);
  const dh = dst + hiOff;
  v128.store(dh, f32x4.add(f32x4.mul(cvtLo(h0), s2), c2));
  v128.store(dh, f32x4.add(f32x4.mul(cvtHi(h0), s2), c2), 16);
  v128.store(dh, f32x4.add(f32x4.mul(cvtLo(h1), s2), c2), 32);
  v128.store(dh, f32x4.add(f32x4.mul(cvtHi(h1), s2), c2), 48);
}

/** 6-bit scale (which = 0) or min (which = 1) of k-quant sub-block j from the 12 bytes at q. */
// @ts-ignore: decorator
@inline function scaleMin(q: usize, j: i32, which: i32): f32 {
  if (j < 4) return <f32>(load<u8>(q + <usize>(j + 4 * which)) & 63);
  if (which == 0) return <f32>((load<u8>(q + <usize>(j + 4)) & 0xf) | ((load<u8>(q + <usize>(j - 4)) >> 6) << 4));
  return <f32>((load<u8>(q + <usize>(j + 4)) >> 4) | ((load<u8>(q + <usize>j) >> 6) << 4));
}

/**
 * Dequantizes one w row (Kin values, Kin / QK blocks at src) to f32 at dst.
 * The nibble types use f32x4 (q·d + bias with exact products); the 5- and 6-bit types add their
 * high bits per value.
 */
export function dequantRowQuant(dt: i32, src: usize, Kin: i32, dst: usize): void {
  const QK = quantBlockValues(dt), BB = quantBlockBytes(dt);
  for (let b = 0; b < Kin / QK; b++) {
    const p = src + <usize>b * BB, o = dst + (<usize>(b * QK) << 2);
    if (dt == DT_Q4_0) {
      // (q - 8)·d = q·d + (-8·d): both products exact, one rounding in the add (= ggml's value).
      const d = loadF16(p);
      nibbles16(p + 2, o, d, -8 * d, d, -8 * d, 64);
    } else if (dt == DT_Q4_1) {
      const d = loadF16(p), m = loadF16(p + 2);
      nibbles16(p + 4, o, d, m, d, m, 64);
    } else if (dt == DT_Q5_0 || dt == DT_Q5_1) {
      const one = dt == DT_Q5_1;
      const d = loadF16(p), m: f32 = one ? loadF16(p + 2) : 0;
      const qhp = p + (one ? 4 : 2), qs = qhp + 4;
      const qh = load<u32>(qhp);
      for (let j = 0; j < 16; j++) {
        const byte = <u32>load<u8>(qs + <usize>j);
        const lo = <i32>((byte & 0xf) | (((qh >> <u32>j) & 1) << 4));
        const hi = <i32>((byte >> 4) | (((qh >> <u32>(j + 16)) & 1) << 4));
        store<f32>(o + (<usize>j << 2), one ? <f32>lo * d + m : <f32>(lo - 16) * d);
        store<f32>(o + (<usize>(j + 16) << 2), one ? <f32>hi * d + m : <f32>(hi - 16) * d);
      }
    } else if (dt == DT_Q4_K || dt == DT_Q5_K) {
      const five = dt == DT_Q5_K;
      const d = loadF16(p), dmin = loadF16(p + 2), sc = p + 4, qh = p + 16, qs = p + (five ? 48 : 16);
      for (let c = 0; c < 4; c++) {
        const d1 = d * scaleMin(sc, 2 * c, 0), m1 = dmin * scaleMin(sc, 2 * c, 1);
        const d2 = d * scaleMin(sc, 2 * c + 1, 0), m2 = dmin * scaleMin(sc, 2 * c + 1, 1);
        const oc = o + (<usize>(64 * c) << 2);
        if (!five) {
          // d1·q - m1 (ggml's order) = q·d1 + (-m1): exact product, one rounding. Bytes 32c..32c+31 hold
          // values 64c.. (low nibbles, sub-block 2c) and 64c+32.. (high nibbles, sub-block 2c+1).
          nibbles16(qs + <usize>(32 * c), oc, d1, -m1, d2, -m2, 128);
          nibbles16(qs + <usize>(32 * c + 16), oc + 64, d1, -m1, d2, -m2, 128);
        } else {
          for (let l = 0; l < 32; l++) {
            const byte = load<u8>(qs + <usize>(32 * c + l)), hb = load<u8>(qh + <usize>l);
            const q1 = (byte & 0xf) + (((hb >> <u8>(2 * c)) & 1) << 4), q2 = (byte >> 4) + (((hb >> <u8>(2 * c + 1)) & 1) << 4);
            store<f32>(oc + (<usize>l << 2), d1 * <f32>q1 - m1);
            store<f32>(oc + (<usize>(32 + l) << 2), d2 * <f32>q2 - m2);
          }
        }
      }
    } else {
      // q6_K: ql[128] | qh[64] | int8 scales[16] | f16 d
      const d = loadF16(p + 208);
      for (let h = 0; h < 2; h++) {
        const ql = p + <usize>(64 * h), qh = p + 128 + <usize>(32 * h), sc = p + 192 + <usize>(8 * h);
        const oh = o + (<usize>(128 * h) << 2);
        for (let l = 0; l < 32; l++) {
          const a = <i32>load<u8>(ql + <usize>l), b2 = <i32>load<u8>(ql + <usize>(32 + l)), hb = <i32>load<u8>(qh + <usize>l);
          const is = l >> 4;
          const q1 = ((a & 0xf) | ((hb & 3) << 4)) - 32;
          const q2 = ((b2 & 0xf) | (((hb >> 2) & 3) << 4)) - 32;
          const q3 = ((a >> 4) | (((hb >> 4) & 3) << 4)) - 32;
          const q4 = ((b2 >> 4) | (((hb >> 6) & 3) << 4)) - 32;
          store<f32>(oh + (<usize>l << 2), d * <f32>load<i8>(sc + <usize>is) * <f32>q1);
          store<f32>(oh + (<usize>(32 + l) << 2), d * <f32>load<i8>(sc + <usize>(is + 2)) * <f32>q2);
          store<f32>(oh + (<usize>(64 + l) << 2), d * <f32>load<i8>(sc + <usize>(is + 4)) * <f32>q3);
          store<f32>(oh + (<usize>(96 + l) << 2), d * <f32>load<i8>(sc + <usize>(is + 6)) * <f32>q4);
        }
      }
    }
  }
}


/**
 * i32 lanes of 4 u8 codes (already widened to i16x8: low or high half) as f32x4. The codes are
 * < 2^16, so the signed conversion is exact and equal to the unsigned one, which x64 has no
 * instruction for (V8 emits a multi-instruction sequence): 1.38-1.49x on the Q4_0/Q4_K decode
 * matvec (bench/matvec.ts --baseline, AMD EPYC Zen 5, 2026-12-07). Every code widening here uses it.
 */
// @ts-ignore: decorator
@inline function cvtLo(v: v128): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_u(v));
}
// @ts-ignore: decorator
@inline function cvtHi(v: v128): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_u(v));
}

/** s + x[0..16) · (16 u8 codes in q, lanes 0..15), as one f32x4 of partial sums. */
// @ts-ignore: decorator
@inline function dot16(x: usize, q: v128, s: v128): v128 {
  const a = i16x8.extend_low_i8x16_u(q), b = i16x8.extend_high_i8x16_u(q);
  s = fma(v128.load(x), cvtLo(a), s);
  s = fma(v128.load(x, 16), cvtHi(a), s);
  s = fma(v128.load(x, 32), cvtLo(b), s);
  return fma(v128.load(x, 48), cvtHi(b), s);
}

/**
 * x · w for one row of a nibble type (q4_0, q4_1, q4_K) without dequantizing: every 32-value
 * sub-block has w = a·q + b (q4_0: a = d, b = -8d; q4_1: a = d, b = m; q4_K: a = d·s, b = -dmin·m),
 * so its share is a·Σ x·q + b·Σ x, and Σ x per sub-block (xs, computed once per x row) serves every
 * w row, as llama.cpp's bsums do. Per value this is one widening and one multiply-add.
 */
function dotNibbleRow(dt: i32, x: usize, xs: usize, w: usize, Kin: i32): f32 {
  const BB = quantBlockBytes(dt), QK = quantBlockValues(dt);
  let acc = f32x4.splat(0);
  let accb: f32 = 0;
  for (let b = 0; b < Kin / QK; b++) {
    const p = w + <usize>b * BB, xb = x + (<usize>(b * QK) << 2), sb = xs + (<usize>(b * QK / 32) << 2);
    if (dt == DT_Q4_K) {
      const d = loadF16(p), dmin = loadF16(p + 2), sc = p + 4, qs = p + 16;
      for (let c = 0; c < 4; c++) {
        const q0 = v128.load(qs + <usize>(32 * c)), q1 = v128.load(qs + <usize>(32 * c + 16));
        const m4 = i8x16.splat(0x0f);
        const xc = xb + (<usize>(64 * c) << 2);
        let s1 = dot16(xc, v128.and(q0, m4), f32x4.splat(0));
        s1 = dot16(xc + 64, v128.and(q1, m4), s1);
        let s2 = dot16(xc + 128, i8x16.shr_u(q0, 4), f32x4.splat(0));
        s2 = dot16(xc + 192, i8x16.shr_u(q1, 4), s2);
        acc = fma(s1, f32x4.splat(d * scaleMin(sc, 2 * c, 0)), acc);
        acc = fma(s2, f32x4.splat(d * scaleMin(sc, 2 * c + 1, 0)), acc);
        accb -= dmin * scaleMin(sc, 2 * c, 1) * load<f32>(sb + (<usize>(2 * c) << 2)) + dmin * scaleMin(sc, 2 * c + 1, 1) * load<f32>(sb + (<usize>(2 * c + 1) << 2));
      }
    } else {
      const d = loadF16(p), q = v128.load(p + (dt == DT_Q4_1 ? 4 : 2));
      let s1 = dot16(xb, v128.and(q, i8x16.splat(0x0f)), f32x4.splat(0));
      s1 = dot16(xb + 64, i8x16.shr_u(q, 4), s1);
      acc = fma(s1, f32x4.splat(d), acc);
      accb += (dt == DT_Q4_1 ? loadF16(p + 2) : -8 * d) * load<f32>(sb);
    }
  }
  return hsum(acc) + accb;
}

/** xs[j] = Σ of x's 32-value block j (Kin / 32 sums). */
function blockSums(x: usize, Kin: i32, xs: usize): void {
  for (let j = 0; j < Kin / 32; j++) {
    const p = x + (<usize>(32 * j) << 2);
    let s = f32x4.add(f32x4.add(v128.load(p), v128.load(p, 16)), f32x4.add(v128.load(p, 32), v128.load(p, 48)));
    s = f32x4.add(s, f32x4.add(f32x4.add(v128.load(p, 64), v128.load(p, 80)), f32x4.add(v128.load(p, 96), v128.load(p, 112))));
    store<f32>(xs + (<usize>j << 2), hsum(s));
  }
}

/**
 * Decode: out[m, n] = x[m, :] · w_n for m0 <= m < m1 (< 4 rows), n0 <= n < n1. Each w row is
 * dequantized once into scratch (Kin f32) and dotted with every x row.
 */
export function matvecQuant(dt: i32, x: usize, m0: i32, m1: i32, w: usize, n0: i32, n1: i32, N: i32, Kin: i32, out: usize, scratch: usize): void {
  const rb = quantRowBytes(dt, Kin);
  if (dt == DT_Q4_0 || dt == DT_Q4_1 || dt == DT_Q4_K) {
    // Nibble types: no dequantized row; the scratch holds each x row's 32-block sums (m - m0 rows).
    const nsum = <usize>(Kin / 32) << 2;
    for (let m = m0; m < m1; m++) blockSums(x + (<usize>m * <usize>Kin << 2), Kin, scratch + <usize>(m - m0) * nsum);
    for (let n = n0; n < n1; n++) {
      for (let m = m0; m < m1; m++) {
        const v = dotNibbleRow(dt, x + (<usize>m * <usize>Kin << 2), scratch + <usize>(m - m0) * nsum, w + <usize>n * rb, Kin);
        store<f32>(out + ((<usize>m * <usize>N + <usize>n) << 2), v);
      }
    }
    return;
  }
  for (let n = n0; n < n1; n++) {
    dequantRowQuant(dt, w + <usize>n * rb, Kin, scratch);
    for (let m = m0; m < m1; m++) {
      store<f32>(out + ((<usize>m * <usize>N + <usize>n) << 2), seqDot(x + (<usize>m * <usize>Kin << 2), scratch, Kin));
    }
  }
}
