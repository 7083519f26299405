// Register-blocked f32 micro-kernels shared by attention (Q·Kᵀ, P·V) and matmul (x·Wᵀ).
// All operands are f32 rows at byte strides; vector lengths are multiples of 4 (callers pad or
// handle tails). The kernels allocate nothing and touch only the memory they are given.
import { fma, hsum } from "./simd";

// @ts-ignore: decorator
@inline function put(p: usize, v: f32, acc: bool): void {
  store<f32>(p, acc ? load<f32>(p) + v : v);
}

/**
 * out[i*so + 4j] (=, or += when acc) a_i · b_j over n values, i < na, j < nb.
 * a: [na, n] at row stride sa bytes; b: [nb, n] at row stride sb bytes; n % 4 == 0.
 * Blocks of 4 a-rows × 2 b-rows keep 8 accumulators in registers: 6 loads per 8 FMAs.
 */
export function dotTile(a: usize, sa: usize, na: i32, b: usize, sb: usize, nb: i32, n: i32, out: usize, so: usize, acc: bool): void {
  const nbytes = <usize>n << 2;
  let i = 0;
  for (; i + 4 <= na; i += 4) {
    const a0 = a + <usize>i * sa;
    const a1 = a0 + sa;
    const a2 = a1 + sa;
    const a3 = a2 + sa;
    const orow = out + <usize>i * so;
    let j = 0;
    for (; j + 2 <= nb; j += 2) {
      const b0 = b + <usize>j * sb;
      const b1 = b0 + sb;
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
      let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
      for (let d: usize = 0; d < nbytes; d += 16) {
        const k0 = v128.load(b0 + d);
        const k1 = v128.load(b1 + d);
        let q = v128.load(a0 + d);
        c00 = fma(q, k0, c00);
        c01 = fma(q, k1, c01);
        q = v128.load(a1 + d);
        c10 = fma(q, k0, c10);
        c11 = fma(q, k1, c11);
        q = v128.load(a2 + d);
        c20 = fma(q, k0, c20);
        c21 = fma(q, k1, c21);
        q = v128.load(a3 + d);
        c30 = fma(q, k0, c30);
        c31 = fma(q, k1, c31);
      }
      const o = orow + (<usize>j << 2);
      put(o, hsum(c00), acc);
      put(o + 4, hsum(c01), acc);
      put(o + so, hsum(c10), acc);
      put(o + so + 4, hsum(c11), acc);
      put(o + 2 * so, hsum(c20), acc);
      put(o + 2 * so + 4, hsum(c21), acc);
      put(o + 3 * so, hsum(c30), acc);
      put(o + 3 * so + 4, hsum(c31), acc);
    }
    if (j < nb) {
      const b0 = b + <usize>j * sb;
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
      for (let d: usize = 0; d < nbytes; d += 16) {
        const k0 = v128.load(b0 + d);
        c0 = fma(v128.load(a0 + d), k0, c0);
        c1 = fma(v128.load(a1 + d), k0, c1);
        c2 = fma(v128.load(a2 + d), k0, c2);
        c3 = fma(v128.load(a3 + d), k0, c3);
      }
      const o = orow + (<usize>j << 2);
      put(o, hsum(c0), acc);
      put(o + so, hsum(c1), acc);
      put(o + 2 * so, hsum(c2), acc);
      put(o + 3 * so, hsum(c3), acc);
    }
  }
  for (; i < na; i++) dotRow(a + <usize>i * sa, b, sb, nb, n, out + <usize>i * so, acc);
}

/** One a-row against nb b-rows, 4 b-rows at a time (the MHA decode shape: pure streaming of b). */
export function dotRow(a: usize, b: usize, sb: usize, nb: i32, n: i32, out: usize, acc: bool): void {
  const nbytes = <usize>n << 2;
  let j = 0;
  for (; j + 4 <= nb; j += 4) {
    const b0 = b + <usize>j * sb;
    const b1 = b0 + sb;
    const b2 = b1 + sb;
    const b3 = b2 + sb;
    let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
    for (let d: usize = 0; d < nbytes; d += 16) {
      const q = v128.load(a + d);
      c0 = fma(q, v128.load(b0 + d), c0);
      c1 = fma(q, v128.load(b1 + d), c1);
      c2 = fma(q, v128.load(b2 + d), c2);
      c3 = fma(q, v128.load(b3 + d), c3);
    }
    const o = out + (<usize>j << 2);
    put(o, hsum(c0), acc);
    put(o + 4, hsum(c1), acc);
    put(o + 8, hsum(c2), acc);
    put(o + 12, hsum(c3), acc);
  }
  for (; j < nb; j++) {
    const b0 = b + <usize>j * sb;
    let c0 = f32x4.splat(0), c1 = f32x4.splat(0);
    let d: usize = 0;
    for (; d + 32 <= nbytes; d += 32) {
      c0 = fma(v128.load(a + d), v128.load(b0 + d), c0);
      c1 = fma(v128.load(a + d + 16), v128.load(b0 + d + 16), c1);
    }
    if (d < nbytes) c0 = fma(v128.load(a + d), v128.load(b0 + d), c0);
    put(out + (<usize>j << 2), hsum(f32x4.add(c0, c1)), acc);
  }
}

