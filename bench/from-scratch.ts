// The from-scratch experiment at a budget where the models converge (issue 13): MHA, GQA-4, GQA-2 and
// MQA decoders (8 query heads) trained on the same text for the same tokens, 3 seeds each; the same
// K/V-sharing variants with their MLP widened to MHA's parameter count (Shazeer 2019's matching); and
// the MQAR recall probe, 3 seeds. Writes docs/experiments/from-scratch.md (+ .json, + the validation
// curves chart).
//
//   npx tsx bench/from-scratch.ts                   # every job not yet in docs/experiments/from-scratch/results/
//   npx tsx bench/from-scratch.ts --max-minutes 90  # stop starting jobs after 90 minutes (rerun to continue)
//   npx tsx bench/from-scratch.ts --report          # rebuild the report from the committed results
//   ... --threads 2                                  # kernel threads per run (default 2)
//   ... --only mqar,lm                               # only jobs whose id starts with one of these, in this order
//
// Resumable: each finished job writes one JSON file (its final evaluation and validation curve) under
// docs/experiments/from-scratch/results/; a job interrupted mid-run resumes from its last checkpoint in
// runs/from-scratch/. Every number in the report comes from those files; nothing is copied in.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { DATA_SOURCES, prepareData } from "../src/train/data.js";
import { evaluateCheckpoint, runTraining, type RunConfig } from "../src/train/run.js";
import { writeFromScratchReport, type Job, type Result } from "./from-scratch-report.js";

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);

// ---- the experiment's constants (the report prints them) ----
export const X = {
  data: "data-2k", vocab: 2048, // `npx mqa prepare-data --out data-2k --vocab 2048` (KJV + State of the Union + Brown)
  runs: "runs/from-scratch",
  results: "docs/experiments/from-scratch/results",
  heads: 8, hidden: 128, layers: 2, ffn: 352, context: 128, batch: 16, // 2048 tokens per update
  kvHeads: [8, 4, 2, 1],
  matched: [4, 2, 1], // widened-MLP variants
  seeds: [1, 2, 3],
  tokensPerParam: 10, // training tokens per non-embedding parameter of MHA, the same for every variant
  lr: 3e-3, minLr: 3e-4, warmup: 100, weightDecay: 0.1, clip: 1,
  evals: 10, // validation evaluations per run (every 10 % of training)
  curveTokens: 65536, // validation tokens per evaluation on the curve
  finalTokens: 262144, // validation tokens of the final evaluation (the table)
  mqar: { hidden: 128, layers: 2, ffn: 352, context: 64, vocab: 256, pairs: [2, 4, 8, 16], batch: 32, steps: 800, lr: 3e-3, examples: 512 },
};

/** Non-embedding parameters (attention, MLP, norms; not the embedding or the head) of a variant. */
export function nonEmbedding(K: number, ffn: number, hidden = X.hidden, layers = X.layers): number {
  const hd = hidden / X.heads;
  const attn = hidden * X.heads * hd * 2 + hidden * K * hd * 2;
  return layers * (attn + 3 * hidden * ffn + 2 * hidden) + hidden;
}
/** The MLP width that gives K KV heads MHA's non-embedding parameter count (nearest multiple of 8). */
export function matchedFfn(K: number): number {
  const saved = nonEmbedding(X.heads, X.ffn) - nonEmbedding(K, X.ffn);
  return X.ffn + Math.round(saved / X.layers / (3 * X.hidden) / 8) * 8;
}
const perUpdate = X.batch * X.context;
export const STEPS = Math.ceil((X.tokensPerParam * nonEmbedding(X.heads, X.ffn)) / perUpdate / X.evals) * X.evals;

export function jobs(): Job[] {
  const out: Job[] = [];
  for (const seed of X.seeds) {
    for (const K of X.kvHeads) out.push({ id: `lm-kv${K}-s${seed}`, kind: "lm", K, seed, ffn: X.ffn });
    for (const K of X.matched) out.push({ id: `matched-kv${K}-s${seed}`, kind: "matched", K, seed, ffn: matchedFfn(K) });
    for (const K of X.kvHeads) out.push({ id: `mqar-kv${K}-s${seed}`, kind: "mqar", K, seed, ffn: X.mqar.ffn });
  }
  return out;
}

const resultPath = (id: string) => join(X.results, `${id}.json`);
export function loadResults(): Result[] {
  return jobs().filter((j) => existsSync(resultPath(j.id))).map((j) => JSON.parse(readFileSync(resultPath(j.id), "utf8")) as Result);
}

function config(job: Job, out: string, resume: boolean): RunConfig {
  const mq = job.kind === "mqar";
  const hidden = mq ? X.mqar.hidden : X.hidden;
  const steps = mq ? X.mqar.steps : STEPS;
  const lr = mq ? X.mqar.lr : X.lr;
  return {
    model: { hiddenSize: hidden, numLayers: mq ? X.mqar.layers : X.layers, numHeads: X.heads, numKvHeads: job.K, headDim: hidden / X.heads, intermediateSize: job.ffn, ropeTheta: 10000, normEps: 1e-5 },
    train: { steps, batch: mq ? X.mqar.batch : X.batch, seqLen: mq ? X.mqar.context : X.context, accum: 1, lr, minLr: lr / 10, warmup: mq ? steps / 10 : X.warmup, weightDecay: X.weightDecay, clip: X.clip, seed: job.seed },
    data: mq ? { kind: "mqar", vocabSize: X.mqar.vocab, trainPairs: X.mqar.pairs, evalPairs: X.mqar.pairs, evalExamples: X.mqar.examples } : { kind: "text", dir: X.data },
    out, evalEvery: mq ? 0 : steps / X.evals, evalTokens: X.curveTokens, saveEvery: mq ? 0 : steps / X.evals, backend: "auto", threads, resume: resume ? out : null, chart: false,
  };
}

