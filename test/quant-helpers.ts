// Shared helper for the quantized-GGUF tests (not a test file itself): a random-weight llama HF folder
// whose matrices have rows of 256 and 512 values, so every GGML type, k-quants included, applies to
// every matrix (the PyTorch fixtures are 32–64 wide: k-quants would fall back there). The tokenizer
// is llama-gqa-f16's (vocab 288), so llama.cpp can load the export.
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeSafetensors, type NamedTensor } from "../src/formats/safetensors.js";
import { seededRandom } from "../src/random.js";
import { createKernels } from "../src/kernels/index.js";
import type { LoadedModel } from "../src/models/index.js";
import { assertClose } from "./attention-helpers.js";
import { MODELS_DIR, load } from "./models-helpers.js";
import assert from "node:assert/strict";

/** Shapes: hidden 256, 4 heads of 64, 2 KV heads (GQA), MLP 512, 2 layers, vocab 288, untied head. */
export const WIDE = { hidden: 256, heads: 4, kvHeads: 2, mlp: 512, layers: 2, vocab: 288 } as const;

/** Writes the folder into dir (created) and returns it. Weights ~ U(±√(3/fan_in)), so activations stay O(1). */
export function writeWideLlama(dir: string, seed = 15): string {
  mkdirSync(dir, { recursive: true });
  const { hidden: E, heads: H, kvHeads: K, mlp: F, layers: L, vocab: V } = WIDE;
  const D = E / H;
  const rnd = seededRandom(seed);
  const mat = (name: string, rows: number, cols: number, scale = Math.sqrt(3 / cols)): NamedTensor => ({ name, shape: [rows, cols], data: Float32Array.from({ length: rows * cols }, () => (2 * rnd() - 1) * scale) });
  const norm = (name: string): NamedTensor => ({ name, shape: [E], data: Float32Array.from({ length: E }, () => 1 + 0.2 * (rnd() - 0.5)) });
  const tensors: NamedTensor[] = [mat("model.embed_tokens.weight", V, E, 1)];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}`;
    tensors.push(norm(`${p}.input_layernorm.weight`), mat(`${p}.self_attn.q_proj.weight`, H * D, E), mat(`${p}.self_attn.k_proj.weight`, K * D, E), mat(`${p}.self_attn.v_proj.weight`, K * D, E));
    tensors.push(mat(`${p}.self_attn.o_proj.weight`, E, H * D), norm(`${p}.post_attention_layernorm.weight`));
    tensors.push(mat(`${p}.mlp.gate_proj.weight`, F, E), mat(`${p}.mlp.up_proj.weight`, F, E), mat(`${p}.mlp.down_proj.weight`, E, F));
  }
  tensors.push(norm("model.norm.weight"), mat("lm_head.weight", V, E));
  writeSafetensors(join(dir, "model.safetensors"), tensors);
  const config = {
    architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: E, num_attention_heads: H, num_key_value_heads: K, num_hidden_layers: L,
    intermediate_size: F, vocab_size: V, max_position_embeddings: 64, rms_norm_eps: 1e-5, rope_theta: 10000.0, tie_word_embeddings: false,
    bos_token_id: 286, eos_token_id: 287, hidden_act: "silu", torch_dtype: "float32",
  };
  writeFileSync(join(dir, "config.json"), JSON.stringify(config, null, 1));
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(MODELS_DIR, "llama-gqa-f16", f), join(dir, f));
  return dir;
}

/**
 * The check every quantized-GGUF test makes: the file loads twice, on the float64 reference kernels and on 2-thread
 * WASM; the `kept` weights stay in `dtype` (read in place, not dequantized); prefill logits of `tokens` and decode
 * logits token by token from a fresh cache agree within atol + rtol·|want|. `inspect` sees the WASM model first.
 */
export async function wasmMatchesReference(gguf: string, o: { label: string; dtype: string; kept: string[]; tokens: number[]; atol: number; rtol: number; inspect?: (m: LoadedModel) => void }): Promise<void> {
  const ref = await load(gguf);
  const handles: { close(): void }[] = [];
  try {
    const wasm = await load(gguf, async (arena) => {
      const k = await createKernels({ arena, backend: "wasm", threads: 2 });
      handles.push(k);
      return k;
    });
    for (const key of o.kept) assert.equal(wasm.model.weights.get(key)?.dtype, o.dtype, `${key} is kept as ${o.dtype}`);
    o.inspect?.(wasm);
    const rc = ref.model.createCache({});
    const want = ref.model.forward(rc, [rc.addSequence()], [o.tokens], "all");
    const c = wasm.model.createCache({});
    const got = wasm.model.forward(c, [c.addSequence()], [o.tokens], "all");
    assertClose(`${o.label} prefill logits, WASM vs reference`, got, want, o.atol, o.rtol);
    // Decode (M = 1: the block-wise matvec) from a fresh cache, token by token.
    const V = wasm.spec.vocabSize;
    const d = wasm.model.createCache({});
    const ds = d.addSequence();
    for (let t = 0; t < o.tokens.length; t++) {
      const last = wasm.model.forward(d, [ds], [[o.tokens[t]]], "last");
      assertClose(`${o.label} decode logits at position ${t}`, last, want.subarray(t * V, (t + 1) * V), o.atol, o.rtol);
    }
  } finally {
    for (const h of handles) h.close();
  }
}
