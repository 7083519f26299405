// The model page (model.html) in a real browser (Debian chromium through playwright-core), against the CLI
// and the library on the same machine. The page is built from source into a temp folder, served by `mqa web`
// (COOP/COEP, so the kernels run in Web Workers over shared WASM memory), and:
//   - loads the shipped default model; its greedy tokens for a prompt equal `mqa generate --json`'s;
//   - the attention rows it holds (and draws) equal `mqa attention --json` for the prompt, and the library's
//     attentionMaps with the same prefill + decode split for every generated row, within ATTN_TOL; the
//     within/between-group divergence it shows is headDivergence of those maps;
//   - the diagram's parameter counts and KV bytes per token equal `mqa plan --json`'s for the same KV heads;
//   - the KV panel's bytes equal the library's kvCacheBytes (and the engine cache's own count), beside MHA's;
//   - the main thread stays responsive while it generates, and Stop ends a run early;
//   - a folder picked through <input webkitdirectory>, and a Q8_0 .gguf picked through <input type=file>, load
//     and give the same tokens as `mqa generate` on them.
// MQA_WEB_MODEL_SCREENSHOT=path writes the screenshots there (path and path-last-step.png: docs/web-model.png and
// docs/web-model-last-step.png are made that way).
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { CHROMIUM, CHROMIUM_ARGS, CLI, ROOT, startWebServer } from "./browser-helpers.js";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { buildWeb } from "../scripts/build-web.mjs";
import { openRuntime, type Runtime } from "../src/generate/runtime.js";
import { attentionMaps, headDivergence } from "../src/generate/attention-maps.js";
import { kvCacheBytes } from "../src/kvcache/bytes.js";
import { withKvHeads } from "../src/config/variant.js";
import { runCli } from "./cli-helpers.js";

const MODEL = join(ROOT, "models/default");
const PROMPT = "In the beginning God created";
const MAX_TOKENS = 24;
/**
 * Attention weights, absolute. Browser and Node run the same f32 WASM kernels, the same work items and the same
 * prefill/decode split, so the weights agree to the last bit unless the two V8s lower relaxed_madd differently
 * (fused vs. separate multiply-add: ≤ 1 ulp per step). Through 4 layers of 128-wide sums that is at most a few
 * hundred ulps of a value ≤ 1: 1e-5 = 84 × f32 epsilon (1.19e-7).
 */
const ATTN_TOL = 1e-5;

const tmp = mkdtempSync(join(tmpdir(), "mqa-web-model-test-"));
let server: ChildProcess | null = null;
let baseUrl = "";
let context: BrowserContext | null = null;
let page: Page;
let rt: Runtime;
const errors: string[] = [];

/**
 * `mqa <args>` in this process (test/cli-helpers.ts; a child started with -e could not start kernel worker
 * threads). main() returns process.exitCode when it is set, and node:test sets it to 1 after a failed test:
 * cleared for the call so one failure does not fail every later call, and restored for the runner.
 */
async function mqa(args: string[]): Promise<Awaited<ReturnType<typeof runCli>>> {
  const saved = process.exitCode;
  process.exitCode = undefined;
  try {
    return await runCli(args);
  } finally {
    process.exitCode = saved;
  }
}

/** `mqa <args>` that must succeed, its JSON output parsed. */
async function cli(args: string[]): Promise<Record<string, unknown>> {
  const r = await mqa(args);
  assert.equal(r.code, 0, `mqa ${args.join(" ")} exited ${r.code}: ${r.err}`);
  return JSON.parse(r.out) as Record<string, unknown>;
}

const startServer = (root: string) => startWebServer(root, (child) => (server = child));

interface PageState {
  prompt: number[];
  tokens: number[];
  rows: number[][][][];
  positions: number;
  kvEngineBytes: number;
  threads: number;
  kernels: string;
  result: { aborted: boolean; decodeTokens: number; decodeSeconds: number } | null;
}
const pageState = () => page.evaluate(() => (window as unknown as { mqaModelPage: PageState }).mqaModelPage);

