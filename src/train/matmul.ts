// The three matrix products training needs, in the PyTorch Linear layout (w is [N, Kin]):
//   forward   y  = x · wᵀ        nt   out[M, N]   = x[M, Kin] · w[N, Kin]ᵀ
//   backward  dx = dy · w        nn   out[M, Kin] = dy[M, N] · w[N, Kin]
//   backward  dw += dyᵀ · x      tnAcc out[N, Kin] += dy[M, N]ᵀ · x[M, Kin]
// Two backends: plain TS (works in float32 or float64; the float64 one is what the finite-difference
// checks use; nn and tnAcc transpose into scratch and reuse the blocked nt loop) and one that routes
// all three through Kernels.matmul, whose "nn" and "tn" layouts (with accumulate) read the operands
// in place: no transposes and no accumulate pass on the host.
import type { Arena } from "../kernels/memory.js";
import type { Buf, Kernels, Matmuls, MatmulLayout } from "../kernels/types.js";

export type { Buf, Matmuls } from "../kernels/types.js";

/**
 * out[M, N] = x[M, Kin] · w[N, Kin]ᵀ in plain TS, blocked 4 rows of x × 4 rows of w so that each
 * loaded value feeds 4 multiply-adds (16 accumulators stay in registers).
 */
export function ntBlocked(out: Buf, x: Buf, w: Buf, M: number, N: number, Kin: number): void {
  const M4 = M - (M % 4), N4 = N - (N % 4);
  for (let m = 0; m < M4; m += 4) {
    const x0 = m * Kin, x1 = x0 + Kin, x2 = x1 + Kin, x3 = x2 + Kin;
    for (let n = 0; n < N4; n += 4) {
      const w0 = n * Kin, w1 = w0 + Kin, w2 = w1 + Kin, w3 = w2 + Kin;
      let a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
      let a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
      for (let k = 0; k < Kin; k++) {
        const b0 = w[w0 + k], b1 = w[w1 + k], b2 = w[w2 + k], b3 = w[w3 + k];
        const c0 = x[x0 + k], c1 = x[x1 + k], c2 = x[x2 + k], c3 = x[x3 + k];
        a00 += c0 * b0; a01 += c0 * b1; a02 += c0 * b2; a03 += c0 * b3;
        a10 += c1 * b0; a11 += c1 * b1; a12 += c1 * b2; a13 += c1 * b3;
        a20 += c2 * b0; a21 += c2 * b1; a22 += c2 * b2; a23 += c2 * b3;
        a30 += c3 * b0; a31 += c3 * b1; a32 += c3 * b2; a33 += c3 * b3;
      }
      let o = m * N + n;
      out[o] = a00; out[o + 1] = a01; out[o + 2] = a02; out[o + 3] = a03; o += N;
      out[o] = a10; out[o + 1] = a11; out[o + 2] = a12; out[o + 3] = a13; o += N;
      out[o] = a20; out[o + 1] = a21; out[o + 2] = a22; out[o + 3] = a23; o += N;
      out[o] = a30; out[o + 1] = a31; out[o + 2] = a32; out[o + 3] = a33;
    }
  }
  // Edges: the rows and columns the 4×4 blocks did not cover.
  for (let m = 0; m < M; m++) {
    const nStart = m < M4 ? N4 : 0;
    for (let n = nStart; n < N; n++) {
      let s = 0;
      for (let k = 0; k < Kin; k++) s += x[m * Kin + k] * w[n * Kin + k];
      out[m * N + n] = s;
    }
  }
}

/**
 * Plain TypeScript backend. nn and tnAcc transpose into scratch and reuse the blocked nt kernel,
 * the same shape of computation the kernel backend uses. Scratch matches the precision of the inputs.
 */
