// docs/seed-tables.md is exactly what `mqa seed-tables` generates, and its key figures are right.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { seedTables, HEATMAP_FILE } from "../src/planner/seed.js";

const DOCS = join(import.meta.dirname, "..", "docs");

test("docs/seed-tables.md is up to date (run `npx mqa seed-tables` after changing the planner)", () => {
  const { markdown } = seedTables();
  const committed = readFileSync(join(DOCS, "seed-tables.md"), "utf8");
  const a = committed.split("\n");
  const b = markdown.split("\n");
  const i = a.findIndex((line, k) => line !== b[k]);
  assert.equal(i === -1 && a.length === b.length, true, `first differing line ${i + 1}:\n  doc: ${a[i]}\n  gen: ${b[i]}`);
  assert.ok(existsSync(join(DOCS, HEATMAP_FILE)), "heatmap PNG committed");
});

test("seed tables: 0.5 MiB per token, 2 GiB at 4K, 64 GiB at 128K, the 16,384-token savings", () => {
  const { markdown } = seedTables();
  assert.match(markdown, /524,288 bytes = 512 KiB per token/);
  assert.match(markdown, /\| 4,096 \| MHA \(32 KV\) \| 2,147,483,648 \| 2 GiB \| "over 1 GB": \*\*wrong\*\*/);
  assert.match(markdown, /\| 131,072 \| MHA \(32 KV\) \| 68,719,476,736 \| 64 GiB \| "over 32 GB": \*\*wrong\*\*/);
  assert.match(markdown, /\| 7B \(32 L × 32 H × 128\) \| 16,384 \| 8 GiB \| 256 MiB \| 7\.75 GiB \| 32× \|/);
  assert.match(markdown, /\| 70B \(80 L × 64 H × 128\) \| 16,384 \| 40 GiB \| 640 MiB \| 39\.375 GiB \| 64× \|/);
  assert.match(markdown, /6,738,415,616/);
});

test("seed corrections are computed: MHA 7B on A100-80GB max batch at 16K and 32K is the planner's, and the doc says so", async () => {
  const { plan } = await import("../src/planner/plan.js");
  const { presetSpec } = await import("../src/config/presets.js");
  const seven = presetSpec("llama-2-7b");
  const at = (context: number) => plan(seven, { gpu: "a100-80gb", context, kvHeads: [32] }).variants[0].maxBatch;
  const [b16, b32, b128] = [at(16384), at(32768), at(131072)];
  assert.ok(b16 >= 4 && b32 > 1 && b128 === 0, `planner: ${b16} at 16K, ${b32} at 32K, ${b128} at 128K`);
  const { markdown } = seedTables();
  const row = (label: string) => markdown.split("\n").find((l) => l.startsWith(`| "${label}" |`)) ?? "";
  assert.ok(row("batch size 4 is already impossible at 16K").includes(`max batch ${b16} at 16K`), row("batch size 4 is already impossible at 16K"));
  assert.match(row("batch size 4 is already impossible at 16K"), /\*\*wrong\*\*: batch \d+ fits at 16K/);
  assert.ok(markdown.includes(`| "MHA can only handle batch size 1 beyond 32K" | max batch ${b32} at 32K |`));
  assert.ok(markdown.includes(`**wrong** at 32K: batch ${b32} fits`));
  assert.ok(markdown.includes(`**wrong** at 128K: not even batch 1 fits`));
  // The exact table's MHA row is the planner's maxBatch at each context.
  const { HEATMAP_CONTEXTS } = await import("../src/planner/seed.js");
  const exactRow = markdown.split("\n").filter((l) => l.startsWith("| MHA (32 KV) |"))[1];
  assert.equal(exactRow, `| MHA (32 KV) | ${HEATMAP_CONTEXTS.map((c) => at(c).toLocaleString("en-US")).join(" | ")} |`);
  // MQA at 128K: 2 GiB in fp16, not 1 GB.
  assert.match(markdown, /\| 131,072 \| MQA \(1 KV\) \| 2,147,483,648 \| 2 GiB \| "MQA brings 128K down to 1 GB": \*\*wrong\*\*, 2 GiB: 2× the seed's figure/);
});

test("seed claim verdicts follow the planner: on an A100-40GB 'batch 4 impossible at 16K' holds", async () => {
  const { seedClaims } = await import("../src/planner/seed-claims.js");
  const { plan } = await import("../src/planner/plan.js");
  const { seedShapes } = await import("../src/planner/seed.js");
  const shapes = seedShapes();
  const ctx = { seven: shapes[0].spec, seventy: shapes[2].spec };
  const on = (gpu: string) => seedClaims({ ...ctx, gpu }).find((c) => c.id === "mha-batch-16k")!;
  const small = plan(ctx.seven, { gpu: "a100-40gb", context: 16384, kvHeads: [32] }).variants[0].maxBatch;
  assert.ok(small < 4, `A100-40GB fits ${small} at 16K`);
  assert.equal(on("a100-40gb").contradicted, false);
  assert.equal(on("a100-40gb").planner, `max batch ${small} at 16K`);
  assert.equal(on("a100-80gb").contradicted, true);
  // Every claim the doc marks wrong is one the planner contradicts, and the count in §7 is theirs.
  const all = seedClaims({ ...ctx, gpu: "a100-80gb" });
  assert.match(seedTables().markdown, new RegExp(`${all.filter((c) => c.contradicted).length} of the ${all.length} claims checked are contradicted`));
});

test("heatmap marks contexts beyond max_position_embeddings (cells, chart opacity legend, † in the table)", async () => {
  const { heatmapCells, heatmapChart } = await import("../src/planner/charts.js");
  const { plan } = await import("../src/planner/plan.js");
  const { presetSpec } = await import("../src/config/presets.js");
  const seven = presetSpec("llama-2-7b");
  assert.equal(seven.maxPositions, 4096);
  const r = plan(seven, { gpu: "a100-80gb", kvHeads: [32] });
  const cells = heatmapCells(seven, r, { batches: [1], contexts: [2048, 4096, 8192] });
  assert.deepEqual(cells.map((c) => [c.context, c.beyondMaxPositions]), [[2048, false], [4096, false], [8192, true]]);
  const chart = JSON.stringify(heatmapChart(seven, r, { contexts: [2048, 8192] }));
  assert.match(chart, /"opacity":\{"field":"range"/);
  assert.match(chart, /context > 4096: beyond max positions/);
  const within = JSON.stringify(heatmapChart(seven, r, { contexts: [1024, 4096] }));
  assert.match(within, /"legend":null/, "no beyond-range legend when every context is within range");
  const { markdown } = seedTables();
  assert.match(markdown, /\| 4K \| 8K† \| 16K† \|/);
  assert.doesNotMatch(markdown, /\| 4K† \|/);
});
