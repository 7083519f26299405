// The WASM SIMD backend (1 and 2 threads, plain and relaxed SIMD) equals the reference backend
// when driven through the attention API: MHA/GQA/MQA, ragged prefill then decode, f32/f16/int8
// caches, contiguous/paged/window, and a context long enough for split-KV decode.
//
// Tolerance (reason): the WASM kernels accumulate in f32 and use a polynomial exp2 (relative error
// ~2e-7); outputs are convex combinations of V rows with |v| ~ 1, so 2e-5 + 2e-5·|want| (the same
// bound as test/kernels.test.ts). Both backends read the very same cache bytes.
import { test } from "node:test";
import { Arena } from "../src/kernels/memory.js";
import { referenceKernels } from "../src/kernels/reference.js";
import { Attention, type AttentionConfig } from "../src/attention/index.js";
import { createKvCache, type KvCacheSpec } from "../src/kvcache/index.js";
import type { Kernels, KvDtype } from "../src/kernels/types.js";
import { assertClose, loadFixtures, randn } from "./attention-helpers.js";
import { wasmBackends } from "./kernel-backends.js";

const ATOL = 2e-5;
const RTOL = 2e-5;
const arena = new Arena({ initialBytes: 64 << 20 });
const backends = wasmBackends(arena, [{ threads: 1, relaxed: false }, { threads: 2, relaxed: false }, { threads: 2, relaxed: true }]);

/** Runs a ragged prefill and `steps` decode steps; returns every output, concatenated. */
function schedule(kernels: Kernels, config: AttentionConfig, kind: KvCacheSpec["kind"], dtype: KvDtype, prompt: number[], steps: number): Float32Array {
  const { numHeads: H, numKvHeads: K, headDim: D } = config;
  const attn = new Attention(config, { arena, kernels });
  const base = { numLayers: 1, numKvHeads: K, headDim: D, dtype };
  const spec: KvCacheSpec = kind === "paged" ? { ...base, kind, blockSize: 16, numBlocks: 512 }
    : kind === "window" ? { ...base, kind, window: config.window! } : { ...base, kind };
  const cache = createKvCache(arena, spec);
  const seqs = prompt.map(() => cache.addSequence());
  const N = prompt.reduce((a, b) => a + b, 0);
  const outs: Float32Array[] = [];
  outs.push(attn.prefill({ cache, layer: 0, seqs, lengths: prompt, q: randn(N * H * D, 1), k: randn(N * K * D, 2), v: randn(N * K * D, 3) }).out);
  for (let s = 0; s < steps; s++) {
    const B = seqs.length;
    outs.push(attn.decode({ cache, layer: 0, seqs, q: randn(B * H * D, 10 + s), k: randn(B * K * D, 20 + s), v: randn(B * K * D, 30 + s) }).out);
  }
  cache.dispose();
  attn.dispose();
  const all = new Float32Array(outs.reduce((a, o) => a + o.length, 0));
  let off = 0;
  for (const o of outs) {
    all.set(o, off);
    off += o.length;
  }
  return all;
}

const SHAPES: [string, AttentionConfig][] = [
  ["MHA", { numHeads: 4, numKvHeads: 4, headDim: 20 }],
  ["GQA", { numHeads: 8, numKvHeads: 2, headDim: 64 }],
  ["MQA", { numHeads: 8, numKvHeads: 1, headDim: 40 }],
];

for (const [label, config] of SHAPES) {
  for (const dtype of ["f32", "f16", "int8"] as const) {
    test(`WASM = reference through the API: ${label} (H ${config.numHeads}, K ${config.numKvHeads}, D ${config.headDim}), ${dtype}, contiguous + paged + window`, () => {
      const ref = referenceKernels(arena);
      const variants: [KvCacheSpec["kind"], AttentionConfig][] = [["contiguous", config], ["paged", config], ["window", { ...config, window: 6 }]];
      for (const [kind, cfg] of variants) {
        const want = schedule(ref, cfg, kind, dtype, [9, 1, 20], 4);
        for (const b of backends) assertClose(`${b.name} ×${b.threads} ${label} ${dtype} ${kind}`, schedule(b, cfg, kind, dtype, [9, 1, 20], 4), want, ATOL, RTOL);
      }
    });
  }
}

