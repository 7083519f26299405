// plan(spec, options): exact KV-cache and memory planning for a model on a GPU, plus what-if variants
// (MHA, GQA-g, MQA). Pure: no fs, no node imports (the web page bundles it).
//
// Every KV number comes from src/kvcache/bytes.ts (kvCacheBytes / kvBytesPerToken), the same function the
// caches allocate with. Memory model per GPU (vLLM's rule):
//   budget = ⌊memory × gpuMemoryUtilization⌋ − weights per GPU − activations − fixed overhead
//   numBlocks = ⌊budget / (blockSize × KV bytes per token per GPU)⌋,  maxConcurrency = numBlocks × blockSize / context
//   (sliding-window models: blocks' bytes / one sequence's paged bytes). Formulas, sources and measured error: docs/planner.md.
//   maxBatch  = replicas × ⌊budget / paged KV bytes of one sequence of `context` tokens⌋
// Activation model (an option, stated in the result; docs/planner.md compares it with engine logs): vLLM V1's memory
// profile runs one forward pass over max_num_batched_tokens = `tokens` tokens (vLLM's default: 8192 on GPUs with
// ≥ 70 GiB, else 2048) and its dummy sampler over the logits of those tokens, gathered to the full vocabulary in f32:
//   tokens × 2 B × (2 × hidden + 2 × MLP width / tp)  +  tokens × vocab × 4 B (f32 logits, not split by tp)
// plus overheadBytes (0.5 GiB: vLLM's "non-torch memory", CUDA context and NCCL, logged as 0.13–0.55 GiB).
// Set activation.bytes to use a measured figure.
// Decode roofline per GPU: step time = max(bytes read / bandwidth, FLOPs / dense bf16 peak); tokens/s = batch / step.
import { OptionError, UserError } from "../errors.js";
import { kvBytesPerToken, kvCacheBytes, kvHeadsPerGpu, storedTokens } from "../kvcache/bytes.js";
import { dtypeInfo, rowBytes } from "../dtypes/table.js";
import type { ModelSpec } from "../config/types.js";
import { attentionKind } from "../config/types.js";
import { kvHeadsLabel, parseKvHeads, withKvHeads } from "../config/variant.js";
import { gpuByName, type GpuSpec } from "./gpus.js";
import { prefillEstimate, type PrefillEstimate } from "./prefill.js";
import { attentionWidths, matmulParams, paramCounts, weightBytes, type ParamCounts, type ParamGroup } from "./params.js";

const GiB = 1024 ** 3;
/** maxContext search limit: a model whose every layer is windowed has a bounded cache at any length. */
export const MAX_CONTEXT_LIMIT = 2 ** 31 - 1;

export interface ActivationModel {
  tokens: number; // tokens in the profiling forward pass (vLLM's max_num_batched_tokens), e.g. 8192 on an H100
  overheadBytes: number; // fixed per-GPU memory outside the cache and weights, e.g. 1 GiB
  bytes?: number | null; // when set: activations + overhead per GPU in bytes, replacing the model above
}

export interface PlanOptions {
  context?: number; // tokens per sequence, default 4096
  batch?: number; // concurrent sequences (over all replicas), default 1
  kvDtype?: string; // default "f16"
  weightDtype?: string; // default "bf16"
  gpu?: GpuSpec | string; // default "a100-80gb"
  gpus?: number; // total GPUs, default = tp
  tp?: number; // tensor-parallel degree, default = gpus (or 1)
  blockSize?: number | null; // paged-cache block in tokens (vLLM: 16); null = contiguous
  gpuMemoryUtilization?: number; // vLLM's fraction of total memory, default 0.9
  activation?: Partial<ActivationModel>;
  kvBudgetBytes?: number | null; // per-GPU KV budget override (e.g. from an engine log)
  kvHeads?: (number | string)[]; // what-ifs: e.g. ["full", 8, 1]
  applyWindow?: boolean; // cap sliding-window layers at their window (default true)
}

