// trainPlan(spec, options): memory per GPU and time for (up)training a model, e.g. an MHA model converted to
// GQA/MQA and uptrained (Ainslie et al. 2023). Pure: no fs, no node imports (the web page bundles it).
// Formulas and sources: docs/planner.md, "Training / uptraining".
//
// s sequence length (tokens), b micro-batch (sequences per GPU), E hidden, H query heads, K KV heads, D head dim,
// F MLP width, V vocab, L layers, Ψ parameters, N_d data-parallel GPUs (= gpus; no tensor or pipeline parallelism).
//
// Model states (ZeRO, Rajbhandari et al. 2020, §3 and Figure 1): mixed precision keeps 2Ψ fp16 weights, 2Ψ fp16
// gradients and KΨ optimizer bytes: adamw K = 12 (fp32 master, momentum, variance); adamw8bit K = 6 (fp32 master +
// 8-bit momentum and variance, Dettmers et al. 2022, plus one fp32 absmax per 2048-value block of each state);
// sgd K = 8 (fp32 master + fp32 momentum); lora: frozen fp16 base, adapters with the full adamw 16 bytes.
// Stage 1 splits the optimizer states over N_d GPUs, stage 2 also the gradients, stage 3 also the weights.
// Activations per layer (Korthikanti et al. 2022, Table 2 terms, generalised to GQA and gated MLPs; bytes):
//   attention 3sbE + 4sb·H·D + 4sb·K·D + 5·H·s²·b,  MLP 3sbE + 4sbF (gelu) or 8sbF (gated),  norms 2sbE each
//   (MHA, D = E/H, gelu F = 4E: sbE(34 + 5Hs/E), the paper's formula). Full checkpointing: 2sbE per layer + one layer.
// Logits: 4·s·b·V (fp32 for the loss). FLOPs per token: 6Ψ (full), 8Ψ with checkpointing; lora 4Ψ + 6Ψ_A (+2Ψ).
import { OptionError, UserError } from "../errors.js";
import type { LayerSpec, ModelSpec } from "../config/types.js";
import { attentionKind } from "../config/types.js";
import { kvHeadsLabel, parseKvHeads, withKvHeads } from "../config/variant.js";
import { gpuByName, type GpuSpec } from "./gpus.js";
import { paramCounts, tensorTable } from "./params.js";

const GiB = 1024 ** 3;

export const OPTIMIZERS = ["adamw", "adamw8bit", "sgd", "lora"] as const;
export type Optimizer = (typeof OPTIMIZERS)[number];
export const ZERO_STAGES = [0, 1, 2, 3] as const;
/** bitsandbytes' block size for its 8-bit optimizer states (Dettmers et al. 2022: blocks of 2048). */
export const BLOCKWISE_BLOCK = 2048;
/** The projections LoRA adapts: all four attention projections (tensor-table groups). */
export const LORA_TARGETS = ["q", "k", "v", "o"] as const;

export interface TrainOptions {
  optimizer?: Optimizer; // default "adamw"
  loraRank?: number; // adapter rank r with optimizer "lora", default 16
  zero?: number; // ZeRO stage 0..3, default 0
  checkpointing?: boolean; // full activation checkpointing (recompute every layer), default false
  flashAttention?: boolean; // fused attention (Dao et al. 2022): no s² score tensors stored, default false (the paper's count)
  microBatch?: number; // sequences per GPU per step, default 1
  seq?: number; // tokens per sequence, default 4096
  gpus?: number; // data-parallel GPUs (ZeRO's N_d), default 1
  gpu?: GpuSpec | string; // default "a100-80gb"
  tokens?: number | null; // training tokens for the time estimate, e.g. 1e11; null = no estimate
  mfu?: number; // model FLOPs utilisation in (0, 1], default 0.4
  overheadBytes?: number; // fixed per-GPU memory (CUDA context, NCCL), default 0.5 GiB
  kvHeads?: (number | string)[]; // variants: e.g. ["full", 8, 1]
}

export interface ResolvedTrainOptions {
  optimizer: Optimizer;
  loraRank: number | null;
  zero: number;
  checkpointing: boolean;
  flashAttention: boolean;
  microBatch: number;
  seq: number;
  gpus: number;
  gpu: GpuSpec;
  tokens: number | null;
  mfu: number;
  overheadBytes: number;
  kvHeads: number[];
}

