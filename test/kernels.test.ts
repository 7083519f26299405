// The WASM SIMD kernels (1 and 2 threads, plain and relaxed SIMD builds) against the plain-TS
// reference kernels (src/kernels/reference.ts, float64), which are the specification.
//
// Legend: T query positions, H query heads, K kv heads, G = H/K, D head dim, S cached rows.
//
// Tolerances (reason): attention outputs are convex combinations of V rows with |v| ~ 1, the
// kernels accumulate in f32 and use a polynomial exp2 (rel. error ~2e-7), so |err| <= 2e-5 + 2e-5·|want|.
// Caches in f16/bf16/int8 are decoded exactly the same way by both sides, so the same bound holds.
// matmul: f32 sums of Kin products, |err| <= 1e-5 + 4e-7·Kin·mean|x·w| ... stated per case below.
import { test } from "node:test";
import { seededRandom } from "../src/random.js";
import assert from "node:assert/strict";
import { Arena } from "../src/kernels/memory.js";
import { referenceKernels } from "../src/kernels/reference.js";
import type { AttentionCall, Kernels, KvDtype, KvSegment, WeightDtype } from "../src/kernels/types.js";
import { encodeBf16, encodeF16, quantizeInt8Row } from "../src/dtypes/codecs.js";
import { wasmBackends } from "./kernel-backends.js";

const arena = new Arena({ initialBytes: 64 << 20 });
const ref = referenceKernels(arena);
const backends = wasmBackends(arena, [{ threads: 1, relaxed: false }, { threads: 2, relaxed: false }, { threads: 2, relaxed: true }]);

/** Deterministic PRNG (mulberry32) so every failure reproduces. */
const rng = seededRandom;
function fill(a: Float32Array, seed: number, scale = 1): void {
  const r = rng(seed);
  for (let i = 0; i < a.length; i++) a[i] = (2 * r() - 1) * scale;
}

/** Largest excess of |got - want| over atol + rtol·|want|; NaN must meet NaN. Throws with the index. */
function expectClose(got: Float32Array, want: Float32Array, atol: number, rtol: number, what: string): void {
  let worst = -Infinity, at = -1, maxErr = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    if (Number.isNaN(w) || Number.isNaN(g)) {
      if (Number.isNaN(w) !== Number.isNaN(g)) { worst = Infinity; at = i; break; }
      continue;
    }
    const err = Math.abs(g - w);
    maxErr = Math.max(maxErr, err);
    const excess = err - (atol + rtol * Math.abs(w));
    if (excess > worst) { worst = excess; at = i; }
  }
  if (worst > 0) {
    assert.fail(`${what}: |got - want| exceeds ${atol} + ${rtol}·|want| at index ${at}: got ${got[at]}, want ${want[at]} (largest error ${maxErr})`);
  }
}

interface CacheSpec {
  K: number;
  D: number;
  dtype: KvDtype;
  segments: { rows: number; firstPos: number }[];
  seed: number;
  valueScale?: number;
}