export interface ResolvedPlanOptions {
  context: number;
  batch: number;
  kvDtype: string;
  weightDtype: string;
  gpu: GpuSpec;
  gpus: number;
  tp: number;
  replicas: number; // gpus / tp data-parallel copies
  blockSize: number | null;
  gpuMemoryUtilization: number;
  activation: ActivationModel;
  kvBudgetBytes: number | null;
  kvHeads: number[];
  applyWindow: boolean;
}

export interface DecodeEstimate {
  batch: number; // sequences decoding together (all replicas)
  batchPerReplica: number;
  context: number; // cached tokens per sequence assumed for the step (the end of generation: an upper bound)
  weightBytesReadPerGpu: number; // MoE: only experts expected to be hit by the batch
  kvBytesReadPerGpu: number;
  bytesPerStepPerGpu: number;
  flopsPerStepPerGpu: number;
  memorySeconds: number;
  computeSeconds: number | null; // null when the GPU has no TFLOP/s figure
  stepSeconds: number;
  tokensPerSecond: number;
  bound: "memory" | "compute";
  arithmeticIntensity: number; // FLOPs per byte read
}

export interface VariantPlan {
  label: string; // "as configured", "MHA", "GQA-8", "MQA"
  attention: "mha" | "gqa" | "mqa" | "mla";
  numKvHeads: number;
  kvHeadsPerGpu: number;
  kvBytesPerToken: number; // one sequence, all layers, before any window cap
  kvBytesPerTokenPerGpu: number;
  kvBytesPerSequence: number; // one sequence of `context` tokens, windows applied
  kvCacheBytes: number; // `batch` sequences of `context` tokens, windows applied, no paging, one copy (tp = 1)
  kvCacheBytesPerGpu: number; // one GPU's share under tp for ⌈batch / replicas⌉ sequences
  kvCacheBytesAllGpus: number; // summed over every GPU (counts KV heads replicated by tp)
  kvProjParams: number; // K + V projection parameters
  kvProjParamsSavedVsMha: number; // fraction of MHA's K + V projection parameters removed, 0..1
  weightBytes: number;
  weightBytesPerGpu: number;
  kvBudgetBytesPerGpu: number; // may be negative: the weights do not fit
  numBlocks: number; // paged blocks per GPU (vLLM's "# GPU blocks")
  maxConcurrency: number; // vLLM: numBlocks × blockSize / context, per replica
  maxBatch: number; // sequences of `context` tokens that fit (all replicas)
  maxContext: number; // longest context for `batch` sequences that fits
  maxContextUnbounded: boolean; // every layer is windowed: the cache stops growing
  fits: boolean; // `batch` × `context` fits
  decode: DecodeEstimate;
  prefill: PrefillEstimate; // one prompt of `context` tokens: the time to first token (prefill.ts)
}

export interface PlanResult extends VariantPlan {
  model: {
    name: string;
    family: string;
    source: string | null;
    attention: "mha" | "gqa" | "mqa" | "mla";
    numLayers: number;
    hiddenSize: number;
    numHeads: number;
    numKvHeads: number;
    headDim: number;
    vocabSize: number;
    maxPositions: number;
    slidingLayers: number;
    window: number | null;
    mla: ModelSpec["mla"];
    numExperts: number;
    expertsPerToken: number;
  };
  options: ResolvedPlanOptions;
  gpu: GpuSpec;
  params: ParamCounts;
  weightBytesByGroup: Record<ParamGroup, number>;
  memory: {
    totalBytesPerGpu: number;
    usableBytesPerGpu: number; // ⌊total × gpuMemoryUtilization⌋
    weightBytesPerGpu: number;
    activationBytesPerGpu: number; // activations + overhead
    kvBudgetBytesPerGpu: number;
  };
  variants: VariantPlan[];
  warnings: string[];
  assumptions: string[];
}

const DEFAULT_OVERHEAD_BYTES = 0.5 * GiB;

/** vLLM V1's default max_num_batched_tokens for `vllm serve`: 8192 on GPUs with at least 70 GiB, else 2048. */
export function defaultActivationTokens(gpu: GpuSpec): number {
  return gpu.memoryBytes >= 70 * GiB ? 8192 : 2048;
}

