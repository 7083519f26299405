// Weight.finite (src/models/weights.ts): an f16 matmul weight is marked all-finite at load only when
// no half is inf or NaN, and the decoder passes it as MatmulCall.wFinite, which lets the f16 matvec
// skip its inf/NaN check. A weight with an inf or NaN must keep the check, so decode stays exact.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { Arena } from "../src/kernels/memory.js";
import { referenceKernels } from "../src/kernels/reference.js";
import { createKernels } from "../src/kernels/index.js";
import { enableRelaxedSimdFlag } from "../src/kernels/wasm-node.js";
import { encodeF16 } from "../src/dtypes/codecs.js";
import { seededRandom } from "../src/random.js";
import { loadWeights, type TensorSource } from "../src/models/weights.js";

enableRelaxedSimdFlag();
const arena = new Arena({ initialBytes: 16 << 20 });
const ref = referenceKernels(arena);
const wasm = await createKernels({ arena, backend: "wasm", threads: 1, relaxed: "auto" });
after(() => wasm.close());

const [N, Kin] = [12, 40]; // 3 full 4-row blocks of 5 chunks of 8 halves

/** One F16 tensor "w" [N, Kin] with values `wf` (encoded to f16), as a checkpoint reader offers it. */
function source(wf: Float32Array): TensorSource {
  const h = new Uint16Array(N * Kin);
  encodeF16(wf, h);
  return {
    path: "memory",
    names: () => ["w"],
    info: (name) => (name === "w" ? { dtype: "F16", shape: [N, Kin] } : undefined),
    read: (_name, dst) => dst.set(new Uint8Array(h.buffer)),
  };
}

function rand(n: number, seed: number): Float32Array {
  const r = seededRandom(seed), a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = 2 * r() - 1;
  return a;
}

for (const [label, special] of [["finite", undefined], ["inf", Infinity], ["-inf", -Infinity], ["NaN", NaN]] as const) {
  test(`weights: f16 weight with ${label} -> finite = ${special === undefined}; decode matvec matches the reference exactly where it is non-finite`, () => {
    const wf = rand(N * Kin, 31);
    if (special !== undefined) wf[5 * Kin + 19] = special; // row 5, inside a full 8-half chunk
    for (const transpose of [false, true]) {
      // transpose exercises the transformed load path ([Kin, N] in the file -> [N, Kin] stored).
      const file = transpose ? transposed(wf) : wf;
      const { weights } = loadWeights(arena, source2(file, transpose), [{ key: "w", source: "w", shape: transpose ? [Kin, N] : [N, Kin], store: "matmul", transpose }]);
      const w = weights.get("w")!;
      assert.equal(w.finite, special === undefined, `transpose=${transpose}: Weight.finite = ${w.finite}`);
      const x = arena.alloc(Kin * 4), out = arena.alloc(N * 4), want = arena.alloc(N * 4);
      arena.f32(x, Kin).set(rand(Kin, 32));
      const call = { x, w: w.ptr, bias: 0, out: want, M: 1, N, Kin, wDtype: w.dtype };
      ref.matmul(call);
      wasm.matmul({ ...call, out, wFinite: w.finite });
      const got = arena.f32(out, N), exp = arena.f32(want, N);
      let worst = 0, at = -1;
      for (let n = 0; n < N; n++) {
        const ok = Number.isFinite(exp[n]) ? Math.abs(got[n] - exp[n]) <= 1e-5 : Object.is(got[n], exp[n]) || (Number.isNaN(got[n]) && Number.isNaN(exp[n]));
        if (!ok) { const e = Math.abs(got[n] - exp[n]); if (!(e <= worst)) { worst = Number.isNaN(e) ? Infinity : e; at = n; } }
      }
      assert.ok(at < 0, `transpose=${transpose}: out[${at}] = ${got[at]}, want ${exp[at]} (tolerance 1e-5 finite, exact otherwise; worst ${worst})`);
      [x, out, want, w.ptr].forEach((p) => arena.release(p));
    }
  });
}

/** [N, Kin] -> [Kin, N] f32 values. */
function transposed(wf: Float32Array): Float32Array {
  const t = new Float32Array(N * Kin);
  for (let n = 0; n < N; n++) for (let k = 0; k < Kin; k++) t[k * N + n] = wf[n * Kin + k];
  return t;
}

function source2(file: Float32Array, transpose: boolean): TensorSource {
  const s = source(file);
  return transpose ? { ...s, info: (name) => (name === "w" ? { dtype: "F16", shape: [Kin, N] } : undefined) } : s;
}
