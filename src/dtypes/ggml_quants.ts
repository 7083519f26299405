// GGML's 4-, 5- and 6-bit weight formats as llama.cpp stores them in GGUF files (the types inside
// Q4_0 … Q6_K and Q4_K_M / Q5_K_M files), written from the block layouts of ggml-common.h and the
// reference (de)quantizers of ggml-quants.c. The kernels read these blocks in place
// (src/kernels/assembly/quants.ts); this file is their specification.
//
// Legend: a row of n values is n / QK blocks (QK = 32 for the legacy types, 256 for the k-quants).
// All multi-byte fields are little endian; "f16" is an IEEE half.
//
//   q4_0  18 B / 32:  f16 d | qs[16]            v_j = (q_j - 8)·d;  q_j = low nibble of qs[j] (j < 16), high nibble of qs[j-16]
//   q4_1  20 B / 32:  f16 d | f16 m | qs[16]    v_j = q_j·d + m
//   q5_0  22 B / 32:  f16 d | u32 qh | qs[16]   q_j = nibble as q4_0 | bit j of qh << 4;  v_j = (q_j - 16)·d
//   q5_1  24 B / 32:  f16 d | f16 m | u32 qh | qs[16]   v_j = q_j·d + m
//   q4_k 144 B / 256: f16 d | f16 dmin | scales[12] | qs[128]
//         8 sub-blocks of 32 with 6-bit scale s_i and min m_i packed in scales[12] (scaleMinK4);
//         values 64c..64c+31 are low nibbles of qs[32c..32c+31] (sub-block 2c), 64c+32.. the high
//         nibbles (sub-block 2c+1);  v = d·s_i·q - dmin·m_i
//   q5_k 176 B / 256: f16 d | f16 dmin | scales[12] | qh[32] | qs[128]   as q4_k, plus bit (2c) of
//         qh[l] (sub-block 2c) or bit (2c+1) (sub-block 2c+1) as the fifth bit (+16)
//   q6_k 210 B / 256: ql[128] | qh[64] | int8 scales[16] | f16 d    16 sub-blocks of 16, v = d·sc_i·(q - 32);
//         in each half h (128 values): q of value 128h + 32k + l (k < 4, l < 32) is
//         nibble (k & 1 ? ql[64h + 32 + l] : ql[64h + l]) >> (k < 2 ? 0 : 4) | ((qh[32h + l] >> 2k) & 3) << 4,
//         scale sc[8h + 2k + (l >> 4)]
//
// Exactness: every product above is exact in float32 (an f16 times a small integer, then a second
// small integer), and the final subtraction or addition rounds once, so ggml's float32
// dequantize_row_* equals the exact (float64) value rounded once to float32, with or without FMA.
// decodeQuant into a Float64Array gives the exact value; into a Float32Array, ggml's bits.
//
// The quantizers follow ggml's *_ref functions (what llama-quantize uses without an importance
// matrix) in float32 arithmetic (Math.fround at each operation, no fused multiply-adds). ggml may be
// compiled with FMA contraction, so its bytes can differ from ours in rare ties; the contract that
// matters, and that the tests check, is that both read the same bytes as the same values.
import { f16DecodeTable, f32ToF16 } from "./codecs.js";
import { decodeQ8_0, Q8_0_BLOCK } from "./q8_0.js";

const f = Math.fround;

/** The GGML block types this module handles. */
export const GGML_QUANTS = ["q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k"] as const;
export type GgmlQuant = (typeof GGML_QUANTS)[number];

/** Values and bytes per block, and the ggml_type code (ggml.h enum ggml_type). */
export const QUANT_LAYOUT: Record<GgmlQuant, { blockValues: number; blockBytes: number; ggmlType: number }> = {
  q4_0: { blockValues: 32, blockBytes: 18, ggmlType: 2 },
  q4_1: { blockValues: 32, blockBytes: 20, ggmlType: 3 },
  q5_0: { blockValues: 32, blockBytes: 22, ggmlType: 6 },
  q5_1: { blockValues: 32, blockBytes: 24, ggmlType: 7 },
  q4_k: { blockValues: 256, blockBytes: 144, ggmlType: 12 },
  q5_k: { blockValues: 256, blockBytes: 176, ggmlType: 13 },
  q6_k: { blockValues: 256, blockBytes: 210, ggmlType: 14 },
};

