// Kernels.matmulMany (several projections of one x, e.g. a decode step's q, k and v) against the
// same products as separate matmul calls on the same backend: bit for bit, for every weight dtype,
// 1-3 decode rows (one task of several parts), prefill rows and mixed dtypes (call by call), with
// row tails (N % 4), a bias on one part and parts of very different sizes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Arena } from "../src/kernels/memory.js";
import { referenceKernels } from "../src/kernels/reference.js";
import { encodeBf16, encodeF16 } from "../src/dtypes/codecs.js";
import { encodeQ8_0 } from "../src/dtypes/q8_0.js";
import { encodeQuant, type GgmlQuant } from "../src/dtypes/ggml_quants.js";
import { rowBytes } from "../src/dtypes/table.js";
import type { Kernels, MatmulCall, WeightDtype } from "../src/kernels/types.js";
import { seededRandom } from "../src/random.js";
import { wasmBackends } from "./kernel-backends.js";

const arena = new Arena({ initialBytes: 32 << 20 });
const backends = wasmBackends(arena, [{ threads: 1, relaxed: true }, { threads: 2, relaxed: true }, { threads: 2, relaxed: false }]);

function encode(values: Float32Array, dtype: WeightDtype, N: number, Kin: number): Uint8Array {
  if (dtype === "f32") return new Uint8Array(values.buffer.slice(0));
  if (dtype === "f16" || dtype === "bf16") {
    const h = new Uint16Array(values.length);
    (dtype === "f16" ? encodeF16 : encodeBf16)(values, h);
    return new Uint8Array(h.buffer);
  }
  const out = new Uint8Array(N * rowBytes(dtype, Kin));
  if (dtype === "q8_0") out.set(encodeQ8_0(values));
  else out.set(encodeQuant(dtype as GgmlQuant, values));
  return out;
}

interface Part { N: number; dtype: WeightDtype; bias: boolean }

/** Runs the parts as matmulMany and as separate matmul calls on each backend; the outputs must match bitwise. */
function check(name: string, M: number, Kin: number, parts: Part[], wFinite: boolean, seed: number): void {
  const rnd = seededRandom(seed);
  const x = arena.alloc(M * Kin * 4);
  arena.f32(x, M * Kin).set(Float32Array.from({ length: M * Kin }, () => 2 * rnd() - 1));
  const calls: MatmulCall[] = [];
  const alt: number[] = [];
  const ptrs = [x];
  for (const p of parts) {
    const values = Float32Array.from({ length: p.N * Kin }, () => 0.2 * rnd() - 0.1);
    const bytes = encode(values, p.dtype, p.N, Kin);
    const w = arena.alloc(bytes.length), out = arena.alloc(M * p.N * 4), out2 = arena.alloc(M * p.N * 4);
    arena.u8(w, bytes.length).set(bytes);
    let bias = 0;
    if (p.bias) {
      bias = arena.alloc(p.N * 4);
      arena.f32(bias, p.N).set(Float32Array.from({ length: p.N }, () => rnd() - 0.5));
      ptrs.push(bias);
    }
    calls.push({ x, w, bias, out, M, N: p.N, Kin, wDtype: p.dtype, wFinite });
    alt.push(out2);
    ptrs.push(w, out, out2);
  }
  const all: Kernels[] = [referenceKernels(arena), ...backends];
  for (const b of all) {
    calls.forEach((c, i) => {
      arena.f32(c.out, M * c.N).fill(777);
      arena.f32(alt[i], M * c.N).fill(-777);
    });
    b.matmulMany(calls);
    calls.forEach((c, i) => b.matmul({ ...c, out: alt[i] }));
    calls.forEach((c, i) => {
      const got = new Uint32Array(arena.memory.buffer, c.out, M * c.N).slice();
      const want = new Uint32Array(arena.memory.buffer, alt[i], M * c.N).slice();
      const at = got.findIndex((v, j) => v !== want[j]);
      assert.ok(at < 0, `${name} (${b.name}×${b.threads}): part ${i} (${c.wDtype} N=${c.N}${c.bias ? " +bias" : ""}) out[${at}] bits ${got[at]?.toString(16)} from matmulMany, ${want[at]?.toString(16)} from matmul (tolerance 0)`);
    });
  }
  ptrs.forEach((p) => arena.release(p));
}

const DTYPES: WeightDtype[] = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k"];

test("matmulMany: decode parts (M = 1, 2, 3) equal separate matmul calls bit for bit, every weight dtype", () => {
  let seed = 1;
  for (const dtype of DTYPES) {
    const Kin = dtype.endsWith("_k") ? 512 : 768; // k-quants need Kin % 256 == 0
    for (const M of [1, 2, 3]) {
      // q|k|v of a GQA layer (and the MQA k, v of 64 rows), then uneven parts with row tails and a bias
      for (const Ns of [[96, 64, 64], [203, 37, 4, 1], [32000 % 997, 8]]) {
        for (const wFinite of dtype === "f16" ? [true, false] : [false]) {
          const parts = Ns.map((N, i) => ({ N, dtype, bias: i === 1 }));
          check(`${dtype} M=${M} N=[${Ns}] Kin=${Kin}${wFinite ? " wFinite" : ""}`, M, Kin, parts, wFinite, seed++);
        }
      }
    }
  }
});

test("matmulMany: prefill rows, mixed dtypes, one part and empty parts run call by call with the same results", () => {
  check("prefill M=7", 7, 256, [{ N: 40, dtype: "f16", bias: false }, { N: 24, dtype: "f16", bias: true }], true, 100);
  check("mixed dtypes M=1", 1, 256, [{ N: 40, dtype: "f16", bias: false }, { N: 24, dtype: "f32", bias: false }, { N: 12, dtype: "q8_0", bias: true }], false, 101);
  check("one part M=1", 1, 256, [{ N: 77, dtype: "bf16", bias: true }], false, 102);
  check("an empty part M=2", 2, 256, [{ N: 0, dtype: "f32", bias: false }, { N: 9, dtype: "f32", bias: false }], false, 103);
});