/**
 * o_i = o_i * alpha_i + Σ_j p[i*sp + 4j] · v_j over n values (n % 4 == 0), i < nr, j < nk.
 * p: [nr, nk] weights at row stride sp bytes; v: [nk, n] at row stride sv; o: [nr, n] at stride so;
 * alpha: f32 [nr]. Blocks of 4 rows × 8 values: per key 2 v loads + 4 splats for 8 FMAs.
 */
export function pvTile(p: usize, sp: usize, nr: i32, v: usize, sv: usize, nk: i32, n: i32, o: usize, so: usize, alpha: usize): void {
  const nbytes = <usize>n << 2;
  let i = 0;
  for (; i + 4 <= nr; i += 4) {
    const p0 = p + <usize>i * sp;
    const o0 = o + <usize>i * so;
    const al0 = f32x4.splat(load<f32>(alpha + (<usize>i << 2)));
    const al1 = f32x4.splat(load<f32>(alpha + (<usize>i << 2), 4));
    const al2 = f32x4.splat(load<f32>(alpha + (<usize>i << 2), 8));
    const al3 = f32x4.splat(load<f32>(alpha + (<usize>i << 2), 12));
    let d: usize = 0;
    for (; d + 32 <= nbytes; d += 32) {
      let c00 = f32x4.mul(v128.load(o0 + d), al0), c01 = f32x4.mul(v128.load(o0 + d + 16), al0);
      let c10 = f32x4.mul(v128.load(o0 + so + d), al1), c11 = f32x4.mul(v128.load(o0 + so + d + 16), al1);
      let c20 = f32x4.mul(v128.load(o0 + 2 * so + d), al2), c21 = f32x4.mul(v128.load(o0 + 2 * so + d + 16), al2);
      let c30 = f32x4.mul(v128.load(o0 + 3 * so + d), al3), c31 = f32x4.mul(v128.load(o0 + 3 * so + d + 16), al3);
      let vr = v + d;
      let pj = p0;
      for (let j = 0; j < nk; j++) {
        const v0 = v128.load(vr);
        const v1 = v128.load(vr, 16);
        let w = v128.load32_splat(pj);
        c00 = fma(w, v0, c00);
        c01 = fma(w, v1, c01);
        w = v128.load32_splat(pj + sp);
        c10 = fma(w, v0, c10);
        c11 = fma(w, v1, c11);
        w = v128.load32_splat(pj + 2 * sp);
        c20 = fma(w, v0, c20);
        c21 = fma(w, v1, c21);
        w = v128.load32_splat(pj + 3 * sp);
        c30 = fma(w, v0, c30);
        c31 = fma(w, v1, c31);
        vr += sv;
        pj += 4;
      }
      v128.store(o0 + d, c00);
      v128.store(o0 + d + 16, c01);
      v128.store(o0 + so + d, c10);
      v128.store(o0 + so + d + 16, c11);
      v128.store(o0 + 2 * so + d, c20);
      v128.store(o0 + 2 * so + d + 16, c21);
      v128.store(o0 + 3 * so + d, c30);
      v128.store(o0 + 3 * so + d + 16, c31);
    }
    if (d < nbytes) {
      let c0 = f32x4.mul(v128.load(o0 + d), al0);
      let c1 = f32x4.mul(v128.load(o0 + so + d), al1);
      let c2 = f32x4.mul(v128.load(o0 + 2 * so + d), al2);
      let c3 = f32x4.mul(v128.load(o0 + 3 * so + d), al3);
      let vr = v + d;
      let pj = p0;
      for (let j = 0; j < nk; j++) {
        const v0 = v128.load(vr);
        c0 = fma(v128.load32_splat(pj), v0, c0);
        c1 = fma(v128.load32_splat(pj + sp), v0, c1);
        c2 = fma(v128.load32_splat(pj + 2 * sp), v0, c2);
        c3 = fma(v128.load32_splat(pj + 3 * sp), v0, c3);
        vr += sv;
        pj += 4;
      }
      v128.store(o0 + d, c0);
      v128.store(o0 + so + d, c1);
      v128.store(o0 + 2 * so + d, c2);
      v128.store(o0 + 3 * so + d, c3);
    }
  }
  if (i + 2 == nr) {
    pvRow2(p + <usize>i * sp, sp, v, sv, nk, n, o + <usize>i * so, so, load<f32>(alpha + (<usize>i << 2)), load<f32>(alpha + (<usize>i << 2), 4));
    return;
  }
  for (; i < nr; i++) pvRow(p + <usize>i * sp, v, sv, nk, n, o + <usize>i * so, load<f32>(alpha + (<usize>i << 2)));
}

