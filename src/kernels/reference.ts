// The reference kernels: plain TypeScript, float64 accumulation, written to be read. This file is
// the specification the WASM SIMD kernels are tested against, so clarity beats speed here.
//
// Legend: T query positions, H query heads, K kv heads, G = H/K query heads per kv head,
//         D head dim, S cached rows (over all segments), M rows of x, N output features,
//         Kin input features.
//
// Memory layout read by attention (all pointers are byte offsets into the arena):
//   q, out           f32 [T, H, D]
//   K/V rows         kvDtype; row r of kv head k in a segment sits at
//                    kPtr + k*headStride + r*rowStride, rowStride = D × elementBytes(kvDtype)
//                    (rows of one head are packed; heads may be far apart, e.g. paged blocks)
//   int8 row scales  f32 at kScalePtr + 4*(k*scaleHeadStride + r); value = int8 × scale
//
// Semantics (the contract every backend implements):
//   score[t, h, s] = scale × Σ_d q[t, h, d] · K[kv(h), s, d],   kv(h) = floor(h / G)
//   with softcap c (Gemma-2): score ← c · tanh(score / c)
//   key s is visible to query t iff pos(s) <= qPos0 + t and (window == null or pos(s) > qPos0 + t - window)
//   p = softmax over visible keys (max-subtracted, so large logits neither overflow nor underflow)
//   out[t, h, :] = Σ_s p[s] · V[kv(h), s, :]
//   A query that sees no key gets out = 0. A NaN or +Inf logit makes that (t, h) NaN; a -Inf logit
//   gets weight 0 (all -Inf gives NaN), as in PyTorch's softmax.

import type { Arena } from "./memory.js";
import type { ActivationCall, ActivationOp, AttentionCall, Kernels, KvDtype, KvSegment, MatmulCall, WeightDtype } from "./types.js";
import { bf16ToF32, f16DecodeTable } from "../dtypes/codecs.js";
import { decodeQ8_0 } from "../dtypes/q8_0.js";
import { blockValuesOf, decodeQuant, isBlockType, isGgmlQuant } from "../dtypes/ggml_quants.js";
import { elementBytes, rowBytes } from "../dtypes/table.js";
import { rows4Eligible, unpackRows4 } from "./rows4.js";

/** Receives the attention probabilities of one (query t, head h): probs[i] belongs to positions[i]. */
export type ProbsSink = (t: number, h: number, positions: Int32Array, probs: Float64Array) => void;

export interface ReferenceAttentionOptions {
  heads?: number[]; // query heads whose probabilities go to `sink`, e.g. [0, 5]
  sink?: ProbsSink;
}

/** The plain-TS backend: `referenceKernels(arena).attention(call)` is the specification. */
export function referenceKernels(arena: Arena): Kernels {
  return {
    name: "reference",
    threads: 1,
    attention: (call: AttentionCall) => referenceAttention(arena, call),
    matmul: (call: MatmulCall) => referenceMatmul(arena, call),
    matmulMany: (calls: MatmulCall[]) => calls.forEach((call) => referenceMatmul(arena, call)),
    activation: (call: ActivationCall) => referenceActivation(arena, call),
  };
}

/**
 * One sequence's attention over its cache (see the file header for the formula). Each kv head's
 * rows are read once and serve the G query heads of its group. Optionally hands the probabilities
 * of chosen query heads to `opts.sink` (visible keys only, in segment order).
 */
export function referenceAttention(arena: Arena, call: AttentionCall, opts: ReferenceAttentionOptions = {}): void {
  validateAttentionCall(arena, call);
  const { T, H, K, D, qPos0, scale, window } = call;
  const cap = call.softcap || 0;
  const G = H / K;
  const positions = keyPositions(call); // [S]
  const S = positions.length;
  const q = arena.f32(call.q, T * H * D); // [T, H, D]
  const out = arena.f32(call.out, T * H * D); // [T, H, D]
  const kRows = new Float64Array(S * D); // [S, D] of one kv head
  const vRows = new Float64Array(S * D);
  const weights = new Float64Array(S);
  const visible = new Uint8Array(S);
  const acc = new Float64Array(D);
  const wantProbs = new Set(opts.sink ? opts.heads ?? [] : []);
  for (let kh = 0; kh < K; kh++) {
    gatherHead(arena, call, kh, kRows, vRows);
    for (let h = kh * G; h < (kh + 1) * G; h++) {
      for (let t = 0; t < T; t++) {
        const qPos = qPos0 + t;
        const qOff = (t * H + h) * D;
        const max = visibleScores(q, qOff, kRows, positions, qPos, window, scale, cap, D, weights, visible);
        if (max === null) {
          out.fill(0, qOff, qOff + D);
          continue;
        }
        // Softmax with the max subtracted: exp arguments are <= 0 and the largest term is exactly 1,
        // so large logits cannot overflow and uniformly small ones cannot all underflow to 0.
        let sum = 0;
        acc.fill(0);
        for (let s = 0; s < S; s++) {
          if (!visible[s]) continue;
          const w = Math.exp(weights[s] - max);
          weights[s] = w;
          sum += w;
          for (let d = 0; d < D; d++) acc[d] += w * vRows[s * D + d];
        }
        for (let d = 0; d < D; d++) out[qOff + d] = acc[d] / sum;
        if (wantProbs.has(h)) emitProbs(opts.sink!, t, h, positions, visible, weights, sum);
      }
    }
  }
}

