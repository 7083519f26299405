// `mqa eval [model] --text <file> | --split validation`: perplexity, bits per byte and, with
// --reference, KL divergence and top-1 agreement. Parses flags and prints; the work is in src/eval/.
import type { Command } from "commander";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../errors.js";
import { runEval, DEFAULT_EVAL_CONTEXT, type EvalReport } from "../eval/run.js";
import { KERNEL_BACKENDS } from "../kernels/index.js";
import { KV_DTYPES } from "../kvcache/cache.js";
import type { KvDtype } from "../kernels/types.js";
import { defaultModelDir } from "../package-root.js";
import { choiceFlag, dtypeFlag, intFlag } from "./flags.js";
import { progressBar } from "./progress.js";

interface EvalFlags {
  text?: string; split?: string; data: string; context?: string; stride?: string; kvDtype: string; maxTokens?: string;
  reference?: string; referenceKvDtype: string; backend: string; threads?: string; progress: boolean; json?: boolean;
}

export function register(program: Command): void {
  program
    .command("eval")
    .description("Perplexity and bits per byte of a model on a text (sliding windows), and its KL divergence from a reference model")
    .argument("[model]", "HF model folder or .gguf file (default: models/default)")
    .option("--text <file>", "UTF-8 text file to score (every token of it)")
    .option("--split <name>", "score a split of the prepared corpus instead: validation (the documents the trainer holds out)")
    .option("--data <dir>", "prepared data folder for --split", "data")
    .option("--context <n>", `window length in tokens (default: the model's maximum, at most ${DEFAULT_EVAL_CONTEXT})`)
    .option("--stride <n>", "tokens between window starts; each token is scored once, with at least context − stride tokens before it (default: context / 2; = context for back-to-back windows, as the trainer evaluates)")
    .option("--kv-dtype <type>", `KV cache storage of the model: ${KV_DTYPES.join(", ")}`, "f32")
    .option("--max-tokens <n>", "score only the first n tokens")
    .option("--reference <model>", "also report KL(reference ‖ model) mean and p99 and top-1 agreement (the same path compares KV storages of one model)")
    .option("--reference-kv-dtype <type>", `KV cache storage of the reference: ${KV_DTYPES.join(", ")}`, "f32")
    .option("--backend <name>", `kernels: ${KERNEL_BACKENDS.join(", ")}`, "auto")
    .option("--threads <n>", "kernel threads (default: all cores)")
    .option("--no-progress", "no progress bar")
    .option("--json", "print one JSON object (tokens, nll, perplexity, bitsPerByte; with --reference klMean, klP99, top1Agreement)")
    .action(async (modelArg: string | undefined, f: EvalFlags) => {
      const model = modelArg ?? defaultModelDir();
      if (modelArg === undefined && !existsSync(join(model, "config.json"))) throw new UserError(`eval: no model given and the default model ${model} is missing; pass a model folder or .gguf file`);
      if (f.split !== undefined) choiceFlag("--split", f.split, ["validation"] as const);
      const bar = await progressBar("eval", "tok", !f.json && f.progress);
      let r: EvalReport;
      try {
        r = await runEval({
          model, text: f.text ?? null, split: f.split ? "validation" : null, data: f.data,
          context: f.context !== undefined ? intFlag("--context", f.context, { k: true }) : null,
          stride: f.stride !== undefined ? intFlag("--stride", f.stride, { k: true }) : null,
          kvDtype: dtypeFlag("--kv-dtype", f.kvDtype, KV_DTYPES) as KvDtype,
          maxTokens: f.maxTokens !== undefined ? intFlag("--max-tokens", f.maxTokens, { k: true }) : null,
          reference: f.reference ?? null,
          referenceKvDtype: dtypeFlag("--reference-kv-dtype", f.referenceKvDtype, KV_DTYPES) as KvDtype,
          backend: choiceFlag("--backend", f.backend, KERNEL_BACKENDS),
          threads: f.threads !== undefined ? intFlag("--threads", f.threads, { max: 256 }) : undefined,
          onProgress: (done, total) => bar.update(done, total),
        });
      } finally {
        bar.stop();
      }
      if (f.json) {
        console.log(JSON.stringify(r));
        return;
      }
      console.log(`${r.model} on ${r.source}: ${r.tokens} tokens (${r.bytes} bytes) in ${r.windows} windows of ${r.context} (stride ${r.stride}), KV ${r.kvDtype}`);
      console.log(`  nll ${r.nll.toFixed(4)} ± ${r.nllStdErr.toFixed(4)} nats/token, perplexity ${r.perplexity.toFixed(3)}, ${r.bitsPerByte.toFixed(4)} bits/byte`);
      if (r.klMean !== undefined) {
        console.log(`  vs ${r.reference} (KV ${r.referenceKvDtype}): KL mean ${r.klMean.toExponential(3)}, p99 ${r.klP99!.toExponential(3)}, max ${r.klMax!.toExponential(3)} nats; top-1 agreement ${(100 * r.top1Agreement!).toFixed(2)} %; reference ${r.referenceBitsPerByte!.toFixed(4)} bits/byte`);
      }
      console.log(`  ${r.tokensPerSecond.toFixed(0)} tokens/s (${r.kernels}, ${r.threads} threads)`);
    });
}
