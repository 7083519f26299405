// `mqa attention [model]`: the attention probabilities of a prompt, as JSON or a grid of heatmaps.
// Parses flags and prints; the work is in src/generate/attention-maps.ts.
import { existsSync } from "node:fs";
import { extname, join } from "node:path";
import type { Command } from "commander";
import { UserError } from "../errors.js";
import { KERNEL_BACKENDS } from "../kernels/index.js";
import type { KvDtype } from "../kernels/types.js";
import { KV_DTYPES } from "../kvcache/cache.js";
import { attentionMapChart, attentionMaps, type AttentionMaps } from "../generate/attention-maps.js";
import { openRuntime } from "../generate/runtime.js";
import { renderChartFile } from "../planner/render.js";
import { defaultModelDir } from "../package-root.js";
import { choiceFlag, dtypeFlag, intFlag, withFlagNames } from "./flags.js";

interface AttentionFlags {
  prompt?: string;
  promptTokens?: string;
  layers?: string;
  heads?: string;
  out?: string;
  kvDtype: string;
  backend: string;
  json?: boolean;
}

/**
 * A list of non-negative integers and ranges: "0,3" = [0, 3], "0-3" = [0, 1, 2, 3], "0-1,5" = [0, 1, 5].
 * A range must not run backwards: "9-3" is refused.
 */
export function indexListFlag(flag: string, value: string): number[] {
  const out: number[] = [];
  for (const part of value.split(",")) {
    const m = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(part);
    if (!m) {
      out.push(intFlag(flag, part, { min: 0 }));
      continue;
    }
    const [a, b] = [Number(m[1]), Number(m[2])];
    if (a > b) throw new UserError(`${flag}: "${part}" is a backwards range; write low-high, e.g. ${b}-${a}`);
    for (let i = a; i <= b; i++) out.push(i);
  }
  return out;
}

export function register(program: Command): void {
  program
    .command("attention")
    .description("Attention probabilities of a prompt, per layer and head: a heatmap grid (--out) or JSON")
    .argument("[model]", "HF model folder or .gguf file (default: the small model shipped in models/default)")
    .option("--prompt <text>", "prompt text")
    .option("--prompt-tokens <ids>", "prompt as comma-separated token ids, e.g. 1,2,3")
    .option("--layers <list>", "layers, e.g. 0,3 or 0-3 (default: all)")
    .option("--heads <list>", "query heads, e.g. 0-7 or 0,2 (default: all)")
    .option("--out <file>", "write the heatmap grid to a .png or .svg file")
    .option("--kv-dtype <type>", `KV cache storage: ${KV_DTYPES.join(", ")}`, "f32")
    .option("--backend <name>", `kernels: ${KERNEL_BACKENDS.join(", ")}`, "auto")
    .option("--json", "print { tokens, layers: [{ layer, numKvHeads, heads: [{ head, kvHead, probs }] }] }")
    .action(async (modelArg: string | undefined, flags: AttentionFlags) => {
      const modelPath = modelArg ?? defaultModelDir();
      if (modelArg === undefined && !existsSync(join(modelPath, "config.json"))) throw new UserError(`attention: no model given and the default model ${modelPath} is missing; pass a model folder or .gguf file`);
      if (flags.prompt === undefined && flags.promptTokens === undefined) throw new UserError("attention: give --prompt <text> or --prompt-tokens <ids>");
      if (flags.prompt !== undefined && flags.promptTokens !== undefined) throw new UserError("attention: give either --prompt or --prompt-tokens, not both");
      if (flags.out !== undefined && ![".png", ".svg"].includes(extname(flags.out).toLowerCase())) throw new UserError(`--out ${flags.out}: expected a .png or .svg file name`);
      const kvDtype = dtypeFlag("--kv-dtype", flags.kvDtype, KV_DTYPES) as KvDtype;
      const backend = choiceFlag("--backend", flags.backend, KERNEL_BACKENDS);
      const layers = flags.layers !== undefined ? indexListFlag("--layers", flags.layers) : undefined;
      const heads = flags.heads !== undefined ? indexListFlag("--heads", flags.heads) : undefined;
      const promptTokens = flags.promptTokens?.split(",").map((s) => intFlag("--prompt-tokens", s, { min: 0 }));
      const rt = await openRuntime(modelPath, { backend, tokenizer: promptTokens ? "optional" : true });
      try {
        const tokens = promptTokens ?? rt.tokenizer!.encode(flags.prompt!);
        const tok = rt.tokenizer;
        const labels = tokens.map((id) => (tok ? tok.decode([id]) : String(id)));
        let maps: AttentionMaps;
        try {
          maps = attentionMaps(rt.model, tokens, { layers, heads, kvDtype });
        } catch (e) {
          throw withFlagNames(e, { tokens: flags.prompt !== undefined ? "--prompt" : "--prompt-tokens" });
        }
        if (flags.out !== undefined) {
          try {
            await renderChartFile(attentionMapChart(maps, labels, { title: `${modelArg ?? "models/default"}: attention weights (query row → key column)` }), flags.out);
          } catch (e) {
            throw withFlagNames(e, { chart: "--out" });
          }
        }
        if (flags.json) {
          const layersOut = maps.layers.map((l) => ({ layer: l.layer, numKvHeads: l.numKvHeads, window: l.window, heads: l.heads }));
          console.log(JSON.stringify({ model: modelPath, tokenIds: maps.tokens, tokens: labels, kernels: rt.kernels.name, layers: layersOut }));
        } else if (flags.out !== undefined) {
          console.error(`attention: wrote ${flags.out} (${maps.layers.length} layers, ${tokens.length} tokens, ${rt.kernels.name})`);
        } else printSummary(maps, labels);
      } finally {
        rt.close();
      }
    });
}

/** Without --json or --out: what the last token attends to most, per layer and head. */
function printSummary(maps: AttentionMaps, labels: string[]): void {
  const last = maps.tokens.length - 1;
  console.log(`last token ${JSON.stringify(labels[last])} attends most to (key: weight):`);
  for (const l of maps.layers) {
    for (const h of l.heads) {
      const top = h.probs[last].map((p, j) => [p, j]).sort((a, b) => b[0] - a[0]).slice(0, 3);
      console.log(`  layer ${l.layer} head ${h.head} (kv ${h.kvHead}): ${top.map(([p, j]) => `${JSON.stringify(labels[j])} ${p.toFixed(3)}`).join(", ")}`);
    }
  }
  console.log("(--json for every row, --out map.png for heatmaps)");
}
