// Shared building blocks of the decoder families: norms, RoPE (with llama3 rope_scaling), MLP
// activations. They run row by row on f32 arrays (arena views); the matmuls go through Kernels.
//
// Legend: N tokens, E hidden, H heads, D head dim, F MLP width.
import type { RopeScaling } from "../config/rope.js";
import type { Arena } from "../kernels/memory.js";

/**
 * RMSNorm, in place into `out`: y = x / sqrt(mean(x²) + eps) · w   (Gemma: · (1 + w)).
 * x, out [N, E]; w [E]. Accumulates in float64.
 */
export function rmsNorm(x: Float32Array, w: Float32Array, out: Float32Array, E: number, eps: number, plusOne = false): void {
  const N = x.length / E;
  for (let n = 0; n < N; n++) {
    const o = n * E;
    let ss = 0;
    for (let i = 0; i < E; i++) ss += x[o + i] * x[o + i];
    const r = 1 / Math.sqrt(ss / E + eps);
    if (plusOne) for (let i = 0; i < E; i++) out[o + i] = x[o + i] * r * (1 + w[i]);
    else for (let i = 0; i < E; i++) out[o + i] = x[o + i] * r * w[i];
  }
}

/** LayerNorm: y = (x − mean) / sqrt(var + eps) · w + b. x, out [N, E]; w, b [E]. */
export function layerNorm(x: Float32Array, w: Float32Array, b: Float32Array, out: Float32Array, E: number, eps: number): void {
  const N = x.length / E;
  for (let n = 0; n < N; n++) {
    const o = n * E;
    let mu = 0;
    for (let i = 0; i < E; i++) mu += x[o + i];
    mu /= E;
    let v = 0;
    for (let i = 0; i < E; i++) v += (x[o + i] - mu) ** 2;
    const r = 1 / Math.sqrt(v / E + eps);
    for (let i = 0; i < E; i++) out[o + i] = (x[o + i] - mu) * r * w[i] + b[i];
  }
}

/** RoPE frequencies, D/2 of them: θ^(−2i/D), adjusted by rope_scaling when given. */
export function ropeInvFreq(D: number, theta: number, scaling: RopeScaling | null): Float64Array {
  const f = new Float64Array(D / 2);
  for (let i = 0; i < D / 2; i++) f[i] = 1 / theta ** ((2 * i) / D);
  if (!scaling) return f;
  switch (scaling.type) {
    case "llama3": {
      // transformers' _compute_llama3_parameters: long wavelengths are divided by `factor`, short
      // ones kept, and the band between is interpolated smoothly.
      const { factor, lowFreqFactor: lo, highFreqFactor: hi, originalMaxPositions: old } = scaling;
      const loWave = old / lo, hiWave = old / hi;
      for (let i = 0; i < f.length; i++) {
        const wave = (2 * Math.PI) / f[i];
        const scaled = wave > loWave ? f[i] / factor : f[i];
        if (wave < hiWave || wave > loWave) f[i] = scaled;
        else {
          const smooth = (old / wave - lo) / (hi - lo);
          f[i] = (1 - smooth) * (scaled / factor) + smooth * scaled;
        }
      }
      return f;
    }
    case "linear":
      for (let i = 0; i < f.length; i++) f[i] /= scaling.factor;
      return f;
    case "freq_factors": {
      // llama.cpp's rope_freqs tensor (how GGUF stores llama3 scaling): freq / factor per pair.
      const { factors } = scaling;
      if (factors.length !== f.length) throw new RangeError(`rope freq_factors has ${factors.length} entries; expected head_dim / 2 = ${f.length}`);
      for (let i = 0; i < f.length; i++) f[i] /= factors[i];
      return f;
    }
  }
  throw new RangeError(`ropeInvFreq: rope scaling "${scaling.name}" is not implemented (${scaling.problem})`);
}

/**
 * Cos/sin tables for positions [0, P): cos, sin [P, D/2], computed in float64. With an arena the
 * tables live in it (cosPtr, sinPtr), so the kernels' RoPE (Kernels.rowOp "rope") can read them.
 */
export class RopeTable {
  private cosJs = new Float32Array(0);
  private sinJs = new Float32Array(0);
  cosPtr = 0;
  sinPtr = 0;
  private positions = 0;
  constructor(readonly invFreq: Float64Array, private readonly arena?: Arena) {}

  get cos(): Float32Array {
    return this.arena ? this.arena.f32(this.cosPtr, this.positions * this.invFreq.length) : this.cosJs;
  }
  get sin(): Float32Array {
    return this.arena ? this.arena.f32(this.sinPtr, this.positions * this.invFreq.length) : this.sinJs;
  }

  ensure(P: number): void {
    if (P <= this.positions) return;
    const half = this.invFreq.length;
    const cap = Math.max(P, this.positions * 2, 64);
    const cos = new Float32Array(cap * half);
    const sin = new Float32Array(cap * half);
    for (let p = 0; p < cap; p++) {
      for (let i = 0; i < half; i++) {
        const a = p * this.invFreq[i];
        cos[p * half + i] = Math.cos(a);
        sin[p * half + i] = Math.sin(a);
      }
    }
    if (!this.arena) {
      [this.cosJs, this.sinJs] = [cos, sin];
      this.positions = cap;
      return;
    }
    this.dispose();
    this.positions = cap;
    this.cosPtr = this.arena.alloc(cos.byteLength, "RoPE cos table");
    this.sinPtr = this.arena.alloc(sin.byteLength, "RoPE sin table");
    this.arena.f32(this.cosPtr, cos.length).set(cos);
    this.arena.f32(this.sinPtr, sin.length).set(sin);
  }

  /** Returns the arena tables; the next ensure() builds them again. */
  dispose(): void {
    if (this.cosPtr) this.arena!.release(this.cosPtr);
    if (this.sinPtr) this.arena!.release(this.sinPtr);
    this.cosPtr = this.sinPtr = 0;
    this.positions = 0;
  }

  /**
   * Rotates x [N, heads, D] in place, token n at position pos[n], HF's rotate_half layout: the
   * pair (i, i + D/2) turns by pos · invFreq[i].
   */
  apply(x: Float32Array, heads: number, D: number, pos: Int32Array): void {
    const half = D / 2;
    const N = pos.length;
    const cos = this.cos, sin = this.sin;
    for (let n = 0; n < N; n++) {
      const c = pos[n] * half;
      for (let h = 0; h < heads; h++) {
        const o = (n * heads + h) * D;
        for (let i = 0; i < half; i++) {
          const a = x[o + i], b = x[o + i + half];
          const cs = cos[c + i], sn = sin[c + i];
          x[o + i] = a * cs - b * sn;
          x[o + i + half] = b * cs + a * sn;
        }
      }
    }
  }
}

/**
 * Exact GELU in place: y = x · Φ(x) = x/2 · (1 + erf(x / √2)) (PyTorch's nn.GELU(), Falcon's activation).
 * erf from erfc's Chebyshev fit (Numerical Recipes erfcc), fractional error < 1.2e-7 everywhere, in float64.
 */
export function geluErf(x: Float32Array): void {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    const z = Math.abs(v) / Math.SQRT2;
    const t = 1 / (1 + 0.5 * z);
    const erfc = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
    const erf = v >= 0 ? 1 - erfc : erfc - 1;
    x[i] = 0.5 * v * (1 + erf);
  }
}

/** x += y, elementwise. */
export function addInto(x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] += y[i];
}
