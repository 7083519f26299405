// Causal self-attention for training: forward (saving the probabilities) and backward, for any
// number of KV heads. MHA (K = H), GQA (1 < K < H) and MQA (K = 1) are the same code: query head h
// reads KV head floor(h / G). In the backward pass the K/V gradients of a shared head are summed
// over the G query heads of its group directly into dk/dv; no repeated K/V copies are built.
//
// Legend: B batch, T positions, H query heads, K kv heads, G = H/K, D head dim.
// Layouts (row-major, PyTorch order): q, dq, out, dout [B, T, H, D]; k, v, dk, dv [B, T, K, D];
// probs [B, H, T, T] (row t holds softmax weights over keys s ≤ t; entries s > t are 0).
//
// Two implementations of the same functions: plain loops (the specification), and, when a Matmuls
// backend is passed, a path that stacks the G query heads of one KV group as G·T rows so every
// product is one matrix multiply (the fast kernels): S = Q_g·Kᵀ, O = P·V, dP = dO·Vᵀ, dV = Pᵀ·dO,
// dQ_g = dS·K, dK = dSᵀ·Q_g. The group's sum over its query heads for dK and dV happens inside those
// products. The matmul path computes the full T×T block and masks it (2× the causal work, but at
// kernel speed).
import type { Buf, Matmuls } from "../kernels/types.js";

export interface TrainAttentionShape {
  B: number;
  T: number;
  H: number;
  K: number; // must divide H
  D: number;
  scale: number; // usually 1 / sqrt(D)
}

function check(shape: TrainAttentionShape): number {
  const { H, K } = shape;
  if (K < 1 || H % K !== 0) throw new Error(`attention/train: numKvHeads ${K} must divide numHeads ${H}`);
  return H / K;
}

/**
 * out[b,t,h] = Σ_{s≤t} softmax_s(scale · q[b,t,h]·k[b,s,kv]) · v[b,s,kv], kv = floor(h / G).
 * Saves probs for the backward pass.
 * @example causalAttentionForward(out, probs, q, k, v, { B: 1, T: 4, H: 8, K: 1, D: 16, scale: 0.25 }) // MQA
 */
export function causalAttentionForward(out: Buf, probs: Buf, q: Buf, k: Buf, v: Buf, shape: TrainAttentionShape, mm?: Matmuls): void {
  if (mm) return forwardMatmul(out, probs, q, k, v, shape, mm);
  const { B, T, H, K, D, scale } = shape;
  const G = check(shape);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const kv = Math.floor(h / G);
      for (let t = 0; t < T; t++) {
        const qo = ((b * T + t) * H + h) * D;
        const po = ((b * H + h) * T + t) * T;
        for (let s = 0; s <= t; s++) {
          const ko = ((b * T + s) * K + kv) * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qo + d] * k[ko + d];
          probs[po + s] = dot;
        }
        causalSoftmaxRow(probs, po, t, T, scale);
        for (let d = 0; d < D; d++) out[qo + d] = 0;
        for (let s = 0; s <= t; s++) {
          const p = probs[po + s];
          const vo = ((b * T + s) * K + kv) * D;
          for (let d = 0; d < D; d++) out[qo + d] += p * v[vo + d];
        }
      }
    }
}

/**
 * Gradients of causalAttentionForward; same argument order with d-prefixed outputs first.
 * dq is overwritten; dk and dv are overwritten too (each shared head collects all G query heads).
 */
