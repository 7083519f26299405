// The training planner (src/planner/train.ts, `mqa plan --train`): published figures reproduced, the activation
// formula against hand-worked cases (the paper's MHA/GELU case exactly, then the GQA and SwiGLU terms derived from
// it), LoRA adapter counts, FLOPs and hours, the --json contract and bad inputs.
// s sequence, b micro-batch, h hidden, a heads, L layers, F MLP width, V vocab, Ψ parameters, N_d GPUs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { activationBytes, activationBytesPerLayer, logitsBytes, loraParams, modelStateBytes, trainPlan } from "../src/planner/train.js";
import { presetSpec } from "../src/config/presets.js";
import { specFromHfConfig } from "../src/config/hf.js";
import { withKvHeads } from "../src/config/variant.js";
import { paramCounts } from "../src/planner/params.js";
import { runCli } from "./cli-helpers.js";

const GB = 1e9;

test("ZeRO Figure 1: model states per device for Ψ = 7.5B, N_d = 64, K = 12 (120 / 31.4 / 16.6 / 1.9 GB)", () => {
  // The paper prints GB (1e9 bytes) to one decimal, so its rounding error is at most 0.05 GB: that is the tolerance.
  const paper = [120, 31.4, 16.6, 1.9];
  const tol = 0.05;
  for (const [zero, want] of paper.entries()) {
    const got = modelStateBytes({ weightParams: 7.5e9, trainableParams: 7.5e9, optimizer: "adamw", zero, gpus: 64 }).total / GB;
    assert.ok(Math.abs(got - want) <= tol, `stage ${zero}: ${got} GB vs the paper's ${want} GB (|error| ${Math.abs(got - want).toFixed(4)} > ${tol})`);
  }
  // The exact byte counts behind them: (2 + 2 + 12)Ψ, 4Ψ + 12Ψ/N_d, 2Ψ + 14Ψ/N_d, 16Ψ/N_d.
  const exact = (zero: number) => modelStateBytes({ weightParams: 7.5e9, trainableParams: 7.5e9, optimizer: "adamw", zero, gpus: 64 }).total;
  assert.deepEqual([0, 1, 2, 3].map(exact), [120e9, 30e9 + 90e9 / 64, 15e9 + 105e9 / 64, 120e9 / 64]);
});

test("optimizer bytes per parameter: adamw 12, adamw8bit 6 (+ block scales), sgd 8; lora keeps the base frozen", () => {
  const s = (optimizer: "adamw" | "adamw8bit" | "sgd") => modelStateBytes({ weightParams: 1000, trainableParams: 1000, optimizer, zero: 0, gpus: 1 });
  assert.deepEqual(s("adamw"), { weights: 2000, gradients: 2000, optimizerStates: 12000, total: 16000 });
  assert.deepEqual(s("adamw8bit"), { weights: 2000, gradients: 2000, optimizerStates: 6000, total: 10000 });
  assert.deepEqual(s("sgd"), { weights: 2000, gradients: 2000, optimizerStates: 8000, total: 12000 });
  const spec = presetSpec("llama-2-7b");
  const r = trainPlan(spec, { optimizer: "adamw8bit" }).variants[0];
  const N = paramCounts(spec).total;
  // Scales: one fp32 absmax per 2048 values of each of two states; every llama-2-7b tensor is a multiple of 2048
  // except the 4096-value norms, which are exact too, so the scales are 2 × 4 × N / 2048 bytes.
  assert.equal(r.memory.optimizerStates, 6 * N + (8 * N) / 2048);
  // LoRA: base weights 2Ψ + adapters 2Ψ_A, gradients 2Ψ_A, AdamW 12Ψ_A.
  const l = trainPlan(spec, { optimizer: "lora", loraRank: 16 }).variants[0];
  const A = 32 * 4 * 16 * (4096 + 4096); // q, k, v, o: r(in + out) each, 32 layers
  assert.equal(l.trainableParams, A);
  assert.deepEqual([l.memory.weights, l.memory.gradients, l.memory.optimizerStates], [2 * (N + A), 2 * A, 12 * A]);
});

