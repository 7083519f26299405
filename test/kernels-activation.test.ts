// The WASM activation kernel (src/kernels/assembly/activation.ts) against the float64 reference for
// every op: random values over the range MLP activations see, the edges (±0, ±Inf, NaN, values
// whose cube overflows f32, subnormals, the far tails where σ underflows), a length with a scalar
// tail, and one long enough for several items on two threads.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Arena } from "../src/kernels/memory.js";
import { referenceKernels } from "../src/kernels/reference.js";
import type { ActivationOp } from "../src/kernels/types.js";
import { seededRandom } from "../src/random.js";
import { wasmBackends } from "./kernel-backends.js";

const arena = new Arena({ initialBytes: 16 << 20 });
const ref = referenceKernels(arena);
const variants = [{ threads: 1, relaxed: false }, { threads: 1, relaxed: true }, { threads: 2, relaxed: true }];
const backends = wasmBackends(arena, variants);

// Relative error allowed against float64: RTOL·(1 + |u|), u the argument of σ (module header of
// activation.ts). exp2v (~1.2e-7), a division and a few products give ~3e-7; rounding u itself in
// f32 (GELU: a³, two products) shifts it by ~|u|·2^-23, which σ(u) ≈ e^u turns into that much
// relative error in the tail. Plus an absolute floor for the far tails, where e^(−|u|) is below f32's normal range and exp2v
// gives 0 (|a|·2^-126 < 1e-34 for the |a| < 1e4 an MLP sees).
const RTOL = 1e-6;
const ATOL = 1e-34;
const GELU_2C = 2 * Math.sqrt(2 / Math.PI);
const sigmoidArg = (op: ActivationOp, a: number) => (op === "swiglu" ? a : op === "relu" ? 0 : GELU_2C * (a + 0.044715 * a * a * a));
const EDGES = [0, -0, Infinity, -Infinity, NaN, 1e-40, -1e-40, 1e-7, -1e-7, 5e12, -5e12, 3e38, -3e38, 88, -88, 100, -100, 0.5, -0.5, 4, -4, 9, -9];

function values(n: number, seed: number): Float32Array {
  const rnd = seededRandom(seed);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = (rnd() - 0.5) * 24; // [-12, 12): both tails of σ and GELU
  v.set(EDGES.slice(0, Math.min(n, EDGES.length)));
  return v;
}

for (const op of ["swiglu", "geglu", "gelu", "relu"] as ActivationOp[]) {
  test(`activation ${op}: WASM equals the float64 reference within ${RTOL}·(1 + |u|) relative`, () => {
    const gated = op === "swiglu" || op === "geglu";
    for (const n of [1, 7, EDGES.length + 2, 2 * 16384 + 5]) {
      const x0 = values(n, n), y0 = values(n, n + 1).map((v, i) => (i < EDGES.length ? 1 - 0.25 * (i % 3) : v));
      const x = arena.alloc(n * 4), y = gated ? arena.alloc(n * 4) : 0;
      if (gated) arena.f32(y, n).set(y0);
      arena.f32(x, n).set(x0);
      ref.activation({ x, y, n, op });
      const want = arena.f32(x, n).slice();
      backends.forEach((k, b) => {
        arena.f32(x, n).set(x0);
        k.activation({ x, y, n, op });
        const got = arena.f32(x, n);
        let worst = 0, at = -1;
        for (let i = 0; i < n; i++) {
          if (!Number.isFinite(want[i])) {
            assert.ok(Object.is(got[i], want[i]), `${op} ${JSON.stringify(variants[b])} n=${n}: x[${i}] = ${x0[i]} gave ${got[i]}, want ${want[i]} (exactly, non-finite)`);
            continue;
          }
          const err = Math.abs(got[i] - want[i]) - RTOL * (1 + Math.abs(sigmoidArg(op, x0[i]))) * Math.abs(want[i]) - ATOL;
          if (!(err <= worst)) { worst = Number.isNaN(err) ? Infinity : err; at = i; }
        }
        assert.ok(at < 0, `${op} ${JSON.stringify(variants[b])} n=${n}: x[${at}] = ${x0[at]} gave ${got[at]}, want ${want[at]} (tolerance ${RTOL}·(1 + |u|) relative + ${ATOL})`);
      });
      arena.release(x);
      if (y) arena.release(y);
    }
  });
}

test("activation: bad calls are refused by both backends with the field named", () => {
  for (const k of [ref, ...backends]) {
    assert.throws(() => k.activation({ x: 0, y: 0, n: 4, op: "tanh" as ActivationOp }), /unknown op "tanh"/);
    assert.throws(() => k.activation({ x: 0, y: 0, n: -1, op: "relu" }), /n must be a non-negative integer/);
    assert.throws(() => k.activation({ x: 2, y: 0, n: 4, op: "relu" }), /x = 2 must be a non-negative multiple of 4/);
    assert.throws(() => k.activation({ x: 0, y: arena.memory.buffer.byteLength, n: 4, op: "swiglu" }), /y = .* runs past memory end/);
  }
});
