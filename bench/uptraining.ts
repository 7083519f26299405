// The uptraining experiment (issue 12 §4): pre-train one MHA model, convert it to GQA-4, GQA-2 and MQA
// with every conversion method, evaluate right after conversion (α = 0), uptrain each for α ∈ {1, 2.5,
// 5, 10} % of the pre-training tokens B with 3 seeds, evaluate again, and train GQA-4/GQA-2/MQA from
// scratch for B + 5 % B tokens beside them. Writes docs/experiments/uptraining.md (+ .svg/.png charts).
//
//   npx tsx bench/uptraining.ts                    # run every job not yet done, then write the report
//   npx tsx bench/uptraining.ts --max-minutes 60   # start no new job after 60 minutes (resume later)
//   npx tsx bench/uptraining.ts --report           # only rebuild the report from the committed results
//   npx tsx bench/uptraining.ts --only a0,up       # some job kinds: pre, a0, up, scratch
//   npx tsx bench/uptraining.ts --only scratch --scratch-kv 1   # one from-scratch baseline
//
// Resumable: each finished job writes one JSON file to docs/experiments/uptraining/results/ (committed),
// and checkpoints live in runs/uptraining/. A rerun skips jobs whose result exists, so the experiment
// can be spread over several sessions; the report says which jobs are still missing.
//
// One uptraining run per (KV heads, method, seed) serves all four α: the schedule is warmup-stable-
// decay (src/train/optim.ts), so a constant-rate trunk is shared and a short linear decay (the last
// 20 % of each length) branches off the trunk at each α.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { decayStart } from "../src/train/optim.js";
import { evaluateCheckpoint, runTraining, type RunConfig } from "../src/train/run.js";
import { writeReport, type Result } from "./uptraining-report.js";

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);

// ---- the experiment's constants (the report prints them) ----
export const X = {
  data: "data",
  runs: "runs/uptraining",
  results: "docs/experiments/uptraining/results",
  heads: 8, hidden: 128, layers: 4, ffn: 352, context: 256, batch: 16, // 4096 tokens per update
  preSteps: 1200, preLr: 3e-3, preWarmup: 100, // B = 1200 × 4096 = 4,915,200 tokens
  kvHeads: [4, 2, 1],
  methods: ["mean", "first", "random", "pca"],
  alphas: [0.01, 0.025, 0.05, 0.1],
  seeds: [1, 2, 3],
  upLr: 1e-3, upMinLr: 1e-4, upWarmup: 5, upDecay: 0.2,
  scratchAlpha: 0.05,
  evalTokens: 131072, // validation tokens scored per evaluation (the same first 131,072 for every model)
  calibrationBytes: 200_000, // training-split text given to methods that need calibration
};
const perUpdate = X.batch * X.context;
const B = X.preSteps * perUpdate;
const stepsOf = (alpha: number) => Math.round((alpha * B) / perUpdate);
const threads = Number(flag("--threads") ?? 2);
const only = new Set((flag("--only") ?? "pre,conv,a0,up,scratch").split(","));
const maxMinutes = Number(flag("--max-minutes") ?? Infinity);
const started = Date.now();
const minutes = () => (Date.now() - started) / 60000;
const cpu = cpus()[0]?.model ?? "unknown";

mkdirSync(X.results, { recursive: true });
mkdirSync(X.runs, { recursive: true });
const resultPath = (id: string) => join(X.results, `${id}.json`);
const have = (id: string) => existsSync(resultPath(id));
function save(r: Result): void {
  writeFileSync(resultPath(r.id), JSON.stringify({ ...r, cpu, load: loadavg()[0], date: new Date().toISOString() }, null, 2) + "\n");
  console.error(`[${minutes().toFixed(1)} min] ${r.id}: ${r.bitsPerByte.toFixed(4)} bits/byte (${r.seconds.toFixed(0)} s)`);
}
function timeLeft(): boolean {
  if (minutes() < maxMinutes) return true;
  console.error(`--max-minutes ${maxMinutes} reached; rerun to continue`);
  return false;
}