export function causalAttentionBackward(
  dq: Buf, dk: Buf, dv: Buf, dout: Buf, out: Buf, probs: Buf, q: Buf, k: Buf, v: Buf, shape: TrainAttentionShape, mm?: Matmuls,
): void {
  if (mm) return backwardMatmul(dq, dk, dv, dout, out, probs, q, k, v, shape, mm);
  const { B, T, H, K, D, scale } = shape;
  const G = check(shape);
  dq.fill(0, 0, B * T * H * D);
  dk.fill(0, 0, B * T * K * D);
  dv.fill(0, 0, B * T * K * D);
  const dp = new Float64Array(T);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const kv = Math.floor(h / G);
      for (let t = 0; t < T; t++) {
        const qo = ((b * T + t) * H + h) * D;
        const po = ((b * H + h) * T + t) * T;
        // Σ_s p_s·dp_s equals dout·out, because out = Σ_s p_s v_s.
        let rowDot = 0;
        for (let d = 0; d < D; d++) rowDot += dout[qo + d] * out[qo + d];
        for (let s = 0; s <= t; s++) {
          const vo = ((b * T + s) * K + kv) * D;
          const p = probs[po + s];
          // undoes: out[qo + d] += p * v[vo + d]   (dv of the shared head sums over its G query heads)
          let dot = 0;
          for (let d = 0; d < D; d++) {
            dot += dout[qo + d] * v[vo + d];
            dv[vo + d] += p * dout[qo + d];
          }
          dp[s] = dot;
        }
        for (let s = 0; s <= t; s++) {
          // undoes: probs = softmax(scale · q·k): dscore = p · (dp − Σ p·dp) · scale
          const ds = probs[po + s] * (dp[s] - rowDot) * scale;
          if (ds === 0) continue;
          const ko = ((b * T + s) * K + kv) * D;
          for (let d = 0; d < D; d++) {
            dq[qo + d] += ds * k[ko + d];
            dk[ko + d] += ds * q[qo + d];
          }
        }
      }
    }
}

// ---------------------------------------------------------------------------------------------
// The matmul path. Gather/scatter helpers move one KV group between the [B, T, heads, D] layouts
// and contiguous row blocks: rows g·T + t for the G query heads, rows t for the KV head.

/**
 * In place on row[o .. o+T): p_s = softmax(scale · row_s) over the visible keys s ≤ t, 0 for s > t
 * (the causal mask). Both forward paths (loops and matmuls) end each query row with it.
 */
function causalSoftmaxRow(row: Buf, o: number, t: number, T: number, scale: number): void {
  let mx = -Infinity;
  for (let s = 0; s <= t; s++) {
    const x = row[o + s] * scale;
    row[o + s] = x;
    if (x > mx) mx = x;
  }
  let z = 0;
  for (let s = 0; s <= t; s++) {
    const e = Math.exp(row[o + s] - mx);
    row[o + s] = e;
    z += e;
  }
  const inv = 1 / z;
  for (let s = 0; s <= t; s++) row[o + s] *= inv;
  for (let s = t + 1; s < T; s++) row[o + s] = 0;
}

/** dst[(g·T + t)·D + d] = src[((b·T + t)·nH + h0 + g)·D + d] for g < G */
function gather(dst: Buf, src: Buf, b: number, h0: number, G: number, T: number, nH: number, D: number): void {
  for (let g = 0; g < G; g++)
    for (let t = 0; t < T; t++) {
      const so = ((b * T + t) * nH + h0 + g) * D, dO = (g * T + t) * D;
      for (let d = 0; d < D; d++) dst[dO + d] = src[so + d];
    }
}

/** The inverse of gather. */
function scatter(dst: Buf, src: Buf, b: number, h0: number, G: number, T: number, nH: number, D: number): void {
  for (let g = 0; g < G; g++)
    for (let t = 0; t < T; t++) {
      const so = (g * T + t) * D, dO = ((b * T + t) * nH + h0 + g) * D;
      for (let d = 0; d < D; d++) dst[dO + d] = src[so + d];
    }
}

