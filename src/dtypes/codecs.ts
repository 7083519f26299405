// Scalar storage conversions for the KV cache, weights and file formats: f32 <-> f16,
// f32 <-> bf16, and int8 rows with one f32 scale per row. These are the definitions every backend must agree with:
// the caches write with them and the reference kernels read with them.
//
// Legend: D values per row.
//
// Rounding is IEEE round-to-nearest-even in both f16 and bf16 (what PyTorch's .half() and
// .bfloat16() do), so committed PyTorch fixtures can check the bits exactly.

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/**
 * f32 -> IEEE binary16 bits, round to nearest even. Overflow gives ±Inf, tiny values become
 * subnormals or ±0, NaN stays NaN (quiet).
 * @example f32ToF16(1) // 0x3c00
 */
export function f32ToF16(x: number): number {
  scratchF32[0] = x;
  const b = scratchU32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf or NaN
  const e = exp - 127 + 15; // rebias
  if (e >= 0x1f) return sign | 0x7c00; // too large: Inf
  if (e <= 0) {
    // Subnormal f16: value = h × 2^-24, h = full mantissa >> (14 - e).
    if (e < -10) return sign; // below half the smallest subnormal: ±0
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is correct (may reach Inf)
  return sign | h;
}

let f16Table: Float32Array | null = null;

/** IEEE binary16 bits -> value (exact). */
export function f16ToF32(h: number): number {
  if (f16Table === null) f16Table = buildF16Table();
  return f16Table[h & 0xffff];
}

/** The 65536-entry decode table behind f16ToF32 (shared, read-only by convention). */
export function f16DecodeTable(): Float32Array {
  if (f16Table === null) f16Table = buildF16Table();
  return f16Table;
}

function buildF16Table(): Float32Array {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) t[h] = s * m * 2 ** -24;
    else if (e === 31) t[h] = m ? NaN : s * Infinity;
    else t[h] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return t;
}

/**
 * f32 -> bfloat16 bits (the top 16 bits of the f32), round to nearest even; NaN stays NaN.
 * @example f32ToBf16(1) // 0x3f80
 */
export function f32ToBf16(x: number): number {
  scratchF32[0] = x;
  const b = scratchU32[0];
  if ((b & 0x7f800000) === 0x7f800000 && b & 0x7fffff) return ((b >>> 16) | 0x40) & 0xffff; // quiet NaN
  return ((b + 0x7fff + ((b >>> 16) & 1)) / 65536) & 0xffff; // division avoids 32-bit wrap before the shift
}

/** bfloat16 bits -> value (exact). */
export function bf16ToF32(h: number): number {
  scratchU32[0] = (h & 0xffff) << 16;
  return scratchF32[0];
}

/** Rounds a value through f16 and back, e.g. to predict what an f16 cache will return. */
export function roundF16(x: number): number {
  return f16ToF32(f32ToF16(x));
}

/** Rounds a value through bf16 and back. */
export function roundBf16(x: number): number {
  return bf16ToF32(f32ToBf16(x));
}

/** Encodes src into dst as f16 bits. dst.length >= src.length. */
export function encodeF16(src: ArrayLike<number>, dst: Uint16Array): void {
  for (let i = 0; i < src.length; i++) dst[i] = f32ToF16(src[i]);
}

/** Encodes src into dst as bf16 bits. */
export function encodeBf16(src: ArrayLike<number>, dst: Uint16Array): void {
  for (let i = 0; i < src.length; i++) dst[i] = f32ToBf16(src[i]);
}

/** Decodes f16 bits into dst. */
export function decodeF16(src: ArrayLike<number>, dst: Float32Array | Float64Array): void {
  const t = f16DecodeTable();
  for (let i = 0; i < src.length; i++) dst[i] = t[src[i]];
}

/** Decodes bf16 bits into dst. */
export function decodeBf16(src: ArrayLike<number>, dst: Float32Array | Float64Array): void {
  for (let i = 0; i < src.length; i++) dst[i] = bf16ToF32(src[i]);
}

/**
 * Quantises one row symmetrically to int8 with one f32 scale: scale = max|x| / 127 (rounded to f32),
 * q = clamp(round(x / scale), -127, 127), and the row reads back as q × scale.
 * An all-zero row gets scale 0. A row holding NaN or ±Inf gets a NaN scale, so it reads back as
 * NaN rather than as silently wrong finite numbers.
 * @returns the f32 scale written beside the row.
 */
export function quantizeInt8Row(src: ArrayLike<number>, dst: Int8Array, dstOffset = 0): number {
  let maxAbs = 0;
  let finite = true;
  for (let i = 0; i < src.length; i++) {
    const a = Math.abs(src[i]);
    if (!Number.isFinite(a)) finite = false;
    else if (a > maxAbs) maxAbs = a;
  }
  if (!finite) {
    for (let i = 0; i < src.length; i++) dst[dstOffset + i] = 0;
    return NaN;
  }
  const scale = Math.fround(maxAbs / 127);
  for (let i = 0; i < src.length; i++) {
    const q = scale === 0 ? 0 : Math.round(src[i] / scale);
    dst[dstOffset + i] = Math.max(-127, Math.min(127, q));
  }
  return scale;
}

/** Reads an int8 row back: dst[i] = q[i] × scale. */
export function dequantizeInt8Row(src: Int8Array, srcOffset: number, scale: number, dst: Float32Array | Float64Array, n: number): void {
  for (let i = 0; i < n; i++) dst[i] = src[srcOffset + i] * scale;
}
