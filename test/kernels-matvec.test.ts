// The f16 matvec fast path (src/kernels/assembly/matvec.ts, matvecF16) against the reference on its
// edges: |x| near and above 2^14 (the h2f path; x·2^112 overflows from 2^16), NaN x, an inf weight in
// a 4-row block with a whole 8-half chunk, and tiny weights (f16 subnormals) times tiny x; then the
// batched decode (M = 2, 3) for every weight dtype on the same edges.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { Arena } from "../src/kernels/memory.js";
import { referenceKernels } from "../src/kernels/reference.js";
import { createKernels } from "../src/kernels/index.js";
import { enableRelaxedSimdFlag } from "../src/kernels/wasm-node.js";
import { bf16ToF32, encodeBf16, encodeF16, f16DecodeTable } from "../src/dtypes/codecs.js";
import { decodeQ8_0, encodeQ8_0 } from "../src/dtypes/q8_0.js";
import type { WeightDtype } from "../src/kernels/types.js";
import { seededRandom } from "../src/random.js";
import { wasmBackends } from "./kernel-backends.js";

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
  // Kin >= 2048 takes the copy without read-ahead (assembly/matvec.ts READ_AHEAD_BELOW).
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

// Batched decode: M = 2 and 3 rows of x against one w (the serve batch), where the f16 kernel reads
// each w vector once for all rows (assembly/matvec.ts matvecF16Rows). Every backend variant (1 and 2
// threads: several items and a short last one; plain and relaxed SIMD), against the float64 reference
// with rtol 1e-6 on Σ|x·w| as above, and each row bit for bit against an M = 1 call of the same
// backend (the batched kernels keep the single-row summation order, so batching changes no token).
const batchBackends = wasmBackends(arena, [{ threads: 1, relaxed: false }, { threads: 2, relaxed: false }, { threads: 1, relaxed: true }, { threads: 2, relaxed: true }]);

interface BatchCase {
  name: string;
  rows: Float32Array[]; // M rows of Kin values
  wf: Float32Array; // [N, Kin] values, encoded to wDtype (inf/NaN kept for f16)
  N: number;
  wDtype: WeightDtype;
  wFinite: boolean;
}

/** w encoded to its dtype, and the values the kernels see (decoded back), both [N, Kin]. */
function encodeW(wf: Float32Array, wDtype: WeightDtype): { bytes: Uint8Array; values: Float32Array } {
  if (wDtype === "f32") return { bytes: new Uint8Array(wf.slice().buffer), values: wf };
  if (wDtype === "q8_0") {
    const bytes = encodeQ8_0(wf);
    return { bytes, values: decodeQ8_0(bytes, wf.length) };
  }
  const h = new Uint16Array(wf.length);
  if (wDtype === "f16") encodeF16(wf, h);
  else encodeBf16(wf, h);
  const t = f16DecodeTable();
  return { bytes: new Uint8Array(h.buffer), values: Float32Array.from(h, (b) => (wDtype === "f16" ? t[b] : bf16ToF32(b))) };
}

function checkBatch(c: BatchCase): void {
  const { rows, N, wDtype, wFinite } = c;
  const M = rows.length, Kin = rows[0].length;
  const { bytes, values } = encodeW(c.wf, wDtype);
  const x = arena.alloc(M * Kin * 4), w = arena.alloc(bytes.length), want = arena.alloc(M * N * 4), out = arena.alloc(M * N * 4), one = arena.alloc(N * 4);
  rows.forEach((r, m) => arena.f32(x, M * Kin).set(r, m * Kin));
  arena.u8(w, bytes.length).set(bytes);
  const call = { x, w, bias: 0, out: want, M, N, Kin, wDtype, wFinite };
  ref.matmul(call);
  const exp = arena.f32(want, M * N).slice();
  for (const b of batchBackends) {
    const what = `${c.name} (${b.name}×${b.threads}, M=${M} N=${N} Kin=${Kin} ${wDtype}${wFinite ? " wFinite" : ""})`;
    arena.f32(out, M * N).fill(777);
    b.matmul({ ...call, out });
    const got = arena.f32(out, M * N).slice();
    let worst = 0, at = -1;
    for (let i = 0; i < M * N; i++) {
      if (!Number.isFinite(exp[i])) {
        assert.ok(Object.is(got[i], exp[i]) || (Number.isNaN(got[i]) && Number.isNaN(exp[i])), `${what}: out[${i}] = ${got[i]}, want ${exp[i]} (exact for non-finite)`);
        continue;
      }
      const [m, n] = [Math.floor(i / N), i % N];
      let mag = 0;
      for (let k = 0; k < Kin; k++) mag += Math.abs(rows[m][k] * values[n * Kin + k]);
      const err = Math.abs(got[i] - exp[i]) - 1e-6 * mag; // NaN when got is NaN: counts as the worst
      if (!(err <= Math.max(worst, 0))) { worst = Number.isNaN(err) ? Infinity : err; at = i; }
    }
    assert.ok(at < 0, `${what}: out[${at}] = ${got[at]}, want ${exp[at]}, error exceeds 1e-6·Σ|x·w| by ${worst}`);
    for (let m = 0; m < M; m++) {
      b.matmul({ ...call, x: x + m * Kin * 4, M: 1, out: one });
      const g = new Uint32Array(got.buffer, m * N * 4, N), s = new Uint32Array(arena.f32(one, N).slice().buffer);
      const n = s.findIndex((v, j) => v !== g[j]);
      assert.ok(n < 0, `${what}: row ${m} out[${n}] bits ${g[n]?.toString(16)} batched, ${s[n]?.toString(16)} as M = 1 (tolerance 0: bit-identical)`);
    }
  }
  [x, w, want, out, one].forEach((p) => arena.release(p));
}

