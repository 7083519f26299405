// The kernel pool under back-to-back tasks of different sizes (a decode step: a 4-item projection,
// then a 64-item one, then attention…). Every output must equal the single-thread result bit for
// bit. It guards the pool's hand-over between tasks (src/kernels/pool.ts, run(): a task is closed
// before the next one's arguments are written); the stale-claim race that fix removes needs a worker
// preempted at one instruction, and this test did not reproduce it on the old code either.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Arena } from "../src/kernels/memory.js";
import type { MatmulCall } from "../src/kernels/types.js";
import { seededRandom } from "../src/random.js";
import { wasmBackends } from "./kernel-backends.js";

const arena = new Arena({ initialBytes: 16 << 20 });
const backends = wasmBackends(arena, [{ threads: 1, relaxed: true }, { threads: 2, relaxed: true }]);

test("pool: 3000 bursts of small and large matmuls on 2 threads equal the 1-thread results bit for bit", () => {
  const [one, two] = backends;
  const rnd = seededRandom(7);
  const Kin = 64;
  const shapes = [8, 512, 16, 256]; // 2, 64, 4 and 32 work items: every task follows one of another size
  const calls: { call: MatmulCall; want: Uint32Array }[] = shapes.map((N) => {
    const x = arena.alloc(Kin * 4), w = arena.alloc(N * Kin * 4), out = arena.alloc(N * 4 + 256); // 256 spare bytes: a stray write lands there
    arena.f32(x, Kin).set(Float32Array.from({ length: Kin }, () => rnd() - 0.5));
    arena.f32(w, N * Kin).set(Float32Array.from({ length: N * Kin }, () => rnd() - 0.5));
    const call: MatmulCall = { x, w, bias: 0, out, M: 1, N, Kin, wDtype: "f32" };
    arena.f32(out, N + 64).fill(0);
    one.matmul(call);
    return { call, want: new Uint32Array(arena.memory.buffer, out, N + 64).slice() };
  });
  // Bursts of the four calls back to back (no host work between them, as in a decode step), then checks.
  for (let rep = 0; rep < 3000; rep++) {
    for (const { call } of calls) arena.f32(call.out, call.N).fill(NaN);
    for (const { call } of calls) two.matmul(call);
    for (const { call, want } of calls) {
      const got = new Uint32Array(arena.memory.buffer, call.out, call.N + 64);
      const at = got.findIndex((v, i) => v !== want[i]);
      assert.ok(at < 0, `burst ${rep}, N = ${call.N}: out[${at}] bits ${got[at]?.toString(16)}, want ${want[at]?.toString(16)} (the 1-thread result; ${at >= call.N ? "a write past the output" : "a wrong or missing row"})`);
    }
  }
});
