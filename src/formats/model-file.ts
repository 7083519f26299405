// loadSpec: the one entry point for "--model X" (node only: it reads files). X may be a preset name,
// a config.json path, a folder holding config.json, or a .gguf file (metadata read with @huggingface/gguf).
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { errorLine, OptionError, UserError } from "../errors.js";
import { specFromGgufMetadata } from "../config/gguf.js";
import { specFromHfConfig } from "../config/hf.js";
import { presetSpec } from "../config/presets.js";
import type { ModelSpec } from "../config/types.js";
import { openGguf } from "./gguf.js";

export async function loadSpec(modelArg: string): Promise<ModelSpec> {
  if (!modelArg || !modelArg.trim()) throw new OptionError("model", "model is empty; expected a preset name, a config.json path, a model folder or a .gguf file");
  if (!existsSync(modelArg)) {
    // Paths (absolute, ./ or ../, or more than one slash) are files; "org/name" may be a preset's HF repository.
    if (/^(\/|\.{1,2}[\\/])/.test(modelArg) || (/[\\/]/.test(modelArg) && !/^[\w.-]+\/[\w.-]+$/.test(modelArg))) {
      throw new UserError(`${modelArg}: no such file or folder`);
    }
    if (/\.(json|gguf)$/i.test(modelArg)) throw new UserError(`${modelArg}: no such file`);
    return presetSpec(modelArg);
  }
  const found = resolveModelPath(modelArg);
  return found.kind === "gguf" ? loadGgufSpec(found.path) : loadHfConfigSpec(found.config);
}

/** What a model argument names on disk. */
export type ModelPath =
  | { kind: "hf"; dir: string; config: string } // a folder holding config.json (+ safetensors)
  | { kind: "gguf"; path: string } // a .gguf file, or a folder holding exactly one
  | { kind: "config"; config: string }; // a bare config.json (enough for the planner, not for the runtime)

/**
 * The one rule for folders, shared by the planner and the runtime: a folder with config.json is an HF model;
 * without it, a folder holding exactly one .gguf file means that file; several .gguf files are refused (which
 * one was meant is the user's call), and so is a folder with neither.
 */
export function resolveModelPath(arg: string): ModelPath {
  if (!existsSync(arg)) throw new UserError(`${arg}: no such file or folder`);
  if (!statSync(arg).isDirectory()) return /\.gguf$/i.test(arg) ? { kind: "gguf", path: arg } : { kind: "config", config: arg };
  const config = join(arg, "config.json");
  if (existsSync(config)) return { kind: "hf", dir: arg, config };
  const gguf = ggufFilesIn(arg);
  if (gguf.length === 1) return { kind: "gguf", path: join(arg, gguf[0]) };
  throw noConfig(arg);
}

function ggufFilesIn(dir: string): string[] {
  return readdirSync(dir).filter((f) => /\.gguf$/i.test(f)).sort();
}

/** The error for a folder that is neither an HF model nor holds exactly one .gguf (the files it holds are named). */
export function noConfig(dir: string): UserError {
  const gguf = ggufFilesIn(dir);
  const hint = gguf.length > 1 ? `; it holds ${gguf.length} .gguf files (${gguf.slice(0, 3).join(", ")}${gguf.length > 3 ? ", ..." : ""}): pass one .gguf file itself` : "; expected an HF model folder (config.json + safetensors) or a .gguf file";
  return new UserError(`${dir}: no config.json in this folder${hint}`);
}

/** Reads and parses a config.json; unreadable or malformed JSON is a UserError naming the file. */
export function loadHfConfigSpec(path: string): ModelSpec {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new UserError(`${path}: cannot read (${errorLine(e)})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text.replace(/^\uFEFF/, "")); // tolerate a UTF-8 byte-order mark
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${errorLine(e)})`);
  }
  return specFromHfConfig(json, path);
}

export async function loadGgufSpec(path: string): Promise<ModelSpec> {
  const parsed = await openGguf(path);
  return specFromGgufMetadata(parsed.metadata as unknown as Record<string, unknown>, path, parsed.tensorInfos.map((t) => t.name));
}
