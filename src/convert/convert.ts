// mqa convert as a library: an HF folder with S KV heads → an HF folder with K KV heads (K | S),
// pooled by one of the methods of pool.ts. Reads the source through the spec and safetensors
// readers, writes config.json (num_key_value_heads = K, other fields kept), model.safetensors and
// the tokenizer files into a temporary sibling folder, and renames it into place at the end:
// an existing non-empty output folder is refused and nothing is written on any error.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { OptionError, UserError } from "../errors.js";
import { writeSafetensors } from "../formats/safetensors.js";
import { readTensorF32, safetensorsSource } from "../formats/source.js";
import { checkSupported } from "../models/index.js";
import { Rng } from "../random.js";
import { loadHfConfigSpec } from "../formats/model-file.js";
import { calibrate } from "./calibrate.js";
import { layerShape, layoutOf, type Tensors } from "./families.js";
import { CALIBRATED, METHODS, poolLayer, type LayerStats, type Method } from "./pool.js";

export const OUT_DTYPES = ["f32", "f16", "bf16"] as const;
export type OutDtype = (typeof OUT_DTYPES)[number];

export interface ConvertOptions {
  kvHeads: number; // K
  method: Method;
  dtype?: OutDtype | null; // null: keep each tensor's source dtype
  calibration?: string | null; // text file for calibrated methods
  calibrationTokens?: number; // default 32768
  seed?: number; // random method, default 1
  threads?: number;
}

export interface ConvertSummary {
  source: string;
  out: string;
  family: string;
  outFamily: string;
  method: Method;
  sourceKvHeads: number;
  kvHeads: number;
  numHeads: number;
  layers: number;
  calibrationTokens: number | null;
  parameters: { source: number; converted: number };
  kvBytesPerTokenF16: { source: number; converted: number };
  seconds: number;
}

// Files of an HF folder that describe the tokenizer or generation, copied unchanged.
const COPY = /^(tokenizer.*|special_tokens_map\.json|vocab\.(json|txt)|merges\.txt|added_tokens\.json|generation_config\.json|chat_template.*|.*\.tiktoken|spiece\.model)$/;

export async function convertCheckpoint(src: string, out: string, o: ConvertOptions): Promise<ConvertSummary> {
  const t0 = performance.now();
  if (!(METHODS as readonly string[]).includes(o.method)) throw new OptionError("method", `method ${o.method}: expected one of ${METHODS.join(", ")}`);
  if (!existsSync(src) || !statSync(src).isDirectory()) throw new UserError(`${src}: not a folder; mqa convert reads an HF model folder (config.json + safetensors)`);
  const cfgPath = join(src, "config.json");
  if (!existsSync(cfgPath)) throw new UserError(`${src}: no config.json; expected an HF model folder`);
  if (existsSync(out) && (!statSync(out).isDirectory() || readdirSync(out).length > 0)) throw new UserError(`${out}: exists and is not an empty folder; mqa convert never overwrites (choose a new output folder)`);
  if (resolve(out) === resolve(src)) throw new UserError(`${out}: is the source folder`);
  const spec = loadHfConfigSpec(cfgPath);
  const layout = layoutOf(spec, cfgPath);
  checkSupported(spec, cfgPath);
  const S = spec.numKvHeads, K = o.kvHeads;
  if (!Number.isInteger(K) || K < 1 || K > S || S % K !== 0) throw new OptionError("kvHeads", `kvHeads ${K}: must divide the source's ${S} KV heads (${divisors(S).join(", ")}) (${cfgPath}: num_key_value_heads ${S})`);
  layout.check(spec, K, cfgPath);
  if (CALIBRATED.includes(o.method) && !o.calibration) throw new OptionError(["method", "calibration"], `method ${o.method} needs calibration <text file> (a few thousand tokens of text like the model's training data)`);
  if (o.calibration && !existsSync(o.calibration)) throw new OptionError("calibration", `calibration ${o.calibration}: no such file`);
  const calText = o.calibration ? readFileSync(o.calibration, "utf8") : null;

  const tensors = readAll(src);
  let stats: LayerStats[] | null = null, calTokens: number | null = null;
  if (CALIBRATED.includes(o.method)) {
    const c = await calibrate(src, { text: calText!, file: o.calibration!, K, maxTokens: o.calibrationTokens ?? 32768, window: 512, threads: o.threads });
    stats = c.stats;
    calTokens = c.tokens;
  }
  const rng = new Rng(o.seed ?? 1);
  const shape = layerShape(spec);
  const before = countParams(tensors);
  for (let l = 0; l < spec.numLayers; l++) {
    const layer = layout.read(tensors, l);
    const pooled = poolLayer(layer, shape, { method: o.method, K, stats: stats?.[l], random: () => rng.normal() });
    layout.write(tensors, l, pooled, K);
  }
  layout.finish?.(tensors);
  const json = JSON.parse(readFileSync(cfgPath, "utf8")) as Record<string, unknown>;
  const outCfg = layout.config(json, K);
  if (o.dtype) outCfg.torch_dtype = { f32: "float32", f16: "float16", bf16: "bfloat16" }[o.dtype];

  // Write everything into a temporary sibling, then rename: a failure leaves nothing behind.
  const tmp = join(dirname(resolve(out)), `.${basename(out)}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  try {
    mkdirSync(tmp, { recursive: true });
    writeFileSync(join(tmp, "config.json"), JSON.stringify(outCfg, null, 2) + "\n");
    const stDtype = (d: string) => (o.dtype ? ({ f32: "F32", f16: "F16", bf16: "BF16" } as const)[o.dtype] : d === "F16" || d === "BF16" ? d : "F32");
    writeSafetensors(join(tmp, "model.safetensors"), [...tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.data, dtype: stDtype(t.dtype) as "F32" | "F16" | "BF16" })), { mqa_convert: `${o.method} ${S}->${K}` });
    for (const f of readdirSync(src)) if (COPY.test(f) && statSync(join(src, f)).isFile()) copyFileSync(join(src, f), join(tmp, f));
    const outSpec = loadHfConfigSpec(join(tmp, "config.json"));
    checkSupported(outSpec, join(out, "config.json"));
    if (existsSync(out)) rmdirSync(out);
    renameSync(tmp, out);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const kvBytes = (k: number) => 2 * spec.numLayers * k * spec.headDim * 2;
  return {
    source: src, out, family: spec.family, outFamily: String(outCfg.model_type), method: o.method, sourceKvHeads: S, kvHeads: K, numHeads: spec.numHeads, layers: spec.numLayers,
    calibrationTokens: calTokens, parameters: { source: before, converted: countParams(tensors) }, kvBytesPerTokenF16: { source: kvBytes(S), converted: kvBytes(K) },
    seconds: (performance.now() - t0) / 1000,
  };
}

function divisors(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0);
}

function countParams(t: Tensors): number {
  let n = 0;
  for (const x of t.values()) n += x.data.length;
  return n;
}

/** Every tensor of the folder's safetensors, widened to f32 (F32, F16, BF16 only). */
function readAll(dir: string): Tensors {
  const src = safetensorsSource(dir);
  const out: Tensors = new Map();
  for (const name of src.names()) {
    const info = src.info(name)!;
    out.set(name, { shape: info.shape, data: readTensorF32(src, name, "mqa convert"), dtype: info.dtype });
  }
  return out;
}
