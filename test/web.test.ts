// The planner web page in a real browser (Debian chromium through playwright-core).
// The page is built from source into a temp folder (scripts/build-web.mjs), served by `mqa web`, and every
// number it shows (elements with data-key = a path in the JSON, data-value = the integer) must equal, exactly,
// what `mqa plan --json` prints for the same settings: the default model, another preset on 4 GPUs, the
// context/batch sliders moved with the keyboard, and a pasted config.json. Also checks inline config errors,
// that both charts are drawn with one heatmap cell per variant × batch × context, the COOP/COEP headers,
// MIME types and that the server refuses directory traversal. Takes screenshots into the temp folder
// (MQA_WEB_SCREENSHOT=path writes the default-state one there instead: that is docs/web-planner.png).
import assert from "node:assert/strict";
import { spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { CHROMIUM, CHROMIUM_ARGS, CLI, ROOT, startWebServer } from "./browser-helpers.js";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { buildWeb } from "../scripts/build-web.mjs";

// The CLI from source (not dist/), so the test never compares against a stale build.

const tmp = mkdtempSync(join(tmpdir(), "mqa-web-test-"));
let server: ChildProcess | null = null;
let baseUrl = "";
let context: BrowserContext | null = null;
let page: Page;

/** Runs `mqa plan <args> --json` and returns the parsed JSON. */
function mqaPlan(args: string[]): Record<string, unknown> {
  const r = spawnSync(process.execPath, [...CLI, "plan", ...args, "--json"], { cwd: ROOT, encoding: "utf8" });
  assert.equal(r.status, 0, `mqa plan ${args.join(" ")} --json exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

const startServer = (root: string) => startWebServer(root, (child) => (server = child));

function getPath(obj: unknown, path: string): unknown {
  return path.split(".").reduce<unknown>((o, k) => (o === null || o === undefined ? undefined : (o as Record<string, unknown>)[k]), obj);
}

interface Shown {
  key: string;
  value: string;
  text: string;
}

async function shownNumbers(): Promise<Shown[]> {
  return page.$$eval("[data-key]", (els) => els.map((e) => ({ key: e.getAttribute("data-key")!, value: e.getAttribute("data-value") ?? "", text: e.textContent ?? "" })));
}

/** Waits until the page has planned the latest input and drawn its charts. */
async function settled(): Promise<void> {
  await page.waitForFunction(() => document.body.dataset.plans !== undefined && document.body.dataset.charts === document.body.dataset.plans, null, { timeout: 20_000 });
}

const REQUIRED = ["kvBytesPerToken", "kvCacheBytes", "kvCacheBytesPerGpu", "weightBytes", "maxBatch", "maxContext", "options.context", "options.batch"];

/**
 * Every number on the page equals the CLI's JSON value at its data-key, exactly. On failure the message lists
 * every mismatch (key, page value, CLI value), the largest absolute difference and its key; tolerance 0.
 */
async function expectPageMatchesCli(what: string, cliArgs: string[], opts: { modelFile?: string } = {}): Promise<Record<string, unknown>> {
  await settled();
  const status = await page.getAttribute("body", "data-status");
  const planError = await page.textContent("#plan-error");
  assert.equal(status, "ready", `${what}: page status ${status}, error: ${planError}`);
  // A pasted config shows as "--model config.json"; the CLI reads the same JSON from the file the test wrote.
  const json = mqaPlan(opts.modelFile ? cliArgs.map((a) => (a === "config.json" ? opts.modelFile! : a)) : cliArgs);
  const shown = await shownNumbers();
  const keys = new Set(shown.map((s) => s.key));
  for (const k of REQUIRED) assert.ok(keys.has(k), `${what}: the page shows no element with data-key="${k}"`);
  const variants = json.variants as unknown[];
  assert.ok(variants.length >= 2, `${what}: expected at least 2 what-if variants in the CLI output`);
  for (let i = 0; i < variants.length; i++) {
    for (const k of ["kvBytesPerToken", "kvCacheBytes", "maxBatch", "maxContext"]) assert.ok(keys.has(`variants.${i}.${k}`), `${what}: variant row ${i} has no ${k}`);
  }
  const mismatches: string[] = [];
  let worst = { diff: 0, key: "" };
  for (const s of shown) {
    const expected = getPath(json, s.key);
    const got = Number(s.value);
    if (typeof expected !== "number" || !Number.isInteger(got) || got !== expected) {
      mismatches.push(`${s.key}: page ${s.value} vs mqa plan --json ${JSON.stringify(expected)}`);
      const diff = typeof expected === "number" ? Math.abs(got - expected) : Infinity;
      if (!(diff <= worst.diff)) worst = { diff, key: s.key };
    }
    // The visible exact figure ("2,147,483,648 B") is the same integer as data-value.
    if (/^[\d,]+( B)?$/.test(s.text.trim())) assert.equal(s.text.replace(/[^\d]/g, ""), s.value, `${what}: ${s.key} shows "${s.text}" but data-value is ${s.value}`);
  }
  assert.equal(mismatches.length, 0, `${what}: ${mismatches.length} of ${shown.length} numbers differ from \`mqa plan ${cliArgs.join(" ")} --json\` (tolerance 0; largest |diff| ${worst.diff} at ${worst.key}):\n  ${mismatches.join("\n  ")}`);
  // The command the page prints is the one we ran.
  const cli = (await page.textContent("#cli-command"))!.trim();
  assert.equal(cli, `npx mqa plan ${cliArgs.join(" ")} --json`, `${what}: the page's CLI line differs from the command the test ran`);
  // Both charts are drawn; the heatmap has one cell per variant × batch × context (default axes: 9 × 9).
  const cells = await page.$$eval("#chart-heatmap .mark-rect path", (els) => els.length);
  const lines = await page.$$eval("#chart-context .mark-line path", (els) => els.length);
  const chartVariants = new Set([json.numKvHeads, ...variants.map((v) => (v as { numKvHeads: number }).numKvHeads)]).size;
  assert.equal(cells, chartVariants * 9 * 9, `${what}: heatmap has ${cells} cells, expected ${chartVariants} variants × 9 batches × 9 contexts`);
  assert.equal(lines, chartVariants, `${what}: cache-vs-context chart has ${lines} lines, expected ${chartVariants}`);
  const throughput = await page.$$eval("#chart-throughput svg", (els) => els.length);
  assert.equal(throughput, 1, `${what}: the throughput chart is not drawn`);
  return json;
}

function httpGet(path: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  const url = new URL(baseUrl);
  return new Promise((ok, fail) => {
    // A raw request path: fetch() and new URL() would normalise the ".." away before it reaches the server.
    const req = request({ host: url.hostname, port: url.port, path, method: "GET" }, (res) => {
      res.resume();
      res.on("end", () => ok({ status: res.statusCode!, headers: res.headers }));
    });
    req.on("error", fail);
    req.end();
  });
}

before(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`web.test.ts: ${CHROMIUM} is missing. The browser test needs Debian's chromium: apt-get install -y chromium (.ci/run installs it on fresh machines).`);
  }
  const { outDir } = await buildWeb({ outDir: join(tmp, "site") });
  baseUrl = await startServer(outDir);
  context = await chromium.launchPersistentContext(join(tmp, "profile"), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1440, height: 1000 },
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(10_000);
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  await page.goto(baseUrl);
  await settled();
  assert.deepEqual(errors, [], `the page logged errors while loading`);
});