/**
 * The attention probabilities alone, for chosen query heads: softmax(scale · q · Kᵀ) over the
 * visible keys, exactly as referenceAttention and the WASM kernel define them, but without V or an
 * output, and reading only the kv heads the chosen heads use (kv(h) = floor(h / G)). Reads the K
 * rows in their stored dtype (f32, f16, bf16, int8 × row scale) and works in float64, so the result
 * is the exact softmax of what the fast kernel computed in float32. Cost O(heads · T · S · D);
 * nothing is allocated per key beyond one [S, D] float64 copy of a kv head.
 *
 * A backend's fast path calls this after its kernel ran, only when probabilities were asked for.
 */
export function referenceAttentionProbs(arena: Arena, call: AttentionCall, heads: readonly number[], sink: ProbsSink): void {
  validateAttentionCall(arena, call);
  const { T, H, K, D, qPos0, scale, window, kvDtype, segments } = call;
  const cap = call.softcap || 0;
  const G = H / K;
  const positions = keyPositions(call); // [S]
  const S = positions.length;
  const q = arena.f32(call.q, T * H * D); // [T, H, D]
  const kRows = new Float64Array(S * D); // [S, D] of one kv head
  const weights = new Float64Array(S);
  const visible = new Uint8Array(S);
  const rowStride = D * elementBytes(kvDtype);
  let loaded = -1;
  for (const h of [...new Set(heads)].sort((a, b) => a - b)) {
    if (!Number.isInteger(h) || h < 0 || h >= H) throw new RangeError(`attention probabilities: head ${h} is not a query head in [0, ${H})`);
    const kh = Math.floor(h / G);
    if (kh !== loaded) {
      let s0 = 0;
      for (const seg of segments) {
        for (let r = 0; r < seg.rows; r++) readRow(arena, kvDtype, seg.kPtr + kh * seg.headStride + r * rowStride, D, scaleAt(arena, seg, seg.kScalePtr, kh, r), kRows, (s0 + r) * D);
        s0 += seg.rows;
      }
      loaded = kh;
    }
    for (let t = 0; t < T; t++) {
      const qPos = qPos0 + t;
      const qOff = (t * H + h) * D;
      const max = visibleScores(q, qOff, kRows, positions, qPos, window, scale, cap, D, weights, visible);
      if (max === null) continue; // as referenceAttention: a query that sees no key has no distribution
      let sum = 0;
      for (let s = 0; s < S; s++) {
        if (!visible[s]) continue;
        weights[s] = Math.exp(weights[s] - max);
        sum += weights[s];
      }
      emitProbs(sink, t, h, positions, visible, weights, sum);
    }
  }
}

/**
 * Scores scale · q·k of the keys query position qPos sees (causal, inside the window), into weights[s],
 * with visible[s] set (soft-capped to cap · tanh(score / cap) when cap > 0); returns their max, or null
 * when it sees none. NaN never wins the max comparison; it propagates through the softmax.
 */
function visibleScores(q: Float32Array, qOff: number, kRows: Float64Array, positions: Int32Array, qPos: number, window: number | null, scale: number, cap: number, D: number, weights: Float64Array, visible: Uint8Array): number | null {
  let max = -Infinity;
  let anyVisible = false;
  for (let s = 0; s < positions.length; s++) {
    const pos = positions[s];
    visible[s] = pos <= qPos && (window === null || pos > qPos - window) ? 1 : 0;
    if (!visible[s]) continue;
    anyVisible = true;
    let dot = 0;
    for (let d = 0; d < D; d++) dot += q[qOff + d] * kRows[s * D + d];
    weights[s] = cap > 0 ? cap * Math.tanh((scale * dot) / cap) : scale * dot;
    if (weights[s] > max) max = weights[s];
  }
  return anyVisible ? max : null;
}

