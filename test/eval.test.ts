// mqa eval: the sliding windows, the scores against PyTorch float64 (tools/fixtures/gen_eval.py), the
// KL report, the validation split against the trainer's own evaluation, and bad input.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { slidingWindows } from "../src/eval/eval.js";
import { runEval } from "../src/eval/run.js";
import { textInput } from "../src/eval/input.js";
import { loadTokenizer } from "../src/formats/tokenizer.js";
import { defaultModelDir } from "../src/package-root.js";
import { Bpe } from "../src/train/bpe.js";
import { tokenizeDocs } from "../src/train/data.js";
import { evaluateCheckpoint } from "../src/train/run.js";
import { runCli } from "./cli-helpers.js";

const FIX = new URL("../tools/fixtures/eval/", import.meta.url).pathname;
const MODELS = new URL("../tools/fixtures/models/", import.meta.url).pathname;
const TEXT = join(FIX, "text.txt");
interface Case { case: string; model: string; reference: string | null; context: number; stride: number; ids: number[]; bytes: number; nll: number[]; maxAbsLogit: number; kl?: number[]; top1?: number; maxLogProbGap?: number }
const expected = JSON.parse(readFileSync(join(FIX, "expected.json"), "utf8")) as { cases: Case[] };

test("sliding windows score every target once, each with at least context − stride tokens before it", () => {
  for (const [n, C, S] of [[2, 4, 4], [10, 4, 4], [10, 4, 1], [100, 16, 5], [17, 16, 8], [16, 16, 16], [1000, 64, 63], [5, 64, 32]]) {
    const seen = new Int32Array(n);
    for (const [k, w] of slidingWindows(n, C, S).entries()) {
      assert.ok(w.inputs >= 1 && w.inputs <= C, `n=${n} C=${C} S=${S}: window ${k} has ${w.inputs} inputs`);
      assert.equal(w.last, w.start + w.inputs);
      for (let p = w.first; p <= w.last; p++) {
        seen[p]++;
        if (k > 0) assert.ok(p - 1 - w.start >= C - S, `n=${n} C=${C} S=${S}: target ${p} has ${p - 1 - w.start} tokens of context`);
      }
    }
    assert.equal(seen[0], 0);
    for (let p = 1; p < n; p++) assert.equal(seen[p], 1, `n=${n} C=${C} S=${S}: target ${p} scored ${seen[p]} times`);
  }
  assert.equal(slidingWindows(100, 16, 8, 20).reduce((a, w) => a + w.last - w.first + 1, 0), 20);
  assert.throws(() => slidingWindows(10, 4, 5), RangeError);
});

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

for (const c of expected.cases) {
  test(`eval matches PyTorch float64: ${c.case}`, async () => {
    const tok = await loadTokenizer(join(MODELS, c.model));
    const input = textInput(TEXT, tok);
    assert.equal(input.prefix, "bos");
    assert.deepEqual(input.ids, c.ids, "our tokenization (@huggingface/tokenizers) against the Python BPE of gen_eval.py");
    const r = await runEval({ model: join(MODELS, c.model), text: TEXT, context: c.context, stride: c.stride, reference: c.reference ? join(MODELS, c.reference) : null, threads: 1 });
    // Logits differ from float64 only by the order of f32 sums: |Δ| ≤ ε = 2e-4 + 1e-4·|logit| (as in
    // test/models.test.ts). NLL = lse − logit[target] moves by at most 2ε, so its mean does too.
    const eps = 2e-4 + 1e-4 * c.maxAbsLogit;
    assert.equal(r.tokens, c.nll.length);
    assert.equal(r.bytes, c.bytes);
    const nll = mean(c.nll);
    assert.ok(Math.abs(r.nll - nll) <= 2 * eps, `nll ${r.nll} vs ${nll} (tolerance ${2 * eps})`);
    assert.ok(Math.abs(r.bitsPerByte - (nll * c.nll.length) / Math.LN2 / c.bytes) <= (2 * eps * c.nll.length) / Math.LN2 / c.bytes);
    assert.ok(Math.abs(r.perplexity - Math.exp(nll)) <= Math.exp(nll) * 2.01 * eps);
    if (c.kl) {
      // Both log-probability rows move by ≤ 2ε: KL = Σ p_ref (log p_ref − log p) moves by at most
      // 4ε + 2ε·max|log p_ref − log p|, and so does any order statistic of it (the p99).
      const tolKl = eps * (4 + 2 * c.maxLogProbGap!);
      const sorted = [...c.kl].sort((a, b) => a - b);
      assert.ok(Math.abs(r.klMean! - mean(c.kl)) <= tolKl, `klMean ${r.klMean} vs ${mean(c.kl)} (tolerance ${tolKl})`);
      assert.ok(Math.abs(r.klP99! - sorted[Math.ceil(0.99 * sorted.length) - 1]) <= tolKl);
      assert.equal(Math.round(r.top1Agreement! * c.nll.length), c.top1);
    }
  });
}