test("ZeRO stages partition optimizer, then gradients, then weights over N_d (rounded up to whole bytes)", () => {
  const at = (zero: number) => modelStateBytes({ weightParams: 1001, trainableParams: 1001, optimizer: "adamw", zero, gpus: 8 });
  assert.deepEqual(at(1), { weights: 2002, gradients: 2002, optimizerStates: Math.ceil(12012 / 8), total: 2002 + 2002 + 1502 });
  assert.deepEqual(at(2), { weights: 2002, gradients: Math.ceil(2002 / 8), optimizerStates: 1502, total: 2002 + 251 + 1502 });
  assert.deepEqual(at(3), { weights: 251, gradients: 251, optimizerStates: 1502, total: 251 + 251 + 1502 });
});

test("Korthikanti et al. 2022: sbh(34 + 5as/h) per layer for an MHA GELU-4h model (GPT-2 shape), exactly", () => {
  const gpt2 = presetSpec("gpt2"); // h 768, a 12, F 3072 = 4h, gelu, 2 LayerNorms per layer
  for (const [s, b] of [[1024, 1], [512, 4], [1, 1]]) {
    const want = s * b * 768 * (34 + (5 * 12 * s) / 768);
    assert.equal(activationBytesPerLayer(gpt2, 0, { seq: s, microBatch: b }), want, `s ${s} b ${b}`);
  }
  // Hand-worked: s = 1024, b = 1: 1024 · 768 · (34 + 80) = 89,653,248 bytes per layer, × 12 layers.
  assert.equal(activationBytes(gpt2, { seq: 1024, microBatch: 1, checkpointing: false }), 12 * 89_653_248);
  // Full recompute: 2sbh per layer (layer inputs) + one layer rebuilt during its backward.
  assert.equal(activationBytes(gpt2, { seq: 1024, microBatch: 1, checkpointing: true }), 12 * 2 * 1024 * 768 + 89_653_248);
  // A GPT-3-175B-shaped config (h 12288, a 96, 96 layers, s 2048): 2048 · 12288 · (34 + 80) bytes per layer.
  const gpt3 = specFromHfConfig({ model_type: "gpt2", n_embd: 12288, n_head: 96, n_layer: 96, n_positions: 2048, vocab_size: 50257 }, "gpt3-175b");
  assert.equal(activationBytesPerLayer(gpt3, 0, { seq: 2048, microBatch: 1 }), 2048 * 12288 * 114);
  // Logits: fp32 for the loss, 4sbV.
  assert.equal(logitsBytes(gpt2, { seq: 1024, microBatch: 2 }), 4 * 1024 * 2 * 50257);
});

test("GQA and SwiGLU terms derived from the paper's 34: K/V shrink by 4sb(H - K)D, a gated MLP of width F costs 3sbh + 8sbF", () => {
  const spec = presetSpec("llama-2-7b"); // h 4096, a 32, D 128, swiglu F 11008, 2 RMSNorms
  const [s, b, h, a, F] = [4096, 1, 4096, 32, 11008];
  // The paper's 19sbh MLP is 3sbh (input 2, dropout mask 1) + 4sbF at F = 4h (GELU input and output, 2 bytes each);
  // a gated MLP stores gate, up, activation output and product: 8sbF.
  const mha = s * b * h * (34 + (5 * a * s) / h) - 16 * s * b * h + 8 * s * b * F;
  assert.equal(activationBytesPerLayer(spec, 0, { seq: s, microBatch: b }), mha);
  for (const K of [8, 1]) {
    const gqa = mha - 4 * s * b * (a - K) * 128; // the paper's K and V terms are 2sbh each: 2sb·K·D for K KV heads
    assert.equal(activationBytesPerLayer(withKvHeads(spec, K), 0, { seq: s, microBatch: b }), gqa, `K = ${K}`);
  }
  // FlashAttention replaces the 5as²b score terms by a 4asb fp32 log-sum-exp.
  assert.equal(activationBytesPerLayer(spec, 0, { seq: s, microBatch: b, flashAttention: true }), mha - 5 * a * s * s * b + 4 * a * s * b);
});

test("LoRA adapters on q, k, v, o shrink with the KV heads: r(in + out) per matrix", () => {
  const spec = presetSpec("llama-2-7b");
  assert.equal(loraParams(spec, 16), 32 * 16 * 4 * (4096 + 4096));
  assert.equal(loraParams(withKvHeads(spec, 8), 16), 32 * 16 * (2 * (4096 + 4096) + 2 * (4096 + 1024)));
});