async function waitFor(status: string[], timeout = 60_000): Promise<void> {
  await page.waitForFunction((s) => s.includes(document.body.dataset.model ?? ""), status, { timeout });
  const err = await page.textContent("#model-error");
  assert.ok(!err, `the page shows an error: ${err}`);
}

async function generate(prompt: string, maxTokens: number): Promise<PageState> {
  await page.fill("#prompt", prompt);
  await page.fill("#max-tokens", String(maxTokens));
  await page.click("#generate");
  await waitFor(["done"]);
  return pageState();
}

/** Largest |a - b| over two ragged [N][≤N] arrays, with where it is, after checking the shapes match. */
function maxDiff(a: number[][], b: number[][], what: string): { max: number; at: string } {
  assert.equal(a.length, b.length, `${what}: ${a.length} rows on the page, ${b.length} expected`);
  let max = 0, at = "";
  a.forEach((row, i) => {
    for (let j = 0; j < b[i].length; j++) {
      const d = Math.abs((row[j] ?? 0) - b[i][j]);
      if (!(d <= max)) (max = d), (at = `row ${i}, key ${j}: page ${row[j]}, expected ${b[i][j]}`);
    }
  });
  return { max, at };
}

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`web-model.test.ts: ${CHROMIUM} is missing; apt-get install -y chromium`);
  const { outDir } = await buildWeb({ outDir: join(tmp, "site") });
  baseUrl = await startServer(outDir);
  rt = await openRuntime(MODEL);
  context = await chromium.launchPersistentContext(join(tmp, "profile"), { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1440, height: 1000 } });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(20_000);
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => void (m.type() === "error" && errors.push(m.text())));
  await page.goto(`${baseUrl}model.html`);
  assert.equal(await page.evaluate(() => crossOriginIsolated), true, "model.html is not cross-origin isolated");
  await page.click("#load-default");
  await waitFor(["ready"]);
});

after(async () => {
  rt?.close();
  await context?.close();
  if (server && server.exitCode === null) server.kill("SIGTERM");
  rmSync(tmp, { recursive: true, force: true });
});

test("model page: the default model's greedy tokens equal mqa generate --json, on threaded WASM kernels", async () => {
  const s = await generate(PROMPT, MAX_TOKENS);
  const expected = (await cli(["generate", "--prompt", PROMPT, "--max-tokens", String(MAX_TOKENS), "--json"])) as { tokens: number[]; kernels: string };
  assert.deepEqual(s.prompt, rt.tokenizer!.encode(PROMPT), "the page's prompt tokens differ from the tokenizer's in Node");
  assert.deepEqual(s.tokens, expected.tokens, `browser tokens ${s.tokens} differ from mqa generate's ${expected.tokens}`);
  assert.equal(s.kernels, expected.kernels, "the page runs other kernels than the CLI");
  assert.ok(s.threads > 1 || (await page.evaluate(() => navigator.hardwareConcurrency)) === 1, `the kernels run on ${s.threads} thread(s): no Web Workers`);
  assert.match((await page.textContent("#output-text"))!, /\S/, "no generated text is shown");
  assert.deepEqual(errors, []);
});