after(async () => {
  await context?.close();
  if (server && server.exitCode === null) server.kill("SIGTERM");
  rmSync(tmp, { recursive: true, force: true });
});

test("server: COOP/COEP on every response, MIME types, no directory traversal", async () => {
  const index = await httpGet("/");
  assert.equal(index.status, 200);
  assert.equal(index.headers["cross-origin-opener-policy"], "same-origin");
  assert.equal(index.headers["cross-origin-embedder-policy"], "require-corp");
  assert.match(String(index.headers["content-type"]), /^text\/html/);
  const js = await httpGet("/app.js");
  assert.match(String(js.headers["content-type"]), /^text\/javascript/);
  assert.match(String((await httpGet("/style.css")).headers["content-type"]), /^text\/css/);
  for (const evil of ["/../package.json", "/%2e%2e/package.json", "/..%2fpackage.json", "/..%5cpackage.json", "/a/../../package.json", "/%00index.html", "/%E0%A4%A"]) {
    const r = await httpGet(evil);
    assert.ok(r.status === 400 || r.status === 404, `GET ${evil} answered ${r.status}, expected 400 or 404`);
    assert.equal(r.headers["cross-origin-embedder-policy"], "require-corp", `GET ${evil}: error responses need COEP too`);
  }
  assert.equal((await httpGet("/missing.js")).status, 404);
  assert.equal(await page.evaluate(() => crossOriginIsolated), true, "the page is not cross-origin isolated (SharedArrayBuffer would be unavailable)");
});

