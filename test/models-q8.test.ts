// Q8_0 GGUF files end to end: export-gguf --dtype q8_0 writes GGML's blocks, the loader keeps the
// matmul weights as Q8_0 in the arena (a quarter of f32's bytes: nothing is dequantized at load),
// and the WASM kernels reading them in place give the logits of the float64 reference kernels
// (which dequantize d·q exactly) on the same file, for prefill and for decode. The fixtures'
// rows are whole 32-value blocks. (llama.cpp on the same file: test/llamacpp.test.ts.)
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportGguf } from "../src/convert/export-gguf.js";
import { MODELS_DIR, expected } from "./models-helpers.js";
import { wasmMatchesReference } from "./quant-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "mqa-q8-"));
after(() => rmSync(dir, { recursive: true, force: true }));

// Same tolerance as the f32 fixtures on the WASM kernels (test/models.test.ts): only the order of
// f32 sums differs (block sums scaled once per block vs float64 over dequantized values).
const ATOL = 2e-4;
const RTOL = 1e-4;

for (const name of ["llama-gqa-f16", "llama-mha-f32"]) {
  test(`${name} as Q8_0 GGUF: weights stay Q8_0 and the WASM kernels match the float64 reference`, async () => {
    const { exp } = expected(name);
    const gguf = join(dir, `${name}.gguf`);
    exportGguf(join(MODELS_DIR, name), gguf, "q8_0");
    await wasmMatchesReference(gguf, { label: `${name} Q8_0`, dtype: "q8_0", kept: ["layers.0.q", "layers.0.down", "embed"], tokens: exp.tokens, atol: ATOL, rtol: RTOL });
  });
}
