// Attention probabilities from the fast path (issue 14): the WASM backend's probabilities against
// the reference path, on random data and on fixture models; the mqa attention CLI contract.
//
// What is compared, and the tolerances.
// 1. Fast-path probabilities (Attention.forward with probsHeads → referenceAttentionProbs over the
//    same q and stored K the WASM kernel read) against the reference path (referenceAttention with
//    a sink, on the identical AttentionCall). Both evaluate softmax(scale · q · Kᵀ) in float64 from
//    identical decoded inputs; any difference is float64 rounding, ≤ (D + S) · 2^-53 ≈ 1e-14 for
//    these sizes. Tolerance: 1e-12 absolute.
// 2. The WASM kernel's own float32 probabilities against those. With V rows one-hot by position
//    (V[s, d] = 1 if d = pos(s)), the kernel's output out[t, h, d] IS the weight it gave key d, so
//    this reads the probabilities the fast kernel actually used. With u = 2^-24 and, per query row,
//    A = max_s scale · Σ_d |q_d| · |k_sd| (bounded here by scale · ‖q‖₁ · max|k| · (1 + 1/127)):
//      scores   q is pre-scaled by scale·log2(e) (one rounding) and dotted in f32 over D terms (and
//               int8 K widened with one more rounding): |δz_s| ≤ (D + 3) u A in natural-log units;
//               normalising doubles it: 2 (D + 3) u A
//      gap      s - m rounded in f32: u · |s - m| ≤ u · min(87, 2A)
//      exp2     the kernel's degree-6 polynomial is within 1.62e-7 ≈ 2.7u of 2^f on [-0.5, 0.5]
//               (measured in float64), plus ≤ 8 roundings of the f32 Horner scheme and 2^n
//               scaling: E = 11u per exp2. Online softmax applies at most S + 1 rescales (one per
//               key tile, one split merge) to numerator and denominator: 2 (S + 1)(E + 2u)
//      sums     the f32 sum of S weights and the final division: (S + 2) u; int8 V's 127 · (1/127): 2u
//    |p̃_s − p_s| ≤ ε · p_s + 2^-126 (exp2 flushes below 2^-126 to 0), and masked keys get exactly 0.
// 3. WASM against reference kernels end to end on fixture models: see the softmax bound before those tests.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Arena } from "../src/kernels/memory.js";
import { referenceAttention, referenceKernels } from "../src/kernels/reference.js";
import { createKernels, type KernelHandle } from "../src/kernels/index.js";
import type { AttentionCall, Kernels, KvDtype } from "../src/kernels/types.js";
import { Attention, type AttentionProbs } from "../src/attention/index.js";
import { createKvCache, type KvCacheSpec } from "../src/kvcache/index.js";
import { attentionMaps, headDivergence, jsDivergence, type LayerMap } from "../src/generate/attention-maps.js";
import { MODELS_DIR, expected, load } from "./models-helpers.js";
import { runCli as runCliRaw } from "./cli-helpers.js";

/** main() returns process.exitCode when set; the test runner sets it when an earlier test failed. */
const runCli = (args: string[]) => ((process.exitCode = undefined), runCliRaw(args));

const u = 2 ** -24;
const EXP2_ERR = 11 * u;
const SAME_CALL_TOL = 1e-12;

function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next()));
}

/** Wraps kernels so every attention call also runs the reference path on the same call, recording its probabilities. */
function recordingKernels(inner: Kernels, arena: Arena, heads: () => number[]): { kernels: Kernels; calls: { call: AttentionCall; probs: AttentionProbs[] }[] } {
  const calls: { call: AttentionCall; probs: AttentionProbs[] }[] = [];
  const kernels: Kernels = {
    name: inner.name,
    threads: inner.threads,
    matmul: (c) => inner.matmul(c),
    matmulMany: (cs) => inner.matmulMany(cs),
    activation: (c) => inner.activation(c),
    attention: (call) => {
      inner.attention(call);
      const probs: AttentionProbs[] = [];
      const tmp = arena.alloc(call.T * call.H * call.D * 4, "test reference out");
      try {
        referenceAttention(arena, { ...call, out: tmp }, { heads: heads(), sink: (t, head, keyPositions, p) => probs.push({ seq: -1, t, pos: call.qPos0 + t, head, keyPositions, probs: p }) });
      } finally {
        arena.release(tmp);
      }
      calls.push({ call: { ...call }, probs });
    },
  };
  return { kernels, calls };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; at: number } {
  assert.equal(a.length, b.length, `lengths ${a.length} vs ${b.length}`);
  let diff = 0, at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= diff)) (diff = d), (at = i);
  }
  return { diff, at };
}

