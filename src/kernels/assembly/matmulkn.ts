// out[M, N] (+)= x · w[Kin, N] for the two layouts whose w is contiguous along N (AssemblyScript, f32x4):
//   nn  out[M, N] = x[M, Kin] · w[Kin, N]     x(m, k) at x + 4·(m·Kin + k)   (training's dx = dy · W)
//   tn  out[M, N] = x[Kin, M]ᵀ · w[Kin, N]    x(m, k) at x + 4·(k·M + m)     (training's dW += dyᵀ · x)
// Both are the same loop with different x strides, so no operand is ever transposed in memory.
//
// Legend: M output rows, N output columns, Kin reduction length, KC reduction chunk, MB × NB the
// outputs of one item.
// An item is (block of MB rows, block of NB columns); threads take items dynamically. Per KC chunk
// the item's w panel [KC, NB] is packed into per-thread scratch as 8-column strips [NB/8][KC][8]
// (and for tn the x panel as 4-row groups [MB/4][KC][4]): w rows sit N·4 bytes apart, often a
// multiple of 4 KiB, and unpacked they fall into a few L1 sets and evict each other. The register
// tile is 4 rows × 8 columns (8 f32x4 accumulators): per k, 2 vector loads of the w strip and 4
// scalar splats of x feed 8 multiply-adds, and no output is summed horizontally. Columns past the
// last full strip and rows past the last full group are read unpacked.
import { fma } from "./simd";
import * as L from "./layout";

const KC = 128; // reduction chunk; the host sizes the scratch with the same number (wasm.ts MATMUL_KN_KC)

// @ts-ignore: decorator
@inline function arg(ctl: usize, i: i32): u32 {
  return load<u32>(ctl + L.CTL_ARGS + (<usize>i << 2));
}

export function matmulKnItem(ctl: usize, item: i32, tid: i32): void {
  const x = <usize>arg(ctl, L.M_X), w = <usize>arg(ctl, L.M_W), out = <usize>arg(ctl, L.M_OUT);
  const M = <i32>arg(ctl, L.M_M), N = <i32>arg(ctl, L.M_N), Kin = <i32>arg(ctl, L.M_KIN);
  const MB = <i32>arg(ctl, L.M_MB), NB = <i32>arg(ctl, L.M_NB), NNB = <i32>arg(ctl, L.M_NNB);
  const tn = arg(ctl, L.M_LAYOUT) == L.LAYOUT_TN, acc = arg(ctl, L.M_ACC) != 0;
  const mb = item / NNB, nb = item % NNB;
  const m0 = mb * MB, m1 = min(M, m0 + MB), n0 = nb * NB, n1 = min(N, n0 + NB);
  const nm = m1 - m0, nn = n1 - n0;
  const wPack = <usize>arg(ctl, L.M_SCRATCH) + <usize>tid * <usize>arg(ctl, L.M_SCRATCH_STRIDE); // [NB/8][KC][8]
  const xPack = wPack + (<usize>KC * <usize>NB << 2); // tn: [MB/4][KC][4]
  // Byte strides of x along m and along k.
  const xsm: usize = tn ? 4 : <usize>Kin << 2, xsk: usize = tn ? <usize>M << 2 : 4;
  const ws = <usize>N << 2, os = <usize>N << 2;
  const o0 = out + <usize>m0 * os + (<usize>n0 << 2);
  for (let k0 = 0; k0 < Kin; k0 += KC) {
    const nk = min(KC, Kin - k0);
    const xk = x + <usize>m0 * xsm + <usize>k0 * xsk, wk = w + <usize>k0 * ws + (<usize>n0 << 2);
    packW(wk, ws, nn & ~7, nk, wPack);
    // The first chunk starts from 0, or from out when accumulating; later chunks add to out.
    const a = acc || k0 > 0;
    if (tn) {
      packX(xk, xsk, nm & ~3, nk, xPack);
      kBlock(xPack, 4, 16, <usize>nk << 4, xk, xsm, xsk, nm, wPack, wk, ws, nn, nk, o0, os, a);
    } else {
      kBlock(xk, xsm, 4, xsm << 2, xk, xsm, xsk, nm, wPack, wk, ws, nn, nk, o0, os, a);
    }
  }
}

