// out[M, N] = x[M, Kin] · w[N, Kin]ᵀ (+ bias[N]), the PyTorch Linear layout (AssemblyScript, f32x4).
//
// Legend: M rows of x (tokens), N output features (rows of w), Kin input features.
// An item is (block of MB rows of x, block of NB rows of w); threads take items dynamically.
// M < 4 (decode) is a matvec: bandwidth-bound, w streams once with 4 rows in flight and is widened
// in registers. M >= 4 (prefill, training) is compute-bound: f16/bf16 w rows are widened once per
// item into scratch, then 4×2 register tiles run over Kin in L1-sized chunks of KC values.
import { DT_F32, DT_F16, DT_BF16, fma, hsum, load1, load4, elemBytes, widenRow, wMagic, wMask, wBig, wExp, wOne } from "./simd";
import { dotTile } from "./tiles";
import * as L from "./layout";

const KC = 256; // Kin chunk: 4 x rows + NB w rows of KC f32 stay in L1

// @ts-ignore: decorator
@inline function arg(ctl: usize, i: i32): u32 {
  return load<u32>(ctl + L.CTL_ARGS + (<usize>i << 2));
}

export function matmulItem(ctl: usize, item: i32, tid: i32): void {
  const x = <usize>arg(ctl, L.M_X), w = <usize>arg(ctl, L.M_W), bias = <usize>arg(ctl, L.M_BIAS), out = <usize>arg(ctl, L.M_OUT);
  const M = <i32>arg(ctl, L.M_M), N = <i32>arg(ctl, L.M_N), Kin = <i32>arg(ctl, L.M_KIN), dt = <i32>arg(ctl, L.M_DTYPE);
  const MB = <i32>arg(ctl, L.M_MB), NB = <i32>arg(ctl, L.M_NB), NNB = <i32>arg(ctl, L.M_NNB);
  const mb = item / NNB, nb = item % NNB;
  const m0 = mb * MB, m1 = min(M, m0 + MB), n0 = nb * NB, n1 = min(N, n0 + NB);
  if (M < 4) {
    for (let m = m0; m < m1; m++) {
      const xr = x + (<usize>m * <usize>Kin << 2), or = out + (<usize>m * <usize>N << 2);
      if (dt == DT_F32) matvec(DT_F32, xr, w, n0, n1, Kin, or);
      else if (dt == DT_F16) matvec(DT_F16, xr, w, n0, n1, Kin, or);
      else matvec(DT_BF16, xr, w, n0, n1, Kin, or);
    }
  } else {
    const scratch = <usize>arg(ctl, L.M_SCRATCH) + <usize>tid * <usize>arg(ctl, L.M_SCRATCH_STRIDE);
    blockMatmul(x, w, out, m0, m1, n0, n1, N, Kin, dt, scratch);
  }
  if (bias) {
    for (let m = m0; m < m1; m++) {
      const or = out + (<usize>m * <usize>N << 2);
      for (let n = n0; n < n1; n++) store<f32>(or + (<usize>n << 2), load<f32>(or + (<usize>n << 2)) + load<f32>(bias + (<usize>n << 2)));
    }
  }
}

/** out[n] = x · w_n for n0 <= n < n1, reading w in its own dtype (inlined per dtype). */
// @ts-ignore: decorator
@inline function matvec(dt: i32, x: usize, w: usize, n0: i32, n1: i32, Kin: i32, out: usize): void {
  const eb = elemBytes(dt);
  const rowBytes = <usize>Kin * eb;
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
    let s0 = hsum(c0), s1 = hsum(c1), s2 = hsum(c2), s3 = hsum(c3);
    for (let d = K4; d < Kin; d++) {
      const xs = load<f32>(x + (<usize>d << 2));
      const off = <usize>d * eb;
      s0 += xs * load1(dt, w0 + off);
      s1 += xs * load1(dt, w1 + off);
      s2 += xs * load1(dt, w2 + off);
      s3 += xs * load1(dt, w3 + off);
    }
    const o = out + (<usize>n << 2);
    store<f32>(o, s0);
    store<f32>(o, s1, 4);
    store<f32>(o, s2, 8);
    store<f32>(o, s3, 12);
  }
  for (; n < n1; n++) {
    const w0 = w + <usize>n * rowBytes;
    let c0 = f32x4.splat(0);
    for (let d = 0; d < K4; d += 4) c0 = fma(v128.load(x + (<usize>d << 2)), load4(dt, w0 + <usize>d * eb, one, mg, km, bg, ex), c0);
    let s0 = hsum(c0);
    for (let d = K4; d < Kin; d++) s0 += load<f32>(x + (<usize>d << 2)) * load1(dt, w0 + <usize>d * eb);
    store<f32>(out + (<usize>n << 2), s0);
  }
}

/** out[m0:m1, n0:n1] for M >= 4: widen w rows if needed, then 4×2 register tiles per KC chunk. */
function blockMatmul(x: usize, w: usize, out: usize, m0: i32, m1: i32, n0: i32, n1: i32, N: i32, Kin: i32, dt: i32, scratch: usize): void {
  const K4 = Kin & ~3;
  let wp = w + <usize>n0 * <usize>Kin * elemBytes(dt);
  let ws = <usize>Kin << 2;
  if (dt != DT_F32) {
    const Kp = (Kin + 3) & ~3;
    const src = <usize>Kin * elemBytes(dt);
    for (let n = n0; n < n1; n++) widenRow(dt, wp + <usize>(n - n0) * src, Kin, Kp, scratch + (<usize>(n - n0) * <usize>Kp << 2), 1);
    wp = scratch;
    ws = <usize>Kp << 2;
  }
  const xs = <usize>Kin << 2, os = <usize>N << 2;
  const x0 = x + <usize>m0 * xs, o0 = out + <usize>m0 * os + (<usize>n0 << 2);
  const nm = m1 - m0, nn = n1 - n0;
  if (K4 == 0) for (let i = 0; i < nm; i++) for (let j = 0; j < nn; j++) store<f32>(o0 + <usize>i * os + (<usize>j << 2), 0);
  for (let kc = 0; kc < K4; kc += KC) {
    dotTile(x0 + (<usize>kc << 2), xs, nm, wp + (<usize>kc << 2), ws, nn, min(KC, K4 - kc), o0, os, kc > 0);
  }
  if (K4 < Kin) {
    for (let i = 0; i < nm; i++) {
      for (let j = 0; j < nn; j++) {
        let s: f32 = 0;
        for (let d = K4; d < Kin; d++) s += load<f32>(x0 + <usize>i * xs + (<usize>d << 2)) * load<f32>(wp + <usize>j * ws + (<usize>d << 2));
        const at = o0 + <usize>i * os + (<usize>j << 2);
        store<f32>(at, load<f32>(at) + s);
      }
    }
  }
}
