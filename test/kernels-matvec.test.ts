// The f16 matvec fast path (src/kernels/assembly/matmul.ts, matvecF16) against the reference on its
// edges: |x| near and above 2^14 (the h2f path; x·2^112 overflows from 2^16), NaN x, an inf weight in
// a 4-row block with a whole 8-half chunk, and tiny weights (f16 subnormals) times tiny x.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { Arena } from "../src/kernels/memory.js";
import { referenceKernels } from "../src/kernels/reference.js";
import { createKernels } from "../src/kernels/index.js";
import { enableRelaxedSimdFlag } from "../src/kernels/wasm-node.js";
import { encodeF16 } from "../src/kvcache/convert.js";
import { seededRandom } from "../src/random.js";

enableRelaxedSimdFlag();
const arena = new Arena({ initialBytes: 16 << 20 });
const ref = referenceKernels(arena);
const wasm = await createKernels({ arena, backend: "wasm", threads: 1, relaxed: "auto" });
after(() => wasm.close());

/** Runs M = 1 with x and w (f32 values, w encoded to f16) on both backends; rtol on |x|·|w| sums. */
function check(name: string, xs: Float32Array, wf: Float32Array, N: number, rtol: number): void {
  const Kin = xs.length;
  const x = arena.alloc(Kin * 4), w = arena.alloc(N * Kin * 2), out = arena.alloc(N * 4), want = arena.alloc(N * 4);
  arena.f32(x, Kin).set(xs);
  encodeF16(wf, arena.u16(w, N * Kin));
  const call = { x, w, bias: 0, out: want, M: 1, N, Kin, wDtype: "f16" as const };
  ref.matmul(call);
  wasm.matmul({ ...call, out });
  const got = arena.f32(out, N), exp = arena.f32(want, N);
  const wd = new Float32Array(N * Kin);
  const hw = arena.u16(w, N * Kin);
  for (let i = 0; i < hw.length; i++) { const h = hw[i], e = (h >> 10) & 31, m = h & 1023; wd[i] = (h & 0x8000 ? -1 : 1) * (e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15)); }
  let worst = 0, at = -1;
  for (let n = 0; n < N; n++) {
    if (Number.isNaN(exp[n]) || !Number.isFinite(exp[n])) {
      assert.ok(Object.is(got[n], exp[n]) || (Number.isNaN(got[n]) && Number.isNaN(exp[n])), `${name}: out[${n}] = ${got[n]}, want ${exp[n]} (exact for non-finite)`);
      continue;
    }
    let mag = 0;
    for (let k = 0; k < Kin; k++) mag += Math.abs(xs[k] * wd[n * Kin + k]);
    const err = Math.abs(got[n] - exp[n]) - rtol * mag; // NaN when got is NaN: counts as the worst
    if (!(err <= Math.max(worst, 0))) { worst = Number.isNaN(err) ? Infinity : err; at = n; }
  }
  assert.ok(at < 0, `${name}: out[${at}] = ${got[at]}, want ${exp[at]}, error exceeds ${rtol}·Σ|x·w| by ${worst}`);
  [x, w, out, want].forEach((p) => arena.release(p));
}

function rand(n: number, scale: number, seed: number): Float32Array {
  const r = seededRandom(seed), a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = scale * (2 * r() - 1);
  return a;
}

test("f16 matvec: |x| just below 2^14 (fast path) and above it (h2f path) match the reference", () => {
  for (const [scale, seed] of [[16383, 1], [16385, 2], [60000, 3], [1e5, 11], [1e-30, 4]] as const) {
    const xs = rand(72, scale, seed);
    xs[5] = scale; // the max itself
    check(`|x| <= ${scale}`, xs, rand(9 * 72, 1, seed + 10), 9, 1e-6);
  }
});

test("f16 matvec: a NaN in x gives NaN rows as in the reference; inf weights stay inf", () => {
  const xs = rand(40, 1, 5);
  xs[17] = NaN;
  check("NaN x", xs, rand(8 * 40, 1, 6), 8, 1e-6);
  const wf = rand(8 * 40, 1, 7);
  wf[2 * 40 + 3] = Infinity; // row 2, inside the first 8-half chunk
  wf[5 * 40 + 33] = -Infinity; // row 5, a later chunk
  check("inf w", rand(40, 1, 8).map(Math.abs), wf, 8, 1e-6);
});

test("f16 matvec: subnormal weights and small x keep their products (no flush to 0)", () => {
  const wf = rand(8 * 64, 6e-5, 9); // many f16 subnormals (|w| < 6.1e-5)
  check("subnormal w", rand(64, 1e-3, 10), wf, 8, 1e-6);
});

test("f16 matvec: wFinite (no in-loop inf/NaN check) gives bit-identical outputs for finite weights", () => {
  // Shapes cover full 4-row blocks, a row tail (N % 4) and a Kin tail (Kin % 8); several items per call;
  // Kin >= 2048 takes the copy without read-ahead (assembly/matmul.ts READ_AHEAD_BELOW).
  for (const [N, Kin, seed] of [[8, 64, 21], [203, 77, 22], [768, 768, 23], [37, 2053, 24]] as const) {
    const x = arena.alloc(Kin * 4), w = arena.alloc(N * Kin * 2), a = arena.alloc(N * 4), b = arena.alloc(N * 4);
    arena.f32(x, Kin).set(rand(Kin, 2, seed));
    encodeF16(rand(N * Kin, 0.1, seed + 100), arena.u16(w, N * Kin));
    const call = { x, w, bias: 0, out: a, M: 1, N, Kin, wDtype: "f16" as const };
    wasm.matmul(call);
    wasm.matmul({ ...call, out: b, wFinite: true });
    const ga = new Uint32Array(arena.f32(a, N).slice().buffer), gb = new Uint32Array(arena.f32(b, N).slice().buffer);
    const at = ga.findIndex((v, i) => v !== gb[i]);
    assert.ok(at < 0, `N=${N} Kin=${Kin}: out[${at}] bits ${gb[at]?.toString(16)} with wFinite, ${ga[at]?.toString(16)} without`);
    [x, w, a, b].forEach((p) => arena.release(p));
  }
});