/** Bytes per GPU, all integers. */
export interface TrainMemory {
  weights: number; // fp16 weights (lora: frozen base + adapters)
  gradients: number; // fp16 gradients of the trainable parameters
  optimizerStates: number; // fp32 master weights and moments of the trainable parameters
  activations: number; // the decoder layers' stored activations for the micro-batch
  logits: number; // fp32 logits for the loss: 4·s·b·V
  overhead: number; // CUDA context, NCCL
  total: number;
}

export interface TrainVariant {
  label: string; // "as configured", "MHA", "GQA-8", "MQA"
  attention: "mha" | "gqa" | "mqa" | "mla";
  numKvHeads: number;
  params: number; // all parameters Ψ
  trainableParams: number; // Ψ, or the adapters' Ψ_A with lora
  memory: TrainMemory; // per GPU at the requested micro-batch
  fits: boolean; // memory.total ≤ GPU memory
  maxMicroBatch: number; // largest micro-batch at `seq` tokens that fits (0: the model states alone do not)
  flopsPerToken: number; // training FLOPs per token (see trainFlopsPerToken)
  tokensPerSecond: number | null; // all GPUs at the given MFU; null when the GPU has no TFLOP/s figure
  hours: number | null; // for `tokens` tokens; null without tokens or TFLOP/s
}

export interface TrainPlanResult {
  model: { name: string; family: string; numLayers: number; hiddenSize: number; numHeads: number; numKvHeads: number; headDim: number; intermediateSize: number; mlpKind: string; vocabSize: number };
  options: ResolvedTrainOptions;
  gpu: GpuSpec;
  memoryBytesPerGpu: number;
  variants: TrainVariant[]; // [0] is the model as configured
  warnings: string[];
  assumptions: string[];
}

/** Optimizer bytes per trainable parameter (K in ZeRO's notation) besides the fp16 weight and gradient. */
export function optimizerBytesPerParam(optimizer: Optimizer): number {
  // adamw / lora adapters: fp32 master 4 + momentum 4 + variance 4; adamw8bit: master 4 + 8-bit m 1 + 8-bit v 1;
  // sgd: master 4 + momentum 4.
  return optimizer === "adamw8bit" ? 6 : optimizer === "sgd" ? 8 : 12;
}

export interface ModelStateBytes {
  weights: number;
  gradients: number;
  optimizerStates: number;
  total: number;
}

/**
 * Model-state bytes per GPU under ZeRO (Rajbhandari et al. 2020, Figure 1):
 *   weights 2Ψ_w / (N_d if stage 3), gradients 2Ψ_t / (N_d if stage ≥ 2), optimizer K·Ψ_t (+ extra) / (N_d if stage ≥ 1)
 * with Ψ_w every stored fp16 weight, Ψ_t the trainable ones and `extraOptimizerBytes` block-quantisation scales.
 * Each partitioned amount is rounded up (a GPU holds whole bytes).
 * @example modelStateBytes({ weightParams: 7.5e9, trainableParams: 7.5e9, optimizer: "adamw", zero: 1, gpus: 64 }).total // 31_406_250_000 (31.4 GB)
 */
export function modelStateBytes(o: { weightParams: number; trainableParams: number; optimizer: Optimizer; zero: number; gpus: number; extraOptimizerBytes?: number }): ModelStateBytes {
  const { weightParams, trainableParams, optimizer, zero, gpus } = o;
  const part = (bytes: number, stage: number) => (zero >= stage ? Math.ceil(bytes / gpus) : bytes);
  const weights = part(2 * weightParams, 3);
  const gradients = part(2 * trainableParams, 2);
  const optimizerStates = part(optimizerBytesPerParam(optimizer) * trainableParams + (o.extraOptimizerBytes ?? 0), 1);
  return { weights, gradients, optimizerStates, total: weights + gradients + optimizerStates };
}