function emitProbs(sink: ProbsSink, t: number, h: number, positions: Int32Array, visible: Uint8Array, weights: Float64Array, sum: number): void {
  const pos: number[] = [];
  const p: number[] = [];
  for (let s = 0; s < weights.length; s++) {
    if (!visible[s]) continue;
    pos.push(positions[s]);
    p.push(weights[s] / sum);
  }
  sink(t, h, Int32Array.from(pos), Float64Array.from(p));
}

/** Positions of all cached rows, in segment order: row r of a segment sits at firstPos + r. */
function keyPositions(call: AttentionCall): Int32Array {
  let S = 0;
  for (const seg of call.segments) S += seg.rows;
  const positions = new Int32Array(S);
  let s0 = 0;
  for (const seg of call.segments) {
    for (let r = 0; r < seg.rows; r++) positions[s0 + r] = seg.firstPos + r;
    s0 += seg.rows;
  }
  return positions;
}

/** Reads kv head kh's rows of every segment into float64 [S, D] arrays, dequantising f16/bf16/int8. */
function gatherHead(arena: Arena, call: AttentionCall, kh: number, k: Float64Array, v: Float64Array): void {
  const { D, kvDtype, segments } = call;
  const rowStride = D * elementBytes(kvDtype);
  let s0 = 0;
  for (const seg of segments) {
    for (let r = 0; r < seg.rows; r++) {
      const off = kh * seg.headStride + r * rowStride;
      readRow(arena, kvDtype, seg.kPtr + off, D, scaleAt(arena, seg, seg.kScalePtr, kh, r), k, (s0 + r) * D);
      readRow(arena, kvDtype, seg.vPtr + off, D, scaleAt(arena, seg, seg.vScalePtr, kh, r), v, (s0 + r) * D);
    }
    s0 += seg.rows;
  }
}

function scaleAt(arena: Arena, seg: KvSegment, ptr: number | undefined, kh: number, r: number): number {
  if (ptr === undefined) return 1;
  return arena.f32(ptr + 4 * (kh * (seg.scaleHeadStride ?? 0) + r), 1)[0];
}

/** Decodes D stored values at byte offset ptr into dst[dstOff .. dstOff + D). */
function readRow(arena: Arena, dtype: KvDtype, ptr: number, D: number, scale: number, dst: Float64Array, dstOff: number): void {
  if (dtype === "f32") {
    const src = arena.f32(ptr, D);
    for (let d = 0; d < D; d++) dst[dstOff + d] = src[d];
  } else if (dtype === "f16") {
    const src = arena.u16(ptr, D);
    const table = f16DecodeTable();
    for (let d = 0; d < D; d++) dst[dstOff + d] = table[src[d]];
  } else if (dtype === "bf16") {
    const src = arena.u16(ptr, D);
    for (let d = 0; d < D; d++) dst[dstOff + d] = bf16ToF32(src[d]);
  } else {
    const src = arena.i8(ptr, D);
    for (let d = 0; d < D; d++) dst[dstOff + d] = src[d] * scale;
  }
}

/** Checks an AttentionCall against the contract; messages name the field and the values. */
export function validateAttentionCall(arena: Arena, call: AttentionCall): void {
  const { T, H, K, D, kvDtype, segments, qPos0 } = call;
  const where = "attention";
  for (const [name, value] of [["T", T], ["H", H], ["K", K], ["D", D]] as const) {
    if (!Number.isInteger(value) || value < (name === "T" ? 0 : 1)) throw new RangeError(`${where}: ${name} must be a positive integer, got ${value}`);
  }
  if (H % K !== 0) throw new RangeError(`${where}: H = ${H} is not divisible by K = ${K}`);
  if (!Number.isInteger(qPos0)) throw new RangeError(`${where}: qPos0 must be an integer, got ${qPos0}`);
  if (call.window !== null && (!Number.isInteger(call.window) || call.window < 1)) {
    throw new RangeError(`${where}: window must be null or a positive integer, got ${call.window}`);
  }
  const cap = call.softcap;
  if (cap !== undefined && cap !== null && !(Number.isFinite(cap) && cap >= 0)) throw new RangeError(`${where}: softcap must be null, 0 or a positive number, got ${cap}`);
  const eb = elementBytes(kvDtype);
  const memBytes = arena.memory.buffer.byteLength;
  checkRange(where, "q", call.q, T * H * D * 4, 4, memBytes);
  checkRange(where, "out", call.out, T * H * D * 4, 4, memBytes);
  segments.forEach((seg, i) => {
    const name = `segments[${i}]`;
    if (!Number.isInteger(seg.rows) || seg.rows < 0) throw new RangeError(`${where}: ${name}.rows must be >= 0, got ${seg.rows}`);
    if (seg.rows === 0) return;
    const span = (K - 1) * seg.headStride + seg.rows * D * eb;
    checkRange(where, `${name}.kPtr`, seg.kPtr, span, Math.min(eb, 4), memBytes);
    checkRange(where, `${name}.vPtr`, seg.vPtr, span, Math.min(eb, 4), memBytes);
    if (kvDtype === "int8") {
      if (seg.kScalePtr === undefined || seg.vScalePtr === undefined || seg.scaleHeadStride === undefined) {
        throw new RangeError(`${where}: ${name} is int8 but lacks kScalePtr/vScalePtr/scaleHeadStride`);
      }
      const scaleSpan = 4 * ((K - 1) * seg.scaleHeadStride + seg.rows);
      checkRange(where, `${name}.kScalePtr`, seg.kScalePtr, scaleSpan, 4, memBytes);
      checkRange(where, `${name}.vScalePtr`, seg.vScalePtr, scaleSpan, 4, memBytes);
    }
  });
}