export function tsMatmuls(): Matmuls {
  const scratch = new Map<string, Buf>();
  const buf = (slot: string, like: Buf, n: number): Buf => {
    const key = `${slot}:${like instanceof Float64Array ? 64 : 32}`;
    let s = scratch.get(key);
    if (!s || s.length < n) scratch.set(key, (s = like instanceof Float64Array ? new Float64Array(n) : new Float32Array(n)));
    return s;
  };
  return {
    name: "ts",
    buffer: (slot, n, like) => buf(`user:${slot}`, like, n).subarray(0, n),
    nt: ntBlocked,
    nn(out, dy, w, M, N, Kin) {
      const wT = buf("wT", w, Kin * N); // [Kin, N]
      transpose(wT, w, N, Kin);
      ntBlocked(out, dy, wT, M, Kin, N);
    },
    tnAcc(out, dy, x, M, N, Kin) {
      const dyT = buf("dyT", dy, N * M); // [N, M]
      const xT = buf("xT", x, Kin * M); // [Kin, M]
      const tmp = buf("dw", out, N * Kin); // [N, Kin]
      transpose(dyT, dy, M, N);
      transpose(xT, x, M, Kin);
      ntBlocked(tmp, dyT, xT, N, Kin, M);
      const n = N * Kin;
      for (let i = 0; i < n; i++) out[i] += tmp[i];
    },
  };
}

/** out[C, R] = a[R, C]ᵀ */
export function transpose(out: Buf, a: Buf, R: number, C: number): void {
  // 32×32 tiles keep both the reads and the writes in cache.
  for (let r0 = 0; r0 < R; r0 += 32) {
    const r1 = Math.min(R, r0 + 32);
    for (let c0 = 0; c0 < C; c0 += 32) {
      const c1 = Math.min(C, c0 + 32);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[c * R + r] = a[r * C + c];
    }
  }
}

/**
 * All three products through `kernels.matmul` (layouts nt, nn, and tn with accumulate). Every
 * Float32Array passed in must be a view of `arena.memory` (its byteOffset is its pointer); the
 * training model allocates that way.
 */
export function kernelMatmuls(kernels: Kernels, arena: Arena): Matmuls {
  const scratch = new Map<string, { ptr: number; n: number }>();
  const buf = (slot: string, n: number): Float32Array => {
    let s = scratch.get(slot);
    if (!s || s.n < n) {
      if (s) arena.release(s.ptr);
      s = { ptr: arena.alloc(n * 4, `train scratch ${slot}`), n };
      scratch.set(slot, s);
    }
    return arena.f32(s.ptr, n);
  };
  const ptr = (a: Buf, what: string): number => {
    if (!(a instanceof Float32Array) || !(a.buffer instanceof SharedArrayBuffer || a.buffer === arena.memory.buffer)) {
      throw new Error(`kernelMatmuls: ${what} is not a float32 view of the arena memory`);
    }
    return a.byteOffset;
  };
  const call = (out: number, x: number, w: number, M: number, N: number, Kin: number, layout: MatmulLayout, accumulate = false) =>
    kernels.matmul({ x, w, bias: 0, out, M, N, Kin, wDtype: "f32", layout, accumulate });
  return {
    name: `kernels:${kernels.name}`,
    buffer: (slot, n) => buf(`user:${slot}`, n),
    nt(out, x, w, M, N, Kin) {
      call(ptr(out, "out"), ptr(x, "x"), ptr(w, "w"), M, N, Kin, "nt");
    },
    nn(out, dy, w, M, N, Kin) {
      // Kernel "nn": out[M, Kin] = dy[M, N] · w[N, Kin], the kernel's reduction runs over N.
      call(ptr(out, "out"), ptr(dy, "dy"), ptr(w, "w"), M, Kin, N, "nn");
    },
    tnAcc(out, dy, x, M, N, Kin) {
      // Kernel "tn" with accumulate: out[N, Kin] += dy[M, N]ᵀ · x[M, Kin], the reduction runs over M.
      call(ptr(out, "out"), ptr(dy, "dy"), ptr(x, "x"), N, Kin, M, "tn", true);
    },
  };
}