/** The MLP width one token passes through on layer i: F, or (top-k + shared) × expert width on MoE layers. */
function mlpWidth(spec: ModelSpec, i: number): number {
  const { numExperts, expertsPerToken, sharedExperts, moeIntermediateSize, intermediateSize, firstDenseLayers } = spec.mlp;
  const step = spec.mlp.moeLayerStep ?? 1;
  if (numExperts > 1 && i >= firstDenseLayers && (i + 1) % step === 0) return (expertsPerToken + sharedExperts) * (moeIntermediateSize ?? intermediateSize);
  return intermediateSize;
}

/**
 * Stored activation bytes of one decoder layer for b sequences of s tokens, without recomputation and without
 * tensor parallelism: Korthikanti et al. 2022, §4.1, with each term written for GQA and the model's MLP:
 *   attention: 2sbE (Q/K/V input) + 2sb·HD (Q) + 2sb·KD (K) + 2sb·KD (V) + 2sb·HD (output-projection input) + sbE
 *              (output dropout mask) + 2Hs²b (softmax output) + Hs²b (its dropout mask) + 2Hs²b (dropout output)
 *   MLP:       2sbE (input) + sbE (dropout mask) + gelu: 2sbF (activation input) + 2sbF (activation output)
 *              gated: 2sbF (gate) + 2sbF (up) + 2sbF (activation output) + 2sbF (product, the down-projection input)
 *   norms:     2sbE per norm (their inputs)
 * MHA with D = E/H, 2 norms and a 4E gelu MLP gives sbE(34 + 5Hs/E), the paper's formula.
 * flashAttention: FlashAttention (Dao et al. 2022) keeps no s² tensors, only the fp32 softmax log-sum-exp per query
 * and head (4·H·s·b) and regenerates the dropout mask, so 5Hs²b becomes 4Hsb.
 * @example activationBytesPerLayer(gpt2, 0, { seq: 1024, microBatch: 1 }) // 1024·768·(34 + 5·12·1024/768) = 89_653_248
 */
export function activationBytesPerLayer(spec: ModelSpec, layerIndex: number, o: { seq: number; microBatch: number; flashAttention?: boolean }): number {
  const { seq: s, microBatch: b } = o;
  const E = spec.hiddenSize;
  const { numHeads: H, numKvHeads: K, headDim: D }: LayerSpec = spec.layers[layerIndex];
  const F = mlpWidth(spec, layerIndex);
  const gated = spec.mlp.kind === "swiglu" || spec.mlp.kind === "geglu";
  const sb = s * b;
  const scores = o.flashAttention ? 4 * H * s * b : 5 * H * s * s * b;
  const attention = 3 * sb * E + 4 * sb * H * D + 4 * sb * K * D + scores;
  const mlp = 3 * sb * E + (gated ? 8 : 4) * sb * F;
  const norms = (spec.normsPerLayer ?? 2) * 2 * sb * E;
  return attention + mlp + norms;
}

/**
 * Stored activation bytes of all layers: Σ layers without recomputation; with full checkpointing the layer inputs
 * 2sbE × L (Korthikanti et al. 2022, full recomputation) plus one layer's full activations, rebuilt during its backward.
 */
export function activationBytes(spec: ModelSpec, o: { seq: number; microBatch: number; checkpointing: boolean; flashAttention?: boolean }): number {
  const perLayer = spec.layers.map((_, i) => activationBytesPerLayer(spec, i, o));
  if (!o.checkpointing) return perLayer.reduce((a, x) => a + x, 0);
  return spec.numLayers * 2 * o.seq * o.microBatch * spec.hiddenSize + Math.max(...perLayer);
}

/** fp32 logits of the micro-batch for the cross-entropy loss: 4·s·b·V (Korthikanti et al. 2022). */
export function logitsBytes(spec: ModelSpec, o: { seq: number; microBatch: number }): number {
  return 4 * o.seq * o.microBatch * spec.vocabSize;
}

/** LoRA adapter parameters: r·(in + out) for each adapted matrix (q, k, v, o projections of every layer). */
export function loraParams(spec: ModelSpec, rank: number): number {
  return tensorTable(spec)
    .filter((t) => t.shape.length === 2 && (LORA_TARGETS as readonly string[]).includes(t.group))
    .reduce((a, t) => a + rank * (t.shape[0] + t.shape[1]) * (t.count ?? 1), 0);
}

