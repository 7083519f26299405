// `mqa plan`: exact KV-cache and memory planning. Parses flags, calls the planner, prints tables or JSON
// and writes charts. All arithmetic lives in src/planner/.
import type { Command } from "commander";
import { UserError } from "../errors.js";
import { choiceFlag, intFlag, numFlag } from "./flags.js";
import { buildChart, chartKindFromPath, CHART_KINDS } from "../planner/charts.js";
import { customGpu, gpuByName, listGpus, type GpuSpec } from "../planner/gpus.js";
import { plan, type PlanResult, type VariantPlan } from "../planner/plan.js";
import { OPTIMIZERS, trainPlan, type TrainPlanResult } from "../planner/train.js";
import { deployCommand, parseEngine } from "../planner/deploy.js";
import { loadSpec } from "../formats/model-file.js";
import { deployModelRef, formatDeploy } from "./deploy.js";
import { listPresets, presetSpec } from "../config/presets.js";
import type { ModelSpec } from "../config/types.js";

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const POSITIVE = { min: 0, minOpen: true };

interface PlanFlags {
  model: string;
  context: string;
  batch: string;
  kvDtype: string;
  weightDtype: string;
  gpu?: string;
  gpuMemoryGib?: string;
  gpuBandwidthGbs?: string;
  gpuTflops?: string;
  gpus?: string;
  tp?: string;
  blockSize: string;
  gpuMemoryUtilization: string;
  kvHeads?: string;
  chart: string[];
  activationTokens?: string;
  overheadGib: string;
  activationGib?: string;
  window: boolean;
  json?: boolean;
  listModels?: boolean;
  listGpus?: boolean;
  train?: boolean;
  optimizer: string;
  loraRank?: string;
  zero: string;
  checkpointing?: boolean;
  flashAttention?: boolean;
  microBatch: string;
  seq: string;
  tokens?: string;
  mfu: string;
  engine?: string;
}

