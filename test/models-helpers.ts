// Shared helpers for the model-runtime tests (not a test file itself): the PyTorch fixtures of
// tools/fixtures/models (written by tools/fixtures/gen_models.py) and a model loader.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Arena } from "../src/kernels/memory.js";
import { referenceKernels } from "../src/kernels/reference.js";
import type { Kernels } from "../src/kernels/types.js";
import { loadModel, type LoadedModel } from "../src/models/index.js";

export const MODELS_DIR = join(import.meta.dirname, "..", "tools", "fixtures", "models");

export interface Expected {
  version: number;
  covers: string;
  dtype: string;
  prompt: number[];
  greedy: number[];
  tokens: number[];
  logits: { file: string; shape: [number, number]; dtype: "f32" };
  minGreedyMargin: number;
}

export function fixtureNames(): string[] {
  const m = JSON.parse(readFileSync(join(MODELS_DIR, "manifest.json"), "utf8")) as { version: number; models: { name: string }[] };
  if (m.version !== 1) throw new Error(`models manifest version ${m.version}; expected 1`);
  return m.models.map((x) => x.name);
}

export function expected(name: string): { exp: Expected; logits: Float32Array } {
  const dir = join(MODELS_DIR, name);
  const exp = JSON.parse(readFileSync(join(dir, "expected.json"), "utf8")) as Expected;
  const buf = readFileSync(join(dir, exp.logits.file));
  const logits = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  if (logits.length !== exp.logits.shape[0] * exp.logits.shape[1]) throw new Error(`${name}: logits.bin has ${logits.length} values; expected ${exp.logits.shape}`);
  return { exp, logits };
}

export async function load(path: string, kernels?: (a: Arena) => Kernels | Promise<Kernels>): Promise<LoadedModel & { arena: Arena }> {
  const arena = new Arena();
  const k = kernels ? await kernels(arena) : referenceKernels(arena);
  return { ...(await loadModel(path, { arena, kernels: k })), arena };
}