interface Case { name: string; H: number; K: number; D: number; window: number | null; kind: KvCacheSpec["kind"] }
const CASES: Case[] = [
  { name: "GQA H=8 K=2, contiguous", H: 8, K: 2, D: 16, window: null, kind: "contiguous" },
  { name: "MQA H=4 K=1 D=12, window 4 cache", H: 4, K: 1, D: 12, window: 4, kind: "window" },
  { name: "MHA H=2 K=2, paged blocks of 4", H: 2, K: 2, D: 16, window: null, kind: "paged" },
];
const DTYPES: KvDtype[] = ["f32", "f16", "bf16", "int8"];

let wasm: KernelHandle | null = null;
const arena = new Arena();
after(() => wasm?.close());

for (const c of CASES) {
  test(`fast-path probabilities = the WASM kernel's and the reference path's: ${c.name}, ragged prefill + decode, every KV dtype`, async () => {
    wasm ??= await createKernels({ arena, backend: "wasm", threads: 1 });
    const { H, K, D } = c;
    const allHeads = Array.from({ length: H }, (_, h) => h);
    for (const dtype of DTYPES) {
      const rec = recordingKernels(wasm, arena, () => allHeads);
      const attn = new Attention({ numHeads: H, numKvHeads: K, headDim: D, window: c.window }, { arena, kernels: rec.kernels });
      const base = { numLayers: 1, numKvHeads: K, headDim: D, dtype };
      const spec: KvCacheSpec = c.kind === "paged" ? { ...base, kind: "paged", blockSize: 4, numBlocks: 64 } : c.kind === "window" ? { ...base, kind: "window", window: c.window! } : { ...base, kind: "contiguous", initialTokens: 4 };
      const cache = createKvCache(arena, spec);
      const seqs = [cache.addSequence(), cache.addSequence()];
      // V rows are one-hot by position, so the kernel's output row is its probability row.
      const oneHotV = (positions: number[]) => {
        const v = new Float32Array(positions.length * K * D);
        positions.forEach((p, n) => { for (let k = 0; k < K; k++) v[(n * K + k) * D + p] = 1; });
        return v;
      };
      const steps = [
        { lengths: [9, 5], positions: [0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 4] },
        { lengths: [1, 1], positions: [9, 5] },
      ];
      steps.forEach((step, si) => {
        const N = step.positions.length;
        const q = randn(N * H * D, 10 + si), k = randn(N * K * D, 20 + si);
        const before = rec.calls.length;
        const { out, probs } = attn.forward({ cache, layer: 0, seqs, lengths: step.lengths, q, k, v: oneHotV(step.positions), probsHeads: allHeads });
        const where = `${c.name} ${dtype} step ${si}`;
        // One probability row per (sequence, query, head): rows are causal, windowed and sum to 1.
        assert.equal(probs.length, N * H, `${where}: ${probs.length} probability rows, expected N·H = ${N * H}`);
        const ref = rec.calls.slice(before).flatMap((r) => r.probs);
        const byKey = (p: AttentionProbs, b: number) => `${b}:${p.t}:${p.head}`;
        const refRows = new Map<string, AttentionProbs>();
        let b = 0;
        for (const r of rec.calls.slice(before)) { for (const p of r.probs) refRows.set(byKey(p, b), p); b++; }
        assert.equal(ref.length, probs.length);
        let rowStart = 0;
        step.lengths.forEach((T, bi) => {
          for (const p of probs.filter((x) => x.seq === seqs[bi])) {
            const tag = `${where} seq ${bi} t ${p.t} head ${p.head}`;
            const sum = p.probs.reduce((a, x) => a + x, 0);
            assert.ok(Math.abs(sum - 1) < 1e-12, `${tag}: row sums to ${sum}`);
            for (const j of p.keyPositions) assert.ok(j <= p.pos && (c.window === null || j > p.pos - c.window), `${tag}: key ${j} visible to query ${p.pos} (window ${c.window})`);
            const expectKeys = c.window === null ? p.pos + 1 : Math.min(p.pos + 1, c.window);
            assert.equal(p.keyPositions.length, expectKeys, `${tag}: ${p.keyPositions.length} visible keys, expected ${expectKeys}`);
            // 1. the reference path on the same call.
            const r = refRows.get(byKey(p, bi))!;
            assert.deepEqual(Array.from(r.keyPositions), Array.from(p.keyPositions), `${tag}: key positions differ from the reference path`);
            const m = maxDiff(p.probs, r.probs);
            assert.ok(m.diff <= SAME_CALL_TOL, `${tag}: max |Δp| vs reference path ${m.diff.toExponential(2)} at key ${p.keyPositions[m.at]} > ${SAME_CALL_TOL}`);
            // 2. the kernel's own f32 probabilities (its output row, V one-hot).
            const n = rowStart + p.t;
            const qRow = q.subarray((n * H + p.head) * D, (n * H + p.head + 1) * D);
            const qL1 = qRow.reduce((a, x) => a + Math.abs(x), 0);
            const kMax = 3.5; // every step's keys lie within ±3.5 (asserted below), so |k| of any cached key does too
            const A = (1 / Math.sqrt(D)) * qL1 * kMax * (1 + 1 / 127);
            const S = p.keyPositions.length;
            const eps = 2 * (D + 3) * u * A + u * Math.min(87, 2 * A) + 2 * (S + 1) * (EXP2_ERR + 2 * u) + (S + 4) * u;
            const kernelRow = out.subarray((n * H + p.head) * D, (n * H + p.head + 1) * D);
            const full = new Float64Array(D);
            p.keyPositions.forEach((j, s) => (full[j] = p.probs[s]));
            for (let d = 0; d < D; d++) {
              const err = Math.abs(kernelRow[d] - full[d]);
              const tol = eps * full[d] + 2 ** -126;
              assert.ok(err <= tol, `${tag}: kernel weight of key ${d} is ${kernelRow[d]}, fast-path probability ${full[d]}: |Δ| ${err.toExponential(2)} > ε·p = ${tol.toExponential(2)} (ε ${eps.toExponential(2)})`);
            }
          }
          rowStart += T;
        });
        assert.ok(k.every((x) => Math.abs(x) < 3.5), "test data: keys within ±3.5 (the bound on max|k| above)");
      });
      cache.dispose();
      attn.dispose();
    }
  });
}

