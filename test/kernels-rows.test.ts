// The decoder's row steps in WASM (src/kernels/assembly/rows.ts) against their plain-TS
// specification: blocks.ts rmsNorm / layerNorm / addInto / RopeTable.apply and codecs.ts
// f32ToF16 / f32ToBf16. Widths with and without a scalar tail, row counts that make several items
// on two threads, and for the narrowing every class of f32 (random bit patterns, subnormals, the
// f16 rounding edges, ±inf, NaN); and the caches that narrow through it against the TypeScript writer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Arena } from "../src/kernels/memory.js";
import { seededRandom } from "../src/random.js";
import { addInto, layerNorm, rmsNorm, RopeTable, ropeInvFreq } from "../src/models/blocks.js";
import { f32ToBf16, f32ToF16 } from "../src/dtypes/codecs.js";
import { createKvCache, readSegmentRow, type KvCacheSpec } from "../src/kvcache/index.js";
import { wasmBackends } from "./kernel-backends.js";

const arena = new Arena({ initialBytes: 64 << 20 });
const backends = wasmBackends(arena, [{ threads: 1, relaxed: false }, { threads: 2, relaxed: true }]);

function put(values: Float32Array | Int32Array): number {
  const ptr = arena.alloc(Math.max(64, values.byteLength), "test rows");
  new Uint8Array(arena.memory.buffer, ptr, values.byteLength).set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  return ptr;
}
const f32At = (ptr: number, n: number) => new Float32Array(arena.memory.buffer, ptr, n).slice();
function randoms(n: number, seed: number, scale = 4): Float32Array {
  const rnd = seededRandom(seed);
  return Float32Array.from({ length: n }, () => (rnd() - 0.5) * scale);
}

/**
 * Largest difference in units of the float32 result's ulp. The norms sum in float64 in another
 * order than the reference, so a result that lies within ~1e-16 relative of a rounding midpoint
 * may round the other way: at most 1 ulp, never more.
 */
function maxUlps(got: Float32Array, want: Float32Array): { ulps: number; at: number } {
  let worst = { ulps: 0, at: -1 };
  for (let i = 0; i < want.length; i++) {
    if (Object.is(got[i], want[i])) continue;
    const ulp = Math.max(2 ** -149, 2 ** (Math.floor(Math.log2(Math.abs(want[i]))) - 23));
    const u = Math.abs(got[i] - want[i]) / ulp;
    if (!(u <= worst.ulps)) worst = { ulps: Number.isNaN(u) ? Infinity : u, at: i };
  }
  return worst;
}

for (const op of ["rmsNorm", "layerNorm"] as const) {
  for (const plusOne of op === "rmsNorm" ? [false, true] : [false]) {
    test(`rowOp ${op}${plusOne ? " (1 + w)" : ""} with and without the residual add equals blocks.ts within 1 ulp`, () => {
      for (const [rows, E] of [[3, 768], [37, 13], [300, 64]]) {
        const x0 = randoms(rows * E, rows + E), h0 = randoms(rows * E, 7 * E), w = randoms(E, 3), b = randoms(E, 5);
        for (const residual of [false, true]) {
          const x = x0.slice();
          if (residual) addInto(x, h0);
          const want = new Float32Array(rows * E);
          if (op === "rmsNorm") rmsNorm(x, w, want, E, 1e-5, plusOne);
          else layerNorm(x, w, b, want, E, 1e-5);
          for (const k of backends) {
            const px = put(x0), ph = put(h0), pw = put(w), pb = put(b);
            // out = the residual buffer itself, as the decoder calls it (h = norm(x += h)).
            k.rowOp!({ op, out: ph, x: px, w: pw, b: pb, residual: residual ? ph : 0, rows, width: E, eps: 1e-5, plusOne });
            const out = f32At(ph, rows * E);
            assert.deepEqual(f32At(px, rows * E), x, `${k.name}: x after the residual add`);
            const { ulps, at } = maxUlps(out, want);
            assert.ok(ulps <= 1, `${k.name} ${op} rows ${rows} E ${E} residual ${residual}: ${ulps} ulps at ${at} (${out[at]} vs ${want[at]}), allowed 1`);
            [px, ph, pw, pb].forEach((p) => arena.release(p));
          }
        }
      }
    });
  }
}