test("eval against itself: the same KV storage gives KL 0 and full agreement, int8 a small KL", async () => {
  const model = join(MODELS, "llama-mha-f32");
  const same = await runEval({ model, text: TEXT, context: 64, stride: 32, reference: model, threads: 1 });
  assert.equal(same.klMean, 0);
  assert.equal(same.top1Agreement, 1);
  assert.equal(same.referenceNll, same.nll);
  const q = await runEval({ model, text: TEXT, context: 64, stride: 32, kvDtype: "int8", reference: model, threads: 1 });
  assert.ok(q.klMean! > 0 && q.klMean! < 1e-2, `int8 KV: KL ${q.klMean}`);
  assert.equal(q.referenceNll, same.nll);
});

test("eval --split validation equals the trainer's evaluation of the same tokens (stride = context)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mqa-eval-"));
  try {
    // A prepared-data folder with the default model's tokenizer and the held-out fixture text as validation documents.
    const model = defaultModelDir();
    const tokJson = JSON.parse(readFileSync(join(model, "tokenizer.json"), "utf8"));
    const bpe = Bpe.fromTokenizerJson(tokJson);
    const docs = readFileSync(new URL("fixtures/heldout-kjv-sotu.txt", import.meta.url), "utf8").split("\n\n").map((text, i) => ({ source: "kjv", title: `p${i}`, text }));
    const val = tokenizeDocs(bpe, docs);
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokJson));
    writeFileSync(join(dir, "val.bin"), new Uint8Array(val.buffer));
    writeFileSync(join(dir, "train.bin"), new Uint8Array(val.buffer));
    const eosId = bpe.specialId("<|endoftext|>");
    writeFileSync(join(dir, "meta.json"), JSON.stringify({ version: 1, sources: {}, vocabSize: bpe.vocabSize, eosId, train: {}, val: {} }));
    const T = JSON.parse(readFileSync(join(model, "config.json"), "utf8")).max_position_embeddings as number;
    const maxTokens = Math.floor((val.length - 1) / T) * T; // whole windows, as the trainer's batches
    const r = await runEval({ model, split: "validation", data: dir, context: T, stride: T, maxTokens, threads: 1 });
    const t = await evaluateCheckpoint(model, dir, { seqLen: T, batch: 1, maxTokens, threads: 1 });
    assert.equal(r.tokens, t.tokens);
    assert.equal(r.bytes, t.bytes);
    // Two f32 forwards (the runtime's and the trainer's) of the same f16 weights: each logit within ε of float64.
    assert.ok(Math.abs(r.nll - t.loss) <= 2e-3, `runtime nll ${r.nll} vs trainer ${t.loss}`);
    assert.ok(Math.abs(r.bitsPerByte - t.bitsPerByte) <= 2e-3 * (r.tokens / r.bytes) / Math.LN2 + 1e-12);
    // A model with another tokenizer is refused by name.
    const bad = await runCli(["eval", join(MODELS, "llama-mha-f32"), "--split", "validation", "--data", dir]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /tokenizer is not the one of/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("mqa eval --json prints the contract's keys", async () => {
  const model = join(MODELS, "llama-gqa-f16");
  const r = await runCli(["eval", model, "--text", TEXT, "--context", "32", "--reference", join(MODELS, "llama-mha-f32"), "--kv-dtype", "f16", "--threads", "1", "--json"]);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  for (const k of ["tokens", "nll", "perplexity", "bitsPerByte", "klMean", "klP99", "top1Agreement"]) assert.equal(typeof j[k], "number", k);
  assert.equal(j.context, 32);
  assert.equal(j.stride, 16);
  assert.equal(j.kvDtype, "f16");
});

test("mqa eval: bad input is one line and exit 2", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mqa-eval-bad-"));
  try {
    const model = join(MODELS, "llama-mha-f32");
    writeFileSync(join(dir, "empty.txt"), " \n");
    writeFileSync(join(dir, "latin1.txt"), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
    writeFileSync(join(dir, "one.txt"), "a");
    const cases: [string[], RegExp][] = [
      [["eval", model], /either --text <file> or --split validation/],
      [["eval", model, "--text", TEXT, "--split", "validation"], /either --text <file> or --split validation/],
      [["eval", model, "--text", join(dir, "missing.txt")], /missing\.txt: no such file/],
      [["eval", model, "--text", join(dir, "empty.txt")], /empty\.txt: the text is empty/],
      [["eval", model, "--text", join(dir, "latin1.txt")], /latin1\.txt: not valid UTF-8/],
      [["eval", model, "--text", TEXT, "--context", "65"], /context 65 exceeds the model's maximum of 64/],
      [["eval", model, "--text", TEXT, "--context", "16", "--stride", "17"], /stride 17 is larger than the context 16/],
      [["eval", model, "--text", TEXT, "--kv-dtype", "q4"], /--kv-dtype/],
      [["eval", model, "--split", "train"], /--split/],
      [["eval", model, "--text", TEXT, "--reference", defaultModelDir()], /reference tokenizes .* differently/],
      [["eval", join(dir, "nope"), "--text", TEXT], /nope/],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(" ")}: exit ${r.code}\n${r.err}`);
      assert.match(r.err, re, args.join(" "));
      assert.equal(r.err.trim().split("\n").length, 1, `${args.join(" ")}: ${r.err}`);
    }
    // One token of text (after the start token) is still scoreable: two tokens in all.
    const one = await runCli(["eval", model, "--text", join(dir, "one.txt"), "--json"]);
    assert.equal(one.code, 0, one.err);
    assert.equal(JSON.parse(one.out).tokens, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