/** Writes random K/V rows for each segment (each its own allocation, like paged blocks). */
function makeCache(c: CacheSpec): KvSegment[] {
  const { K, D, dtype } = c;
  const eb = dtype === "f32" ? 4 : dtype === "int8" ? 1 : 2;
  return c.segments.map((s, i) => {
    const headStride = Math.ceil((s.rows * D * eb) / 64) * 64 + 64; // heads not adjacent: catches stride bugs
    const seg: KvSegment = { kPtr: 0, vPtr: 0, rows: s.rows, headStride, firstPos: s.firstPos };
    for (const which of ["k", "v"] as const) {
      const ptr = arena.alloc(K * headStride, "test kv");
      const vals = new Float32Array(K * s.rows * D);
      fill(vals, c.seed * 101 + i * 7 + (which === "k" ? 1 : 2), c.valueScale ?? 1);
      let scales = 0;
      if (dtype === "int8") scales = arena.alloc(4 * K * s.rows, "test scales");
      for (let k = 0; k < K; k++) {
        for (let r = 0; r < s.rows; r++) {
          const row = vals.subarray((k * s.rows + r) * D, (k * s.rows + r + 1) * D);
          const at = ptr + k * headStride + r * D * eb;
          if (dtype === "f32") arena.f32(at, D).set(row);
          else if (dtype === "f16") encodeF16(row, arena.u16(at, D));
          else if (dtype === "bf16") encodeBf16(row, arena.u16(at, D));
          else arena.f32(scales + 4 * (k * s.rows + r), 1)[0] = quantizeInt8Row(row, arena.i8(at, D));
        }
      }
      if (which === "k") {
        seg.kPtr = ptr;
        if (scales) seg.kScalePtr = scales;
      } else {
        seg.vPtr = ptr;
        if (scales) seg.vScalePtr = scales;
      }
      seg.scaleHeadStride = dtype === "int8" ? s.rows : undefined;
    }
    return seg;
  });
}

interface Case {
  T: number;
  H: number;
  K: number;
  D: number;
  dtype: KvDtype;
  segments: { rows: number; firstPos: number }[];
  qPos0: number;
  window: number | null;
  seed: number;
  qScale?: number; // large values give extreme logits
  kvFinite?: boolean; // passed to the WASM backends (the reference ignores it)
  softcap?: number;
}

/** Runs one call on the reference and every WASM backend and compares all outputs. */
function checkAttention(c: Case): void {
  const { T, H, K, D } = c;
  const segments = makeCache({ K, D, dtype: c.dtype, segments: c.segments, seed: c.seed });
  const q = arena.alloc(T * H * D * 4, "test q");
  fill(arena.f32(q, T * H * D), c.seed, c.qScale ?? 1);
  const want = arena.alloc(T * H * D * 4, "test want");
  const got = arena.alloc(T * H * D * 4, "test got");
  const call: AttentionCall = { q, out: want, T, H, K, D, qPos0: c.qPos0, scale: 1 / Math.sqrt(D), window: c.window, softcap: c.softcap ?? null, kvDtype: c.dtype, segments };
  ref.attention(call);
  const wantCopy = arena.f32(want, T * H * D).slice();
  for (const b of backends) {
    arena.f32(got, T * H * D).fill(12345);
    b.attention({ ...call, out: got, kvFinite: c.kvFinite });
    const label = `${b.name}×${b.threads} T=${T} H=${H} K=${K} D=${D} ${c.dtype} segs=${c.segments.length} window=${c.window} softcap=${c.softcap} kvFinite=${c.kvFinite}`;
    expectClose(arena.f32(got, T * H * D), wantCopy, 2e-5, 2e-5, label);
  }
  for (const s of segments) {
    arena.release(s.kPtr);
    arena.release(s.vPtr);
    if (s.kScalePtr) arena.release(s.kScalePtr);
    if (s.vScalePtr) arena.release(s.vScalePtr);
  }
  [q, want, got].forEach((p) => arena.release(p));
}

const paged = (S: number, block: number, first = 0) =>
  Array.from({ length: Math.ceil(S / block) }, (_, i) => ({ rows: Math.min(block, S - i * block), firstPos: first + i * block }));

test("backends: the factory picks WASM, relaxed only when validated, and 2 threads", () => {
  assert.deepEqual(backends.map((b) => [b.name, b.threads]), [["wasm-simd", 1], ["wasm-simd", 2], ["wasm-relaxed-simd", 2]]);
});

test("decode: MHA, GQA (groups of 4 and of 3: one padding row in the quad), MQA × head dims 20, 40, 64, 128 × f32/f16, paged cache", () => {
  let seed = 1;
  for (const [H, K] of [[4, 4], [8, 2], [12, 4], [8, 1]]) {
    for (const D of [20, 40, 64, 128]) {
      for (const dtype of ["f32", "f16"] as KvDtype[]) {
        checkAttention({ T: 1, H, K, D, dtype, segments: paged(300, 128), qPos0: 299, window: null, seed: seed++ });
      }
    }
  }
});

