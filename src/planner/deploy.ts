// deployCommand(plan, options): the command line that realises a plan on a serving engine (vLLM or llama.cpp's
// llama-server), each flag with its value, what it does and where that is documented, plus the plan features the
// engine lacks (stated as warnings, with the closest setting used). Pure: no fs, no node imports.
//
// The mapping planner field → flag, with sources, is the table in docs/planner.md ("Deploying a plan").
//   vLLM:       model, --tensor-parallel-size tp, --data-parallel-size replicas, --max-model-len context,
//               --max-num-seqs ⌈batch / replicas⌉, --kv-cache-dtype, --gpu-memory-utilization, --dtype, ...
//   llama.cpp:  -m file.gguf, -c context × ⌈batch / replicas⌉ (the TOTAL context, shared by the -np slots),
//               -np ⌈batch / replicas⌉, -ctk/-ctv, -fa on (quantized V), -ngl (all layers), --split-mode layer
import { OptionError } from "../errors.js";
import { defaultActivationTokens, type PlanResult } from "./plan.js";

const GiB = 1024 ** 3;

export const ENGINES = ["vllm", "llama.cpp"] as const;
export type Engine = (typeof ENGINES)[number];

/** Where each flag's meaning is documented (cited per flag in the output and in docs/planner.md). */
export const ENGINE_SOURCES = {
  vllmArgs: "https://docs.vllm.ai/en/latest/configuration/engine_args.html",
  vllmFp8Kv: "https://docs.vllm.ai/en/latest/features/quantization/quantized_kvcache.html",
  vllmGguf: "https://docs.vllm.ai/en/latest/features/quantization/gguf.html",
  llamaServer: "https://github.com/ggml-org/llama.cpp/blob/master/tools/server/README.md",
  planner: "docs/planner.md",
} as const;

export interface DeployFlag {
  flag: string; // e.g. "--max-model-len"; "" for the positional model argument
  value: string | null; // null for a switch without a value
  meaning: string; // what the flag does and why this value, in a sentence
  source: string; // URL of the engine's documentation of the flag
}

export interface DeployCommand {
  engine: Engine;
  argv: string[]; // e.g. ["vllm", "serve", "meta-llama/Llama-2-7b-hf", "--tensor-parallel-size", "1", ...]
  command: string; // argv joined for a POSIX shell (arguments quoted where needed)
  flags: DeployFlag[];
  warnings: string[]; // plan features the engine lacks, placeholders, and plans that do not fit
}

export interface DeployOptions {
  engine: string; // "vllm" or "llama.cpp"
  // What the engine loads: an HF repository id or folder (format "hf"), or a .gguf file (format "gguf").
  // Default: the plan's model name, as an HF id.
  model?: string;
  modelFormat?: "hf" | "gguf";
}

/** Engine names as the user may write them: "llama.cpp", "llamacpp", "llama-server", "vllm", "vLLM". */
export function parseEngine(name: string): Engine {
  const n = name.trim().toLowerCase();
  if (n === "vllm") return "vllm";
  if (n === "llama.cpp" || n === "llamacpp" || n === "llama-cpp" || n === "llama-server") return "llama.cpp";
  throw new OptionError("engine", `engine: "${name}" is not one of ${ENGINES.join(", ")}`);
}

/**
 * The serving command for a plan.
 * @example deployCommand(plan(presetSpec("llama-2-7b"), { context: 32768, batch: 8, gpu: "h100-sxm" }), { engine: "llama.cpp" }).argv
 *   // ["llama-server", "-m", "<llama-2-7b>.gguf", "-c", "262144", "-np", "8", "-ctk", "f16", "-ctv", "f16", "-ngl", "99"]
 */
export function deployCommand(result: PlanResult, options: DeployOptions): DeployCommand {
  const engine = parseEngine(options.engine);
  const model = options.model ?? result.model.name;
  const format = options.modelFormat ?? (/\.gguf$/i.test(model) ? "gguf" : "hf");
  const built = engine === "vllm" ? vllmFlags(result, model, format) : llamaCppFlags(result, model, format);
  const program = engine === "vllm" ? ["vllm", "serve"] : ["llama-server"];
  const argv = [...program, ...built.flags.flatMap((f) => [f.flag, ...(f.value === null ? [] : [f.value])].filter((x) => x !== ""))];
  const warnings = [...built.warnings, ...commonWarnings(result, engine)];
  return { engine, argv, command: argv.map(shellQuote).join(" "), flags: built.flags, warnings };
}

