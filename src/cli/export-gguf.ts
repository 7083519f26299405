// `mqa export-gguf <hf-dir> <out.gguf>`: write a llama, qwen2, qwen3, phi3, gemma, gemma2, gemma3_text, falcon or gpt_bigcode (MQA) HF folder as GGUF v3 that
// llama.cpp loads (Q/K rows permuted, tokenizer embedded). The conversion is in src/convert/export-gguf.ts.
import type { Command } from "commander";
import { exportGguf, GGUF_EXPORT_DTYPES, type ExportDtype } from "../convert/export-gguf.js";
import { dtypeFlag } from "./flags.js";

export function register(program: Command): void {
  program
    .command("export-gguf")
    .description("Convert an HF llama, qwen2, gemma or gpt_bigcode (multi_query) folder to a GGUF file llama.cpp can load")
    .argument("<hf-dir>", "HF model folder (config.json, safetensors, tokenizer.json)")
    .argument("<out>", "output .gguf path")
    .option("--dtype <type>", "matrix dtype: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k or q6_k (norms and biases stay f32; rows that are not whole blocks fall back as llama-quantize does: q4_k→q5_0, q5_k→q5_1, q6_k→q8_0, and to f16 when not whole 32-value blocks)", "f16")
    .option("--json", "print one JSON object")
    .action((dir: string, out: string, flags: { dtype: ExportDtype; json?: boolean }) => {
      flags.dtype = dtypeFlag("--dtype", flags.dtype, GGUF_EXPORT_DTYPES) as ExportDtype;
      const r = exportGguf(dir, out, flags.dtype);
      const summary = { input: dir, output: out, dtype: flags.dtype, tensors: r.tensors, dataBytes: r.bytes, architecture: r.spec.family, heads: r.spec.numHeads, kvHeads: r.spec.numKvHeads };
      if (flags.json) console.log(JSON.stringify(summary));
      else console.log(`wrote ${out}: ${r.tensors} tensors, ${(r.bytes / 1048576).toFixed(1)} MiB of ${flags.dtype} data (${r.spec.family}, ${r.spec.numHeads} heads, ${r.spec.numKvHeads} KV heads)`);
    });
}