test("decode: long context split across threads (split-KV, log-sum-exp merge), MQA, GQA, and MHA / G = 2 over tiles of 2048 keys", () => {
  checkAttention({ T: 1, H: 16, K: 1, D: 64, dtype: "f32", segments: paged(5000, 1024), qPos0: 4999, window: null, seed: 50 });
  checkAttention({ T: 1, H: 8, K: 2, D: 40, dtype: "f16", segments: paged(3000, 16), qPos0: 2999, window: null, seed: 51 });
  // One 5000-row segment read in place (1 or 2 query rows per KV head): several 2048-key tiles per
  // item, so the online softmax rescales O between tiles; a window that starts inside a tile.
  checkAttention({ T: 1, H: 4, K: 4, D: 64, dtype: "f16", segments: paged(5000, 5000), qPos0: 4999, window: null, seed: 52, kvFinite: true });
  checkAttention({ T: 1, H: 4, K: 4, D: 64, dtype: "f16", segments: paged(5000, 5000), qPos0: 4999, window: null, seed: 53 });
  checkAttention({ T: 1, H: 8, K: 4, D: 128, dtype: "bf16", segments: paged(5000, 5000), qPos0: 4999, window: 3000, seed: 54 });
  checkAttention({ T: 1, H: 8, K: 4, D: 72, dtype: "f16", segments: paged(5000, 5000), qPos0: 4999, window: null, seed: 55, kvFinite: true });
  checkAttention({ T: 1, H: 4, K: 4, D: 64, dtype: "f32", segments: paged(5000, 5000), qPos0: 4999, window: 2500, seed: 56 });
});

test("decode: sliding window, rolling-buffer segment order, and keys beyond the query are masked", () => {
  // Rolling buffer of 64 rows: rows [20, 64) hold positions 980.., rows [0, 20) hold positions 1024..
  checkAttention({ T: 1, H: 8, K: 2, D: 20, dtype: "f32", segments: [{ rows: 44, firstPos: 980 }, { rows: 20, firstPos: 1024 }], qPos0: 1043, window: 50, seed: 60 });
  // The cache holds positions 0..599 but the query sits at 400: later keys must not leak in.
  checkAttention({ T: 1, H: 4, K: 1, D: 64, dtype: "f32", segments: paged(600, 256), qPos0: 400, window: null, seed: 61 });
  checkAttention({ T: 1, H: 4, K: 1, D: 64, dtype: "f16", segments: paged(2000, 512), qPos0: 1999, window: 700, seed: 62 });
});

test("prefill: causal tiles, with and without window, ragged T, over a prefix already cached", () => {
  let seed = 70;
  for (const [H, K, D] of [[4, 4, 64], [8, 2, 40], [6, 1, 20], [32, 8, 128]]) {
    checkAttention({ T: 77, H, K, D, dtype: "f32", segments: paged(77, 32), qPos0: 0, window: null, seed: seed++ });
    checkAttention({ T: 50, H, K, D, dtype: "f16", segments: paged(130, 64), qPos0: 80, window: 33, seed: seed++ });
  }
});

test("bf16 and int8 caches", () => {
  checkAttention({ T: 1, H: 8, K: 2, D: 40, dtype: "bf16", segments: paged(500, 128), qPos0: 499, window: null, seed: 80 });
  // MHA and G = 2 with D % 8 == 0: the in-register bf16 path (attention.ts attnTileHalf)
  checkAttention({ T: 1, H: 4, K: 4, D: 64, dtype: "bf16", segments: paged(500, 128), qPos0: 499, window: null, seed: 83 });
  checkAttention({ T: 1, H: 8, K: 4, D: 128, dtype: "bf16", segments: paged(300, 100), qPos0: 299, window: 200, seed: 84 });
  checkAttention({ T: 1, H: 8, K: 1, D: 64, dtype: "int8", segments: paged(500, 128), qPos0: 499, window: null, seed: 81 });
  checkAttention({ T: 19, H: 4, K: 2, D: 20, dtype: "int8", segments: paged(40, 16), qPos0: 21, window: 9, seed: 82 });
});

