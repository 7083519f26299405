// Gradients of every parameter against PyTorch autograd (tools/fixtures/gen_train.py, float64) on
// small random MHA (K=8), GQA (K=2) and MQA (K=1) decoders with 8 query heads.
// Tolerances, per path:
//  - float64 TS path: atol 1e-12, rtol 1e-9. Both sides are float64 with the same float32 RoPE angle
//    table, so only summation order differs (measured max |err| 3e-15 on gradients up to 0.9).
//  - float32 path through Kernels.matmul (reference kernels): atol 5e-6, rtol 1e-4. Float32 sums over
//    ~100 terms of O(0.1) values; measured max |err| 5e-7, so 10x headroom.
//  - float32 path on the WASM kernels (matmuls and the training ops of assembly/train.ts, 2 threads):
//    the same tolerances; the kernels' extra error (2^x polynomial 1.2e-7 relative, four-lane sums)
//    is of the order of the f32 rounding already allowed for.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Arena } from "../src/kernels/memory.js";
import { referenceKernels } from "../src/kernels/reference.js";
import { kernelMatmuls, tsMatmuls } from "../src/train/matmul.js";
import { arenaAllocator } from "../src/train/alloc.js";
import { f64Allocator, TrainModel, type TrainModelConfig } from "../src/train/model.js";
import { assertClose } from "./train_helpers.js";
import { kernelTrainOps } from "../src/train/trainops.js";
import { wasmBackends } from "./kernel-backends.js";

const wasmArena = new Arena({ initialBytes: 16 << 20, base: 1 << 20 });
const wasm = wasmBackends(wasmArena, [{ threads: 2, relaxed: true }]);

interface Fixture {
  version: number;
  config: TrainModelConfig;
  B: number;
  T: number;
  tokens: number[];
  targets: number[];
  loss: number;
  tensors: { name: string; shape: number[]; value: number[]; grad: number[] }[];
}

function load(name: string): Fixture {
  const f = JSON.parse(readFileSync(new URL(`../tools/fixtures/train/${name}.json`, import.meta.url), "utf8")) as Fixture;
  assert.equal(f.version, 1, `${name}.json: fixture version ${f.version}, expected 1`);
  return f;
}

function check(f: Fixture, model: TrainModel, label: string, atol: number, rtol: number, lossTol: number): void {
  assert.equal(model.tensors.length, f.tensors.length, `${label}: tensor count`);
  for (const t of f.tensors) {
    assert.deepEqual(model.info(t.name).shape, t.shape, `${label}: shape of ${t.name}`);
    model.p(t.name).set(t.value);
  }
  model.zeroGrad();
  const { sum, count } = model.forward(Int32Array.from(f.tokens), Int32Array.from(f.targets), f.B, f.T);
  model.backward(1 / count);
  assertClose(`${label} loss`, [sum / count], [f.loss], lossTol, 0);
  for (const t of f.tensors) assertClose(`${label} grad ${t.name}`, model.g(t.name), t.grad, atol, rtol);
}

for (const name of ["mha", "gqa", "mqa"]) {
  test(`${name}: float64 gradients of every parameter match PyTorch autograd`, () => {
    const f = load(name);
    check(f, new TrainModel(f.config, tsMatmuls(), f64Allocator), `${name} f64`, 1e-12, 1e-9, 1e-12);
  });
  test(`${name}: float32 gradients through Kernels.matmul (reference kernels) match PyTorch`, () => {
    const f = load(name);
    const arena = new Arena({ initialBytes: 8 << 20 });
    const model = new TrainModel(f.config, kernelMatmuls(referenceKernels(arena), arena), arenaAllocator(arena));
    check(f, model, `${name} f32`, 5e-6, 1e-4, 1e-6);
  });
  test(`${name}: float32 gradients on the WASM kernels (matmuls and training ops, 2 threads) match PyTorch`, () => {
    const f = load(name);
    const k = wasm[0];
    const mm = kernelMatmuls(k, wasmArena);
    const model = new TrainModel(f.config, mm, arenaAllocator(wasmArena), kernelTrainOps(k, wasmArena, mm));
    check(f, model, `${name} f32 ${k.name}`, 5e-6, 1e-4, 1e-6);
  });
}
