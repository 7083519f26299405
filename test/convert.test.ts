// mqa convert against PyTorch (tools/fixtures/gen_convert.py): mean and first pooling of the fixture
// models' K/V heads, and the converted models' logits; pca's exactness where the method promises it
// (K = S, and groups of identical heads); bad input refused with nothing written.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { convertCheckpoint } from "../src/convert/convert.js";
import { decodeBf16, decodeF16 } from "../src/dtypes/codecs.js";
import { symmetricEigen } from "../src/convert/linalg.js";
import { poolLayer, emptyStats, accumulateStats, type AttnLayer } from "../src/convert/pool.js";
import { openSafetensors, readTensorBytes } from "../src/formats/safetensors.js";
import { openRuntime } from "../src/generate/runtime.js";
import { assertClose } from "./train_helpers.js";

const FIX = "tools/fixtures/convert";
const MODELS = "tools/fixtures/models";
const exp = JSON.parse(readFileSync(join(FIX, "expected.json"), "utf8")) as {
  cases: { case: string; source: string; kvHeads: number; method: "mean" | "first"; dtype: string; tensors: { name: string; shape: number[] }[]; tokens: number[]; logitsShape: number[] }[];
};

function readF32(dir: string, name: string): Float32Array {
  const t = openSafetensors(dir).get(name)!;
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (t.dtype === "F32") {
    const out = new Float32Array(n);
    readTensorBytes(t, new Uint8Array(out.buffer));
    return out;
  }
  const h = new Uint16Array(n);
  readTensorBytes(t, new Uint8Array(h.buffer));
  const out = new Float32Array(n);
  (t.dtype === "BF16" ? decodeBf16 : decodeF16)(h, out);
  return out;
}

for (const c of exp.cases) {
  test(`convert ${c.case}: pooled weights and logits match PyTorch`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "mqa-convert-"));
    try {
      const out = join(dir, "out");
      const s = await convertCheckpoint(join(MODELS, c.source), out, { kvHeads: c.kvHeads, method: c.method, threads: 1 });
      assert.equal(s.kvHeads, c.kvHeads);
      const ref = new Float32Array(readFileSync(join(FIX, c.case + ".bin")).buffer.slice(0));
      let o = 0;
      for (const t of c.tensors) {
        const n = t.shape.reduce((a, b) => a * b, 1);
        const want = ref.subarray(o, o + n);
        o += n;
        // f32 output: the mean of ≤ 8 f32 values in f32 arithmetic differs from float64 by ≤ 8·2^-24
        // relative to the largest magnitude; f16/bf16 output is rounded once more (2^-11 / 2^-8 relative).
        const rel = c.dtype === "f32" ? 8 * 2 ** -24 : c.dtype === "f16" ? 2 ** -11 : 2 ** -8;
        assertClose(`${c.case} ${t.name}`, readF32(out, t.name), want, 1e-7, rel);
      }
      const logits = ref.subarray(o);
      const rt = await openRuntime(out, { threads: 1, tokenizer: false });
      try {
        const cache = rt.model.createCache({});
        const got = rt.model.forward(cache, [cache.addSequence()], [c.tokens], "all");
        // As test/models.test.ts: only the order of f32 sums differs from the float64 reference.
        assertClose(`${c.case} logits [${c.logitsShape}]`, got, logits, 2e-4, 1e-4);
      } finally {
        rt.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test("symmetricEigen reconstructs A = V diag(λ) Vᵀ with orthonormal V, eigenvalues descending", () => {
  const n = 7;
  const A = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) A[i * n + j] = A[j * n + i] = Math.sin(i * 3.1 + j * 1.7);
  const { values, vectors } = symmetricEigen(A, n);
  for (let i = 1; i < n; i++) assert.ok(values[i] <= values[i - 1]);
  const rec = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) rec[i * n + j] += vectors[i * n + k] * values[k] * vectors[j * n + k];
  assertClose("V diag(λ) Vᵀ", rec, A, 1e-12, 0);
});

