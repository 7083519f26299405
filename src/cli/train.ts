// `mqa train`: trains a LLaMA-style decoder from scratch (any --kv-heads: MHA, GQA, MQA) on prepared
// text or on the MQAR recall task. Parses flags, shows progress and prints the summary; the work
// lives in src/train/run.ts.
import type { Command } from "commander";
import { UserError } from "../errors.js";
import { defaultIntermediateSize } from "../train/model.js";
import { defaultWarmup, SCHEDULES } from "../train/optim.js";
import { defaultOutDir, runTraining, TRAIN_BACKENDS, type DataConfig, type RunConfig } from "../train/run.js";
import { choiceFlag, intFlag, intListFlag, numFlag } from "./flags.js";
import { progressBar } from "./progress.js";

interface TrainFlags {
  kvHeads?: string; heads: string; layers: string; hidden: string; headDim?: string; ffn?: string; context: string;
  data: string; task: string; mqarVocab: string; mqarPairs: string; mqarEvalPairs: string; mqarEvalExamples: string;
  steps: string; batch: string; accum: string; lr: string; minLr?: string; warmup?: string; weightDecay: string; clip: string; seed: string;
  evalEvery: string; evalTokens: string; saveEvery: string; stopAfter?: string; out?: string; resume?: string; backend: string; threads: string;
  chart: boolean; json?: boolean; progress: boolean;
  init?: string; tokens?: string; fraction?: string; baseTokens?: string; schedule: string; decay: string;
}

// The flags that set the model's shape; with --init the checkpoint sets it.
const SHAPE_FLAGS = ["kvHeads", "heads", "layers", "hidden", "headDim", "ffn"] as const;

