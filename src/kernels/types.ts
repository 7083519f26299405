// The narrow kernel interface. Kernels see flat memory (byte offsets into one Arena memory) and
// sizes, never model concepts. The plain-TS reference backend and the WASM SIMD backend both
// implement it, and a native backend could sit behind it later.
//
// Legend: T query positions, H query heads, K kv heads, G = H/K, D head dim, S cached rows.

/** A run of cached rows. K rows of kv head k: kPtr + k*headStride + r*rowStride, r < rows. */
export interface KvSegment {
  kPtr: number; // byte offset of row 0 of kv head 0
  vPtr: number;
  rows: number; // valid rows in this segment
  headStride: number; // bytes between kv heads' row 0
  firstPos: number; // position of row 0; row r sits at firstPos + r
  kScalePtr?: number; // int8 only: f32 scale of row r of head k at kScalePtr + 4*(k*scaleHeadStride + r)
  vScalePtr?: number;
  scaleHeadStride?: number; // in scales (f32 elements)
}

export type KvDtype = "f32" | "f16" | "bf16" | "int8";

/** One sequence's attention over its cache. T = 1 is a decode step. */
export interface AttentionCall {
  q: number; // byte ptr, f32 [T, H, D]
  out: number; // byte ptr, f32 [T, H, D]
  T: number;
  H: number;
  K: number; // must divide H; query head h reads kv head floor(h / (H / K))
  D: number;
  qPos0: number; // query t sits at position qPos0 + t; keys with pos > its position are masked
  scale: number; // usually 1 / sqrt(D)
  window: number | null; // keys with pos <= qPos - window are masked (Mistral convention)
  softcap?: number | null; // Gemma-2: scores become softcap · tanh(score / softcap) before the mask, e.g. 50; null/0 = none
  kvDtype: KvDtype;
  segments: KvSegment[];
  kvFinite?: boolean; // the caller promises the f16 rows hold no inf/NaN half (KvCache.finite): decode skips its in-loop check
}

/**
 * Matmul weight storage. The block types are GGML's: "q8_0" (src/dtypes/q8_0.ts) and the 4/5/6-bit
 * q4_0 … q6_k (src/dtypes/ggml_quants.ts); they take layout "nt" only, with Kin a multiple of the
 * block (32, or 256 for the k-quants).
 */
export type WeightDtype = "f32" | "f16" | "bf16" | "q8_0" | "q4_0" | "q4_1" | "q5_0" | "q5_1" | "q4_k" | "q5_k" | "q6_k";

/**
 * Where the operands' reduction axis (Kin) sits. Training's backward needs the two transposed forms:
 *   "nt" out[M, N] = x[M, Kin] · w[N, Kin]ᵀ   the PyTorch Linear layout (forward; the default)
 *   "nn" out[M, N] = x[M, Kin] · w[Kin, N]    e.g. dx = dy · W
 *   "tn" out[M, N] = x[Kin, M]ᵀ · w[Kin, N]   e.g. dW = dyᵀ · x
 * "nn" and "tn" take f32 weights only.
 */
export type MatmulLayout = "nt" | "nn" | "tn";

/** out[M, N] (+)= x · w in `layout` (+ bias[N]); by default the PyTorch Linear layout x[M, Kin] · w[N, Kin]ᵀ. */
export interface MatmulCall {
  x: number; // f32 [M, Kin] ("tn": [Kin, M])
  w: number; // wDtype [N, Kin] ("nn", "tn": [Kin, N])
  bias: number; // f32 [N], or 0 for none
  out: number; // f32 [M, N]
  M: number;
  N: number;
  Kin: number;
  wDtype: WeightDtype;
  layout?: MatmulLayout; // default "nt"
  accumulate?: boolean; // out += product instead of out = product ("nn" and "tn" only), e.g. gradient accumulation
  wFinite?: boolean; // the caller promises w holds no inf/NaN (e.g. checked at load): f16 decode skips its per-block check
  wRows4?: boolean; // an f16 or bf16 w ("nt", Kin % 8 == 0) is in the rows4 layout (src/kernels/rows4.ts), as every backend reads it
}

/**
 * Elementwise MLP activations, in place on x (f32 [n]):
 *   "swiglu" x[i] = silu(x[i])·y[i]      silu(a) = a·σ(a)                       (LLaMA family)
 *   "geglu"  x[i] = gelu(x[i])·y[i]      gelu = the tanh approximation          (Gemma)
 *   "gelu"   x[i] = gelu(x[i])                                                  (GPT-2)
 *   "relu"   x[i] = max(0, x[i])
 * y (f32 [n]) is read by the gated ops only (0 otherwise).
 */
export type ActivationOp = "swiglu" | "geglu" | "gelu" | "relu";