function positiveInt(value: unknown, field: string, min = 1): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new OptionError(field, `${field}: ${String(value)} is not an integer >= ${min}`);
  }
  return value;
}

function checkDtype(name: string, field: string): string {
  try {
    return dtypeInfo(name).name;
  } catch (e) {
    throw new OptionError(field, `${field}: ${(e as Error).message}`);
  }
}

/** Fills defaults and validates every option (UserError naming the option on a bad value). */
export function resolvePlanOptions(spec: ModelSpec, options: PlanOptions = {}): ResolvedPlanOptions {
  const context = positiveInt(options.context ?? 4096, "context");
  const batch = positiveInt(options.batch ?? 1, "batch");
  const tp = positiveInt(options.tp ?? options.gpus ?? 1, "tp");
  const gpus = positiveInt(options.gpus ?? tp, "gpus");
  if (gpus % tp !== 0) throw new OptionError(["gpus", "tp"], `gpus ${gpus} is not a multiple of tp ${tp}; expected gpus = tp × replicas`);
  const blockSize = options.blockSize === null ? null : positiveInt(options.blockSize ?? 16, "blockSize");
  const util = options.gpuMemoryUtilization ?? 0.9;
  if (typeof util !== "number" || !(util > 0 && util <= 1)) throw new OptionError("gpuMemoryUtilization", `gpuMemoryUtilization: ${util} is not in (0, 1]`);
  const gpu = typeof options.gpu === "string" ? gpuByName(options.gpu) : options.gpu ?? gpuByName("a100-80gb");
  const given = options.activation ?? {};
  const act = {
    tokens: given.tokens ?? defaultActivationTokens(gpu),
    overheadBytes: given.overheadBytes ?? DEFAULT_OVERHEAD_BYTES,
    bytes: given.bytes ?? null,
  };
  positiveInt(act.tokens, "activation.tokens", 0);
  // Byte amounts beyond 2^53 are not exact integers in JavaScript (and no device has them).
  if (!(act.overheadBytes >= 0 && act.overheadBytes <= Number.MAX_SAFE_INTEGER)) throw new OptionError("activation.overheadBytes", `activation.overheadBytes: ${act.overheadBytes / GiB} GiB is not in [0, 2^53 bytes]`);
  if (act.bytes !== null && act.bytes !== undefined && !(act.bytes >= 0 && act.bytes <= Number.MAX_SAFE_INTEGER)) {
    throw new OptionError("activation.bytes", `activation.bytes: ${act.bytes / GiB} GiB is not in [0, 2^53 bytes]`);
  }
  const kvHeads = (options.kvHeads ?? []).map((k) => parseKvHeads(k, spec.numHeads));
  const budget = options.kvBudgetBytes ?? null;
  if (budget !== null && !(Number.isSafeInteger(Math.round(budget)) && budget >= 0)) throw new UserError(`kv budget: ${budget} is not a non-negative number of bytes below 2^53`);
  const tpProblem = tpSplitProblem(spec, tp);
  if (tpProblem) throw new OptionError("tp", `tp ${tp}: ${tpProblem}`);
  return {
    context,
    batch,
    kvDtype: checkDtype(options.kvDtype ?? "f16", "kvDtype"),
    weightDtype: checkDtype(options.weightDtype ?? "bf16", "weightDtype"),
    gpu,
    gpus,
    tp,
    replicas: gpus / tp,
    blockSize,
    gpuMemoryUtilization: util,
    activation: { tokens: act.tokens, overheadBytes: act.overheadBytes, bytes: act.bytes ?? null },
    kvBudgetBytes: budget,
    kvHeads: [...new Set(kvHeads)],
    applyWindow: options.applyWindow ?? true,
  };
}

/**
 * Why a model cannot be split over `tp` GPUs, or null when it can. vLLM's rules (and TensorRT-LLM's): the query heads
 * divide evenly, and the KV heads either divide evenly (kv % tp = 0) or are replicated whole (tp % kv = 0).
 * MLA caches one latent per token that every GPU keeps, so only the query heads matter there.
 */
