// deployCommand: the vLLM / llama-server command lines a plan maps to, their flag semantics, the engine gaps it
// warns about, and `mqa plan --engine` end to end (text, --json contract, bad input).
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { deployCommand, parseEngine, shellQuote, type DeployCommand } from "../src/planner/deploy.js";
import { plan } from "../src/planner/plan.js";
import { presetSpec } from "../src/config/presets.js";
import { runCli } from "./cli-helpers.js";

const FIX = join(import.meta.dirname, "fixtures", "configs");

/** The value after `flag` in argv (asserting the flag occurs exactly once). */
function argAfter(d: DeployCommand, flag: string): string {
  const at = d.argv.flatMap((a, i) => (a === flag ? [i] : []));
  assert.equal(at.length, 1, `${flag} occurs ${at.length} times in ${d.command}`);
  return d.argv[at[0] + 1];
}

test("vllm: llama-2-7b on an H100 at 32K × 8 maps every planner field to its flag", () => {
  const r = plan(presetSpec("llama-2-7b"), { gpu: "h100-sxm", context: 32768, batch: 8 });
  const d = deployCommand(r, { engine: "vllm", model: "meta-llama/Llama-2-7b-hf" });
  assert.deepEqual(d.argv.slice(0, 3), ["vllm", "serve", "meta-llama/Llama-2-7b-hf"]);
  assert.equal(argAfter(d, "--tensor-parallel-size"), "1");
  assert.equal(argAfter(d, "--max-model-len"), "32768");
  assert.equal(argAfter(d, "--max-num-seqs"), "8");
  assert.equal(argAfter(d, "--kv-cache-dtype"), "auto");
  assert.equal(argAfter(d, "--gpu-memory-utilization"), "0.9");
  assert.equal(argAfter(d, "--dtype"), "bfloat16");
  assert.ok(!d.argv.includes("--data-parallel-size"), "one replica: no data parallelism");
  assert.equal(d.command, d.argv.join(" "));
  for (const f of d.flags) assert.match(f.source, /^https:\/\/docs\.vllm\.ai\//, `${f.flag}: source ${f.source}`);
  // 32K exceeds Llama-2's 4096 positions, and 8 × 32K does not fit 80 GB (the planner says at most 3).
  assert.ok(d.warnings.some((w) => /max_position_embeddings 4096/.test(w)), d.warnings.join("\n"));
  assert.ok(d.warnings.some((w) => w.includes(`at most ${r.maxBatch} full-length sequences`) && w.includes(`--max-num-seqs ${r.maxBatch} matches`)), d.warnings.join("\n"));
  assert.equal(r.maxBatch, 3);
});

test("vllm: tp, replicas, fp8 and int8 KV, the utilization the budget came from", () => {
  const r = plan(presetSpec("llama-3.1-70b"), { gpu: "h100-sxm", gpus: 8, tp: 4, context: 8192, batch: 10, kvDtype: "fp8", gpuMemoryUtilization: 0.85 });
  const d = deployCommand(r, { engine: "vllm", model: "meta-llama/Llama-3.1-70B" });
  assert.equal(argAfter(d, "--tensor-parallel-size"), "4");
  assert.equal(argAfter(d, "--data-parallel-size"), "2");
  assert.equal(argAfter(d, "--max-num-seqs"), "5"); // 10 sequences over 2 replicas
  assert.equal(argAfter(d, "--kv-cache-dtype"), "fp8");
  assert.equal(argAfter(d, "--gpu-memory-utilization"), "0.85");
  const util = d.flags.find((f) => f.flag === "--gpu-memory-utilization")!;
  assert.ok(util.meaning.includes(`${(r.kvBudgetBytesPerGpu / 1024 ** 3).toFixed(2)} GiB, the plan's KV budget`), util.meaning);
  assert.deepEqual(d.warnings, []);

  const int8 = deployCommand(plan(presetSpec("llama-3.1-8b"), { gpu: "h100-sxm", kvDtype: "int8" }), { engine: "vllm" });
  assert.equal(argAfter(int8, "--kv-cache-dtype"), "fp8");
  assert.ok(int8.warnings.some((w) => /int8 is not a vLLM --kv-cache-dtype/.test(w)), int8.warnings.join("\n"));
  const q4 = deployCommand(plan(presetSpec("llama-3.1-8b"), { kvDtype: "q4_0", weightDtype: "q4_k" }), { engine: "vllm" });
  assert.ok(q4.warnings.some((w) => /q4_0 is not a vLLM/.test(w)));
  assert.ok(q4.warnings.some((w) => /weights in q4_k have no vLLM load flag/.test(w)));
});

test("llama.cpp: -c is the TOTAL context, context × batch, shared by the -np slots", () => {
  for (const [context, batch] of [[32768, 8], [4096, 1], [2048, 3], [131072, 2]]) {
    const r = plan(presetSpec("llama-3.1-8b"), { gpu: "h100-sxm", context, batch });
    const d = deployCommand(r, { engine: "llama.cpp", model: "llama-3.1-8b.Q8_0.gguf" });
    assert.equal(argAfter(d, "-c"), String(context * batch), `context ${context} batch ${batch}`);
    assert.equal(argAfter(d, "-np"), String(batch));
  }
  const r = plan(presetSpec("llama-2-7b"), { gpu: "h100-sxm", context: 32768, batch: 8 });
  const d = deployCommand(r, { engine: "llama.cpp" });
  assert.deepEqual(d.argv, ["llama-server", "-m", "<llama-2-7b>.gguf", "-c", "262144", "-np", "8", "-ctk", "f16", "-ctv", "f16", "-ngl", "99"]);
  assert.equal(d.command, "llama-server -m '<llama-2-7b>.gguf' -c 262144 -np 8 -ctk f16 -ctv f16 -ngl 99");
  assert.ok(d.warnings.some((w) => /<llama-2-7b>\.gguf is a placeholder/.test(w)), d.warnings.join("\n"));
  for (const f of d.flags) assert.equal(f.source, "https://github.com/ggml-org/llama.cpp/blob/master/tools/server/README.md");
});

test("llama.cpp: quantized V needs -fa; fp8/int8 are not cache types (closest q8_0); tp is a layer split; replicas are servers", () => {
  const q8 = deployCommand(plan(presetSpec("llama-3.1-8b"), { kvDtype: "q8_0" }), { engine: "llama.cpp", model: "m.gguf" });
  assert.equal(argAfter(q8, "-ctk"), "q8_0");
  assert.equal(argAfter(q8, "-ctv"), "q8_0");
  assert.equal(argAfter(q8, "-fa"), "on");
  assert.deepEqual(q8.warnings, []);
  const f16 = deployCommand(plan(presetSpec("llama-3.1-8b"), {}), { engine: "llama.cpp", model: "m.gguf" });
  assert.ok(!f16.argv.includes("-fa"), "an f16 cache does not force flash attention");
  for (const kvDtype of ["fp8", "int8"]) {
    const d = deployCommand(plan(presetSpec("llama-3.1-8b"), { kvDtype }), { engine: "llama.cpp", model: "m.gguf" });
    assert.equal(argAfter(d, "-ctk"), "q8_0");
    assert.equal(argAfter(d, "-fa"), "on");
    assert.ok(d.warnings.some((w) => w.startsWith(`llama.cpp: ${kvDtype} is not a llama.cpp cache type`)), d.warnings.join("\n"));
  }
  const tp = deployCommand(plan(presetSpec("llama-3.1-70b"), { gpu: "h100-sxm", gpus: 4, tp: 2, batch: 4 }), { engine: "llama.cpp", model: "m.gguf" });
  assert.equal(argAfter(tp, "--split-mode"), "layer");
  assert.equal(argAfter(tp, "-np"), "2"); // 4 sequences over 2 replicas
  assert.equal(argAfter(tp, "-c"), String(4096 * 2));
  assert.equal(argAfter(tp, "-ngl"), "99");
  assert.ok(tp.warnings.some((w) => /no tensor parallelism/.test(w) && /--split-mode layer/.test(w)));
  assert.ok(tp.warnings.some((w) => /run 2 copies of this command/.test(w)));
});

test("engine names: aliases accepted, anything else one error naming the field", () => {
  assert.equal(parseEngine("vLLM"), "vllm");
  assert.equal(parseEngine("llama-server"), "llama.cpp");
  assert.throws(() => parseEngine("tgi"), /^OptionError: engine: "tgi" is not one of vllm, llama\.cpp$/);
  assert.throws(() => deployCommand(plan(presetSpec("llama-2-7b")), { engine: "sglang" }), /engine: "sglang"/);
  assert.equal(shellQuote("a b"), "'a b'");
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
  assert.equal(shellQuote("meta-llama/Llama-2-7b-hf"), "meta-llama/Llama-2-7b-hf");
});

test("mqa plan --engine: --json has a deploy object; text prints the command; model paths become engine arguments", async () => {
  const { code, out, err } = await runCli(["plan", "--model", "llama-2-7b", "--gpu", "h100-sxm", "--context", "32768", "--batch", "8", "--engine", "llama.cpp", "--json"]);
  assert.equal(code, 0);
  const j = JSON.parse(out);
  assert.equal(j.deploy.engine, "llama.cpp");
  assert.deepEqual(j.deploy.argv.slice(0, 7), ["llama-server", "-m", "<llama-2-7b>.gguf", "-c", "262144", "-np", "8"]);
  assert.equal(typeof j.deploy.command, "string");
  for (const f of j.deploy.flags) assert.deepEqual(Object.keys(f).sort(), ["flag", "meaning", "source", "value"]);
  assert.ok(j.deploy.warnings.length >= 1);
  assert.match(err, /mqa: warning: llama\.cpp: <llama-2-7b>\.gguf is a placeholder/);
  assert.equal(j.maxBatch, 3, "the rest of the plan is unchanged");

  const noEngine = JSON.parse((await runCli(["plan", "--model", "llama-2-7b", "--json"])).out);
  assert.equal("deploy" in noEngine, false);

  const v = await runCli(["plan", "--model", "llama-2-7b", "--gpu", "h100-sxm", "--engine", "vllm"]);
  assert.equal(v.code, 0);
  assert.match(v.out, /Deploy on vLLM:\n\n {2}vllm serve meta-llama\/Llama-2-7b-hf --tensor-parallel-size 1 --max-model-len 4096 --max-num-seqs 1 /);
  assert.match(v.out, /--gpu-memory-utilization 0\.9 +vLLM may use 0\.9 × 80\.00 GiB/);

  const cfg = JSON.parse((await runCli(["plan", "--model", join(FIX, "llama-3.1-8b.config.json"), "--engine", "vllm", "--json"])).out);
  assert.equal(cfg.deploy.argv[2], FIX, "a config.json is served from its folder");
});

test("mqa plan --engine with a bad name: one line, exit 2, before any planning", async () => {
  const { code, out, err } = await runCli(["plan", "--model", "llama-2-7b", "--engine", "tgi"]);
  assert.equal(code, 2);
  assert.equal(out, "");
  assert.equal(err, `mqa: --engine: "tgi" is not one of vllm, llama.cpp`);
  const missing = await runCli(["plan", "--engine"]);
  assert.equal(missing.code, 2);
  assert.equal(missing.err.split("\n").length, 1, missing.err);
});

test("vllm and llama.cpp: windows, paging, profile size and GGUF inputs reach their flags or warnings", () => {
  const mistral = presetSpec("mistral-7b");
  const r = plan(mistral, { applyWindow: false, blockSize: null, activation: { tokens: 4096 } });
  const v = deployCommand(r, { engine: "vllm", model: "mistralai/Mistral-7B-v0.1" });
  assert.ok(v.argv.includes("--disable-sliding-window"));
  assert.equal(argAfter(v, "--max-num-batched-tokens"), "4096");
  assert.ok(v.warnings.some((w) => /vLLM always pages/.test(w)), v.warnings.join("\n"));
  const l = deployCommand(r, { engine: "llama.cpp", model: "mistral.gguf" });
  assert.ok(l.argv.includes("--swa-full"));
  assert.equal(argAfter(l, "-m"), "mistral.gguf");
  assert.ok(!l.warnings.some((w) => /placeholder/.test(w)), "a real GGUF path is no placeholder");
  const windowed = deployCommand(plan(mistral, {}), { engine: "llama.cpp", model: "mistral.gguf" });
  assert.ok(!windowed.argv.includes("--swa-full") && !windowed.argv.includes("--disable-sliding-window"));
  const g = deployCommand(plan(mistral, {}), { engine: "vllm", model: "mistral.Q8_0.gguf" });
  assert.ok(g.warnings.some((w) => /GGUF support is experimental/.test(w)), g.warnings.join("\n"));
  const b32 = deployCommand(plan(mistral, { blockSize: 32 }), { engine: "vllm" });
  assert.equal(argAfter(b32, "--block-size"), "32");
});
