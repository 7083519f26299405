// Merging the K/V heads of one attention layer into fewer heads: the numeric core of mqa convert.
// No files, no model families: a layer's projections come in as PyTorch-layout float64 matrices.
//
// Legend: C hidden, H query heads, S source KV heads, K target KV heads, m = S/K source heads per
// group, D head dim, G = H/S query heads per source KV head. Groups are adjacent: target head g pools
// source heads g·m … g·m + m − 1, and query head h reads source head ⌊h / (H/S)⌋ (HF, llama.cpp).
//
// Methods:
//   mean   — each new K/V head (weights and biases) is the mean of its group (Ainslie et al. 2023).
//   first  — the group's first head.
//   random — fresh N(0, 0.02²) weights, zero biases (the trainer's init scale).
//   pca    — ours. Values: the top-D principal directions U [m·D, D] of the group's concatenated
//            calibration values give the new head (W_v' = Uᵀ·W_v,group) and each query head's slice
//            of the output projection absorbs its source head's block of U (W_o,h' = W_o,h·U_s), so
//            heads keep reading their own values wherever the group's values span ≤ D directions.
//            Keys: RoPE rotates each frequency pair (i, i + D/2) as a complex number, so only a
//            per-pair complex factor (a 2×2 rotation + scale) can be folded into Q. Per pair, the
//            best rank-1 fit of the group's complex key activations Z [N, m] ≈ z·uᴴ (u the top
//            eigenvector of ZᴴZ) gives the new key z = Z·u, i.e. the weights Σ_s u_s·w_s, and each
//            query head reading source s multiplies its pair by u_s, which keeps q·k exact where the
//            fit is exact. Calibration statistics come from running the model (calibrate.ts).
import { symmetricEigen } from "./linalg.js";

export const METHODS = ["mean", "first", "random", "pca"] as const;
export type Method = (typeof METHODS)[number];
/** Methods that need calibration activations. */
export const CALIBRATED: readonly Method[] = ["pca"];

/** One layer's attention projections, PyTorch Linear layout ([out, in]), float64. */
export interface AttnLayer {
  q: Float64Array; // [H·D, C]
  qb: Float64Array | null; // [H·D]
  k: Float64Array; // [S·D, C]
  kb: Float64Array | null; // [S·D]
  v: Float64Array; // [S·D, C]
  vb: Float64Array | null; // [S·D]
  o: Float64Array; // [C, H·D]
}

export interface LayerShape {
  C: number; // hidden size
  H: number; // query heads
  S: number; // source KV heads
  D: number; // head dim
}

/** Calibration statistics of one layer (float64 sums over calibration tokens, biases included). */
export interface LayerStats {
  // Per target group g and frequency pair p (0 ≤ p < D/2): Re and Im of A = ZᴴZ [m, m], row-major,
  // Z[t, s] = k_s[t, p] + i·k_s[t, p + D/2] (pre-RoPE keys of the group's source heads).
  keyRe: Float64Array[]; // [K · D/2] arrays of m·m
  keyIm: Float64Array[];
  // Per target group g: Σ_t v_g(t) v_g(t)ᵀ over the concatenated values [m·D] of its source heads.
  value: Float64Array[]; // [K] arrays of (m·D)²
  tokens: number;
}

/** Empty statistics for a layer converted to K heads. */
export function emptyStats(shape: LayerShape, K: number): LayerStats {
  const { S, D } = shape;
  const m = S / K;
  const P = D / 2;
  return {
    keyRe: Array.from({ length: K * P }, () => new Float64Array(m * m)),
    keyIm: Array.from({ length: K * P }, () => new Float64Array(m * m)),
    value: Array.from({ length: K }, () => new Float64Array(m * D * m * D)),
    tokens: 0,
  };
}