test("extreme logits: |score| in the thousands neither overflows nor underflows", () => {
  checkAttention({ T: 1, H: 8, K: 2, D: 64, dtype: "f32", segments: paged(700, 256), qPos0: 699, window: null, seed: 90, qScale: 3000 });
  checkAttention({ T: 9, H: 4, K: 1, D: 20, dtype: "f16", segments: paged(40, 16), qPos0: 31, window: null, seed: 91, qScale: 500 });
});

test("row quads on even/odd widened f16 tiles (kvFinite): GQA-4, GQA-3, MQA × D 8, 40, 64, 128 (36: 4-value blocks, the other path) × decode and prefill, window, softcap; bf16 alike", () => {
  let seed = 300;
  for (const dtype of ["f16", "bf16"] as KvDtype[]) {
    for (const [H, K] of [[12, 3], [12, 4], [8, 1], [32, 1]]) {
      for (const D of [8, 36, 40, 64, 128]) {
        checkAttention({ T: 1, H, K, D, dtype, segments: paged(300, 128), qPos0: 299, window: null, seed: seed++, kvFinite: true });
        checkAttention({ T: 5, H, K, D, dtype, segments: paged(90, 32, 7), qPos0: 92, window: 40, seed: seed++, kvFinite: true, softcap: 30 });
      }
    }
  }
  // |q·scale| at or above X_FAST_MAX (2^14): q·2^112 could overflow, so f16 takes the unscaled path.
  checkAttention({ T: 1, H: 12, K: 3, D: 64, dtype: "f16", segments: paged(100, 64), qPos0: 99, window: null, seed: 399, kvFinite: true, qScale: 3e5 });
});

test("f16 cache holding inf and NaN halves: tiles with them take the exact widening, results as the reference", () => {
  // [4, 4, 64] (MHA) and [8, 4, 64] (G = 2) take the in-register path (few rows per KV head, D % 8 == 0).
  for (const [H, K, D] of [[12, 4, 64], [4, 4, 20], [8, 1, 40], [4, 4, 64], [8, 4, 128]]) {
    const T = 1, S = 150;
    const segments = makeCache({ K, D, dtype: "f16", segments: paged(S, 64), seed: 97 });
    // Head 0: a +inf in one K row (its score is ±inf or NaN); last head: a NaN in one V row.
    arena.u16(segments[1].kPtr + 5 * D * 2, D)[3] = 0x7c00;
    arena.u16(segments[2].vPtr + (K - 1) * segments[2].headStride + 7 * D * 2, D)[D - 1] = 0x7e00;
    const q = arena.alloc(T * H * D * 4), want = arena.alloc(T * H * D * 4), got = arena.alloc(T * H * D * 4);
    fill(arena.f32(q, H * D), 97);
    const call: AttentionCall = { q, out: want, T, H, K, D, qPos0: S - 1, scale: 1 / Math.sqrt(D), window: null, kvDtype: "f16", segments };
    ref.attention(call);
    const w = arena.f32(want, H * D).slice();
    assert.ok(w.some((v) => Number.isNaN(v)) && w.some((v) => Number.isFinite(v)), "the case has both NaN and finite outputs");
    for (const b of backends) {
      b.attention({ ...call, out: got });
      expectClose(arena.f32(got, H * D), w, 2e-5, 2e-5, `${b.name}×${b.threads} H=${H} K=${K} D=${D} f16 with inf/NaN halves`);
    }
    [q, want, got].forEach((p) => arena.release(p));
    for (const s of segments) {
      arena.release(s.kPtr);
      arena.release(s.vPtr);
    }
  }
});

