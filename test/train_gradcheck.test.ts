// Central finite differences in float64 for every parameter of a tiny decoder, for MHA, GQA and MQA.
// In float64 with step 1e-5 the truncation error is ~1e-10 and round-off ~1e-11, so a tolerance of
// 1e-7 absolute + 1e-5 relative only fails on a wrong formula.
import { test } from "node:test";
import { tsMatmuls } from "../src/train/matmul.js";
import { f64Allocator, TrainModel, type TrainModelConfig } from "../src/train/model.js";
import { Rng } from "../src/random.js";
import { assertClose } from "./train_helpers.js";

const base: Omit<TrainModelConfig, "numKvHeads"> = {
  vocabSize: 11, hiddenSize: 8, numLayers: 2, numHeads: 4, headDim: 4, intermediateSize: 12, maxPositions: 8, ropeTheta: 10000, normEps: 1e-5,
};

for (const K of [4, 2, 1]) {
  test(`finite differences match backward for every parameter (H=4, K=${K})`, () => {
    const model = new TrainModel({ ...base, numKvHeads: K }, tsMatmuls(), f64Allocator);
    model.init(7);
    // Larger than training init so that attention is not uniform and every path carries signal.
    const rng = new Rng(3);
    for (let i = 0; i < model.params.length; i++) model.params[i] += 0.3 * rng.normal();
    const B = 2, T = 5;
    const tokens = Int32Array.from({ length: B * T }, () => rng.int(base.vocabSize));
    const targets = Int32Array.from({ length: B * T }, (_, i) => (i === 3 ? -100 : rng.int(base.vocabSize)));
    const loss = () => {
      const { sum, count } = model.forward(tokens, targets, B, T);
      return sum / count;
    };
    model.zeroGrad();
    const { count } = model.forward(tokens, targets, B, T);
    model.backward(1 / count);
    const analytic = Float64Array.from(model.grads);
    const numeric = new Float64Array(model.numParams);
    const h = 1e-5;
    for (let i = 0; i < model.numParams; i++) {
      const keep = model.params[i];
      model.params[i] = keep + h;
      const up = loss();
      model.params[i] = keep - h;
      const down = loss();
      model.params[i] = keep;
      numeric[i] = (up - down) / (2 * h);
    }
    for (const t of model.tensors) {
      assertClose(`K=${K} ${t.name}`, analytic.subarray(t.offset, t.offset + t.size), numeric.subarray(t.offset, t.offset + t.size), 1e-7, 1e-5);
    }
  });
}