/** One fp32 absmax per 2048-value block of each of the two 8-bit Adam states, block-wise per tensor (Dettmers et al. 2022). */
function blockwiseScaleBytes(spec: ModelSpec): number {
  return tensorTable(spec).reduce((a, t) => a + 2 * 4 * Math.ceil(t.shape.reduce((x, y) => x * y, 1) / BLOCKWISE_BLOCK) * (t.count ?? 1), 0);
}

/**
 * Training FLOPs per token: full fine-tune 6Ψ (forward 2Ψ + backward 4Ψ, Kaplan et al. 2020; Narayanan et al. 2021
 * eq. 3 without the attention term), 8Ψ with full checkpointing (one more forward); lora 4Ψ + 6Ψ_A: the frozen base
 * still runs forward (2Ψ) and back-propagates activation gradients (2Ψ) but computes no weight gradients, +2Ψ with
 * checkpointing. Ψ is the parameters a token uses (MoE: the active ones).
 */
export function trainFlopsPerToken(o: { activeParams: number; adapterParams: number; optimizer: Optimizer; checkpointing: boolean }): number {
  const N = o.activeParams;
  const recompute = o.checkpointing ? 2 * N : 0;
  if (o.optimizer === "lora") return 4 * N + 6 * o.adapterParams + recompute;
  return 6 * N + recompute;
}