export interface ActivationCall {
  x: number; // f32 [n], overwritten with the result
  y: number; // f32 [n] for swiglu/geglu, else 0
  n: number;
  op: ActivationOp;
}

/**
 * The decoder's row steps between the matmuls, on arena rows (WASM backend only; the plain-TS
 * specification is src/models/blocks.ts rmsNorm, layerNorm, RopeTable.apply and addInto, and
 * src/dtypes/codecs.ts f32ToF16 / f32ToBf16 for "narrow"). Pointers are byte offsets.
 *   "rmsNorm"   out[n] = x[n] / sqrt(mean(x[n]²) + eps) · w   (· (1 + w) with plusOne), float64 sums
 *   "layerNorm" out[n] = (x[n] − μ) / sqrt(var + eps) · w + b
 *     both: x, out f32 [rows, width], w, b [width]; with `residual` (f32 [rows, width]) x += residual
 *     first (x is updated); out may be the residual.
 *   "rope"      x f32 [rows, heads, headDim] in place: the pair (i, i + D/2) of token t turns by the
 *               angle of table row pos[t] (cos, sin f32 [positions, D/2]; pos i32 [rows])
 *   "narrow"    KV rows to f16 / bf16 (round to nearest even): for head h < heads and row r < rows,
 *               `width` f32 at src + r·srcRowBytes + h·srcHeadBytes go to dst + h·dstHeadBytes + r·dstRowBytes,
 *               for k and for v. rowOp returns true when an f16 result is inf or NaN.
 */
export type RowOpCall =
  | { op: "rmsNorm" | "layerNorm"; out: number; x: number; w: number; b?: number; residual?: number; rows: number; width: number; eps: number; plusOne?: boolean }
  | { op: "rope"; x: number; cos: number; sin: number; pos: number; rows: number; heads: number; headDim: number }
  | {
      op: "narrow"; dtype: "f16" | "bf16"; kSrc: number; kDst: number; vSrc: number; vDst: number; heads: number; rows: number; width: number;
      srcRowBytes: number; srcHeadBytes: number; dstHeadBytes: number; dstRowBytes: number;
    };

/**
 * The training step's pointwise and row-wise ops (WASM backend only; src/train/ops.ts and optim.ts
 * are their plain-TS specification). Each op splits `n` rows (row ops, of width `c`) or values into
 * items of `chunk`; `ptrs` and `scalars` are the op's operands in the order assembly/train.ts lists.
 */
export type TrainOp = "xentForward" | "xentBackward" | "swigluForward" | "swigluBackward" | "add" | "sumsq" | "scale" | "adamw" | "rmsForward" | "rmsBackward" | "attnForward" | "attnBackward";

export interface TrainOpCall {
  op: TrainOp;
  n: number;
  c?: number; // row width (row ops)
  chunk: number; // rows or values per item
  ptrs: number[]; // byte offsets, at most 12
  scalars?: number[]; // f32 values, at most 8
  ints?: number[]; // u32 values, at most 8
}

export interface Kernels {
  readonly name: string; // "reference", "wasm-simd", "wasm-relaxed-simd"
  readonly threads: number;
  /** Loaders should store eligible f16 and bf16 matmul weights in the rows4 layout (MatmulCall.wRows4): this backend reads it faster. */
  readonly prefersRows4?: boolean;
  attention(call: AttentionCall): void;
  matmul(call: MatmulCall): void;
  /**
   * Several products of one x, each as matmul(call) would compute it, bit for bit (e.g. a decode
   * step's q, k and v projections). The WASM backend runs a decode batch (M < 4, layout "nt", one
   * wDtype) as one task, so the small ones share a dispatch; anything else runs call by call.
   */
  matmulMany(calls: MatmulCall[]): void;
  activation(call: ActivationCall): void;
  trainOp?(call: TrainOpCall): number; // WASM only; callers fall back to src/train/ops.ts
  rowOp?(call: RowOpCall): boolean; // WASM only; callers fall back to src/models/blocks.ts and dtypes/codecs.ts
}

/** A host array the trainer computes in: float32 (training) or float64 (finite-difference checks). */
export type Buf = Float32Array | Float64Array;

/** The three matrix products training needs (src/train/matmul.ts implements them; src/attention/train.ts uses them). */
export interface Matmuls {
  readonly name: string;
  nt(out: Buf, x: Buf, w: Buf, M: number, N: number, Kin: number): void;
  nn(out: Buf, dy: Buf, w: Buf, M: number, N: number, Kin: number): void;
  tnAcc(out: Buf, dy: Buf, x: Buf, M: number, N: number, Kin: number): void;
  /** A reusable scratch buffer of at least n elements that this backend can address (precision of `like`). */
  buffer(slot: string, n: number, like: Buf): Buf;
}