test("pca is exact for groups of identical heads: every query head's scores and outputs are kept", () => {
  // C 6, H 4, S 4 → K 2: heads 0,1 identical and 2,3 identical, so each group spans D dims.
  const C = 6, H = 4, S = 4, D = 4, K = 2;
  let seed = 3;
  const r = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5);
  const mat = (n: number) => Float64Array.from({ length: n }, r);
  const k = mat(S * D * C), v = mat(S * D * C);
  for (const [a, b] of [[0, 1], [2, 3]]) for (let i = 0; i < D * C; i++) { k[b * D * C + i] = k[a * D * C + i]; v[b * D * C + i] = v[a * D * C + i]; }
  const L: AttnLayer = { q: mat(H * D * C), qb: null, k, kb: null, v, vb: null, o: mat(C * H * D) };
  const shape = { C, H, S, D };
  const N = 40, X = mat(N * C);
  const proj = (W: Float64Array, rows: number) => { const y = new Float64Array(N * rows); for (let t = 0; t < N; t++) for (let j = 0; j < rows; j++) for (let c = 0; c < C; c++) y[t * rows + j] += X[t * C + c] * W[j * C + c]; return y; };
  const st = emptyStats(shape, K);
  accumulateStats(st, shape, K, proj(k, S * D), proj(v, S * D), N);
  const P = poolLayer(L, shape, { method: "pca", K, stats: st });
  const q0 = proj(L.q, H * D), k0 = proj(L.k, S * D), q1 = proj(P.q, H * D), k1 = proj(P.k, K * D);
  // Pre-RoPE scores of query head h at token t against key token u (the per-pair fold commutes with RoPE).
  const score = (q: Float64Array, kk: Float64Array, h: number, kh: number, t: number, u: number, KH: number) => { let s = 0; for (let d = 0; d < D; d++) s += q[t * H * D + h * D + d] * kk[u * KH * D + kh * D + d]; return s; };
  const got: number[] = [], want: number[] = [];
  for (let h = 0; h < H; h++) for (let t = 0; t < 5; t++) for (let u = 0; u < 5; u++) { want.push(score(q0, k0, h, h, t, u, S)); got.push(score(q1, k1, h, Math.floor(h / 2), t, u, K)); }
  assertClose("scores", got, want, 1e-9, 1e-9);
  // Outputs: o_h · v_s(t) for each head.
  const v0 = proj(L.v, S * D), v1 = proj(P.v, K * D);
  const outs = (O: Float64Array, vv: Float64Array, KH: number, map: (h: number) => number) => { const y: number[] = []; for (let t = 0; t < 5; t++) for (let c = 0; c < C; c++) { let s = 0; for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) s += O[c * H * D + h * D + d] * vv[t * KH * D + map(h) * D + d]; y.push(s); } return y; };
  assertClose("attention outputs through o_proj", outs(P.o, v1, K, (h) => Math.floor(h / 2)), outs(L.o, v0, S, (h) => h), 1e-9, 1e-9);
});

test("bad input: one line, nothing written", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mqa-convert-bad-"));
  try {
    const src = join(MODELS, "llama-mha-f32");
    const out = join(dir, "out");
    await assert.rejects(convertCheckpoint(src, out, { kvHeads: 3, method: "mean" }), /kvHeads 3: must divide the source's 4 KV heads \(1, 2, 4\)/);
    await assert.rejects(convertCheckpoint(src, out, { kvHeads: 8, method: "mean" }), /kvHeads 8: must divide/);
    await assert.rejects(convertCheckpoint(src, out, { kvHeads: 2, method: "median" as never }), /method median: expected one of mean, first, random, pca/);
    await assert.rejects(convertCheckpoint(src, out, { kvHeads: 2, method: "pca" }), /method pca needs calibration/);
    await assert.rejects(convertCheckpoint(join(MODELS, "gpt2-mha"), out, { kvHeads: 2, method: "mean" }), /converts to gpt_bigcode with multi_query \(1 KV head\)/);
    mkdirSync(out);
    writeFileSync(join(out, "keep.txt"), "mine");
    await assert.rejects(convertCheckpoint(src, out, { kvHeads: 2, method: "mean" }), /exists and is not an empty folder; mqa convert never overwrites/);
    assert.equal(readFileSync(join(out, "keep.txt"), "utf8"), "mine");
    assert.deepEqual(readdirSync(dir).sort(), ["out"], "no temporary folder is left behind");
    rmSync(out, { recursive: true });
    await assert.rejects(convertCheckpoint(join(dir, "missing"), out, { kvHeads: 1, method: "mean" }), /not a folder/);
    assert.ok(!existsSync(out));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
