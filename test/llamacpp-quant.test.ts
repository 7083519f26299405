// llama.cpp parity for the 4/5/6-bit GGUF types (node-llama-cpp 3.21.1, CPU): a random-weight llama
// with 256/512-wide rows (quant-helpers.ts) is exported with our quantizer to Q4_0 … Q6_K, loaded by
// llama.cpp and by mqa, and the next-token probabilities after every prompt token are compared.
//
// What llama.cpp computes. Its CPU matmul for these weights first quantizes each activation row to the
// weight type's vec_dot_type (ggml-cpu type_traits): Q8_0 for Q4_0/Q5_0, Q8_1 for Q4_1/Q5_1 (Q8_0's
// values plus s = f16(d·Σq) per block, which carries the weight's min term), Q8_K for the k-quants
// (256 values, f32 d = 1/iscale, iscale = -127/max). The dot of the integer codes is exact; the scales
// multiply in f32. `llamaCppKernels` below emulates exactly that (activation quantization as
// ggml-quants.c's quantize_row_q8_0/q8_1/q8_K_ref, then the block dot in float64), so
//   z_emul = the logits llama.cpp's arithmetic gives, up to float32 rounding,
//   z_ours = mqa's (float64 reference kernels on the same file; f32 activations, no quantization).
// Tolerances, derived per file:
//   δ_f32 = max |z_wasm - z_ours|: one f32 engine's rounding on this model (our WASM kernels vs the
//           float64 reference). Two engines in two summation orders differ by at most 2 δ_f32; as in
//           test/llamacpp.test.ts we allow 4 δ_f32.
//   δ_act = max |z_emul - z_ours|: the effect of llama.cpp's activation quantization, computed.
//   1. llama.cpp vs the emulation: logits within 4 δ_f32. This is the sharp check that llama.cpp reads
//      our bytes as our dequantizer does (a misread weight moves logits by far more than δ_f32).
//   2. llama.cpp vs mqa: logits within δ = δ_act + 4 δ_f32.
// Logits within δ give p'/p in [e^-2δ, e^2δ] (softmax), so probabilities are compared with relative
// tolerance e^{2δ} - 1 (+ 2^-22 for llama.cpp's f32 probabilities). Not covered: an activation whose
// x/d sits within a few ulps of a rounding boundary may round the other way in llama.cpp's f32 (or
// SIMD quantizer); with random data the expected number of such values per forward is ~1e-4.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cpus } from "node:os";
import { getLlama, LlamaLogLevel, type Llama } from "node-llama-cpp";
import { exportGguf } from "../src/convert/export-gguf.js";
import { createKernels } from "../src/kernels/index.js";
import { referenceKernels } from "../src/kernels/reference.js";
import type { Arena } from "../src/kernels/memory.js";
import type { Kernels, MatmulCall } from "../src/kernels/types.js";
import { decodeQuant, GGML_QUANTS, isGgmlQuant, QUANT_LAYOUT, type GgmlQuant } from "../src/dtypes/ggml_quants.js";
import { f16ToF32, f32ToF16 } from "../src/dtypes/codecs.js";
import { rowBytes } from "../src/dtypes/table.js";
import { expected, load } from "./models-helpers.js";
import { writeWideLlama, WIDE } from "./quant-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "mqa-llamacpp-quant-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const wide = writeWideLlama(join(dir, "wide"));
const prompt = expected("llama-gqa-f16").exp.prompt;
const V = WIDE.vocab;
const f = Math.fround;

let llama: Llama | null = null;
async function getLlamaOnce(): Promise<Llama> {
  llama ??= await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  return llama;
}

/** ggml's nearest_int (round half to even) and roundf (half away from zero). */
const nearestInt = (v: number) => {
  const r = Math.floor(v), d = v - r;
  return d > 0.5 ? r + 1 : d < 0.5 ? r : r % 2 === 0 ? r : r + 1;
};
const roundf = (v: number) => Math.sign(v) * Math.round(Math.abs(v));