export function register(program: Command): void {
  program
    .command("train")
    .description("Train an MHA/GQA/MQA decoder from scratch or from a checkpoint (--init: uptraining a converted model); hand-written backward, AdamW; writes an HF checkpoint mqa generate loads")
    .option("--kv-heads <K>", "KV heads: = heads for MHA, 1 for MQA, a divisor of heads for GQA (default: heads)")
    .option("--heads <H>", "query heads", "8")
    .option("--layers <L>", "decoder layers", "4")
    .option("--hidden <C>", "model width", "256")
    .option("--head-dim <D>", "head dimension (default hidden / heads)")
    .option("--ffn <F>", "SwiGLU width (default 8/3 · hidden rounded up to 32)")
    .option("--context <T>", "training sequence length (tokens)", "256")
    .option("--task <name>", "text (prepared corpus) or mqar (associative recall)", "text")
    .option("--data <dir>", "prepared data folder (mqa prepare-data)", "data")
    .option("--mqar-vocab <V>", "MQAR vocabulary size", "512")
    .option("--mqar-pairs <list>", "MQAR key-value pair counts mixed in training", "4,8,16,32")
    .option("--mqar-eval-pairs <list>", "MQAR pair counts to measure accuracy at", "4,8,16,32")
    .option("--mqar-eval-examples <n>", "MQAR test examples per pair count", "256")
    .option("--init <hf-dir>", "start from this llama/mistral checkpoint (e.g. one written by mqa convert): its shape and weights, fresh AdamW and schedule; its tokenizer must be the data's")
    .option("--steps <n>", "optimizer updates", "1000")
    .option("--tokens <N>", "run length in training tokens instead of --steps (updates = N / (batch · context · accum))")
    .option("--fraction <a>", "run length as a fraction of the pre-training budget (--base-tokens, else the --init checkpoint's trainer_state.json), e.g. 0.05")
    .option("--base-tokens <B>", "the pre-training budget in tokens that --fraction refers to")
    .option("--schedule <kind>", `learning-rate schedule after warmup: ${SCHEDULES.join(" or ")} (warmup-stable-decay)`, "cosine")
    .option("--decay <fraction>", "wsd: share of the updates in the final linear decay", "0.2")
    .option("--batch <B>", "sequences per micro-batch", "8")
    .option("--accum <n>", "micro-batches per update (gradient accumulation)", "1")
    .option("--lr <rate>", "peak learning rate", "3e-3")
    .option("--min-lr <rate>", "final learning rate of the cosine (default lr / 10)")
    .option("--warmup <n>", "linear warmup updates (default min(100, steps / 10))")
    .option("--weight-decay <wd>", "AdamW decoupled weight decay on matrices", "0.1")
    .option("--clip <norm>", "max global gradient norm (0 = off)", "1")
    .option("--seed <n>", "seed for initialisation and batch order", "1")
    .option("--eval-every <n>", "updates between evaluations (0 = only at the end)", "0")
    .option("--eval-tokens <n>", "validation tokens per evaluation", "65536")
    .option("--stop-after <n>", "stop (and checkpoint) after this update; the schedule still spans --steps; continue with --resume")
    .option("--save-every <n>", "updates between checkpoints (0 = only at the end)", "0")
    .option("--out <dir>", "checkpoint folder (default runs/<task>-kv<K>-s<seed>)")
    .option("--resume <dir>", "continue from a checkpoint written by mqa train (restores AdamW state and batch order)")
    .option("--backend <name>", `matmul backend: ${TRAIN_BACKENDS.join(", ")} (auto: WASM SIMD)`, "auto")
    .option("--threads <n>", "kernel threads", "2")
    .option("--no-chart", "skip loss.svg / loss.png")
    .option("--no-progress", "no progress bar")
    .option("--json", "print the summary as JSON (no progress bar)")
    .action(async (f: TrainFlags, cmd: Command) => {
      if (f.init) {
        const given = SHAPE_FLAGS.filter((k) => cmd.getOptionValueSource(k) === "cli");
        if (given.length) throw new UserError(`--init ${f.init} sets the model's shape; drop ${given.map((k) => "--" + k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())).join(", ")}`);
      }
      const heads = intFlag("--heads", f.heads);
      const kvHeads = f.kvHeads === undefined ? heads : intFlag("--kv-heads", f.kvHeads);
      if (heads % kvHeads !== 0) throw new UserError(`--kv-heads ${kvHeads} must divide --heads ${heads} (e.g. ${heads}, ${heads / 2}, 1)`);
      const hidden = intFlag("--hidden", f.hidden);
      const headDim = f.headDim ? intFlag("--head-dim", f.headDim) : hidden / heads;
      if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw new UserError(`--hidden ${hidden} / --heads ${heads} gives head dim ${headDim}; set --head-dim to an even integer`);
      const steps = intFlag("--steps", f.steps);
      const lr = numFlag("--lr", f.lr, { min: 0 });
      const backend = choiceFlag("--backend", f.backend, TRAIN_BACKENDS);
      if (f.task !== "text" && f.task !== "mqar") throw new UserError(`--task ${f.task}: expected text or mqar`);
      const seed = intFlag("--seed", f.seed, { min: 0 });
      const data: DataConfig =
        f.task === "text"
          ? { kind: "text", dir: f.data }
          : { kind: "mqar", vocabSize: intFlag("--mqar-vocab", f.mqarVocab), trainPairs: intListFlag("--mqar-pairs", f.mqarPairs), evalPairs: intListFlag("--mqar-eval-pairs", f.mqarEvalPairs), evalExamples: intFlag("--mqar-eval-examples", f.mqarEvalExamples) };
      const cfg: RunConfig = {
        model: {
          hiddenSize: hidden, numLayers: intFlag("--layers", f.layers), numHeads: heads, numKvHeads: kvHeads, headDim,
          intermediateSize: f.ffn ? intFlag("--ffn", f.ffn) : defaultIntermediateSize(hidden), ropeTheta: 10000, normEps: 1e-5,
        },
        train: {
          steps, batch: intFlag("--batch", f.batch), seqLen: intFlag("--context", f.context), accum: intFlag("--accum", f.accum), lr,
          minLr: f.minLr ? numFlag("--min-lr", f.minLr, { min: 0 }) : lr / 10, warmup: f.warmup ? intFlag("--warmup", f.warmup, { min: 0 }) : defaultWarmup(steps),
          weightDecay: numFlag("--weight-decay", f.weightDecay, { min: 0 }), clip: numFlag("--clip", f.clip, { min: 0 }), seed,
          schedule: choiceFlag("--schedule", f.schedule, SCHEDULES), decayFraction: numFlag("--decay", f.decay, { min: 0, max: 1 }),
        },
        data,
        out: f.out ?? f.resume ?? defaultOutDir({ init: f.init, task: f.task, kvHeads, seed }),
        init: f.init ?? null,
        tokens: f.tokens ? intFlag("--tokens", f.tokens) : null,
        fraction: f.fraction ? numFlag("--fraction", f.fraction, { min: 0, max: 1 }) : null,
        baseTokens: f.baseTokens ? intFlag("--base-tokens", f.baseTokens) : null,
        autoWarmup: !f.warmup,
        evalEvery: intFlag("--eval-every", f.evalEvery, { min: 0 }),
        evalTokens: intFlag("--eval-tokens", f.evalTokens),
        saveEvery: intFlag("--save-every", f.saveEvery, { min: 0 }),
        backend,
        threads: intFlag("--threads", f.threads),
        resume: f.resume ?? null,
        chart: f.chart,
        stopAfter: f.stopAfter ? intFlag("--stop-after", f.stopAfter) : null,
      };
      const bar = await progressBar("train", "updates", !f.json && f.progress);
      const summary = await runTraining(cfg, {
        log: (m) => !f.json && bar.log(m),
        onStep: (rec, p) => bar.update(rec.step, p.totalSteps, { rate: p.tokensPerSecond, rateUnit: "tok", eta: p.etaSeconds, detail: `loss ${rec.loss.toFixed(3)}` }),
        onEval: (step, r) => !f.json && bar.log(`eval @ ${step}: ${Object.entries(r).map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`).join(", ")}`),
      });
      bar.stop();
      if (f.json) {
        console.log(JSON.stringify(summary, null, 2));
        return;
      }
      console.log(`${summary.out}: ${summary.params} parameters, ${summary.kvHeads} KV heads (${summary.kvBytesPerTokenF16} KV bytes/token in f16)`);
      console.log(`  ${summary.steps} updates, ${summary.tokens} tokens this run in ${summary.seconds.toFixed(1)} s (${summary.tokensPerSecond.toFixed(0)} tokens/s, ${summary.backend})`);
      console.log(`  final train loss ${summary.finalTrainLoss.toFixed(4)}; ${Object.entries(summary.eval).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(", ")}`);
      console.log(`  log ${summary.out}/log.jsonl${cfg.chart ? `, chart ${summary.out}/loss.svg and loss.png` : ""}`);
    });
}
