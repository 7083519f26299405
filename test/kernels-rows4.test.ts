// The rows4 layout of f16 and bf16 matmul weights (src/kernels/rows4.ts, assembly/matvec.ts ROWS4): the index
// map against the packer (aligned and not), and every matmul path that reads a rows4 w (decode M = 1, 2, 3 with and
// without wFinite, the exact h2f path for |x| >= 2^14 and for blocks holding inf/NaN, prefill M >= 4,
// matmulMany parts, rows past the last block) bit-identical to the same call on the row layout, on
// the WASM builds and the reference. A rows4 embedding reads back its rows (weightRow).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Arena } from "../src/kernels/memory.js";
import { referenceKernels } from "../src/kernels/reference.js";
import { encodeBf16, encodeF16 } from "../src/dtypes/codecs.js";
import { seededRandom } from "../src/random.js";
import { packRows4, rows4Index, unpackRows4 } from "../src/kernels/rows4.js";
import type { Kernels, MatmulCall } from "../src/kernels/types.js";
import { packRows4Weights, weightRow, type Weight } from "../src/models/weights.js";
import { wasmBackends } from "./kernel-backends.js";

const arena = new Arena({ initialBytes: 64 << 20 });
const backends = wasmBackends(arena, [{ threads: 1, relaxed: false }, { threads: 1, relaxed: true }, { threads: 2, relaxed: true }]);

function rand(n: number, scale: number, seed: number): Float32Array {
  const r = seededRandom(seed), a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = scale * (2 * r() - 1);
  return a;
}

test("rows4: packRows4 puts element (n, k) at rows4Index, keeps the rows past the last block, and unpacks back", () => {
  for (const [N, Kin] of [[4, 8], [7, 16], [13, 24], [9, 8]]) {
    const h = Uint16Array.from({ length: N * Kin }, (_, i) => i);
    const packed = h.slice();
    packRows4(packed, N, Kin);
    for (let n = 0; n < N; n++) for (let k = 0; k < Kin; k++) assert.equal(packed[rows4Index(n, k, N, Kin)], n * Kin + k, `[${N}, ${Kin}] (${n}, ${k})`);
    assert.deepEqual([...packed.subarray((N - (N % 4)) * Kin)], [...h.subarray((N - (N % 4)) * Kin)], "tail rows stay");
    assert.deepEqual([...unpackRows4(packed, N, Kin, new Uint16Array(N * Kin))], [...h]);
    const odd = new Uint16Array(new ArrayBuffer(2 * N * Kin + 2), 2, N * Kin); // not 4-byte aligned: moved as halves
    odd.set(h);
    packRows4(odd, N, Kin);
    assert.deepEqual([...odd], [...packed], `[${N}, ${Kin}] at byte offset 2`);
    if (Kin > 8) assert.notDeepEqual([...packed.subarray(0, 16)], [...h.subarray(0, 16)], "the first block is reordered");
  }
  assert.throws(() => packRows4(new Uint16Array(30), 3, 10), /rows4/);
});

/** out of `k.matmul` (and matmulMany over two copies) with w in rows and in rows4 must be bit-identical. */
function compare(k: Kernels, dt: "f16" | "bf16", label: string, wf: Float32Array, xf: Float32Array, M: number, N: number, Kin: number, wFinite: boolean): void {
  const h = new Uint16Array(N * Kin);
  if (dt === "f16") encodeF16(wf, h);
  else encodeBf16(wf, h);
  const wRow = arena.alloc(N * Kin * 2), w4 = arena.alloc(N * Kin * 2);
  arena.u16(wRow, N * Kin).set(h);
  const p = h.slice();
  packRows4(p, N, Kin);
  arena.u16(w4, N * Kin).set(p);
  const x = arena.alloc(M * Kin * 4), a = arena.alloc(M * N * 4 * 2), b = arena.alloc(M * N * 4 * 2);
  arena.f32(x, M * Kin).set(xf);
  const call = (w: number, out: number, rows4: boolean): MatmulCall => ({ x, w, bias: 0, out, M, N, Kin, wDtype: dt, wFinite: wFinite && dt === "f16", wRows4: rows4 });
  k.matmul(call(wRow, a, false));
  k.matmul(call(w4, b, true));
  // two parts of one decode task: the same weight twice, outputs side by side
  if (M < 4) k.matmulMany([call(w4, b + M * N * 4, true), call(w4, b, true)]);
  const got = new Uint32Array(arena.f32(b, M * N).slice().buffer), want = new Uint32Array(arena.f32(a, M * N).slice().buffer);
  for (let i = 0; i < M * N; i++) assert.equal(got[i], want[i], `${k.name} ${k.threads}t ${dt} ${label}: out[${Math.floor(i / N)}, ${i % N}] = ${arena.f32(b, M * N)[i]}, row layout ${arena.f32(a, M * N)[i]}`);
  if (M < 4) {
    const part = new Uint32Array(arena.f32(b + M * N * 4, M * N).slice().buffer);
    for (let i = 0; i < M * N; i++) assert.equal(part[i], want[i], `${k.name} ${label}: matmulMany part out[${i}]`);
  }
  [wRow, w4, x, a, b].forEach((q) => arena.release(q));
}

