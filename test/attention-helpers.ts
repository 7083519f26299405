// Shared helpers for the attention and KV-cache tests (not a test file itself).
//
// Legend: N tokens, S keys, H query heads, K kv heads, G = H/K, D head dim.
import assert from "node:assert/strict";
import { seededRandom } from "../src/random.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** Deterministic PRNG (mulberry32) so every failure reproduces. */
export const rng = seededRandom;

/** n standard-normal values (Box-Muller) times `scale`. */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}

export interface Mismatch {
  maxAbs: number;
  index: number;
  got: number;
  want: number;
}

/** Largest |got - want| - rtol·|want| excess, and where; NaN must match NaN. */
export function worst(got: ArrayLike<number>, want: ArrayLike<number>, rtol = 0): Mismatch {
  let m: Mismatch = { maxAbs: 0, index: -1, got: 0, want: 0 };
  let worstExcess = -Infinity;
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    if (Number.isNaN(w) || Number.isNaN(g)) {
      if (Number.isNaN(w) !== Number.isNaN(g)) return { maxAbs: Infinity, index: i, got: g, want: w };
      continue;
    }
    const err = Math.abs(g - w);
    const excess = err - rtol * Math.abs(w);
    if (excess > worstExcess) {
      worstExcess = excess;
      m = { maxAbs: err, index: i, got: g, want: w };
    }
  }
  return m;
}

/**
 * Asserts |got - want| <= atol + rtol·|want| everywhere; on failure reports the largest error,
 * its index, both values and the tolerance.
 */
export function assertClose(name: string, got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol = 0): Mismatch {
  assert.equal(got.length, want.length, `${name}: length ${got.length} != ${want.length}`);
  const m = worst(got, want, rtol);
  const ok = m.index < 0 || m.maxAbs <= atol + rtol * Math.abs(m.want);
  if (!ok) {
    assert.fail(`${name}: largest error ${m.maxAbs.toExponential(3)} at index ${m.index} (got ${m.got}, want ${m.want}); tolerance ${atol} + ${rtol}·|want|`);
  }
  return m;
}

/**
 * An independent float64 attention for the property tests: K/V are first repeated to H heads
 * (the way HF's repeat_kv does), then each head attends with an explicit mask.
 * q [T, H, D]; keys/values [S, K, D] token-major at positions 0..S-1; query t sits at qPos0 + t.
 */
export function naiveAttention(opts: {
  q: ArrayLike<number>; k: ArrayLike<number>; v: ArrayLike<number>;
  T: number; S: number; H: number; K: number; D: number; qPos0: number; scale?: number; window?: number | null;
}): Float64Array {
  const { q, k, v, T, S, H, K, D, qPos0 } = opts;
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const G = H / K;
  const kRep = new Float64Array(S * H * D); // [S, H, D]
  const vRep = new Float64Array(S * H * D);
  for (let s = 0; s < S; s++)
    for (let h = 0; h < H; h++)
      for (let d = 0; d < D; d++) {
        kRep[(s * H + h) * D + d] = k[(s * K + Math.floor(h / G)) * D + d];
        vRep[(s * H + h) * D + d] = v[(s * K + Math.floor(h / G)) * D + d];
      }
  const out = new Float64Array(T * H * D);
  for (let t = 0; t < T; t++)
    for (let h = 0; h < H; h++) {
      const p = qPos0 + t;
      const logits: number[] = [];
      for (let s = 0; s < S; s++) {
        const allowed = s <= p && (opts.window == null || s > p - opts.window);
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[(t * H + h) * D + d] * kRep[(s * H + h) * D + d];
        logits.push(allowed ? dot * scale : -Infinity);
      }
      const m = Math.max(...logits);
      const e = logits.map((x) => (x === -Infinity ? 0 : Math.exp(x - m)));
      const z = e.reduce((a, b) => a + b, 0);
      for (let d = 0; d < D; d++) {
        let acc = 0;
        for (let s = 0; s < S; s++) acc += (e[s] / z) * vRep[(s * H + h) * D + d];
        out[(t * H + h) * D + d] = z > 0 ? acc : 0;
      }
    }
  return out;
}

// ---- fixtures written by tools/fixtures/gen_attention.py ----
export const FIXTURE_DIR = join(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..", "tools", "fixtures", "attention");

export interface TensorEntry {
  offset: number;
  shape: number[];
  dtype: "f32" | "f64" | "u16";
}

export interface FixtureCase {
  name: string;
  H: number;
  K: number;
  D: number;
  lengths: number[];
  scale: number;
  window: number | null;
  note: string;
  tensors: Record<string, TensorEntry>;
}

export interface Fixtures {
  version: number;
  cases: FixtureCase[];
  conversions: Record<string, TensorEntry>;
  matmul: { M: number; N: number; Kin: number; tensors: Record<string, TensorEntry> };
  tensor(e: TensorEntry): Float32Array | Float64Array | Uint16Array;
}

/** Loads the manifest and the binary; checks the version so a stale fixture fails loudly. */
export function loadFixtures(expectVersion = 1): Fixtures {
  const manifest = JSON.parse(readFileSync(join(FIXTURE_DIR, "manifest.json"), "utf8"));
  if (manifest.version !== expectVersion) throw new Error(`attention fixtures: version ${manifest.version}, tests expect ${expectVersion}; rerun tools/fixtures/gen_attention.py`);
  const bin = readFileSync(join(FIXTURE_DIR, manifest.bin));
  const buf = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength);
  const tensor = (e: TensorEntry) => {
    const n = e.shape.reduce((a, b) => a * b, 1);
    if (e.dtype === "f32") return new Float32Array(buf, e.offset, n);
    if (e.dtype === "f64") return new Float64Array(buf, e.offset, n);
    return new Uint16Array(buf, e.offset, n);
  };
  return { ...manifest, tensor };
}
