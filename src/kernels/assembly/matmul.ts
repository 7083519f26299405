// out[M, N] = x[M, Kin] · w[N, Kin]ᵀ (+ bias[N]), the PyTorch Linear layout (AssemblyScript, f32x4).
// The nn and tn layouts (w [Kin, N]) are in matmulkn.ts; their items come through matmulItem too.
//
// Legend: M rows of x (tokens), N output features (rows of w), Kin input features.
// An item is (block of MB rows of x, block of NB rows of w); threads take items dynamically.
// M < 4 (decode) is a matvec (matvec.ts, q8.ts, quants.ts). M >= 4 (prefill, training) is compute-bound: f16/bf16/q8_0/q4_0…q6_k
// w rows are widened once per item into scratch, then 4×2 register tiles run over Kin in chunks
// of KC values.
import { matvecQ8, matvecQ8x2, matvecQ8x3, dequantRow, Q8_BLOCK, Q8_BLOCK_BYTES } from "./q8";
import { DT_F32, DT_F16, DT_BF16, DT_Q8_0, elemBytes, widenRow, widenRows4 } from "./simd";
import { dotTile } from "./tiles";
import { DT_Q4_0, dequantRowQuant, matvecQuant, quantRowBytes } from "./quants";
import { matvecF32, matvecF32x2, matvecF32x3, matvecF16Item, matvecBF16Item } from "./matvec";
import { matmulKnItem } from "./matmulkn";
import * as L from "./layout";

// Kin chunk. 4 x rows and NB = 16 w rows of KC f32 are 32 + 128 KiB: L2, not L1, but the register
// block runs over whole rows of the 110M bench model (Kin 768 and 2048) with one epilogue (hsum,
// store) per output instead of two to four: bench/matmul.ts --baseline, M = 512, 2 threads, AMD
// EPYC Zen 5: 1.03-1.07x against KC = 512 (1.01-1.04x at 1024).
const KC = 2048;

// @ts-ignore: decorator
@inline function arg(ctl: usize, i: i32): u32 {
  return load<u32>(ctl + L.CTL_ARGS + (<usize>i << 2));
}

