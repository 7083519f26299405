// P·V over a tile of f16 or bf16 V rows, widened in registers (AssemblyScript, f32x4): the decode
// shape with few query rows per KV head (MHA, G = 2), where widening the tile into scratch first
// cost more than the memory it reads (attention.ts, attnTileHalf).
//
// Legend: nk keys of the tile, Dp values per row (Dp % 8 == 0).
//
// One v128 load holds 8 halves; read as 4 i32 lanes, the even halves (d = 0, 2, 4, 6) and the odd
// halves (d = 1, 3, 5, 7) widen with two or three integer ops and no shuffles (matvec.ts hEven,
// hOdd). So output rows here are in even/odd order: per 8 values, d = 0, 2, 4, 6, 1, 3, 5, 7
// (toEvenOdd / fromEvenOdd convert in place).
import { fma } from "./simd";
import { hEven, hOdd, F16_MASK } from "./matvec";

// bf16: the high half of each i32 lane is already an f32 (odd); the low half shifted up (even).
const BF16_HI = memory.data<u32>([0xffff0000, 0xffff0000, 0xffff0000, 0xffff0000], 16);

// @ts-ignore: decorator
@inline function wEven(f16: bool, h: v128, km: v128): v128 {
  return f16 ? hEven(h, km) : i32x4.shl(h, 16);
}
// @ts-ignore: decorator
@inline function wOdd(f16: bool, h: v128, km: v128): v128 {
  return f16 ? hOdd(h, km) : v128.and(h, km);
}

/**
 * o = o·alpha + Σ_j p[j]·v_j over j < nk for one output row o (f32 [Dp], even/odd order), V rows of
 * Dp halves at byte stride vs. f16: the halves are read as h·2^-112 (exact for every finite half,
 * subnormals included), so p must hold the weights times 2^112 and every product is the exact
 * p·v; returns true if a half of the tile is inf/NaN (o is then wrong and the caller redoes the
 * tile on the exact path). bf16 widening is exact for every value and returns false.
 * 8 accumulators (32 values of o) stay in registers while the nk keys stream by.
 */
export function pvRowF16(p: usize, v: usize, vs: usize, nk: i32, Dp: i32, o: usize, alpha: f32): bool {
  return pvRowHalf(true, true, p, v, vs, nk, Dp, o, alpha);
}
/** pvRowF16 without the inf/NaN check, for rows the caller promised finite (AttentionCall.kvFinite). */
export function pvRowF16Finite(p: usize, v: usize, vs: usize, nk: i32, Dp: i32, o: usize, alpha: f32): void {
  pvRowHalf(true, false, p, v, vs, nk, Dp, o, alpha);
}
export function pvRowBF16(p: usize, v: usize, vs: usize, nk: i32, Dp: i32, o: usize, alpha: f32): bool {
  return pvRowHalf(false, false, p, v, vs, nk, Dp, o, alpha);
}

// @ts-ignore: decorator
@inline function pvRowHalf(f16: bool, check: bool, p: usize, v: usize, vs: usize, nk: i32, Dp: i32, o: usize, alpha: f32): bool {
  const km = f16 ? v128.load(F16_MASK) : v128.load(BF16_HI), am = v128.load(F16_MASK, 16);
  const al = f32x4.splat(alpha);
  let hx = i16x8.splat(0);
  const hbytes = <usize>Dp << 1;
  let d: usize = 0; // byte offset in a V row; the matching o offset is 2d
  for (; d + 64 <= hbytes; d += 64) {
    const od = o + (d << 1);
    let c0 = f32x4.mul(v128.load(od), al), c1 = f32x4.mul(v128.load(od, 16), al);
    let c2 = f32x4.mul(v128.load(od, 32), al), c3 = f32x4.mul(v128.load(od, 48), al);
    let c4 = f32x4.mul(v128.load(od, 64), al), c5 = f32x4.mul(v128.load(od, 80), al);
    let c6 = f32x4.mul(v128.load(od, 96), al), c7 = f32x4.mul(v128.load(od, 112), al);
    let vr = v + d;
    for (let j = 0; j < nk; j++) {
      const w = v128.load32_splat(p + (<usize>j << 2));
      let h = v128.load(vr);
      if (check) hx = i16x8.max_u(hx, v128.and(h, am));
      c0 = fma(w, wEven(f16, h, km), c0);
      c1 = fma(w, wOdd(f16, h, km), c1);
      h = v128.load(vr, 16);
      if (check) hx = i16x8.max_u(hx, v128.and(h, am));
      c2 = fma(w, wEven(f16, h, km), c2);
      c3 = fma(w, wOdd(f16, h, km), c3);
      h = v128.load(vr, 32);
      if (check) hx = i16x8.max_u(hx, v128.and(h, am));
      c4 = fma(w, wEven(f16, h, km), c4);
      c5 = fma(w, wOdd(f16, h, km), c5);
      h = v128.load(vr, 48);
      if (check) hx = i16x8.max_u(hx, v128.and(h, am));
      c6 = fma(w, wEven(f16, h, km), c6);
      c7 = fma(w, wOdd(f16, h, km), c7);
      vr += vs;
    }
    v128.store(od, c0);
    v128.store(od, c1, 16);
    v128.store(od, c2, 32);
    v128.store(od, c3, 48);
    v128.store(od, c4, 64);
    v128.store(od, c5, 80);
    v128.store(od, c6, 96);
    v128.store(od, c7, 112);
  }
  for (; d < hbytes; d += 16) {
    const od = o + (d << 1);
    let c0 = f32x4.mul(v128.load(od), al), c1 = f32x4.mul(v128.load(od, 16), al);
    let vr = v + d;
    for (let j = 0; j < nk; j++) {
      const w = v128.load32_splat(p + (<usize>j << 2));
      const h = v128.load(vr);
      if (check) hx = i16x8.max_u(hx, v128.and(h, am));
      c0 = fma(w, wEven(f16, h, km), c0);
      c1 = fma(w, wOdd(f16, h, km), c1);
      vr += vs;
    }
    v128.store(od, c0);
    v128.store(od, c1, 16);
  }
  return check && v128.any_true(i16x8.ge_u(hx, i16x8.splat(0x7c00)));
}

/**
 * Widens n finite f16 halves (n % 8 == 0) at src to f32 h·2^-112 at dst in even/odd order (per 8
 * values: d = 0, 2, 4, 6, 1, 3, 5, 7): 5 integer ops per 8 values where widenRow's finite path
 * takes 8 (two 4-value loads, each extended, shifted, masked and rebiased by a multiply). Exact for
 * every finite half, subnormals included; an inf/NaN half comes out as a wrong finite value.
 */
export function widenEvenOddF16(src: usize, n: i32, dst: usize): void {
  const km = v128.load(F16_MASK);
  const end = src + (<usize>n << 1);
  for (let at = src, o = dst; at < end; at += 16, o += 32) {
    const h = v128.load(at);
    v128.store(o, hEven(h, km));
    v128.store(o, hOdd(h, km), 16);
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