export function tpSplitProblem(spec: ModelSpec, tp: number): string | null {
  if (tp === 1) return null;
  if (spec.numHeads % tp !== 0) {
    return `the ${spec.numHeads} query heads do not split evenly over ${tp} GPUs (vLLM refuses this); expected a tp dividing ${spec.numHeads}`;
  }
  if (spec.mla) return null;
  const kv = spec.numKvHeads;
  if (tp < kv ? kv % tp !== 0 : tp % kv !== 0) {
    return `the ${kv} KV heads neither split evenly over ${tp} GPUs nor replicate evenly (vLLM refuses this); expected a tp dividing ${kv} or a multiple of it`;
  }
  return null;
}

/** Activation + overhead bytes per GPU under the stated model (see the file comment). */
export function activationBytesPerGpu(spec: ModelSpec, o: Pick<ResolvedPlanOptions, "activation" | "tp">): number {
  const { activation: a, tp } = o;
  if (a.bytes !== null && a.bytes !== undefined) return Math.round(a.bytes);
  const { intermediateSize, numExperts, expertsPerToken, sharedExperts, moeIntermediateSize, firstDenseLayers } = spec.mlp;
  const moeWidth = numExperts > 1 ? (expertsPerToken + sharedExperts) * (moeIntermediateSize ?? intermediateSize) : 0;
  const denseWidth = numExperts === 1 || firstDenseLayers > 0 || (spec.mlp.moeLayerStep ?? 1) > 1 ? intermediateSize : 0;
  const width = Math.ceil(Math.max(moeWidth, denseWidth) / tp);
  const hidden = a.tokens * 2 * (2 * spec.hiddenSize + 2 * width);
  // vLLM's dummy sampler run takes f32 logits for every profiled token, all-gathered to the full vocabulary under tp.
  const logits = a.tokens * spec.vocabSize * 4;
  return Math.round(hidden + logits + a.overheadBytes);
}

/** The plan for one spec (the model as configured, or one what-if variant). */
function planVariant(spec: ModelSpec, label: string, o: ResolvedPlanOptions, mhaKvProj: number): VariantPlan {
  const { context, batch, kvDtype: dtype, tp, replicas, blockSize, applyWindow, gpu } = o;
  const perReplica = Math.ceil(batch / replicas);
  const w = weightBytes(spec, o.weightDtype, tp);
  const params = paramCounts(spec);
  const usable = Math.floor(gpu.memoryBytes * o.gpuMemoryUtilization);
  const budget = o.kvBudgetBytes ?? usable - w.perGpu - activationBytesPerGpu(spec, o);
  const perTokenPerGpu = kvBytesPerToken(spec, dtype, tp);
  const paged = (tokens: number, b: number) => kvCacheBytes(spec, { tokens, dtype, batch: b, tp, blockSize, applyWindow });
  const blockTokens = blockSize ?? 1;
  const numBlocks = budget > 0 ? Math.floor(budget / (blockTokens * perTokenPerGpu)) : 0;
  const perSeqPaged = paged(context, 1);
  const maxBatch = budget > 0 ? Math.floor(budget / perSeqPaged) * replicas : 0;
  const { maxContext, unbounded } = searchMaxContext((t) => paged(t, perReplica), budget);
  // Replicas hold ⌊batch / replicas⌋ sequences, and batch % replicas of them one more (closed form: replicas may be huge).
  const perSeqPerGpu = kvCacheBytes(spec, { tokens: context, dtype, batch: 1, tp, applyWindow });
  const allGpus = perSeqPerGpu * tp * batch;
  return {
    label,
    attention: attentionKind(spec),
    numKvHeads: spec.numKvHeads,
    kvHeadsPerGpu: spec.mla ? 1 : kvHeadsPerGpu(spec.numKvHeads, tp),
    kvBytesPerToken: kvBytesPerToken(spec, dtype),
    kvBytesPerTokenPerGpu: perTokenPerGpu,
    kvBytesPerSequence: kvCacheBytes(spec, { tokens: context, dtype, applyWindow }),
    kvCacheBytes: kvCacheBytes(spec, { tokens: context, dtype, batch, applyWindow }),
    kvCacheBytesPerGpu: kvCacheBytes(spec, { tokens: context, dtype, batch: perReplica, tp, applyWindow }),
    kvCacheBytesAllGpus: allGpus,
    kvProjParams: params.kvProj,
    kvProjParamsSavedVsMha: mhaKvProj > 0 ? 1 - params.kvProj / mhaKvProj : 0,
    weightBytes: w.total,
    weightBytesPerGpu: w.perGpu,
    kvBudgetBytesPerGpu: budget,
    numBlocks,
    // vLLM's "Maximum concurrency": blocks × block size / context when every layer caches every token; with sliding
    // layers a sequence needs fewer blocks than that (vLLM's hybrid allocator), so it is blocks' bytes / one sequence's.
    maxConcurrency: spec.layers.some((l) => l.window !== null && applyWindow) ? (numBlocks * blockTokens * perTokenPerGpu) / perSeqPaged : (numBlocks * blockTokens) / context,
    maxBatch,
    maxContext,
    maxContextUnbounded: unbounded,
    fits: budget >= paged(context, perReplica),
    decode: decodeEstimate(spec, o, batch),
    prefill: prefillEstimate(spec, o, context),
  };
}