/** One activation row quantized to the vec_dot_type of `type`: per block the scale, codes and (Q8_1) s. */
function quantizeActivations(type: GgmlQuant, x: Float32Array): { d: Float64Array; q: Int8Array; s: Float64Array; QA: number } {
  const k = type.endsWith("_k");
  const QA = k ? 256 : 32;
  const nb = x.length / QA;
  const d = new Float64Array(nb), s = new Float64Array(nb), q = new Int8Array(x.length);
  for (let b = 0; b < nb; b++) {
    const o = b * QA;
    if (k) {
      // quantize_row_q8_K_ref: max keeps its sign; iscale = -127/max; q = min(127, nearest_int(iscale·x)); d = 1/iscale (f32).
      let amax = 0, max = 0;
      for (let j = 0; j < QA; j++) if (Math.abs(x[o + j]) > amax) [amax, max] = [Math.abs(x[o + j]), x[o + j]];
      if (amax === 0) continue;
      const iscale = f(-127 / max);
      for (let j = 0; j < QA; j++) q[o + j] = Math.min(127, nearestInt(f(iscale * x[o + j])));
      d[b] = f(1 / iscale);
    } else {
      // quantize_row_q8_0_ref / q8_1_ref: d = amax/127 (f32), q = roundf(x·(1/d)); stored d = f16(d); s = f16(d·Σq).
      let amax = 0;
      for (let j = 0; j < QA; j++) amax = Math.max(amax, Math.abs(x[o + j]));
      const d32 = f(amax / 127), id = d32 ? f(1 / d32) : 0;
      let sum = 0;
      for (let j = 0; j < QA; j++) {
        q[o + j] = roundf(f(x[o + j] * id));
        sum += q[o + j];
      }
      d[b] = f16ToF32(f32ToF16(d32));
      s[b] = f16ToF32(f32ToF16(f(sum * d32)));
    }
  }
  return { d, q, s, QA };
}

/**
 * The reference kernels, except that matmuls with 4/5/6-bit weights compute what llama.cpp's CPU
 * vec_dot does (in float64): Σ_blocks d_a·Σ w_i q_i over the exact dequantized w, plus for Q4_1/Q5_1
 * the min term through s: m_w·(s - d_a·Σq) per block.
 */
function llamaCppKernels(arena: Arena): Kernels {
  const ref = referenceKernels(arena);
  const kernels: Kernels = {
    name: "llama.cpp emulation",
    threads: 1,
    matmulMany: (cs: MatmulCall[]) => cs.forEach((c) => kernels.matmul(c)),
    attention: (c) => ref.attention(c),
    activation: (c) => ref.activation(c),
    matmul: (c: MatmulCall) => {
      if (!isGgmlQuant(c.wDtype)) return ref.matmul(c);
      const type = c.wDtype;
      const { M, N, Kin } = c;
      const x = arena.f32(c.x, M * Kin), out = arena.f32(c.out, M * N);
      const raw = arena.u8(c.w, N * rowBytes(type, Kin));
      const w = decodeQuant(type, raw, N * Kin, new Float64Array(N * Kin));
      const bias = c.bias ? arena.f32(c.bias, N) : null;
      const withMin = type === "q4_1" || type === "q5_1";
      const BB = QUANT_LAYOUT[type].blockBytes;
      for (let m = 0; m < M; m++) {
        const a = quantizeActivations(type, x.slice(m * Kin, (m + 1) * Kin));
        for (let n = 0; n < N; n++) {
          let acc = bias ? bias[n] : 0;
          for (let b = 0; b < Kin / a.QA; b++) {
            let dot = 0, qsum = 0;
            for (let j = b * a.QA; j < (b + 1) * a.QA; j++) {
              dot += w[n * Kin + j] * a.q[j];
              qsum += a.q[j];
            }
            acc += a.d[b] * dot;
            if (withMin) {
              const p = (n * Kin) / 32 * BB + b * BB + 2; // this weight block's f16 m
              acc += f16ToF32(raw[p] | (raw[p + 1] << 8)) * (a.s[b] - a.d[b] * qsum);
            }
          }
          out[m * N + n] = acc;
        }
      }
    },
  };
  return kernels;
}