test("rowOp rope equals RopeTable.apply bit for bit (float64 products, one rounding)", () => {
  for (const [rows, heads, D] of [[5, 3, 64], [70, 2, 10], [200, 12, 128]]) {
    const table = new RopeTable(ropeInvFreq(D, 10000, null));
    const rnd = seededRandom(D);
    const pos = Int32Array.from({ length: rows }, () => Math.floor(rnd() * 4000));
    table.ensure(4001);
    const x = randoms(rows * heads * D, heads * D, 8);
    const want = x.slice();
    table.apply(want, heads, D, pos);
    for (const k of backends) {
      const px = put(x), pc = put(table.cos), ps = put(table.sin), pp = put(pos);
      k.rowOp!({ op: "rope", x: px, cos: pc, sin: ps, pos: pp, rows, heads, headDim: D });
      assert.deepEqual(f32At(px, x.length), want, `${k.name} rope rows ${rows} heads ${heads} D ${D}`);
      [px, pc, ps, pp].forEach((p) => arena.release(p));
    }
  }
});

/** f32 values covering every branch of the narrowing: random bits, the f16 rounding edges, specials. */
function narrowInputs(n: number, seed: number): Float32Array {
  const rnd = seededRandom(seed);
  const u = new Uint32Array(n);
  for (let i = 0; i < n; i++) u[i] = Math.floor(rnd() * 2 ** 32) >>> 0;
  const v = new Float32Array(u.buffer);
  const edges = [0, -0, Infinity, -Infinity, NaN, 65504, 65519.99, 65520, 65536, -65520, 2 ** -14, 2 ** -24, 2 ** -25, 1.5 * 2 ** -25, 3 * 2 ** -26, 1e-40, -1e-40, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 1.00048828125, 3.14159, -2.5e-6];
  for (let i = 0; i < edges.length && i < n; i++) v[i * 3] = edges[i];
  for (let i = 1; i < n; i += 5) v[i] = (rnd() - 0.5) * 2 ** (Math.floor(rnd() * 50) - 30); // the finite range a cache sees
  return v;
}

for (const dtype of ["f16", "bf16"] as const) {
  test(`rowOp narrow ${dtype} equals codecs.ts bit for bit, with the cache's strides, and flags inf/NaN halves`, () => {
    const encode = dtype === "f16" ? f32ToF16 : f32ToBf16;
    for (const [heads, rows, C] of [[3, 17, 64], [2, 40, 13], [8, 64, 128]]) {
      // src [rows, heads, C] (token-major, as the projections write it); dst [heads, rows, C] with a padded row stride.
      const kSrc = narrowInputs(rows * heads * C, C), vSrc = narrowInputs(rows * heads * C, C + 1);
      const dstRow = (C + 3) * 2, dstHead = rows * dstRow + 64;
      for (const finiteOnly of [false, true]) {
        const ks = finiteOnly ? kSrc.map((x) => (Number.isFinite(x) && Math.abs(x) < 60000 ? x : 1)) : kSrc;
        const vs = finiteOnly ? vSrc.map((x) => (Number.isFinite(x) && Math.abs(x) < 60000 ? x : 1)) : vSrc;
        for (const k of backends) {
          const pk = put(ks), pv = put(vs);
          const dk = arena.alloc(heads * dstHead, "dst"), dv = arena.alloc(heads * dstHead, "dst");
          new Uint8Array(arena.memory.buffer, dk, heads * dstHead).fill(0xee);
          new Uint8Array(arena.memory.buffer, dv, heads * dstHead).fill(0xee);
          const special = k.rowOp!({ op: "narrow", dtype, kSrc: pk, kDst: dk, vSrc: pv, vDst: dv, heads, rows, width: C, srcRowBytes: heads * C * 4, srcHeadBytes: C * 4, dstHeadBytes: dstHead, dstRowBytes: dstRow });
          let wantSpecial = false;
          for (const [src, dst] of [[ks, dk], [vs, dv]] as const) {
            const got = new Uint16Array(arena.memory.buffer, dst, (heads * dstHead) / 2);
            for (let h = 0; h < heads; h++) {
              for (let r = 0; r < rows; r++) {
                for (let c = 0; c < C; c++) {
                  const want = encode(src[(r * heads + h) * C + c]);
                  if (dtype === "f16" && (want & 0x7c00) === 0x7c00) wantSpecial = true;
                  const g = got[(h * dstHead + r * dstRow) / 2 + c];
                  if (g !== want) assert.fail(`${k.name} ${dtype} head ${h} row ${r} col ${c}: ${src[(r * heads + h) * C + c]} -> 0x${g.toString(16)}, want 0x${want.toString(16)}`);
                }
                assert.equal(got[(h * dstHead + r * dstRow) / 2 + C], 0xeeee, "the row padding is not written");
              }
            }
          }
          assert.equal(special, wantSpecial, `${k.name} ${dtype}: the inf/NaN flag`);
          if (finiteOnly) assert.equal(special, false);
          [pk, pv, dk, dv].forEach((p) => arena.release(p));
        }
      }
    }
  });
}

