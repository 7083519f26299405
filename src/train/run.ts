// One training run end to end: data → model → steps (with periodic evaluation and checkpoints) →
// HF-layout checkpoint, JSONL log and loss chart. The CLI (src/cli/train.ts) only parses flags,
// shows progress and prints the summary this returns.
import { kernelTrainOps, tsTrainOps, type TrainOps } from "./trainops.js";
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { OptionError, UserError } from "../errors.js";
import { createKernels, type KernelHandle } from "../kernels/index.js";
import { Arena } from "../kernels/memory.js";
import { kvBytesPerToken } from "../kvcache/bytes.js";
import { specFromHfConfig } from "../config/hf.js";
import { arenaAllocator } from "./alloc.js";
import { checkSameTokenizer, loadInitCheckpoint, type InitCheckpoint } from "./init.js";
import { hfConfig, loadCheckpoint, restoreInto, saveCheckpoint, type TrainerState } from "./checkpoint.js";
import { loadPrepared, type PreparedData } from "./data.js";
import { evaluateText, TextBatches, Trainer, type BatchSource, type EvalResult, type StepRecord, type TrainOptions } from "./loop.js";
import { kernelMatmuls, tsMatmuls, type Matmuls } from "./matmul.js";
import { f32Allocator, TrainModel, type Allocator, type TrainModelConfig } from "./model.js";
import { MqarBatches, mqarAccuracy } from "./mqar.js";
import { defaultWarmup } from "./optim.js";

export type DataConfig =
  | { kind: "text"; dir: string } // a folder written by `mqa prepare-data`
  | { kind: "mqar"; vocabSize: number; trainPairs: number[]; evalPairs: number[]; evalExamples: number };

/** The trainer's matmul backends: the kernel backends, or "ts" (plain TypeScript loops). */
export const TRAIN_BACKENDS = ["auto", "wasm", "reference", "ts"] as const;
export type TrainBackend = (typeof TRAIN_BACKENDS)[number];

export interface RunConfig {
  model: Omit<TrainModelConfig, "vocabSize" | "maxPositions">; // vocab from the data, context = seqLen
  train: TrainOptions;
  data: DataConfig;
  out: string; // checkpoint folder, e.g. "runs/gqa2"
  evalEvery: number; // updates between evaluations (0 = only at the end)
  evalTokens: number; // validation tokens scored per evaluation, e.g. 65536
  saveEvery: number; // updates between checkpoints (0 = only at the end)
  backend: TrainBackend;
  threads: number;
  resume: string | null; // a checkpoint folder to continue from
  chart: boolean; // write loss.svg and loss.png
  stopAfter?: number | null; // end this invocation after this update (checkpoint saved), keeping the schedule of `steps`
  init?: string | null; // start from this HF checkpoint's weights (fresh optimizer and schedule); model shape from it
  baseTokens?: number | null; // the pre-training budget --fraction refers to, logged with the run
  tokens?: number | null; // run length in training tokens instead of train.steps
  fraction?: number | null; // run length as this fraction of baseTokens (or of the --init checkpoint's trained tokens)
  autoWarmup?: boolean; // warmup = min(100, steps / 10) of the resolved run length
}

/** The checkpoint folder when none is given: runs/<task>-kv<K>-s<seed>, or runs/uptrain-<init folder name>-s<seed>. */
export function defaultOutDir(o: { init?: string | null; task: string; kvHeads: number; seed: number }): string {
  return o.init ? `runs/uptrain-${o.init.replace(/[\\/]+$/, "").split(/[\\/]/).pop()}-s${o.seed}` : `runs/${o.task}-kv${o.kvHeads}-s${o.seed}`;
}

/** The number of updates a run takes: train.steps, or --tokens / --fraction converted at batch · seqLen · accum tokens per update. */
export function resolveSteps(cfg: RunConfig, init: InitCheckpoint | null): { steps: number; baseTokens: number | null } {
  const { batch, seqLen, accum } = cfg.train;
  const perUpdate = batch * seqLen * accum;
  if (cfg.tokens != null && cfg.fraction != null) throw new OptionError(["tokens", "fraction"], `tokens and fraction: give one`);
  if (cfg.tokens != null) return { steps: Math.max(1, Math.round(cfg.tokens / perUpdate)), baseTokens: cfg.baseTokens ?? null };
  if (cfg.fraction != null) {
    const base = cfg.baseTokens ?? init?.trainedTokens ?? null;
    if (base == null) throw new OptionError(["fraction", "baseTokens"], `fraction ${cfg.fraction}: give baseTokens (the pre-training budget in tokens)${init ? `; ${init.dir} has no trainer_state.json to read it from` : ""}`);
    return { steps: Math.max(1, Math.round((cfg.fraction * base) / perUpdate)), baseTokens: base };
  }
  return { steps: cfg.train.steps, baseTokens: cfg.baseTokens ?? null };
}

