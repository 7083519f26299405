// `mqa train --init`: a run that starts from a checkpoint starts from exactly its weights (F32 or
// F16, untied or tied), refuses a tokenizer that is not the data's and tensors the trainer cannot
// represent, and resolves --tokens / --fraction into updates; the wsd schedule.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, cpSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeSafetensors } from "../src/formats/safetensors.js";
import { trainBpe } from "../src/train/bpe.js";
import { readSafetensorsF32 } from "../src/train/checkpoint.js";
import { tokenizeDocs } from "../src/train/data.js";
import { loadInitCheckpoint } from "../src/train/init.js";
import { decayStart, learningRate, type Schedule } from "../src/train/optim.js";
import { resolveSteps, runTraining, type RunConfig } from "../src/train/run.js";

const TEXT_A = "In the beginning God created the heaven and the earth. And the earth was without form, and void. ".repeat(12);
const TEXT_B = "We the People of the United States, in Order to form a more perfect Union, establish Justice. ".repeat(12);

/** A prepared-data folder (what `mqa prepare-data` writes) from one text, BPE with `vocab` tokens. */
function prepare(dir: string, text: string, vocab: number): void {
  mkdirSync(dir, { recursive: true });
  const bpe = trainBpe([text], { vocabSize: vocab });
  const docs = [{ source: "test", title: "t", text }];
  const ids = tokenizeDocs(bpe, docs);
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(bpe.toTokenizerJson()));
  writeFileSync(join(dir, "train.bin"), new Uint8Array(ids.buffer));
  writeFileSync(join(dir, "val.bin"), new Uint8Array(ids.buffer));
  const n = Buffer.byteLength(text);
  writeFileSync(join(dir, "meta.json"), JSON.stringify({
    version: 1, sources: {}, vocabSize: bpe.vocabSize, eosId: bpe.specialId("<|endoftext|>"),
    train: { docs: 1, bytes: n, tokens: ids.length }, val: { docs: 1, bytes: n, tokens: ids.length, titles: ["t"] },
  }));
}

function config(data: string, out: string, over: Partial<RunConfig> = {}, lr = 3e-3): RunConfig {
  return {
    model: { hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 4, headDim: 8, intermediateSize: 64, ropeTheta: 10000, normEps: 1e-5 },
    train: { steps: 3, batch: 2, seqLen: 16, accum: 1, lr, minLr: lr / 10, warmup: 1, weightDecay: 0.1, clip: 1, seed: 3 },
    data: { kind: "text", dir: data }, out, evalEvery: 0, evalTokens: 128, saveEvery: 0, backend: "ts", threads: 1, resume: null, chart: false,
    ...over,
  };
}