test("model page: attention rows equal mqa attention --json (prompt) and the library's prefill + decode maps (every row)", async (t) => {
  const s = await pageState();
  const N = s.positions; // prompt + generated tokens fed back (the last sample is not)
  assert.equal(N, s.prompt.length + s.tokens.length - 1);
  const seq = [...s.prompt, ...s.tokens].slice(0, N);
  const T = s.prompt.length;
  const cliMaps = (await cli(["attention", "--prompt-tokens", s.prompt.join(","), "--json"])) as { layers: { layer: number; heads: { head: number; probs: number[][] }[] }[] };
  const lib = attentionMaps(rt.model, seq, { decodeSteps: N - T });
  let worst = { max: 0, at: "" };
  for (const l of lib.layers) {
    for (const hm of l.heads) {
      const shown = s.rows[l.layer][hm.head];
      const vsCli = maxDiff(shown.slice(0, T), cliMaps.layers[l.layer].heads[hm.head].probs.map((r, i) => r.slice(0, i + 1)), `layer ${l.layer} head ${hm.head} prompt`);
      const vsLib = maxDiff(shown, hm.probs.map((r, i) => r.slice(0, i + 1)), `layer ${l.layer} head ${hm.head}`);
      for (const [d, what] of [[vsCli, "mqa attention"], [vsLib, "attentionMaps"]] as const) if (d.max > worst.max || worst.at === "") worst = { max: d.max, at: `vs ${what}, layer ${l.layer} head ${hm.head} ${d.at}` };
      shown.forEach((row, i) => assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-6, `layer ${l.layer} head ${hm.head} row ${i} sums to ${row.reduce((a, b) => a + b, 0)}`));
    }
  }
  t.diagnostic(`largest attention difference ${worst.max} (tolerance ${ATTN_TOL}) ${worst.at}`);
  assert.ok(worst.max <= ATTN_TOL, `largest attention difference ${worst.max} > ${ATTN_TOL} (${worst.at})`);
  // The divergence line of the layer shown (layer 0) is the library's headDivergence of the same rows.
  const shownDiv = new Map(await page.$$eval("#maps [data-key]", (els) => els.map((e) => [e.getAttribute("data-key")!, Number(e.getAttribute("data-value"))] as const)));
  const expectedDiv = headDivergence(lib.layers[0]);
  assert.ok(Math.abs(shownDiv.get("maps.divergence.within")! - expectedDiv.withinGroup!) <= 1e-12, `within-group divergence ${shownDiv.get("maps.divergence.within")} vs ${expectedDiv.withinGroup}`);
  assert.ok(Math.abs(shownDiv.get("maps.divergence.between")! - expectedDiv.betweenGroups!) <= 1e-12, `between-group divergence ${shownDiv.get("maps.divergence.between")} vs ${expectedDiv.betweenGroups}`);
  // Drawn: one canvas per head, grouped under its KV head (kv(h) = floor(h / G)).
  const canvases = await page.$$eval("#maps canvas", (cs) => cs.map((c) => ({ head: Number((c as HTMLElement).dataset.head), kv: Number((c as HTMLElement).dataset.kvHead), w: (c as HTMLCanvasElement).width, h: (c as HTMLCanvasElement).height })));
  const { numHeads: H, numKvHeads: K } = rt.spec;
  assert.deepEqual(canvases.map((c) => [c.head, c.kv, c.w, c.h]), Array.from({ length: H }, (_, h) => [h, Math.floor(h / (H / K)), N, N]));
});

test("model page: the diagram's numbers equal mqa plan --json for the same KV-head counts", async () => {
  for (const list of ["8,2,1", "8,4,2,1"]) {
    await page.fill("#kv-heads", list);
    const ks = list.split(",").map(Number);
    const plan = (await cli(["plan", "--model", MODEL, "--kv-heads", list, "--kv-dtype", "f32", "--context", "256", "--json"])) as { params: Record<string, number>; variants: { numKvHeads: number; kvProjParams: number; kvBytesPerToken: number }[] };
    const shown = await page.$$eval("#diagram [data-key]", (els) => els.map((e) => [e.getAttribute("data-key")!, Number(e.getAttribute("data-value"))] as const));
    const got = new Map(shown);
    assert.equal(await page.locator("#diagram figure").count(), ks.length);
    ks.forEach((k, i) => {
      const v = plan.variants.find((x) => x.numKvHeads === k);
      assert.ok(v, `mqa plan has no variant with ${k} KV heads`);
      const key = `diagram.${i}`;
      assert.equal(got.get(`${key}.params.q`), plan.params.q, `${key} Q`);
      assert.equal(got.get(`${key}.params.o`), plan.params.o, `${key} O`);
      assert.equal(got.get(`${key}.params.k`)! + got.get(`${key}.params.v`)!, v.kvProjParams, `${key} K + V`);
      assert.equal(got.get(`${key}.kvProjParams`), v.kvProjParams, `${key} kvProjParams`);
      assert.equal(got.get(`${key}.kvBytesPerToken`), v.kvBytesPerToken, `${key} KV bytes per token`);
      assert.equal(got.get(`${key}.params.k`), got.get(`${key}.params.v`), `${key}: K and V differ`);
    });
    // Lines: every query head of every figure is joined to exactly one KV head.
    const lines = await page.$$eval("#diagram figure", (fs) => fs.map((f) => f.querySelectorAll("line").length));
    assert.deepEqual(lines, ks.map(() => rt.spec.numHeads));
  }
  await page.fill("#kv-heads", "3");
  assert.match((await page.textContent("#kv-heads-error"))!, /3/, "a KV-head count that does not divide the heads is not reported");
  await page.fill("#kv-heads", "8,2,1");
});