function forwardMatmul(out: Buf, probs: Buf, q: Buf, k: Buf, v: Buf, shape: TrainAttentionShape, mm: Matmuls): void {
  const { B, T, H, K, D, scale } = shape;
  const G = check(shape);
  const qg = mm.buffer("attn.q", G * T * D, q); // [G·T, D]
  const kc = mm.buffer("attn.k", T * D, q); // [T, D]
  const vt = mm.buffer("attn.vT", D * T, q); // [D, T]
  const og = mm.buffer("attn.o", G * T * D, q); // [G·T, D]
  for (let b = 0; b < B; b++)
    for (let kv = 0; kv < K; kv++) {
      gather(qg, q, b, kv * G, G, T, H, D);
      gather(kc, k, b, kv, 1, T, K, D);
      for (let t = 0; t < T; t++) {
        const so = ((b * T + t) * K + kv) * D;
        for (let d = 0; d < D; d++) vt[d * T + t] = v[so + d];
      }
      // The G heads of this group are contiguous in probs: rows [G·T, T] starting at head kv·G.
      const p = probs.subarray((b * H + kv * G) * T * T, (b * H + kv * G + G) * T * T);
      mm.nt(p, qg, kc, G * T, T, D); // S = Q_g · Kᵀ
      for (let r = 0; r < G * T; r++) {
        causalSoftmaxRow(p, r * T, r % T, T, scale);
      }
      mm.nt(og, p, vt, G * T, D, T); // O = P · V
      scatter(out, og, b, kv * G, G, T, H, D);
    }
}

function backwardMatmul(
  dq: Buf, dk: Buf, dv: Buf, dout: Buf, out: Buf, probs: Buf, q: Buf, k: Buf, v: Buf, shape: TrainAttentionShape, mm: Matmuls,
): void {
  const { B, T, H, K, D, scale } = shape;
  const G = check(shape);
  const qg = mm.buffer("attn.q", G * T * D, q);
  const kc = mm.buffer("attn.k", T * D, q);
  const vc = mm.buffer("attn.v", T * D, q);
  const dog = mm.buffer("attn.do", G * T * D, q);
  const dqg = mm.buffer("attn.dq", G * T * D, q);
  const dkc = mm.buffer("attn.dk", T * D, q);
  const dvc = mm.buffer("attn.dv", T * D, q);
  const ds = mm.buffer("attn.ds", G * T * T, q); // dP, then dS in place
  const rowDot = new Float64Array(G * T);
  for (let b = 0; b < B; b++)
    for (let kv = 0; kv < K; kv++) {
      gather(qg, q, b, kv * G, G, T, H, D);
      gather(kc, k, b, kv, 1, T, K, D);
      gather(vc, v, b, kv, 1, T, K, D);
      gather(dog, dout, b, kv * G, G, T, H, D);
      for (let g = 0; g < G; g++)
        for (let t = 0; t < T; t++) {
          const o = ((b * T + t) * H + kv * G + g) * D;
          let s = 0;
          for (let d = 0; d < D; d++) s += dout[o + d] * out[o + d];
          rowDot[g * T + t] = s; // Σ_s p·dp = dO·O
        }
      const p = probs.subarray((b * H + kv * G) * T * T, (b * H + kv * G + G) * T * T);
      // undoes: O = P · V   →  dP = dO · Vᵀ,  dV = Pᵀ · dO (summed over the G heads by the product)
      mm.nt(ds, dog, vc, G * T, T, D);
      dvc.fill(0);
      mm.tnAcc(dvc, p, dog, G * T, T, D);
      // undoes: P = softmax(scale · S)  →  dS = P ⊙ (dP − rowDot) · scale
      for (let r = 0; r < G * T; r++) {
        const o = r * T, rd = rowDot[r];
        for (let s = 0; s < T; s++) ds[o + s] = p[o + s] * (ds[o + s] - rd) * scale;
      }
      // undoes: S = Q_g · Kᵀ  →  dQ_g = dS · K,  dK = dSᵀ · Q_g
      mm.nn(dqg, ds, kc, G * T, T, D);
      dkc.fill(0);
      mm.tnAcc(dkc, ds, qg, G * T, T, D);
      scatter(dq, dqg, b, kv * G, G, T, H, D);
      scatter(dk, dkc, b, kv, 1, T, K, D);
      scatter(dv, dvc, b, kv, 1, T, K, D);
    }
}
