// PyTorch fixtures (tools/fixtures/gen_attention.py, float64, K/V expanded with repeat_interleave)
// against the reference kernels, driven through the public attention API and every cache form.
//
// Tolerances. The reference kernels accumulate in float64 from the same f32 inputs, so the only
// difference from PyTorch's float64 result is the final rounding of the output to f32
// (relative 2^-24 ≈ 6e-8): we allow 1e-6 absolute + 1e-6 relative. Probabilities are float64 on
// both sides: 1e-12. Conversions must match PyTorch bit for bit.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Arena } from "../src/kernels/memory.js";
import { referenceKernels, referenceMatmul } from "../src/kernels/reference.js";
import { Attention, type AttentionProbs } from "../src/attention/index.js";
import { createKvCache, type KvCacheSpec } from "../src/kvcache/index.js";
import { f32ToBf16, f32ToF16 } from "../src/dtypes/codecs.js";
import type { KvDtype } from "../src/kernels/types.js";
import { assertClose, loadFixtures, type FixtureCase } from "./attention-helpers.js";

const fx = loadFixtures(1);
const ATOL = 1e-6;
const RTOL = 1e-6;

function runCase(c: FixtureCase, kind: KvCacheSpec["kind"], dtype: KvDtype = "f32", probsHeads: number[] = []) {
  const arena = new Arena();
  const attn = new Attention({ numHeads: c.H, numKvHeads: c.K, headDim: c.D, window: c.window }, { arena, kernels: referenceKernels(arena) });
  const base = { numLayers: 1, numKvHeads: c.K, headDim: c.D, dtype };
  const spec: KvCacheSpec =
    kind === "paged" ? { ...base, kind, blockSize: 4, numBlocks: 200 }
    : kind === "window" ? { ...base, kind, window: c.window ?? 1000 }
    : { ...base, kind, initialTokens: 2 };
  const cache = createKvCache(arena, spec);
  const seqs = c.lengths.map(() => cache.addSequence());
  const q = fx.tensor(c.tensors.q) as Float32Array;
  const k = fx.tensor(c.tensors.k) as Float32Array;
  const v = fx.tensor(c.tensors.v) as Float32Array;
  return attn.prefill({ cache, layer: 0, seqs, lengths: c.lengths, q, k, v, probsHeads });
}

for (const c of fx.cases) {
  test(`fixture ${c.name} (${c.note}): reference kernels, contiguous and paged caches`, () => {
    const want = fx.tensor(c.tensors.out);
    for (const kind of ["contiguous", "paged"] as const) {
      assertClose(`${c.name} ${kind}`, runCase(c, kind).out, want, ATOL, RTOL);
    }
    if (c.window !== null) assertClose(`${c.name} window cache`, runCase(c, "window").out, want, ATOL, RTOL);
  });
}

test("fixture gqa_h8_k2_d64: f16, bf16 and int8 caches equal PyTorch on K/V rounded the same way", () => {
  const c = fx.cases.find((x) => x.name === "gqa_h8_k2_d64")!;
  // The cache rounds exactly as torch does (bit-exact conversions), so only the f32 output rounding remains.
  assertClose("f16 cache", runCase(c, "contiguous", "f16").out, fx.tensor(c.tensors.out_kv_f16), ATOL, RTOL);
  assertClose("bf16 cache", runCase(c, "paged", "bf16").out, fx.tensor(c.tensors.out_kv_bf16), ATOL, RTOL);
  // int8 rows quantised by the generator with the formula of src/dtypes/codecs.ts (per-row f32 scale).
  assertClose("int8 cache", runCase(c, "contiguous", "int8").out, fx.tensor(c.tensors.out_kv_int8), ATOL, RTOL);
});

test("fixture probabilities of chosen heads (MHA head 1, MQA heads 0 and 7) match torch.softmax", () => {
  for (const [name, heads] of [["mha_h4_d20", [1]], ["mqa_h8_k1_d40", [0, 7]]] as const) {
    const c = fx.cases.find((x) => x.name === name)!;
    const { probs } = runCase(c, "contiguous", "f32", [...heads]);
    const T0 = c.lengths[0];
    for (const h of heads) {
      const want = fx.tensor(c.tensors[`probs_seq0_head${h}`]); // [T0, T0], zeros above the diagonal
      const got = new Float64Array(T0 * T0);
      const rows = probs.filter((p: AttentionProbs) => p.seq === 0 && p.head === h);
      assert.equal(rows.length, T0, `${name} head ${h}: expected ${T0} probability rows, got ${rows.length}`);
      for (const r of rows) r.keyPositions.forEach((pos, i) => (got[r.t * T0 + pos] = r.probs[i]));
      assertClose(`${name} probs head ${h}`, got, want, 1e-12);
    }
  }
});

test("fixture conversions: f16 and bf16 bits equal PyTorch's for ties, subnormals and overflow", () => {
  const values = fx.tensor(fx.conversions.values) as Float32Array;
  const f16 = fx.tensor(fx.conversions.f16_bits) as Uint16Array;
  const bf16 = fx.tensor(fx.conversions.bf16_bits) as Uint16Array;
  values.forEach((x, i) => {
    assert.equal(f32ToF16(x), f16[i], `f16 of ${x} (index ${i}): got ${f32ToF16(x)}, torch ${f16[i]}`);
    assert.equal(f32ToBf16(x), bf16[i], `bf16 of ${x} (index ${i}): got ${f32ToBf16(x)}, torch ${bf16[i]}`);
  });
});

test("fixture matmul: f32, f16 and bf16 weights with bias (tolerance 1e-5: f32 output of values ~10)", () => {
  const { M, N, Kin, tensors: t } = fx.matmul;
  const arena = new Arena();
  const x = arena.alloc(M * Kin * 4), bias = arena.alloc(N * 4), out = arena.alloc(M * N * 4), w = arena.alloc(N * Kin * 4);
  arena.f32(x, M * Kin).set(fx.tensor(t.x));
  arena.f32(bias, N).set(fx.tensor(t.bias));
  for (const [wDtype, wKey, outKey] of [["f32", "w", "out"], ["f16", "w_f16_bits", "out_f16"], ["bf16", "w_bf16_bits", "out_bf16"]] as const) {
    if (wDtype === "f32") arena.f32(w, N * Kin).set(fx.tensor(t[wKey]));
    else arena.u16(w, N * Kin).set(fx.tensor(t[wKey]));
    referenceMatmul(arena, { x, w, bias, out, M, N, Kin, wDtype });
    assertClose(`matmul ${wDtype}`, arena.f32(out, M * N), fx.tensor(t[outKey]), 1e-5, 1e-6);
  }
});