test("model page: KV bytes equal kvCacheBytes (and the engine cache's count), beside MHA's", async () => {
  const s = await pageState();
  const got = new Map(await page.$$eval("#kv [data-key]", (els) => els.map((e) => [e.getAttribute("data-key")!, Number(e.getAttribute("data-value"))] as const)));
  const tokens = s.positions;
  assert.equal(got.get("kv.tokens"), tokens);
  assert.equal(got.get("kv.model"), kvCacheBytes(rt.spec, { tokens, dtype: "f32" }));
  assert.equal(got.get("kv.engine"), got.get("kv.model"), "the engine cache's bytes differ from kvCacheBytes");
  assert.equal(got.get("kv.mha"), kvCacheBytes(withKvHeads(rt.spec, rt.spec.numHeads), { tokens, dtype: "f32" }));
  assert.equal(got.get("kv.mha")! / got.get("kv.model")!, rt.spec.numHeads / rt.spec.numKvHeads);
});

test("model page: the main thread stays responsive while generating (the engine is a worker), and Stop ends the run", async (t) => {
  const DECODE = 200;
  await page.evaluate(() => {
    const w = window as unknown as { lag: number; last: number; probe: number; ticks: number };
    [w.lag, w.ticks, w.last] = [0, 0, performance.now()];
    w.probe = window.setInterval(() => {
      const t = performance.now();
      w.lag = Math.max(w.lag, t - w.last);
      w.last = t;
      w.ticks++;
    }, 10);
  });
  await page.check("#ignore-eos");
  const t0 = Date.now();
  const s = await generate(PROMPT, DECODE);
  const wallMs = Date.now() - t0;
  const { lag, ticks } = await page.evaluate(() => {
    const w = window as unknown as { lag: number; probe: number; ticks: number };
    clearInterval(w.probe);
    return { lag: w.lag, ticks: w.ticks };
  });
  assert.equal(s.tokens.length, DECODE);
  t.diagnostic(`longest main-thread stall ${lag.toFixed(0)} ms during a ${wallMs} ms generation of ${DECODE} tokens (${ticks} ticks of a 10 ms timer)`);
  // Generating on the main thread would stall a 10 ms timer for the whole run. In a worker the longest stall
  // is a draw plus what the OS scheduler adds: the engine and its kernel threads busy every core of this
  // shared 2-vCPU machine (measured: 0.1-1.2 s stalls in 5-9 s runs under other jobs' load), so the bound is
  // a quarter of the run, not a fixed time.
  assert.ok(lag < wallMs / 4, `the main thread stalled ${lag.toFixed(0)} ms during a ${wallMs} ms generation (${ticks} timer ticks)`);
  // Stop: a long run ends early and says it was stopped.
  await page.fill("#max-tokens", String(DECODE));
  await page.click("#generate");
  await page.waitForFunction(() => Number(document.body.dataset.steps) >= 5);
  await page.click("#stop");
  await waitFor(["done"]);
  const stopped = await pageState();
  assert.equal(stopped.result!.aborted, true, "Stop did not abort the run");
  assert.ok(stopped.tokens.length < DECODE, `Stop came too late: ${stopped.tokens.length} tokens`);
  await page.uncheck("#ignore-eos");
});