function checkRange(where: string, name: string, ptr: number, bytes: number, alignment: number, memBytes: number): void {
  if (!Number.isInteger(ptr) || ptr < 0 || ptr % alignment !== 0) {
    throw new RangeError(`${where}: ${name} = ${ptr} must be a non-negative multiple of ${alignment}`);
  }
  if (ptr + bytes > memBytes) throw new RangeError(`${where}: ${name} = ${ptr} + ${bytes} bytes runs past memory end ${memBytes}`);
}

/**
 * Checks the layout options of a MatmulCall: "nn" and "tn" need f32 weights, accumulate needs
 * "nn" or "tn". Shared by every backend so they refuse the same calls with the same message.
 */
export function validateMatmulLayout(call: MatmulCall): void {
  const layout = call.layout ?? "nt";
  if (layout !== "nt" && layout !== "nn" && layout !== "tn") throw new RangeError(`matmul: unknown layout "${layout}"; expected nt, nn or tn`);
  if (layout !== "nt" && call.wDtype !== "f32") throw new RangeError(`matmul: layout "${layout}" needs wDtype f32, got ${call.wDtype}`);
  if (isBlockType(call.wDtype) && call.Kin % blockValuesOf(call.wDtype) !== 0) throw new RangeError(`matmul: ${call.wDtype} weights need Kin to be a multiple of ${blockValuesOf(call.wDtype)}, got ${call.Kin}`);
  if (call.accumulate && layout === "nt") throw new RangeError(`matmul: accumulate needs layout nn or tn, got nt`);
  if (call.wRows4 && !(layout === "nt" && rows4Eligible(call.wDtype, call.N, call.Kin))) {
    throw new RangeError(`matmul: wRows4 needs layout nt, wDtype f16 or bf16, N >= 4 and Kin % 8 == 0, got ${layout}, ${call.wDtype}, N ${call.N}, Kin ${call.Kin}`);
  }
}

/**
 * out[M, N] (+)= x · w (+ bias[N]) in the call's layout (see MatmulCall), accumulated in float64:
 *   nt: out[m, n] = Σ_i x[m, i]·w[n, i]   (x [M, Kin], w [N, Kin], the PyTorch Linear layout)
 *   nn: out[m, n] = Σ_i x[m, i]·w[i, n]   (x [M, Kin], w [Kin, N])
 *   tn: out[m, n] = Σ_i x[i, m]·w[i, n]   (x [Kin, M], w [Kin, N])
 * With accumulate the sum starts from the old out[m, n]. Weights may be f32, f16, bf16 or a GGML block
 * type ("nt" only; block types decoded to their exact values, src/dtypes/ggml_quants.ts);
 * x, bias and out are f32.
 */