test("default model: the page shows exactly what mqa plan --json says", async () => {
  assert.equal(await page.inputValue("#preset"), "llama-2-7b");
  assert.equal(await page.inputValue("#kv-heads"), "32,8,1");
  const json = await expectPageMatchesCli("default", ["--model", "llama-2-7b", "--gpu", "a100-80gb", "--gpus", "1", "--tp", "1", "--context", "4096", "--batch", "1", "--kv-dtype", "f16", "--weight-dtype", "bf16", "--kv-heads", "32,8,1"]);
  // Independent anchor (REFERENCE.md): Llama-2-7B in f16 is 524,288 B per token, 2 GiB at 4K.
  assert.equal(json.kvBytesPerToken, 524288);
  assert.equal(json.kvCacheBytes, 2 * 1024 ** 3);
  // The screenshot in docs/web-planner.png is this state: MQA_WEB_SCREENSHOT=docs/web-planner.png node scripts/test.mjs web
  const shot = process.env.MQA_WEB_SCREENSHOT || join(tmp, "web-planner.png");
  await page.screenshot({ path: shot, fullPage: true });
  assert.ok(statSync(shot).size > 20_000, `screenshot ${shot} is suspiciously small`);
  // A what-if that does not divide the heads is the planner's one-line error, shown on the page.
  await page.fill("#kv-heads", "32,5,1");
  await settled();
  assert.equal(await page.getAttribute("body", "data-status"), "error");
  assert.match((await page.textContent("#plan-error"))!, /What-if KV heads: 5 does not divide the 32 query heads/);
  await page.fill("#kv-heads", "32,8,1");
  await settled();
  assert.equal(await page.getAttribute("body", "data-status"), "ready");
});

test("another preset on 4 × H100 with tp 4, then the context and batch sliders", async () => {
  await page.selectOption("#preset", "llama-3.1-70b");
  await page.selectOption("#gpu", "h100-sxm");
  await page.fill("#tp", "4"); // the page raises GPUs to 4 with it
  await page.selectOption("#kv-dtype", "fp8");
  assert.equal(await page.inputValue("#gpus"), "4");
  assert.equal(await page.inputValue("#kv-heads"), "64,8,1", "a new model resets the what-ifs to MHA, its own count, MQA");
  const base = ["--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--gpus", "4", "--tp", "4"];
  const at = (ctx: number, batch: number) => [...base, "--context", String(ctx), "--batch", String(batch), "--kv-dtype", "fp8", "--weight-dtype", "bf16", "--kv-heads", "64,8,1"];
  const before = await expectPageMatchesCli("llama-3.1-70b, 4 × h100-sxm", at(4096, 1));

  // Keyboard on the sliders: context 4096 → 6144 → 8192 → 12288 → 16384 → 24576 → 32768; batch 1 → 2 → 3 → 4 → 6 → 8.
  await page.focus("#context");
  for (let i = 0; i < 6; i++) await page.keyboard.press("ArrowRight");
  await page.focus("#batch");
  for (let i = 0; i < 5; i++) await page.keyboard.press("ArrowRight");
  await settled();
  assert.equal(await page.getAttribute("#context-out", "data-value"), "32768");
  assert.equal(await page.getAttribute("#batch-out", "data-value"), "8");
  const after = await expectPageMatchesCli("llama-3.1-70b at 32K × 8", at(32768, 8));
  assert.equal(after.kvCacheBytes, (before.kvCacheBytes as number) * 8 * 8, "8× the context and 8× the batch is 64× the cache (no sliding window)");
});

