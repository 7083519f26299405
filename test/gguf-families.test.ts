// export-gguf → our GGUF reader for the families whose GGUF form differs from their HF folder:
// Mistral is written as llama.cpp's llama architecture with its window in
// llama.attention.sliding_window (which our reader applies), and GPT-2's Conv1D weights are
// written [out, in] and handed back [in, out] (also from Q8_0 blocks, dequantized); Qwen3 keeps its q/k norms
// (attn_q_norm / attn_k_norm) and Phi-3 its fused attn_qkv and ffn_up (gate | up), split again at load; Gemma-2/3 keep
// their sandwich norms (post_attention_norm, ffn_norm, post_ffw_norm), soft-caps, window and local/global RoPE, with
// query_pre_attn_scalar folded into the q weights (llama.cpp fixes the query scale). The logits must
// be the PyTorch fixture's (f32 files), or the reference kernels' on the same Q8_0 blocks.
// (llama.cpp on the GPT-2 files: test/llamacpp.test.ts.)
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportGguf } from "../src/convert/export-gguf.js";
import { readGguf } from "../src/formats/gguf.js";
import { assertClose } from "./attention-helpers.js";
import { MODELS_DIR, expected, load } from "./models-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "mqa-gguf-families-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const ATOL = 2e-4;
const RTOL = 1e-4;

for (const name of ["mistral-gqa-window", "gpt2-mha", "qwen3-gqa-qknorm", "phi3-gqa-fused", "gemma2-gqa-softcap", "gemma3-mqa-localrope", "falcon-mqa-parallel", "falcon-gqa-newdecoder"]) {
  test(`${name}: export-gguf f32 then our GGUF reader reproduces the PyTorch logits`, async () => {
    const { exp, logits } = expected(name);
    const gguf = join(dir, `${name}.gguf`);
    exportGguf(join(MODELS_DIR, name), gguf, "f32");
    const meta = (await readGguf(gguf)).metadata;
    if (name.startsWith("mistral")) {
      assert.equal(meta["general.architecture"], "llama");
      assert.equal(meta["llama.attention.sliding_window"], 5);
    } else if (name.startsWith("qwen3")) {
      assert.equal(meta["general.architecture"], "qwen3");
      assert.equal(meta["qwen3.attention.key_length"], 12, "head dim 12, not hidden 40 / 6 heads");
      assert.ok((await readGguf(gguf)).tensors.has("blk.1.attn_k_norm.weight"));
    } else if (name.startsWith("phi3")) {
      assert.equal(meta["general.architecture"], "phi3");
      assert.equal(meta["phi3.attention.sliding_window"], 2047);
      const t = (await readGguf(gguf)).tensors;
      assert.deepEqual([t.get("blk.0.attn_qkv.weight")?.shape, t.get("blk.0.ffn_up.weight")?.shape], [[48 + 2 * 16, 48], [80, 48]], "fused q | k | v and gate | up");
    } else if (name.startsWith("gemma2")) {
      assert.deepEqual([meta["general.architecture"], meta["gemma2.attention.sliding_window"], meta["gemma2.attn_logit_softcapping"], meta["gemma2.final_logit_softcapping"]], ["gemma2", 5, 2, 3]);
      assert.ok((await readGguf(gguf)).tensors.has("blk.2.post_ffw_norm.weight"), "the four sandwich norms are written");
    } else if (name.startsWith("gemma3")) {
      assert.deepEqual([meta["general.architecture"], meta["gemma3.attention.sliding_window"], meta["gemma3.rope.freq_base"], meta["gemma3.rope.scaling.type"], meta["gemma3.rope.scaling.factor"]], ["gemma3", 4, 1e6, "linear", 4]);
      assert.ok(!(await readGguf(gguf)).tensors.has("rope_freqs.weight"), "llama.cpp's gemma3 reads linear scaling from keys, not rope_freqs");
    } else if (name.startsWith("falcon")) {
      assert.deepEqual([meta["general.architecture"], meta["falcon.attention.head_count_kv"]], ["falcon", name.includes("mqa") ? 1 : 2]);
      const t = (await readGguf(gguf)).tensors;
      assert.equal(t.has("blk.0.attn_norm_2.weight"), name.includes("newdecoder"), "ln_attn is attn_norm_2 only with the new decoder's two norms");
    } else assert.equal(meta["general.architecture"], "gpt2");
    const { model, spec } = await load(gguf);
    if (name.startsWith("mistral")) assert.ok(spec.layers.every((l) => l.window === 5), "the window survives the round trip");
    if (name.startsWith("phi3")) assert.deepEqual([spec.family, spec.unappliedWindow, spec.layers[0].window], ["phi3", 2047, null], "Phi-3's window stays unapplied");
    if (name.startsWith("qwen3")) assert.deepEqual([spec.family, spec.qkNorm, spec.headDim], ["qwen3", true, 12]);
    // Gemma: llama.cpp's fixed query scale (1/sqrt(head_dim)) is what the GGUF spec says; the exporter folded the
    // fixture's query_pre_attn_scalar into the q weights, so the logits below still match PyTorch.
    if (name.startsWith("falcon")) assert.deepEqual([spec.family, spec.parallelResidual, spec.normsPerLayer], ["falcon", true, name.includes("newdecoder") ? 2 : 1]);
    if (name.startsWith("gemma2")) assert.deepEqual([spec.family, spec.queryPreAttnScalar, spec.layers.map((l) => l.window)], ["gemma2", 12, [5, null, 5]]);
    if (name.startsWith("gemma3")) assert.deepEqual([spec.family, spec.queryPreAttnScalar, spec.ropeLocalTheta, spec.qkNorm, spec.layers.map((l) => l.window)], ["gemma3_text", 16, 10000, true, [4, 4, 4, 4, 4, null]]);
    const cache = model.createCache({});
    const got = model.forward(cache, [cache.addSequence()], [exp.tokens], "all");
    assertClose(`${name} logits from the GGUF`, got, logits, ATOL, RTOL);
  });
}

test("gpt2-mha as Q8_0 GGUF: Conv1D weights come back transposed from dequantized blocks", async () => {
  const { exp, logits } = expected("gpt2-mha");
  const gguf = join(dir, "gpt2-q8.gguf");
  exportGguf(join(MODELS_DIR, "gpt2-mha"), gguf, "q8_0");
  const { model } = await load(gguf);
  // Hidden size 48: only mlp.c_proj ([48, 192] in GGUF) has rows of whole blocks and is Q8_0; the
  // other matrices fall back to f16 in the file.
  assert.equal((await readGguf(gguf)).tensors.get("blk.0.ffn_down.weight")?.type, 8, "ffn_down is Q8_0 in the file");
  assert.equal(model.weights.get("layers.0.proj")?.dtype, "f32", "the transposed Q8_0 weight is dequantized");
  const cache = model.createCache({});
  const got = model.forward(cache, [cache.addSequence()], [exp.tokens], "all");
  // Quantized weights: the logits move by the Q8_0 rounding (~0.4 % of each weight), not more.
  assertClose("gpt2-mha Q8_0 logits vs the f32 fixture", got, logits, 0.05, 0.02);
});