export function isGgmlQuant(t: string): t is GgmlQuant {
  return (GGML_QUANTS as readonly string[]).includes(t);
}

/** Every GGML block type mqa reads in place: Q8_0 (q8_0.ts) and the types above. */
export type BlockType = "q8_0" | GgmlQuant;

export function isBlockType(t: string): t is BlockType {
  return t === "q8_0" || isGgmlQuant(t);
}

/** Values per block of a block type (32 or 256). */
export function blockValuesOf(t: BlockType): number {
  return t === "q8_0" ? Q8_0_BLOCK : QUANT_LAYOUT[t].blockValues;
}

/** Blocks of any block type → f32 values (ggml's dequantize_row_* bits). */
export function decodeBlocks(t: BlockType, raw: Uint8Array, numel: number, out: Float32Array = new Float32Array(numel)): Float32Array {
  return t === "q8_0" ? decodeQ8_0(raw, numel, out) : decodeQuant(t, raw, numel, out);
}

// ------------------------------------------------------------------------------- dequantize

/** The 6-bit scale and min of sub-block j (0..7) from a k-quant's 12 packed bytes at p. */
export function scaleMinK4(b: Uint8Array, p: number, j: number): [number, number] {
  if (j < 4) return [b[p + j] & 63, b[p + j + 4] & 63];
  return [(b[p + j + 4] & 0xf) | ((b[p + j - 4] >> 6) << 4), (b[p + j + 4] >> 4) | ((b[p + j] >> 6) << 4)];
}

/**
 * Blocks of `type` → values (numel a multiple of the block size). Into a Float64Array the values are
 * exact; into a Float32Array they are ggml's dequantize_row_* bits (see the header).
 * @example decodeQuant("q4_0", raw, 32, new Float64Array(32))
 */
