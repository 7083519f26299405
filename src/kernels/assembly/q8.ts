// Q8_0 weights (GGML's 8-bit block format), read in place (AssemblyScript, f32x4).
// A row of Kin values (Kin % 32 == 0) is Kin/32 blocks of 34 bytes: an f16 scale d, then 32 int8
// q; value = d·q. Decode (M < 4) reads each block once: the 32 int8 are widened in registers and
// multiplied with x in four accumulators, and the block's sum is scaled by d once; with 2 or 3 rows
// of x (batched decode) the block is widened once for all of them. Prefill
// dequantizes rows into the thread's scratch (dequantRow) and runs the f32 tiles.
import { fma, hsum, loadF16 } from "./simd";

export const Q8_BLOCK: i32 = 32; // values per block
export const Q8_BLOCK_BYTES: usize = 34;

// Block scales are read with simd.ts loadF16 (general-purpose registers): with the vector h2f and its
// 4 constants the batched loop spilled; Q8_0 decode matvec 1.25-1.28x (M = 1) and 1.16-1.21x (M = 2),
// bench/matvec.ts --dtypes q8_0 --rows 1|2 --baseline, AMD EPYC Zen 5, 2026-12-07.

/** int8 lanes 0..3 / 4..7 of an i16x8 (already widened from i8) as f32x4. */
// @ts-ignore: decorator
@inline function lo4(v: v128): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(v));
}
// @ts-ignore: decorator
@inline function hi4(v: v128): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(v));
}

/**
 * x (32 values at xp) · the 32 widened int8 of one block (a, c, e, g: four i16x8), unscaled, as a
 * 4-lane partial sum. matvecQ8 and matvecQ8Rows both use it, so a batched row sums exactly like a
 * single one.
 */
// @ts-ignore: decorator
@inline function blockDot(xp: usize, a: v128, c: v128, e: v128, g: v128): v128 {
  let s0 = f32x4.mul(v128.load(xp), lo4(a));
  let s1 = f32x4.mul(v128.load(xp, 16), hi4(a));
  let s2 = f32x4.mul(v128.load(xp, 32), lo4(c));
  let s3 = f32x4.mul(v128.load(xp, 48), hi4(c));
  s0 = fma(v128.load(xp, 64), lo4(e), s0);
  s1 = fma(v128.load(xp, 80), hi4(e), s1);
  s2 = fma(v128.load(xp, 96), lo4(g), s2);
  s3 = fma(v128.load(xp, 112), hi4(g), s3);
  return f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3));
}

/** out[n] = x · w_n for n0 <= n < n1; w rows are Q8_0 blocks. */
export function matvecQ8(x: usize, w: usize, n0: i32, n1: i32, Kin: i32, out: usize): void {
  const nb = Kin / Q8_BLOCK;
  const rowBytes = <usize>nb * Q8_BLOCK_BYTES;
  for (let n = n0; n < n1; n++) {
    let b = w + <usize>n * rowBytes;
    let sum = f32x4.splat(0);
    let xp = x;
    for (let j = 0; j < nb; j++) {
      const q0 = v128.load(b, 2), q1 = v128.load(b, 18);
      const a = i16x8.extend_low_i8x16_s(q0), c = i16x8.extend_high_i8x16_s(q0);
      const e = i16x8.extend_low_i8x16_s(q1), g = i16x8.extend_high_i8x16_s(q1);
      sum = fma(blockDot(xp, a, c, e, g), f32x4.splat(loadF16(b)), sum);
      b += Q8_BLOCK_BYTES;
      xp += 128;
    }
    store<f32>(out + (<usize>n << 2), hsum(sum));
  }
}

/**
 * matvecQ8 for 2 or 3 rows of x (x0.., out rows o0..): each block is loaded, widened to i16 and its
 * scale decoded once for all rows; per row the sums are matvecQ8's, bit for bit.
 */
export function matvecQ8x2(x0: usize, x1: usize, o0: usize, o1: usize, w: usize, n0: i32, n1: i32, Kin: i32): void {
  matvecQ8Rows(2, x0, x1, 0, o0, o1, 0, w, n0, n1, Kin);
}
export function matvecQ8x3(x0: usize, x1: usize, x2: usize, o0: usize, o1: usize, o2: usize, w: usize, n0: i32, n1: i32, Kin: i32): void {
  matvecQ8Rows(3, x0, x1, x2, o0, o1, o2, w, n0, n1, Kin);
}

// @ts-ignore: decorator
@inline function matvecQ8Rows(R: i32, x0: usize, x1: usize, x2: usize, o0: usize, o1: usize, o2: usize, w: usize, n0: i32, n1: i32, Kin: i32): void {
  const nb = Kin / Q8_BLOCK;
  const rowBytes = <usize>nb * Q8_BLOCK_BYTES;
  for (let n = n0; n < n1; n++) {
    let b = w + <usize>n * rowBytes;
    let sum0 = f32x4.splat(0), sum1 = f32x4.splat(0), sum2 = f32x4.splat(0);
    let xo: usize = 0;
    for (let j = 0; j < nb; j++) {
      const q0 = v128.load(b, 2), q1 = v128.load(b, 18);
      const a = i16x8.extend_low_i8x16_s(q0), c = i16x8.extend_high_i8x16_s(q0);
      const e = i16x8.extend_low_i8x16_s(q1), g = i16x8.extend_high_i8x16_s(q1);
      const d = f32x4.splat(loadF16(b));
      sum0 = fma(blockDot(x0 + xo, a, c, e, g), d, sum0);
      sum1 = fma(blockDot(x1 + xo, a, c, e, g), d, sum1);
      if (R > 2) sum2 = fma(blockDot(x2 + xo, a, c, e, g), d, sum2);
      b += Q8_BLOCK_BYTES;
      xo += 128;
    }
    const o = <usize>n << 2;
    store<f32>(o0 + o, hsum(sum0));
    store<f32>(o1 + o, hsum(sum1));
    if (R > 2) store<f32>(o2 + o, hsum(sum2));
  }
}

/** Dequantizes one row of Kin values (Kin/32 blocks at src) to f32 at dst. */
export function dequantRow(src: usize, Kin: i32, dst: usize): void {
  let b = src, o = dst;
  for (let j = 0; j < Kin / Q8_BLOCK; j++) {
    const d = f32x4.splat(loadF16(b));
    const q0 = v128.load(b, 2), q1 = v128.load(b, 18);
    const a = i16x8.extend_low_i8x16_s(q0), c = i16x8.extend_high_i8x16_s(q0);
    const e = i16x8.extend_low_i8x16_s(q1), g = i16x8.extend_high_i8x16_s(q1);
    v128.store(o, f32x4.mul(lo4(a), d));
    v128.store(o, f32x4.mul(hi4(a), d), 16);
    v128.store(o, f32x4.mul(lo4(c), d), 32);
    v128.store(o, f32x4.mul(hi4(c), d), 48);
    v128.store(o, f32x4.mul(lo4(e), d), 64);
    v128.store(o, f32x4.mul(hi4(e), d), 80);
    v128.store(o, f32x4.mul(lo4(g), d), 96);
    v128.store(o, f32x4.mul(hi4(g), d), 112);
    b += Q8_BLOCK_BYTES;
    o += 128;
  }
}