/** Copies the full 8-column strips of w rows [nk, n8] (row stride ws bytes) to dst as [n8/8][nk][8]. */
function packW(w: usize, ws: usize, n8: i32, nk: i32, dst: usize): void {
  const strip = <usize>nk << 5;
  for (let k = 0; k < nk; k++) {
    const src = w + <usize>k * ws;
    let d = dst + (<usize>k << 5);
    for (let j = 0; j < n8; j += 8) {
      v128.store(d, v128.load(src + (<usize>j << 2)));
      v128.store(d, v128.load(src + (<usize>j << 2), 16), 16);
      d += strip;
    }
  }
}

/** Copies x(m, k) = x[k*xsk + 4m], m < m4 (a multiple of 4), k < nk, to dst as 4-row groups [m4/4][nk][4]. */
function packX(x: usize, xsk: usize, m4: i32, nk: i32, dst: usize): void {
  const group = <usize>nk << 4;
  for (let k = 0; k < nk; k++) {
    const src = x + <usize>k * xsk;
    let d = dst + (<usize>k << 4);
    for (let m = 0; m < m4; m += 4) {
      v128.store(d, v128.load(src + (<usize>m << 2)));
      d += group;
    }
  }
}

/**
 * out[i*so + 4j] (=, or += when acc) Σ_k x(i, k)·w(k, j), i < nm, j < nn, k < nk. Row group g of 4
 * reads x(4g + r, k) at gx + g*gs + r*gsm + k*gsk (packed or not); the remaining nm % 4 rows read
 * x(i, k) at x + i*sxm + k*sxk. Full 8-column strips read w from wPack [nn/8][nk][8], the rest
 * w(k, j) at w + k*sw + 4j. Inlined per layout so the strides are constants where they can be.
 */
// @ts-ignore: decorator
@inline function kBlock(gx: usize, gsm: usize, gsk: usize, gs: usize, x: usize, sxm: usize, sxk: usize, nm: i32,
  wPack: usize, w: usize, sw: usize, nn: i32, nk: i32, out: usize, so: usize, acc: bool): void {
  const n8 = nn & ~7, m4 = nm & ~3;
  const strip = <usize>nk << 5;
  for (let i = 0; i < m4; i += 4) {
    const xg = gx + <usize>(i >> 2) * gs, oi = out + <usize>i * so;
    let wp = wPack;
    for (let j = 0; j < n8; j += 8) {
      tile4x8(xg, gsm, gsk, wp, nk, oi + (<usize>j << 2), so, acc);
      wp += strip;
    }
    let j = n8;
    for (; j + 4 <= nn; j += 4) tile4x4(xg, gsm, gsk, w + (<usize>j << 2), sw, nk, oi + (<usize>j << 2), so, acc);
    for (let r = 0; r < 4; r++) kScalar(xg + <usize>r * gsm, gsk, w, sw, j, nn, nk, oi + <usize>r * so, acc);
  }
  for (let i = m4; i < nm; i++) {
    const xi = x + <usize>i * sxm, oi = out + <usize>i * so;
    let j = 0;
    for (; j + 4 <= nn; j += 4) {
      const o = oi + (<usize>j << 2);
      let c0 = acc ? v128.load(o) : f32x4.splat(0);
      let xp = xi, wp = w + (<usize>j << 2);
      for (let k = 0; k < nk; k++) {
        c0 = fma(v128.load32_splat(xp), v128.load(wp), c0);
        xp += sxk;
        wp += sw;
      }
      v128.store(o, c0);
    }
    kScalar(xi, sxk, w, sw, j, nn, nk, oi, acc);
  }
}