/** Adds N tokens of pre-RoPE keys and values ([N, S·D] each, row-major) to the statistics. */
export function accumulateStats(st: LayerStats, shape: LayerShape, K: number, k: ArrayLike<number>, v: ArrayLike<number>, N: number): void {
  const { S, D } = shape;
  const m = S / K, P = D / 2, W = S * D, mD = m * D;
  const vg = new Float64Array(mD);
  for (let t = 0; t < N; t++) {
    const row = t * W;
    for (let g = 0; g < K; g++) {
      for (let p = 0; p < P; p++) {
        const re = st.keyRe[g * P + p], im = st.keyIm[g * P + p];
        for (let i = 0; i < m; i++) {
          const si = row + (g * m + i) * D;
          const ai = k[si + p], bi = k[si + p + P];
          for (let j = 0; j < m; j++) {
            const sj = row + (g * m + j) * D;
            const aj = k[sj + p], bj = k[sj + p + P];
            // conj(a_i + i b_i)·(a_j + i b_j) = (a_i a_j + b_i b_j) + i (a_i b_j − b_i a_j)
            re[i * m + j] += ai * aj + bi * bj;
            im[i * m + j] += ai * bj - bi * aj;
          }
        }
      }
      for (let i = 0; i < mD; i++) vg[i] = v[row + g * mD + i];
      const G = st.value[g];
      for (let i = 0; i < mD; i++) {
        const x = vg[i];
        if (x === 0) continue;
        for (let j = 0; j < mD; j++) G[i * mD + j] += x * vg[j];
      }
    }
  }
  st.tokens += N;
}

export interface PoolOptions {
  method: Method;
  K: number; // target KV heads (divides S)
  stats?: LayerStats; // required by pca
  random?: () => number; // standard normal samples, required by random
}

/** The layer with K KV heads; q and o change only for pca. */
export function poolLayer(L: AttnLayer, shape: LayerShape, opts: PoolOptions): AttnLayer {
  const { C, S, D } = shape;
  const { K, method } = opts;
  if (S % K !== 0) throw new Error(`poolLayer: target KV heads ${K} must divide source KV heads ${S}`);
  const m = S / K;
  if (method === "pca") return pcaLayer(L, shape, K, opts.stats);
  const k = new Float64Array(K * D * C), v = new Float64Array(K * D * C);
  const kb = L.kb ? new Float64Array(K * D) : null, vb = L.vb ? new Float64Array(K * D) : null;
  if (method === "random") {
    const r = opts.random;
    if (!r) throw new Error("poolLayer: random needs a random source");
    for (let i = 0; i < k.length; i++) k[i] = 0.02 * r();
    for (let i = 0; i < v.length; i++) v[i] = 0.02 * r();
    return { ...L, k, kb, v, vb };
  }
  const heads = method === "first" ? [0] : Array.from({ length: m }, (_, i) => i);
  const w = 1 / heads.length;
  for (let g = 0; g < K; g++) {
    for (const i of heads) {
      const s = g * m + i;
      for (let r = 0; r < D * C; r++) {
        k[g * D * C + r] += w * L.k[s * D * C + r];
        v[g * D * C + r] += w * L.v[s * D * C + r];
      }
      for (let d = 0; d < D; d++) {
        if (kb && L.kb) kb[g * D + d] += w * L.kb[s * D + d];
        if (vb && L.vb) vb[g * D + d] += w * L.vb[s * D + d];
      }
    }
  }
  return { ...L, k, kb, v, vb };
}

