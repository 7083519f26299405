// GGML's 4/5/6-bit blocks (src/dtypes/ggml_quants.ts): hand-built blocks decode to the values the
// ggml-common.h layouts define (each field placed by hand here, so a swapped offset, nibble order or
// sign fails), and our quantizers round-trip within one quantization step of each value.
import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeQuant, encodeQuant, GGML_QUANTS, QUANT_LAYOUT, type GgmlQuant } from "../src/dtypes/ggml_quants.js";
import { f32ToF16, f16ToF32 } from "../src/dtypes/codecs.js";
import { rowBytes } from "../src/dtypes/table.js";
import { seededRandom } from "../src/random.js";

const half = (b: Uint8Array, p: number, v: number) => {
  const h = f32ToF16(v);
  b[p] = h & 0xff;
  b[p + 1] = h >> 8;
};

function expectValues(type: GgmlQuant, raw: Uint8Array, want: (j: number) => number): void {
  const n = QUANT_LAYOUT[type].blockValues;
  const got = decodeQuant(type, raw, n, new Float64Array(n));
  for (let j = 0; j < n; j++) assert.equal(got[j], want(j), `${type} value ${j}: got ${got[j]}, want ${want(j)}`);
}

test("dtype table sizes match ggml-common.h (bytes per block)", () => {
  for (const t of GGML_QUANTS) assert.equal(rowBytes(t, QUANT_LAYOUT[t].blockValues), QUANT_LAYOUT[t].blockBytes, t);
  assert.deepEqual(GGML_QUANTS.map((t) => QUANT_LAYOUT[t].blockBytes), [18, 20, 22, 24, 144, 176, 210]);
});

test("q4_0 / q4_1 hand-built blocks: low nibbles are values 0..15, high nibbles 16..31", () => {
  const b = new Uint8Array(18);
  half(b, 0, 0.5);
  for (let j = 0; j < 16; j++) b[2 + j] = j | ((15 - j) << 4);
  expectValues("q4_0", b, (j) => (j < 16 ? j - 8 : 15 - (j - 16) - 8) * 0.5);
  const c = new Uint8Array(20);
  half(c, 0, 0.25);
  half(c, 2, -1.5);
  for (let j = 0; j < 16; j++) c[4 + j] = j | ((15 - j) << 4);
  expectValues("q4_1", c, (j) => (j < 16 ? j : 15 - (j - 16)) * 0.25 - 1.5);
});

test("q5_0 / q5_1 hand-built blocks: bit j of the u32 qh is value j's fifth bit", () => {
  const qh = 0xa5c3_0f01; // an irregular pattern over both halves
  const bit = (j: number) => (qh >>> j) & 1;
  const b = new Uint8Array(22);
  half(b, 0, 0.125);
  for (let k = 0; k < 4; k++) b[2 + k] = (qh >>> (8 * k)) & 0xff;
  for (let j = 0; j < 16; j++) b[6 + j] = ((j * 7) & 15) | (((j * 3) & 15) << 4);
  const nib = (j: number) => (j < 16 ? (j * 7) & 15 : ((j - 16) * 3) & 15);
  expectValues("q5_0", b, (j) => (nib(j) + 16 * bit(j) - 16) * 0.125);
  const c = new Uint8Array(24);
  half(c, 0, 0.125);
  half(c, 2, 2);
  c.set(b.subarray(2, 22), 4);
  expectValues("q5_1", c, (j) => (nib(j) + 16 * bit(j)) * 0.125 + 2);
});

test("q4_k / q5_k hand-built blocks: 6-bit scales and mins of the 8 sub-blocks, nibble halves, qh bit pairs", () => {
  const s = [1, 2, 3, 63, 40, 17, 33, 5], m = [0, 9, 63, 4, 50, 21, 1, 30];
  const b = new Uint8Array(176);
  half(b, 0, 0.5);
  half(b, 2, 0.25);
  // The 12 scale bytes (ggml's get_scale_min_k4): j < 4 keep 6 bits in bytes j and j+4; j >= 4 keep
  // their low 4 bits in byte j+4 and their top 2 bits in the top bits of bytes j-4 and j.
  for (let j = 0; j < 4; j++) {
    b[4 + j] = (s[j] & 63) | ((s[j + 4] >> 4) << 6);
    b[4 + j + 4] = (m[j] & 63) | ((m[j + 4] >> 4) << 6);
    b[4 + j + 8] = (s[j + 4] & 15) | ((m[j + 4] & 15) << 4);
  }
  const q4k = new Uint8Array(144);
  q4k.set(b.subarray(0, 16));
  for (let l = 0; l < 128; l++) q4k[16 + l] = (l * 5) & 255;
  const lo = (i: number) => (i & 63) < 32;
  const byte = (i: number) => ((32 * Math.floor(i / 64) + (i % 32)) * 5) & 255; // qs[32c + l]
  const q4 = (i: number) => (lo(i) ? byte(i) & 15 : byte(i) >> 4);
  const sub = (i: number) => Math.floor(i / 32);
  expectValues("q4_k", q4k, (i) => 0.5 * s[sub(i)] * q4(i) - 0.25 * m[sub(i)]);
  for (let l = 0; l < 32; l++) b[16 + l] = (l * 37) & 255; // qh
  for (let l = 0; l < 128; l++) b[48 + l] = (l * 5) & 255;
  const hb = (i: number) => ((((i % 32) * 37) & 255) >> sub(i)) & 1; // bit (2c) or (2c+1) = bit sub(i)
  expectValues("q5_k", b, (i) => 0.5 * s[sub(i)] * (q4(i) + 16 * hb(i)) - 0.25 * m[sub(i)]);
});