test("pasted config.json: inline errors name the problem, a valid config matches mqa plan on that file", async () => {
  await page.click("label:has(input[name=source][value=config])");
  assert.equal(await page.isChecked("input[name=source][value=config]"), true);
  await page.fill("#config", '{ "model_type": "llama", "hidden_size": 2048,');
  await settled();
  assert.equal(await page.isVisible("#config-error"), true);
  assert.match((await page.textContent("#config-error"))!, /not valid JSON/);
  assert.equal(await page.$$eval("[data-key=kvCacheBytes]", (e) => e.length), 0, "no numbers are shown for a broken config");

  const config: Record<string, unknown> = {
    model_type: "mistral", hidden_size: 2048, num_hidden_layers: 18, num_attention_heads: 16, num_key_value_heads: 4,
    intermediate_size: 5632, vocab_size: 32000, max_position_embeddings: 32768, sliding_window: 4096, rms_norm_eps: 1e-5,
  };
  const { num_hidden_layers: _dropped, ...missing } = config;
  await page.fill("#config", JSON.stringify(missing));
  await settled();
  assert.match((await page.textContent("#config-error"))!, /num_hidden_layers/, "the error names the missing field");

  await page.fill("#config", JSON.stringify(config, null, 2));
  await settled();
  assert.equal(await page.isVisible("#config-error"), false);
  assert.equal(await page.inputValue("#kv-heads"), "16,4,1", "a GQA model's what-ifs: MHA, its own 4 KV heads, MQA");
  const file = join(tmp, "config.json");
  writeFileSync(file, JSON.stringify(config));
  const args = ["--model", "config.json", "--gpu", "h100-sxm", "--gpus", "4", "--tp", "4", "--context", "32768", "--batch", "8", "--kv-dtype", "fp8", "--weight-dtype", "bf16", "--kv-heads", "16,4,1"];
  const json = await expectPageMatchesCli("pasted config.json", args, { modelFile: file });
  // Every layer slides over 4096 tokens: the cache holds 4096 of the 32768 tokens per sequence.
  assert.equal(json.kvCacheBytes, 18 * 2 * 4 * 128 * 1 * 4096 * 8);

  // A custom GPU, a contiguous cache and vLLM's utilisation at 0.8.
  await page.selectOption("#gpu", "custom");
  await page.fill("#gpu-memory", "24");
  await page.fill("#gpu-bandwidth", "936");
  await page.fill("#gpu-tflops", "71");
  await page.fill("#block-size", "0");
  await page.fill("#gpu-util", "0.8");
  const custom = ["--model", "config.json", "--gpu-memory-gib", "24", "--gpu-bandwidth-gbs", "936", "--gpu-tflops", "71", "--gpus", "4", "--tp", "4", "--context", "32768", "--batch", "8", "--kv-dtype", "fp8", "--weight-dtype", "bf16", "--block-size", "0", "--gpu-memory-utilization", "0.8", "--kv-heads", "16,4,1"];
  const json2 = await expectPageMatchesCli("pasted config.json on a custom GPU", custom, { modelFile: file });
  assert.equal((json2.memory as { totalBytesPerGpu: number }).totalBytesPerGpu, 24 * 1024 ** 3);
  await page.fill("#gpu-util", "1.5");
  await settled();
  assert.match((await page.textContent("#plan-error"))!, /GPU memory use: 1.5 is not in \(0, 1\]/, "an out-of-range utilisation is reported, naming the page's field");
  await page.fill("#gpu-util", "0.8");
  await settled();

  const shot = join(tmp, "web-planner-config.png");
  await page.screenshot({ path: shot, fullPage: true });
  assert.ok(statSync(shot).size > 20_000, `screenshot ${shot} is suspiciously small`);
});

/**
 * Every training number on the page (data-train-key = a path in `mqa plan --train --json`) equals the CLI's value,
 * exactly, and the hours row shows the CLI's hours to one decimal. On failure lists every mismatch; tolerance 0.
 */