function pcaLayer(L: AttnLayer, shape: LayerShape, K: number, st: LayerStats | undefined): AttnLayer {
  const { C, H, S, D } = shape;
  if (!st || st.tokens === 0) throw new Error("poolLayer: pca needs calibration statistics");
  const m = S / K, P = D / 2, mD = m * D, G = H / S, HD = H * D;
  const q = L.q.slice(), qb = L.qb ? L.qb.slice() : null, o = L.o.slice();
  const k = new Float64Array(K * D * C), v = new Float64Array(K * D * C);
  const kb = L.kb ? new Float64Array(K * D) : null, vb = L.vb ? new Float64Array(K * D) : null;
  for (let g = 0; g < K; g++) {
    // Keys, one frequency pair at a time.
    for (let p = 0; p < P; p++) {
      const u = topComplexEigenvector(st.keyRe[g * P + p], st.keyIm[g * P + p], m); // [m] as (re, im)
      const rowA = (g * D + p) * C, rowB = (g * D + p + P) * C;
      for (let i = 0; i < m; i++) {
        const s = g * m + i;
        const [ur, ui] = [u[2 * i], u[2 * i + 1]];
        const sa = (s * D + p) * C, sb = (s * D + p + P) * C;
        // new z = Σ_s u_s·(a_s + i b_s): real part ur·a − ui·b, imaginary part ur·b + ui·a.
        for (let c = 0; c < C; c++) {
          const a = L.k[sa + c], b = L.k[sb + c];
          k[rowA + c] += ur * a - ui * b;
          k[rowB + c] += ur * b + ui * a;
        }
        if (kb && L.kb) {
          const a = L.kb[s * D + p], b = L.kb[s * D + p + P];
          kb[g * D + p] += ur * a - ui * b;
          kb[g * D + p + P] += ur * b + ui * a;
        }
        // Query heads reading source head s multiply their pair p by u_s.
        for (let h = s * G; h < (s + 1) * G; h++) {
          const qa = (h * D + p) * C, qbRow = (h * D + p + P) * C;
          for (let c = 0; c < C; c++) {
            const a = L.q[qa + c], b = L.q[qbRow + c];
            q[qa + c] = ur * a - ui * b;
            q[qbRow + c] = ur * b + ui * a;
          }
          if (qb && L.qb) {
            const a = L.qb[h * D + p], b = L.qb[h * D + p + P];
            qb[h * D + p] = ur * a - ui * b;
            qb[h * D + p + P] = ur * b + ui * a;
          }
        }
      }
    }
    // Values: the top-D eigenvectors U [mD, D] of the group's value Gram matrix.
    const { vectors } = symmetricEigen(st.value[g], mD); // columns sorted by descending eigenvalue
    const U = (r: number, j: number) => vectors[r * mD + j];
    for (let j = 0; j < D; j++) {
      const row = (g * D + j) * C;
      for (let r = 0; r < mD; r++) {
        const w = U(r, j);
        if (w === 0) continue;
        const src = (g * mD + r) * C; // row r of the group's concatenated W_v
        for (let c = 0; c < C; c++) v[row + c] += w * L.v[src + c];
        if (vb && L.vb) vb[g * D + j] += w * L.vb[g * mD + r];
      }
    }
    // W_o,h' [C, D] = W_o,h [C, D] · U_s [D, D] for every query head h reading source head s.
    for (let i = 0; i < m; i++) {
      const s = g * m + i;
      for (let h = s * G; h < (s + 1) * G; h++) {
        for (let c = 0; c < C; c++) {
          const base = c * HD + h * D;
          const old = L.o.subarray(base, base + D);
          for (let j = 0; j < D; j++) {
            let acc = 0;
            for (let d = 0; d < D; d++) acc += old[d] * U(i * D + d, j);
            o[base + j] = acc;
          }
        }
      }
    }
  }
  return { q, qb, k, kb, v, vb, o };
}

/**
 * The unit top eigenvector u of the Hermitian matrix A = Re + i·Im [m, m], returned as
 * interleaved (re, im) pairs, with the phase fixed so that Σ_s u_s is real and ≥ 0 (any phase
 * gives the same scores; a fixed one makes the output deterministic). Uses the real symmetric
 * embedding [[Re, −Im], [Im, Re]], whose eigenvalues are A's, each twice.
 */
export function topComplexEigenvector(re: Float64Array, im: Float64Array, m: number): Float64Array {
  const n = 2 * m;
  const M = new Float64Array(n * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      M[i * n + j] = re[i * m + j];
      M[(i + m) * n + (j + m)] = re[i * m + j];
      M[i * n + (j + m)] = -im[i * m + j];
      M[(i + m) * n + j] = im[i * m + j];
    }
  }
  const { vectors } = symmetricEigen(M, n);
  const u = new Float64Array(2 * m);
  for (let i = 0; i < m; i++) {
    u[2 * i] = vectors[i * n];
    u[2 * i + 1] = vectors[(i + m) * n];
  }
  // Fix the phase: multiply by conj(Σu)/|Σu| (if Σu ≈ 0, by the phase of the largest entry).
  let sr = 0, si = 0;
  for (let i = 0; i < m; i++) {
    sr += u[2 * i];
    si += u[2 * i + 1];
  }
  if (Math.hypot(sr, si) < 1e-12) {
    let best = 0;
    for (let i = 1; i < m; i++) if (Math.hypot(u[2 * i], u[2 * i + 1]) > Math.hypot(u[2 * best], u[2 * best + 1])) best = i;
    [sr, si] = [u[2 * best], u[2 * best + 1]];
  }
  const r = Math.hypot(sr, si) || 1;
  const [cr, ci] = [sr / r, -si / r];
  let norm = 0;
  for (let i = 0; i < m; i++) {
    const [a, b] = [u[2 * i], u[2 * i + 1]];
    u[2 * i] = a * cr - b * ci;
    u[2 * i + 1] = a * ci + b * cr;
    norm += u[2 * i] ** 2 + u[2 * i + 1] ** 2;
  }
  const k = 1 / Math.sqrt(norm);
  for (let i = 0; i < 2 * m; i++) u[i] *= k;
  return u;
}