export interface RunHooks {
  onStep?(rec: StepRecord, progress: { tokensPerSecond: number; elapsedSeconds: number; etaSeconds: number; totalSteps: number }): void;
  onEval?(step: number, result: Record<string, number>): void;
  log?(msg: string): void;
}

export interface RunSummary {
  out: string;
  params: number;
  kvHeads: number;
  kvBytesPerTokenF16: number;
  steps: number;
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  backend: string;
  finalTrainLoss: number;
  eval: Record<string, number>;
}

interface Built {
  model: TrainModel;
  source: BatchSource;
  prepared: PreparedData | null;
  kernels: KernelHandle | null;
}

async function buildModel(cfg: TrainModelConfig, backend: TrainBackend, threads: number): Promise<{ mm: Matmuls; alloc: Allocator; ops: TrainOps; kernels: KernelHandle | null }> {
  if (backend === "ts") {
    const mm = tsMatmuls();
    return { mm, alloc: f32Allocator, ops: tsTrainOps(mm), kernels: null };
  }
  const arena = new Arena({ initialBytes: 64 << 20, base: 1 << 20 });
  const kernels = await createKernels({ arena, backend, threads });
  const mm = kernelMatmuls(kernels, arena);
  return { mm, alloc: arenaAllocator(arena), ops: kernelTrainOps(kernels, arena, mm), kernels };
}

function dataLabel(d: DataConfig): string {
  return d.kind === "text" ? d.dir : `mqar:V=${d.vocabSize}:pairs=${d.trainPairs.join(",")}`;
}

/** Trains according to cfg; see the file header. */
export async function runTraining(cfg: RunConfig, hooks: RunHooks = {}): Promise<RunSummary> {
  const log = hooks.log ?? (() => {});
  let resumeState: TrainerState | null = null;
  let resumed: ReturnType<typeof loadCheckpoint> | null = null;
  if (cfg.resume) {
    resumed = loadCheckpoint(cfg.resume);
    resumeState = resumed.state;
    if (!resumeState || !resumed.optimizer) throw new OptionError("resume", `resume ${cfg.resume}: no trainer_state.json / optimizer.safetensors; it is not a resumable checkpoint`);
    if (resumeState.data !== dataLabel(cfg.data)) throw new OptionError("resume", `resume ${cfg.resume}: it was trained on ${resumeState.data}, this run uses ${dataLabel(cfg.data)}`);
  }
  if (cfg.init && cfg.resume) throw new OptionError(["init", "resume"], `init and resume: give one (resume continues a run, init starts a new one from a checkpoint)`);
  if (cfg.init && cfg.data.kind !== "text") throw new OptionError(["init", "task"], `init ${cfg.init}: starting from a checkpoint needs task text (its tokenizer must match the data's)`);
  const prepared = cfg.data.kind === "text" ? loadPrepared(cfg.data.dir) : null;
  const vocabSize = prepared ? prepared.meta.vocabSize : (cfg.data as { vocabSize: number }).vocabSize;
  const init: InitCheckpoint | null = cfg.init ? loadInitCheckpoint(cfg.init) : null;
  if (init && prepared) {
    checkSameTokenizer(init.tokenizerJson, prepared.tokenizerJson, join(init.dir, "tokenizer.json"), join(prepared.dir, "tokenizer.json"));
    if (init.cfg.vocabSize !== vocabSize) throw new UserError(`${join(init.dir, "config.json")}: vocab_size ${init.cfg.vocabSize}, but ${prepared.dir} has ${vocabSize} tokens`);
  }
  const modelCfg: TrainModelConfig = resumed ? resumed.cfg : init ? init.cfg : { ...cfg.model, vocabSize, maxPositions: cfg.train.seqLen };
  const budget = resolveSteps(cfg, init);
  const fresh: TrainOptions = { ...cfg.train, steps: budget.steps, ...(cfg.autoWarmup ? { warmup: defaultWarmup(budget.steps) } : {}) };
  const opts: TrainOptions = resumeState ? { ...resumeState.options, steps: budget.steps } : fresh;
  if (opts.seqLen > modelCfg.maxPositions) throw new OptionError("seqLen", `seqLen ${opts.seqLen} exceeds the checkpoint's max_position_embeddings ${modelCfg.maxPositions}`);
  const { mm, alloc, ops, kernels } = await buildModel(modelCfg, cfg.backend, cfg.threads);
  try {
    const model = new TrainModel(modelCfg, mm, alloc, ops);
    const source: BatchSource = prepared ? new TextBatches(prepared.train) : new MqarBatches(vocabSize, (cfg.data as { trainPairs: number[] }).trainPairs);
    const trainer = new Trainer(model, opts, source);
    let elapsedBefore = 0;
    if (resumed && resumeState) {
      restoreInto(model.tensors, model.params, resumed.weights);
      restoreInto(model.tensors, trainer.opt.m, resumed.optimizer!, ".exp_avg", "optimizer.safetensors");
      restoreInto(model.tensors, trainer.opt.v, resumed.optimizer!, ".exp_avg_sq", "optimizer.safetensors");
      trainer.opt.step = resumeState.adamw.step;
      trainer.step = resumeState.step;
      trainer.rng.setState(resumeState.rng);
      elapsedBefore = resumeState.elapsedSeconds;
      log(`resumed from ${cfg.resume} at step ${trainer.step}`);
    } else if (init) {
      restoreInto(model.tensors, model.params, init.weights, "", `--init ${init.dir}`);
      log(`initialised from ${init.dir}${init.tiedHead ? " (lm_head from the tied embedding)" : ""}`);
    } else model.init(opts.seed);
    const initInfo = init ? { dir: init.dir, tiedHead: init.tiedHead, trainedTokens: init.trainedTokens, baseTokens: budget.baseTokens } : null;
    return await loop({ cfg, hooks, model, trainer, prepared, kernels, opts, elapsedBefore, initInfo, backend: kernels ? kernels.name : "ts" } as LoopArgs & Built);
  } finally {
    kernels?.close();
  }
}

