// The transposed-operand matmul layouts ("nn": x[M, Kin]·w[Kin, N], "tn": x[Kin, M]ᵀ·w[Kin, N]),
// with and without accumulate, WASM SIMD (1 and 2 threads, plain and relaxed builds) against the
// float64 reference (src/kernels/reference.ts), plus an independent check of the reference itself.
//
// Legend: M output rows, N output columns, Kin reduction length.
//
// Tolerance (reason): inputs in [-1, 1], the kernels sum Kin f32 products in f32 (in a different
// order than the reference), so |err| <= 1e-5 + 2e-6·Kin + 1e-5·|want|, as in kernels.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { seededRandom } from "../src/random.js";
import { Arena } from "../src/kernels/memory.js";
import { referenceKernels } from "../src/kernels/reference.js";
import type { MatmulCall, MatmulLayout } from "../src/kernels/types.js";
import { kernelMatmuls, tsMatmuls } from "../src/train/matmul.js";
import { wasmBackends } from "./kernel-backends.js";

const arena = new Arena({ initialBytes: 16 << 20 });
const ref = referenceKernels(arena);
const backends = wasmBackends(arena, [{ threads: 1, relaxed: false }, { threads: 2, relaxed: false }, { threads: 1, relaxed: true }, { threads: 2, relaxed: true }]);

function fill(a: Float32Array, seed: number): void {
  const r = seededRandom(seed);
  for (let i = 0; i < a.length; i++) a[i] = 2 * r() - 1;
}

/** Throws with the index, the values, the largest error and the tolerance when |got - want| > atol + rtol·|want|. */
function expectClose(got: Float32Array, want: ArrayLike<number>, atol: number, rtol: number, what: string): void {
  let worst = -Infinity, at = -1, maxErr = 0, maxAt = -1;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= maxErr)) { maxErr = err; maxAt = i; }
    const excess = Number.isNaN(err) ? Infinity : err - (atol + rtol * Math.abs(want[i]));
    if (excess > worst) { worst = excess; at = i; }
  }
  if (worst > 0) {
    assert.fail(`${what}: |got - want| exceeds ${atol} + ${rtol}·|want| at index ${at}: got ${got[at]}, want ${want[at]} (largest error ${maxErr} at index ${maxAt})`);
  }
}

/** The product written out in float64 from the formula in types.ts, independent of the reference's stride code. */
function naive(layout: MatmulLayout, x: Float32Array, w: Float32Array, M: number, N: number, Kin: number, start: Float32Array | null): Float64Array {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = start ? start[m * N + n] : 0;
      for (let k = 0; k < Kin; k++) {
        const xv = layout === "tn" ? x[k * M + m] : x[m * Kin + k];
        const wv = layout === "nt" ? w[n * Kin + k] : w[k * N + n];
        s += xv * wv;
      }
      out[m * N + n] = s;
    }
  }
  return out;
}

function check(layout: MatmulLayout, M: number, N: number, Kin: number, accumulate: boolean, seed: number): void {
  const x = arena.alloc(M * Kin * 4), w = arena.alloc(N * Kin * 4), want = arena.alloc(M * N * 4), out = arena.alloc(M * N * 4);
  fill(arena.f32(x, M * Kin), seed);
  fill(arena.f32(w, N * Kin), seed + 1);
  const start = new Float32Array(M * N); // the old out that accumulate adds to
  fill(start, seed + 2);
  const call: MatmulCall = { x, w, bias: 0, out: want, M, N, Kin, wDtype: "f32", layout, accumulate };
  const what = `${layout} M=${M} N=${N} Kin=${Kin} accumulate=${accumulate}`;
  const atol = 1e-5 + 2e-6 * Kin;
  arena.f32(want, M * N).set(accumulate ? start : new Float32Array(M * N).fill(555));
  ref.matmul(call);
  const wantF = arena.f32(want, M * N);
  expectClose(wantF, naive(layout, arena.f32(x, M * Kin), arena.f32(w, N * Kin), M, N, Kin, accumulate ? start : null), 1e-6, 1e-6, `reference ${what}`);
  for (const b of backends) {
    // Without accumulate the old contents (777) must be overwritten, not added to.
    arena.f32(out, M * N).set(accumulate ? start : new Float32Array(M * N).fill(777));
    b.matmul({ ...call, out });
    expectClose(arena.f32(out, M * N), wantF, atol, 1e-5, `${b.name}×${b.threads} ${what}`);
  }
  [x, w, want, out].forEach((p) => arena.release(p));
}

test("nn and tn layouts, with and without accumulate, odd sizes (edges of the 4×8 tile), vs reference", () => {
  let seed = 500;
  for (const layout of ["nn", "tn"] as const) {
    for (const accumulate of [false, true]) {
      for (const M of [1, 3, 5, 33]) {
        for (const N of [1, 7, 9, 70]) {
          for (const Kin of [1, 13, 64]) check(layout, M, N, Kin, accumulate, seed++);
        }
      }
    }
  }
});

