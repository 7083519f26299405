// Opening a model from files held in memory (browser-safe: no fs, no worker_threads): an HF folder's files
// or one .gguf file. The web page's
// engine worker (web/engine-worker.ts) uses it for the shipped default model (fetched) and for a folder
// the user picks from disk (File objects read into ArrayBuffers; nothing is uploaded). The steps are
// loadModel's and loadTokenizer's (src/models/index.ts, src/formats/tokenizer.ts) with the file
// reads replaced by map lookups: config.json → spec → family table → weights → DecoderModel.
//
//   const files = new Map([["config.json", bytes], ["model.safetensors", bytes], ["tokenizer.json", bytes]]);
//   const m = await openModelFromFiles(files, { arena, kernels });
//   generate(m.model, [m.tokenizer!.encode("In the beginning")], { maxTokens: 8, stopTokens: m.stopTokens });
import { UserError } from "../errors.js";
import type { Arena } from "../kernels/memory.js";
import type { Kernels } from "../kernels/types.js";
import { buildModel, checkSupported, type DecoderModel } from "../models/index.js";
import { bufferSafetensorsSource } from "../formats/buffer-source.js";
import { tokenizerFromGguf, tokenizerFromJson, type TextTokenizer } from "../formats/tokenizer.js";
import { ggufModelSource } from "../formats/gguf.js";
import { specFromHfConfig } from "../config/hf.js";
import type { ModelSpec } from "../config/types.js";

export interface FilesModel {
  model: DecoderModel;
  spec: ModelSpec;
  config: Record<string, unknown> | null; // config.json as parsed; null for a .gguf
  tokenizer: TextTokenizer | null; // null when the folder has no tokenizer.json
  stopTokens: number[]; // end-of-sequence ids (tokenizer's, else generation_config.json's / config.json's)
  unusedTensors: string[];
}

function json(files: ReadonlyMap<string, Uint8Array>, name: string, where: string): Record<string, unknown> | null {
  const bytes = files.get(name);
  if (!bytes) return null;
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(bytes).replace(/^\uFEFF/, ""));
  } catch (e) {
    throw new UserError(`${where}/${name}: not valid JSON (${(e as Error).message.split("\n")[0]})`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new UserError(`${where}/${name}: expected a JSON object`);
  return v as Record<string, unknown>;
}

/** eos_token_id / bos_token_id of generation_config.json, else config.json (as specialTokenIds reads them from disk). */
function specialIds(files: ReadonlyMap<string, Uint8Array>, where: string, vocabSize: number): { bos: number[]; eos: number[] } {
  const out = { bos: [] as number[], eos: [] as number[] };
  for (const f of ["config.json", "generation_config.json"]) {
    const j = json(files, f, where);
    if (!j) continue;
    for (const k of ["bos", "eos"] as const) {
      const v = j[`${k}_token_id`];
      if (v === undefined || v === null) continue;
      const ids = Array.isArray(v) ? v : [v];
      for (const id of ids) {
        if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new UserError(`${where}/${f}: ${k}_token_id ${JSON.stringify(v)} is not a token id in [0, ${vocabSize})`);
      }
      if (ids.length > 0) out[k] = ids as number[];
    }
  }
  return out;
}

/**
 * Builds the model of an HF folder held in memory: `files` maps file names (config.json,
 * model.safetensors or the shards and their index, tokenizer.json, tokenizer_config.json,
 * generation_config.json) to bytes. `where` names the folder in errors.
 */
export async function openModelFromFiles(files: ReadonlyMap<string, Uint8Array>, opts: { arena: Arena; kernels: Kernels; where?: string }): Promise<FilesModel> {
  const where = opts.where ?? "model folder";
  const ggufs = [...files.keys()].filter((f) => /\.gguf$/i.test(f));
  if (!files.has("config.json") && ggufs.length === 1) return openGgufBytes(ggufs[0], files.get(ggufs[0])!, opts);
  if (!files.has("config.json") && ggufs.length > 1) throw new UserError(`${where}: ${ggufs.length} .gguf files (${ggufs.slice(0, 3).join(", ")}); pick one`);
  const config = json(files, "config.json", where);
  if (!config) throw new UserError(`${where}: no config.json among the files (${[...files.keys()].slice(0, 6).join(", ")}); expected an HF model folder (config.json + safetensors)`);
  const spec = specFromHfConfig(config, `${where}/config.json`);
  checkSupported(spec, `${where}/config.json`);
  const { model, unused } = buildModel(spec, bufferSafetensorsSource(files, where), { arena: opts.arena, kernels: opts.kernels });
  const special = specialIds(files, where, spec.vocabSize);
  let tokenizer: TextTokenizer | null = null;
  const tj = json(files, "tokenizer.json", where);
  if (tj) tokenizer = await tokenizerFromJson(tj, json(files, "tokenizer_config.json", where) ?? {}, special.eos, `${where}/tokenizer.json`, special.bos[0] ?? null);
  const stopTokens = tokenizer?.eosIds ?? special.eos;
  const bad = stopTokens.find((id) => id >= spec.vocabSize);
  if (bad !== undefined) throw new UserError(`${where}: end-of-sequence token id ${bad} is outside the vocabulary [0, ${spec.vocabSize})`);
  return { model, spec, config, tokenizer, stopTokens, unusedTensors: unused };
}

/** A whole .gguf file in memory: spec, weights and the embedded tokenizer, as loadModel + tokenizerFromGguf read one from disk. */
async function openGgufBytes(name: string, bytes: Uint8Array, opts: { arena: Arena; kernels: Kernels }): Promise<FilesModel> {
  const { spec, source, file } = await ggufModelSource(name, bytes);
  const { model, unused } = buildModel(spec, source, { arena: opts.arena, kernels: opts.kernels });
  let tokenizer: TextTokenizer | null = null;
  try {
    tokenizer = await tokenizerFromGguf(file.metadata, name);
  } catch (e) {
    if (!(e instanceof UserError)) throw e; // no or an unsupported vocabulary: prompts as token ids
  }
  return { model, spec, config: null, tokenizer, stopTokens: tokenizer?.eosIds ?? [], unusedTensors: unused };
}