/**
 * One output row, o = o·alpha + Σ_j p[j]·v_j: o (in L1) is scaled once, then updated key by key, so
 * the V rows are read whole and in order, one sequential stream. Holding 32 values of o in
 * registers instead walks V in 128-byte columns strided by the row length, which the hardware
 * prefetchers follow far worse: MHA decode P·V alone, f32, D = 128, 1 thread, AMD EPYC Zen 5:
 * 1.56x (bench/decode-ab.ts; docs/benchmarks/attention.md, session 7). Per value the products are
 * added in key order either way, so the result is the same bit for bit.
 */
export function pvRow(p: usize, v: usize, sv: usize, nk: i32, n: i32, o: usize, alpha: f32): void {
  const nbytes = <usize>n << 2;
  const al = f32x4.splat(alpha);
  for (let d: usize = 0; d < nbytes; d += 16) v128.store(o + d, f32x4.mul(v128.load(o + d), al));
  for (let j = 0; j < nk; j++) {
    const w = v128.load32_splat(p + (<usize>j << 2));
    const vr = v + <usize>j * sv;
    for (let d: usize = 0; d < nbytes; d += 16) v128.store(o + d, fma(w, v128.load(vr + d), v128.load(o + d)));
  }
}

/** pvRow for two output rows (o, o + so; weights p, p + sp) against one pass over V: the same sums, bit for bit. */
export function pvRow2(p: usize, sp: usize, v: usize, sv: usize, nk: i32, n: i32, o: usize, so: usize, alpha0: f32, alpha1: f32): void {
  const nbytes = <usize>n << 2;
  const o1 = o + so;
  const al0 = f32x4.splat(alpha0), al1 = f32x4.splat(alpha1);
  for (let d: usize = 0; d < nbytes; d += 16) {
    v128.store(o + d, f32x4.mul(v128.load(o + d), al0));
    v128.store(o1 + d, f32x4.mul(v128.load(o1 + d), al1));
  }
  for (let j = 0; j < nk; j++) {
    const w0 = v128.load32_splat(p + (<usize>j << 2)), w1 = v128.load32_splat(p + sp + (<usize>j << 2));
    const vr = v + <usize>j * sv;
    for (let d: usize = 0; d < nbytes; d += 16) {
      const x = v128.load(vr + d);
      v128.store(o + d, fma(w0, x, v128.load(o + d)));
      v128.store(o1 + d, fma(w1, x, v128.load(o1 + d)));
    }
  }
}

// ---- Row-quad kernels: 4 query rows interleaved, so one vector holds the 4 rows' values. ----
// q4: [Dp/4 chunks][4 rows][4 lanes] (64 bytes per chunk); s4: [keys][4 rows] (16 bytes per key).
// Loads use immediate offsets from one pointer, and the 4 dot products of a key are reduced with a
// 4×4 transpose-add instead of 4 horizontal sums.

/** [Σa, Σb, Σc, Σd]: lane sums of four vectors in one vector. */
// @ts-ignore: decorator
@inline function reduce4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

/**
 * s4[j] = (q_0·k_j, q_1·k_j, q_2·k_j, q_3·k_j) for j < nk; k rows at byte stride ks, Dp % 4 == 0.
 * Returns the lane-wise max of the scores (f32x4.max: NaN-propagating), so the softmax needs no pass of its own for it.
 */