export function referenceMatmul(arena: Arena, call: MatmulCall): void {
  const { M, N, Kin, wDtype } = call;
  for (const [name, value] of [["M", M], ["N", N], ["Kin", Kin]] as const) {
    if (!Number.isInteger(value) || value < 0) throw new RangeError(`matmul: ${name} must be a non-negative integer, got ${value}`);
  }
  validateMatmulLayout(call);
  const memBytes = arena.memory.buffer.byteLength;
  checkRange("matmul", "x", call.x, M * Kin * 4, 4, memBytes);
  checkRange("matmul", "w", call.w, N * rowBytes(wDtype, Kin), isBlockType(wDtype) ? 1 : elementBytes(wDtype), memBytes);
  checkRange("matmul", "out", call.out, M * N * 4, 4, memBytes);
  if (call.bias !== 0) checkRange("matmul", "bias", call.bias, N * 4, 4, memBytes);
  const x = arena.f32(call.x, M * Kin); // [M, Kin] ("tn": [Kin, M])
  const stored = decodeWeights(arena, call.w, N * Kin, wDtype);
  const w = call.wRows4 ? unpackRows4(stored, N, Kin, new Float32Array(N * Kin)) : stored; // [N, Kin] ("nn", "tn": [Kin, N])
  const bias = call.bias !== 0 ? arena.f32(call.bias, N) : null; // [N]
  const out = arena.f32(call.out, M * N); // [M, N]
  // Element strides of x[m, i] and w[n, i] along (m, i) and (n, i).
  const layout = call.layout ?? "nt";
  const [xm, xi] = layout === "tn" ? [1, M] : [Kin, 1];
  const [wn, wi] = layout === "nt" ? [Kin, 1] : [1, N];
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let acc = (bias ? bias[n] : 0) + (call.accumulate ? out[m * N + n] : 0);
      for (let i = 0; i < Kin; i++) acc += x[m * xm + i * xi] * w[n * wn + i * wi];
      out[m * N + n] = acc;
    }
  }
}

const GELU_C = Math.sqrt(2 / Math.PI);

/**
 * The tanh GELU (gelu_new, gelu_pytorch_tanh): 0.5 a (1 + tanh(z)), z = √(2/π) (a + 0.044715 a³),
 * written as a · σ(2z) (the same function), which keeps its precision where 1 + tanh(z) cancels.
 */
export function geluTanh(a: number): number {
  return a / (1 + Math.exp(-2 * GELU_C * (a + 0.044715 * a * a * a)));
}

/** SiLU: a · σ(a). */
export function silu(a: number): number {
  return a / (1 + Math.exp(-a));
}

const ACTIVATIONS: Record<ActivationOp, { gated: boolean; f: (a: number) => number }> = {
  swiglu: { gated: true, f: silu },
  geglu: { gated: true, f: geluTanh },
  gelu: { gated: false, f: geluTanh },
  relu: { gated: false, f: (a) => Math.max(0, a) },
};

/** Checks an ActivationCall (shared by every backend); returns whether the op reads y. */
export function validateActivationCall(arena: Arena, call: ActivationCall): boolean {
  const act = ACTIVATIONS[call.op];
  if (!act) throw new RangeError(`activation: unknown op "${call.op}"; expected ${Object.keys(ACTIVATIONS).join(", ")}`);
  if (!Number.isInteger(call.n) || call.n < 0) throw new RangeError(`activation: n must be a non-negative integer, got ${call.n}`);
  const memBytes = arena.memory.buffer.byteLength;
  checkRange("activation", "x", call.x, call.n * 4, 4, memBytes);
  if (act.gated) checkRange("activation", "y", call.y, call.n * 4, 4, memBytes);
  return act.gated;
}

/** x[i] = f(x[i]) (· y[i] for the gated ops), in float64 (see ActivationCall in types.ts). */
export function referenceActivation(arena: Arena, call: ActivationCall): void {
  const gated = validateActivationCall(arena, call);
  const f = ACTIVATIONS[call.op].f;
  const x = arena.f32(call.x, call.n);
  if (gated) {
    const y = arena.f32(call.y, call.n);
    for (let i = 0; i < x.length; i++) x[i] = f(x[i]) * y[i];
  } else {
    for (let i = 0; i < x.length; i++) x[i] = f(x[i]);
  }
}

function decodeWeights(arena: Arena, ptr: number, n: number, dtype: WeightDtype): Float32Array | Float64Array {
  if (dtype === "f32") return arena.f32(ptr, n);
  if (dtype === "q8_0") return decodeQ8_0(arena.u8(ptr, rowBytes("q8_0", n)), n);
  if (isGgmlQuant(dtype)) return decodeQuant(dtype, arena.u8(ptr, rowBytes(dtype, n)), n, new Float64Array(n)); // exact values
  const bits = arena.u16(ptr, n);
  const w = new Float32Array(n);
  if (dtype === "f16") {
    const table = f16DecodeTable();
    for (let i = 0; i < n; i++) w[i] = table[bits[i]];
  } else {
    for (let i = 0; i < n; i++) w[i] = bf16ToF32(bits[i]);
  }
  return w;
}