function softmax(z: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < z.length; i++) m = Math.max(m, z[i]);
  const p = Float64Array.from(z as ArrayLike<number>, (v) => Math.exp(v - m));
  const s = p.reduce((a, b) => a + b, 0);
  return p.map((v) => v / s);
}

/** Largest |a - b| over all logits. */
function maxDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** Fails with the worst token, its probabilities and the tolerance when |p - q| > tol·q anywhere. */
function assertProbs(label: string, mine: Float64Array, theirs: Float64Array, rel: number, machine: string): void {
  let worst = 0, at = -1;
  for (let i = 0; i < mine.length; i++) {
    const r = Math.abs(mine[i] - theirs[i]) / (rel * Math.max(mine[i], theirs[i]));
    if (!(r <= worst)) [worst, at] = [r, i];
  }
  assert.ok(worst <= 1, `${label}: token ${at}: ${mine[at]} vs llama.cpp ${theirs[at]}, relative error ${(Math.abs(mine[at] - theirs[at]) / theirs[at]).toExponential(2)} > ${rel.toExponential(2)} [${machine}]`);
}

for (const type of GGML_QUANTS) {
  test(`llama.cpp parity ${type}: our quantized file, llama.cpp's probabilities = its emulated arithmetic (4 δ_f32) and = mqa's (δ_act + 4 δ_f32)`, async (t) => {
    const gguf = join(dir, `wide-${type}.gguf`);
    exportGguf(wide, gguf, type);
    const ours = await load(gguf);
    const emul = await load(gguf, (a) => llamaCppKernels(a));
    const handles: { close(): void }[] = [];
    const wasm = await load(gguf, async (a) => {
      const k = await createKernels({ arena: a, backend: "wasm", threads: 1 });
      handles.push(k);
      return k;
    });
    const run = (m: typeof ours) => {
      const c = m.model.createCache({});
      return m.model.forward(c, [c.addSequence()], [prompt], "all");
    };
    const zOurs = run(ours), zEmul = run(emul), zWasm = run(wasm);
    handles.forEach((h) => h.close());
    const dF32 = maxDiff(zWasm, zOurs), dAct = maxDiff(zEmul, zOurs);
    t.diagnostic(`${type}: δ_f32 = ${dF32.toExponential(3)}, δ_act = ${dAct.toExponential(3)} (logits)`);
    assert.ok(dF32 > 0 && dAct > dF32, `${type}: δ_f32 ${dF32}, δ_act ${dAct}: activation quantization must be visible above f32 rounding`);
    const lc = await getLlamaOnce();
    const machine = `CPU ${cpus()[0]?.model ?? "unknown"}; llama.cpp ${lc.systemInfo.trim()}`;
    const model = await lc.loadModel({ modelPath: gguf });
    const ctx = await model.createContext({ contextSize: 64, threads: 1, flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" });
    try {
      const seq = ctx.getSequence();
      const res = await seq.controlledEvaluate(prompt.map((t) => [t, { generateNext: { probabilities: true } }] as [number, { generateNext: { probabilities: true } }]));
      const relEmul = Math.expm1(2 * 4 * dF32) + 2 ** -22, relOurs = Math.expm1(2 * (dAct + 4 * dF32)) + 2 ** -22;
      prompt.forEach((_, i) => {
        const theirs = new Float64Array(V).fill(NaN);
        for (const [tok, p] of res[i]!.next!.probabilities!) theirs[tok] = p;
        assertProbs(`${type} after prompt token ${i}, llama.cpp vs its emulation (δ = 4·${dF32.toExponential(2)})`, softmax(zEmul.subarray(i * V, (i + 1) * V)), theirs, relEmul, machine);
        assertProbs(`${type} after prompt token ${i}, llama.cpp vs mqa (δ = ${dAct.toExponential(2)} + 4·${dF32.toExponential(2)})`, softmax(zOurs.subarray(i * V, (i + 1) * V)), theirs, relOurs, machine);
      });
    } finally {
      await ctx.dispose();
      await model.dispose();
    }
  });
}