export function decodeQuant<T extends Float32Array | Float64Array>(type: GgmlQuant, raw: Uint8Array, numel: number, out: T): T {
  const { blockValues: QK, blockBytes: BB } = QUANT_LAYOUT[type];
  if (numel % QK !== 0) throw new RangeError(`decodeQuant(${type}): ${numel} values is not a multiple of ${QK}`);
  if (raw.length < (numel / QK) * BB) throw new RangeError(`decodeQuant(${type}): ${raw.length} bytes hold fewer than ${numel} values`);
  const h = f16DecodeTable();
  const u16 = (p: number) => h[raw[p] | (raw[p + 1] << 8)];
  for (let b = 0; b < numel / QK; b++) {
    const p = b * BB, o = b * QK;
    if (type === "q4_0" || type === "q4_1") {
      const d = u16(p), m = type === "q4_1" ? u16(p + 2) : 0, qs = p + (type === "q4_1" ? 4 : 2);
      for (let j = 0; j < 16; j++) {
        const lo = raw[qs + j] & 0xf, hi = raw[qs + j] >> 4;
        out[o + j] = type === "q4_0" ? (lo - 8) * d : lo * d + m;
        out[o + j + 16] = type === "q4_0" ? (hi - 8) * d : hi * d + m;
      }
    } else if (type === "q5_0" || type === "q5_1") {
      const one = type === "q5_1";
      const d = u16(p), m = one ? u16(p + 2) : 0, qhp = p + (one ? 4 : 2), qs = qhp + 4;
      const qh = (raw[qhp] | (raw[qhp + 1] << 8) | (raw[qhp + 2] << 16) | (raw[qhp + 3] << 24)) >>> 0;
      for (let j = 0; j < 16; j++) {
        const lo = (raw[qs + j] & 0xf) | (((qh >>> j) & 1) << 4);
        const hi = (raw[qs + j] >> 4) | (((qh >>> (j + 16)) & 1) << 4);
        out[o + j] = one ? lo * d + m : (lo - 16) * d;
        out[o + j + 16] = one ? hi * d + m : (hi - 16) * d;
      }
    } else if (type === "q4_k" || type === "q5_k") {
      const five = type === "q5_k";
      const d = u16(p), dmin = u16(p + 2), sc = p + 4, qh = p + 16, qs = p + (five ? 48 : 16);
      for (let c = 0; c < 4; c++) {
        const [s1, m1] = scaleMinK4(raw, sc, 2 * c), [s2, m2] = scaleMinK4(raw, sc, 2 * c + 1);
        const d1 = d * s1, n1 = dmin * m1, d2 = d * s2, n2 = dmin * m2;
        for (let l = 0; l < 32; l++) {
          const q = raw[qs + 32 * c + l];
          const h1 = five ? ((raw[qh + l] >> (2 * c)) & 1) << 4 : 0, h2 = five ? ((raw[qh + l] >> (2 * c + 1)) & 1) << 4 : 0;
          out[o + 64 * c + l] = d1 * ((q & 0xf) + h1) - n1;
          out[o + 64 * c + 32 + l] = d2 * ((q >> 4) + h2) - n2;
        }
      }
    } else {
      const d = u16(p + 208);
      for (let half = 0; half < 2; half++) {
        const ql = p + 64 * half, qh = p + 128 + 32 * half, sc = p + 192 + 8 * half;
        for (let l = 0; l < 32; l++) {
          for (let k = 0; k < 4; k++) {
            const nib = (raw[ql + (k & 1 ? 32 : 0) + l] >> (k < 2 ? 0 : 4)) & 0xf;
            const q = (nib | (((raw[qh + l] >> (2 * k)) & 3) << 4)) - 32;
            const s = (raw[sc + 2 * k + (l >> 4)] << 24) >> 24; // int8
            out[o + 128 * half + 32 * k + l] = d * s * q;
          }
        }
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------- quantize

/** ggml's nearest_int: round to nearest, ties to even (the float trick fval + 1.5·2^23). */
function nearestInt(v: number): number {
  const r = Math.floor(v), diff = v - r;
  return diff > 0.5 ? r + 1 : diff < 0.5 ? r : r % 2 === 0 ? r : r + 1;
}

/** make_qx_quants(n, nmax, x, L, rmse_type = 1, no weights): a symmetric scale found by a ±0.9 search. */
function makeQxQuants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array | Uint8Array, lo: number): number {
  let max = 0, amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) { amax = ax; max = x[xo + i]; }
  }
  if (amax < 1e-15) { // GROUP_MAX_EPS
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return 0;
  }
  const fit = (iscale: number, write: boolean): [number, number] => {
    let sumlx = 0, suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i];
      const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(f(iscale * xi))));
      if (write) L[lo + i] = l + nmax;
      const w = f(xi * xi);
      sumlx = f(sumlx + f(f(w * xi) * l));
      suml2 = f(suml2 + f(f(w * l) * l));
    }
    return [sumlx, suml2];
  };
  let [sumlx, suml2] = fit(f(-nmax / max), true);
  let scale = suml2 ? f(sumlx / suml2) : 0;
  let best = f(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    const iscale = f(-f(nmax + f(f(0.1) * is)) / max);
    [sumlx, suml2] = fit(iscale, false);
    if (suml2 > 0 && f(sumlx * sumlx) > f(best * suml2)) {
      fit(iscale, true);
      scale = f(sumlx / suml2);
      best = f(scale * sumlx);
    }
  }
  return scale;
}