test("WASM = reference on a 700-token context (split-KV decode across threads), GQA and MQA, f32 and f16, paged", () => {
  const ref = referenceKernels(arena);
  for (const config of [{ numHeads: 4, numKvHeads: 2, headDim: 20 }, { numHeads: 4, numKvHeads: 1, headDim: 20 }]) {
    for (const dtype of ["f32", "f16"] as const) {
      const want = schedule(ref, config, "paged", dtype, [700], 3);
      for (const b of backends) assertClose(`${b.name} ×${b.threads} K ${config.numKvHeads} ${dtype} long`, schedule(b, config, "paged", dtype, [700], 3), want, ATOL, RTOL);
    }
  }
});

test("WASM = PyTorch fixtures through the API (every case, contiguous f32 cache)", (t) => {
  const fx = loadFixtures(1);
  for (const c of fx.cases) {
    const want = fx.tensor(c.tensors.out);
    for (const b of backends) {
      const attn = new Attention({ numHeads: c.H, numKvHeads: c.K, headDim: c.D, window: c.window }, { arena, kernels: b });
      const cache = createKvCache(arena, { kind: "contiguous", numLayers: 1, numKvHeads: c.K, headDim: c.D });
      const seqs = c.lengths.map(() => cache.addSequence());
      const q = fx.tensor(c.tensors.q) as Float32Array, k = fx.tensor(c.tensors.k) as Float32Array, v = fx.tensor(c.tensors.v) as Float32Array;
      const { out } = attn.prefill({ cache, layer: 0, seqs, lengths: c.lengths, q, k, v });
      const m = assertClose(`${b.name} ×${b.threads} fixture ${c.name}`, out, want, ATOL, RTOL);
      if (c.name.startsWith("extreme")) t.diagnostic(`${b.name} ×${b.threads} extreme-logit fixture: max |err| ${m.maxAbs.toExponential(2)}`);
      cache.dispose();
      attn.dispose();
    }
  }
});

test("WASM = reference with Gemma-2 soft-capping (softcap 1.5, scale 0.4 so scores reach the cap): row and quad paths, window, split-KV decode", () => {
  const ref = referenceKernels(arena);
  for (const [label, base] of SHAPES) {
    const config = { ...base, scale: 0.4, softcap: 1.5 };
    const want = schedule(ref, config, "contiguous", "f32", [9, 1, 20], 4);
    // The cap must change the result, else this test could not fail on a kernel that ignores it.
    const uncapped = schedule(ref, { ...config, softcap: null }, "contiguous", "f32", [9, 1, 20], 4);
    let diff = 0;
    for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(want[i] - uncapped[i]));
    if (!(diff > 100 * ATOL)) throw new Error(`${label}: soft-capping changed the output by only ${diff}; the test needs scores beyond the cap`);
    for (const b of backends) {
      assertClose(`${b.name} ×${b.threads} ${label} softcap`, schedule(b, config, "contiguous", "f32", [9, 1, 20], 4), want, ATOL, RTOL);
      const win = { ...config, window: 6 };
      assertClose(`${b.name} ×${b.threads} ${label} softcap window`, schedule(b, win, "window", "f16", [9, 1, 20], 4), schedule(ref, win, "window", "f16", [9, 1, 20], 4), ATOL, RTOL);
    }
  }
  const long = { numHeads: 4, numKvHeads: 1, headDim: 20, scale: 0.4, softcap: 1.5 };
  const want = schedule(ref, long, "paged", "f32", [700], 3);
  for (const b of backends) assertClose(`${b.name} ×${b.threads} softcap long`, schedule(b, long, "paged", "f32", [700], 3), want, ATOL, RTOL);
});
