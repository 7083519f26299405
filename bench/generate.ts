// Generation speed of mqa vs llama.cpp (node-llama-cpp 3.21.1, CPU) on the SAME GGUF files, same
// thread count (2 by default), both engines in one process step by step (or --separate, below):
//   ~110M-parameter random LLaMA models (12 layers, hidden 768, 12 heads, head dim 64, MLP 2048,
//   vocab 32000, tied) with KV heads 12 (MHA), 4 (GQA) and 1 (MQA), f32 and f16 weights;
//   prefill of a (context − decode − 2) token prompt, one warm-up step, then `decode` timed single-token steps.
// Both engines use an f16 KV cache (llama.cpp's default) and their default attention paths.
// DECODE_WARMUP: one untimed decode step follows the prefill in each engine, as llama-bench runs a
// warm-up first: mqa's first step took 27-35 ms against ~10 (its TypeScript row steps, which the
// prefill ran in the kernels, are then first compiled), llama.cpp's ~12.
// Never a test: timings depend on the machine and its load (2 shared vCPUs here).
//
// Run:  node --import tsx bench/generate.ts [--quick] [--threads 2] [--contexts 512,8192] [--reps 2] [--separate] [--no-ticker]
//       node --import tsx bench/generate.ts --worker mqa|llamacpp|pair --model M.gguf --prompt P --decode N --threads T
// --no-ticker: no keep-awake thread in the worker processes (see startTicker; llama.cpp then pays
// for idle vCPUs between tokens on a VM).
// By default both engines run in ONE process, alternating every 512-token prefill chunk and every
// decode token, so both see the same load (issue 16); peak RSS is then not per engine. --separate
// runs each engine in its own child process instead, alternating runs (peak RSS per engine);
// --interleave, the old name of the default, is accepted.
import { spawnSync } from "node:child_process";
import { Worker } from "node:worker_threads";
import type { Token } from "node-llama-cpp";
import { existsSync, mkdirSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { writeGguf, type GgufTensorOut, type GgufValue } from "../src/formats/gguf.js";
import { f32ToF16 } from "../src/dtypes/codecs.js";
import { encodeQ8_0 } from "../src/dtypes/q8_0.js";
import { encodeQuant, isGgmlQuant, type GgmlQuant } from "../src/dtypes/ggml_quants.js";
import { rowBytes } from "../src/dtypes/table.js";
import { measureSimdPeak } from "../src/kernels/limits.js";
import type { Kernels } from "../src/kernels/types.js";

interface WorkerResult {
  engine: string;
  prefillTokens: number;
  prefillSeconds: number;
  decodeTokens: number;
  decodeSeconds: number;
  maxRssBytes: number;
  weightsBytes: number;
  kvBytes: number;
  detail: string;
}

const LAYERS = 12, HIDDEN = 768, HEADS = 12, HEAD_DIM = 64, FFN = 2048, VOCAB = 32000;

/** Writes (once) a random llama GGUF; weights ~ N(0, 1/sqrt(in)) from a seeded generator. */
export type BenchDtype = "f32" | "f16" | "q8_0" | GgmlQuant;

export function benchModel(dir: string, kvHeads: number, dtype: BenchDtype, context: number): string {
  const path = join(dir, `bench-llama-kv${kvHeads}-${dtype}-ctx${context}.gguf`);
  if (existsSync(path)) return path;
  let s = 12345 + kvHeads;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5; // uniform, var 1/12
  };
  const tensors: GgufTensorOut[] = [];
  const mat = (name: string, rows: number, cols: number, std: number) => {
    const type = dtype;
    tensors.push({
      name, shape: [rows, cols], type, bytes: rows * rowBytes(type, cols),
      write: (emit) => {
        const k = std * Math.sqrt(12);
        for (let r0 = 0; r0 < rows; r0 += 256) {
          const n = Math.min(256, rows - r0) * cols;
          if (type === "f32") emit(new Uint8Array(Float32Array.from({ length: n }, () => rand() * k).buffer));
          else if (type === "q8_0") emit(encodeQ8_0(Float32Array.from({ length: n }, () => rand() * k)));
          else if (isGgmlQuant(type)) emit(encodeQuant(type, Float32Array.from({ length: n }, () => rand() * k))); // rows of 768 and 2048: whole 256-blocks
          else emit(new Uint8Array(Uint16Array.from({ length: n }, () => f32ToF16(rand() * k)).buffer));
        }
      },
    });
  };
  const ones = (name: string) => tensors.push({ name, shape: [HIDDEN], type: "f32", bytes: HIDDEN * 4, write: (emit) => emit(new Uint8Array(new Float32Array(HIDDEN).fill(1).buffer)) });
  mat("token_embd.weight", VOCAB, HIDDEN, 1);
  for (let l = 0; l < LAYERS; l++) {
    ones(`blk.${l}.attn_norm.weight`);
    mat(`blk.${l}.attn_q.weight`, HEADS * HEAD_DIM, HIDDEN, 1 / Math.sqrt(HIDDEN));
    mat(`blk.${l}.attn_k.weight`, kvHeads * HEAD_DIM, HIDDEN, 1 / Math.sqrt(HIDDEN));
    mat(`blk.${l}.attn_v.weight`, kvHeads * HEAD_DIM, HIDDEN, 1 / Math.sqrt(HIDDEN));
    mat(`blk.${l}.attn_output.weight`, HIDDEN, HEADS * HEAD_DIM, 1 / Math.sqrt(HIDDEN));
    ones(`blk.${l}.ffn_norm.weight`);
    mat(`blk.${l}.ffn_gate.weight`, FFN, HIDDEN, 1 / Math.sqrt(HIDDEN));
    mat(`blk.${l}.ffn_up.weight`, FFN, HIDDEN, 1 / Math.sqrt(HIDDEN));
    mat(`blk.${l}.ffn_down.weight`, HIDDEN, FFN, 1 / Math.sqrt(FFN));
  }
  ones("output_norm.weight");
  const u32 = (value: number): GgufValue => ({ type: "u32", value });
  const tokens = Array.from({ length: VOCAB }, (_, i) => (i < 256 ? String.fromCharCode(0x100 + i) : `[T${i}]`));
  const meta: [string, GgufValue][] = [
    ["general.architecture", { type: "string", value: "llama" }],
    ["general.name", { type: "string", value: `bench-llama-kv${kvHeads}` }],
    ["llama.context_length", u32(context)],
    ["llama.embedding_length", u32(HIDDEN)],
    ["llama.block_count", u32(LAYERS)],
    ["llama.feed_forward_length", u32(FFN)],
    ["llama.attention.head_count", u32(HEADS)],
    ["llama.attention.head_count_kv", u32(kvHeads)],
    ["llama.attention.layer_norm_rms_epsilon", { type: "f32", value: 1e-5 }],
    ["llama.rope.freq_base", { type: "f32", value: 10000 }],
    ["llama.rope.dimension_count", u32(HEAD_DIM)],
    ["llama.vocab_size", u32(VOCAB)],
    ["tokenizer.ggml.model", { type: "string", value: "gpt2" }],
    ["tokenizer.ggml.pre", { type: "string", value: "default" }],
    ["tokenizer.ggml.tokens", { type: "string[]", value: tokens }],
    ["tokenizer.ggml.token_type", { type: "i32[]", value: tokens.map(() => 1) }],
    ["tokenizer.ggml.merges", { type: "string[]", value: [] }],
  ];
  writeGguf(path, meta, tensors);
  return path;
}

