// Checkpoints: a run interrupted and resumed from its checkpoint (weights + AdamW moments + batch RNG)
// ends bit-identical to an uninterrupted run; the checkpoint is HF layout whose config.json the spec
// reader accepts; MQAR data follows the reference layout.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readSafetensorsF32 } from "../src/train/checkpoint.js";
import { mqarExample } from "../src/train/mqar.js";
import { Rng } from "../src/random.js";
import { runTraining, type RunConfig } from "../src/train/run.js";
import { specFromHfConfig } from "../src/config/hf.js";

function config(out: string, steps: number, resume: string | null, stopAfter: number | null = null): RunConfig {
  return {
    model: { hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8, intermediateSize: 64, ropeTheta: 10000, normEps: 1e-5 },
    train: { steps, batch: 4, seqLen: 32, accum: 2, lr: 3e-3, minLr: 3e-4, warmup: 2, weightDecay: 0.1, clip: 1, seed: 9 },
    data: { kind: "mqar", vocabSize: 64, trainPairs: [2, 4], evalPairs: [4], evalExamples: 8 },
    out, evalEvery: 0, evalTokens: 1024, saveEvery: 0, backend: "ts", threads: 1, resume, chart: false, stopAfter,
  };
}

test("resume from a checkpoint continues bit-identically", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mqa-train-"));
  try {
    await runTraining(config(join(dir, "straight"), 8, null));
    await runTraining(config(join(dir, "split"), 8, null, 3));
    await runTraining(config(join(dir, "split"), 8, join(dir, "split")));
    const a = readSafetensorsF32(join(dir, "straight", "model.safetensors"));
    const b = readSafetensorsF32(join(dir, "split", "model.safetensors"));
    assert.equal(a.size, b.size);
    for (const [name, t] of a) {
      const u = b.get(name)!.data;
      const i = t.data.findIndex((x, j) => x !== u[j]);
      assert.equal(i, -1, `${name}[${i}]: straight ${t.data[i]} vs resumed ${u[i]}`);
    }
    const cfg = JSON.parse(readFileSync(join(dir, "split", "config.json"), "utf8"));
    const spec = specFromHfConfig(cfg, "config.json");
    assert.equal(spec.family, "llama");
    assert.equal(spec.numKvHeads, 2);
    assert.equal(spec.tieWordEmbeddings, false);
    assert.equal(spec.headDim, 8);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("MQAR examples follow Zoology's layout", () => {
  const V = 64, T = 32, D = 4;
  const inputs = new Int32Array(T), labels = new Int32Array(T);
  const noNoise = { vocabSize: V, seqLen: T, numPairs: D, randomNonQueries: false };
  mqarExample(noNoise, new Rng(3), inputs, labels);
  const kv = new Map<number, number>();
  for (let d = 0; d < D; d++) {
    assert.ok(inputs[2 * d] >= 1 && inputs[2 * d] < V / 2, `key ${inputs[2 * d]} outside [1, V/2)`);
    assert.ok(inputs[2 * d + 1] >= V / 2 && inputs[2 * d + 1] < V, `value ${inputs[2 * d + 1]} outside [V/2, V)`);
    kv.set(inputs[2 * d], inputs[2 * d + 1]);
    assert.equal(labels[2 * d], -100);
    assert.equal(labels[2 * d + 1], -100);
  }
  assert.equal(kv.size, D, "keys must be distinct");
  let queries = 0;
  for (let t = 2 * D; t < T; t++) {
    if (labels[t] === -100) {
      assert.equal(inputs[t], 0, `non-query position ${t} should be 0 without random_non_queries`);
      continue;
    }
    queries++;
    assert.equal((t - 2 * D) % 2, 0, `query at odd offset ${t}`);
    assert.equal(labels[t], kv.get(inputs[t]), `label at ${t} is not the value of key ${inputs[t]}`);
  }
  assert.equal(queries, D, "each key is queried exactly once");
  // p(gap = i−1) ∝ a·i^(a−1), a = 0.01: the share of queries right after the pairs matches it.
  const Tl = 64, space = Tl / 2 - 1;
  let z = 0;
  for (let i = 1; i <= space; i++) z += Math.pow(i, -0.99);
  const p0 = 1 / z;
  const inL = new Int32Array(Tl), labL = new Int32Array(Tl);
  const rng = new Rng(1);
  const trials = 4000;
  let hits = 0;
  for (let e = 0; e < trials; e++) {
    mqarExample({ vocabSize: 128, seqLen: Tl, numPairs: 1, randomNonQueries: false }, rng, inL, labL);
    if (labL[2] !== -100) hits++;
  }
  const sd = Math.sqrt((p0 * (1 - p0)) / trials);
  assert.ok(Math.abs(hits / trials - p0) < 4 * sd, `gap 0 frequency ${hits / trials} vs p ${p0.toFixed(4)} (4σ = ${(4 * sd).toFixed(4)})`);
});