test("adjacent query heads share a KV head: identical queries in one group give identical rows, another group differs", async () => {
  wasm ??= await createKernels({ arena, backend: "wasm", threads: 1 });
  const [H, K, D, T] = [4, 2, 16, 6];
  const attn = new Attention({ numHeads: H, numKvHeads: K, headDim: D }, { arena, kernels: wasm });
  const cache = createKvCache(arena, { kind: "contiguous", numLayers: 1, numKvHeads: K, headDim: D, dtype: "f32", initialTokens: T });
  const seq = cache.addSequence();
  const q = randn(T * H * D, 3);
  // Every head gets head 0's query: heads 0, 1 read kv head 0, heads 2, 3 kv head 1.
  for (let t = 0; t < T; t++) for (let h = 1; h < H; h++) q.copyWithin((t * H + h) * D, t * H * D, t * H * D + D);
  const { probs } = attn.prefill({ cache, layer: 0, seqs: [seq], lengths: [T], q, k: randn(T * K * D, 4), v: randn(T * K * D, 5), probsHeads: [0, 1, 2, 3] });
  const row = (h: number) => probs.find((p) => p.t === T - 1 && p.head === h)!.probs;
  assert.deepEqual(Array.from(row(1)), Array.from(row(0)), "heads 0 and 1 share kv head 0");
  assert.deepEqual(Array.from(row(3)), Array.from(row(2)), "heads 2 and 3 share kv head 1");
  assert.ok(maxDiff(row(0), row(2)).diff > 1e-3, "heads 0 and 2 read different kv heads, so their rows differ");
  cache.dispose();
  attn.dispose();
});