/**
 * Validation loss, bits per byte and perplexity of an HF checkpoint on prepared data (the trainer's
 * evaluation: consecutive windows of seqLen tokens from the start of the validation split, up to
 * maxTokens scored tokens), without training it. Accepts what --init accepts.
 */
export async function evaluateCheckpoint(dir: string, dataDir: string, opts: { seqLen: number; batch: number; maxTokens: number; backend?: TrainBackend; threads?: number }): Promise<EvalResult> {
  const prepared = loadPrepared(dataDir);
  const init = loadInitCheckpoint(dir);
  checkSameTokenizer(init.tokenizerJson, prepared.tokenizerJson, join(dir, "tokenizer.json"), join(dataDir, "tokenizer.json"));
  if (opts.seqLen > init.cfg.maxPositions) throw new UserError(`${dir}: context ${opts.seqLen} exceeds max_position_embeddings ${init.cfg.maxPositions}`);
  const { mm, alloc, ops, kernels } = await buildModel(init.cfg, opts.backend ?? "auto", opts.threads ?? 2);
  try {
    const model = new TrainModel(init.cfg, mm, alloc, ops);
    restoreInto(model.tensors, model.params, init.weights, "", dir);
    return evaluateText(model, prepared.val, (id) => prepared.bpe.bytesOf(id), opts.batch, opts.seqLen, opts.maxTokens);
  } finally {
    kernels?.close();
  }
}

interface LoopArgs {
  cfg: RunConfig;
  hooks: RunHooks;
  trainer: Trainer;
  opts: TrainOptions;
  elapsedBefore: number;
  initInfo: Record<string, unknown> | null;
  backend: string;
}

