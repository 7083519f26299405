// SIMD building blocks shared by the attention and matmul kernels (AssemblyScript, f32x4).
// Everything here is @inline: the kernels see straight-line v128 code with no calls.
//
// dtype codes (match src/kernels/wasm.ts): 0 f32, 1 f16, 2 bf16, 3 int8 (KV cache), 4 Q8_0 (weights, q8.ts),
// 5..11 q4_0, q4_1, q5_0, q5_1, q4_K, q5_K, q6_K (weights, quants.ts).

export const DT_F32: i32 = 0;
export const DT_F16: i32 = 1;
export const DT_BF16: i32 = 2;
export const DT_I8: i32 = 3;
export const DT_Q8_0: i32 = 4;

/** a*b + c. The relaxed build (ASC_FEATURE_RELAXED_SIMD) emits f32x4.relaxed_madd, a fused FMA on x64. */
// @ts-ignore: decorator
@inline export function fma(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** Sum of the 4 lanes. */
// @ts-ignore: decorator
@inline export function hsum(v: v128): f32 {
  const s = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

/** Max of the 4 lanes. */
// @ts-ignore: decorator
@inline export function hmax(v: v128): f32 {
  const s = f32x4.max(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return max(f32x4.extract_lane(s, 0), f32x4.extract_lane(s, 1));
}

/**
 * 2^x for x <= 0 (softmax weights after subtracting the max), 4 lanes. Round-to-nearest splits
 * x = n + f with |f| <= 0.5; 2^f is a degree-6 Taylor polynomial (relative error ~1.2e-7) and 2^n
 * is built in the exponent bits. Lanes below -126 (including -inf from masking) give exactly 0.
 * NaN lanes give 0 too; a NaN score still poisons the row through its running max.
 */
// @ts-ignore: decorator
@inline export function exp2v(x: v128): v128 {
  const keep = f32x4.ge(x, f32x4.splat(-126.0));
  const xc = f32x4.max(x, f32x4.splat(-126.0));
  const n = f32x4.nearest(xc);
  const f = f32x4.sub(xc, n);
  let p = f32x4.splat(1.5403530393381606e-4);
  p = fma(p, f, f32x4.splat(1.3333558146428443e-3));
  p = fma(p, f, f32x4.splat(9.618129107628477e-3));
  p = fma(p, f, f32x4.splat(5.550410866482158e-2));
  p = fma(p, f, f32x4.splat(2.402265069591007e-1));
  p = fma(p, f, f32x4.splat(6.931471805599453e-1));
  p = fma(p, f, f32x4.splat(1.0));
  const e = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return v128.and(f32x4.mul(p, e), keep);
}

/** Scalar 2^x for x <= 0 through the vector path (same rounding as exp2v). */
// @ts-ignore: decorator
@inline export function exp2s(x: f32): f32 {
  return f32x4.extract_lane(exp2v(f32x4.splat(x)), 0);
}

/**
 * 2^112 (wMagic's value): a half's bits shifted into f32 position read as h·2^-112 (h2f, matvec.ts
 * hEven/hOdd), so the other factor of each product is scaled by this.
 */
export const POW2_112: f32 = 5.192296858534828e33;
export const POW2_M112: f32 = 1.925929944387236e-34; // 2^-112

// The widening constants, as v128.const immediates. V8 rematerialises such a constant at every
// use inside a loop (TurboFan hoists nothing out of loops); where a hot loop is short of registers
// that costs, and the constants come from static memory instead (matvec.ts F16_MASK). Loading
// these (and exp2's) that way measured no faster here.
// @ts-ignore: decorator
@inline export function wMagic(): v128 {
  return i32x4.splat(0x77800000); // 2^112
}
// @ts-ignore: decorator
@inline export function wBig(): v128 {
  return f32x4.splat(65536.0);
}
// @ts-ignore: decorator
@inline export function wExp(): v128 {
  return i32x4.splat(0x7f800000);
}
// @ts-ignore: decorator
@inline export function wOne(): v128 {
  return f32x4.splat(1.0);
}
// @ts-ignore: decorator
@inline export function wMask(): v128 {
  return i32x4.splat(0x8fffe000);
}

/**
 * 4 IEEE halves, sign-extended into i32 lanes (v128.load16x4_s), to f32 in 7 instructions.
 * x << 13 puts the exponent and mantissa at f32's bits 13..27 and copies of the sign at 28..31;
 * masking with 0x8fffe000 (km) keeps bit 31 and bits 13..27, which read as f32 are ±value × 2^-112
 * for normals and subnormals alike, so one multiply by 2^112 (mg) rebiases them. |result| >= 65536
 * (bg) means inf/NaN: those get an all-ones exponent (ex), keeping sign and payload.
 */
// @ts-ignore: decorator
@inline export function h2f(x: v128, mg: v128, km: v128, bg: v128, ex: v128): v128 {
  const f = f32x4.mul(v128.and(i32x4.shl(x, 13), km), mg);
  return v128.or(f, v128.and(f32x4.ge(f32x4.abs(f), bg), ex));
}

/**
 * One IEEE half (the low 16 bits of h) to f32 in general-purpose registers, exactly as h2f: the
 * scalar scales of the block types (q8.ts, quants.ts) need no vector constants held in xmm
 * registers across their loops (the batched Q8_0 loop spilled with them).
 */
// @ts-ignore: decorator
@inline export function h2fScalar(h: i32): f32 {
  const sign = <u32>(h & 0x8000) << 16, mag = <u32>(h & 0x7fff);
  if (mag >= 0x7c00) return reinterpret<f32>(sign | 0x7f800000 | ((mag & 0x3ff) << 13)); // inf/NaN, payload kept
  return reinterpret<f32>(sign | (mag << 13)) * POW2_112; // normals and subnormals exactly
}

/** The f16 at p as f32 (h2fScalar). */
// @ts-ignore: decorator
@inline export function loadF16(p: usize): f32 {
  return h2fScalar(<i32>load<u16>(p));
}

/** Loads 4 consecutive values of dtype dt at p and widens them to f32 (int8: times scale). */
// @ts-ignore: decorator
@inline export function load4(dt: i32, p: usize, scale: v128, mg: v128, km: v128, bg: v128, ex: v128): v128 {
  if (dt == DT_F32) return v128.load(p);
  if (dt == DT_F16) return h2f(v128.load16x4_s(p), mg, km, bg, ex);
  if (dt == DT_BF16) return i32x4.shl(v128.load16x4_u(p), 16);
  const b = i16x8.extend_low_i8x16_s(v128.load32_zero(p));
  return f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(b)), scale);
}

/** Bytes per element of dtype dt. */
// @ts-ignore: decorator
@inline export function elemBytes(dt: i32): usize {
  return dt == DT_F32 ? 4 : dt == DT_I8 ? 1 : 2;
}

/** One scalar value of dtype dt at p, as f32 (int8 not scaled). */
export function load1(dt: i32, p: usize): f32 {
  if (dt == DT_F32) return load<f32>(p);
  if (dt == DT_BF16) return reinterpret<f32>(<u32>load<u16>(p) << 16);
  if (dt == DT_I8) return <f32>load<i8>(p);
  return loadF16(p);
}

/**
 * widenRow for the 4 rows of one block of an f16 or bf16 (dt) w in the rows4 layout (matvec.ts
 * ROWS4; n % 8 == 0): row r to dst + r·np·4, zero-padded to np values, each row bit-identical to widenRow's.
 */
export function widenRows4(dt: i32, src: usize, n: i32, np: i32, dst: usize): void {
  if (dt == DT_BF16) {
    widenRows4BF16(src, n, np, dst);
    return;
  }
  const mg = wMagic(), km = wMask(), bg = wBig(), ex = wExp();
  const am = i32x4.splat(0x7fff);
  const rs = <usize>np << 2; // dst row stride
  let x0 = i32x4.splat(0), x1 = x0, x2 = x0, x3 = x0;
  // One pass over the block, in order: 4 values of each of the 4 rows per step.
  for (let c = 0; c < n; c += 4) {
    const s = src + (<usize>(c >> 3) << 6) + (<usize>(c & 4) << 1), o = dst + (<usize>c << 2);
    const h0 = v128.load16x4_s(s), h1 = v128.load16x4_s(s, 16), h2 = v128.load16x4_s(s, 32), h3 = v128.load16x4_s(s, 48);
    x0 = i32x4.max_s(x0, v128.and(h0, am));
    x1 = i32x4.max_s(x1, v128.and(h1, am));
    x2 = i32x4.max_s(x2, v128.and(h2, am));
    x3 = i32x4.max_s(x3, v128.and(h3, am));
    v128.store(o, f32x4.mul(v128.and(i32x4.shl(h0, 13), km), mg));
    v128.store(o + rs, f32x4.mul(v128.and(i32x4.shl(h1, 13), km), mg));
    v128.store(o + 2 * rs, f32x4.mul(v128.and(i32x4.shl(h2, 13), km), mg));
    v128.store(o + 3 * rs, f32x4.mul(v128.and(i32x4.shl(h3, 13), km), mg));
  }
  const big = i32x4.splat(0x7c00);
  for (let r = 0; r < 4; r++) {
    const o = dst + <usize>r * rs;
    const hx = r == 0 ? x0 : r == 1 ? x1 : r == 2 ? x2 : x3;
    if (v128.any_true(i32x4.ge_s(hx, big))) {
      // a row holding an inf/NaN half: redone on the exact h2f path, as widenRow does
      for (let c = 0; c < n; c += 4) v128.store(o + (<usize>c << 2), h2f(v128.load16x4_s(src + (<usize>r << 4) + (<usize>(c >> 3) << 6) + (<usize>(c & 4) << 1)), mg, km, bg, ex));
    }
    for (let c = n; c < np; c++) store<f32>(o + (<usize>c << 2), 0);
  }
}

function widenRows4BF16(src: usize, n: i32, np: i32, dst: usize): void {
  const rs = <usize>np << 2;
  for (let c = 0; c < n; c += 4) {
    const s = src + (<usize>(c >> 3) << 6) + (<usize>(c & 4) << 1), o = dst + (<usize>c << 2);
    v128.store(o, i32x4.shl(v128.load16x4_u(s), 16));
    v128.store(o + rs, i32x4.shl(v128.load16x4_u(s, 16), 16));
    v128.store(o + 2 * rs, i32x4.shl(v128.load16x4_u(s, 32), 16));
    v128.store(o + 3 * rs, i32x4.shl(v128.load16x4_u(s, 48), 16));
  }
  for (let r = 0; r < 4; r++) for (let c = n; c < np; c++) store<f32>(dst + <usize>r * rs + (<usize>c << 2), 0);
}

/**
 * widenRow of two bf16 runs of n values (n % 4 == 0), K and V of a tile: one 8-byte step of each
 * per iteration, so the two streams are read at once (as halves.ts widenEvenOddF16).
 */
export function widenBF16x2(a: usize, b: usize, n: i32, da: usize, db: usize): void {
  for (let c: usize = 0; c < (<usize>n << 1); c += 8) {
    v128.store(da + (c << 1), i32x4.shl(v128.load16x4_u(a + c), 16));
    v128.store(db + (c << 1), i32x4.shl(v128.load16x4_u(b + c), 16));
  }
}

/**
 * Widens one row of n values of dtype dt at src to f32 at dst, then zero-pads it to np values
 * (np a multiple of 4, so later dot products need no tail). int8 rows are multiplied by scale.
 * finite: the caller promises the f16 halves hold no inf/NaN (attention passes AttentionCall.kvFinite),
 * so the per-row check is skipped.
 */
export function widenRow(dt: i32, src: usize, n: i32, np: i32, dst: usize, scale: f32, finite: bool = false): void {
  const sv = f32x4.splat(scale);
  const mg = wMagic(), km = wMask(), bg = wBig(), ex = wExp();
  const eb = elemBytes(dt);
  const n4 = n & ~3;
  let c = 0;
  if (dt == DT_F32) {
    for (; c < n4; c += 4) v128.store(dst + (<usize>c << 2), v128.load(src + (<usize>c << 2)));
  } else if (dt == DT_F16 && finite) {
    // Shift, mask and rebias only (h2f without its inf/NaN fix-up): exact for every finite half.
    for (; c < n4; c += 4) v128.store(dst + (<usize>c << 2), f32x4.mul(v128.and(i32x4.shl(v128.load16x4_s(src + (<usize>c << 1)), 13), km), mg));
  } else if (dt == DT_F16) {
    // Finite halves need only the shift, mask and rebias of h2f; the row's largest |half| is
    // tracked on the way, and a row holding an inf/NaN half is redone on the exact h2f path.
    const am = i32x4.splat(0x7fff);
    let hx = i32x4.splat(0);
    for (; c < n4; c += 4) {
      const h = v128.load16x4_s(src + (<usize>c << 1));
      hx = i32x4.max_s(hx, v128.and(h, am));
      v128.store(dst + (<usize>c << 2), f32x4.mul(v128.and(i32x4.shl(h, 13), km), mg));
    }
    if (v128.any_true(i32x4.ge_s(hx, i32x4.splat(0x7c00)))) {
      for (c = 0; c < n4; c += 4) v128.store(dst + (<usize>c << 2), h2f(v128.load16x4_s(src + (<usize>c << 1)), mg, km, bg, ex));
    }
  } else if (dt == DT_BF16) {
    for (; c < n4; c += 4) v128.store(dst + (<usize>c << 2), i32x4.shl(v128.load16x4_u(src + (<usize>c << 1)), 16));
  } else {
    for (; c < n4; c += 4) v128.store(dst + (<usize>c << 2), load4(DT_I8, src + <usize>c, sv, mg, km, bg, ex));
  }
  for (; c < n; c++) {
    let v = load1(dt, src + <usize>c * eb);
    if (dt == DT_I8) v *= scale;
    store<f32>(dst + (<usize>c << 2), v);
  }
  for (; c < np; c++) store<f32>(dst + (<usize>c << 2), 0);
}