const SHAPES: [number, number][] = [[4, 8], [13, 24], [37, 64], [64, 768], [30, 2048]];

test("rows4: every matmul path reads a rows4 w bit-identically to the row layout (WASM builds and reference, f16 and bf16)", () => {
  const all: Kernels[] = [...backends, referenceKernels(arena)];
  let seed = 1;
  for (const k of all) for (const dt of ["f16", "bf16"] as const) {
    for (const [N, Kin] of SHAPES) {
      if (k.name === "reference" && N * Kin > 64 * 768) continue;
      for (const M of [1, 2, 3, 5]) {
        const wf = rand(N * Kin, 0.1, seed++);
        compare(k, dt, `[${N}, ${Kin}] M=${M} finite`, wf, rand(M * Kin, 2, seed++), M, N, Kin, true);
        compare(k, dt, `[${N}, ${Kin}] M=${M} checked`, wf, rand(M * Kin, 2, seed++), M, N, Kin, false);
        const big = rand(M * Kin, 2, seed++);
        big[Kin - 1] = 30000; // |x| >= 2^14: the exact h2f path of row 0
        compare(k, dt, `[${N}, ${Kin}] M=${M} |x| = 30000`, wf, big, M, N, Kin, false);
        for (const special of [Infinity, NaN]) {
          const ws = wf.slice();
          ws[Math.min(5, N - 1) * Kin + (Kin >> 1) + 1] = special; // inside a block (or a tail row), mid-row
          compare(k, dt, `[${N}, ${Kin}] M=${M} w holds ${special}`, ws, rand(M * Kin, 2, seed++), M, N, Kin, false);
        }
      }
    }
  }
});

for (const dt of ["f16", "bf16"] as const) test(`rows4: a packed ${dt} embedding reads back every row (weightRow), a packed weight is not packed twice`, () => {
  const [N, Kin] = [10, 24];
  const wf = rand(N * Kin, 1, 99);
  const h = new Uint16Array(N * Kin);
  if (dt === "f16") encodeF16(wf, h);
  else encodeBf16(wf, h);
  const ptr = arena.alloc(N * Kin * 2);
  arena.u16(ptr, N * Kin).set(h);
  const w: Weight = { ptr, dtype: dt, shape: [N, Kin] };
  const before = Array.from({ length: N }, (_, r) => { const o = new Float32Array(Kin); weightRow(arena, w, r, o); return o; });
  const weights = new Map<string, Weight>([["embed", w], ["odd", { ptr: arena.alloc(12 * 2), dtype: dt, shape: [2, 6] }], ["f32", { ptr: arena.alloc(16 * 8 * 4), dtype: "f32", shape: [16, 8] }]]);
  packRows4Weights(arena, weights);
  assert.equal(w.rows4, true);
  assert.equal(weights.get("odd")!.rows4, undefined, "Kin % 8 != 0 stays in rows");
  assert.equal(weights.get("f32")!.rows4, undefined, "f32 stays in rows");
  const packed = arena.u16(ptr, N * Kin).slice();
  packRows4Weights(arena, weights);
  assert.deepEqual([...arena.u16(ptr, N * Kin)], [...packed], "a second call leaves it");
  for (let r = 0; r < N; r++) {
    const o = new Float32Array(Kin);
    weightRow(arena, w, r, o);
    assert.deepEqual([...o], [...before[r]], `row ${r}`);
  }
});
