// Forward and backward of the LLaMA decoder's pointwise and row-wise pieces, side by side with the
// same argument order (llm.c style). Each backward comment quotes the forward line it undoes.
// All functions work in float32 (training) or float64 (finite-difference checks).
//
// Legend: N rows (= B·T tokens), C model width, V vocab, F MLP width, T positions, D head dim,
// nH heads in the tensor being rotated.
import type { Buf } from "./matmul.js";

// ---------------------------------------------------------------------------------------------
// Embedding: out[n, :] = wte[tokens[n], :]

/** out[N, C] = wte[V, C][tokens[N]] */
export function embeddingForward(out: Buf, tokens: Int32Array, wte: Buf, N: number, C: number): void {
  for (let n = 0; n < N; n++) {
    const o = tokens[n] * C;
    for (let c = 0; c < C; c++) out[n * C + c] = wte[o + c];
  }
}

/** dwte[V, C] += scatter of dout[N, C] by tokens */
export function embeddingBackward(dwte: Buf, tokens: Int32Array, dout: Buf, N: number, C: number): void {
  for (let n = 0; n < N; n++) {
    const o = tokens[n] * C;
    // undoes: out[n * C + c] = wte[o + c]
    for (let c = 0; c < C; c++) dwte[o + c] += dout[n * C + c];
  }
}

// ---------------------------------------------------------------------------------------------
// RMSNorm: y = x · rstd · w, rstd = 1 / sqrt(mean(x²) + eps)

/** out[N, C], rstd[N] (saved for backward) from x[N, C] and weight[C]. */
export function rmsnormForward(out: Buf, rstd: Buf, x: Buf, weight: Buf, N: number, C: number, eps: number): void {
  for (let n = 0; n < N; n++) {
    const o = n * C;
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[o + c] * x[o + c];
    const r = 1 / Math.sqrt(ss / C + eps);
    rstd[n] = r;
    for (let c = 0; c < C; c++) out[o + c] = x[o + c] * r * weight[c];
  }
}

/** dx[N, C] += …, dweight[C] += … from dout[N, C]; same argument order as forward. */
export function rmsnormBackward(dx: Buf, dweight: Buf, dout: Buf, x: Buf, weight: Buf, rstd: Buf, N: number, C: number): void {
  for (let n = 0; n < N; n++) {
    const o = n * C;
    const r = rstd[n];
    // undoes: out = x * r * weight, where r depends on every x in the row:
    //   dx = r·(w⊙dy) − x · r³/C · Σ(w⊙dy⊙x)
    let dot = 0;
    for (let c = 0; c < C; c++) dot += weight[c] * dout[o + c] * x[o + c];
    const k = (r * r * r * dot) / C;
    for (let c = 0; c < C; c++) {
      dweight[c] += dout[o + c] * x[o + c] * r;
      dx[o + c] += r * weight[c] * dout[o + c] - x[o + c] * k;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// RoPE, HF LLaMA layout (rotate_half): pairs (i, i + D/2), angle = pos · theta^(−2i/D).

export interface RopeTable {
  cos: Float64Array; // [T, D/2]
  sin: Float64Array; // [T, D/2]
  T: number;
  D: number;
}

export function ropeTable(T: number, D: number, theta: number): RopeTable {
  const half = D / 2;
  const cos = new Float64Array(T * half);
  const sin = new Float64Array(T * half);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      // Same as HF: inv_freq in float32, then pos · inv_freq in float32.
      const invFreq = Math.fround(1 / Math.pow(theta, (2 * i) / D));
      const a = Math.fround(t * invFreq);
      cos[t * half + i] = Math.cos(a);
      sin[t * half + i] = Math.sin(a);
    }
  }
  return { cos, sin, T, D };
}

/** In place on x[B, T, nH, D]: rotates every head of every position. */
export function ropeForward(x: Buf, table: RopeTable, B: number, T: number, nH: number): void {
  const { cos, sin, D } = table;
  const half = D / 2;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < nH; h++) {
        const o = ((b * T + t) * nH + h) * D;
        for (let i = 0; i < half; i++) {
          const c = cos[t * half + i], s = sin[t * half + i];
          const x1 = x[o + i], x2 = x[o + i + half];
          x[o + i] = x1 * c - x2 * s;
          x[o + i + half] = x2 * c + x1 * s;
        }
      }
}

