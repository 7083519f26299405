// `mqa plan --engine vllm|llama.cpp`: what the engine should load for --model, and how the deploy command prints.
// The command itself comes from src/planner/deploy.ts.
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname } from "node:path";
import type { DeployCommand, DeployOptions } from "../planner/deploy.js";
import { findPreset } from "../config/presets.js";

/**
 * The engine's model argument for a --model value: a preset's HF repository, a config.json's folder, a model folder,
 * or a .gguf file (a folder holding only GGUF files counts as its first one, as loadSpec reads it).
 */
export function deployModelRef(modelArg: string): Pick<DeployOptions, "model" | "modelFormat"> {
  if (!existsSync(modelArg)) {
    const preset = findPreset(modelArg);
    return { model: preset ? preset.hf : modelArg, modelFormat: "hf" };
  }
  if (statSync(modelArg).isDirectory()) {
    if (existsSync(`${modelArg}/config.json`)) return { model: modelArg, modelFormat: "hf" };
    const gguf = readdirSync(modelArg).filter((f) => f.endsWith(".gguf")).sort();
    return gguf.length ? { model: `${modelArg.replace(/\/$/, "")}/${gguf[0]}`, modelFormat: "gguf" } : { model: modelArg, modelFormat: "hf" };
  }
  if (/\.gguf$/i.test(modelArg)) return { model: modelArg, modelFormat: "gguf" };
  return { model: dirname(modelArg), modelFormat: "hf" }; // a config.json: engines load its folder
}

/** The deploy section of `mqa plan`'s text output. */
export function formatDeploy(d: DeployCommand): string {
  const name = d.engine === "vllm" ? "vLLM" : "llama.cpp (llama-server)";
  const out = [`Deploy on ${name}:`, "", `  ${d.command}`, ""];
  const w = Math.max(...d.flags.map((f) => label(f).length));
  for (const f of d.flags) out.push(`  ${label(f).padEnd(w)}  ${f.meaning}`);
  out.push("", "  Sources:");
  for (const s of [...new Set(d.flags.map((f) => f.source))]) out.push(`    ${s}`);
  if (d.warnings.length) {
    out.push("", "  Not realised as planned:");
    for (const x of d.warnings) out.push(`    - ${x}`);
  }
  return out.join("\n");
}

const label = (f: { flag: string; value: string | null }) => (f.flag === "" ? f.value ?? "" : f.value === null ? f.flag : `${f.flag} ${f.value}`);
