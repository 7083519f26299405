// A training checkpoint loads in the model runtime (src/models, what `mqa generate` uses) and the
// runtime's next-token probabilities equal the training forward's, for MHA, GQA and MQA.
// Tolerance: 2e-5 absolute on probabilities (float32 on both sides, different summation orders).
import { test } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Arena } from "../src/kernels/memory.js";
import { referenceKernels } from "../src/kernels/reference.js";
import { loadModel } from "../src/models/index.js";
import { saveCheckpoint } from "../src/train/checkpoint.js";
import { tsMatmuls } from "../src/train/matmul.js";
import { f32Allocator, TrainModel } from "../src/train/model.js";
import { Rng } from "../src/random.js";
import { assertClose } from "./train_helpers.js";

for (const K of [4, 2, 1]) {
  test(`checkpoint → runtime: same next-token probabilities (H=4, K=${K})`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "mqa-ckpt-"));
    try {
      const cfg = { vocabSize: 40, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: K, headDim: 8, intermediateSize: 48, maxPositions: 16, ropeTheta: 10000, normEps: 1e-5 };
      const m = new TrainModel(cfg, tsMatmuls(), f32Allocator);
      m.init(3);
      const rng = new Rng(4);
      for (let i = 0; i < m.params.length; i++) m.params[i] += 0.1 * rng.normal(); // sharper than init
      const T = 12;
      const tokens = Int32Array.from({ length: T }, () => rng.int(cfg.vocabSize));
      m.forward(tokens, new Int32Array(T).fill(-100), 1, T);
      const ours = Float32Array.from(m.lastProbs().subarray(0, T * cfg.vocabSize));
      saveCheckpoint(dir, {
        cfg, tensors: m.tensors, params: m.params, m: new Float32Array(m.numParams), v: new Float32Array(m.numParams), tokenizerJson: null, eosId: null,
        state: { version: 1, step: 0, options: { steps: 1, batch: 1, seqLen: T, accum: 1, lr: 0, minLr: 0, warmup: 0, weightDecay: 0, clip: 0, seed: 3 }, rng: { state: 0, spare: null }, adamw: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, step: 0 }, data: "test", elapsedSeconds: 0 },
      });
      const arena = new Arena({ initialBytes: 8 << 20, base: 1 << 20 });
      const { model } = await loadModel(dir, { arena, kernels: referenceKernels(arena) });
      const cache = model.createCache({});
      const seq = cache.addSequence();
      const logits = model.forward(cache, [seq], [Array.from(tokens)], "all");
      const V = cfg.vocabSize;
      const theirs = new Float32Array(T * V);
      for (let t = 0; t < T; t++) {
        let mx = -Infinity, z = 0;
        for (let v = 0; v < V; v++) mx = Math.max(mx, logits[t * V + v]);
        for (let v = 0; v < V; v++) z += Math.exp(logits[t * V + v] - mx);
        for (let v = 0; v < V; v++) theirs[t * V + v] = Math.exp(logits[t * V + v] - mx) / z;
      }
      assertClose(`K=${K} probabilities`, ours, theirs, 2e-5, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
