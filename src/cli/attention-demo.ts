// `mqa attention-demo`: a quick MHA vs GQA vs MQA smoke run on random data (cache bytes per token,
// decode time per step, correctness checks). Parses flags and prints; the work is in
// src/attention/compare.ts.
import type { Command } from "commander";
import { UserError } from "../errors.js";
import { compareAttentionVariants, type CompareResult } from "../attention/compare.js";
import { KERNEL_BACKENDS } from "../kernels/index.js";
import type { KvDtype } from "../kernels/types.js";
import { KV_DTYPES } from "../kvcache/cache.js";
import { choiceFlag, dtypeFlag, intFlag } from "./flags.js";

interface DemoFlags {
  heads: string;
  headDim: string;
  kvHeads: string;
  context: string;
  steps: string;
  dtype: string;
  layers: string;
  backend: string;
  threads?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command("attention-demo")
    .description("Quick MHA vs GQA vs MQA comparison on random data: KV bytes per token, decode time, correctness checks")
    .option("--heads <n>", "query heads H", "32")
    .option("--head-dim <n>", "head dim D", "128")
    .option("--kv-heads <list>", "comma list of KV head counts to compare (each must divide H)", "32,8,1")
    .option("--context <tokens>", "cached tokens before the timed decode steps", "1024")
    .option("--steps <n>", "timed decode steps", "8")
    .option("--dtype <type>", `KV cache storage: ${KV_DTYPES.join(", ")}`, "f16")
    .option("--layers <n>", "layers of the imagined model for bytes per token (one layer is run)", "32")
    .option("--backend <name>", "kernels: auto (WASM SIMD when available), wasm, reference", "auto")
    .option("--threads <n>", "WASM worker threads (default: all cores)")
    .option("--json", "print one JSON object")
    .action(async (flags: DemoFlags) => {
      const dtype = dtypeFlag("--dtype", flags.dtype, KV_DTYPES) as KvDtype;
      const backend = choiceFlag("--backend", flags.backend, KERNEL_BACKENDS);
      const H = intFlag("--heads", flags.heads);
      const kvHeads = flags.kvHeads.split(",").map((s) => intFlag("--kv-heads", s));
      for (const K of kvHeads) if (H % K !== 0) throw new UserError(`attention-demo: --kv-heads ${K} does not divide --heads ${H}`);
      let result: CompareResult;
      try {
        result = await compareAttentionVariants({
          numHeads: H,
          headDim: intFlag("--head-dim", flags.headDim),
          kvHeads,
          context: intFlag("--context", flags.context),
          steps: intFlag("--steps", flags.steps),
          dtype,
          layers: intFlag("--layers", flags.layers),
          backend,
          threads: flags.threads === undefined ? undefined : intFlag("--threads", flags.threads),
        });
      } catch (e) {
        if (e instanceof RangeError) throw new UserError(e.message);
        throw e;
      }
      if (flags.json) console.log(JSON.stringify(result, null, 2));
      else print(result);
    });
}

function print(r: CompareResult): void {
  console.log(`H=${r.numHeads} D=${r.headDim}, ${r.dtype} cache, context ${r.context} + ${r.steps} decode steps, backend ${r.backend} ×${r.threads} threads`);
  const mha = r.variants.find((v) => v.kind === "mha") ?? r.variants[0];
  const rows = [["variant", "K", "G", `KV bytes/token (${r.layers} layers)`, `vs ${mha.kind.toUpperCase()}`, "decode ms/step (1 layer)", "speed-up", "max|Δ| vs reference", "max|Δ| vs repeated-KV MHA"]];
  for (const v of r.variants) {
    rows.push([
      v.kind.toUpperCase(), String(v.numKvHeads), String(v.groupSize), v.cacheBytesPerToken.toLocaleString("en-US"),
      `${(mha.cacheBytesPerToken / v.cacheBytesPerToken).toFixed(1)}× smaller`, v.decodeMsPerStep.toFixed(3),
      `${(mha.decodeMsPerStep / v.decodeMsPerStep).toFixed(2)}×`,
      v.maxAbsDiffVsReference === null ? "(is reference)" : v.maxAbsDiffVsReference.toExponential(2), v.maxAbsDiffVsRepeatedMha.toExponential(2),
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  for (const row of rows) console.log(row.map((cell, c) => cell.padEnd(widths[c])).join("  "));
  console.log("Timings are wall-clock on a shared machine (noisy); the Δ columns are correctness checks (expect ~1e-6 or less).");
}