test("model page: a folder picked with <input webkitdirectory>, and a Q8_0 .gguf file, load and give mqa generate's tokens", async () => {
  await page.setInputFiles("#folder", MODEL);
  await waitFor(["ready"]);
  assert.match((await page.textContent("#model-summary"))!, /^default:/);
  const s = await generate(PROMPT, 8);
  const expected = (await cli(["generate", "--prompt", PROMPT, "--max-tokens", "8", "--json"])) as { tokens: number[] };
  assert.deepEqual(s.tokens, expected.tokens);
  // A .gguf picked with <input type=file>: Q8_0 weights (quantized kernels), the GGUF's own tokenizer.
  const gguf = join(tmp, "default-q8_0.gguf");
  const exported = await mqa(["export-gguf", MODEL, gguf, "--dtype", "q8_0"]);
  assert.equal(exported.code, 0, `mqa export-gguf: ${exported.err}`);
  await page.setInputFiles("#gguf", gguf);
  await waitFor(["ready"]);
  assert.match((await page.textContent("#model-summary"))!, /^default-q8_0\.gguf: llama/);
  const g = await generate(PROMPT, 12);
  const fromFile = (await cli(["generate", gguf, "--prompt", PROMPT, "--max-tokens", "12", "--json"])) as { tokens: number[] };
  assert.deepEqual(g.tokens, fromFile.tokens, "the picked .gguf gives other tokens than mqa generate on the same file");
  const shot = process.env.MQA_WEB_MODEL_SCREENSHOT;
  await page.click("#load-default");
  await waitFor(["ready"]);
  await generate(PROMPT, MAX_TOKENS);
  await page.fill("#kv-heads", "8,4,2,1"); // MHA, GQA-4, GQA-2 (as loaded), MQA side by side
  await page.screenshot({ path: shot ?? join(tmp, "web-model.png"), fullPage: true });
  // The attention panel alone in "Last step" mode, layer 3 (docs/web-model-last-step.png beside the full page).
  await page.selectOption("#layer", "3");
  await page.click('label:has(input[name="rows"][value="last"])'); // the radio itself is hidden behind its label
  await page.locator(".panel", { has: page.locator("#maps") }).screenshot({ path: (shot ?? join(tmp, "web-model.png")).replace(/\.png$/, "-last-step.png") });
  const strips = await page.$$eval("#maps canvas", (cs) => cs.map((c) => (c as HTMLCanvasElement).height));
  assert.deepEqual(strips, strips.map(() => 1), "Last step draws more than one row per head");
  assert.deepEqual(errors, []);
});

test("model page: a folder opened through showDirectoryPicker (File System Access) loads and gives the same tokens", async () => {
  // Headless chromium cannot answer the picker's dialog: a stand-in handle serves the default model's files
  // (and a subfolder and an unrelated file, which must be skipped), through the same entries()/getFile() calls.
  // A string, not a function: tsx would compile a function with __name() helpers the page does not have.
  await page.evaluate(`(async () => {
    const names = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"];
    const files = await Promise.all(names.map(async (n) => new File([await (await fetch("models/default/" + n)).arrayBuffer()], n)));
    const handle = {
      name: "default-dir",
      entries: async function* () {
        yield ["README.md", { kind: "file", getFile: async () => new File(["x"], "README.md") }];
        yield ["nested", { kind: "directory" }];
        for (const f of files) yield [f.name, { kind: "file", getFile: async () => f }];
      },
    };
    window.showDirectoryPicker = async () => handle;
    document.getElementById("pick-dir").hidden = false;
  })()`);
  await page.click("#pick-dir");
  await waitFor(["ready"]);
  assert.match((await page.textContent("#model-summary"))!, /^default-dir: llama/);
  const s = await generate(PROMPT, 8);
  const expected = (await cli(["generate", "--prompt", PROMPT, "--max-tokens", "8", "--json"])) as { tokens: number[] };
  assert.deepEqual(s.tokens, expected.tokens);
  assert.deepEqual(errors, []);
});
