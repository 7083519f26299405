// The architecture as a test: every import in src/ points to the same floor or below (ARCHITECTURE.md,
// "imports point down"). A folder's floor is its row below; a new folder must be placed here. Same-floor
// folders may not import each other either (that would be a cycle waiting to happen), only themselves.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";

const SRC = join(import.meta.dirname, "..", "src");
const FLOORS: string[][] = [
  ["errors.ts", "random.ts", "package-root.ts", "dtypes"], // 0 ground: errors, PRNGs, element types and codecs
  ["config", "kernels"], // 1 config → ModelSpec; WASM kernels and their host
  ["kvcache", "formats"], // 2 the byte count and caches; file readers and writers
  ["attention"], // 3 one attention for any numKvHeads
  ["models"], // 4 shared blocks + one file per family
  ["generate", "planner"], // 5 generation loop; memory and speed arithmetic
  ["train", "serve"], // 6 trainer; HTTP server
  ["convert", "eval"], // 7 MHA → GQA/MQA conversion (calibrates through generate); evaluation
  ["cli", "index.ts"], // 8 front ends
];
const floorOf = new Map(FLOORS.flatMap((names, i) => names.map((n) => [n, i] as const)));

function* sources(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (relative(SRC, p) !== join("kernels", "assembly")) yield* sources(p); // AssemblyScript: its own module
    } else if (name.endsWith(".ts")) yield p;
  }
}

/** The room of a path under src/: its top folder, or the file itself at the top. */
const room = (p: string) => relative(SRC, p).split(/[\\/]/)[0].replace(/\.js$/, ".ts");

test("every import in src/ points to the same folder or to a lower floor", () => {
  const bad: string[] = [];
  for (const file of sources(SRC)) {
    const from = room(file);
    assert.ok(floorOf.has(from), `src/${from} has no floor in test/layers.test.ts; place it`);
    for (const m of readFileSync(file, "utf8").matchAll(/(?:from\s+|import\()\s*"(\.{1,2}\/[^"]+)"/g)) {
      const target = normalize(join(dirname(file), m[1]));
      if (relative(SRC, target).startsWith("..")) continue; // outside src (cli/bench.ts runs bench/attention.ts)
      const to = room(target);
      if (to === from) continue;
      const [a, b] = [floorOf.get(from)!, floorOf.get(to)];
      if (b === undefined || b >= a) bad.push(`${relative(SRC, file)} (floor ${a}) imports ${m[1]} (src/${to}, floor ${b ?? "none"})`);
    }
  }
  assert.deepEqual(bad, [], `imports that do not point down:\n${bad.join("\n")}`);
});