function intOption(value: unknown, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new OptionError(field, `${field}: ${String(value)} is not an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`}`);
  }
  return value;
}

/** Fills defaults and validates every option (OptionError naming the field). */
export function resolveTrainOptions(spec: ModelSpec, options: TrainOptions = {}): ResolvedTrainOptions {
  const optimizer = options.optimizer ?? "adamw";
  if (!(OPTIMIZERS as readonly string[]).includes(optimizer)) throw new OptionError("optimizer", `optimizer: "${optimizer}" is not one of ${OPTIMIZERS.join(", ")}`);
  if (options.loraRank !== undefined && optimizer !== "lora") throw new OptionError(["loraRank", "optimizer"], `loraRank: applies only with optimizer lora (got optimizer ${optimizer})`);
  const loraRank = optimizer === "lora" ? intOption(options.loraRank ?? 16, "loraRank", 1, Math.min(spec.hiddenSize, 65536)) : null;
  const zero = intOption(options.zero ?? 0, "zero", 0, 3);
  const mfu = options.mfu ?? 0.4;
  if (typeof mfu !== "number" || !(mfu > 0 && mfu <= 1)) throw new OptionError("mfu", `mfu: ${mfu} is not a fraction in (0, 1]`);
  const tokens = options.tokens ?? null;
  if (tokens !== null && !(typeof tokens === "number" && tokens > 0 && tokens <= 1e18)) throw new OptionError("tokens", `tokens: ${tokens} is not a number of tokens in (0, 1e18]`);
  const overheadBytes = options.overheadBytes ?? 0.5 * GiB;
  if (!(overheadBytes >= 0 && overheadBytes <= Number.MAX_SAFE_INTEGER)) throw new OptionError("overheadBytes", `overheadBytes: ${overheadBytes} is not in [0, 2^53]`);
  const gpu = typeof options.gpu === "string" ? gpuByName(options.gpu) : options.gpu ?? gpuByName("a100-80gb");
  const kvHeads = (options.kvHeads ?? []).map((k) => parseKvHeads(k, spec.numHeads));
  return {
    optimizer,
    loraRank,
    zero,
    checkpointing: options.checkpointing ?? false,
    flashAttention: options.flashAttention ?? false,
    microBatch: intOption(options.microBatch ?? 1, "microBatch", 1),
    seq: intOption(options.seq ?? 4096, "seq", 1),
    gpus: intOption(options.gpus ?? 1, "gpus", 1),
    gpu,
    tokens,
    mfu,
    overheadBytes: Math.round(overheadBytes),
    kvHeads: [...new Set(kvHeads)],
  };
}

function trainVariant(spec: ModelSpec, label: string, o: ResolvedTrainOptions): TrainVariant {
  const counts = paramCounts(spec);
  const lora = o.optimizer === "lora";
  const adapters = lora ? loraParams(spec, o.loraRank!) : 0;
  const states = modelStateBytes({
    weightParams: counts.total + adapters,
    trainableParams: lora ? adapters : counts.total,
    optimizer: o.optimizer,
    zero: o.zero,
    gpus: o.gpus,
    extraOptimizerBytes: o.optimizer === "adamw8bit" ? blockwiseScaleBytes(spec) : 0,
  });
  const at = (b: number) => ({ seq: o.seq, microBatch: b, checkpointing: o.checkpointing, flashAttention: o.flashAttention });
  const activations = activationBytes(spec, at(o.microBatch));
  const logits = logitsBytes(spec, at(o.microBatch));
  const total = states.total + activations + logits + o.overheadBytes;
  const memory: TrainMemory = { weights: states.weights, gradients: states.gradients, optimizerStates: states.optimizerStates, activations, logits, overhead: o.overheadBytes, total };
  for (const [key, n] of Object.entries(memory)) {
    if (!Number.isSafeInteger(n)) throw new UserError(`trainPlan: ${label}: memory.${key} would be ${n.toExponential(3)} bytes, beyond 2^53; expected a smaller seq (${o.seq}) or microBatch (${o.microBatch})`);
  }
  // Activations and logits are linear in b, so the largest micro-batch is one division.
  const perSequence = activationBytes(spec, at(1)) + logitsBytes(spec, at(1));
  const room = o.gpu.memoryBytes - states.total - o.overheadBytes;
  const flopsPerToken = trainFlopsPerToken({ activeParams: counts.active, adapterParams: adapters, optimizer: o.optimizer, checkpointing: o.checkpointing });
  const flopsPerSecond = o.gpu.tflopsBf16 ? o.gpus * o.gpu.tflopsBf16 * 1e12 * o.mfu : null;
  const tokensPerSecond = flopsPerSecond ? flopsPerSecond / flopsPerToken : null;
  return {
    label,
    attention: attentionKind(spec),
    numKvHeads: spec.numKvHeads,
    params: counts.total,
    trainableParams: lora ? adapters : counts.total,
    memory,
    fits: total <= o.gpu.memoryBytes,
    maxMicroBatch: room > 0 ? Math.floor(room / perSequence) : 0,
    flopsPerToken: Math.round(flopsPerToken),
    tokensPerSecond,
    hours: tokensPerSecond && o.tokens !== null ? o.tokens / tokensPerSecond / 3600 : null,
  };
}

/**
 * Memory per GPU by component, whether it fits, the largest micro-batch and the training time, for the model as
 * configured and each KV-head variant (the GQA/MQA conversions one would uptrain). Formulas: the file comment.
 * @example trainPlan(presetSpec("llama-2-7b"), { zero: 2, gpus: 8, gpu: "h100-sxm", kvHeads: [8] }).variants[1].label // "GQA-8"
 */
export function trainPlan(spec: ModelSpec, options: TrainOptions = {}): TrainPlanResult {
  if (spec.mla) throw new UserError(`trainPlan: ${spec.name} uses MLA attention, whose activations this planner does not model; expected a model with per-head K/V (MHA, GQA or MQA)`);
  const o = resolveTrainOptions(spec, options);
  const base = trainVariant(spec, "as configured", o);
  const variants = o.kvHeads.map((k) => trainVariant(withKvHeads(spec, k), kvHeadsLabel(spec.numHeads, k), o));
  const all = [base, ...variants];
  const warnings: string[] = [];
  if (o.seq > spec.maxPositions) warnings.push(`seq ${o.seq} exceeds the model's max_position_embeddings ${spec.maxPositions}`);
  if (o.zero > 0 && o.gpus === 1) warnings.push(`ZeRO stage ${o.zero} on 1 GPU partitions nothing`);
  for (const v of all) if (!v.fits) warnings.push(`${v.label}: ${(v.memory.total / GiB).toFixed(2)} GiB per GPU does not fit in ${(o.gpu.memoryBytes / GiB).toFixed(0)} GiB (${v.maxMicroBatch ? `at most micro-batch ${v.maxMicroBatch}` : v.memory.weights + v.memory.gradients + v.memory.optimizerStates + v.memory.overhead > o.gpu.memoryBytes ? "the model states alone do not fit" : `not even micro-batch 1 at seq ${o.seq}`})`);
  if (!o.gpu.tflopsBf16) warnings.push(`${o.gpu.name} has no TFLOP/s figure: no time estimate`);
  return {
    model: {
      name: spec.name, family: spec.family, numLayers: spec.numLayers, hiddenSize: spec.hiddenSize, numHeads: spec.numHeads, numKvHeads: spec.numKvHeads,
      headDim: spec.headDim, intermediateSize: spec.mlp.intermediateSize, mlpKind: spec.mlp.kind, vocabSize: spec.vocabSize,
    },
    options: o,
    gpu: o.gpu,
    memoryBytesPerGpu: o.gpu.memoryBytes,
    variants: all,
    warnings,
    assumptions: trainAssumptions(spec, o),
  };
}

