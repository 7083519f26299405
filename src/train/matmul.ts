// The three matrix products training needs, in the PyTorch Linear layout (w is [N, Kin]):
//   forward   y  = x · wᵀ        nt   out[M, N]   = x[M, Kin] · w[N, Kin]ᵀ
//   backward  dx = dy · w        nn   out[M, Kin] = dy[M, N] · w[N, Kin]
//   backward  dw += dyᵀ · x      tnAcc out[N, Kin] += dy[M, N]ᵀ · x[M, Kin]
// Two backends: plain TS (works in float32 or float64; the float64 one is what the finite-difference
// checks use) and one that routes all three through Kernels.matmul (the inference kernel interface,
// which only has the "nt" form). For nn and tnAcc it transposes the operands into scratch first:
// O(M·N + M·Kin + N·Kin) copies around an O(M·N·Kin) product.
import type { Arena } from "../kernels/memory.js";
import type { Kernels } from "../kernels/types.js";

export type Buf = Float32Array | Float64Array;

export interface Matmuls {
  readonly name: string;
  nt(out: Buf, x: Buf, w: Buf, M: number, N: number, Kin: number): void;
  nn(out: Buf, dy: Buf, w: Buf, M: number, N: number, Kin: number): void;
  tnAcc(out: Buf, dy: Buf, x: Buf, M: number, N: number, Kin: number): void;
}

/** Plain TypeScript; every inner loop runs over contiguous memory. */
export const tsMatmuls: Matmuls = {
  name: "ts",
  nt(out, x, w, M, N, Kin) {
    for (let m = 0; m < M; m++) {
      const xo = m * Kin;
      for (let n = 0; n < N; n++) {
        const wo = n * Kin;
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        let k = 0;
        for (; k + 3 < Kin; k += 4) {
          s0 += x[xo + k] * w[wo + k];
          s1 += x[xo + k + 1] * w[wo + k + 1];
          s2 += x[xo + k + 2] * w[wo + k + 2];
          s3 += x[xo + k + 3] * w[wo + k + 3];
        }
        for (; k < Kin; k++) s0 += x[xo + k] * w[wo + k];
        out[m * N + n] = s0 + s1 + s2 + s3;
      }
    }
  },
  nn(out, dy, w, M, N, Kin) {
    out.fill(0, 0, M * Kin);
    for (let m = 0; m < M; m++) {
      const oo = m * Kin;
      for (let n = 0; n < N; n++) {
        const a = dy[m * N + n];
        if (a === 0) continue;
        const wo = n * Kin;
        for (let k = 0; k < Kin; k++) out[oo + k] += a * w[wo + k];
      }
    }
  },
  tnAcc(out, dy, x, M, N, Kin) {
    for (let m = 0; m < M; m++) {
      const xo = m * Kin;
      for (let n = 0; n < N; n++) {
        const a = dy[m * N + n];
        if (a === 0) continue;
        const oo = n * Kin;
        for (let k = 0; k < Kin; k++) out[oo + k] += a * x[xo + k];
      }
    }
  },
};

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
 * All three products through `kernels.matmul`. Every Float32Array passed in must be a view of
 * `arena.memory` (its byteOffset is its pointer); the training model allocates that way.
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
  const call = (out: number, x: number, w: number, M: number, N: number, Kin: number) =>
    kernels.matmul({ x, w, bias: 0, out, M, N, Kin, wDtype: "f32" });
  return {
    name: `kernels:${kernels.name}`,
    nt(out, x, w, M, N, Kin) {
      call(ptr(out, "out"), ptr(x, "x"), ptr(w, "w"), M, N, Kin);
    },
    nn(out, dy, w, M, N, Kin) {
      const wT = buf("wT", Kin * N); // [Kin, N]
      transpose(wT, w, N, Kin);
      call(ptr(out, "out"), ptr(dy, "dy"), wT.byteOffset, M, Kin, N);
    },
    tnAcc(out, dy, x, M, N, Kin) {
      const dyT = buf("dyT", N * M); // [N, M]
      const xT = buf("xT", Kin * M); // [Kin, M]
      const tmp = buf("dw", N * Kin); // [N, Kin]
      transpose(dyT, dy, M, N);
      transpose(xT, x, M, Kin);
      call(tmp.byteOffset, dyT.byteOffset, xT.byteOffset, N, Kin, M);
      const n = N * Kin;
      for (let i = 0; i < n; i++) out[i] += tmp[i];
    },
  };
}