test("f16 cache with inf/NaN halves past the first 64 keys of a 300-key tile: the K check of a key pair and the exact V redo in ATTN.WIDE_TILE chunks give the reference's results", () => {
  // One 300-row segment: the in-register path (MHA and G = 2, D % 8 == 0) reads it as one tile, whose
  // exact redo widens V in chunks of ATTN.WIDE_TILE rows; the NaN sits in the fourth chunk, column D - 1.
  for (const [H, K, D] of [[4, 4, 64], [8, 4, 128]]) {
    const T = 1, S = 300;
    const segments = makeCache({ K, D, dtype: "f16", segments: [{ rows: S, firstPos: 0 }], seed: 131 });
    arena.u16(segments[0].vPtr + (K - 1) * segments[0].headStride + 200 * D * 2, D)[D - 1] = 0x7e00;
    arena.u16(segments[0].vPtr + (K - 1) * segments[0].headStride + 201 * D * 2, D)[D - 1] = 0xbc00; // its pair: negative
    // Kv head 0: +inf in K row 201, beside a negative half in row 200 (the two keys share a pass and an
    // inf/NaN check, which must mask the sign before comparing; a missed inf is read as a large finite value).
    arena.u16(segments[0].kPtr + 200 * D * 2, D)[3] = 0xbc00;
    arena.u16(segments[0].kPtr + 201 * D * 2, D)[3] = 0x7c00;
    const q = arena.alloc(T * H * D * 4), want = arena.alloc(T * H * D * 4), got = arena.alloc(T * H * D * 4);
    fill(arena.f32(q, H * D), 131);
    for (let h = 0; h < H / K; h++) arena.f32(q, H * D)[h * D + 3] = 0.5; // group 0 scores the +inf key +inf: NaN outputs
    const call: AttentionCall = { q, out: want, T, H, K, D, qPos0: S - 1, scale: 1 / Math.sqrt(D), window: null, kvDtype: "f16", segments };
    ref.attention(call);
    const w = arena.f32(want, H * D).slice();
    const G = H / K;
    assert.ok(w.slice(0, G * D).every(Number.isNaN) && Number.isNaN(w[H * D - 1]) && w.filter((v) => Number.isNaN(v)).length === G * D + G, "NaN: group 0's heads, and column D - 1 of the last group's");
    for (const b of backends) {
      b.attention({ ...call, out: got });
      expectClose(arena.f32(got, H * D), w, 2e-5, 2e-5, `${b.name}×${b.threads} H=${H} K=${K} D=${D} f16, NaN in V row 200 and +inf in K row 201 of a 300-key tile`);
    }
    [q, want, got].forEach((p) => arena.release(p));
    for (const s of segments) {
      arena.release(s.kPtr);
      arena.release(s.vPtr);
    }
  }
});