/** Largest T in [0, MAX_CONTEXT_LIMIT] with bytesAt(T) ≤ budget (bytesAt is non-decreasing in T). */
export function searchMaxContext(bytesAt: (tokens: number) => number, budget: number): { maxContext: number; unbounded: boolean } {
  if (budget <= 0 || bytesAt(1) > budget) return { maxContext: 0, unbounded: false };
  if (bytesAt(MAX_CONTEXT_LIMIT) <= budget) return { maxContext: MAX_CONTEXT_LIMIT, unbounded: true };
  let lo = 1; // fits
  let hi = MAX_CONTEXT_LIMIT; // does not fit
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (bytesAt(mid) <= budget) lo = mid;
    else hi = mid;
  }
  return { maxContext: lo, unbounded: false };
}

/**
 * Roofline decode step for `batch` sequences at `context` cached tokens: per GPU, bytes read = weights (MoE: the
 * expected distinct experts hit, 1 − (1 − k/X)^b of each layer's routed experts, uniform routing; an untied input
 * embedding and learned positions: only the b rows looked up) + the KV cache;
 * FLOPs = 2 × matmul parameters per GPU × b + 4 × b × stored tokens × heads per GPU × head dim per layer.
 */
export function decodeEstimate(spec: ModelSpec, o: ResolvedPlanOptions, batch: number): DecodeEstimate {
  const { tp, replicas, context, kvDtype: dtype, gpu, applyWindow } = o;
  const b = Math.ceil(batch / replicas);
  const w = weightBytes(spec, o.weightDtype, tp);
  const { numExperts, expertsPerToken } = spec.mlp;
  const hitFraction = numExperts > 1 ? 1 - Math.pow(1 - expertsPerToken / numExperts, b) : 1;
  // Input embedding (untied) and learned positions: b rows are looked up, not the whole table read.
  const tables = (spec.tieWordEmbeddings ? 0 : 1) + (spec.positions === "learned" ? 1 : 0);
  const lookupRows = Math.min(w.lookupPerGpu, b * tables * rowBytes(o.weightDtype, spec.hiddenSize));
  const weightRead = w.perGpu - w.lookupPerGpu - w.routedPerGpu + w.routedPerGpu * hitFraction + lookupRows;
  const kvRead = kvCacheBytes(spec, { tokens: context, dtype, batch: b, tp, applyWindow });
  const mm = matmulParams(spec);
  let attnFlops = 0;
  for (const layer of spec.layers) {
    const heads = Math.ceil(layer.numHeads / tp);
    const widths = attentionWidths(spec, layer);
    attnFlops += 2 * b * storedTokens(layer, context, { applyWindow }) * heads * widths;
  }
  const flops = (2 * mm * b) / tp + attnFlops;
  const bytes = weightRead + kvRead;
  const memorySeconds = bytes / gpu.bandwidthBytesPerSecond;
  const computeSeconds = gpu.tflopsBf16 ? flops / (gpu.tflopsBf16 * 1e12) : null;
  const stepSeconds = Math.max(memorySeconds, computeSeconds ?? 0);
  return {
    batch,
    batchPerReplica: b,
    context,
    weightBytesReadPerGpu: Math.round(weightRead),
    kvBytesReadPerGpu: kvRead,
    bytesPerStepPerGpu: Math.round(bytes),
    flopsPerStepPerGpu: Math.round(flops),
    memorySeconds,
    computeSeconds,
    stepSeconds,
    tokensPerSecond: batch / stepSeconds,
    bound: computeSeconds !== null && computeSeconds > memorySeconds ? "compute" : "memory",
    arithmeticIntensity: flops / bytes,
  };
}