/** In place on dx[B, T, nH, D]: the rotation is orthogonal, so its backward is the inverse rotation. */
export function ropeBackward(dx: Buf, table: RopeTable, B: number, T: number, nH: number): void {
  const { cos, sin, D } = table;
  const half = D / 2;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < nH; h++) {
        const o = ((b * T + t) * nH + h) * D;
        for (let i = 0; i < half; i++) {
          const c = cos[t * half + i], s = sin[t * half + i];
          const d1 = dx[o + i], d2 = dx[o + i + half];
          // undoes: x[o + i] = x1 * c - x2 * s;  x[o + i + half] = x2 * c + x1 * s
          dx[o + i] = d1 * c + d2 * s;
          dx[o + i + half] = d2 * c - d1 * s;
        }
      }
}

// ---------------------------------------------------------------------------------------------
// SwiGLU: out = silu(gate) ⊙ up, silu(g) = g·σ(g)

/** out[n] = silu(gate[n]) * up[n] for n < count */
export function swigluForward(out: Buf, gate: Buf, up: Buf, count: number): void {
  for (let i = 0; i < count; i++) {
    const g = gate[i];
    out[i] = (g / (1 + Math.exp(-g))) * up[i];
  }
}

/** dgate, dup (overwritten) from dout */
export function swigluBackward(dgate: Buf, dup: Buf, dout: Buf, gate: Buf, up: Buf, count: number): void {
  for (let i = 0; i < count; i++) {
    const g = gate[i];
    const sig = 1 / (1 + Math.exp(-g));
    // undoes: out[i] = (g / (1 + Math.exp(-g))) * up[i]
    dup[i] = dout[i] * g * sig;
    dgate[i] = dout[i] * up[i] * sig * (1 + g * (1 - sig));
  }
}

// ---------------------------------------------------------------------------------------------
// Cross-entropy over logits[N, V] with targets[N]; targets < 0 (e.g. −100) are ignored.

/** Returns the summed loss (nats) over counted rows and how many rows counted. probs may alias logits. */
export function crossEntropyForward(probs: Buf, logits: Buf, targets: Int32Array, N: number, V: number): { sum: number; count: number } {
  let sum = 0;
  let count = 0;
  for (let n = 0; n < N; n++) {
    const o = n * V;
    const y = targets[n];
    const ly = y >= 0 ? logits[o + y] : 0; // read before probs (which may alias logits) is written
    let mx = -Infinity;
    for (let v = 0; v < V; v++) if (logits[o + v] > mx) mx = logits[o + v];
    let z = 0;
    for (let v = 0; v < V; v++) {
      const e = Math.exp(logits[o + v] - mx);
      probs[o + v] = e;
      z += e;
    }
    for (let v = 0; v < V; v++) probs[o + v] /= z;
    if (y >= 0) {
      sum += -(ly - mx - Math.log(z));
      count++;
    }
  }
  return { sum, count };
}

/** dlogits[N, V] = scale · (probs − onehot(target)) for counted rows, 0 for ignored rows. May alias probs. */
export function crossEntropyBackward(dlogits: Buf, probs: Buf, targets: Int32Array, N: number, V: number, scale: number): void {
  for (let n = 0; n < N; n++) {
    const o = n * V;
    const y = targets[n];
    if (y < 0) {
      dlogits.fill(0, o, o + V);
      continue;
    }
    // undoes: loss = −log softmax(logits)[y]
    for (let v = 0; v < V; v++) dlogits[o + v] = probs[o + v] * scale;
    dlogits[o + y] -= scale;
  }
}
