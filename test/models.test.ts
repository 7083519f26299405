// Model runtime vs PyTorch: every fixture family (llama, mistral, qwen2, qwen3, phi3, gemma, gemma2, gemma3_text, falcon, gpt2, gpt_bigcode;
// MHA/GQA/MQA; f32/f16/bf16 checkpoints; tied/untied; sharded) on the reference kernels.
//
// Tolerances. The reference runs in float64 from the same (already rounded) checkpoint values, so
// the only error is our f32 arithmetic, in whatever order the reference or WASM kernels sum.
// tools/fixtures/gen_rounding.py evaluates each fixture in float32 and finds the largest logit
// deviation from float64, deltaF32 = 0.5e-6..8.2e-6 (rounding.json; 8.2e-6 is gemma3-mqa-localrope's six layers). A different f32 summation
// order (SIMD lanes, FMA, threads) changes each dot product of n ≤ 64 terms by at most
// ~n·2^-24·Σ|a·b| ≈ 4e-6·Σ|a·b|, the same order as deltaF32, so ATOL = 2e-4 (≥ 24 × deltaF32 for
// every fixture) holds for any order on any CPU; RTOL = 1e-4 covers the largest logits (≤ 17).
// Greedy continuations must be identical: every fixture's smallest top-1/top-2 gap
// (minGreedyMargin) is ≥ 6e-3, above 2·ATOL.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { assertClose } from "./attention-helpers.js";
import { MODELS_DIR, expected, fixtureNames, load } from "./models-helpers.js";

const ATOL = 2e-4;
const RTOL = 1e-4;

for (const name of fixtureNames()) {
  test(`${name}: prefill logits at every position match PyTorch`, async () => {
    const { exp, logits } = expected(name);
    const { model } = await load(join(MODELS_DIR, name));
    const cache = model.createCache({});
    const seq = cache.addSequence();
    const got = model.forward(cache, [seq], [exp.tokens], "all");
    assertClose(`${name} logits [${exp.logits.shape}]`, got, logits, ATOL, RTOL);
  });

  test(`${name}: decode step by step equals the prefill logits and the greedy continuation`, async () => {
    const { exp, logits } = expected(name);
    const { model } = await load(join(MODELS_DIR, name));
    const V = exp.logits.shape[1];
    const cache = model.createCache({});
    const seq = cache.addSequence();
    let last = model.forward(cache, [seq], [exp.prompt], "last");
    const greedy: number[] = [];
    for (let i = 0; i < exp.greedy.length; i++) {
      const t = exp.prompt.length - 1 + i;
      assertClose(`${name} decode logits at position ${t}`, last, logits.subarray(t * V, (t + 1) * V), ATOL, RTOL);
      let best = 0;
      for (let v = 1; v < V; v++) if (last[v] > last[best]) best = v;
      greedy.push(best);
      last = model.forward(cache, [seq], [[best]], "last");
    }
    assert.deepEqual(greedy, exp.greedy, `${name}: greedy continuation`);
  });
}

test("every fixture on the WASM kernels (2 worker threads), with and without the row kernels, matches PyTorch and gives the same greedy tokens", async () => {
  const { createKernels } = await import("../src/kernels/index.js");
  const handles: { close(): void }[] = [];
  try {
    for (const name of fixtureNames()) {
      const { exp, logits } = expected(name);
      const { model } = await load(join(MODELS_DIR, name), async (arena) => {
        const k = await createKernels({ arena, backend: "wasm", threads: 2 });
        handles.push(k);
        return k;
      });
      // Default: these small prompts keep their norms, RoPE and adds in TypeScript; 0: every row step
      // runs in Kernels.rowOp (what a long prefill does), held to PyTorch the same way.
      for (const minValues of [model.rowKernelMinValues, 0]) {
        model.rowKernelMinValues = minValues;
        const cache = model.createCache({ kind: "paged", maxTokens: 64 });
        const got = model.forward(cache, [cache.addSequence()], [exp.tokens], "all");
        // Same tolerance as the reference kernels: the SIMD kernels only reorder f32 (and the norms' f64) sums.
        assertClose(`${name} logits on WASM kernels (row kernels from ${minValues} values)`, got, logits, ATOL, RTOL);
      }
    }
  } finally {
    for (const h of handles) h.close();
  }
});

test("MLP row blocks: the 17-token fixtures of llama-mqa-bf16, llama-gqa-f16 and qwen2-gqa-bias run their MLP in 2 blocks, so the PyTorch checks above cover a blocked MLP", async () => {
  for (const name of ["llama-mqa-bf16", "llama-gqa-f16", "qwen2-gqa-bias"]) {
    const { exp } = expected(name);
    const { model } = await load(join(MODELS_DIR, name));
    const N = exp.tokens.length;
    const rows = model.mlpRows(N);
    assert.ok(rows < N && rows * 2 >= N, `${name}: mlpRows(${N}) = ${rows}; expected 2 blocks (${N} / 2 <= rows < ${N})`);
  }
});
