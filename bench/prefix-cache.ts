// Prefix caching in `mqa serve` on a multi-turn chat workload: time to first token (TTFT) and total
// throughput with the prefix cache and with --no-prefix-cache, in one process, conditions alternated.
// Never a test: timings depend on the machine and its load.
//
//   npx tsx bench/prefix-cache.ts [--users 4] [--turns 4] [--system 512] [--user 48] [--answer 32] [--threads 2] [--reps 2] [--verbose]
//
// Workload: `users` chats run concurrently (one request per chat at a time, --parallel = users); each
// starts with the same `system` prompt tokens; turn t sends the whole history (system, earlier user
// messages and the model's answers) plus `user` new tokens and generates `answer` tokens (greedy,
// ignore_eos). Model: bench/generate.ts's random-weight 12-layer, 768-wide LLaMA (GQA, 4 KV heads, f16
// weights, context 4096), so the numbers show the cost of prefill, not of a tiny model.
import { loadavg, cpus, tmpdir } from "node:os";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { openRuntime } from "../src/generate/runtime.js";
import { startServer } from "../src/serve/server.js";
import { benchModel } from "./generate.js";

import { flag } from "./flags.js";

const num = (name: string, fallback: number) => Number(flag(name.replace(/^--/, ""), String(fallback)));
const VERBOSE = process.argv.includes("--verbose"); // print the server's request log to stderr
const USERS = num("--users", 4), TURNS = num("--turns", 4), SYSTEM = num("--system", 512), USER = num("--user", 48), ANSWER = num("--answer", 32);
const THREADS = num("--threads", 2), REPS = num("--reps", 2);

interface Run {
  prefixCache: boolean;
  ttft: number[]; // seconds, one per request
  seconds: number; // wall time of the whole workload
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
}

const tokens = (n: number, seed: number) => Array.from({ length: n }, (_, i) => 300 + ((seed * 7919 + i * 104729) % 31000));

async function chat(url: string, user: number, out: Run): Promise<void> {
  let history = tokens(SYSTEM, 0);
  for (let t = 0; t < TURNS; t++) {
    history = [...history, ...tokens(USER, 1 + user * 100 + t)];
    const t0 = performance.now();
    const res = await fetch(url + "/v1/completions", { method: "POST", body: JSON.stringify({ prompt: history, max_tokens: ANSWER, temperature: 0, ignore_eos: true, stream: true, return_tokens: true, stream_options: { include_usage: true } }) });
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let text = "", first = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!first) first = performance.now();
      text += dec.decode(value, { stream: true });
    }
    out.ttft.push((first - t0) / 1000);
    const events = text.split("\n\n").filter((e) => e.startsWith("data: {")).map((e) => JSON.parse(e.slice(6)));
    const answer = events.flatMap((e) => e.choices?.[0]?.tokens ?? []);
    const usage = events.find((e) => e.usage)?.usage;
    out.promptTokens += usage.prompt_tokens;
    out.cachedTokens += usage.prompt_tokens_details.cached_tokens;
    out.completionTokens += usage.completion_tokens;
    history = [...history, ...answer];
  }
}

async function workload(rt: Awaited<ReturnType<typeof openRuntime>>, prefixCache: boolean): Promise<Run> {
  const server = await startServer({ served: { id: "bench", model: rt.model, tokenizer: rt.tokenizer, maxTokensDefault: ANSWER, parallel: USERS }, port: 0, prefixCache, log: (l) => VERBOSE && console.error(l) });
  const run: Run = { prefixCache, ttft: [], seconds: 0, promptTokens: 0, cachedTokens: 0, completionTokens: 0 };
  try {
    const t0 = performance.now();
    await Promise.all(Array.from({ length: USERS }, (_, u) => chat(server.url, u, run)));
    run.seconds = (performance.now() - t0) / 1000;
  } finally {
    await server.close();
  }
  return run;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.9))];

const dir = join(tmpdir(), "mqa-bench");
mkdirSync(dir, { recursive: true });
const context = 4096;
if (SYSTEM + TURNS * (USER + ANSWER) > context) throw new Error(`the chat needs ${SYSTEM + TURNS * (USER + ANSWER)} tokens; the model has ${context}`);
const rt = await openRuntime(benchModel(dir, 4, "f16", context), { threads: THREADS });
try {
  const runs: Run[] = [];
  for (let r = 0; r < REPS; r++) for (const pc of r % 2 === 0 ? [true, false] : [false, true]) runs.push(await workload(rt, pc));
  console.log(`# ${cpus()[0]?.model ?? "?"}, ${rt.kernels.name} × ${rt.kernels.threads}, load at end ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  console.log(`# ${USERS} users × ${TURNS} turns, system ${SYSTEM} tokens, +${USER} user tokens and ${ANSWER} answer tokens per turn; ${REPS} repetitions per condition, alternated`);
  console.log("| prefix cache | requests | prompt tokens | of them cached | TTFT median (s) | TTFT p90 (s) | wall (s) | completion tokens/s | all tokens/s |");
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const pc of [true, false]) {
    const rs = runs.filter((r) => r.prefixCache === pc);
    const ttft = rs.flatMap((r) => r.ttft);
    const sum = (f: (r: Run) => number) => rs.reduce((a, r) => a + f(r), 0);
    const secs = sum((r) => r.seconds);
    console.log(`| ${pc ? "on" : "off (--no-prefix-cache)"} | ${ttft.length} | ${sum((r) => r.promptTokens)} | ${sum((r) => r.cachedTokens)} | ${median(ttft).toFixed(3)} | ${p90(ttft).toFixed(3)} | ${(secs / rs.length).toFixed(2)} | ${(sum((r) => r.completionTokens) / secs).toFixed(1)} | ${((sum((r) => r.promptTokens) + sum((r) => r.completionTokens)) / secs).toFixed(1)} |`);
  }
} finally {
  rt.close();
}