/** Quotes one argument for a POSIX shell when it holds anything beyond [A-Za-z0-9_./:=@%+,-]. */
export function shellQuote(arg: string): string {
  return /^[\w./:=@%+,-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

const gib = (bytes: number) => `${(bytes / GiB).toFixed(2)} GiB`;

interface Built {
  flags: DeployFlag[];
  warnings: string[];
}

function perReplicaBatch(r: PlanResult): number {
  return Math.ceil(r.options.batch / r.options.replicas);
}

function commonWarnings(r: PlanResult, engine: Engine): string[] {
  const o = r.options;
  if (r.kvBudgetBytesPerGpu <= 0) return [`the plan does not fit: the weights leave no room for the KV cache, so ${engine} will fail to start`];
  if (r.fits) return [];
  const perReplica = Math.floor(r.maxBatch / o.replicas);
  if (engine === "vllm") {
    return [perReplica >= 1
      ? `the plan does not fit: vLLM starts (one ${o.context}-token sequence fits) but its cache holds at most ${perReplica} full-length sequences per replica; the others of the ${perReplicaBatch(r)} wait, or are preempted and recomputed as they grow (--max-num-seqs ${perReplica} matches the cache)`
      : `the plan does not fit: not even one ${o.context}-token sequence fits the KV budget, so vLLM refuses to start with this --max-model-len (at most ${r.maxContext} tokens for batch ${o.batch})`];
  }
  return [`the plan does not fit: llama-server allocates the whole -c cache at start-up (${gib(r.kvCacheBytesPerGpu)} per GPU) and the plan's budget holds at most ${r.maxBatch} sequences of ${o.context} tokens, so it fails to allocate; lower -np/-c`];
}

// ---------------------------------------------------------------- vLLM

// vLLM's --kv-cache-dtype choices: auto (the model's dtype), fp8 (= fp8_e4m3 on CUDA), fp8_e4m3, fp8_e5m2.
const VLLM_WEIGHT_DTYPE: Record<string, string> = { f32: "float32", f16: "float16", bf16: "bfloat16" };

function vllmFlags(r: PlanResult, model: string, format: "hf" | "gguf"): Built {
  const o = r.options;
  const S = ENGINE_SOURCES;
  const flags: DeployFlag[] = [];
  const warnings: string[] = [];
  const ggufNote = format === "gguf" ? "; vLLM's GGUF loading is experimental, single-file only, and wants the original HF tokenizer (--tokenizer)" : "";
  flags.push({ flag: "", value: model, meaning: `the model to serve (an HF repository id or local folder)${ggufNote}`, source: format === "gguf" ? S.vllmGguf : S.vllmArgs });
  if (format === "gguf") warnings.push(`vllm: ${model} is a GGUF file; vLLM's GGUF support is experimental (pass --tokenizer with the HF repository of the original model), prefer the HF checkpoint`);
  flags.push({ flag: "--tensor-parallel-size", value: String(o.tp), meaning: `split every layer's heads and MLP over ${o.tp} GPU${o.tp > 1 ? "s" : ""} (the plan's tp; each GPU keeps ${r.attention === "mla" ? "the whole MLA latent" : `${r.kvHeadsPerGpu} KV head${r.kvHeadsPerGpu > 1 ? "s" : ""}`})`, source: S.vllmArgs });
  if (o.replicas > 1) {
    flags.push({ flag: "--data-parallel-size", value: String(o.replicas), meaning: `${o.replicas} copies of the model, each on ${o.tp} GPU${o.tp > 1 ? "s" : ""} (the plan's gpus / tp); requests are spread over them`, source: S.vllmArgs });
  }
  flags.push({ flag: "--max-model-len", value: String(o.context), meaning: `longest sequence (prompt + output) in tokens: the plan's context`, source: S.vllmArgs });
  const b = perReplicaBatch(r);
  flags.push({ flag: "--max-num-seqs", value: String(b), meaning: `most sequences scheduled at once per engine (per data-parallel rank): the plan's batch${o.replicas > 1 ? ` ${o.batch} over ${o.replicas} replicas` : ""}`, source: S.vllmArgs });
  flags.push(vllmKvDtype(r, warnings));
  flags.push(vllmUtilization(r));
  const wd = VLLM_WEIGHT_DTYPE[o.weightDtype];
  if (wd) flags.push({ flag: "--dtype", value: wd, meaning: `weights and activations in ${o.weightDtype} (the plan's weight dtype)`, source: S.vllmArgs });
  else if (o.weightDtype === "fp8") flags.push({ flag: "--quantization", value: "fp8", meaning: "quantize the bf16/f16 checkpoint's linear weights to fp8 when loading (the plan's fp8 weights)", source: S.vllmArgs });
  else warnings.push(`vllm: weights in ${o.weightDtype} have no vLLM load flag; serve a checkpoint quantized to it (vLLM reads its quantization_config) or re-plan with --weight-dtype bf16 or fp8`);
  if (o.blockSize === null) warnings.push(`vllm: the plan assumes a contiguous cache, but vLLM always pages it (default blocks of 16 tokens); re-plan with --block-size 16 for vLLM's numbers`);
  else if (o.blockSize !== 16) {
    flags.push({ flag: "--block-size", value: String(o.blockSize), meaning: `paged-cache block in tokens (the plan's block size; vLLM's default is 16)`, source: S.vllmArgs });
    if (![8, 16, 32].includes(o.blockSize)) warnings.push(`vllm: --block-size ${o.blockSize} is outside the documented choices 8, 16, 32 (newer attention backends accept more); the engine may refuse it`);
  }
  if (o.activation.tokens !== defaultActivationTokens(o.gpu) && o.activation.bytes === null && o.kvBudgetBytes === null) {
    flags.push({ flag: "--max-num-batched-tokens", value: String(o.activation.tokens), meaning: `tokens per scheduler step, which also sizes vLLM's memory-profiling pass (the plan's activation tokens)`, source: S.vllmArgs });
  }
  if (!o.applyWindow && r.model.slidingLayers > 0) {
    flags.push({ flag: "--disable-sliding-window", value: null, meaning: "cache every token on every layer (the plan ignores the sliding windows)", source: S.vllmArgs });
  }
  if (o.context > r.model.maxPositions) {
    warnings.push(`vllm: --max-model-len ${o.context} exceeds the model's max_position_embeddings ${r.model.maxPositions}; vLLM refuses it unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 is set (or rope scaling is configured)`);
  }
  return { flags, warnings };
}

function vllmKvDtype(r: PlanResult, warnings: string[]): DeployFlag {
  const { kvDtype, weightDtype } = r.options;
  const S = ENGINE_SOURCES;
  if (kvDtype === "fp8") return { flag: "--kv-cache-dtype", value: "fp8", meaning: "store K and V in fp8 (e4m3 on CUDA), 1 byte per value as planned", source: S.vllmFp8Kv };
  if (kvDtype === "f16" || kvDtype === "bf16") {
    const same = (kvDtype === "f16" && weightDtype === "f16") || (kvDtype === "bf16" && weightDtype === "bf16");
    const note = same ? "" : ` (vLLM picks ${VLLM_WEIGHT_DTYPE[weightDtype] ?? "the model's dtype"}; same 2 bytes per value as the plan's ${kvDtype})`;
    return { flag: "--kv-cache-dtype", value: "auto", meaning: `store K and V in the model's dtype${note}`, source: S.vllmArgs };
  }
  if (kvDtype === "f32") {
    warnings.push(`vllm: an f32 KV cache is not a --kv-cache-dtype choice; vLLM's "auto" follows --dtype, so the cache is f32 only with --dtype float32 weights`);
    return { flag: "--kv-cache-dtype", value: "auto", meaning: "store K and V in the model's dtype (f32 only with --dtype float32)", source: S.vllmArgs };
  }
  // int8, q8_0, q4_0: not vLLM cache types. fp8 is the closest (1 byte per value, no per-row scale).
  warnings.push(`vllm: ${kvDtype} is not a vLLM --kv-cache-dtype (auto, fp8, fp8_e4m3, fp8_e5m2); the command uses fp8, the closest, so re-plan with --kv-dtype fp8 for the numbers it gives`);
  return { flag: "--kv-cache-dtype", value: "fp8", meaning: `store K and V in fp8 (closest to the plan's ${kvDtype}, which vLLM lacks)`, source: S.vllmFp8Kv };
}

/**
 * --gpu-memory-utilization: vLLM's fraction of each GPU's total memory it may use for weights, activations and the
 * cache. The plan's budget is computed with the same fraction, so the engine sizes the same cache; the meaning also
 * states the smallest fraction that would still hold batch × context (from the plan's per-GPU figures).
 */
function vllmUtilization(r: PlanResult): DeployFlag {
  const o = r.options;
  const m = r.memory;
  let meaning = `vLLM may use ${o.gpuMemoryUtilization} × ${gib(m.totalBytesPerGpu)} = ${gib(m.usableBytesPerGpu)} per GPU; after ${gib(m.weightBytesPerGpu)} of weights and ${gib(m.activationBytesPerGpu)} of activations the cache gets ${gib(r.kvBudgetBytesPerGpu)}, the plan's KV budget`;
  if (o.kvBudgetBytes === null && r.fits) {
    const need = m.weightBytesPerGpu + m.activationBytesPerGpu + r.kvCacheBytesPerGpu;
    const min = Math.ceil((100 * need) / m.totalBytesPerGpu) / 100;
    meaning += `; batch ${o.batch} × ${o.context} tokens needs ${gib(r.kvCacheBytesPerGpu)} of it, so ${min.toFixed(2)} would also do`;
  }
  return { flag: "--gpu-memory-utilization", value: String(o.gpuMemoryUtilization), meaning, source: ENGINE_SOURCES.vllmArgs };
}

// ---------------------------------------------------------------- llama.cpp

// llama-server's -ctk/-ctv types (README: f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1) that the planner has.
const LLAMA_CACHE_TYPES = new Set(["f32", "f16", "bf16", "q8_0", "q4_0"]);
const QUANTIZED_CACHE = new Set(["q8_0", "q4_0"]);

function llamaCppFlags(r: PlanResult, model: string, format: "hf" | "gguf"): Built {
  const o = r.options;
  const S = ENGINE_SOURCES.llamaServer;
  const flags: DeployFlag[] = [];
  const warnings: string[] = [];
  const file = format === "gguf" ? model : `<${r.model.name}>.gguf`;
  if (format !== "gguf") {
    warnings.push(`llama.cpp: ${file} is a placeholder: llama-server loads GGUF files only; convert ${model} first (llama.cpp's convert_hf_to_gguf.py, or mqa export-gguf) in ${o.weightDtype} to match the plan's weights`);
  }
  flags.push({ flag: "-m", value: file, meaning: `the GGUF model file; its tensor types set the weights (the plan assumed ${o.weightDtype})`, source: S });
  const b = perReplicaBatch(r);
  flags.push({
    flag: "-c",
    value: String(o.context * b),
    meaning: `the TOTAL context of the server in tokens, shared by the -np slots (each gets c / np): ${o.context} tokens × ${b} sequences, so each slot holds the plan's context`,
    source: S,
  });
  flags.push({ flag: "-np", value: String(b), meaning: `parallel slots (sequences decoded together): the plan's batch${o.replicas > 1 ? ` per replica` : ""}`, source: S });
  let cache = o.kvDtype;
  if (!LLAMA_CACHE_TYPES.has(cache)) {
    warnings.push(`llama.cpp: ${cache} is not a llama.cpp cache type (f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1); the command uses q8_0, the closest (8.5 bits per value), so re-plan with --kv-dtype q8_0 for its numbers`);
    cache = "q8_0";
  }
  flags.push({ flag: "-ctk", value: cache, meaning: `K cache type`, source: S });
  flags.push({ flag: "-ctv", value: cache, meaning: `V cache type`, source: S });
  if (QUANTIZED_CACHE.has(cache)) {
    flags.push({ flag: "-fa", value: "on", meaning: `flash attention: a quantized V cache (${cache}) needs it (older builds take a bare -fa)`, source: S });
  }
  const layers = Math.max(99, r.model.numLayers + 1);
  flags.push({ flag: "-ngl", value: String(layers), meaning: `layers kept on the GPU: all of them (the model has ${r.model.numLayers} plus the output layer; the plan puts everything on the GPU)`, source: S });
  if (o.tp > 1) {
    flags.push({ flag: "--split-mode", value: "layer", meaning: `spread whole layers and their KV over the ${o.tp} visible GPUs (llama.cpp's default multi-GPU mode)`, source: S });
    warnings.push(
      `llama.cpp: no tensor parallelism like vLLM's tp ${o.tp}; the closest is --split-mode layer (whole layers and their KV per GPU, pipelined: per-GPU memory about the plan's, decode speed about one GPU's) or row (weight rows split, KV on the main GPU); newer builds add an experimental "tensor" mode`,
    );
  }
  if (o.replicas > 1) {
    warnings.push(`llama.cpp: one llama-server per replica: run ${o.replicas} copies of this command, each on ${o.tp} GPU${o.tp > 1 ? "s" : ""} (CUDA_VISIBLE_DEVICES), behind a load balancer`);
  }
  if (!o.applyWindow && r.model.slidingLayers > 0) {
    flags.push({ flag: "--swa-full", value: null, meaning: "full-size cache on sliding-window layers (the plan ignores the windows)", source: S });
  }
  if (r.attention === "mla") warnings.push(`llama.cpp: its MLA cache layout differs by build; check the KV size it logs against the plan's`);
  if (o.context > r.model.maxPositions) warnings.push(`llama.cpp: context ${o.context} per slot exceeds the model's trained ${r.model.maxPositions} tokens; quality beyond it needs rope scaling (--rope-scaling)`);
  return { flags, warnings };
}