/** M rows of Kin values in [-scale, scale), scale per row. */
function batchRows(Kin: number, scales: number[], seed: number): Float32Array[] {
  return scales.map((s, m) => rand(Kin, s, seed + m));
}

// N = 203 and 37 leave a row tail (N % 4); Kin = 77 a Kin tail (Kin % 8); Kin = 2053 takes the copy
// without read-ahead (READ_AHEAD_BELOW); q8_0 needs Kin % 32 == 0.
const BATCH_SHAPES: [number, number][] = [[203, 77], [64, 768], [37, 2053]];

test("batched matvec, M = 2 and 3: f16 (wFinite or checked), f32, bf16 and q8_0 rows match the reference and M = 1", () => {
  let seed = 300;
  for (const wDtype of ["f16", "f32", "bf16", "q8_0"] as WeightDtype[]) {
    for (const [N, Kin0] of BATCH_SHAPES) {
      const Kin = wDtype === "q8_0" ? Math.ceil(Kin0 / 32) * 32 : Kin0;
      for (const M of [2, 3]) {
        for (const wFinite of wDtype === "f16" ? [true, false] : [false]) {
          checkBatch({ name: "random rows", rows: batchRows(Kin, Array(M).fill(2), seed), wf: rand(N * Kin, 0.1, seed + 10), N, wDtype, wFinite });
          seed += 20;
        }
      }
    }
  }
});

test("batched f16 matvec: rows with |x| >= 2^14 or NaN take the exact path beside fast rows (any position)", () => {
  // 20000 > 2^14: x·2^112 would overflow, so that row widens w per product (h2f); the remaining
  // fast rows still share one pass, also when they are not adjacent ([fast, big, fast]).
  const layouts = [[2, 20000], [20000, 2], [2, 2, 20000], [20000, 2, 2], [2, 20000, 2], [20000, 20000, 2], [2, NaN, 2]];
  let seed = 500;
  for (const [N, Kin] of BATCH_SHAPES) {
    for (const scales of layouts) {
      const rows = batchRows(Kin, scales.map((s) => (Number.isNaN(s) ? 1 : s)), seed);
      scales.forEach((s, m) => { if (Number.isNaN(s)) rows[m][Kin >> 1] = NaN; else rows[m][3] = s; });
      for (const wFinite of [true, false]) checkBatch({ name: `row scales [${scales.join(", ")}]`, rows, wf: rand(N * Kin, 0.1, seed + 10), N, wDtype: "f16", wFinite });
      seed += 20;
    }
  }
});

test("batched f16 matvec: inf/NaN weights (no wFinite) give the reference's inf/NaN and exact neighbours", () => {
  let seed = 700;
  for (const [N, Kin] of BATCH_SHAPES) {
    const wf = rand(N * Kin, 0.1, seed);
    wf[2 * Kin + 3] = Infinity; // a 4-row block's first chunk
    wf[5 * Kin + Kin - 1] = -Infinity; // the Kin tail (or the last chunk)
    wf[(N - 1) * Kin + 9] = NaN; // the row tail (N % 4) or the last block
    wf[9 * Kin + 17] = 65504 * 2; // rounds to inf in f16
    for (const M of [2, 3]) {
      const rows = batchRows(Kin, Array(M).fill(1), seed + 1).map((r) => r.map(Math.abs)); // inf·x keeps its sign
      checkBatch({ name: "inf/NaN w", rows, wf, N, wDtype: "f16", wFinite: false });
    }
    seed += 20;
  }
});