/** make_qkx2_quants: an asymmetric (scale, min) for one sub-block, by a weighted least-squares search. Returns [scale, -min]. */
function makeQkx2Quants(n: number, nmax: number, x: Float32Array, xo: number, w: Float32Array, L: Uint8Array, lo: number, rmin: number, rdelta: number, nstep: number): [number, number] {
  let min = x[xo], max = x[xo], sumW = w[0], sumX = f(sumW * x[xo]);
  for (let i = 1; i < n; i++) {
    const xi = x[xo + i];
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    sumW = f(sumW + w[i]);
    sumX = f(sumX + f(w[i] * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return [0, -min];
  }
  const range = f(max - min);
  let iscale = f(nmax / range);
  let scale = f(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.max(0, Math.min(nmax, nearestInt(f(iscale * f(x[xo + i] - min)))));
    L[lo + i] = l;
    const diff = f(f(f(scale * l) + min) - x[xo + i]);
    bestError = f(bestError + f(w[i] * f(diff * diff)));
  }
  const aux = new Uint8Array(n);
  for (let is = 0; is <= nstep; is++) {
    iscale = f(f(f(rmin + f(rdelta * is)) + nmax) / range);
    let sumL = 0, sumL2 = 0, sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.max(0, Math.min(nmax, nearestInt(f(iscale * f(x[xo + i] - min)))));
      aux[i] = l;
      const wl = f(w[i] * l);
      sumL = f(sumL + wl);
      sumL2 = f(sumL2 + f(wl * l));
      sumXL = f(sumXL + f(wl * x[xo + i]));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (D > 0) {
      let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
      let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f(sumXL / sumL2);
      }
      let cur = 0;
      for (let i = 0; i < n; i++) {
        const diff = f(f(f(thisScale * aux[i]) + thisMin) - x[xo + i]);
        cur = f(cur + f(w[i] * f(diff * diff)));
      }
      if (cur < bestError) {
        for (let i = 0; i < n; i++) L[lo + i] = aux[i];
        bestError = cur;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

function putF16(out: Uint8Array, p: number, v: number): void {
  const h = f32ToF16(v);
  out[p] = h & 0xff;
  out[p + 1] = h >> 8;
}

/** Legacy 32-value blocks: q4_0 / q5_0 (symmetric, d = max/-8 or max/-16), q4_1 / q5_1 (d = (max-min)/15 or /31, m = min). */
function quantizeLegacy(type: GgmlQuant, x: Float32Array, xo: number, out: Uint8Array, p: number): void {
  const five = type === "q5_0" || type === "q5_1", withMin = type === "q4_1" || type === "q5_1";
  const q = new Uint8Array(32);
  if (!withMin) {
    let amax = 0, max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[xo + j];
      if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
    }
    const d = f(max / (five ? -16 : -8));
    const id = d ? f(1 / d) : 0;
    putF16(out, p, d);
    for (let j = 0; j < 32; j++) q[j] = Math.min(five ? 31 : 15, Math.trunc(f(f(x[xo + j] * id) + (five ? 16.5 : 8.5))));
  } else {
    let min = Infinity, max = -Infinity;
    for (let j = 0; j < 32; j++) {
      const v = x[xo + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = f(f(max - min) / (five ? 31 : 15));
    const id = d ? f(1 / d) : 0;
    putF16(out, p, d);
    putF16(out, p + 2, min);
    for (let j = 0; j < 32; j++) {
      const t = Math.trunc(f(f(f(x[xo + j] - min) * id) + 0.5));
      q[j] = five ? t & 0xff : Math.min(15, t);
    }
  }
  const qhp = p + (withMin ? 4 : 2), qs = qhp + (five ? 4 : 0);
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    out[qs + j] = (q[j] & 0xf) | ((q[j + 16] & 0xf) << 4);
    qh |= ((q[j] >> 4) & 1) << j;
    qh |= ((q[j + 16] >> 4) & 1) << (j + 16);
  }
  if (five) for (let k = 0; k < 4; k++) out[qhp + k] = (qh >>> (8 * k)) & 0xff;
}

/** q4_k / q5_k super-block (quantize_row_q4_K_ref / q5_K_ref). */
function quantizeK45(type: "q4_k" | "q5_k", x: Float32Array, xo: number, out: Uint8Array, p: number): void {
  const five = type === "q5_k", nmax = five ? 31 : 15;
  const L = new Uint8Array(256), w = new Float32Array(32);
  const scales = new Float32Array(8), mins = new Float32Array(8);
  let maxScale = 0, maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(x[xo + 32 * j + l] * x[xo + 32 * j + l]));
    const avX = f(Math.sqrt(f(sumX2 / 32)));
    for (let l = 0; l < 32; l++) w[l] = f(avX + Math.abs(x[xo + 32 * j + l]));
    const [s, m] = five ? makeQkx2Quants(32, 31, x, xo + 32 * j, w, L, 32 * j, -0.5, f(0.1), 15) : makeQkx2Quants(32, 15, x, xo + 32 * j, w, L, 32 * j, -1, f(0.1), 20);
    scales[j] = s;
    mins[j] = m;
    if (s > maxScale) maxScale = s;
    if (m > maxMin) maxMin = m;
  }
  const invScale = maxScale > 0 ? f(63 / maxScale) : 0, invMin = maxMin > 0 ? f(63 / maxMin) : 0;
  const sc = p + 4;
  for (let k = 0; k < 12; k++) out[sc + k] = 0;
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(f(invScale * scales[j])) & 0xff), lm = Math.min(63, nearestInt(f(invMin * mins[j])) & 0xff);
    if (j < 4) {
      out[sc + j] = ls;
      out[sc + j + 4] = lm;
    } else {
      out[sc + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      out[sc + j - 4] |= (ls >> 4) << 6;
      out[sc + j] |= (lm >> 4) << 6;
    }
  }
  putF16(out, p, f(maxScale / 63));
  putF16(out, p + 2, f(maxMin / 63));
  const h = f16DecodeTable();
  const D = h[out[p] | (out[p + 1] << 8)], DM = h[out[p + 2] | (out[p + 3] << 8)];
  for (let j = 0; j < 8; j++) {
    const [s, m] = scaleMinK4(out, sc, j);
    const d = f(D * s);
    if (!d) continue;
    const dm = f(DM * m);
    for (let i = 0; i < 32; i++) L[32 * j + i] = Math.max(0, Math.min(nmax, nearestInt(f(f(x[xo + 32 * j + i] + dm) / d))));
  }
  const qh = p + 16, qs = p + (five ? 48 : 16);
  if (five) for (let k = 0; k < 32; k++) out[qh + k] = 0;
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) {
      let l1 = L[64 * c + l], l2 = L[64 * c + 32 + l];
      if (five && l1 > 15) { l1 -= 16; out[qh + l] |= 1 << (2 * c); }
      if (five && l2 > 15) { l2 -= 16; out[qh + l] |= 1 << (2 * c + 1); }
      out[qs + 32 * c + l] = l1 | (l2 << 4);
    }
  }
}

