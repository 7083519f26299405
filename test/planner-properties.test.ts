// Property test: for every preset and every real config fixture, on several GPUs, tp degrees and KV dtypes, the JSON
// keys the issue fixes (kvBytesPerToken, kvCacheBytes, kvCacheBytesPerGpu, weightBytes, maxBatch, maxContext) are safe
// integers in every variant, every number in the result is finite, and the byte counts keep their invariants.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { plan, tpSplitProblem } from "../src/planner/plan.js";
import { listPresets, presetSpec } from "../src/config/presets.js";
import { loadHfConfigSpec } from "../src/formats/model-file.js";
import type { ModelSpec } from "../src/config/types.js";

const KEYS = ["kvBytesPerToken", "kvCacheBytes", "kvCacheBytesPerGpu", "weightBytes", "maxBatch", "maxContext"] as const;
const GPUS = ["a100-80gb", "rtx-3090", "mi300x"];
const TPS = [1, 2, 4, 8];
const KV_DTYPES = ["f16", "fp8", "q4_0"];

function specs(): ModelSpec[] {
  const dir = join(import.meta.dirname, "fixtures", "configs");
  const files = readdirSync(dir).filter((f) => f.endsWith(".config.json") && !/jamba|mamba/.test(f));
  return [...listPresets().map((p) => presetSpec(p.name)), ...files.map((f) => loadHfConfigSpec(join(dir, f)))];
}

/** Paths of every number in `value` that is not finite (NaN, ±Infinity) or was turned into null by JSON. */
function nonFinite(value: unknown, path = "$"): string[] {
  if (typeof value === "number") return Number.isFinite(value) ? [] : [path];
  if (Array.isArray(value)) return value.flatMap((v, i) => nonFinite(v, `${path}[${i}]`));
  if (value && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => nonFinite(v, `${path}.${k}`));
  return [];
}

test("integer keys and finite numbers for every model × GPU × valid tp × KV dtype", () => {
  const bad: string[] = [];
  let plans = 0;
  for (const spec of specs()) {
    for (const gpu of GPUS) {
      for (const tp of TPS.filter((t) => tpSplitProblem(spec, t) === null)) {
        for (const kvDtype of KV_DTYPES) {
          const where = `${spec.name} on ${gpu} tp ${tp} ${kvDtype}`;
          const r = plan(spec, { gpu, tp, gpus: tp, kvDtype, context: 8192, batch: 3, kvHeads: ["full", "mqa"] });
          plans++;
          for (const v of [r, ...r.variants]) {
            for (const k of KEYS) if (!Number.isSafeInteger(v[k]) || v[k] < 0) bad.push(`${where} ${v.label}: ${k} = ${v[k]}`);
            // Invariants: the per-GPU cache never exceeds the whole cache's per-replica share; MLA and MQA never shrink past one row.
            if (v.kvCacheBytesPerGpu > v.kvCacheBytes) bad.push(`${where} ${v.label}: per-GPU ${v.kvCacheBytesPerGpu} > whole ${v.kvCacheBytes}`);
            if (v.kvCacheBytes > v.kvBytesPerToken * 8192 * 3) bad.push(`${where} ${v.label}: cache ${v.kvCacheBytes} > bytes/token × context × batch`);
          }
          const json = JSON.parse(JSON.stringify(r));
          for (const p of nonFinite(r)) bad.push(`${where}: ${p} is not finite`);
          for (const k of KEYS) if (json[k] === null) bad.push(`${where}: ${k} serialised as null`);
        }
      }
    }
  }
  assert.ok(plans > 500, `only ${plans} plans`);
  assert.deepEqual(bad.slice(0, 20), [], `${bad.length} violations`);
});
