// Q8_0 weights read in place (src/kernels/assembly/q8.ts) against the float64 reference, which
// dequantizes d·q exactly: decode (M = 1, 2: the block-wise matvec) and prefill (M = 5, 70: rows
// dequantized into scratch, then the f32 tiles), on shapes with a row tail (N % 4), several
// blocks per row and several items per call, at 1 and 2 threads, plain and relaxed SIMD.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Arena } from "../src/kernels/memory.js";
import { referenceKernels } from "../src/kernels/reference.js";
import { decodeQ8_0, encodeQ8_0 } from "../src/dtypes/q8_0.js";
import { seededRandom } from "../src/random.js";
import { wasmBackends } from "./kernel-backends.js";

const arena = new Arena({ initialBytes: 32 << 20 });
const ref = referenceKernels(arena);
const variants = [{ threads: 1, relaxed: false }, { threads: 1, relaxed: true }, { threads: 2, relaxed: true }];
const backends = wasmBackends(arena, variants);

// f32 accumulation over Kin products (blocks summed, then scaled by d once per block): the error
// is a few ulps of Σ|x·w|; 1e-6 of it is ~20× what was observed, and a misread block, scale or
// row would be off by O(1) of it.
const RTOL = 1e-6;

test("GGML Q8_0 encode/decode: d = max|x|/127 as f16, q rounds half away from zero", () => {
  const x = Float32Array.from({ length: 64 }, (_, i) => (i < 32 ? (i - 16) * 0.25 : 0));
  x[5] = -1.125; // q = -1.125 / (4/127) = -35.72 → -36
  const raw = encodeQ8_0(x);
  assert.equal(raw.length, 68);
  const dv = new DataView(raw.buffer);
  assert.equal(dv.getUint16(0, true), 0x2808, "d = 4/127 → f16 0x2808 = (1 + 8/1024)/32 = 0.031494");
  assert.equal(dv.getInt8(2 + 5), -36);
  assert.equal(dv.getInt8(2), -127, "-4 / d");
  assert.equal(dv.getUint16(34, true), 0, "an all-zero block has d = 0");
  const back = decodeQ8_0(raw, 64);
  for (let i = 0; i < 32; i++) assert.ok(Math.abs(back[i] - x[i]) <= 0.5 * 0.0315, `round trip value ${i}: ${back[i]} vs ${x[i]}`);
});

for (const [M, N, Kin] of [[1, 37, 96], [2, 203, 64], [1, 768, 768], [5, 37, 96], [70, 45, 160]]) {
  test(`q8_0 matmul M=${M} N=${N} Kin=${Kin}: WASM equals the float64 reference within ${RTOL}·Σ|x·w|`, () => {
    const rnd = seededRandom(M * 1000 + N);
    const wf = Float32Array.from({ length: N * Kin }, () => (rnd() - 0.5) * 0.2);
    const raw = encodeQ8_0(wf);
    const x = arena.alloc(M * Kin * 4), w = arena.alloc(raw.length), want = arena.alloc(M * N * 4), out = arena.alloc(M * N * 4);
    const xs = arena.f32(x, M * Kin);
    for (let i = 0; i < xs.length; i++) xs[i] = (rnd() - 0.5) * 4;
    arena.u8(w, raw.length).set(raw);
    const call = { x, w, bias: 0, out: want, M, N, Kin, wDtype: "q8_0" as const };
    ref.matmul(call);
    const wd = decodeQ8_0(raw, N * Kin);
    const exp = arena.f32(want, M * N).slice();
    backends.forEach((k, b) => {
      k.matmul({ ...call, out });
      const got = arena.f32(out, M * N);
      for (let m = 0; m < M; m++) {
        for (let n = 0; n < N; n++) {
          let mag = 0;
          for (let i = 0; i < Kin; i++) mag += Math.abs(xs[m * Kin + i] * wd[n * Kin + i]);
          const err = Math.abs(got[m * N + n] - exp[m * N + n]);
          assert.ok(err <= RTOL * mag, `${JSON.stringify(variants[b])}: out[${m}, ${n}] = ${got[m * N + n]}, want ${exp[m * N + n]}: error ${err.toExponential(2)} > ${RTOL}·${mag.toExponential(2)}`);
        }
      }
    });
    for (const p of [x, w, want, out]) arena.release(p);
  });
}

test("q8_0 matmul: Kin that is not a multiple of 32 is refused by both backends", () => {
  for (const k of [ref, ...backends]) {
    assert.throws(() => k.matmul({ x: 0, w: 0, bias: 0, out: 0, M: 1, N: 1, Kin: 48, wDtype: "q8_0" }), /q8_0 weights need Kin to be a multiple of 32, got 48/);
  }
});

test("q8_0 scales: every one of the 65536 f16 bit patterns (subnormals, ±0, ±inf, NaN) is read exactly, decode M = 1, 2 and prefill", () => {
  // Row n is one block with d = bits n and all 32 codes 1; x = 1 (x2 for the second row), so
  // out[n] = 32·d exactly in f32 (|32·d| <= 2^21), inf for an infinite d, NaN for a NaN one.
  const N = 65536, Kin = 32;
  const raw = new Uint8Array(N * 34);
  const dv = new DataView(raw.buffer);
  for (let n = 0; n < N; n++) {
    dv.setUint16(n * 34, n, true);
    raw.fill(1, n * 34 + 2, n * 34 + 34);
  }
  const want = decodeQ8_0(raw, N * Kin);
  const w = arena.alloc(raw.length), x = arena.alloc(5 * Kin * 4), out = arena.alloc(5 * N * 4);
  arena.u8(w, raw.length).set(raw);
  for (const M of [1, 2, 5]) {
    const xs = arena.f32(x, M * Kin);
    for (let m = 0; m < M; m++) xs.fill(m + 1, m * Kin, (m + 1) * Kin);
    for (const b of backends) {
      b.matmul({ x, w, bias: 0, out, M, N, Kin, wDtype: "q8_0" });
      const got = arena.f32(out, M * N);
      for (let m = 0; m < M; m++) {
        for (let n = 0; n < N; n++) {
          const e = Math.fround(32 * (m + 1) * want[n * Kin]), g = got[m * N + n];
          // ±0 alike (the sum starts at +0); NaN for NaN
          if (!(g === e || (Number.isNaN(g) && Number.isNaN(e)))) assert.fail(`${b.name}×${b.threads} M=${M}: scale bits 0x${n.toString(16)} row ${m}: got ${g}, want ${e}`);
        }
      }
    }
  }
  [w, x, out].forEach((p) => arena.release(p));
});