/**
 * Plans a model on a GPU: KV bytes (per token, sequence, batch, GPU), weights, budget, max batch/context,
 * vLLM-style concurrency, a decode roofline, and one row per requested KV-head variant.
 * @example plan(presetSpec("llama-2-7b"), { context: 4096, gpu: "a100-80gb" }).kvCacheBytes // 2147483648 (2 GiB)
 */
export function plan(spec: ModelSpec, options: PlanOptions = {}): PlanResult {
  const o = resolvePlanOptions(spec, options);
  // K/V projection savings are measured against the MHA version (for MLA: per-head K and V of the same widths).
  const mhaKvProj = paramCounts(withKvHeads(spec, spec.numHeads)).kvProj;
  const base = planVariant(spec, "as configured", o, mhaKvProj);
  const variants = o.kvHeads.map((k) => planVariant(withKvHeads(spec, k), kvHeadsLabel(spec.numHeads, k), o, mhaKvProj));
  for (const v of [base, ...variants]) checkExact(v, o);
  const params = paramCounts(spec);
  const w = weightBytes(spec, o.weightDtype, o.tp);
  const slidingLayers = spec.layers.filter((l) => l.window !== null).length;
  const windows = [...new Set(spec.layers.map((l) => l.window).filter((x): x is number => x !== null))];
  return {
    ...base,
    model: {
      name: spec.name,
      family: spec.family,
      source: spec.source ?? null,
      attention: attentionKind(spec),
      numLayers: spec.numLayers,
      hiddenSize: spec.hiddenSize,
      numHeads: spec.numHeads,
      numKvHeads: spec.numKvHeads,
      headDim: spec.headDim,
      vocabSize: spec.vocabSize,
      maxPositions: spec.maxPositions,
      slidingLayers,
      window: windows.length ? Math.max(...windows) : null,
      mla: spec.mla,
      numExperts: spec.mlp.numExperts,
      expertsPerToken: spec.mlp.expertsPerToken,
    },
    options: o,
    gpu: o.gpu,
    params,
    weightBytesByGroup: w.byGroup,
    memory: {
      totalBytesPerGpu: o.gpu.memoryBytes,
      usableBytesPerGpu: Math.floor(o.gpu.memoryBytes * o.gpuMemoryUtilization),
      weightBytesPerGpu: w.perGpu,
      activationBytesPerGpu: o.kvBudgetBytes !== null ? 0 : activationBytesPerGpu(spec, o),
      kvBudgetBytesPerGpu: base.kvBudgetBytesPerGpu,
    },
    variants,
    warnings: planWarnings(spec, o, base),
    assumptions: planAssumptions(spec, o),
  };
}

/**
 * Every byte count of the result must be an exact integer (below 2^53) and every time finite; a context, batch or
 * config so large that they are not is a user mistake, reported instead of printing rounded or infinite numbers.
 */
function checkExact(v: VariantPlan, o: ResolvedPlanOptions): void {
  const ints: [string, number][] = [
    ["kvBytesPerToken", v.kvBytesPerToken], ["kvCacheBytes", v.kvCacheBytes], ["kvCacheBytesAllGpus", v.kvCacheBytesAllGpus],
    ["weightBytes", v.weightBytes], ["kvBudgetBytesPerGpu", v.kvBudgetBytesPerGpu], ["decode.flopsPerStepPerGpu", v.decode.flopsPerStepPerGpu],
  ];
  for (const [key, n] of ints) {
    if (!Number.isSafeInteger(n)) {
      throw new UserError(
        `${v.label}: ${key} would be ${n.toExponential(3)}, beyond 2^53 (exact integers end there); ` +
          `expected a smaller --context (${o.context}), --batch (${o.batch}) or model`,
      );
    }
  }
  if (!Number.isFinite(v.decode.tokensPerSecond) || !Number.isFinite(v.maxConcurrency)) {
    throw new UserError(`${v.label}: the decode estimate is not finite; expected GPU figures in their documented ranges`);
  }
}

