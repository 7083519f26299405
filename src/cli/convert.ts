// `mqa convert <hf-dir> <out-dir> --kv-heads K --method ...`: MHA → GQA/MQA (or GQA → fewer KV
// heads) checkpoint conversion. Parses flags and prints; the work is in src/convert/.
import type { Command } from "commander";
import { convertCheckpoint, OUT_DTYPES, type OutDtype } from "../convert/convert.js";
import { METHODS, type Method } from "../convert/pool.js";
import { choiceFlag, dtypeFlag, intFlag } from "./flags.js";

interface ConvertFlags {
  kvHeads: string; method: string; dtype?: string; calibration?: string; calibrationTokens: string; seed: string; threads: string; json?: boolean;
}

export function register(program: Command): void {
  program
    .command("convert")
    .description("Convert an HF checkpoint to fewer KV heads (MHA → GQA/MQA) by pooling each group of adjacent K/V heads; writes an HF folder")
    .argument("<hf-dir>", "source HF folder (llama, mistral, qwen2, gemma, gpt2, gpt_bigcode)")
    .argument("<out-dir>", "output folder (must not exist, or be empty; never overwritten)")
    .requiredOption("--kv-heads <K>", "target KV heads: a divisor of the source's KV heads (1 = MQA)")
    .option("--method <name>", `mean (Ainslie et al.), first, random, or pca (calibrated, RoPE-commuting; see docs/convert.md): ${METHODS.join(", ")}`, "mean")
    .option("--dtype <type>", `output dtype of every tensor: ${OUT_DTYPES.join(", ")} (default: keep the source's)`)
    .option("--calibration <file>", "text file the calibrated methods (pca) run the model over")
    .option("--calibration-tokens <n>", "calibration tokens used at most", "32768")
    .option("--seed <n>", "seed of the random method", "1")
    .option("--threads <n>", "kernel threads for calibration", "2")
    .option("--json", "print one JSON object")
    .action(async (src: string, out: string, f: ConvertFlags) => {
      const summary = await convertCheckpoint(src, out, {
        kvHeads: intFlag("--kv-heads", f.kvHeads),
        method: choiceFlag("--method", f.method, METHODS) as Method,
        dtype: f.dtype ? (dtypeFlag("--dtype", f.dtype, OUT_DTYPES) as OutDtype) : null,
        calibration: f.calibration ?? null,
        calibrationTokens: intFlag("--calibration-tokens", f.calibrationTokens, { k: true }),
        seed: intFlag("--seed", f.seed, { min: 0 }),
        threads: intFlag("--threads", f.threads),
      });
      if (f.json) {
        console.log(JSON.stringify(summary));
        return;
      }
      const kind = (k: number) => (k === 1 ? "MQA" : k === summary.numHeads ? "MHA" : `GQA-${k}`);
      console.log(`wrote ${summary.out}: ${summary.family} ${kind(summary.sourceKvHeads)} → ${summary.outFamily} ${kind(summary.kvHeads)} by ${summary.method}${summary.calibrationTokens ? ` (${summary.calibrationTokens} calibration tokens)` : ""} in ${summary.seconds.toFixed(1)} s`);
      console.log(`  parameters ${summary.parameters.source} → ${summary.parameters.converted}; KV cache ${summary.kvBytesPerTokenF16.source} → ${summary.kvBytesPerTokenF16.converted} bytes per token (f16)`);
    });
}