test("nn and tn: larger shapes cross the 64 × 64 item blocks and the 128-long reduction chunks", () => {
  let seed = 900;
  for (const layout of ["nn", "tn"] as const) {
    for (const [M, N, Kin] of [[130, 75, 300], [8, 200, 129], [67, 16, 257]]) {
      check(layout, M, N, Kin, false, seed++);
      check(layout, M, N, Kin, true, seed++);
    }
  }
});

test("nn/tn with bias add bias[N] once, like nt", () => {
  const [M, N, Kin] = [6, 11, 9];
  for (const layout of ["nn", "tn"] as const) {
    for (const accumulate of [false, true]) {
      const x = arena.alloc(M * Kin * 4), w = arena.alloc(N * Kin * 4), bias = arena.alloc(N * 4), want = arena.alloc(M * N * 4), out = arena.alloc(M * N * 4);
      fill(arena.f32(x, M * Kin), 1);
      fill(arena.f32(w, N * Kin), 2);
      fill(arena.f32(bias, N), 3);
      arena.f32(want, M * N).fill(0.5);
      const call: MatmulCall = { x, w, bias, out: want, M, N, Kin, wDtype: "f32", layout, accumulate };
      ref.matmul(call);
      const exp = naive(layout, arena.f32(x, M * Kin), arena.f32(w, N * Kin), M, N, Kin, accumulate ? new Float32Array(M * N).fill(0.5) : null);
      const bv = arena.f32(bias, N);
      for (let i = 0; i < M * N; i++) exp[i] += bv[i % N];
      expectClose(arena.f32(want, M * N), exp, 1e-6, 1e-6, `reference ${layout} bias accumulate=${accumulate}`);
      for (const b of backends) {
        arena.f32(out, M * N).fill(0.5);
        b.matmul({ ...call, out });
        expectClose(arena.f32(out, M * N), exp, 1e-5, 1e-5, `${b.name}×${b.threads} ${layout} bias accumulate=${accumulate}`);
      }
      [x, w, bias, want, out].forEach((p) => arena.release(p));
    }
  }
});

test("layouts refuse what they do not support, naming the layout and dtype, in every backend", () => {
  const base = { x: 0, w: 0, bias: 0, out: 0, M: 1, N: 1, Kin: 1 };
  for (const b of [ref, ...backends]) {
    assert.throws(() => b.matmul({ ...base, wDtype: "f16", layout: "nn" }), /layout "nn" needs wDtype f32, got f16/);
    assert.throws(() => b.matmul({ ...base, wDtype: "bf16", layout: "tn" }), /layout "tn" needs wDtype f32, got bf16/);
    assert.throws(() => b.matmul({ ...base, wDtype: "f32", accumulate: true }), /accumulate needs layout nn or tn, got nt/);
    assert.throws(() => b.matmul({ ...base, wDtype: "f32", layout: "tt" as MatmulLayout }), /unknown layout "tt"/);
  }
});

test("training's kernelMatmuls (nn, tnAcc through the layouts) equal the float64 TS backend on every WASM backend", () => {
  // dx = dy·w and dw += dyᵀ·x for a Linear with w [N, Kin], batch M; reference: tsMatmuls in float64.
  const [M, N, Kin] = [37, 21, 45];
  const r = seededRandom(77);
  const rand = (n: number) => Float64Array.from({ length: n }, () => 2 * r() - 1);
  const dy = rand(M * N), w = rand(N * Kin), x = rand(M * Kin), dw0 = rand(N * Kin);
  const ts = tsMatmuls();
  const dxWant = new Float64Array(M * Kin), dwWant = Float64Array.from(dw0);
  ts.nn(dxWant, dy, w, M, N, Kin);
  ts.tnAcc(dwWant, dy, x, M, N, Kin);
  for (const b of backends) {
    const mm = kernelMatmuls(b, arena);
    const [dyA, wA, xA, dxA, dwA] = [M * N, N * Kin, M * Kin, M * Kin, N * Kin].map((n) => arena.f32(arena.alloc(n * 4), n));
    dyA.set(dy);
    wA.set(w);
    xA.set(x);
    dwA.set(dw0);
    mm.nn(dxA, dyA, wA, M, N, Kin);
    mm.tnAcc(dwA, dyA, xA, M, N, Kin);
    expectClose(dxA, dxWant, 1e-5 + 2e-6 * N, 1e-5, `kernelMatmuls ${b.name}×${b.threads} nn`);
    expectClose(dwA, dwWant, 1e-5 + 2e-6 * M, 1e-5, `kernelMatmuls ${b.name}×${b.threads} tnAcc`);
    [dyA, wA, xA, dxA, dwA].forEach((a) => arena.release(a.byteOffset));
  }
});