export function promptTokens(n: number): number[] {
  return Array.from({ length: n }, (_, i) => 300 + ((i * 7919) % 31000));
}

/**
 * The 2-thread SIMD peak (GFLOP/s) is printed beside each run because on this VM it is sometimes
 * half its usual value for a whole process (the two vCPUs then seem to share one physical core),
 * which slows ALU-bound decode and makes runs minutes apart disagree.
 */
function simdPeakGflops(kernels: Kernels): number {
  return (measureSimdPeak(kernels) ?? NaN) / 1e9;
}

async function workerMqa(model: string, P: number, N: number, threads: number): Promise<WorkerResult> {
  const { enableRelaxedSimdFlag } = await import("../src/kernels/wasm-node.js");
  enableRelaxedSimdFlag();
  const { openRuntime } = await import("../src/generate/runtime.js");
  const rt = await openRuntime(model, { threads, tokenizer: false });
  try {
    const cache = rt.model.createCache({ dtype: "f16", maxTokens: P + N + 2 });
    const seq = cache.addSequence();
    const prompt = promptTokens(P);
    const peak0 = simdPeakGflops(rt.kernels);
    const t0 = performance.now();
    rt.model.prefill(cache, [seq], [prompt], 512); // llama.cpp's default n_batch
    const tw = performance.now();
    rt.model.forward(cache, [seq], [[prompt[P - 1]]], "last"); // warm-up decode step, untimed (DECODE_WARMUP)
    const t1 = performance.now();
    for (let i = 0; i < N; i++) rt.model.forward(cache, [seq], [[prompt[i % P]]], "last");
    const t2 = performance.now();
    const peak1 = simdPeakGflops(rt.kernels);
    return {
      engine: "mqa", prefillTokens: P, prefillSeconds: (tw - t0) / 1000, decodeTokens: N, decodeSeconds: (t2 - t1) / 1000,
      maxRssBytes: process.resourceUsage().maxRSS * 1024, weightsBytes: rt.model.weightBytes(), kvBytes: cache.bytes(), detail: `${rt.kernels.name}, ${rt.kernels.threads} threads, SIMD peak ${peak0.toFixed(0)}/${peak1.toFixed(0)} GFLOP/s before/after`,
    };
  } finally {
    rt.close();
  }
}