/** q6_k super-block (quantize_row_q6_K_ref). */
function quantizeQ6K(x: Float32Array, xo: number, out: Uint8Array, p: number): void {
  const L = new Uint8Array(256), scales = new Float32Array(16);
  let maxScale = 0, maxAbs = 0;
  for (let ib = 0; ib < 16; ib++) {
    const s = makeQxQuants(16, 32, x, xo + 16 * ib, L, 16 * ib);
    scales[ib] = s;
    if (Math.abs(s) > maxAbs) { maxAbs = Math.abs(s); maxScale = s; }
  }
  out.fill(0, p, p + 210);
  if (maxAbs < 1e-15) return; // an all-zero block: d = 0
  const iscale = f(-128 / maxScale);
  putF16(out, p + 208, f(1 / iscale));
  const D = f16DecodeTable()[out[p + 208] | (out[p + 209] << 8)];
  for (let ib = 0; ib < 16; ib++) out[p + 192 + ib] = Math.min(127, nearestInt(f(iscale * scales[ib]))) & 0xff;
  for (let j = 0; j < 16; j++) {
    const d = f(D * ((out[p + 192 + j] << 24) >> 24));
    if (!d) continue;
    for (let i = 0; i < 16; i++) L[16 * j + i] = Math.max(-32, Math.min(31, nearestInt(f(x[xo + 16 * j + i] / d)))) + 32;
  }
  for (let half = 0; half < 2; half++) {
    const ql = p + 64 * half, qh = p + 128 + 32 * half, o = 128 * half;
    for (let l = 0; l < 32; l++) {
      const [a, b, c, e] = [L[o + l], L[o + l + 32], L[o + l + 64], L[o + l + 96]];
      out[ql + l] = (a & 0xf) | ((c & 0xf) << 4);
      out[ql + l + 32] = (b & 0xf) | ((e & 0xf) << 4);
      out[qh + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
    }
  }
}

/**
 * f32 values → blocks of `type`, as ggml's quantize_row_*_ref (numel a multiple of the block size;
 * blocks run along the array, so a [rows, n] matrix with n % QK == 0 quantizes row by row).
 * Non-finite input is refused: ggml would write garbage scales.
 */
export function encodeQuant(type: GgmlQuant, x: Float32Array): Uint8Array {
  const { blockValues: QK, blockBytes: BB } = QUANT_LAYOUT[type];
  if (x.length % QK !== 0) throw new RangeError(`encodeQuant(${type}): ${x.length} values is not a multiple of ${QK}`);
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) throw new RangeError(`encodeQuant(${type}): value ${i} is ${x[i]}; expected finite weights`);
  const out = new Uint8Array((x.length / QK) * BB);
  for (let b = 0; b < x.length / QK; b++) {
    if (type === "q4_k" || type === "q5_k") quantizeK45(type, x, b * QK, out, b * BB);
    else if (type === "q6_k") quantizeQ6K(x, b * QK, out, b * BB);
    else quantizeLegacy(type, x, b * QK, out, b * BB);
  }
  return out;
}
