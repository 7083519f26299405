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