function readCurve(dir: string): { step: number; loss: number; bitsPerByte: number }[] {
  return readFileSync(join(dir, "log.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((r) => r.type === "eval" && typeof r.valLoss === "number").map((r) => ({ step: r.step, loss: r.valLoss, bitsPerByte: r.valBitsPerByte }));
}

async function run(job: Job): Promise<void> {
  const out = join(X.runs, job.id);
  const statePath = join(out, "trainer_state.json");
  const done = existsSync(statePath) ? (JSON.parse(readFileSync(statePath, "utf8")) as { step: number }).step : 0;
  const t0 = Date.now();
  const cfg = config(job, out, done > 0);
  const s = done < cfg.train.steps ? await runTraining(cfg, { onStep: (r, p) => { if (r.step % 200 === 0) console.error(`[${minutes().toFixed(1)} min] ${job.id}: step ${r.step}/${p.totalSteps} loss ${r.loss.toFixed(3)} (${Math.round(p.tokensPerSecond)} tokens/s)`); } }) : null;
  const state = JSON.parse(readFileSync(statePath, "utf8")) as { elapsedSeconds: number; step: number };
  const common = {
    ...job, params: 0, nonEmbedding: nonEmbedding(job.K, job.ffn, job.kind === "mqar" ? X.mqar.hidden : X.hidden, job.kind === "mqar" ? X.mqar.layers : X.layers),
    steps: state.step, tokens: state.step * cfg.train.batch * cfg.train.seqLen, trainSeconds: state.elapsedSeconds, seconds: (Date.now() - t0) / 1000,
    cpu, load: loadavg()[0], date: new Date().toISOString(), resumed: done > 0,
  };
  const cfgJson = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as Record<string, number>;
  let r: Result;
  if (job.kind === "mqar") {
    if (!s) throw new Error(`${job.id}: finished run without its summary; delete ${out} and rerun`);
    r = { ...common, accuracy: Object.fromEntries(X.mqar.pairs.map((p) => [p, s.eval[`acc@${p}`]])) };
  } else {
    const ev = await evaluateCheckpoint(out, X.data, { seqLen: X.context, batch: X.batch, maxTokens: X.finalTokens, threads });
    r = { ...common, loss: ev.loss, bitsPerByte: ev.bitsPerByte, perplexity: ev.perplexity, evalTokens: ev.tokens, curve: readCurve(out) };
  }
  r.params = paramsOf(cfgJson, job);
  writeFileSync(resultPath(job.id), JSON.stringify(r, null, 2) + "\n");
  console.error(`[${minutes().toFixed(1)} min] ${job.id}: ${"bitsPerByte" in r && r.bitsPerByte != null ? `${r.bitsPerByte.toFixed(4)} bits/byte` : JSON.stringify(r.accuracy)} (${r.seconds.toFixed(0)} s)`);
}

/** All parameters (embedding and untied head included) from the written config. */
function paramsOf(c: Record<string, number>, job: Job): number {
  const d = c.hidden_size, V = c.vocab_size;
  return 2 * V * d + nonEmbedding(job.K, job.ffn, d, c.num_hidden_layers);
}

function reportCtx() {
  const meta = join(X.data, "meta.json");
  const trainTokens = existsSync(meta) ? (JSON.parse(readFileSync(meta, "utf8")) as { train: { tokens: number } }).train.tokens : null;
  return { X, steps: STEPS, cpu, jobs: jobs(), trainTokens, command: "npx tsx bench/from-scratch.ts" };
}

const threads = Number(flag("--threads") ?? 2);
const maxMinutes = Number(flag("--max-minutes") ?? Infinity);
const started = Date.now();
const minutes = () => (Date.now() - started) / 60000;
const cpu = cpus()[0]?.model ?? "unknown";

if (process.argv[1]?.endsWith("from-scratch.ts")) {
  mkdirSync(X.results, { recursive: true });
  if (!args.includes("--report")) {
    if (!existsSync(join(X.data, "meta.json"))) prepareData({ outDir: X.data, vocabSize: X.vocab, sources: DATA_SOURCES, log: (m) => console.error(m) });
    const only = flag("--only")?.split(",") ?? null;
    const rank = (id: string) => (only ? only.findIndex((p) => id.startsWith(p)) : 0);
    const todo = jobs().filter((j) => !existsSync(resultPath(j.id)) && rank(j.id) >= 0).sort((a, b) => rank(a.id) - rank(b.id)); // stable: seed order kept
    console.error(`${todo.length} of ${jobs().length} jobs to run; ${STEPS} updates × ${perUpdate} tokens per language-model run`);
    for (const job of todo) {
      if (minutes() >= maxMinutes) {
        console.error(`--max-minutes ${maxMinutes} reached; rerun to continue`);
        break;
      }
      await run(job);
      try {
        await writeFromScratchReport(loadResults(), reportCtx());
      } catch (err) {
        console.error(`report not written (the runs go on): ${(err as Error).message}`);
      }
    }
  }
  await writeFromScratchReport(loadResults(), reportCtx());
}