test("FLOPs and hours: 6Ψ (8Ψ with checkpointing; lora 4Ψ + 6Ψ_A) × T / (N × peak × MFU)", () => {
  const spec = presetSpec("llama-2-7b");
  const N = paramCounts(spec).total;
  const o = { gpus: 8, gpu: "h100-sxm", tokens: 1e11, mfu: 0.4 } as const;
  const rate = 8 * 989e12 * 0.4;
  const full = trainPlan(spec, o).variants[0];
  assert.equal(full.flopsPerToken, 6 * N);
  // Same operations in another order, so the float64 results agree to a few ulps: relative tolerance 1e-12.
  const close = (got: number | null, want: number, what: string) => assert.ok(got !== null && Math.abs(got - want) <= 1e-12 * want, `${what}: ${got} vs ${want}`);
  close(full.hours, (6 * N * 1e11) / rate / 3600, "full");
  close(trainPlan(spec, { ...o, checkpointing: true }).variants[0].hours, (8 * N * 1e11) / rate / 3600, "checkpointing");
  const A = loraParams(spec, 8);
  close(trainPlan(spec, { ...o, optimizer: "lora", loraRank: 8 }).variants[0].hours, ((4 * N + 6 * A) * 1e11) / rate / 3600, "lora");
  assert.equal(trainPlan(spec, { ...o, tokens: null }).variants[0].hours, null);
});

test("maxMicroBatch is the largest b that fits: b fits, b + 1 does not", () => {
  const spec = presetSpec("llama-2-7b");
  for (const opts of [{ zero: 3, gpus: 8, flashAttention: true }, { zero: 2, gpus: 8, checkpointing: true }, { optimizer: "lora" as const, flashAttention: true }]) {
    const o = { gpu: "h100-sxm", seq: 4096, ...opts };
    const max = trainPlan(spec, o).variants[0].maxMicroBatch;
    assert.ok(max > 0, JSON.stringify(opts));
    assert.equal(trainPlan(spec, { ...o, microBatch: max }).variants[0].fits, true, `${JSON.stringify(opts)}: b = ${max}`);
    assert.equal(trainPlan(spec, { ...o, microBatch: max + 1 }).variants[0].fits, false, `${JSON.stringify(opts)}: b = ${max + 1}`);
  }
  // Plain AdamW without ZeRO on one 80 GiB GPU: 16 B × 6.7B parameters = 108 GB, the model states alone do not fit.
  const r = trainPlan(spec, { gpu: "h100-sxm" });
  assert.equal(r.variants[0].maxMicroBatch, 0);
  assert.match(r.warnings.join("\n"), /the model states alone do not fit/);
});

const TRAIN = ["plan", "--model", "llama-2-7b", "--kv-heads", "full,8,1", "--train", "--zero", "2", "--gpus", "8", "--gpu", "h100-sxm", "--tokens", "1e11", "--mfu", "0.4", "--micro-batch", "1", "--seq", "4096"];

test("mqa plan --train --json: one variant per --kv-heads entry with integer byte fields that add up", async () => {
  const { code, out, err } = await runCli([...TRAIN, "--json"]);
  assert.equal(code, 0, err);
  const r = JSON.parse(out);
  assert.deepEqual(r.variants.map((v: { label: string }) => v.label), ["as configured", "MHA", "GQA-8", "MQA"]);
  for (const v of r.variants) {
    const m = v.memory;
    for (const k of ["weights", "gradients", "optimizerStates", "activations", "logits", "overhead", "total"]) assert.ok(Number.isSafeInteger(m[k]), `${v.label} memory.${k} = ${m[k]}`);
    assert.equal(m.total, m.weights + m.gradients + m.optimizerStates + m.activations + m.logits + m.overhead, v.label);
    assert.ok(Number.isSafeInteger(v.maxMicroBatch) && typeof v.fits === "boolean" && typeof v.hours === "number", v.label);
  }
  assert.deepEqual(r.options, { ...r.options, optimizer: "adamw", zero: 2, gpus: 8, microBatch: 1, seq: 4096, tokens: 1e11, mfu: 0.4, checkpointing: false });
  // MQA has fewer K/V parameters than GQA-8, which has fewer than MHA: every component but logits/overhead shrinks.
  const [, mha, gqa, mqa] = r.variants;
  assert.ok(mha.memory.total > gqa.memory.total && gqa.memory.total > mqa.memory.total);
  assert.ok(mha.hours > gqa.hours && gqa.hours > mqa.hours);
});

