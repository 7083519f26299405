// The training step's pointwise and row-wise ops behind one interface, so the model and the
// trainer do not care where they run: tsTrainOps() are the plain-TS functions of ops.ts and optim.ts
// (the specification, float32 or float64), kernelTrainOps() runs the same ops as WASM kernels on
// every thread (src/kernels/assembly/train.ts) over float32 views of the kernel arena.
//
// Legend: N rows, C row width, V vocab, n values.
import type { Arena } from "../kernels/memory.js";
import type { Kernels, TrainOpCall } from "../kernels/types.js";
import { causalAttentionBackward, causalAttentionForward, type TrainAttentionShape } from "../attention/train.js";
import type { Buf, Matmuls } from "./matmul.js";
import {
  crossEntropyBackward, crossEntropyForward, rmsnormBackward, rmsnormForward, swigluBackward, swigluForward,
} from "./ops.js";
import { adamwRange, clipGradNorm, type AdamWStep } from "./optim.js";

export interface TrainOps {
  readonly name: string;
  rmsnormForward(out: Buf, rstd: Buf, x: Buf, weight: Buf, N: number, C: number, eps: number): void;
  rmsnormBackward(dx: Buf, dweight: Buf, dout: Buf, x: Buf, weight: Buf, rstd: Buf, N: number, C: number): void;
  swigluForward(out: Buf, gate: Buf, up: Buf, n: number): void;
  swigluBackward(dgate: Buf, dup: Buf, dout: Buf, gate: Buf, up: Buf, n: number): void;
  crossEntropyForward(probs: Buf, logits: Buf, targets: Int32Array, N: number, V: number): { sum: number; count: number };
  crossEntropyBackward(dlogits: Buf, probs: Buf, targets: Int32Array, N: number, V: number, scale: number): void;
  /** dst[i] += src[i] for i < n */
  add(dst: Buf, src: Buf, n: number): void;
  /** Scales grads to global L2 norm ≤ maxNorm (0 = off); returns the norm before clipping. */
  clipGradNorm(grads: Buf, maxNorm: number): number;
  /** Causal attention forward, saving probs (see attention/train.ts for layouts). */
  attentionForward(out: Buf, probs: Buf, q: Buf, k: Buf, v: Buf, shape: TrainAttentionShape): void;
  /** Its gradients; dq, dk, dv are overwritten. */
  attentionBackward(dq: Buf, dk: Buf, dv: Buf, dout: Buf, out: Buf, probs: Buf, q: Buf, k: Buf, v: Buf, shape: TrainAttentionShape): void;
  /** AdamW on elements [offset, offset + size) (see optim.ts adamwRange). */
  adamw(params: Buf, grads: Buf, m: Buf, v: Buf, offset: number, size: number, s: AdamWStep): void;
}

/** The plain-TS ops; attention's products go through `mm` when given (attention/train.ts). */
export function tsTrainOps(mm?: Matmuls): TrainOps {
  return {
    name: "ts",
    attentionForward: (out, probs, q, k, v, shape) => causalAttentionForward(out, probs, q, k, v, shape, mm),
    attentionBackward: (dq, dk, dv, dout, out, probs, q, k, v, shape) => causalAttentionBackward(dq, dk, dv, dout, out, probs, q, k, v, shape, mm),
    rmsnormForward, rmsnormBackward, swigluForward, swigluBackward, crossEntropyForward, crossEntropyBackward,
    add(dst, src, n) {
      for (let i = 0; i < n; i++) dst[i] += src[i];
    },
    clipGradNorm,
    adamw: adamwRange,
  };
}

const VALUES_PER_ITEM = 16384; // elementwise items: 64 KiB of each operand
const ROW_VALUES_PER_ITEM = 32768; // row ops: about this many values per item, whole rows
const ATTENTION_QUERY_TILE = 32; // query positions per forward attention item

/**
 * The ops on `kernels.trainOp` (WASM), or tsTrainOps(mm) when the backend has none (the reference
 * backend); attention with a head dim that is not a multiple of 4 also takes tsTrainOps' path.
 * Every Float32Array passed in must be a view of `arena.memory`.
 */
