// Small hand-checkable cases for the reference kernels and the f16/bf16 conversions.
// The conversion bits below were produced by PyTorch 1.13 (t.half() / t.bfloat16() viewed as int16).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Arena } from "../src/kernels/memory.js";
import { referenceKernels, referenceAttention } from "../src/kernels/reference.js";
import { f32ToF16, f32ToBf16, f16ToF32, bf16ToF32, quantizeInt8Row } from "../src/dtypes/codecs.js";

const VALUES = [0, 1, -2.5, 65504, 65520, 1e-8, 6e-8, 3e-8, 2.9802322387695312e-8, 1e-5, 0.1, 3.14159, -1e6, Infinity, -Infinity, 1e-40, 3.4e38];
// [f16 bits, bf16 bits] from torch for each value above.
const TORCH_BITS = [[0, 0], [15360, 16256], [49408, 49184], [31743, 18304], [31744, 18304], [0, 12844], [1, 13185], [1, 13057], [0, 13056],
  [168, 14120], [11878, 15821], [16968, 16457], [64512, 51572], [31744, 32640], [64512, 65408], [0, 1], [31744, 32640]];

test("f16 and bf16 encoders match PyTorch bit for bit (round to nearest even, subnormals, Inf)", () => {
  VALUES.forEach((v, i) => {
    assert.equal(f32ToF16(v), TORCH_BITS[i][0], `f16 of ${v}: got ${f32ToF16(v)}, torch ${TORCH_BITS[i][0]}`);
    assert.equal(f32ToBf16(v), TORCH_BITS[i][1], `bf16 of ${v}: got ${f32ToBf16(v)}, torch ${TORCH_BITS[i][1]}`);
  });
  assert.ok(Number.isNaN(f16ToF32(f32ToF16(NaN))) && Number.isNaN(bf16ToF32(f32ToBf16(NaN))), "NaN must stay NaN");
  // Every finite f16 value survives f16 -> f32 -> f16 unchanged.
  for (let h = 0; h < 65536; h++) {
    if (((h >>> 10) & 0x1f) === 31) continue;
    if (f32ToF16(f16ToF32(h)) !== h) assert.fail(`f16 round trip of bits ${h} gave ${f32ToF16(f16ToF32(h))}`);
  }
});

test("int8 rows: scale = max|x|/127, error <= scale/2 per element, NaN rows read back NaN", () => {
  const row = [0.5, -1.27, 0.01, 1.0];
  const q = new Int8Array(4);
  const scale = quantizeInt8Row(row, q);
  assert.equal(scale, Math.fround(1.27 / 127));
  row.forEach((x, i) => assert.ok(Math.abs(q[i] * scale - x) <= scale / 2 + 1e-9, `element ${i}: ${q[i] * scale} vs ${x}, tolerance ${scale / 2}`));
  assert.equal(quantizeInt8Row([0, 0], new Int8Array(2)), 0);
  assert.ok(Number.isNaN(quantizeInt8Row([1, NaN], new Int8Array(2))));
});

test("reference attention: one query over two keys matches a hand computation; masked keys are ignored", () => {
  const arena = new Arena({ shared: false });
  const kern = referenceKernels(arena);
  const [T, H, K, D] = [1, 2, 1, 2];
  const q = arena.alloc(T * H * D * 4), out = arena.alloc(T * H * D * 4);
  const kPtr = arena.alloc(3 * D * 4), vPtr = arena.alloc(3 * D * 4);
  arena.f32(q, 4).set([1, 0, 0, 2]); // head 0 = [1, 0], head 1 = [0, 2]
  arena.f32(kPtr, 6).set([1, 0, 0, 1, 9, 9]); // rows at positions 0, 1, 2 (row 2 is in the future)
  arena.f32(vPtr, 6).set([1, 2, 3, 4, 100, 100]);
  const seg = { kPtr, vPtr, rows: 3, headStride: 3 * D * 4, firstPos: 0 };
  const probs: number[][] = [];
  referenceAttention(arena, { q, out, T, H, K, D, qPos0: 1, scale: 1, window: null, kvDtype: "f32", segments: [seg] },
    { heads: [1], sink: (_t, _h, _pos, p) => probs.push(Array.from(p)) });
  // head 0: scores [1, 0] -> p = [e/(e+1), 1/(e+1)]; head 1: scores [0, 2] -> p = [1/(1+e²), e²/(1+e²)]
  const e = Math.E, e2 = e * e;
  const want = [(1 * e + 3) / (e + 1), (2 * e + 4) / (e + 1), (1 + 3 * e2) / (1 + e2), (2 + 4 * e2) / (1 + e2)];
  const got = arena.f32(out, 4);
  want.forEach((w, i) => assert.ok(Math.abs(got[i] - w) < 1e-6, `out[${i}] = ${got[i]}, want ${w}, tolerance 1e-6 (f32 output)`));
  assert.deepEqual(probs.length, 1);
  assert.ok(Math.abs(probs[0][1] - e2 / (1 + e2)) < 1e-12);
  // A window of 1 leaves only the key at the query's own position.
  kern.attention({ q, out, T, H, K, D, qPos0: 1, scale: 1, window: 1, kvDtype: "f32", segments: [seg] });
  assert.deepEqual(Array.from(arena.f32(out, 4)), [3, 4, 3, 4]);
});

test("reference matmul: f32, f16 and bf16 weights with bias, PyTorch Linear layout", () => {
  const arena = new Arena({ shared: false });
  const kern = referenceKernels(arena);
  const [M, N, Kin] = [2, 3, 2];
  const x = arena.alloc(M * Kin * 4), bias = arena.alloc(N * 4), out = arena.alloc(M * N * 4);
  arena.f32(x, 4).set([1, 2, 3, 4]);
  arena.f32(bias, 3).set([0.5, 0, -1]);
  const wVals = [1, 0, 0, 1, 1, 1]; // [N, Kin]
  const want = [1.5, 2, 2, 3.5, 4, 6];
  for (const wDtype of ["f32", "f16", "bf16"] as const) {
    const w = arena.alloc(N * Kin * 4);
    if (wDtype === "f32") arena.f32(w, 6).set(wVals);
    else arena.u16(w, 6).set(wVals.map(wDtype === "f16" ? f32ToF16 : f32ToBf16));
    kern.matmul({ x, w, bias, out, M, N, Kin, wDtype });
    assert.deepEqual(Array.from(arena.f32(out, 6)), want, `matmul with ${wDtype} weights`);
  }
});
