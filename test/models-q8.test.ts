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
import { createKernels } from "../src/kernels/index.js";
import { assertClose } from "./attention-helpers.js";
import { MODELS_DIR, expected, load } from "./models-helpers.js";

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
    const ref = await load(gguf);
    const handles: { close(): void }[] = [];
    try {
      const wasm = await load(gguf, async (arena) => {
        const k = await createKernels({ arena, backend: "wasm", threads: 2 });
        handles.push(k);
        return k;
      });
      for (const key of ["layers.0.q", "layers.0.down", "embed"]) assert.equal(wasm.model.weights.get(key)?.dtype, "q8_0", `${key} is kept as Q8_0`);
      const rc = ref.model.createCache({});
      const want = ref.model.forward(rc, [rc.addSequence()], [exp.tokens], "all");
      const c = wasm.model.createCache({});
      const s = c.addSequence();
      const got = wasm.model.forward(c, [s], [exp.tokens], "all");
      assertClose(`${name} Q8_0 prefill logits, WASM vs reference`, got, want, ATOL, RTOL);
      // Decode (M = 1: the block-wise matvec) from a fresh cache, token by token.
      const V = exp.logits.shape[1];
      const d = wasm.model.createCache({});
      const ds = d.addSequence();
      for (let t = 0; t < 6; t++) {
        const last = wasm.model.forward(d, [ds], [[exp.tokens[t]]], "last");
        assertClose(`${name} Q8_0 decode logits at position ${t}`, last, want.subarray(t * V, (t + 1) * V), ATOL, RTOL);
      }
    } finally {
      for (const h of handles) h.close();
    }
  });
}