export function matmulItem(ctl: usize, item: i32, tid: i32): void {
  const x = <usize>arg(ctl, L.M_X);
  let w = <usize>arg(ctl, L.M_W), bias = <usize>arg(ctl, L.M_BIAS), out = <usize>arg(ctl, L.M_OUT);
  const M = <i32>arg(ctl, L.M_M), Kin = <i32>arg(ctl, L.M_KIN), dt = <i32>arg(ctl, L.M_DTYPE);
  let N = <i32>arg(ctl, L.M_N);
  const MB = <i32>arg(ctl, L.M_MB), NB = <i32>arg(ctl, L.M_NB);
  let NNB = <i32>arg(ctl, L.M_NNB);
  const nparts = <i32>arg(ctl, L.M_NPARTS);
  if (nparts > 0) {
    // Several products of the same x (one m block): find the part this item belongs to.
    const tab = <usize>arg(ctl, L.M_PARTS);
    let p = nparts - 1;
    while (p > 0 && item < <i32>load<u32>(tab + (<usize>(p * L.MP_WORDS + L.MP_FIRST) << 2))) p--;
    const e = tab + (<usize>(p * L.MP_WORDS) << 2);
    w = <usize>load<u32>(e + (L.MP_W << 2));
    out = <usize>load<u32>(e + (L.MP_OUT << 2));
    bias = <usize>load<u32>(e + (L.MP_BIAS << 2));
    N = <i32>load<u32>(e + (L.MP_N << 2));
    item -= <i32>load<u32>(e + (L.MP_FIRST << 2));
    NNB = (N + NB - 1) / NB;
  }
  const mb = item / NNB, nb = item % NNB;
  const m0 = mb * MB, m1 = min(M, m0 + MB), n0 = nb * NB, n1 = min(N, n0 + NB);
  if (arg(ctl, L.M_LAYOUT) != L.LAYOUT_NT) {
    matmulKnItem(ctl, item, tid); // nn, tn: f32 w [Kin, N] (see matmulkn.ts)
  } else if (M < 4 && dt == DT_F16) {
    const xs = <usize>arg(ctl, L.M_SCRATCH) + <usize>tid * <usize>arg(ctl, L.M_SCRATCH_STRIDE);
    matvecF16Item(x, xs, w, out, m0, m1, n0, n1, N, Kin, arg(ctl, L.M_WFINITE) != 0, arg(ctl, L.M_WROWS4) != 0);
  } else if (M < 4 && dt == DT_BF16) {
    const xs = <usize>arg(ctl, L.M_SCRATCH) + <usize>tid * <usize>arg(ctl, L.M_SCRATCH_STRIDE);
    matvecBF16Item(x, xs, w, out, m0, m1, n0, n1, N, Kin, arg(ctl, L.M_WROWS4) != 0);
  } else if (M < 4 && dt >= DT_Q4_0) {
    // 4/5/6-bit blocks: each w row dequantized once into this thread's scratch, dotted with every x row
    const xs = <usize>arg(ctl, L.M_SCRATCH) + <usize>tid * <usize>arg(ctl, L.M_SCRATCH_STRIDE);
    matvecQuant(dt, x, m0, m1, w, n0, n1, N, Kin, out, xs);
  } else if (M < 4 && m1 - m0 > 1 && (dt == DT_Q8_0 || dt == DT_F32)) {
    // 2 or 3 rows of x share one pass over w (batched decode); x rows and out rows are consecutive
    const xr = <usize>Kin << 2, or = <usize>N << 2;
    const x0 = x + <usize>m0 * xr, o0 = out + <usize>m0 * or;
    if (dt == DT_Q8_0 && m1 - m0 == 2) matvecQ8x2(x0, x0 + xr, o0, o0 + or, w, n0, n1, Kin);
    else if (dt == DT_Q8_0) matvecQ8x3(x0, x0 + xr, x0 + 2 * xr, o0, o0 + or, o0 + 2 * or, w, n0, n1, Kin);
    else if (m1 - m0 == 2) matvecF32x2(x0, x0 + xr, o0, o0 + or, w, n0, n1, Kin);
    else matvecF32x3(x0, x0 + xr, x0 + 2 * xr, o0, o0 + or, o0 + 2 * or, w, n0, n1, Kin);
  } else if (M < 4) {
    for (let m = m0; m < m1; m++) {
      const xr = x + (<usize>m * <usize>Kin << 2), or = out + (<usize>m * <usize>N << 2);
      if (dt == DT_F32) matvecF32(xr, w, n0, n1, Kin, or);
      else matvecQ8(xr, w, n0, n1, Kin, or);
    }
  } else {
    const scratch = <usize>arg(ctl, L.M_SCRATCH) + <usize>tid * <usize>arg(ctl, L.M_SCRATCH_STRIDE);
    blockMatmul(x, w, out, m0, m1, n0, n1, N, Kin, dt, scratch, arg(ctl, L.M_WROWS4) != 0);
  }
  if (bias) {
    for (let m = m0; m < m1; m++) {
      const or = out + (<usize>m * <usize>N << 2);
      for (let n = n0; n < n1; n++) store<f32>(or + (<usize>n << 2), load<f32>(or + (<usize>n << 2)) + load<f32>(bias + (<usize>n << 2)));
    }
  }
}

/** out[m0:m1, n0:n1] for M >= 4: widen w rows if needed, then 4×2 register tiles per KC chunk. */
function blockMatmul(x: usize, w: usize, out: usize, m0: i32, m1: i32, n0: i32, n1: i32, N: i32, Kin: i32, dt: i32, scratch: usize, rows4: bool): void {
  const K4 = Kin & ~3;
  const src = dt == DT_Q8_0 ? <usize>(Kin / Q8_BLOCK) * Q8_BLOCK_BYTES : dt >= DT_Q4_0 ? quantRowBytes(dt, Kin) : <usize>Kin * elemBytes(dt); // bytes per w row
  let wp = w + <usize>n0 * src;
  let ws = <usize>Kin << 2;
  if (dt != DT_F32) {
    // rows4 blocks widen into 4 rows at once: padded by one 64-byte line so the 4 write streams do
    // not share L1 sets (rows of 8 KiB did: 768 x 2048 f16 at M = 16-64, 0.88-0.90x of the row
    // layout without it, 0.99-1.06x with it; bench/matmul.ts --rows4, AMD EPYC Zen 4).
    const Kp = ((Kin + 3) & ~3) + (rows4 ? L.SCRATCH_ROWS4_PAD : 0);
    let n = n0;
    if (rows4) for (; n + 4 <= n1; n += 4) widenRows4(dt, wp + <usize>(n - n0) * src, Kin, Kp, scratch + (<usize>(n - n0) * <usize>Kp << 2)); // f16/bf16 blocks (matvec.ts ROWS4)
    for (; n < n1; n++) {
      const dst = scratch + (<usize>(n - n0) * <usize>Kp << 2);
      if (dt == DT_Q8_0) dequantRow(wp + <usize>(n - n0) * src, Kin, dst); // Kin % 32 == 0: no padding
      else if (dt >= DT_Q4_0) dequantRowQuant(dt, wp + <usize>(n - n0) * src, Kin, dst); // whole blocks: no padding
      else widenRow(dt, wp + <usize>(n - n0) * src, Kin, Kp, dst, 1);
    }
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