async function workerLlamaCpp(model: string, P: number, N: number, threads: number): Promise<WorkerResult> {
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  const m = await llama.loadModel({ modelPath: model });
  const ctx = await m.createContext({ contextSize: P + N + 16, threads, sequences: 1 });
  const seq = ctx.getSequence();
  const prompt = promptTokens(P) as unknown as Token[];
  const t0 = performance.now();
  await seq.controlledEvaluate([...prompt.slice(0, -1), [prompt[P - 1], { generateNext: { token: true } }]]);
  const tw = performance.now();
  await seq.controlledEvaluate([[prompt[P - 1], { generateNext: { token: true } }]]); // warm-up decode step, untimed
  const t1 = performance.now();
  for (let i = 0; i < N; i++) await seq.controlledEvaluate([[prompt[i % P], { generateNext: { token: true } }]]);
  const t2 = performance.now();
  const res = {
    engine: "llama.cpp", prefillTokens: P, prefillSeconds: (tw - t0) / 1000, decodeTokens: N, decodeSeconds: (t2 - t1) / 1000,
    maxRssBytes: process.resourceUsage().maxRSS * 1024, weightsBytes: m.size, kvBytes: 0, detail: `node-llama-cpp ${threads} threads, flash attention ${ctx.flashAttention}`,
  };
  await ctx.dispose();
  await m.dispose();
  return res;
}

/**
 * Both engines in one process, interleaved chunk by chunk (prefill, 512 tokens) and token by token
 * (decode), so both see the same machine load: on a shared, busy machine this gives far steadier
 * ratios than separate runs minutes apart. Peak RSS is measured in the separate-process mode.
 */