test("G = 2 decode on f16/bf16 caches equals MHA over the same K/V rows bit for bit (the in-register paths share their per-row arithmetic), with and without kvFinite", () => {
  // The G = 2 cache [K, S, D] against an MHA cache [H, S, D] whose head h holds kv head h / 2: each
  // query row meets the same keys in the same order, pairs and the odd tail key alike (S is odd).
  for (const dtype of ["f16", "bf16"] as const) {
    for (const D of [64, 72, 128]) {
      const H = 8, K = 4, S = 301;
      const g2 = makeCache({ K, D, dtype, segments: [{ rows: S, firstPos: 0 }], seed: 151 + D });
      const src = g2[0], stride = src.headStride;
      const mha: KvSegment = { kPtr: arena.alloc(H * stride, "test kv"), vPtr: arena.alloc(H * stride, "test kv"), rows: S, headStride: stride, firstPos: 0 };
      for (let h = 0; h < H; h++) {
        arena.u8(mha.kPtr + h * stride, stride).set(arena.u8(src.kPtr + (h >> 1) * stride, stride));
        arena.u8(mha.vPtr + h * stride, stride).set(arena.u8(src.vPtr + (h >> 1) * stride, stride));
      }
      const q = arena.alloc(H * D * 4), a = arena.alloc(H * D * 4), b = arena.alloc(H * D * 4);
      fill(arena.f32(q, H * D), 151 + D);
      const call: AttentionCall = { q, out: a, T: 1, H, K, D, qPos0: S - 1, scale: 1 / Math.sqrt(D), window: null, kvDtype: dtype, segments: g2 };
      for (const bk of backends) {
        for (const kvFinite of [false, true]) {
          bk.attention({ ...call, out: a, kvFinite });
          bk.attention({ ...call, out: b, K: H, segments: [mha], kvFinite });
          const x = arena.f32(a, H * D), y = arena.f32(b, H * D);
          const at = x.findIndex((v, i) => !Object.is(v, y[i]));
          assert.ok(at < 0, `${bk.name}×${bk.threads} ${dtype} D=${D} kvFinite ${kvFinite}: out[${at}] = ${x[at]} with G = 2, ${y[at]} as MHA (tolerance 0)`);
          assert.ok(x.some((v) => v !== 0), "outputs are not all zero");
        }
      }
      [q, a, b, mha.kPtr, mha.vPtr, src.kPtr, src.vPtr].forEach((p) => arena.release(p));
    }
  }
});

test("f16 and bf16 caches of subnormal-sized values (|x| < 2^-14 in f16): MHA, G = 2 and row-quad decode keep them, no flush to 0, with and without kvFinite", () => {
  // Scores are ~1e-8 and every V half is an f16 subnormal: the outputs (~1e-5) must match to 1e-9 + 2e-5 relative.
  for (const dtype of ["f16", "bf16"] as KvDtype[]) {
    for (const [H, K, D] of [[4, 4, 64], [8, 4, 128], [4, 4, 40], [12, 3, 64], [12, 1, 128]]) {
      const T = 1, S = 150;
      const segments = makeCache({ K, D, dtype, segments: paged(S, 64), seed: 98, valueScale: 5e-5 });
      const q = arena.alloc(T * H * D * 4), want = arena.alloc(T * H * D * 4), got = arena.alloc(T * H * D * 4);
      fill(arena.f32(q, H * D), 98);
      const call: AttentionCall = { q, out: want, T, H, K, D, qPos0: S - 1, scale: 1 / Math.sqrt(D), window: null, kvDtype: dtype, segments };
      ref.attention(call);
      const w = arena.f32(want, H * D).slice();
      assert.ok(w.some((v) => v !== 0), "outputs are not all 0");
      for (const b of backends) {
        for (const kvFinite of [false, true]) {
          b.attention({ ...call, out: got, kvFinite });
          expectClose(arena.f32(got, H * D), w, 1e-9, 2e-5, `${b.name}×${b.threads} H=${H} K=${K} D=${D} ${dtype} subnormal-sized cache, kvFinite ${kvFinite}`);
        }
      }
      [q, want, got].forEach((p) => arena.release(p));
      for (const s of segments) {
        arena.release(s.kPtr);
        arena.release(s.vPtr);
      }
    }
  }
});

test("a query that sees no key gets 0; a NaN query gives NaN, as in the reference", () => {
  checkAttention({ T: 2, H: 4, K: 2, D: 20, dtype: "f32", segments: [{ rows: 16, firstPos: 100 }], qPos0: 50, window: null, seed: 95 });
  const T = 1, H = 4, K = 2, D = 20;
  const segments = makeCache({ K, D, dtype: "f32", segments: [{ rows: 30, firstPos: 0 }], seed: 96 });
  const q = arena.alloc(T * H * D * 4);
  fill(arena.f32(q, H * D), 96);
  arena.f32(q, H * D)[0] = NaN; // head 0 only
  const out = arena.alloc(T * H * D * 4);
  for (const b of backends) {
    b.attention({ q, out, T, H, K, D, qPos0: 29, scale: 0.2, window: null, kvDtype: "f32", segments });
    const o = arena.f32(out, H * D);
    assert.ok(Number.isNaN(o[0]) && Number.isNaN(o[D - 1]), `${b.name}: head 0 should be NaN, got ${o[0]}`);
    assert.ok(Number.isFinite(o[D]) && Number.isFinite(o[3 * D]), `${b.name}: other heads should be finite, got ${o[D]}`);
  }
});