test("rowOp rejects a pointer outside memory with a RangeError naming the operand", () => {
  for (const k of backends) {
    assert.throws(() => k.rowOp!({ op: "rmsNorm", out: 64, x: arena.memory.buffer.byteLength, w: 64, rows: 1, width: 4, eps: 1e-5 }), /rowOp rmsNorm: x = /);
  }
});

test("KV caches that narrow through rowOp store what the TypeScript writer stores, in every form (paged runs split at block ends, window staging)", () => {
  const [K, D] = [3, 16];
  const specs = [{ kind: "contiguous" }, { kind: "paged", blockSize: 4, numBlocks: 64 }, { kind: "window", window: 6 }] as const;
  for (const spec of specs) {
    for (const dtype of ["f16", "bf16"] as const) {
      for (const k of backends) {
        const caches = [createKvCache(arena, { ...spec, numLayers: 1, numKvHeads: K, headDim: D, dtype } as KvCacheSpec), createKvCache(arena, { ...spec, numLayers: 1, numKvHeads: K, headDim: D, dtype, kernels: k, kernelMinValues: 0 } as KvCacheSpec)];
        const seqs = caches.map((c) => c.addSequence());
        for (const [i, T] of [7, 1, 5, 2, 9].entries()) {
          const kv = narrowInputs(2 * T * K * D, 100 * i + T).map((x) => (i === 3 ? x : Number.isFinite(x) ? x % 1000 : 0.5)); // write 3 holds inf/NaN
          const pk = put(kv.subarray(0, T * K * D)), pv = put(kv.subarray(T * K * D));
          const segs = caches.map((c, j) => c.write(0, seqs[j], arena.f32(pk, T * K * D), arena.f32(pv, T * K * D)));
          const rows = segs.map((ss) => ss.flatMap((sg) => Array.from({ length: sg.rows }, (_, r) => [sg, r] as const)));
          assert.equal(rows[1].length, rows[0].length);
          rows[0].forEach(([sg, r], n) => {
            for (const which of ["k", "v"] as const) {
              for (let h = 0; h < K; h++) {
                const [sg1, r1] = rows[1][n];
                assert.deepEqual(readSegmentRow(arena, dtype, D, sg1, which, h, r1), readSegmentRow(arena, dtype, D, sg, which, h, r), `${spec.kind} ${dtype} ${k.name} write ${i} row ${n} ${which} head ${h}`);
              }
            }
          });
          assert.equal(caches[1].finite, caches[0].finite, `${spec.kind} ${dtype} ${k.name}: finite after write ${i}`);
          arena.release(pk);
          arena.release(pv);
        }
        caches.forEach((c) => c.dispose());
      }
    }
  }
});
