// Decode speed of the default model in chromium (the model page, web/model.html: WASM kernels in Web
// Workers over shared memory) beside Node (the library's generate(), worker_threads) in ONE run on the
// same machine, alternating engines each repetition so both see the same load. Both use the same kernel
// build (relaxed SIMD when the runtime validates it), the same thread count, f32 KV cache, greedy, and run
// past end-of-sequence so every run decodes the same number of tokens; both stream text (the tokens are
// decoded to text after every step, as `mqa generate` does). The browser runs twice per
// repetition: with the attention maps off (the engine alone) and on (every layer and head handed to the
// page each step, as the page does by default). Decode tokens/s = decode steps / the time inside the
// generation loop's steps (Batch.decodeSeconds) on both sides, so the browser's event-loop turns between
// steps are not counted, as Node has none.
// Never a test: timings depend on the machine and its load (2 shared vCPUs here).
//
// Run:  node --import tsx bench/browser.ts [--reps 5] [--decode 200] [--threads 2] [--json]   (--threads 1: the calling thread only, on both sides)
import { cpus, loadavg, tmpdir } from "node:os";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { buildWeb } from "../scripts/build-web.mjs";
import { startWebServer } from "../src/serve/static.js";
import { openRuntime } from "../src/generate/runtime.js";
import { generate } from "../src/generate/generate.js";
import { packageRoot } from "../src/package-root.js";

const args = process.argv.slice(2);
const flag = (name: string, def: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const REPS = flag("--reps", 5);
const DECODE = flag("--decode", 200);
const THREADS = flag("--threads", 2);
const PROMPT = "In the beginning God created";

interface Run {
  engine: "node" | "chromium" | "chromium+maps";
  rep: number;
  decodeTokens: number;
  decodeSeconds: number;
  tokensPerSecond: number;
  prefillTokens: number;
  prefillSeconds: number;
  kernels: string;
  threads: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const tmp = mkdtempSync(join(tmpdir(), "mqa-bench-browser-"));
const load0 = loadavg();
const { outDir } = await buildWeb({ outDir: join(tmp, "site") });
const web = await startWebServer({ root: outDir, port: 0 });
const rt = await openRuntime(join(packageRoot(), "models/default"), { threads: THREADS });
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"] });
const runs: Run[] = [];
try {
  const page = await browser.newPage();
  await page.goto(`${web.url}model.html?threads=${THREADS}`);
  await page.click("#load-default");
  await page.waitForFunction(() => document.body.dataset.model === "ready" || document.body.dataset.model === "error", null, { timeout: 60_000 });
  const threads = await page.evaluate(() => (window as unknown as { mqaModelPage: { threads: number } }).mqaModelPage.threads);
  if (threads !== THREADS || rt.kernels.threads !== THREADS) throw new Error(`bench/browser.ts: kernels on ${threads} (chromium) and ${rt.kernels.threads} (node) threads; --threads is ${THREADS}`);
  await page.fill("#prompt", PROMPT);
  await page.fill("#max-tokens", String(DECODE + 1));
  await page.check("#ignore-eos");
  const prompt = rt.tokenizer!.encode(PROMPT);
  const inBrowser = async (maps: boolean, rep: number) => {
    await page.setChecked("#record-maps", maps);
    await page.click("#generate");
    await page.waitForFunction(() => document.body.dataset.model === "done" || document.body.dataset.model === "error", null, { timeout: 300_000 });
    const s = await page.evaluate(() => (window as unknown as { mqaModelPage: { kernels: string; threads: number; result: Record<string, number> } }).mqaModelPage);
    const r = s.result;
    runs.push({ engine: maps ? "chromium+maps" : "chromium", rep, decodeTokens: r.decodeTokens, decodeSeconds: r.decodeSeconds, tokensPerSecond: r.decodeTokens / r.decodeSeconds, prefillTokens: r.prefillTokens, prefillSeconds: r.prefillSeconds, kernels: s.kernels, threads: s.threads });
  };
  const inNode = (rep: number) => {
    // decode: as `mqa generate` and the page do (the text is re-decoded after every token for streaming).
    const r = generate(rt.model, [prompt], { maxTokens: DECODE + 1, stopTokens: [], decode: (ids) => rt.tokenizer!.decode(ids), onText: () => {} });
    runs.push({ engine: "node", rep, decodeTokens: r.decodeTokens, decodeSeconds: r.decodeSeconds, tokensPerSecond: r.decodeTokens / r.decodeSeconds, prefillTokens: r.prefillTokens, prefillSeconds: r.prefillSeconds, kernels: rt.kernels.name, threads: rt.kernels.threads });
  };
  inNode(-1); // warm-up (JIT, first allocations), not reported
  await inBrowser(false, -1);
  for (let rep = 0; rep < REPS; rep++) {
    inNode(rep);
    await inBrowser(false, rep);
    await inBrowser(true, rep);
  }
} finally {
  await browser.close();
  rt.close();
  await web.close();
  rmSync(tmp, { recursive: true, force: true });
}
const measured = runs.filter((r) => r.rep >= 0);
const summary = (["node", "chromium", "chromium+maps"] as const).map((engine) => {
  const rs = measured.filter((r) => r.engine === engine);
  return { engine, kernels: rs[0].kernels, threads: rs[0].threads, decodeTokens: rs[0].decodeTokens, medianTokensPerSecond: median(rs.map((r) => r.tokensPerSecond)), runs: rs.map((r) => Number(r.tokensPerSecond.toFixed(1))) };
});
const info = { cpu: cpus()[0]?.model ?? "?", cores: cpus().length, node: process.version, chromium: browser.version(), loadavgBefore: load0.map((x) => Number(x.toFixed(2))), loadavgAfter: loadavg().map((x) => Number(x.toFixed(2))), reps: REPS, decode: DECODE, prompt: PROMPT };
if (args.includes("--json")) console.log(JSON.stringify({ info, summary, runs: measured }, null, 2));
else {
  console.log(`CPU ${info.cpu} (${info.cores} cores), Node ${info.node}, Chromium ${info.chromium}; load average ${info.loadavgBefore.join(" ")} → ${info.loadavgAfter.join(" ")}`);
  console.log(`default model, prompt "${PROMPT}" (${measured[0].prefillTokens} tokens), ${DECODE} decode steps, ${REPS} alternating repetitions\n`);
  console.log("| engine | kernels | threads | decode tokens/s (median) | runs |\n|---|---|---|---:|---|");
  for (const s of summary) console.log(`| ${s.engine} | ${s.kernels} | ${s.threads} | ${s.medianTokensPerSecond.toFixed(1)} | ${s.runs.join(", ")} |`);
  const [n, c] = [summary[0].medianTokensPerSecond, summary[1].medianTokensPerSecond];
  console.log(`\nchromium / node = ${(c / n).toFixed(2)}`);
}