test("--init starts from the checkpoint's exact weights (F32, F16, tied) and refuses what it cannot train", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mqa-init-"));
  try {
    const data = join(dir, "data"), other = join(dir, "data-b");
    prepare(data, TEXT_A, 300);
    prepare(other, TEXT_B, 300);
    const base = join(dir, "base");
    const a = await runTraining(config(data, base));
    // lr 0 and no decay: the update leaves the weights alone, so the run's evaluation is the checkpoint's.
    const same = await runTraining(config(data, join(dir, "same"), { init: base, tokens: 32 }, 0));
    assert.equal(same.steps, 1, "--tokens 32 at 2 × 16 tokens per update is one update");
    assert.equal(same.eval.valLoss, a.eval.valLoss, "an --init run at lr 0 must score exactly like its checkpoint");
    const w0 = readSafetensorsF32(join(base, "model.safetensors")), w1 = readSafetensorsF32(join(dir, "same", "model.safetensors"));
    for (const [name, t] of w0) assert.deepEqual(w1.get(name)!.data, t.data, `${name} changed at lr 0`);

    // The same weights stored as F16, with a tied head: F16 widening is exact, the head is the embedding.
    const f16 = join(dir, "f16");
    cpSync(base, f16, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(base, "config.json"), "utf8"));
    writeFileSync(join(f16, "config.json"), JSON.stringify({ ...cfg, tie_word_embeddings: true }));
    writeSafetensors(join(f16, "model.safetensors"), [...w0].filter(([n]) => n !== "lm_head.weight").map(([name, t]) => ({ name, shape: t.shape, data: t.data, dtype: "F16" as const })));
    const init = loadInitCheckpoint(f16);
    assert.equal(init.tiedHead, true);
    assert.deepEqual(init.weights.get("lm_head.weight")!.data, init.weights.get("model.embed_tokens.weight")!.data);
    const emb = w0.get("model.embed_tokens.weight")!.data, got = init.weights.get("model.embed_tokens.weight")!.data;
    for (let i = 0; i < emb.length; i++) {
      // f16 rounding: relative 2^-11 for normal values, absolute 2^-25 (half the smallest subnormal step) below 2^-14.
      assert.ok(Math.abs(got[i] - emb[i]) <= Math.max(Math.abs(emb[i]) * 2 ** -11, 2 ** -25), `embed[${i}] ${got[i]} vs ${emb[i]}`);
    }
    assert.equal(init.trainedTokens, 3 * 2 * 16, "trained tokens from trainer_state.json");

    await assert.rejects(runTraining(config(other, join(dir, "x1"), { init: base, tokens: 32 })), /tokenizer differs from .*data-b.*tokenizer\.json \(field "model"\)/);
    const bias = join(dir, "bias");
    cpSync(base, bias, { recursive: true });
    writeSafetensors(join(bias, "model.safetensors"), [...[...w0].map(([name, t]) => ({ name, shape: t.shape, data: t.data })), { name: "model.layers.0.self_attn.q_proj.bias", shape: [32], data: new Float32Array(32) }]);
    assert.throws(() => loadInitCheckpoint(bias), /tensor model\.layers\.0\.self_attn\.q_proj\.bias has no place/);
    writeFileSync(join(bias, "config.json"), JSON.stringify({ ...cfg, attention_bias: true }));
    assert.throws(() => loadInitCheckpoint(bias), /config\.json: attention_bias is true/);
    writeFileSync(join(bias, "config.json"), JSON.stringify({ ...cfg, model_type: "gpt2" }));
    assert.throws(() => loadInitCheckpoint(bias), /model_type "gpt2"; training from a checkpoint starts from llama or mistral/);
    const shape = join(dir, "shape");
    cpSync(base, shape, { recursive: true });
    writeFileSync(join(shape, "config.json"), JSON.stringify({ ...cfg, hidden_size: 48 }));
    assert.throws(() => loadInitCheckpoint(shape), /has shape \[\d+,32\], expected \[\d+,48\]/);
    assert.throws(() => loadInitCheckpoint(join(dir, "nothing")), /no config\.json/);
    await assert.rejects(runTraining(config(data, join(dir, "x2"), { init: base, resume: base })), /init and resume: give one/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("--tokens and --fraction resolve to updates", () => {
  const cfg = config("d", "o");
  const perUpdate = 2 * 16;
  assert.equal(resolveSteps({ ...cfg, tokens: 10 * perUpdate }, null).steps, 10);
  assert.equal(resolveSteps({ ...cfg, fraction: 0.05, baseTokens: 1000 * perUpdate }, null).steps, 50);
  assert.deepEqual(resolveSteps({ ...cfg, fraction: 0.1 }, { trainedTokens: 200 * perUpdate } as never), { steps: 20, baseTokens: 200 * perUpdate });
  assert.throws(() => resolveSteps({ ...cfg, fraction: 0.1 }, null), /fraction 0\.1: give baseTokens/);
  assert.throws(() => resolveSteps({ ...cfg, fraction: 0.1, tokens: 5 }, null), /give one/);
});

test("wsd: warmup, constant trunk, linear decay to minLr; runs of different length share the trunk", () => {
  const long: Schedule = { kind: "wsd", maxLr: 1e-3, minLr: 1e-4, warmupSteps: 10, totalSteps: 100, decayFraction: 0.2 };
  const short: Schedule = { ...long, totalSteps: 50 };
  assert.equal(decayStart(long), 80);
  assert.equal(decayStart(short), 40);
  assert.equal(learningRate(0, long), 1e-4);
  assert.equal(learningRate(9, long), 1e-3);
  for (let s = 10; s < 40; s++) assert.equal(learningRate(s, short), learningRate(s, long), `trunk differs at ${s}`);
  assert.equal(learningRate(79, long), 1e-3);
  assert.ok(Math.abs(learningRate(99, long) - 1e-4) < 1e-18, "the last update runs at minLr");
  assert.ok(Math.abs(learningRate(89, long) - (1e-3 + (1e-4 - 1e-3) * 0.5)) < 1e-18, "halfway down the decay");
  for (let s = 81; s < 100; s++) assert.ok(learningRate(s, long) < learningRate(s - 1, long));
});