export function register(program: Command): void {
  program
    .command("plan")
    .description("Exact KV-cache and memory plan for a model on a GPU, with MHA/GQA/MQA what-ifs and charts (formulas, sources and the budget model's measured error: docs/planner.md)")
    .option("--model <name|path>", "preset name, config.json, model folder or .gguf file", "llama-2-7b")
    .option("--context <tokens>", "tokens per sequence (a k suffix multiplies by 1024: 32k = 32768)", "4096")
    .option("--batch <n>", "concurrent sequences", "1")
    .option("--kv-dtype <type>", "KV cache type: f32, f16, bf16, fp8, int8, q8_0, q4_0", "f16")
    .option("--weight-dtype <type>", "weight type: f32, f16, bf16, fp8, int8, q8_0, q4_0, q4_k, q6_k", "bf16")
    .option("--gpu <name>", "GPU from the catalog (see --list-gpus); default a100-80gb")
    .option("--gpu-memory-gib <GiB>", "custom GPU memory (overrides the named GPU's)")
    .option("--gpu-bandwidth-gbs <GB/s>", "custom GPU memory bandwidth in GB/s")
    .option("--gpu-tflops <TFLOP/s>", "custom GPU dense bf16 TFLOP/s")
    .option("--gpus <n>", "total GPUs (gpus / tp data-parallel replicas); default = tp")
    .option("--tp <n>", "tensor-parallel degree; default = gpus")
    .option("--block-size <tokens>", "paged-cache block size in tokens (0 = contiguous)", "16")
    .option("--gpu-memory-utilization <fraction>", "vLLM's fraction of GPU memory the engine may use", "0.9")
    .option("--kv-heads <list>", "what-ifs: comma list of KV head counts, full (MHA), mqa; e.g. full,8,1 (default full,mqa)")
    .option("--chart <path>", "write a chart (repeatable); kind from the name: cache-vs-context, heatmap, throughput; .svg or .png", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--activation-tokens <n>", "tokens in the activation profiling pass (vLLM max_num_batched_tokens; default 8192 on GPUs with >= 70 GiB, else 2048)")
    .option("--overhead-gib <GiB>", "fixed per-GPU non-torch memory (CUDA context, NCCL)", "0.5")
    .option("--activation-gib <GiB>", "measured activations + overhead per GPU; replaces the activation model")
    .option("--no-window", "ignore sliding windows (cache every token on every layer)")
    .option("--engine <name>", "also print the command that serves this plan on vllm or llama.cpp, each flag with its meaning and source (JSON: deploy)")
    .option("--json", "print one JSON object")
    .option("--list-models", "list the model presets")
    .option("--list-gpus", "list the GPU catalog")
    .option("--train", "training / uptraining plan instead of serving: memory per GPU by component, max micro-batch, hours (docs/planner.md)")
    .option("--optimizer <name>", `with --train: ${OPTIMIZERS.join(", ")}`, "adamw")
    .option("--lora-rank <r>", "with --train --optimizer lora: adapter rank on the q, k, v, o projections (default 16)")
    .option("--zero <stage>", "with --train: ZeRO stage 0-3 over --gpus data-parallel GPUs", "0")
    .option("--checkpointing", "with --train: full activation checkpointing (store layer inputs, recompute)")
    .option("--flash-attention", "with --train: fused attention, no s x s scores stored (default: the paper's count with scores)")
    .option("--micro-batch <n>", "with --train: sequences per GPU per step", "1")
    .option("--seq <tokens>", "with --train: tokens per training sequence (k suffix: 4k = 4096)", "4096")
    .option("--tokens <n>", "with --train: training tokens for the time estimate, e.g. 1e11")
    .option("--mfu <fraction>", "with --train: model FLOPs utilisation in (0, 1]", "0.4")
    .action(async (flags: PlanFlags) => {
      if (flags.listModels) return printModels(flags.json === true);
      if (flags.listGpus) return printGpus(flags.json === true);
      if (flags.train) return runTrainPlan(flags);
      await runPlan(flags);
    });
}

function resolveGpu(flags: PlanFlags): GpuSpec {
  const custom = flags.gpuMemoryGib !== undefined || flags.gpuBandwidthGbs !== undefined || flags.gpuTflops !== undefined;
  if (!custom) return gpuByName(flags.gpu ?? "a100-80gb");
  if (flags.gpu === undefined && (flags.gpuMemoryGib === undefined || flags.gpuBandwidthGbs === undefined)) {
    throw new UserError("a custom GPU needs --gpu-memory-gib and --gpu-bandwidth-gbs (or --gpu NAME to start from)");
  }
  const base = flags.gpu !== undefined ? gpuByName(flags.gpu) : null;
  return customGpu({
    memoryGiB: flags.gpuMemoryGib !== undefined ? numFlag("--gpu-memory-gib", flags.gpuMemoryGib, POSITIVE) : base!.memoryBytes / GiB,
    bandwidthGBs: flags.gpuBandwidthGbs !== undefined ? numFlag("--gpu-bandwidth-gbs", flags.gpuBandwidthGbs, POSITIVE) : base!.bandwidthBytesPerSecond / 1e9,
    tflops: flags.gpuTflops !== undefined ? numFlag("--gpu-tflops", flags.gpuTflops, POSITIVE) : base?.tflopsBf16 ?? null,
    name: base ? `${base.name} (modified)` : undefined,
  });
}

async function runPlan(flags: PlanFlags): Promise<void> {
  const charts = flags.chart.map((path) => {
    const kind = chartKindFromPath(path);
    if (!kind) throw new UserError(`--chart ${path}: cannot tell the chart kind from the file name; include one of ${CHART_KINDS.join(", ")}`);
    if (!/\.(svg|png)$/i.test(path)) throw new UserError(`--chart ${path}: expected a .svg or .png file name`);
    return { path, kind };
  });
  const engine = flags.engine !== undefined ? parseEngine(flags.engine) : null;
  const spec = await loadSpec(flags.model);
  const tp = flags.tp !== undefined ? intFlag("--tp", flags.tp) : undefined;
  const gpus = flags.gpus !== undefined ? intFlag("--gpus", flags.gpus) : undefined;
  const blockSize = intFlag("--block-size", flags.blockSize, { min: 0 });
  const result = plan(spec, {
    context: intFlag("--context", flags.context, { k: true }),
    batch: intFlag("--batch", flags.batch),
    kvDtype: flags.kvDtype,
    weightDtype: flags.weightDtype,
    gpu: resolveGpu(flags),
    gpus,
    tp,
    blockSize: blockSize === 0 ? null : blockSize,
    gpuMemoryUtilization: numFlag("--gpu-memory-utilization", flags.gpuMemoryUtilization, { ...POSITIVE, max: 1 }),
    activation: {
      tokens: flags.activationTokens !== undefined ? intFlag("--activation-tokens", flags.activationTokens, { min: 0, k: true }) : undefined,
      overheadBytes: Math.round(numFlag("--overhead-gib", flags.overheadGib, { min: 0 }) * GiB),
      bytes: flags.activationGib !== undefined ? Math.round(numFlag("--activation-gib", flags.activationGib, { min: 0 }) * GiB) : null,
    },
    // Without --kv-heads the what-if table shows the model as MHA and as MQA beside its own configuration.
    kvHeads: flags.kvHeads ? flags.kvHeads.split(",").map((s) => s.trim()).filter(Boolean) : ["full", "mqa"],
    applyWindow: flags.window,
  });
  const { renderChartFile } = charts.length ? await import("../planner/render.js") : { renderChartFile: null };
  for (const c of charts) await renderChartFile!(buildChart(c.kind, spec, result), c.path);
  const deploy = engine ? deployCommand(result, { engine, ...deployModelRef(flags.model) }) : null;
  for (const w of [...result.warnings, ...(deploy?.warnings ?? [])]) console.error(`mqa: warning: ${w}`);
  if (flags.json) {
    console.log(JSON.stringify({ ...result, charts: charts.map((c) => ({ path: c.path, kind: c.kind })), ...(deploy ? { deploy } : {}) }, null, 2));
    return;
  }
  console.log(formatPlan(spec, result));
  if (deploy) console.log(`\n${formatDeploy(deploy)}`);
  for (const c of charts) console.log(`wrote ${c.kind} chart: ${c.path}`);
}

async function runTrainPlan(flags: PlanFlags): Promise<void> {
  if (flags.engine !== undefined) throw new UserError("--engine: the deploy command is for the serving plan; expected no --engine with --train");
  if (flags.tp !== undefined) throw new UserError("--tp: the training plan models data parallelism (ZeRO over --gpus) only; expected no --tp with --train");
  if (flags.chart.length) throw new UserError("--chart: charts are for the serving plan; expected no --chart with --train");
  // Serving's sequence flags would be silently ignored; training has its own (--seq, --micro-batch).
  if (flags.context !== "4096") throw new UserError(`--context: a serving flag; with --train give the training sequence length as --seq ${flags.context}`);
  if (flags.batch !== "1") throw new UserError(`--batch: a serving flag; with --train give sequences per GPU as --micro-batch ${flags.batch}`);
  const optimizer = choiceFlag("--optimizer", flags.optimizer, OPTIMIZERS);
  if (flags.loraRank !== undefined && optimizer !== "lora") throw new UserError(`--lora-rank: applies only with --optimizer lora (got --optimizer ${optimizer})`);
  const spec = await loadSpec(flags.model);
  const result = trainPlan(spec, {
    optimizer,
    loraRank: flags.loraRank !== undefined ? intFlag("--lora-rank", flags.loraRank, { max: spec.hiddenSize }) : undefined,
    zero: intFlag("--zero", flags.zero, { min: 0, max: 3 }),
    checkpointing: flags.checkpointing === true,
    flashAttention: flags.flashAttention === true,
    microBatch: intFlag("--micro-batch", flags.microBatch),
    seq: intFlag("--seq", flags.seq, { k: true }),
    gpus: flags.gpus !== undefined ? intFlag("--gpus", flags.gpus) : 1,
    gpu: resolveGpu(flags),
    tokens: flags.tokens !== undefined ? numFlag("--tokens", flags.tokens, POSITIVE) : null,
    mfu: numFlag("--mfu", flags.mfu, { ...POSITIVE, max: 1 }),
    overheadBytes: Math.round(numFlag("--overhead-gib", flags.overheadGib, { min: 0, max: 1e6 }) * GiB),
    kvHeads: flags.kvHeads ? flags.kvHeads.split(",").map((s) => s.trim()).filter(Boolean) : ["full", "mqa"],
  });
  for (const w of result.warnings) console.error(`mqa: warning: ${w}`);
  if (flags.json) return void console.log(JSON.stringify(result, null, 2));
  console.log(formatTrainPlan(result));
}

function formatTrainPlan(r: TrainPlanResult): string {
  const o = r.options;
  const m = r.model;
  const rows = r.variants;
  const out: string[] = [];
  out.push(`${m.name} (${m.family}): ${m.numLayers} layers, hidden ${m.hiddenSize}, ${m.numHeads} query heads, ${m.numKvHeads} KV heads, head dim ${m.headDim}, ${m.mlpKind} MLP ${m.intermediateSize}`);
  const opt = o.optimizer === "lora" ? `lora rank ${o.loraRank}` : o.optimizer;
  out.push(`training on ${o.gpus} × ${o.gpu.name} (${formatBytes(o.gpu.memoryBytes)}); ${opt}, ZeRO ${o.zero}${o.checkpointing ? ", full checkpointing" : ""}${o.flashAttention ? ", FlashAttention" : ""}; micro-batch ${o.microBatch} × ${int(o.seq)} tokens`);
  out.push("");
  const label = (i: number) => (i === 0 ? `as configured (${rows[0].attention.toUpperCase()})` : rows[i].label);
  const line = (name: string, get: (v: TrainPlanResult["variants"][number]) => string) => [name, ...rows.map(get)];
  const mem = (key: keyof TrainPlanResult["variants"][number]["memory"]) => (v: TrainPlanResult["variants"][number]) => formatBytes(v.memory[key]);
  out.push(table(["Per GPU", ...rows.map((_, i) => label(i))], [
    line("parameters", (v) => int(v.params)),
    line("trainable parameters", (v) => int(v.trainableParams)),
    line("weights", mem("weights")),
    line("gradients", mem("gradients")),
    line("optimizer states", mem("optimizerStates")),
    line(`activations (b ${o.microBatch})`, mem("activations")),
    line("logits (fp32)", mem("logits")),
    line("overhead", mem("overhead")),
    line("total", mem("total")),
    line("total (bytes)", (v) => int(v.memory.total)),
    line(`fits in ${formatBytes(o.gpu.memoryBytes)}`, (v) => (v.fits ? "yes" : "no")),
    line(`max micro-batch at ${int(o.seq)} tokens`, (v) => int(v.maxMicroBatch)),
    line("training FLOPs per token", (v) => v.flopsPerToken.toExponential(3)),
    line(`tokens/s (${o.gpus} GPUs, MFU ${o.mfu})`, (v) => (v.tokensPerSecond === null ? "-" : int(Math.round(v.tokensPerSecond)))),
    line(o.tokens !== null ? `hours for ${o.tokens.toExponential(2)} tokens` : "hours (give --tokens)", (v) => (v.hours === null ? "-" : v.hours.toFixed(1))),
  ]));
  out.push("");
  out.push("Assumptions:");
  for (const a of r.assumptions) out.push(`  - ${a}`);
  return out.join("\n");
}

/** 1536 → "1.50 KiB"; binary units, labelled. */
export function formatBytes(bytes: number): string {
  const a = Math.abs(bytes);
  if (a >= GiB) return `${(bytes / GiB).toFixed(2)} GiB`;
  if (a >= MiB) return `${(bytes / MiB).toFixed(2)} MiB`;
  if (a >= KiB) return `${(bytes / KiB).toFixed(2)} KiB`;
  return `${bytes} B`;
}

const int = (n: number) => n.toLocaleString("en-US");

/** The first `leftColumns` columns left-aligned (names), the rest right-aligned (numbers). */
export function table(header: string[], rows: string[][], leftColumns = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

function formatPlan(spec: ModelSpec, r: PlanResult): string {
  const o = r.options;
  const m = r.model;
  const attn = m.mla
    ? `MLA (latent ${m.mla.kvLoraRank} + rope ${m.mla.qkRopeHeadDim} per token and layer)`
    : `${m.attention.toUpperCase()}: ${m.numHeads} query heads, ${m.numKvHeads} KV heads, head dim ${m.headDim}`;
  const windows = m.slidingLayers ? `; ${m.slidingLayers} of ${m.numLayers} layers slide over ${m.window} tokens` : "";
  const out: string[] = [];
  out.push(`${m.name} (${m.family}): ${m.numLayers} layers, hidden ${m.hiddenSize}, ${attn}${windows}`);
  out.push(`on ${o.gpus} × ${o.gpu.name} (tp ${o.tp}, ${o.replicas} replica${o.replicas > 1 ? "s" : ""}); context ${int(o.context)} tokens, batch ${o.batch}; KV ${o.kvDtype}, weights ${o.weightDtype}; block ${o.blockSize ?? "contiguous"}`);
  out.push("");
  out.push(table(["KV cache", "bytes", "binary"], [
    ["per token (all layers)", int(r.kvBytesPerToken), formatBytes(r.kvBytesPerToken)],
    [`per token per GPU (tp ${o.tp}, ${r.attention === "mla" ? "latent replicated" : `${r.kvHeadsPerGpu} KV head${r.kvHeadsPerGpu > 1 ? "s" : ""}/GPU`})`, int(r.kvBytesPerTokenPerGpu), formatBytes(r.kvBytesPerTokenPerGpu)],
    [`per sequence (${int(o.context)} tokens)`, int(r.kvBytesPerSequence), formatBytes(r.kvBytesPerSequence)],
    [`whole cache (batch ${o.batch})`, int(r.kvCacheBytes), formatBytes(r.kvCacheBytes)],
    ["per GPU", int(r.kvCacheBytesPerGpu), formatBytes(r.kvCacheBytesPerGpu)],
  ]));
  out.push("");
  out.push(table(["Memory per GPU", "bytes", "binary"], [
    ["total", int(r.memory.totalBytesPerGpu), formatBytes(r.memory.totalBytesPerGpu)],
    [`usable (x ${o.gpuMemoryUtilization})`, int(r.memory.usableBytesPerGpu), formatBytes(r.memory.usableBytesPerGpu)],
    [`weights (${o.weightDtype}, of ${formatBytes(r.weightBytes)} total)`, int(r.memory.weightBytesPerGpu), formatBytes(r.memory.weightBytesPerGpu)],
    ["activations + overhead", int(r.memory.activationBytesPerGpu), formatBytes(r.memory.activationBytesPerGpu)],
    ["KV budget", int(r.kvBudgetBytesPerGpu), formatBytes(r.kvBudgetBytesPerGpu)],
  ]));
  out.push("");
  const maxCtx = r.maxContextUnbounded ? `unbounded (windowed)` : int(r.maxContext);
  out.push(table(["Capacity", "value"], [
    [`max batch at ${int(o.context)} tokens`, int(r.maxBatch)],
    [`max context at batch ${o.batch}`, maxCtx],
    [`paged blocks per GPU (${o.blockSize ?? 1} tokens each)`, int(r.numBlocks)],
    [`max concurrency at ${int(o.context)} tokens (vLLM)`, `${r.maxConcurrency.toFixed(2)}x`],
    [`decode at batch ${o.batch} (roofline, ${r.decode.bound}-bound)`, `${r.decode.tokensPerSecond.toFixed(1)} tokens/s`],
    [`prefill of ${r.prefill.promptTokens} tokens = time to first token (roofline, ${r.prefill.bound}-bound)`, `${r.prefill.seconds.toFixed(3)} s (${Math.round(r.prefill.tokensPerSecond)} tokens/s)`],
  ]));
  out.push("");
  out.push(formatParams(r));
  if (r.variants.length) {
    out.push("");
    out.push(formatVariants(r, [r, ...r.variants]));
  }
  out.push("");
  out.push("Assumptions:");
  for (const a of r.assumptions) out.push(`  - ${a}`);
  return out.join("\n");
}

function formatParams(r: PlanResult): string {
  const p = r.params;
  const wb = r.weightBytesByGroup;
  const rows: [string, number, number][] = [
    ["Q projections", p.q, wb.q],
    ["K projections", p.k, wb.k],
    ["V projections", p.v, wb.v],
    ["O projections", p.o, wb.o],
    [r.model.numExperts > 1 ? `MLP (${r.model.numExperts} experts, ${r.model.expertsPerToken} per token)` : "MLP", p.mlp, wb.mlp],
    ...(p.router ? [["MoE routers", p.router, wb.router] as [string, number, number]] : []),
    ["embeddings", p.embeddings, wb.embeddings],
    ...(p.positions ? [["learned positions", p.positions, wb.positions] as [string, number, number]] : []),
    [p.lmHead ? "LM head" : "LM head (tied to embeddings)", p.lmHead, wb.lmHead],
    ["norms", p.norms, wb.norms],
  ];
  const total = rows.reduce((a, x) => a + x[2], 0);
  const body = rows.map(([name, n, b]) => [name, int(n), `${((100 * n) / p.total).toFixed(2)}%`, formatBytes(b)]);
  body.push(["total", int(p.total), "100.00%", formatBytes(total)]);
  if (p.active !== p.total) body.push(["active per token", int(Math.round(p.active)), `${((100 * p.active) / p.total).toFixed(2)}%`, ""]);
  return table(["Parameters", "count", "share", `bytes (${r.options.weightDtype})`], body);
}

function formatVariants(r: PlanResult, rows: VariantPlan[]): string {
  const o = r.options;
  return table(
    ["What-if", "KV heads", "KV/token", `cache (b${o.batch})`, "per GPU", "K+V proj saved", "weights/GPU", "max batch", "max context", "concurrency", "decode tok/s"],
    rows.map((v) => [
      v === r ? `as configured (${r.attention.toUpperCase()})` : v.label,
      v.attention === "mla" ? "latent" : String(v.numKvHeads),
      formatBytes(v.kvBytesPerToken),
      formatBytes(v.kvCacheBytes),
      formatBytes(v.kvCacheBytesPerGpu),
      `${(100 * v.kvProjParamsSavedVsMha).toFixed(1)}%`,
      formatBytes(v.weightBytesPerGpu),
      int(v.maxBatch),
      v.maxContextUnbounded ? "unbounded" : int(v.maxContext),
      `${v.maxConcurrency.toFixed(2)}x`,
      v.decode.tokensPerSecond.toFixed(1),
    ]),
  );
}

function printModels(json: boolean): void {
  const rows = listPresets().map((p) => {
    const s = presetSpec(p.name);
    return { name: p.name, hf: p.hf, layers: s.numLayers, heads: s.numHeads, kvHeads: s.mla ? "MLA" : s.numKvHeads, headDim: s.headDim, hidden: s.hiddenSize, source: p.source };
  });
  if (json) return void console.log(JSON.stringify(rows, null, 2));
  console.log(table(["preset", "HF repository", "layers", "heads", "KV heads", "head dim", "hidden"], rows.map((r) => [r.name, r.hf, String(r.layers), String(r.heads), String(r.kvHeads), String(r.headDim), String(r.hidden)]), 2));
}

function printGpus(json: boolean): void {
  const gpus = listGpus();
  if (json) return void console.log(JSON.stringify(gpus, null, 2));
  console.log(table(["gpu", "name", "memory", "bandwidth", "dense bf16"], gpus.map((g) => [g.id, g.name, formatBytes(g.memoryBytes), `${g.bandwidthBytesPerSecond / 1e9} GB/s`, g.tflopsBf16 ? `${g.tflopsBf16} TFLOP/s` : "-"]), 2));
}