test("threads=1 and threads=2 agree on a long decode (2e-6 relative: only the split order differs)", () => {
  const T = 1, H = 32, K = 1, D = 128;
  const segments = makeCache({ K, D, dtype: "f16", segments: paged(8192, 2048), seed: 97 });
  const q = arena.alloc(H * D * 4);
  fill(arena.f32(q, H * D), 97);
  const o1 = arena.alloc(H * D * 4), o2 = arena.alloc(H * D * 4);
  const call: AttentionCall = { q, out: o1, T, H, K, D, qPos0: 8191, scale: 1 / Math.sqrt(D), window: null, kvDtype: "f16", segments };
  backends[0].attention(call);
  backends[1].attention({ ...call, out: o2 });
  expectClose(arena.f32(o2, H * D), arena.f32(o1, H * D), 1e-6, 2e-6, "threads 2 vs 1");
});

function checkMatmul(M: number, N: number, Kin: number, wDtype: WeightDtype, withBias: boolean, seed: number): void {
  const x = arena.alloc(M * Kin * 4), wf = new Float32Array(N * Kin), out = arena.alloc(M * N * 4), want = arena.alloc(M * N * 4);
  fill(arena.f32(x, M * Kin), seed);
  fill(wf, seed + 1);
  const eb = wDtype === "f32" ? 4 : 2;
  const w = arena.alloc(N * Kin * eb);
  if (wDtype === "f32") arena.f32(w, N * Kin).set(wf);
  else if (wDtype === "f16") encodeF16(wf, arena.u16(w, N * Kin));
  else encodeBf16(wf, arena.u16(w, N * Kin));
  const bias = withBias ? arena.alloc(N * 4) : 0;
  if (bias) fill(arena.f32(bias, N), seed + 2);
  const call = { x, w, bias, out: want, M, N, Kin, wDtype };
  ref.matmul(call);
  // Values in [-1, 1]: the f32 sum of Kin products errs by about sqrt(Kin)·6e-8·|terms|; 2e-6·Kin is safe.
  const atol = 1e-5 + 2e-6 * Kin;
  for (const b of backends) {
    arena.f32(out, M * N).fill(777);
    b.matmul({ ...call, out });
    expectClose(arena.f32(out, M * N), arena.f32(want, M * N), atol, 1e-5, `matmul ${b.name}×${b.threads} M=${M} N=${N} Kin=${Kin} ${wDtype} bias=${withBias}`);
  }
  [x, w, out, want].forEach((p) => arena.release(p));
  if (bias) arena.release(bias);
}

test("matmul: f32/f16/bf16 weights, matvec (M < 4) and tiled (M >= 4), odd sizes, bias", () => {
  let seed = 200;
  for (const wDtype of ["f32", "f16", "bf16"] as WeightDtype[]) {
    for (const [M, N, Kin] of [[1, 1, 1], [1, 37, 67], [3, 64, 128], [1, 1000, 20], [4, 7, 5], [5, 33, 300], [37, 19, 260], [64, 48, 515], [130, 17, 64]]) {
      checkMatmul(M, N, Kin, wDtype, seed % 2 === 0, seed++);
    }
  }
});

