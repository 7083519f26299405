// The `mqa attention-demo` library path (src/attention/compare.ts) on small shapes: byte ratios are
// exact, and both correctness checks hold (no timing is asserted).
// Tolerance: the WASM backend accumulates in f32, so 1e-5 against the float64 reference; the
// repeated-KV MHA check compares a backend with itself over the same values: same 1e-5.
import { test } from "node:test";
import assert from "node:assert/strict";
import { compareAttentionVariants } from "../src/attention/compare.js";

for (const backend of ["reference", "wasm"] as const) {
  test(`attention-demo comparison (${backend}): MHA/GQA/MQA bytes per token and correctness checks`, async () => {
    const r = await compareAttentionVariants({ numHeads: 8, headDim: 20, kvHeads: [8, 2, 1], context: 40, steps: 2, dtype: "int8", layers: 4, backend, threads: 1 });
    assert.deepEqual(r.variants.map((v) => v.kind), ["mha", "gqa", "mqa"]);
    // int8 row = 20 bytes + 4-byte scale; K and V; 4 layers.
    assert.deepEqual(r.variants.map((v) => v.cacheBytesPerToken), [8, 2, 1].map((K) => 2 * 4 * K * 24));
    for (const v of r.variants) {
      assert.ok(v.maxAbsDiffVsRepeatedMha <= 1e-5, `${v.kind}: vs repeated-KV MHA ${v.maxAbsDiffVsRepeatedMha} > 1e-5`);
      if (backend === "reference") assert.equal(v.maxAbsDiffVsReference, null);
      else assert.ok(v.maxAbsDiffVsReference! <= 1e-5, `${v.kind}: vs reference ${v.maxAbsDiffVsReference} > 1e-5`);
      assert.equal(v.cacheBytes, v.cacheBytesPerToken * (40 + 2 + 2));
    }
  });
}

test("attention-demo rejects a kv-head count that does not divide the query heads", async () => {
  await assert.rejects(compareAttentionVariants({ numHeads: 8, headDim: 20, kvHeads: [3], backend: "reference" }), /numHeads = 8 is not divisible by numKvHeads = 3/);
});