/** The 4 × 8 register tile over nk values of k; w is a packed strip (32 bytes per k). */
// @ts-ignore: decorator
@inline function tile4x8(x: usize, sxm: usize, sxk: usize, w: usize, nk: i32, o: usize, so: usize, acc: bool): void {
  const z = f32x4.splat(0);
  let c00 = acc ? v128.load(o) : z, c01 = acc ? v128.load(o, 16) : z;
  let c10 = acc ? v128.load(o + so) : z, c11 = acc ? v128.load(o + so, 16) : z;
  let c20 = acc ? v128.load(o + 2 * so) : z, c21 = acc ? v128.load(o + 2 * so, 16) : z;
  let c30 = acc ? v128.load(o + 3 * so) : z, c31 = acc ? v128.load(o + 3 * so, 16) : z;
  let xp = x, wp = w;
  const wEnd = w + (<usize>nk << 5);
  for (; wp < wEnd; wp += 32) {
    const w0 = v128.load(wp), w1 = v128.load(wp, 16);
    let a = v128.load32_splat(xp);
    c00 = fma(a, w0, c00);
    c01 = fma(a, w1, c01);
    a = v128.load32_splat(xp + sxm);
    c10 = fma(a, w0, c10);
    c11 = fma(a, w1, c11);
    a = v128.load32_splat(xp + 2 * sxm);
    c20 = fma(a, w0, c20);
    c21 = fma(a, w1, c21);
    a = v128.load32_splat(xp + 3 * sxm);
    c30 = fma(a, w0, c30);
    c31 = fma(a, w1, c31);
    xp += sxk;
  }
  v128.store(o, c00);
  v128.store(o, c01, 16);
  v128.store(o + so, c10);
  v128.store(o + so, c11, 16);
  v128.store(o + 2 * so, c20);
  v128.store(o + 2 * so, c21, 16);
  v128.store(o + 3 * so, c30);
  v128.store(o + 3 * so, c31, 16);
}

/** 4 rows × 4 columns over nk values of k, w unpacked at row stride sw. */
// @ts-ignore: decorator
@inline function tile4x4(x: usize, sxm: usize, sxk: usize, w: usize, sw: usize, nk: i32, o: usize, so: usize, acc: bool): void {
  const z = f32x4.splat(0);
  let c0 = acc ? v128.load(o) : z, c1 = acc ? v128.load(o + so) : z;
  let c2 = acc ? v128.load(o + 2 * so) : z, c3 = acc ? v128.load(o + 3 * so) : z;
  let xp = x, wp = w;
  for (let k = 0; k < nk; k++) {
    const w0 = v128.load(wp);
    c0 = fma(v128.load32_splat(xp), w0, c0);
    c1 = fma(v128.load32_splat(xp + sxm), w0, c1);
    c2 = fma(v128.load32_splat(xp + 2 * sxm), w0, c2);
    c3 = fma(v128.load32_splat(xp + 3 * sxm), w0, c3);
    xp += sxk;
    wp += sw;
  }
  v128.store(o, c0);
  v128.store(o + so, c1);
  v128.store(o + 2 * so, c2);
  v128.store(o + 3 * so, c3);
}

/** Columns j0 <= j < nn of one output row, one at a time (the < 4 columns a vector tile leaves). */
function kScalar(x: usize, sxk: usize, w: usize, sw: usize, j0: i32, nn: i32, nk: i32, out: usize, acc: bool): void {
  for (let j = j0; j < nn; j++) {
    const o = out + (<usize>j << 2);
    let s: f32 = acc ? load<f32>(o) : 0;
    let xp = x, wp = w + (<usize>j << 2);
    for (let k = 0; k < nk; k++) {
      s += load<f32>(xp) * load<f32>(wp);
      xp += sxk;
      wp += sw;
    }
    store<f32>(o, s);
  }
}