async function expectTrainingMatchesCli(what: string, args: string[]): Promise<Record<string, unknown>> {
  await settled();
  const cli = (await page.textContent("#train-cli-command"))!.trim();
  assert.equal(cli, `npx mqa plan --train ${args.join(" ")} --json`, `${what}: the page's training CLI line differs from the command the test runs`);
  assert.equal(await page.isHidden("#train-error"), true, `${what}: training error ${await page.textContent("#train-error")}`);
  const json = mqaPlan(["--train", ...args]);
  const shown = await page.$$eval("[data-train-key]", (els) => els.map((e) => ({ key: e.getAttribute("data-train-key")!, value: e.getAttribute("data-value") ?? "" })));
  const variants = json.variants as { hours: number | null; fits: boolean }[];
  for (let i = 0; i < variants.length; i++) {
    for (const k of ["memory.weights", "memory.gradients", "memory.optimizerStates", "memory.activations", "memory.total", "maxMicroBatch"]) {
      assert.ok(shown.some((s) => s.key === `variants.${i}.${k}`), `${what}: training column ${i} has no ${k}`);
    }
  }
  const mismatches = shown.filter((s) => getPath(json, s.key) !== Number(s.value)).map((s) => `${s.key}: page ${s.value} vs CLI ${JSON.stringify(getPath(json, s.key))}`);
  assert.equal(mismatches.length, 0, `${what}: ${mismatches.length} of ${shown.length} training numbers differ (tolerance 0):\n  ${mismatches.join("\n  ")}`);
  const hours = await page.$$eval("[data-train-hours]", (els) => els.map((e) => e.getAttribute("data-train-hours")));
  assert.deepEqual(hours, variants.map((v) => (v.hours === null ? "" : v.hours.toFixed(1))), `${what}: hours`);
  const fits = await page.$$eval("[data-train-fits]", (els) => els.map((e) => e.getAttribute("data-train-fits")));
  assert.deepEqual(fits, variants.map((v) => String(v.fits)), `${what}: fits`);
  return json;
}

test("training view: the same trainPlan numbers as mqa plan --train --json (adamw ZeRO 2, then lora), errors stay in the panel", async () => {
  await page.goto(`${baseUrl}#preset=llama-2-7b&gpu=h100-sxm&gpus=8&tp=1&kvHeads=32,8,1`);
  await settled();
  await page.selectOption("#optimizer", "adamw");
  await page.selectOption("#zero", "2");
  await page.fill("#micro-batch", "1");
  await page.fill("#seq", "4096");
  await page.fill("#train-tokens", "1e11");
  await page.fill("#mfu", "0.4");
  await page.check("#flash-attention");
  const common = ["--model", "llama-2-7b", "--gpu", "h100-sxm"];
  const adamw = await expectTrainingMatchesCli("adamw zero 2", [...common, "--optimizer", "adamw", "--zero", "2", "--flash-attention", "--micro-batch", "1", "--seq", "4096", "--gpus", "8", "--tokens", "1e11", "--mfu", "0.4", "--kv-heads", "32,8,1"]);
  assert.equal((adamw.variants as unknown[]).length, 4);
  await page.selectOption("#optimizer", "lora");
  await page.fill("#lora-rank", "8");
  await page.check("#checkpointing");
  await expectTrainingMatchesCli("lora rank 8", [...common, "--optimizer", "lora", "--lora-rank", "8", "--zero", "2", "--checkpointing", "--flash-attention", "--micro-batch", "1", "--seq", "4096", "--gpus", "8", "--tokens", "1e11", "--mfu", "0.4", "--kv-heads", "32,8,1"]);
  // The training settings survive a reload through the URL hash.
  const url = page.url();
  assert.match(url, /optimizer=lora&loraRank=8&zero=2&checkpointing=1&flashAttention=1/);
  await page.goto("about:blank");
  await page.goto(url);
  await settled();
  assert.deepEqual([await page.inputValue("#optimizer"), await page.inputValue("#lora-rank"), await page.inputValue("#zero"), await page.isChecked("#checkpointing")], ["lora", "8", "2", true]);
  // A bad training value is the library's message with the input's label, in the training panel only.
  await page.fill("#mfu", "1.5");
  await settled();
  assert.equal(await page.getAttribute("body", "data-status"), "ready");
  assert.match((await page.textContent("#train-error"))!, /^MFU: 1\.5 is not a fraction in \(0, 1\]$/);
  await page.fill("#mfu", "0.4");
  await settled();
  assert.equal(await page.isHidden("#train-error"), true);
});