function model(K: number): RunConfig["model"] {
  return { hiddenSize: X.hidden, numLayers: X.layers, numHeads: X.heads, numKvHeads: K, headDim: X.hidden / X.heads, intermediateSize: X.ffn, ropeTheta: 10000, normEps: 1e-5 };
}
function base(out: string, over: Partial<RunConfig>, train: Partial<RunConfig["train"]>): RunConfig {
  return {
    model: model(X.heads),
    train: { steps: X.preSteps, batch: X.batch, seqLen: X.context, accum: 1, lr: X.preLr, minLr: X.preLr / 10, warmup: X.preWarmup, weightDecay: 0.1, clip: 1, seed: 1, ...train },
    data: { kind: "text", dir: X.data }, out, evalEvery: 100, evalTokens: 65536, saveEvery: 100, backend: "auto", threads, resume: null, chart: true,
    ...over,
  };
}
const stepOf = (dir: string): number => (existsSync(join(dir, "trainer_state.json")) ? JSON.parse(readFileSync(join(dir, "trainer_state.json"), "utf8")).step : 0);
const evalDir = (dir: string) => evaluateCheckpoint(dir, X.data, { seqLen: X.context, batch: X.batch, maxTokens: X.evalTokens, threads });

/** A from-scratch cosine run of `steps` updates (resumed from its last checkpoint if interrupted), then its evaluation. */
async function scratchRun(id: string, dirName: string, K: number, steps: number, kind: Result["kind"]): Promise<void> {
  const out = join(X.runs, dirName);
  const t0 = Date.now();
  const done = stepOf(out);
  if (done < steps) await runTraining(base(out, { model: model(K), resume: done > 0 ? out : null }, { steps }));
  const ev = await evalDir(out);
  const st = JSON.parse(readFileSync(join(out, "trainer_state.json"), "utf8"));
  save({ id, kind, K, method: null, seed: 1, alpha: kind === "pre" ? 0 : X.scratchAlpha, tokens: steps * perUpdate, trainSeconds: st.elapsedSeconds, seconds: (Date.now() - t0) / 1000, ...evalFields(ev), log: readLog(out) });
}
function evalFields(ev: { loss: number; bitsPerByte: number; perplexity: number; tokens: number }) {
  return { loss: ev.loss, bitsPerByte: ev.bitsPerByte, perplexity: ev.perplexity, evalTokens: ev.tokens };
}
function readLog(dir: string): { step: number; bitsPerByte: number }[] {
  return readFileSync(join(dir, "log.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((r) => r.type === "eval").map((r) => ({ step: r.step, bitsPerByte: r.valBitsPerByte }));
}

const convDir = (K: number, method: string, seed: number) => join(X.runs, "conv", `kv${K}-${method}${method === "random" ? `-s${seed}` : ""}`);
const convSeeds = (method: string) => (method === "random" ? X.seeds : [1]);

/** The calibration text: the first calibrationBytes of the training split's documents (data/corpus.jsonl). */
function calibrationFile(): string {
  const path = join(X.runs, "calibration.txt");
  if (existsSync(path)) return path;
  const docs = readFileSync(join(X.data, "corpus.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((d) => d.split === "train");
  let text = "";
  for (const d of docs) {
    if (text.length >= X.calibrationBytes) break;
    text += d.text.slice(0, 20_000) + "\n";
  }
  writeFileSync(path, text.slice(0, X.calibrationBytes));
  return path;
}

function convert(K: number, method: string, seed: number): string {
  const out = convDir(K, method, seed);
  if (existsSync(join(out, "config.json"))) return out;
  mkdirSync(join(X.runs, "conv"), { recursive: true });
  const argv = ["bin/mqa.js", "convert", join(X.runs, "pretrain-mha"), out, "--kv-heads", String(K), "--method", method, "--seed", String(seed), "--calibration", calibrationFile(), "--json"];
  execFileSync(process.execPath, argv, { stdio: ["ignore", "ignore", "inherit"] });
  return out;
}

/** One uptraining run: a wsd trunk to the longest α, with a decay branch at each shorter α; evaluates every branch. */
async function uptrain(K: number, method: string, seed: number): Promise<void> {
  const ids = X.alphas.map((a) => `up-kv${K}-${method}-s${seed}-a${a * 100}`);
  if (ids.every(have)) return;
  const root = join(X.runs, "up", `kv${K}-${method}-s${seed}`);
  const trunk = join(root, "trunk");
  const init = convert(K, method, seed);
  const Nmax = stepsOf(X.alphas[X.alphas.length - 1]);
  const t0 = Date.now();
  const up = (out: string, steps: number, over: Partial<RunConfig>) =>
    base(out, { evalEvery: 0, evalTokens: X.evalTokens, saveEvery: 0, chart: false, ...over },
      { steps, lr: X.upLr, minLr: X.upMinLr, warmup: X.upWarmup, schedule: "wsd", decayFraction: X.upDecay, seed });
  for (const [i, alpha] of X.alphas.entries()) {
    const N = stepsOf(alpha);
    const d = decayStart({ maxLr: 0, minLr: 0, warmupSteps: 0, totalSteps: N, decayFraction: X.upDecay });
    // Bring the trunk to this branch's decay start (the trunk's own schedule is flat there).
    const at = stepOf(trunk);
    if (i < X.alphas.length - 1) {
      if (at < d) await runTraining(up(trunk, Nmax, at === 0 ? { init, baseTokens: B, stopAfter: d } : { resume: trunk, stopAfter: d }));
      if (have(ids[i])) continue;
      const branch = join(root, `a${alpha * 100}`);
      rmSync(branch, { recursive: true, force: true });
      cpSync(trunk, branch, { recursive: true });
      const s = await runTraining(up(branch, N, { resume: branch }));
      save({ id: ids[i], kind: "up", K, method, seed, alpha, tokens: N * perUpdate, trainSeconds: s.seconds, seconds: (Date.now() - t0) / 1000, ...evalFields(evalOf(s.eval)) });
      rmSync(join(branch, "optimizer.safetensors"), { force: true });
    } else {
      const s = await runTraining(up(trunk, Nmax, at === 0 ? { init, baseTokens: B } : { resume: trunk }));
      save({ id: ids[i], kind: "up", K, method, seed, alpha, tokens: N * perUpdate, trainSeconds: s.seconds, seconds: (Date.now() - t0) / 1000, ...evalFields(evalOf(s.eval)) });
      rmSync(join(trunk, "optimizer.safetensors"), { force: true });
    }
  }
}
const evalOf = (e: Record<string, number>) => ({ loss: e.valLoss, bitsPerByte: e.valBitsPerByte, perplexity: e.valPerplexity, tokens: e.valTokens });

async function main(): Promise<void> {
  if (!args.includes("--report")) {
    if (!existsSync(join(X.data, "meta.json"))) throw new Error(`bench/uptraining.ts: ${X.data}/ is missing; run \`npx mqa prepare-data\` first`);
    if (only.has("pre") && !have("pre-mha")) await scratchRun("pre-mha", "pretrain-mha", X.heads, X.preSteps, "pre");
    // The pre-training run lives in runs/uptraining/pretrain-mha (its result id is pre-mha).
    for (const K of X.kvHeads) for (const m of X.methods) for (const s of convSeeds(m)) {
      const id = `a0-kv${K}-${m}${m === "random" ? `-s${s}` : ""}`;
      if (!only.has("a0") || have(id) || !timeLeft()) continue;
      const t0 = Date.now();
      const dir = convert(K, m, s);
      const convSeconds = (Date.now() - t0) / 1000;
      const ev = await evalDir(dir);
      save({ id, kind: "a0", K, method: m, seed: s, alpha: 0, tokens: 0, trainSeconds: 0, seconds: (Date.now() - t0) / 1000, convertSeconds: convSeconds, ...evalFields(ev) });
    }
    if (only.has("up")) for (const s of X.seeds) for (const K of X.kvHeads) for (const m of X.methods) if (timeLeft()) await uptrain(K, m, s);
    const scratchKv = flag("--scratch-kv")?.split(",").map(Number) ?? X.kvHeads;
    if (only.has("scratch")) for (const K of scratchKv) if (!have(`scratch-kv${K}`) && timeLeft()) await scratchRun(`scratch-kv${K}`, `scratch-kv${K}`, K, X.preSteps + stepsOf(X.scratchAlpha), "scratch");
  }
  const results = readdirSync(X.results).filter((f) => f.endsWith(".json")).map((f) => JSON.parse(readFileSync(join(X.results, f), "utf8")) as Result);
  await writeReport(results, { X, B, perUpdate, stepsOf, cpu });
}
await main();