// Fixture models: the model's forward with WASM kernels, the probabilities of every layer and head.
for (const name of ["llama-gqa-f16", "mistral-gqa-window", "llama-mqa-bf16"]) {
  test(`fixture ${name}: attentionMaps (WASM, prefill + 2 decode steps) = the reference path on the same calls; causal, windowed, rows sum to 1`, async () => {
    const { exp } = expected(name);
    let heads: number[] = [];
    let rec: ReturnType<typeof recordingKernels> | null = null;
    let w: KernelHandle | null = null;
    try {
      const m = await load(join(MODELS_DIR, name), async (a) => {
        w = await createKernels({ arena: a, backend: "wasm", threads: 2 });
        rec = recordingKernels(w, a, () => heads);
        return rec.kernels;
      });
      const spec = m.model.spec;
      const L = spec.numLayers;
      heads = Array.from({ length: spec.numHeads }, (_, h) => h);
      const tokens = [...exp.prompt, ...exp.greedy].slice(0, 9);
      const T = tokens.length;
      const maps = attentionMaps(m.model, tokens, { decodeSteps: 2 });
      assert.equal(maps.layers.length, L);
      // The recorded reference rows: calls go layer 0 .. L-1 per forward.
      rec!.calls.forEach((r, i) => {
        const l = i % L;
        for (const p of r.probs) {
          const row = maps.layers[l].heads[p.head].probs[p.pos];
          const full = new Float64Array(T);
          p.keyPositions.forEach((j, s) => (full[j] = p.probs[s]));
          const d = maxDiff(row, full);
          assert.ok(d.diff <= SAME_CALL_TOL, `${name} layer ${l} head ${p.head} query ${p.pos}: max |Δp| ${d.diff.toExponential(2)} at key ${d.at} > ${SAME_CALL_TOL}`);
        }
      });
      assert.equal(rec!.calls.length, 3 * L, "one prefill and two decode forwards");
      for (const l of maps.layers) {
        const { numHeads: H, numKvHeads: K, window } = spec.layers[l.layer];
        assert.equal(l.numKvHeads, K);
        assert.equal(l.window, window);
        for (const h of l.heads) {
          assert.equal(h.kvHead, Math.floor(h.head / (H / K)), `${name} layer ${l.layer}: head ${h.head} reads kv head floor(h / G)`);
          h.probs.forEach((row, i) => {
            const sum = row.reduce((a, x) => a + x, 0);
            assert.ok(Math.abs(sum - 1) < 1e-12, `${name} layer ${l.layer} head ${h.head} row ${i} sums to ${sum}`);
            row.forEach((p, j) => {
              const visible = j <= i && (window === null || j > i - window);
              if (!visible) assert.equal(p, 0, `${name} layer ${l.layer} head ${h.head}: query ${i} gives key ${j} weight ${p} through the mask (window ${window})`);
            });
          });
        }
      }
      if (name === "mistral-gqa-window") assert.ok(spec.layers.every((l) => l.window === 5) && T > 5, "the window fixture masks keys here");
    } finally {
      (w as KernelHandle | null)?.close();
    }
  });
}

/** Records every attention call's queries and cached keys (f32 cache), as float64 copies. */
function scoreRecorder(inner: Kernels, arena: Arena) {
  const calls: { call: AttentionCall; q: Float64Array; keys: Float64Array[]; positions: number[] }[] = [];
  const kernels: Kernels = {
    name: inner.name, threads: inner.threads,
    matmul: (c) => inner.matmul(c), matmulMany: (cs) => inner.matmulMany(cs), activation: (c) => inner.activation(c),
    attention: (call) => {
      inner.attention(call);
      assert.equal(call.kvDtype, "f32", "scoreRecorder reads f32 caches");
      const { T, H, K, D } = call;
      const positions = call.segments.flatMap((sg) => Array.from({ length: sg.rows }, (_, r) => sg.firstPos + r));
      const keys = Array.from({ length: K }, (_, kh) => Float64Array.from(call.segments.flatMap((sg) => Array.from({ length: sg.rows }, (_, r) => Array.from(arena.f32(sg.kPtr + kh * sg.headStride + r * D * 4, D)))).flat()));
      calls.push({ call: { ...call }, q: Float64Array.from(arena.f32(call.q, T * H * D)), keys, positions });
    },
  };
  return { kernels, calls };
}