test("q6_k hand-built block: ql nibbles, qh 2-bit fields, int8 scales and the trailing f16 d", () => {
  const b = new Uint8Array(210);
  for (let i = 0; i < 128; i++) b[i] = (i * 11) & 255;
  for (let i = 0; i < 64; i++) b[128 + i] = (i * 29 + 3) & 255;
  const sc = Array.from({ length: 16 }, (_, i) => (i * 19) % 256 - 128);
  sc.forEach((v, i) => (b[192 + i] = v & 255));
  half(b, 208, 0.0625);
  // value i: half h = i >> 7, k = (i >> 5) & 3, l = i & 31.
  const want = (i: number) => {
    const h = i >> 7, k = (i >> 5) & 3, l = i & 31;
    const qlb = b[64 * h + (k & 1 ? 32 : 0) + l];
    const nib = k < 2 ? qlb & 15 : qlb >> 4;
    const q = nib | (((b[128 + 32 * h + l] >> (2 * k)) & 3) << 4);
    return 0.0625 * sc[8 * h + 2 * k + (l >> 4)] * (q - 32);
  };
  expectValues("q6_k", b, want);
});

test("q4_0 quantizer: d = max/-8 keeps the sign of the largest-magnitude value (ggml's quantize_row_q4_0_ref)", () => {
  const x = Float32Array.from({ length: 32 }, (_, i) => (i - 16) * 0.25); // max |x| = 4 at x = -4
  const raw = encodeQuant("q4_0", x);
  assert.equal(f16ToF32(raw[0] | (raw[1] << 8)), 0.5, "d = -4 / -8");
  assert.equal(raw[2] & 15, 0, "x = -4 → q = 0");
  assert.equal(raw[2 + 15] >> 4, 15, "x = 3.75 → 3.75·2 + 8.5 = 16, clamped to 15");
  const back = decodeQuant("q4_0", raw, 32, new Float64Array(32));
  // Even i sit on the grid (multiples of d); odd i are halfway and trunc(x/d + 8.5) rounds them up.
  for (let i = 0; i < 31; i++) assert.equal(back[i], i % 2 === 0 ? x[i] : x[i] + 0.25, `value ${i}`);
  assert.equal(back[31], 3.5, "the clamped code 15 reads (15 - 8)·d");
});

/** One quantization step of each value: the spacing of the grid its block (or sub-block) uses. */
function steps(type: GgmlQuant, raw: Uint8Array, n: number): Float64Array {
  // Decoded values of one (sub-)block lie on an affine grid of spacing d (legacy) or d·s (k-quants), so
  // the smallest positive gap between them is a multiple of that spacing (the spacing itself when two
  // neighbouring codes occur, which random data makes certain). Derived from the decoded values, not
  // from the layout under test.
  const v = decodeQuant(type, raw, n, new Float64Array(n));
  const group = type === "q6_k" ? 16 : 32;
  const out = new Float64Array(n);
  for (let g = 0; g < n; g += group) {
    const vals = Array.from(v.subarray(g, g + group)).sort((a, b) => a - b);
    let gap = 0; // the smallest positive gap between distinct decoded values is the grid step
    for (let i = 1; i < vals.length; i++) if (vals[i] > vals[i - 1]) gap = gap === 0 ? vals[i] - vals[i - 1] : Math.min(gap, vals[i] - vals[i - 1]);
    out.fill(gap, g, g + group);
  }
  return out;
}

for (const type of GGML_QUANTS) {
  test(`${type} quantizer round trip: every value within one grid step, blocks independent`, () => {
    const QK = QUANT_LAYOUT[type].blockValues;
    const rnd = seededRandom(QK + QUANT_LAYOUT[type].blockBytes);
    const n = 4 * QK;
    const x = Float32Array.from({ length: n }, (_, i) => (rnd() - 0.5) * (i < QK ? 0.02 : i < 2 * QK ? 2 : 0.2) + (i >= 3 * QK ? 0.05 : 0));
    const raw = encodeQuant(type, x);
    assert.equal(raw.length, rowBytes(type, n));
    const v = decodeQuant(type, raw, n, new Float64Array(n));
    const step = steps(type, raw, n);
    let worst = 0, at = -1;
    for (let i = 0; i < n; i++) {
      const e = Math.abs(v[i] - x[i]) / step[i];
      if (e > worst) [worst, at] = [e, i];
    }
    assert.ok(worst <= 1, `${type}: value ${at} = ${x[at]} decodes to ${v[at]}: ${worst.toFixed(2)} steps (step ${step[at]})`);
    // The float32 decode is the float64 one rounded once (ggml's dequantize_row_* bits).
    const v32 = decodeQuant(type, raw, n, new Float32Array(n));
    for (let i = 0; i < n; i++) assert.equal(v32[i], Math.fround(v[i]), `${type} f32 decode of value ${i}`);
    // An all-zero block stays zero.
    const z = decodeQuant(type, encodeQuant(type, new Float32Array(QK)), QK, new Float64Array(QK));
    assert.ok(z.every((t) => t === 0), `${type}: zeros decode to zeros`);
  });
}

test("encodeQuant refuses partial blocks and non-finite weights", () => {
  assert.throws(() => encodeQuant("q4_k", new Float32Array(128)), /128 values is not a multiple of 256/);
  assert.throws(() => encodeQuant("q4_0", Float32Array.from({ length: 32 }, (_, i) => (i === 3 ? NaN : 1))), /value 3 is NaN/);
});