test("wasm kernels reject bad shapes and out-of-memory pointers with the values named (no worker trap)", () => {
  const b: Kernels = backends[1];
  const end = arena.memory.buffer.byteLength;
  assert.throws(() => b.attention({ q: 0, out: 0, T: 1, H: 6, K: 4, D: 8, qPos0: 0, scale: 1, window: null, kvDtype: "f32", segments: [] }), /H = 6 is not divisible by K = 4/);
  const seg = { kPtr: end - 64, vPtr: 1 << 16, rows: 100, headStride: 0, firstPos: 0 };
  assert.throws(() => b.attention({ q: 1 << 16, out: 1 << 16, T: 1, H: 1, K: 1, D: 8, qPos0: 99, scale: 1, window: null, kvDtype: "f32", segments: [seg] }), /kPtr = \d+ \+ 3200 bytes runs past memory end/);
  assert.throws(() => b.matmul({ x: 0, w: 0, bias: 0, out: 0, M: -1, N: 1, Kin: 1, wDtype: "f32" }), /M=-1/);
  assert.throws(() => b.matmul({ x: end, w: 0, bias: 0, out: 0, M: 1, N: 1, Kin: 4, wDtype: "f32" }), /x = \d+ \+ 16 bytes is outside memory/);
  // The pool still works after refusing those calls.
  checkMatmul(3, 5, 7, "f32", false, 999);
});

test("empty calls: T = 0 and M = 0 are no-ops, like the reference", () => {
  for (const b of backends) {
    b.attention({ q: 0, out: 0, T: 0, H: 4, K: 2, D: 8, qPos0: 0, scale: 1, window: null, kvDtype: "f32", segments: [] });
    b.matmul({ x: 0, w: 0, bias: 0, out: 0, M: 0, N: 3, Kin: 2, wDtype: "f16" });
  }
});

test("wasm32: a buffer past 4 GiB is a UserError naming the sizes, not a crash", async () => {
  const { UserError } = await import("../src/errors.js");
  const a = new Arena({ initialBytes: 1 << 20 });
  assert.throws(() => a.alloc(4.5 * 1024 ** 3, "kv cache"), (e: unknown) => e instanceof UserError && /4 GiB/.test((e as Error).message));
});

test("widening is exact: f16 subnormals, ±0, ±max, ±inf, NaN and bf16 specials pass through matmul unchanged", () => {
  // out[m, n] = Σ_k x[m, k]·w[n, k] with x = 1 and w row n = [v_n, 0, 0, 0, ...]: the sum is v_n exactly.
  const f16 = [0x0001, 0x03ff, 0x0400, 0x8001, 0x0000, 0x8000, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x3c00, 0xb555, 0x0200];
  const bf16 = [0x0001, 0x8000, 0x7f7f, 0xff80, 0x7f80, 0x7fc0, 0x3f80, 0xc2f7];
  for (const [wDtype, bits] of [["f16", f16], ["bf16", bf16]] as const) {
    for (const Kin of [1, 4, 9]) {
      for (const M of [1, 5]) {
        const N = bits.length;
        const x = arena.alloc(M * Kin * 4), w = arena.alloc(N * Kin * 2), out = arena.alloc(M * N * 4), want = arena.alloc(M * N * 4);
        arena.f32(x, M * Kin).fill(1);
        const wu = arena.u16(w, N * Kin);
        wu.fill(0);
        bits.forEach((b, n) => (wu[n * Kin + (n % Kin)] = b));
        const call = { x, w, bias: 0, out: want, M, N, Kin, wDtype };
        ref.matmul(call);
        for (const b of backends) {
          b.matmul({ ...call, out });
          const got = arena.f32(out, M * N), exp = arena.f32(want, M * N);
          for (let i = 0; i < M * N; i++) {
            assert.ok(Object.is(got[i], exp[i]) || (Number.isNaN(got[i]) && Number.isNaN(exp[i])), `${b.name} ${wDtype} Kin=${Kin} M=${M}: bits 0x${bits[i % N].toString(16)} at index ${i} gave ${got[i]}, want ${exp[i]} (tolerance 0: exact)`);
          }
        }
        [x, w, out, want].forEach((p) => arena.release(p));
      }
    }
  }
});