async function workerPair(model: string, P: number, N: number, threads: number): Promise<WorkerResult[]> {
  const { enableRelaxedSimdFlag } = await import("../src/kernels/wasm-node.js");
  enableRelaxedSimdFlag();
  const { openRuntime } = await import("../src/generate/runtime.js");
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  const rt = await openRuntime(model, { threads, tokenizer: false });
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  const m = await llama.loadModel({ modelPath: model });
  const ctx = await m.createContext({ contextSize: P + N + 16, threads, sequences: 1 });
  const lseq = ctx.getSequence();
  const cache = rt.model.createCache({ dtype: "f16", maxTokens: P + N + 2 });
  const seq = cache.addSequence();
  const prompt = promptTokens(P);
  const t = { mqa: [0, 0], llama: [0, 0] }; // [prefill, decode] milliseconds
  const peak0 = simdPeakGflops(rt.kernels);
  const CHUNK = 512;
  for (let s0 = 0; s0 < P; s0 += CHUNK) {
    const chunk = prompt.slice(s0, s0 + CHUNK) as unknown as Token[];
    const last = s0 + CHUNK >= P;
    let a = performance.now();
    rt.model.forward(cache, [seq], [chunk as unknown as number[]], "last");
    t.mqa[0] += performance.now() - a;
    a = performance.now();
    await lseq.controlledEvaluate(last ? [...chunk.slice(0, -1), [chunk[chunk.length - 1], { generateNext: { token: true } }]] : chunk);
    t.llama[0] += performance.now() - a;
  }
  // Warm-up decode step of each engine, untimed (DECODE_WARMUP).
  rt.model.forward(cache, [seq], [[prompt[P - 1]]], "last");
  await lseq.controlledEvaluate([[prompt[P - 1] as unknown as Token, { generateNext: { token: true } }]]);
  for (let i = 0; i < N; i++) {
    const tok = prompt[i % P];
    let a = performance.now();
    rt.model.forward(cache, [seq], [[tok]], "last");
    t.mqa[1] += performance.now() - a;
    a = performance.now();
    await lseq.controlledEvaluate([[tok as unknown as Token, { generateNext: { token: true } }]]);
    t.llama[1] += performance.now() - a;
  }
  const rss = process.resourceUsage().maxRSS * 1024;
  const peak1 = simdPeakGflops(rt.kernels);
  const out: WorkerResult[] = [
    { engine: "mqa", prefillTokens: P, prefillSeconds: t.mqa[0] / 1000, decodeTokens: N, decodeSeconds: t.mqa[1] / 1000, maxRssBytes: rss, weightsBytes: rt.model.weightBytes(), kvBytes: cache.bytes(), detail: `${rt.kernels.name}, ${rt.kernels.threads} threads, interleaved, SIMD peak ${peak0.toFixed(0)}/${peak1.toFixed(0)} GFLOP/s before/after` },
    { engine: "llama.cpp", prefillTokens: P, prefillSeconds: t.llama[0] / 1000, decodeTokens: N, decodeSeconds: t.llama[1] / 1000, maxRssBytes: rss, weightsBytes: m.size, kvBytes: 0, detail: `node-llama-cpp ${threads} threads, flash attention ${ctx.flashAttention}, interleaved` },
  ];
  await ctx.dispose();
  await m.dispose();
  rt.close();
  return out;
}

function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * A thread that wakes every millisecond and does nothing else, started in every worker process
 * (both engines) unless --no-ticker. On this VM a vCPU left idle is slow to get back: llama.cpp's
 * thread pool sleeps between tokens, and alone in its process it decoded the MHA f16 bench model
 * at a median 20-24 ms per token, against 9.4-11.7 ms with this ticker running (mqa 10.0-10.5
 * either way: its pool spins between kernel calls). 2026-12-07, AMD EPYC, 2 vCPUs; see
 * docs/benchmarks/generate.md, session 9. The ticker costs ~1000 empty wake-ups a second.
 */
function startTicker(): void {
  const w = new Worker("const v = new Int32Array(new SharedArrayBuffer(4)); for (;;) Atomics.wait(v, 0, 0, 1);", { eval: true });
  w.unref();
}

