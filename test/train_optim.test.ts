// AdamW against torch.optim.AdamW (values printed by torch 1.13 in float64 for this exact sequence of
// gradients and learning rates; the script is in the comment below), the schedule and clipping.
//   p = [0.5, -1, 2, 0] (decay 0.1), g = [1, 1] (no decay), lr 0.01/0.02/0.005, betas (0.9, 0.95), eps 1e-8
// Tolerance 1e-6: our moments are float32, torch's float64.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AdamW, clipGradNorm, learningRate } from "../src/train/optim.js";
import type { TensorInfo } from "../src/train/model.js";
import { assertClose } from "./train_helpers.js";

test("AdamW matches torch.optim.AdamW (decoupled decay on matrices only)", () => {
  const params = Float64Array.of(0.5, -1, 2, 0, 1, 1);
  const tensors: TensorInfo[] = [
    { name: "w", shape: [4], offset: 0, size: 4, decay: true },
    { name: "gain", shape: [2], offset: 4, size: 2, decay: false },
  ];
  const grads = [[0.1, -0.2, 0.3, 0.0, 0.5, -0.5], [1.0, 0.5, -0.5, 2.0, 0.1, 0.2], [-0.3, 0.0, 0.2, 0.1, 0.0, -1.0]];
  const opt = new AdamW(6, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  [0.01, 0.02, 0.005].forEach((lr, i) => opt.update(params, Float64Array.from(grads[i]), tensors, lr));
  const torch = [0.4702662581458353, -0.9970047424243142, 1.9889022952246733, -0.01772507550101117, 0.970568382178789, 1.020371718836828];
  assertClose("AdamW params after 3 steps", params, torch, 1e-6, 0);
});

test("warmup is linear to the peak, cosine ends at minLr", () => {
  const s = { maxLr: 1e-3, minLr: 1e-4, warmupSteps: 10, totalSteps: 110 };
  assertClose("schedule", [learningRate(0, s), learningRate(9, s), learningRate(10, s), learningRate(60, s), learningRate(110, s)], [1e-4, 1e-3, 1e-3, 5.5e-4, 1e-4], 1e-12, 0);
  for (let i = 11; i < 110; i++) assert.ok(learningRate(i, s) <= learningRate(i - 1, s), `lr rises at step ${i}`);
});

test("clipping scales the global norm down to the limit and leaves small gradients alone", () => {
  const g = Float64Array.of(3, 4);
  assert.equal(clipGradNorm(g, 1), 5);
  assertClose("clipped", g, [0.6, 0.8], 1e-6, 0);
  const h = Float64Array.of(0.3, 0.4);
  clipGradNorm(h, 1);
  assertClose("unclipped", h, [0.3, 0.4], 0, 0);
});
