// The planner's roofline is checked against what mqa's decode really reads, and its prefill
// estimate against hand-worked FLOP counts. bench/roofline.ts then compares the times on this
// machine (docs/benchmarks/roofline.md); no timing is asserted here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { rowBytes } from "../src/dtypes/table.js";
import { generate } from "../src/generate/generate.js";
import { customGpu } from "../src/planner/gpus.js";
import { decodeEstimate, resolvePlanOptions } from "../src/planner/plan.js";
import { prefillEstimate } from "../src/planner/prefill.js";
import { loadSpec } from "../src/formats/model-file.js";
import { withKvHeads } from "../src/config/variant.js";
import { presetSpec } from "../src/config/presets.js";
import { MODELS_DIR, load } from "./models-helpers.js";

const cpu = customGpu({ memoryGiB: 24, bandwidthGBs: 50, tflops: 0.1, name: "test CPU" });

test("roofline: the planner's decode bytes are the bytes mqa's decode reads (matmul weights + the KV cache), on fixture models", async () => {
  for (const name of ["llama-gqa-f16", "llama-mha-f32", "qwen2-gqa-bias"]) {
    const dir = join(MODELS_DIR, name);
    const spec = await loadSpec(dir);
    const { model } = await load(dir);
    // What one decode step reads: every matrix (the tied or untied head included) in its stored dtype,
    // plus one embedding row and the 1-D vectors (norms, biases), which the roofline counts in the weight dtype.
    let matrices = 0;
    // A tied model's "embed" is its head (read in full each step); an untied model's is the input table (one row).
    for (const [key, w] of model.weights) if (w.shape.length === 2 && (spec.tieWordEmbeddings || key !== "embed")) matrices += rowBytes(w.dtype, w.shape[0] * w.shape[1]);
    const dtype = [...model.weights.values()].find((w) => w.shape.length === 2)!.dtype;
    const o = resolvePlanOptions(spec, { gpu: cpu, context: 40, weightDtype: dtype, kvDtype: "f16" });
    const est = decodeEstimate(spec, o, 1);
    const embed = spec.tieWordEmbeddings ? 0 : rowBytes(dtype, spec.hiddenSize); // untied: the one row looked up
    const vectors = est.weightBytesReadPerGpu - embed - matrices;
    const vectorValues = [...model.weights.values()].filter((w) => w.shape.length === 1).reduce((a, w) => a + w.shape[0], 0);
    assert.equal(vectors, rowBytes(dtype, vectorValues), `${name}: the estimate's weight bytes = the runtime's matrices + one embedding row (untied) + vectors`);
    // The KV bytes the estimate reads are the bytes the cache holds after `context` tokens.
    const prompt = Array.from({ length: 30 }, (_, i) => 3 + (i % 50));
    // 30 prompt + 11 generated tokens: the last sample is not fed back, so the cache ends at 40 rows.
    const r = generate(model, [prompt], { maxTokens: 11, temperature: 0, stopTokens: [], kvDtype: "f16" });
    assert.equal(r.kvCacheBytes, est.kvBytesReadPerGpu, `${name}: KV bytes at 40 tokens`);
  }
});

test("prefill estimate: causal and windowed attention FLOPs by hand; compute-bound at long prompts; TTFT falls with the FLOP rate", () => {
  const spec = presetSpec("llama-2-7b");
  const o = resolvePlanOptions(spec, { gpu: "h100-sxm", weightDtype: "bf16", kvDtype: "f16" });
  const P = 4096;
  const e = prefillEstimate(spec, o, P);
  // 32 layers × 32 heads × (QK 128 + AV 128) widths × 2 FLOPs × P(P+1)/2 pairs.
  assert.equal(e.attentionFlopsPerGpu, 32 * 32 * 256 * 2 * (P * (P + 1)) / 2);
  assert.equal(e.bound, "compute");
  const matmulParams = 6_738_415_616 - 32000 * 4096 - 65 * 4096; // all parameters but the input embedding and the norms
  assert.ok(Math.abs(e.flopsPerGpu - e.attentionFlopsPerGpu - 2 * matmulParams * P) < 2 * 4096 * P * 70, "2 × matmul parameters × P, up to the norms");
  // A sliding window of w keys: Σ min(i + 1, w) pairs = wP − w(w − 1)/2.
  const mistral = presetSpec("mistral-7b-v0.1");
  const w = mistral.layers[0].window!;
  const om = resolvePlanOptions(mistral, { gpu: "h100-sxm" });
  const long = 3 * w;
  const perPair = mistral.numLayers * mistral.numHeads * 2 * mistral.headDim * 2;
  assert.equal(prefillEstimate(mistral, om, long).attentionFlopsPerGpu, perPair * (w * long - (w * (w - 1)) / 2));
  // GQA does not change prefill FLOPs (query heads do the work), only the KV bytes written.
  const gqa = prefillEstimate(withKvHeads(spec, 8), o, P);
  assert.equal(gqa.attentionFlopsPerGpu, e.attentionFlopsPerGpu);
  assert.ok(gqa.bytesPerGpu < e.bytesPerGpu);
  const slow = prefillEstimate(spec, resolvePlanOptions(spec, { gpu: customGpu({ memoryGiB: 80, bandwidthGBs: 3350, tflops: 100 }) }), P);
  assert.ok(slow.seconds > e.seconds);
});
