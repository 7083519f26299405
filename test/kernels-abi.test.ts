// The host's kernel ABI (src/kernels/abi.ts) is generated from the AssemblyScript sources; this fails
// when someone edits layout.ts (or the activation / training op codes) without regenerating it, or edits
// abi.ts by hand. The generator's grouping itself is checked on a few words both sides use.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
// @ts-expect-error: a plain .mjs build script without type declarations
import { renderAbi } from "../src/kernels/assembly/gen-abi.mjs";
import { A, CTL, KIND, S, SEG } from "../src/kernels/abi.js";

test("src/kernels/abi.ts is what gen-abi.mjs makes of the AssemblyScript layout (run npm run build if not)", () => {
  const committed = readFileSync(join(import.meta.dirname, "..", "src", "kernels", "abi.ts"), "utf8");
  assert.equal(committed, renderAbi() as string, "src/kernels/abi.ts is stale or hand-edited: npm run build regenerates it");
  const layout = readFileSync(join(import.meta.dirname, "..", "src", "kernels", "assembly", "layout.ts"), "utf8");
  for (const [name, value] of [["CTL_ARGS", CTL.ARGS], ["KIND_ATTENTION", KIND.ATTENTION], ["A_NSEG", A.NSEG], ["S_CUM", S.CUM], ["SEG_WORDS", SEG.WORDS]] as const) {
    assert.match(layout, new RegExp(`export const ${name}(: \\w+)? = ${value};`), `${name} = ${value} in assembly/layout.ts`);
  }
  assert.ok(S.CUM < SEG.WORDS, "every segment word fits the segment");
});
