// loadSpec: the one entry point for "--model X" (node only: it reads files). X may be a preset name,
// a config.json path, a folder holding config.json, or a .gguf file (metadata read with @huggingface/gguf).
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { OptionError, UserError } from "../errors.js";
import { errorLine } from "../formats/safetensors.js";
import { specFromGgufMetadata } from "./gguf.js";
import { specFromHfConfig } from "./hf.js";
import { presetSpec } from "./presets.js";
import type { ModelSpec } from "./types.js";

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
  let path = modelArg;
  if (statSync(path).isDirectory()) {
    const config = join(path, "config.json");
    if (existsSync(config)) path = config;
    else {
      const { readdirSync } = await import("node:fs");
      const gguf = readdirSync(path).filter((f) => f.endsWith(".gguf")).sort();
      if (gguf.length === 0) throw new UserError(`${modelArg}: folder has no config.json and no .gguf file`);
      path = join(path, gguf[0]);
    }
  }
  if (/\.gguf$/i.test(path)) return loadGgufSpec(path);
  return loadHfConfigSpec(path);
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
  checkGgufPrelude(path); // magic and version first: other versions parse as garbage counts
  const { gguf } = await import("@huggingface/gguf");
  let parsed;
  try {
    parsed = await gguf(resolve(path), { allowLocalFile: true });
  } catch (e) {
    throw new UserError(`${path}: cannot read GGUF metadata (${errorLine(e)})`);
  }
  checkGgufComplete(path, parsed);
  return specFromGgufMetadata(parsed.metadata as unknown as Record<string, unknown>, path, parsed.tensorInfos.map((t) => t.name));
}

/**
 * The 8 bytes every GGUF starts with: "GGUF" and a little-endian u32 version, 2 or 3 (the same layout; v1 had 32-bit
 * counts and is long obsolete). Checked before @huggingface/gguf, which reads other versions as garbage counts.
 */
export function checkGgufPrelude(path: string, bytes?: Uint8Array): void {
  // `bytes`: a file already in memory (the web page's picked file), read with plain typed arrays (no Buffer in a browser).
  let head: Uint8Array = new Uint8Array(8);
  let n: number;
  if (bytes) {
    head = bytes.subarray(0, 8);
    n = head.byteLength;
  } else {
    const fd = openSync(path, "r");
    try {
      n = readSync(fd, head, 0, 8, 0);
    } finally {
      closeSync(fd);
    }
  }
  if (n < 8) throw new UserError(`${path}: ${n} bytes is too short for a GGUF file (expected the "GGUF" magic and a version)`);
  const magic = String.fromCharCode(...head.subarray(0, 4));
  if (magic !== "GGUF") throw new UserError(`${path}: not a GGUF file (starts with ${JSON.stringify(magic)}; expected "GGUF")`);
  const view = new DataView(head.buffer, head.byteOffset, 8);
  const version = view.getUint32(4, true);
  if (version === 2 || version === 3) return;
  if (view.getUint32(4, false) === 2 || view.getUint32(4, false) === 3) throw new UserError(`${path}: big-endian GGUF is not supported; expected a little-endian file`);
  throw new UserError(`${path}: GGUF version ${version} is not supported; expected version 2 or 3`);
}

/**
 * @huggingface/gguf reads past the end of a truncated file as zeros (garbage keys, missing fields). A cut-off download
 * is reported as such: the metadata and tensor table must end inside the file, and every tensor's data must start in it.
 */
export function checkGgufComplete(path: string, parsed: { tensorInfoByteRange: [number, number]; tensorDataOffset: bigint | number; tensorInfos: { name: string; offset: bigint | number }[] }, size = statSync(path).size): void {
  const headerEnd = parsed.tensorInfoByteRange[1];
  if (headerEnd > size) throw new UserError(`${path}: truncated GGUF file (${size} bytes; its metadata alone needs ${headerEnd}); expected a complete download`);
  const dataStart = Number(parsed.tensorDataOffset);
  const last = parsed.tensorInfos.reduce((m, t) => (Number(t.offset) > Number(m.offset) ? t : m), parsed.tensorInfos[0]);
  const lastStart = last ? dataStart + Number(last.offset) : 0;
  if (last && lastStart >= size) {
    throw new UserError(`${path}: tensor "${last.name}" starts at byte ${lastStart} but the file has ${size} bytes; the file is truncated (expected a complete download) or its tensor table is corrupt`);
  }
}