async function main(): Promise<void> {
  const worker = arg("--worker");
  const ticker = !process.argv.includes("--no-ticker");
  if (worker) {
    if (ticker) startTicker();
    const [model, P, N, T] = [arg("--model")!, Number(arg("--prompt")), Number(arg("--decode")), Number(arg("--threads"))];
    const rs = worker === "pair" ? await workerPair(model, P, N, T) : [worker === "mqa" ? await workerMqa(model, P, N, T) : await workerLlamaCpp(model, P, N, T)];
    for (const r of rs) process.stdout.write("RESULT " + JSON.stringify(r) + "\n");
    return;
  }
  const quick = process.argv.includes("--quick");
  const threads = Number(arg("--threads", "2"));
  const contexts = (arg("--contexts", quick ? "512" : "512,8192") ?? "").split(",").map(Number);
  const reps = Number(arg("--reps", quick ? "1" : "2"));
  const kvList = (arg("--kv-heads", "12,4,1") ?? "").split(",").map(Number);
  const dtypes = (arg("--dtypes", "f32,f16") ?? "").split(",") as BenchDtype[];
  const decode = Number(arg("--decode", "32"));
  const pairMode = !process.argv.includes("--separate"); // both engines in one process, step by step (the default)
  const dir = join(tmpdir(), "mqa-bench-models");
  mkdirSync(dir, { recursive: true });
  console.log(`# mqa vs llama.cpp generate bench, ${new Date().toISOString()}, ${cpus().length} CPUs (${cpus()[0]?.model}), load ${loadavg().map((x) => x.toFixed(2)).join(" ")}, threads ${threads}, keep-awake ticker ${ticker ? "on" : "off"}`);
  console.log("| KV heads | weights | context | engine | prefill tok/s | decode tok/s | peak RSS MiB | weights+KV MiB | runs |");
  console.log("|---|---|---|---|---|---|---|---|---|");
  const ratios: string[] = [];
  for (const ctxLen of contexts) {
    for (const dtype of dtypes) {
      for (const kv of kvList) {
        const model = benchModel(dir, kv, dtype, ctxLen);
        const P = ctxLen - decode - 2; // prompt, one warm-up decode step, `decode` timed steps: the whole context
        const runs: Record<string, WorkerResult[]> = { mqa: [], "llama.cpp": [] };
        for (let r = 0; r < reps; r++) {
          for (const engine of pairMode ? ["pair"] : r % 2 === 0 ? ["mqa", "llamacpp"] : ["llamacpp", "mqa"]) {
            const extra = engine !== "llamacpp" ? ["--experimental-wasm-relaxed-simd", "--max-old-space-size=8192"] : [];
            const out = spawnSync(process.execPath, [...extra, "--import", "tsx", "bench/generate.ts", "--worker", engine, "--model", model, "--prompt", String(P), "--decode", String(decode), "--threads", String(threads), ...(ticker ? [] : ["--no-ticker"])], { encoding: "utf8", maxBuffer: 1 << 26 });
            const lines = out.stdout.split("\n").filter((l) => l.startsWith("RESULT "));
            if (lines.length === 0) throw new Error(`${engine} worker failed (status ${out.status}): ${out.stderr.slice(-2000)}`);
            for (const line of lines) {
              const res = JSON.parse(line.slice(7)) as WorkerResult;
              runs[res.engine].push(res);
            }
          }
        }
        const row: Record<string, { prefill: number; decode: number }> = {};
        for (const [engine, rs] of Object.entries(runs)) {
          const prefill = median(rs.map((x) => x.prefillTokens / x.prefillSeconds));
          const dec = median(rs.map((x) => x.decodeTokens / x.decodeSeconds));
          const rss = pairMode ? NaN : Math.max(...rs.map((x) => x.maxRssBytes)) / 1048576; // one process holds both engines unless --separate
          const wkv = engine === "mqa" ? `${((rs[0].weightsBytes + rs[0].kvBytes) / 1048576).toFixed(0)}` : "";
          row[engine] = { prefill, decode: dec };
          console.log(`| ${kv} | ${dtype} | ${ctxLen} | ${engine} | ${prefill.toFixed(1)} | ${dec.toFixed(2)} | ${rss.toFixed(0)} | ${wkv} | ${rs.length} (${rs[0].detail}) |`);
        }
        ratios.push(`| ${kv} | ${dtype} | ${ctxLen} | ${(row.mqa.prefill / row["llama.cpp"].prefill).toFixed(2)} | ${(row.mqa.decode / row["llama.cpp"].decode).toFixed(2)} |`);
      }
    }
  }
  console.log("\n| KV heads | weights | context | prefill mqa / llama.cpp | decode mqa / llama.cpp |\n|---|---|---|---|---|");
  for (const r of ratios) console.log(r);
  console.log(`\n# load at end: ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
}

if (process.argv[1]?.endsWith("generate.ts")) await main(); // run as a script; other benches import benchModel