test("mqa plan --train: the human table names every component and every flag is in --help", async () => {
  const { code, out } = await runCli(TRAIN);
  assert.equal(code, 0);
  for (const row of ["weights", "gradients", "optimizer states", "activations", "logits", "total", "fits in", "max micro-batch", "hours for"]) assert.match(out, new RegExp(row), row);
  const write = process.stdout.write;
  let text = "";
  process.stdout.write = ((c: string | Uint8Array) => ((text += String(c)), true)) as typeof process.stdout.write; // commander prints help there
  const help = await runCli(["plan", "--help"]).finally(() => (process.stdout.write = write));
  assert.equal(help.code, 0);
  for (const flag of ["--train", "--optimizer", "--lora-rank", "--zero", "--checkpointing", "--flash-attention", "--micro-batch", "--seq", "--gpus", "--tokens", "--mfu"]) assert.ok(text.includes(flag), `${flag} missing from --help`);
});

test("mqa plan --train bad inputs: one line naming the flag and what was expected, exit code 2", async () => {
  const cases: [string[], RegExp][] = [
    [["--zero", "4"], /^mqa: --zero: "4" is not an integer from 0 to 3$/],
    [["--zero", "-1"], /^mqa: --zero: "-1" is not an integer from 0 to 3$/],
    [["--optimizer", "lora", "--lora-rank", "0"], /^mqa: --lora-rank: "0" is not an integer from 1 to 4096$/],
    [["--optimizer", "lora", "--lora-rank", "8.5"], /^mqa: --lora-rank: "8\.5" is not an integer/],
    [["--lora-rank", "8"], /^mqa: --lora-rank: applies only with --optimizer lora \(got --optimizer adamw\)$/],
    [["--mfu", "1.5"], /^mqa: --mfu: "1\.5" is not a number in \(0, 1\]$/],
    [["--mfu", "0"], /^mqa: --mfu: "0" is not a number in \(0, 1\]$/],
    [["--optimizer", "adam9"], /^mqa: --optimizer: "adam9" is not one of adamw, adamw8bit, sgd, lora$/],
    [["--micro-batch", "0"], /^mqa: --micro-batch: "0" is not an integer >= 1$/],
    [["--seq", "abc"], /^mqa: --seq: "abc" is not an integer >= 1$/],
    [["--tokens", "-1"], /^mqa: --tokens: "-1" is not a number > 0$/],
    [["--tokens", "1e30"], /^mqa: --tokens: 1e\+30 is not a number of tokens in \(0, 1e18\]$/],
    [["--tokens", "0x10"], /^mqa: --tokens: "0x10" is not a number/],
    [["--gpus", "0"], /^mqa: --gpus: "0" is not an integer >= 1$/],
    [["--tp", "2"], /^mqa: --tp: the training plan models data parallelism/],
    [["--context", "8192"], /^mqa: --context: a serving flag; with --train give the training sequence length as --seq 8192$/],
    [["--batch", "4"], /^mqa: --batch: a serving flag; with --train give sequences per GPU as --micro-batch 4$/],
    [["--kv-heads", "5"], /^mqa: --kv-heads: 5 does not divide the 32 query heads/],
    [["--model", "deepseek-v2-lite"], /^mqa: trainPlan: .* uses MLA attention/],
  ];
  for (const [args, re] of cases) {
    const all = ["plan", "--train", ...args];
    const { code, out, err } = await runCli(all);
    assert.equal(code, 2, `${all.join(" ")} → exit ${code}, stderr ${err}`);
    assert.equal(out, "", `${all.join(" ")} printed to stdout`);
    assert.equal(err.split("\n").length, 1, `${all.join(" ")}: stderr is one line: ${err}`);
    assert.match(err, re, all.join(" "));
    assert.doesNotMatch(err, /\n\s+at /, "no stack trace");
  }
});

test("the library names option fields, never flags", () => {
  const spec = presetSpec("llama-2-7b");
  assert.throws(() => trainPlan(spec, { zero: 4 }), /^OptionError: zero: 4 is not an integer from 0 to 3$/);
  assert.throws(() => trainPlan(spec, { mfu: 1.5 }), /^OptionError: mfu: 1\.5 is not a fraction in \(0, 1\]$/);
  assert.throws(() => trainPlan(spec, { optimizer: "adam9" as "adamw" }), /^OptionError: optimizer: "adam9" is not one of/);
  assert.throws(() => trainPlan(spec, { optimizer: "lora", loraRank: 0 }), /^OptionError: loraRank: 0 is not an integer from 1 to 4096$/);
});