// WASM against the reference kernels end to end. The two runs differ in every matmul's float32
// rounding, so their scores z differ by a measured Δz per key; softmax then bounds the weights:
// p̃_j / p_j = e^{Δz_j} / Σ_k p_k e^{Δz_k} ∈ [e^{-2Δ}, e^{2Δ}] with Δ = max_j |Δz_j| over the row, so
// |p̃_j - p_j| ≤ p_j (e^{2Δ} - 1), plus 1e-12 for the float64 recomputation.
for (const name of ["llama-gqa-f16", "mistral-gqa-window"]) {
  test(`fixture ${name}: WASM attention maps = reference-kernel maps within the softmax bound of the measured score differences`, async () => {
    const { exp } = expected(name);
    const tokens = [...exp.prompt, ...exp.greedy].slice(0, 9);
    let w: KernelHandle | null = null;
    try {
      const runs = [];
      for (const backend of ["wasm", "reference"] as const) {
        let rec: ReturnType<typeof scoreRecorder> | null = null;
        const m = await load(join(MODELS_DIR, name), async (a) => {
          const inner = backend === "wasm" ? (w = await createKernels({ arena: a, backend: "wasm", threads: 2 })) : referenceKernels(a);
          rec = scoreRecorder(inner, a);
          return rec.kernels;
        });
        runs.push({ maps: attentionMaps(m.model, tokens), calls: rec!.calls });
      }
      const [fast, ref] = runs;
      let worst = 0;
      fast.maps.layers.forEach((l, li) => {
        const [cf, cr] = [fast.calls[li], ref.calls[li]];
        const { H, K, D, scale } = cf.call;
        for (const hm of l.heads) {
          const kh = Math.floor(hm.head / (H / K));
          hm.probs.forEach((row, i) => {
            let delta = 0;
            cf.positions.forEach((j, s) => {
              if (!(j <= i && (l.window === null || j > i - l.window))) return;
              const z = (c: typeof cf) => { let d = 0; for (let x = 0; x < D; x++) d += c.q[(i * H + hm.head) * D + x] * c.keys[kh][s * D + x]; return scale * d; };
              delta = Math.max(delta, Math.abs(z(cf) - z(cr)));
            });
            const refRow = ref.maps.layers[li].heads.find((x) => x.head === hm.head)!.probs[i];
            row.forEach((p, j) => {
              const tol = refRow[j] * Math.expm1(2 * delta) + 1e-12;
              const err = Math.abs(p - refRow[j]);
              worst = Math.max(worst, err / tol);
              assert.ok(err <= tol, `${name} layer ${l.layer} head ${hm.head} (${i}, ${j}): WASM ${p}, reference ${refRow[j]}, |Δ| ${err.toExponential(2)} > p·(e^{2Δz}-1) = ${tol.toExponential(2)} (Δz ${delta.toExponential(2)})`);
            });
          });
        }
      });
      assert.ok(worst > 0, "the two backends differ somewhere (else this comparison shows nothing)");
    } finally {
      (w as KernelHandle | null)?.close();
    }
  });
}

test("jsDivergence and headDivergence: 0 for equal rows, 1 bit for disjoint ones; pairs split by kv head", () => {
  assert.equal(jsDivergence([0.5, 0.5], [0.5, 0.5]), 0);
  assert.ok(Math.abs(jsDivergence([1, 0], [0, 1]) - 1) < 1e-15);
  const rows = (p: number[][]) => p;
  const layer: LayerMap = {
    layer: 0, numKvHeads: 2, window: null,
    heads: [
      { head: 0, kvHead: 0, probs: rows([[1, 0], [1, 0]]) },
      { head: 1, kvHead: 0, probs: rows([[1, 0], [1, 0]]) },
      { head: 2, kvHead: 1, probs: rows([[1, 0], [0, 1]]) },
      { head: 3, kvHead: 1, probs: rows([[1, 0], [0, 1]]) },
    ],
  };
  const d = headDivergence(layer);
  assert.deepEqual([d.withinGroup, d.betweenGroups, d.pairsWithin, d.pairsBetween, d.rows], [0, 1, 2, 4, 1]);
});

