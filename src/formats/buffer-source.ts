// TensorSource over safetensors bytes already in memory (browser-safe: no fs). The web page reads a
// model folder the user picked (File objects) or fetched (the shipped default) into ArrayBuffers and
// hands them here; the header checks are the file reader's own (safetensors.ts parseEntries).
//
//   const src = bufferSafetensorsSource(new Map([["model.safetensors", bytes]]));
//   src.info("lm_head.weight") // { dtype: "F16", shape: [4096, 128] }
import { errorLine, UserError } from "../errors.js";
import { parseEntries, type TensorEntry } from "./safetensors.js";
import type { TensorSource } from "./source.js";

/** Headers larger than this are rejected (as safetensors.ts does for files). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** The tensors of one safetensors file held in `bytes`; offsets are into `bytes`. */
export function safetensorsEntries(name: string, bytes: Uint8Array): Map<string, TensorEntry> {
  if (bytes.byteLength < 8) throw new UserError(`${name}: ${bytes.byteLength} bytes is too short for a safetensors file (needs an 8-byte header length)`);
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(Math.min(bytes.byteLength - 8, MAX_HEADER_BYTES))) {
    throw new UserError(`${name}: header length ${headerLen} bytes exceeds the file (${bytes.byteLength} bytes) or the ${MAX_HEADER_BYTES / 1048576} MiB limit; the file is truncated or not safetensors`);
  }
  const n = Number(headerLen);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new UserError(`${name}: safetensors header is not valid JSON (${errorLine(e)})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new UserError(`${name}: safetensors header must be a JSON object`);
  return parseEntries(name, json as Record<string, unknown>, 8 + n, bytes.byteLength).tensors;
}

/**
 * A TensorSource over the safetensors files of a model folder held in memory: `files` maps file
 * names (as in the folder) to their bytes. model.safetensors, or model.safetensors.index.json and
 * its shards, as openSafetensors reads them from disk.
 */
export function bufferSafetensorsSource(files: ReadonlyMap<string, Uint8Array>, where = "model folder"): TensorSource {
  const tensors = new Map<string, TensorEntry>();
  const index = files.get("model.safetensors.index.json");
  if (index) {
    let map: unknown;
    try {
      map = (JSON.parse(new TextDecoder().decode(index)) as { weight_map?: unknown }).weight_map;
    } catch (e) {
      throw new UserError(`${where}/model.safetensors.index.json: cannot read the shard index (${errorLine(e)})`);
    }
    if (!map || typeof map !== "object" || Array.isArray(map)) throw new UserError(`${where}/model.safetensors.index.json: "weight_map" is missing; expected an object { tensor name: shard file }`);
    const shards = new Map<string, Map<string, TensorEntry>>();
    for (const [name, shard] of Object.entries(map as Record<string, unknown>)) {
      const bytes = typeof shard === "string" ? files.get(shard) : undefined;
      if (!bytes) throw new UserError(`${where}: weight_map puts "${name}" in ${JSON.stringify(shard)}, which is not among the picked files`);
      if (!shards.has(shard as string)) shards.set(shard as string, safetensorsEntries(shard as string, bytes));
      const t = shards.get(shard as string)!.get(name);
      if (!t) throw new UserError(`${where}: weight_map puts "${name}" in ${shard}, but that file has no such tensor`);
      tensors.set(name, t);
    }
  } else {
    const single = files.get("model.safetensors");
    if (!single) throw new UserError(`${where}: no model.safetensors or model.safetensors.index.json among the files (${[...files.keys()].slice(0, 6).join(", ")})`);
    for (const [name, t] of safetensorsEntries("model.safetensors", single)) tensors.set(name, t);
  }
  return {
    path: where,
    names: () => [...tensors.keys()],
    info: (name) => {
      const t = tensors.get(name);
      return t ? { dtype: t.dtype, shape: t.shape } : undefined;
    },
    read: (name, dst) => {
      const t = tensors.get(name);
      if (!t) throw new UserError(`${where}: no tensor ${name}`);
      if (dst.byteLength !== t.bytes) throw new RangeError(`bufferSafetensorsSource.read(${name}): destination has ${dst.byteLength} bytes, tensor has ${t.bytes}`);
      dst.set(files.get(t.file)!.subarray(t.offset, t.offset + t.bytes));
    },
  };
}