export function kernelTrainOps(kernels: Kernels, arena: Arena, mm?: Matmuls): TrainOps {
  const ts = tsTrainOps(mm);
  const run = kernels.trainOp?.bind(kernels);
  if (!run) return ts;
  const scratch = new Map<string, { ptr: number; bytes: number }>();
  const buf = (slot: string, bytes: number): number => {
    let s = scratch.get(slot);
    if (!s || s.bytes < bytes) {
      if (s) arena.release(s.ptr);
      s = { ptr: arena.alloc(bytes, `train ops ${slot}`), bytes };
      scratch.set(slot, s);
    }
    return s.ptr;
  };
  const p = (a: Buf | Int32Array, what: string): number => {
    // A shared memory's buffer object changes when it grows; views of the older object stay valid.
    if (!(a instanceof Float32Array || a instanceof Int32Array) || !(a.buffer instanceof SharedArrayBuffer || a.buffer === arena.memory.buffer)) {
      throw new Error(`kernelTrainOps: ${what} is not a 32-bit view of the arena memory`);
    }
    return a.byteOffset;
  };
  const rows = (C: number) => Math.max(1, Math.floor(ROW_VALUES_PER_ITEM / Math.max(1, C)));
  const call = (c: TrainOpCall) => run(c);
  /** targets in the arena (the model's Int32Array lives on the JS heap). */
  const targetsPtr = (targets: Int32Array, N: number): number => {
    const ptr = buf("targets", N * 4);
    new Int32Array(arena.memory.buffer, ptr, N).set(targets.subarray(0, N));
    return ptr;
  };
  const checkShape = (s: TrainAttentionShape) => {
    if (s.K < 1 || s.H % s.K !== 0) throw new Error(`attention/train: numKvHeads ${s.K} must divide numHeads ${s.H}`);
  };
  return {
    name: "kernels",
    attentionForward(out, probs, q, k, v, shape) {
      const { B, T, H, K, D, scale } = shape;
      checkShape(shape);
      if (D % 4 !== 0) return ts.attentionForward(out, probs, q, k, v, shape);
      const tiles = Math.ceil(T / ATTENTION_QUERY_TILE);
      call({
        op: "attnForward", n: B * K * tiles, chunk: 1, ptrs: [p(q, "q"), p(k, "k"), p(v, "v"), p(out, "out"), p(probs, "probs")],
        ints: [T, H, K, D, ATTENTION_QUERY_TILE, tiles], scalars: [scale],
      });
    },
    attentionBackward(dq, dk, dv, dout, out, probs, q, k, v, shape) {
      const { B, T, H, K, D, scale } = shape;
      checkShape(shape);
      if (D % 4 !== 0) return ts.attentionBackward(dq, dk, dv, dout, out, probs, q, k, v, shape);
      call({
        op: "attnBackward", n: B * K, chunk: 1,
        ptrs: [p(dq, "dq"), p(dk, "dk"), p(dv, "dv"), p(dout, "dout"), p(out, "out"), p(probs, "probs"), p(q, "q"), p(k, "k"), p(v, "v")],
        ints: [T, H, K, D], scalars: [scale],
      });
    },
    rmsnormForward(out, rstd, x, weight, N, C, eps) {
      call({ op: "rmsForward", n: N, c: C, chunk: rows(C), ptrs: [p(out, "out"), p(rstd, "rstd"), p(x, "x"), p(weight, "weight")], scalars: [eps] });
    },
    rmsnormBackward(dx, dweight, dout, x, weight, rstd, N, C) {
      const chunk = rows(C);
      const items = Math.ceil(N / chunk);
      const part = buf("rms partials", Math.max(1, items) * C * 4);
      call({ op: "rmsBackward", n: N, c: C, chunk, ptrs: [p(dx, "dx"), part, p(dout, "dout"), p(x, "x"), p(weight, "weight"), p(rstd, "rstd")] });
      const parts = new Float32Array(arena.memory.buffer, part, items * C);
      for (let i = 0; i < items; i++) for (let c = 0; c < C; c++) dweight[c] += parts[i * C + c];
    },
    swigluForward(out, gate, up, n) {
      call({ op: "swigluForward", n, chunk: VALUES_PER_ITEM, ptrs: [p(out, "out"), p(gate, "gate"), p(up, "up")] });
    },
    swigluBackward(dgate, dup, dout, gate, up, n) {
      call({ op: "swigluBackward", n, chunk: VALUES_PER_ITEM, ptrs: [p(dgate, "dgate"), p(dup, "dup"), p(dout, "dout"), p(gate, "gate"), p(up, "up")] });
    },
    crossEntropyForward(probs, logits, targets, N, V) {
      if (probs !== logits) probs.set(logits.subarray(0, N * V));
      const loss = buf("loss", N * 4);
      call({ op: "xentForward", n: N, c: V, chunk: rows(V), ptrs: [p(probs, "probs"), targetsPtr(targets, N), loss] });
      const l = new Float32Array(arena.memory.buffer, loss, N);
      let sum = 0, count = 0;
      for (let n = 0; n < N; n++) {
        if (targets[n] < 0) continue;
        sum += l[n];
        count++;
      }
      return { sum, count };
    },
    crossEntropyBackward(dlogits, probs, targets, N, V, scale) {
      if (dlogits !== probs) dlogits.set(probs.subarray(0, N * V));
      call({ op: "xentBackward", n: N, c: V, chunk: rows(V), ptrs: [p(dlogits, "dlogits"), targetsPtr(targets, N)], scalars: [scale] });
    },
    add(dst, src, n) {
      call({ op: "add", n, chunk: VALUES_PER_ITEM, ptrs: [p(dst, "dst"), p(src, "src")] });
    },
    clipGradNorm(grads, maxNorm) {
      const n = grads.length;
      const items = Math.ceil(n / VALUES_PER_ITEM);
      const out = buf("sumsq", Math.max(1, items) * 8);
      call({ op: "sumsq", n, chunk: VALUES_PER_ITEM, ptrs: [p(grads, "grads"), out] });
      const parts = new Float64Array(arena.memory.buffer, out, items);
      let ss = 0;
      for (let i = 0; i < items; i++) ss += parts[i];
      const norm = Math.sqrt(ss);
      if (maxNorm > 0 && norm > maxNorm) call({ op: "scale", n, chunk: VALUES_PER_ITEM, ptrs: [p(grads, "grads")], scalars: [maxNorm / (norm + 1e-6)] });
      return norm;
    },
    adamw(params, grads, m, v, offset, size, s) {
      const at = (a: Buf, what: string) => p(a, what) + offset * 4;
      call({
        op: "adamw", n: size, chunk: VALUES_PER_ITEM, ptrs: [at(params, "params"), at(grads, "grads"), at(m, "m"), at(v, "v")],
        scalars: [s.beta1, s.beta2, s.eps, s.lr / s.c1, s.decay, 1 / s.c2],
      });
    },
  };
}