// The CLI contract on the shipped default model (GQA: 8 heads, 2 kv heads, 4 layers).
test("mqa attention --json on the default model: tokens, layers, heads with kvHead, causal rows summing to 1", async () => {
  const r = await runCli(["attention", "--prompt", "In the beginning God created", "--layers", "0,3", "--heads", "2-5", "--json"]);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as { tokens: string[]; layers: { layer: number; numKvHeads: number; heads: { head: number; kvHead: number; probs: number[][] }[] }[] };
  const T = j.tokens.length;
  assert.ok(T >= 4 && j.tokens.every((t) => typeof t === "string"), `tokens: ${JSON.stringify(j.tokens)}`);
  assert.ok(j.tokens.join("").includes("beginning God"), `decoded pieces ${JSON.stringify(j.tokens)}`);
  assert.deepEqual(j.layers.map((l) => l.layer), [0, 3]);
  for (const l of j.layers) {
    assert.equal(l.numKvHeads, 2);
    assert.deepEqual(l.heads.map((h) => [h.head, h.kvHead]), [[2, 0], [3, 0], [4, 1], [5, 1]]);
    for (const h of l.heads) {
      assert.equal(h.probs.length, T);
      h.probs.forEach((row, i) => {
        assert.equal(row.length, T);
        assert.ok(Math.abs(row.reduce((a, x) => a + x, 0) - 1) < 1e-9, `layer ${l.layer} head ${h.head} row ${i} sums to 1`);
        for (let k = i + 1; k < T; k++) assert.equal(row[k], 0, `layer ${l.layer} head ${h.head}: weight above the diagonal at (${i}, ${k})`);
      });
    }
  }
});

test("mqa attention --prompt-tokens --out map.svg: a heatmap grid labelled by KV head", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mqa-attn-"));
  try {
    const out = join(dir, "map.svg");
    const r = await runCli(["attention", "--prompt-tokens", "10,200,31,4000", "--layers", "1", "--out", out]);
    assert.equal(r.code, 0, r.err);
    const svg = readFileSync(out, "utf8");
    assert.ok(svg.startsWith("<svg"), "an SVG file");
    for (const s of ["KV head 0", "KV head 1", "head 7", "layer 1"]) assert.ok(svg.includes(s), `the picture shows "${s}"`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("mqa attention: bad input is one line naming the flag, exit 2; --help", async () => {
  const cases: [string[], string][] = [
    [["--prompt-tokens", "1,2", "--layers", "4"], "--layers"],
    [["--prompt-tokens", "1,2", "--heads", "9-3"], "--heads"],
    [["--prompt-tokens", "1,2", "--heads", "8"], "--heads"],
    [["--prompt", "a", "--prompt-tokens", "1,2"], "--prompt"],
    [["--prompt-tokens", "1,2", "--out", "map.jpg"], "--out"],
    [["--prompt-tokens", "1,x"], "--prompt-tokens"],
    [["--prompt-tokens", "1,99999"], "--prompt-tokens"],
    [["--prompt-tokens", "1,2", "--kv-dtype", "f8"], "--kv-dtype"],
  ];
  for (const [args, flag] of cases) {
    const r = await runCli(["attention", ...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: exit ${r.code}, stderr ${r.err}`);
    assert.equal(r.err.split("\n").length, 1, `${args.join(" ")}: one line, got ${JSON.stringify(r.err)}`);
    assert.ok(r.err.includes(flag), `${args.join(" ")}: "${r.err}" names ${flag}`);
  }
  const write = process.stdout.write;
  let helpText = "";
  process.stdout.write = ((c: string | Uint8Array) => ((helpText += String(c)), true)) as typeof process.stdout.write; // commander prints help there
  const help = await runCli(["attention", "--help"]).finally(() => (process.stdout.write = write));
  assert.equal(help.code, 0);
  for (const flag of ["--prompt", "--prompt-tokens", "--layers", "--heads", "--out", "--json"]) assert.ok(helpText.includes(flag), `--help mentions ${flag}`);
});
