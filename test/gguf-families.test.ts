// export-gguf → our GGUF reader for the families whose GGUF form differs from their HF folder:
// Mistral is written as llama.cpp's llama architecture with its window in
// llama.attention.sliding_window (which our reader applies), and GPT-2's Conv1D weights are
// written [out, in] and handed back [in, out] (also from Q8_0 blocks, dequantized); Qwen3 keeps its q/k norms
// (attn_q_norm / attn_k_norm) and Phi-3 its fused attn_qkv and ffn_up (gate | up), split again at load. The logits must
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

for (const name of ["mistral-gqa-window", "gpt2-mha", "qwen3-gqa-qknorm", "phi3-gqa-fused"]) {
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
    } else assert.equal(meta["general.architecture"], "gpt2");
    const { model, spec } = await load(gguf);
    if (name.startsWith("mistral")) assert.ok(spec.layers.every((l) => l.window === 5), "the window survives the round trip");
    if (name.startsWith("phi3")) assert.deepEqual([spec.family, spec.unappliedWindow, spec.layers[0].window], ["phi3", 2047, null], "Phi-3's window stays unapplied");
    if (name.startsWith("qwen3")) assert.deepEqual([spec.family, spec.qkNorm, spec.headDim], ["qwen3", true, 12]);
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