async function loop(a: LoopArgs & Built): Promise<RunSummary> {
  const { cfg, hooks, model, trainer, prepared, opts } = a;
  mkdirSync(cfg.out, { recursive: true });
  const logPath = join(cfg.out, "log.jsonl");
  if (!cfg.resume) writeFileSync(logPath, "");
  const write = (rec: object) => appendFileSync(logPath, JSON.stringify(rec) + "\n");
  const spec = specFromHfConfig(hfConfig(model.cfg, null), "trainer config");
  const kvF16 = kvBytesPerToken(spec, "f16");
  if (!cfg.resume) {
    write({ type: "config", model: model.cfg, params: model.numParams, train: opts, data: dataLabel(cfg.data), backend: a.backend, kvBytesPerTokenF16: kvF16, ...(a.initInfo ? { init: a.initInfo } : {}) });
  }
  const evaluate = (): Record<string, number> => {
    if (prepared) {
      const r: EvalResult = evaluateText(model, prepared.val, (id) => prepared.bpe.bytesOf(id), opts.batch, opts.seqLen, cfg.evalTokens);
      return { valLoss: r.loss, valBitsPerByte: r.bitsPerByte, valPerplexity: r.perplexity, valTokens: r.tokens };
    }
    const d = cfg.data as Extract<DataConfig, { kind: "mqar" }>;
    const out: Record<string, number> = {};
    for (const D of d.evalPairs) out[`acc@${D}`] = mqarAccuracy(model, D, d.evalExamples, opts.batch, opts.seqLen, 1000 + D);
    return out;
  };
  const save = (elapsed: number) =>
    saveCheckpoint(cfg.out, {
      cfg: model.cfg, tensors: model.tensors, params: model.params, m: trainer.opt.m, v: trainer.opt.v,
      tokenizerJson: prepared ? prepared.tokenizerJson : null, eosId: prepared ? prepared.meta.eosId : null,
      state: {
        version: 1, step: trainer.step, options: opts, rng: trainer.rng.getState(),
        adamw: { ...trainer.opt.cfg, step: trainer.opt.step }, data: dataLabel(cfg.data), elapsedSeconds: elapsed,
      },
    });
  const t0 = performance.now();
  const startStep = trainer.step;
  let tokens = 0;
  let last: StepRecord | null = null;
  let lastEval: Record<string, number> = {};
  const seconds = () => (performance.now() - t0) / 1000;
  const stopAt = Math.min(opts.steps, cfg.stopAfter ?? opts.steps);
  while (trainer.step < stopAt) {
    const rec = trainer.trainStep();
    last = rec;
    tokens += opts.batch * opts.seqLen * opts.accum;
    const el = seconds();
    const tps = tokens / el;
    const eta = ((stopAt - trainer.step) * el) / (trainer.step - startStep);
    write({ type: "step", ...rec, seconds: a.elapsedBefore + el, tokensPerSecond: tps });
    hooks.onStep?.(rec, { tokensPerSecond: tps, elapsedSeconds: el, etaSeconds: eta, totalSteps: stopAt });
    const done = trainer.step === stopAt;
    if ((cfg.evalEvery > 0 && trainer.step % cfg.evalEvery === 0) || done) {
      lastEval = evaluate();
      write({ type: "eval", step: trainer.step, ...lastEval });
      hooks.onEval?.(trainer.step, lastEval);
    }
    if ((cfg.saveEvery > 0 && trainer.step % cfg.saveEvery === 0) || done) save(a.elapsedBefore + seconds());
  }
  const el = seconds();
  if (cfg.chart) await writeLossChart(logPath, cfg.out);
  return {
    out: cfg.out, params: model.numParams, kvHeads: model.cfg.numKvHeads, kvBytesPerTokenF16: kvF16, steps: trainer.step, tokens,
    seconds: el, tokensPerSecond: tokens / Math.max(el, 1e-9), backend: a.backend, finalTrainLoss: last ? last.loss : NaN, eval: lastEval,
  };
}

/** loss.svg and loss.png from log.jsonl: training loss per step and validation loss at evaluations. */
export async function writeLossChart(logPath: string, outDir: string): Promise<void> {
  const rows = readFileSync(logPath, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  const values: { step: number; loss: number; series: string }[] = [];
  for (const r of rows) {
    if (r.type === "step") values.push({ step: r.step as number, loss: r.loss as number, series: "train" });
    if (r.type === "eval" && typeof r.valLoss === "number") values.push({ step: r.step as number, loss: r.valLoss, series: "validation" });
  }
  const { renderChartFile } = await import("../planner/render.js");
  const spec = {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: `Training loss (${outDir})`,
    width: 560, height: 300,
    data: { values },
    mark: { type: "line", point: false },
    encoding: {
      x: { field: "step", type: "quantitative", title: "update" },
      y: { field: "loss", type: "quantitative", title: "cross-entropy (nats / token)", scale: { zero: false } },
      color: { field: "series", type: "nominal", title: null },
    },
  };
  await renderChartFile(spec as never, join(outDir, "loss.svg"));
  await renderChartFile(spec as never, join(outDir, "loss.png"));
}