function trainAssumptions(spec: ModelSpec, o: ResolvedTrainOptions): string[] {
  const K = optimizerBytesPerParam(o.optimizer);
  const states = {
    adamw: "AdamW in mixed precision: 2 B fp16 weight + 2 B fp16 gradient + 12 B (fp32 master, momentum, variance) = 16 B per parameter (ZeRO, Rajbhandari et al. 2020)",
    adamw8bit: "8-bit AdamW: 2 B fp16 weight + 2 B fp16 gradient + 4 B fp32 master + 1 B + 1 B block-wise 8-bit moments (+ one fp32 absmax per 2048 values per state) = 10 B per parameter (Dettmers et al. 2022)",
    sgd: "SGD with momentum: 2 B fp16 weight + 2 B fp16 gradient + 4 B fp32 master + 4 B fp32 momentum = 12 B per parameter",
    lora: `LoRA rank ${o.loraRank} on the q, k, v and o projections (r·(in + out) per matrix): frozen 2 B fp16 base weights; the adapters carry 2 + 2 + 12 = 16 B each (Hu et al. 2021; AdamW as above)`,
  }[o.optimizer];
  const zero = o.zero === 0 ? "no ZeRO: every GPU holds all model states" : `ZeRO stage ${o.zero} over ${o.gpus} GPUs: ${["", "optimizer states", "optimizer states and gradients", "optimizer states, gradients and weights"][o.zero]} partitioned (K = ${K})`;
  const act = o.checkpointing
    ? "activations with full checkpointing: 2·s·b·E per layer (the layer inputs) + one layer's full activations during its recompute (Korthikanti et al. 2022)"
    : `activations without recomputation: Korthikanti et al. 2022's per-layer terms (sbE(34 + 5as/E) for MHA with a 4E GELU MLP), with K/V terms scaled to the KV heads and the MLP terms to F = ${spec.mlp.intermediateSize} (${spec.mlp.kind}); dropout masks counted as in the paper`;
  const scores = o.flashAttention
    ? "attention: FlashAttention (Dao et al. 2022) stores no s² scores, only the fp32 log-sum-exp (4·H·s·b per layer)"
    : "attention: softmax scores, their dropout mask and output stored (5·H·s²·b per layer, no FlashAttention)";
  const flops = o.optimizer === "lora"
    ? `FLOPs per token 4Ψ + 6Ψ_adapters${o.checkpointing ? " + 2Ψ (recompute)" : ""}: the frozen base runs forward and back-propagates activation gradients but computes no weight gradients`
    : `FLOPs per token ${o.checkpointing ? "8Ψ (6Ψ + one recomputed forward)" : "6Ψ"} (Kaplan et al. 2020; Narayanan et al. 2021), attention-score FLOPs left out`;
  return [
    states,
    zero,
    act,
    scores,
    "logits: 4·s·b·V bytes (fp32 for the cross-entropy loss); CUDA context/NCCL overhead " + `${(o.overheadBytes / GiB).toFixed(2)} GiB; communication buffers and allocator fragmentation not counted`,
    flops + `; time = tokens × FLOPs per token / (${o.gpus} GPUs × ${o.gpu.tflopsBf16 ?? "?"} dense bf16 TFLOP/s × MFU ${o.mfu})`,
    "fits = total per GPU ≤ the GPU's nominal memory (the driver exposes about 1% less)",
  ];
}
