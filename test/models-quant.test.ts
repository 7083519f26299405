// 4/5/6-bit GGUF files end to end: export-gguf --dtype q4_0 … q6_k writes GGML's blocks with our
// quantizer, the loader keeps the matmul weights quantized in the arena, and the WASM kernels reading
// them in place give the logits of the float64 reference kernels (exact dequantized values) on the
// same file, for prefill and for decode. A random-weight llama with 256/512-wide rows (quant-helpers.ts)
// puts every matrix in the asked-for type; the 64-wide fixture shows llama-quantize's fallbacks.
// (llama.cpp on the same files: test/llamacpp-quant.test.ts.)
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportGguf } from "../src/convert/export-gguf.js";
import { readGguf } from "../src/formats/gguf.js";
import { GGML_QUANTS, QUANT_LAYOUT } from "../src/dtypes/ggml_quants.js";
import { rowBytes } from "../src/dtypes/table.js";
import { weightBytes } from "../src/models/weights.js";
import { MODELS_DIR, expected, load } from "./models-helpers.js";
import { wasmMatchesReference, writeWideLlama } from "./quant-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "mqa-quant-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const wide = writeWideLlama(join(dir, "wide"));
const tokens = expected("llama-gqa-f16").exp.tokens.slice(0, 8);

// As test/models-q8.test.ts: only the order of f32 sums differs between the WASM kernels and the
// float64 reference (both multiply by the same dequantized values, bit for bit); this is the f32
// fixtures' tolerance on the WASM kernels (test/models.test.ts).
const ATOL = 2e-4;
const RTOL = 1e-4;

for (const type of GGML_QUANTS) {
  test(`${type} GGUF (random llama, rows of 256/512): weights stay ${type}, WASM kernels match the float64 reference`, async () => {
    const gguf = join(dir, `wide-${type}.gguf`);
    exportGguf(wide, gguf, type);
    const file = await readGguf(gguf);
    const q = file.tensors.get("blk.0.attn_q.weight")!;
    assert.equal(q.type, QUANT_LAYOUT[type].ggmlType, "attn_q is written in the asked-for ggml type");
    assert.equal(q.bytes, rowBytes(type, 256 * 256));
    assert.equal(file.tensors.get("blk.0.attn_norm.weight")!.type, 0, "norms stay F32");
    await wasmMatchesReference(gguf, {
      label: type, dtype: type, kept: ["layers.0.q", "layers.1.down", "embed", "lm_head"], tokens, atol: ATOL, rtol: RTOL,
      inspect: (wasm) => {
        // Nothing was dequantized at load: the matmul weights take the quantized bytes.
        const bytes = weightBytes(wasm.model.weights);
        assert.ok(bytes < 0.5 * 4 * (288 * 256 * 2 + 2 * (4 * 256 * 256 + 3 * 256 * 512)), `weights hold ${bytes} bytes`);
      },
    });
  });
}

test("export-gguf fallbacks on 64-wide rows follow llama-quantize: q4_k→q5_0, q5_k→q5_1, q6_k→q8_0; the model still loads", async () => {
  const want: Record<string, number> = { q4_k: 6, q5_k: 7, q6_k: 8, q4_0: 2 };
  for (const [type, code] of Object.entries(want)) {
    const gguf = join(dir, `gqa-${type}.gguf`);
    exportGguf(join(MODELS_DIR, "llama-gqa-f16"), gguf, type as "q4_k");
    const file = await readGguf(gguf);
    for (const name of ["blk.0.attn_q.weight", "blk.1.ffn_down.weight", "token_embd.weight"]) assert.equal(file.tensors.get(name)!.type, code, `${type}: ${name}`);
    const m = await load(gguf);
    const c = m.model.createCache({});
    const z = m.model.forward(c, [c.addSequence()], [tokens], "last");
    assert.ok(z.every(Number.isFinite), `${type}: finite logits`);
  }
  // head dim 10 → q_proj rows of 48 values: not whole 32-blocks, so f16 (type 1), as llama-quantize does.
  const gguf = join(dir, "mqa-q4_0.gguf");
  exportGguf(join(MODELS_DIR, "llama-mqa-bf16"), gguf, "q4_0");
  assert.equal((await readGguf(gguf)).tensors.get("blk.0.attn_q.weight")!.type, 1);
});