export function qkQuad(q4: usize, k: usize, ks: usize, nk: i32, Dp: i32, s4: usize): v128 {
  const qEnd = q4 + (<usize>Dp << 4);
  let mx = f32x4.splat(-Infinity), mx1 = mx;
  let j = 0;
  for (; j + 2 <= nk; j += 2) {
    let kp0 = k + <usize>j * ks;
    let kp1 = kp0 + ks;
    let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
    let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
    for (let qp = q4; qp < qEnd; qp += 64) {
      const k0 = v128.load(kp0);
      const k1 = v128.load(kp1);
      let q = v128.load(qp);
      c00 = fma(q, k0, c00);
      c01 = fma(q, k1, c01);
      q = v128.load(qp, 16);
      c10 = fma(q, k0, c10);
      c11 = fma(q, k1, c11);
      q = v128.load(qp, 32);
      c20 = fma(q, k0, c20);
      c21 = fma(q, k1, c21);
      q = v128.load(qp, 48);
      c30 = fma(q, k0, c30);
      c31 = fma(q, k1, c31);
      kp0 += 16;
      kp1 += 16;
    }
    const o = s4 + (<usize>j << 4);
    const s0 = reduce4(c00, c10, c20, c30), s1 = reduce4(c01, c11, c21, c31);
    v128.store(o, s0);
    v128.store(o, s1, 16);
    mx = f32x4.max(mx, s0);
    mx1 = f32x4.max(mx1, s1);
  }
  if (j < nk) {
    let kp0 = k + <usize>j * ks;
    let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
    for (let qp = q4; qp < qEnd; qp += 64) {
      const k0 = v128.load(kp0);
      c0 = fma(v128.load(qp), k0, c0);
      c1 = fma(v128.load(qp, 16), k0, c1);
      c2 = fma(v128.load(qp, 32), k0, c2);
      c3 = fma(v128.load(qp, 48), k0, c3);
      kp0 += 16;
    }
    const s0 = reduce4(c0, c1, c2, c3);
    v128.store(s4 + (<usize>j << 4), s0);
    mx = f32x4.max(mx, s0);
  }
  return f32x4.max(mx, mx1);
}

/**
 * o_i = o_i·alpha_i + Σ_j s4[j][i]·v_j for the quad's rows i < 4 (o rows plain, byte stride so),
 * j < nk, v rows at byte stride vs, Dp % 4 == 0. Per key: 2 v loads + 4 splats for 8 FMAs.
 */
export function pvQuad(s4: usize, v: usize, vs: usize, nk: i32, Dp: i32, o: usize, so: usize, al4: usize): void {
  const nbytes = <usize>Dp << 2;
  const al0 = v128.load32_splat(al4), al1 = v128.load32_splat(al4, 4), al2 = v128.load32_splat(al4, 8), al3 = v128.load32_splat(al4, 12);
  const sEnd = s4 + (<usize>nk << 4);
  const o1 = o + so, o2 = o1 + so, o3 = o2 + so;
  let d: usize = 0;
  for (; d + 32 <= nbytes; d += 32) {
    let c00 = f32x4.mul(v128.load(o + d), al0), c01 = f32x4.mul(v128.load(o + d, 16), al0);
    let c10 = f32x4.mul(v128.load(o1 + d), al1), c11 = f32x4.mul(v128.load(o1 + d, 16), al1);
    let c20 = f32x4.mul(v128.load(o2 + d), al2), c21 = f32x4.mul(v128.load(o2 + d, 16), al2);
    let c30 = f32x4.mul(v128.load(o3 + d), al3), c31 = f32x4.mul(v128.load(o3 + d, 16), al3);
    let vr = v + d;
    for (let pj = s4; pj < sEnd; pj += 16) {
      const v0 = v128.load(vr);
      const v1 = v128.load(vr, 16);
      let w = v128.load32_splat(pj);
      c00 = fma(w, v0, c00);
      c01 = fma(w, v1, c01);
      w = v128.load32_splat(pj, 4);
      c10 = fma(w, v0, c10);
      c11 = fma(w, v1, c11);
      w = v128.load32_splat(pj, 8);
      c20 = fma(w, v0, c20);
      c21 = fma(w, v1, c21);
      w = v128.load32_splat(pj, 12);
      c30 = fma(w, v0, c30);
      c31 = fma(w, v1, c31);
      vr += vs;
    }
    v128.store(o + d, c00);
    v128.store(o + d, c01, 16);
    v128.store(o1 + d, c10);
    v128.store(o1 + d, c11, 16);
    v128.store(o2 + d, c20);
    v128.store(o2 + d, c21, 16);
    v128.store(o3 + d, c30);
    v128.store(o3 + d, c31, 16);
  }
  if (d < nbytes) {
    let c0 = f32x4.mul(v128.load(o + d), al0), c1 = f32x4.mul(v128.load(o1 + d), al1);
    let c2 = f32x4.mul(v128.load(o2 + d), al2), c3 = f32x4.mul(v128.load(o3 + d), al3);
    let vr = v + d;
    for (let pj = s4; pj < sEnd; pj += 16) {
      const v0 = v128.load(vr);
      c0 = fma(v128.load32_splat(pj), v0, c0);
      c1 = fma(v128.load32_splat(pj, 4), v0, c1);
      c2 = fma(v128.load32_splat(pj, 8), v0, c2);
      c3 = fma(v128.load32_splat(pj, 12), v0, c3);
      vr += vs;
    }
    v128.store(o + d, c0);
    v128.store(o1 + d, c1);
    v128.store(o2 + d, c2);
    v128.store(o3 + d, c3);
  }
}
