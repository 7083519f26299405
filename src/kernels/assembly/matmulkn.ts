// out[M, N] (+)= x · w[Kin, N] for the two layouts whose w is contiguous along N (AssemblyScript, f32x4):
//   nn  out[M, N] = x[M, Kin] · w[Kin, N]     x(m, k) at x + 4·(m·Kin + k)   (training's dx = dy · W)
//   tn  out[M, N] = x[Kin, M]ᵀ · w[Kin, N]    x(m, k) at x + 4·(k·M + m)     (training's dW += dyᵀ · x)
// Both are the same loop with different x strides, so no operand is ever transposed in memory.
//
// Legend: M output rows, N output columns, Kin reduction length, KC reduction chunk.
// An item is (block of MB rows, block of NB columns); threads take items dynamically. Per KC chunk
// of the reduction, the item's w panel [KC, NB] (32 KiB) stays in L1 while every 4-row block of x
// passes over it. The register tile is 4 rows × 8 columns (8 f32x4 accumulators): per k, 2 vector
// loads of the w row and 4 scalar splats of x feed 8 multiply-adds, and the output is never summed
// horizontally.
import { fma } from "./simd";
import * as L from "./layout";

const KC = 128;

// @ts-ignore: decorator
@inline function arg(ctl: usize, i: i32): u32 {
  return load<u32>(ctl + L.CTL_ARGS + (<usize>i << 2));
}

export function matmulKnItem(ctl: usize, item: i32): void {
  const x = <usize>arg(ctl, L.M_X), w = <usize>arg(ctl, L.M_W), out = <usize>arg(ctl, L.M_OUT);
  const M = <i32>arg(ctl, L.M_M), N = <i32>arg(ctl, L.M_N), Kin = <i32>arg(ctl, L.M_KIN);
  const MB = <i32>arg(ctl, L.M_MB), NB = <i32>arg(ctl, L.M_NB), NNB = <i32>arg(ctl, L.M_NNB);
  const tn = arg(ctl, L.M_LAYOUT) == L.LAYOUT_TN, acc = arg(ctl, L.M_ACC) != 0;
  const mb = item / NNB, nb = item % NNB;
  const m0 = mb * MB, m1 = min(M, m0 + MB), n0 = nb * NB, n1 = min(N, n0 + NB);
  // Byte strides of x along m and along k.
  const xsm: usize = tn ? 4 : <usize>Kin << 2, xsk: usize = tn ? <usize>M << 2 : 4;
  const ws = <usize>N << 2, os = <usize>N << 2;
  const o0 = out + <usize>m0 * os + (<usize>n0 << 2);
  for (let k0 = 0; k0 < Kin; k0 += KC) {
    const nk = min(KC, Kin - k0);
    const xk = x + <usize>m0 * xsm + <usize>k0 * xsk, wk = w + <usize>k0 * ws + (<usize>n0 << 2);
    // The first chunk starts from 0, or from out when accumulating; later chunks add to out.
    if (tn) kTile(xk, 4, xsk, m1 - m0, wk, ws, n1 - n0, nk, o0, os, acc || k0 > 0);
    else kTile(xk, xsm, 4, m1 - m0, wk, ws, n1 - n0, nk, o0, os, acc || k0 > 0);
  }
}

/**
 * out[i*so + 4j] (=, or += when acc) Σ_k x(i, k)·w[k*sw + 4j], i < nm, j < nn, k < nk, where
 * x(i, k) is the f32 at x + i*sxm + k*sxk. Inlined twice so each layout's x strides are constants
 * where they can be (tn: sxm = 4, nn: sxk = 4).
 */
// @ts-ignore: decorator
@inline function kTile(x: usize, sxm: usize, sxk: usize, nm: i32, w: usize, sw: usize, nn: i32, nk: i32, out: usize, so: usize, acc: bool): void {
  let i = 0;
  for (; i + 4 <= nm; i += 4) {
    const xi = x + <usize>i * sxm, oi = out + <usize>i * so;
    let j = 0;
    for (; j + 8 <= nn; j += 8) {
      const o = oi + (<usize>j << 2);
      const z = f32x4.splat(0);
      let c00 = acc ? v128.load(o) : z, c01 = acc ? v128.load(o, 16) : z;
      let c10 = acc ? v128.load(o + so) : z, c11 = acc ? v128.load(o + so, 16) : z;
      let c20 = acc ? v128.load(o + 2 * so) : z, c21 = acc ? v128.load(o + 2 * so, 16) : z;
      let c30 = acc ? v128.load(o + 3 * so) : z, c31 = acc ? v128.load(o + 3 * so, 16) : z;
      let xp = xi, wp = w + (<usize>j << 2);
      for (let k = 0; k < nk; k++) {
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
        wp += sw;
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
    for (; j + 4 <= nn; j += 4) {
      const o = oi + (<usize>j << 2);
      const z = f32x4.splat(0);
      let c0 = acc ? v128.load(o) : z, c1 = acc ? v128.load(o + so) : z;
      let c2 = acc ? v128.load(o + 2 * so) : z, c3 = acc ? v128.load(o + 3 * so) : z;
      let xp = xi, wp = w + (<usize>j << 2);
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
    for (let r = 0; r < 4; r++) kScalar(xi + <usize>r * sxm, sxk, w, sw, j, nn, nk, oi + <usize>r * so, acc);
  }
  for (; i < nm; i++) {
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
