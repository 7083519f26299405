// Causal self-attention for training: forward (saving the probabilities) and backward, for any
// number of KV heads. MHA (K = H), GQA (1 < K < H) and MQA (K = 1) are the same code: query head h
// reads KV head floor(h / G). In the backward pass the K/V gradients of a shared head are summed
// over the G query heads of its group directly into dk/dv; no repeated K/V copies are built.
//
// Legend: B batch, T positions, H query heads, K kv heads, G = H/K, D head dim.
// Layouts (row-major, PyTorch order): q, dq, out, dout [B, T, H, D]; k, v, dk, dv [B, T, K, D];
// probs [B, H, T, T] (row t holds softmax weights over keys s ≤ t; entries s > t are 0).
import type { Buf } from "../train/matmul.js";

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
export function causalAttentionForward(out: Buf, probs: Buf, q: Buf, k: Buf, v: Buf, shape: TrainAttentionShape): void {
  const { B, T, H, K, D, scale } = shape;
  const G = check(shape);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const kv = Math.floor(h / G);
      for (let t = 0; t < T; t++) {
        const qo = ((b * T + t) * H + h) * D;
        const po = ((b * H + h) * T + t) * T;
        let mx = -Infinity;
        for (let s = 0; s <= t; s++) {
          const ko = ((b * T + s) * K + kv) * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qo + d] * k[ko + d];
          dot *= scale;
          probs[po + s] = dot;
          if (dot > mx) mx = dot;
        }
        let z = 0;
        for (let s = 0; s <= t; s++) {
          const e = Math.exp(probs[po + s] - mx);
          probs[po + s] = e;
          z += e;
        }
        const inv = 1 / z;
        for (let s = 0; s <= t; s++) probs[po + s] *= inv;
        for (let s = t + 1; s < T; s++) probs[po + s] = 0;
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
  dq: Buf, dk: Buf, dv: Buf, dout: Buf, out: Buf, probs: Buf, q: Buf, k: Buf, v: Buf, shape: TrainAttentionShape,
): void {
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