function planWarnings(spec: ModelSpec, o: ResolvedPlanOptions, base: VariantPlan): string[] {
  const out: string[] = [];
  if (o.context > spec.maxPositions) out.push(`context ${o.context} exceeds the model's max_position_embeddings ${spec.maxPositions}; quality beyond it is not guaranteed`);
  if (base.kvBudgetBytesPerGpu <= 0) out.push(`the weights (${(base.weightBytesPerGpu / GiB).toFixed(2)} GiB per GPU) plus activations leave no room for the KV cache on ${o.gpu.name} × ${o.tp}`);
  else if (!base.fits) out.push(`batch ${o.batch} × context ${o.context} does not fit: at most ${base.maxBatch} sequences of ${o.context} tokens, or ${base.maxContext} tokens for ${o.batch} sequences`);
  for (const k of o.kvHeads) {
    const problem = tpSplitProblem(withKvHeads(spec, k), o.tp);
    if (problem) out.push(`what-if ${kvHeadsLabel(spec.numHeads, k)} with tp ${o.tp}: ${problem.split(" (vLLM")[0]}; its per-GPU rows assume ⌈${k} / ${o.tp}⌉ KV heads per GPU`);
  }
  if (!spec.mla && o.tp > spec.numKvHeads) out.push(`tp ${o.tp} > ${spec.numKvHeads} KV heads: each GPU keeps a replica of 1 KV head (vLLM replicates), so the cache per GPU stops shrinking`);
  if (spec.mla && o.tp > 1) out.push(`MLA latent cache is replicated on every GPU under tensor parallelism`);
  for (const n of spec.notes ?? []) out.push(`config: ${n}`);
  return out;
}

function planAssumptions(spec: ModelSpec, o: ResolvedPlanOptions): string[] {
  const a = o.activation;
  const act = o.kvBudgetBytes !== null
    ? `KV budget per GPU given directly: ${o.kvBudgetBytes} bytes`
    : a.bytes !== null
      ? `activations + overhead per GPU given: ${a.bytes} bytes`
      : `activations: vLLM V1's profile over max_num_batched_tokens = ${a.tokens}, tokens × 2 B × (2 × hidden + 2 × MLP width / tp) + tokens × vocab × 4 B f32 logits, plus ${(a.overheadBytes / GiB).toFixed(2)} GiB non-torch memory per GPU; against vLLM logs this is within about ±0.5 GiB on H100 (docs/planner.md), the GPU's nominal memory exceeds what the driver exposes by ~1% (H100: 80 vs 79.18 GiB), and older engines (V0) or other servers differ: pass --activation-gib with your engine's figure`;
  return [
    `GPU memory ${(o.gpu.memoryBytes / GiB).toFixed(1)} GiB × gpu_memory_utilization ${o.gpuMemoryUtilization} (vLLM's rule)`,
    act,
    `weights in ${o.weightDtype} (norms and biases in ${o.weightDtype === "f32" || o.weightDtype === "f16" || o.weightDtype === "bf16" ? o.weightDtype : "their usual float type"}); tp splits Q/O/MLP/embeddings, KV projections keep max(KV heads / tp, 1) heads`,
    o.blockSize ? `paged cache: every sequence rounded up to blocks of ${o.blockSize} tokens` : "contiguous cache (no block rounding)",
    `decode roofline at ${o.context} cached tokens per sequence (the end of generation): bytes read / bandwidth vs FLOPs / dense bf16 peak`,
    ...(spec.mlp.numExperts > 1 ? [`MoE decode reads the expected distinct experts hit by the batch under uniform routing`] : []),
  ];
}
