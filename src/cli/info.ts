// `mqa info <model>`: architecture, parameter count, heads / KV heads / head dim, KV bytes per
// token and weight dtype of an HF folder or a .gguf file (headers only: no weights are loaded).
import type { Command } from "commander";
import { modelInfo } from "../models/info.js";

export function register(program: Command): void {
  program
    .command("info")
    .description("Architecture, parameters, attention shape, KV bytes per token and weight dtype of a model")
    .argument("<model>", "HF model folder or .gguf file")
    .option("--json", "print one JSON object")
    .action(async (modelPath: string, flags: { json?: boolean }) => {
      const info = await modelInfo(modelPath);
      if (flags.json) return console.log(JSON.stringify(info));
      const rows: [string, string][] = [
        ["model", info.model],
        ["architecture", `${info.architecture} (${info.attention.toUpperCase()})`],
        ["parameters", `${info.parameters.toLocaleString("en-US")} (${(info.parameters / 1e6).toFixed(2)} M)`],
        ["layers", String(info.layers)],
        ["hidden", String(info.hiddenSize)],
        ["heads / KV heads / head dim", `${info.heads} / ${info.kvHeads} / ${info.headDim}`],
        ["KV bytes per token", Object.entries(info.kvBytesPerToken).map(([d, b]) => `${b.toLocaleString("en-US")} (${d})`).join(", ")],
        ["context", String(info.context)],
        ["weight dtype", Object.entries(info.weightDtypes).map(([d, n]) => `${d} ${n.toLocaleString("en-US")} params`).join(", ")],
        ["weight bytes", info.weightBytes.toLocaleString("en-US")],
        ["tied embeddings", String(info.tiedEmbeddings)],
      ];
      const w = Math.max(...rows.map(([k]) => k.length));
      for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
    });
}
