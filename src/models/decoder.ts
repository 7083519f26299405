// The decoder forward shared by every family: embeddings → L × (norm → attention → residual →
// norm → MLP → residual) → final norm → LM head. A family file supplies only its weight table and
// a few switches (DecoderOptions); everything else is this one function.
//
// Projections go through Kernels.matmul and attention through the Attention API (so the WASM fast
// path is used when the kernels are WASM); norms, RoPE and activations are plain TS on arena views.
//
// Legend: B sequences, N = Σ T_b packed tokens, E hidden, H heads, K kv heads, D head dim,
//         F MLP width, V vocab, R logit rows (B for "last", N for "all").
import { UserError } from "../errors.js";
import { Attention, type AttentionProbs } from "../attention/index.js";
import type { Arena } from "../kernels/memory.js";
import type { Kernels, MatmulCall } from "../kernels/types.js";
import { createKvCache, type KvCache } from "../kvcache/index.js";
import type { KvDtype } from "../kernels/types.js";
import type { ModelSpec } from "../config/types.js";
import { addInto, geluErf, layerNorm, RopeTable, rmsNorm, ropeInvFreq } from "./blocks.js";
import { weightBytes, weightRow, type Weight } from "./weights.js";

/** What differs between families beyond the weight table. */
export interface DecoderOptions {
  norm: "rmsnorm" | "layernorm";
  normPlusOne: boolean; // Gemma: y · (1 + w)
  embedScale: number; // Gemma: sqrt(E), else 1
  learnedPositions: boolean; // GPT-2, gpt_bigcode: "pos" weight [P, E], no RoPE
  mlp: "swiglu" | "geglu" | "gelu";
  qkNorm?: boolean; // Qwen3: RMSNorm over D on every q and k head (weights "q_norm.w", "k_norm.w" [D]) before RoPE
  postNorms?: boolean; // Gemma-2/3: RMSNorm on the attention and MLP outputs before each residual add ("post_attn_norm.w", "post_mlp_norm.w")
  // Falcon: attention and MLP read the same residual x and both outputs are added to it; "oneNorm": the MLP reads
  // the attention's normed input (attn_norm), "twoNorms": its own norm of x (mlp_norm). Absent = sequential.
  parallel?: "oneNorm" | "twoNorms";
  geluExact?: boolean; // mlp "gelu" with the exact erf GELU (Falcon's nn.GELU) instead of the tanh form
}

export interface CacheOptions {
  kind?: "contiguous" | "paged"; // paged for batched generation
  dtype?: KvDtype; // default f32
  maxTokens?: number; // per sequence, sizes the paged pool
  maxSequences?: number; // paged pool: maxSequences × maxTokens tokens
  prefixCache?: boolean; // paged: index full prompt blocks for reuse (PagedKvCache.attachPrefix)
}

// Row steps (norms, RoPE, residual adds) of at least this many floats go to the kernel threads;
// smaller ones (a decode step's 1 × hidden rows) stay in TypeScript, where they cost less than a
// dispatch: the 110M bench model (MHA, f16, 2 threads) decoded 84-90 tok/s with every step
// dispatched against 91-95 before (2026-12-07, AMD EPYC).
const ROW_KERNEL_MIN_VALUES = 8192;

/**
 * A loaded model: weights in the arena, one Attention per layer, and forward().
 * @example
 * const cache = model.createCache({});
 * const seq = cache.addSequence();
 * const logits = model.forward(cache, [seq], [[1, 2, 3]], "last"); // [1, V]
 */
export class DecoderModel {
  readonly attention: Attention[]; // [L]
  readonly rope: RopeTable | null;
  readonly localRope: RopeTable | null; // Gemma-3's sliding layers: rope_local_base_freq, no scaling (spec.ropeLocalTheta)
  readonly maxContext: number; // positions the model accepts (max_position_embeddings, or Phi-3's unapplied sliding_window)
  readonly contextField: string; // the config field maxContext comes from, for messages
  private scratch = { ptr: 0, tokens: 0, rows: 0 };
  /** Row steps (and KV narrowing) of at least this many floats use the kernels; 0 sends all (the WASM fixture test does). */
  rowKernelMinValues = ROW_KERNEL_MIN_VALUES;
  /**
   * Called, when set, with each layer's pre-RoPE keys and values [N, K·D] of every forward (views
   * into the arena, valid during the call): what mqa convert calibrates on. Unset, it costs nothing.
   */
  observer: ((layer: number, k: Float32Array, v: Float32Array, N: number) => void) | null = null;
  /**
   * When set, the attention probabilities of chosen layers and query heads of every forward:
   * heads.get(l) lists layer l's heads, and onProbs(l, probs) receives them after that layer's
   * attention (what mqa attention draws). Looked up once per layer; unset, it costs nothing.
   */
  probsRequest: { heads: ReadonlyMap<number, number[]>; onProbs: (layer: number, probs: AttentionProbs[]) => void } | null = null;

  constructor(
    readonly spec: ModelSpec,
    readonly weights: Map<string, Weight>,
    readonly options: DecoderOptions,
    readonly arena: Arena,
    readonly kernels: Kernels,
  ) {
    // Gemma-2/3 scale scores by query_pre_attn_scalar^-1/2 instead of head_dim^-1/2, and Gemma-2 soft-caps them.
    const scale = spec.queryPreAttnScalar ? 1 / Math.sqrt(spec.queryPreAttnScalar) : undefined;
    const softcap = spec.attnLogitSoftcapping ?? null;
    this.attention = spec.layers.map(
      (l) => new Attention({ numHeads: l.numHeads, numKvHeads: l.numKvHeads, headDim: l.headDim, window: l.window, hiddenSize: spec.hiddenSize, scale, softcap }, { arena, kernels }),
    );
    // With row kernels the RoPE tables live in the arena, where Kernels.rowOp "rope" reads them.
    const ropeArena = kernels.rowOp ? arena : undefined;
    this.rope = options.learnedPositions ? null : new RopeTable(ropeInvFreq(spec.headDim, spec.ropeTheta, spec.ropeScaling), ropeArena);
    this.localRope = !options.learnedPositions && spec.ropeLocalTheta ? new RopeTable(ropeInvFreq(spec.headDim, spec.ropeLocalTheta, null), ropeArena) : null;
    // Phi-3's unapplied sliding_window (see specFromHfConfig): beyond it transformers and llama.cpp differ.
    this.maxContext = Math.min(spec.maxPositions, spec.unappliedWindow ?? Infinity);
    this.contextField = this.maxContext < spec.maxPositions ? "sliding_window, which this runtime does not apply: longer runs would differ from transformers" : "max_position_embeddings";
  }

  /** Bytes of the weights held in the arena. */
  weightBytes(): number {
    return weightBytes(this.weights);
  }

  /** A KV cache for this model: a window cache when every layer slides by the same window. */
  createCache(opts: CacheOptions = {}): KvCache {
    const { numLayers, numKvHeads, headDim } = this.spec;
    const dtype = opts.dtype ?? "f32";
    const windows = new Set(this.spec.layers.map((l) => l.window));
    const w = windows.size === 1 ? [...windows][0] : null;
    const base = { numLayers, numKvHeads, headDim, dtype, kernels: this.kernels, kernelMinValues: this.rowKernelMinValues };
    if (w !== null && opts.kind !== "paged") return createKvCache(this.arena, { kind: "window", ...base, window: w });
    if (opts.kind === "paged") {
      const blockSize = 16;
      const perSeq = Math.ceil(Math.min(opts.maxTokens ?? this.maxContext, this.maxContext) / blockSize);
      return createKvCache(this.arena, { kind: "paged", ...base, blockSize, numBlocks: perSeq * (opts.maxSequences ?? 1) * numLayers, prefixCache: opts.prefixCache });
    }
    return createKvCache(this.arena, { kind: "contiguous", ...base, initialTokens: Math.min(opts.maxTokens ?? 64, this.maxContext) });
  }

  /**
   * Runs tokens[b] (new tokens of cache sequence seqs[b]) through the model, appending their K/V
   * to the cache, and returns logits: [B, V] for the last token of each sequence ("last"), or
   * [N, V] for every token ("all"). A fresh array, not an arena view.
   */
  forward(cache: KvCache, seqs: number[], tokens: number[][], logits: "last" | "all" = "last"): Float32Array {
    const { hiddenSize: E, numHeads: H, numKvHeads: K, headDim: D, vocabSize: V } = this.spec;
    const F = this.spec.mlp.intermediateSize;
    const lengths = tokens.map((t) => t.length);
    const N = lengths.reduce((a, b) => a + b, 0);
    const R = logits === "all" ? N : seqs.length;
    const pos = new Int32Array(N);
    const ids = new Int32Array(N);
    let n = 0;
    seqs.forEach((seq, b) => {
      const p0 = cache.length(seq, 0);
      if (p0 + lengths[b] > this.maxContext) {
        throw new UserError(`sequence of ${p0 + lengths[b]} tokens exceeds the model's context of ${this.maxContext} tokens (${this.contextField})`);
      }
      tokens[b].forEach((id, t) => {
        if (!Number.isInteger(id) || id < 0 || id >= V) throw new UserError(`token id ${id} is outside the vocabulary [0, ${V})`);
        pos[n] = p0 + t;
        ids[n++] = id;
      });
    });
    // x and h live through the whole forward; the attention buffers (q, k, v, a) and the MLP
    // buffers (g, u) are never live at the same time, so they share one block (see buffers()).
    const { ptrs: s, mlpRows: rows } = this.buffers(N, R);
    const f = (name: string, rows: number, width: number) => this.arena.f32(s[name], rows * width);
    this.embed(ids, pos, f("x", N, E));
    new Int32Array(this.arena.memory.buffer, s.pos, N).set(pos);
    let maxPos = 0;
    for (const q of pos) maxPos = Math.max(maxPos, q);
    this.rope?.ensure(maxPos + 1);
    this.localRope?.ensure(maxPos + 1);
    const wt = (key: string) => this.weights.get(key);
    const parallel = this.options.parallel;
    // Each block's output waits in h until the next norm adds it to x (Kernels.rowOp fuses the add
    // into the norm): after the attention of a sequential block, and at the end of every layer.
    for (let l = 0; l < this.spec.numLayers; l++) {
      const p = `layers.${l}.`;
      this.norm(p + "attn_norm", s.x, s.h, N, l > 0 ? s.h : 0); // x += the previous layer's MLP output first
      // Parallel blocks: the MLP's input (from this layer's x, before the attention is added) waits in m.
      if (parallel === "oneNorm") f("m", N, E).set(f("h", N, E));
      else if (parallel === "twoNorms") this.norm(p + "mlp_norm", s.x, s.m, N);
      this.mmMany(s.h, [[p + "q", s.q], [p + "k", s.k], [p + "v", s.v]], N); // one task in decode
      if (this.options.qkNorm) {
        // Rows of D: every head of every token is normalised with the one [D] weight (in place).
        // Gemma-3's q/k norms multiply by (1 + w) like its other norms.
        this.norm(p + "q_norm", s.q, s.q, N * H, 0, D, "rmsnorm");
        this.norm(p + "k_norm", s.k, s.k, N * K, 0, D, "rmsnorm");
      }
      this.observer?.(l, f("k", N, K * D), f("v", N, K * D), N);
      const rope = this.localRope && this.spec.layers[l].window !== null ? this.localRope : this.rope;
      if (rope) {
        this.rotate(rope, s.q, H, pos, s.pos);
        this.rotate(rope, s.k, K, pos, s.pos);
      }
      const probsHeads = this.probsRequest?.heads.get(l);
      const { probs } = this.attention[l].forward({ cache, layer: l, seqs, lengths, q: f("q", N, H * D), k: f("k", N, K * D), v: f("v", N, K * D), out: f("a", N, H * D), probsHeads });
      if (probsHeads) this.probsRequest!.onProbs(l, probs);
      this.mm(s.a, p + "o", s.h, N); // h is free once q, k, v are computed
      if (this.options.postNorms) this.norm(p + "post_attn_norm", s.h, s.h, N); // in place: rows are read before written
      if (!parallel) this.norm(p + "mlp_norm", s.x, s.h, N, s.h); // x += h, h = norm(x)
      else this.addRows(s.x, s.h, N * E);
      const mlpIn = parallel ? s.m : s.h; // the MLP reads rows of mlpIn and writes the same rows of h
      // The MLP runs over blocks of rows so g and u fit in the attention buffers' space; each
      // block's output overwrites its own rows of h, which later blocks no longer read.
      for (let r0 = 0; r0 < N; r0 += rows) {
        const m = Math.min(rows, N - r0);
        const hr = s.h + r0 * E * 4;
        if (this.options.mlp === "gelu") {
          this.mm(mlpIn + r0 * E * 4, p + "fc", s.g, m);
          if (this.options.geluExact) geluErf(this.arena.f32(s.g, m * F));
          else this.kernels.activation({ x: s.g, y: 0, n: m * F, op: "gelu" });
          this.mm(s.g, p + "proj", hr, m);
        } else {
          this.mmMany(mlpIn + r0 * E * 4, [[p + "gate", s.g], [p + "up", s.u]], m);
          this.kernels.activation({ x: s.g, y: s.u, n: m * F, op: this.options.mlp });
          this.mm(s.g, p + "down", hr, m); // h rows are free once gate and up have read them
        }
      }
      if (this.options.postNorms) this.norm(p + "post_mlp_norm", s.h, s.h, N);
    }
    if (this.spec.numLayers > 0) this.addRows(s.x, s.h, N * E); // the last layer's MLP output
    // Final norm and LM head on the rows we need (last token of each sequence, or all).
    const x = f("x", N, E);
    const h = f("h", R, E);
    if (logits === "all") h.set(x);
    else {
      let end = 0;
      lengths.forEach((T, b) => {
        end += T;
        if (T === 0) throw new RangeError(`forward: sequence ${seqs[b]} has no new tokens; "last" logits need at least one`);
        h.set(x.subarray((end - 1) * E, end * E), b * E);
      });
    }
    this.norm("final_norm", s.h, s.t, R);
    const head = wt("lm_head") ? "lm_head" : "embed";
    this.mm(s.t, head, s.logits, R);
    const out = f("logits", R, V).slice();
    const cap = this.spec.finalLogitSoftcapping;
    if (cap) for (let i = 0; i < out.length; i++) out[i] = cap * Math.tanh(out[i] / cap); // Gemma-2: logits ← c · tanh(logits / c)
    return out;
  }

  /**
   * Prefill in chunks of at most `chunk` tokens per sequence per call (llama.cpp's n_batch), so
   * activations stay O(chunk) instead of O(prompt) for long prompts; attention is causal across
   * calls, so the result equals one big forward. Returns the last-token logits [B, V].
   */
  prefill(cache: KvCache, seqs: number[], tokens: number[][], chunk = 512): Float32Array {
    const V = this.spec.vocabSize;
    const out = new Float32Array(seqs.length * V);
    const longest = Math.max(...tokens.map((t) => t.length));
    for (let start = 0; start < longest; start += chunk) {
      const live = seqs.map((_, b) => b).filter((b) => tokens[b].length > start);
      const logits = this.forward(cache, live.map((b) => seqs[b]), live.map((b) => tokens[b].slice(start, start + chunk)), "last");
      live.forEach((b, i) => out.set(logits.subarray(i * V, (i + 1) * V), b * V));
    }
    return out;
  }

  /** x[n] = embed[ids[n]] · embedScale (+ pos[pos[n]] for learned positions). */
  private embed(ids: Int32Array, pos: Int32Array, x: Float32Array): void {
    const E = this.spec.hiddenSize;
    const emb = this.weights.get("embed")!;
    const row = new Float32Array(E);
    const posW = this.options.learnedPositions ? this.f32w("pos") : null;
    const scale = this.options.embedScale;
    for (let n = 0; n < ids.length; n++) {
      weightRow(this.arena, emb, ids[n], row);
      const o = n * E;
      for (let i = 0; i < E; i++) x[o + i] = row[i] * scale;
      if (posW) for (let i = 0; i < E; i++) x[o + i] += posW[pos[n] * E + i];
    }
  }

  /**
   * out = norm(x) with the weights under `prefix` (x += residual first when given), over `rows`
   * rows of `width` (default the hidden size); arena pointers. Kernels.rowOp when the backend has
   * it, else blocks.ts (the specification).
   */
  private norm(prefix: string, x: number, out: number, rows: number, residual = 0, width = this.spec.hiddenSize, kind = this.options.norm): void {
    const eps = this.spec.normEps, plusOne = this.options.normPlusOne;
    const rms = kind === "rmsnorm";
    if (this.kernels.rowOp && rows * width >= this.rowKernelMinValues) {
      const w = this.weightPtr(prefix + ".w", width), b = rms ? 0 : this.weightPtr(prefix + ".b", width);
      this.kernels.rowOp({ op: rms ? "rmsNorm" : "layerNorm", out, x, w, b, residual, rows, width, eps, plusOne });
      return;
    }
    const xs = this.arena.f32(x, rows * width), os = this.arena.f32(out, rows * width);
    if (residual) addInto(xs, this.arena.f32(residual, rows * width));
    if (rms) rmsNorm(xs, this.f32w(prefix + ".w"), os, width, eps, plusOne);
    else layerNorm(xs, this.f32w(prefix + ".w"), this.f32w(prefix + ".b"), os, width, eps);
  }

  /** RoPE in place on x [N, heads, D] (arena pointer), token n at position pos[n] (also at posPtr in the arena). */
  private rotate(rope: RopeTable, x: number, heads: number, pos: Int32Array, posPtr: number): void {
    const D = this.spec.headDim, N = pos.length;
    if (this.kernels.rowOp && N * heads * D >= this.rowKernelMinValues) this.kernels.rowOp({ op: "rope", x, cos: rope.cosPtr, sin: rope.sinPtr, pos: posPtr, rows: N, heads, headDim: D });
    else rope.apply(this.arena.f32(x, N * heads * D), heads, D, pos);
  }

  /** x += y over n floats (arena pointers): the WASM add when the backend has it, else blocks.ts addInto. */
  private addRows(x: number, y: number, n: number): void {
    if (this.kernels.trainOp && n >= this.rowKernelMinValues) this.kernels.trainOp({ op: "add", n, chunk: 16384, ptrs: [x, y] });
    else addInto(this.arena.f32(x, n), this.arena.f32(y, n));
  }

  private weightPtr(key: string, n: number): number {
    const w = this.weights.get(key);
    if (!w || w.dtype !== "f32" || w.shape.reduce((a, b) => a * b, 1) !== n) throw new Error(`DecoderModel: no f32 weight "${key}" of ${n} values`);
    return w.ptr;
  }

  /** out[M, N] = x[M, Kin] · W[N, Kin]ᵀ (+ bias) through the kernels. */
  private mm(x: number, key: string, out: number, M: number): void {
    this.kernels.matmul(this.mmCall(x, key, out, M));
  }

  /** Several projections of the same x rows (see Kernels.matmulMany). */
  private mmMany(x: number, parts: [key: string, out: number][], M: number): void {
    this.kernels.matmulMany(parts.map(([key, out]) => this.mmCall(x, key, out, M)));
  }

  private mmCall(x: number, key: string, out: number, M: number): MatmulCall {
    const w = this.weights.get(key);
    if (!w) throw new Error(`DecoderModel: no weight "${key}"`);
    const bias = this.weights.get(key + ".b");
    const [N, Kin] = w.shape;
    return { x, w: w.ptr, bias: bias ? bias.ptr : 0, out, M, N, Kin, wDtype: w.dtype, wFinite: w.finite, wRows4: w.rows4 };
  }

  private f32w(key: string): Float32Array {
    const w = this.weights.get(key);
    if (!w) throw new Error(`DecoderModel: no weight "${key}"`);
    return this.arena.f32(w.ptr, w.shape.reduce((a, b) => a * b, 1));
  }

  /**
   * Byte offsets of the activation buffers for N tokens and R logit rows, inside one arena block
   * that is reallocated only when a call needs more. Layout (each piece 64-byte aligned):
   *   x [N, E] residual, h [N, E] normed input / projection output, then one shared block used as
   *   q [N, H·D], k [N, K·D], v [N, K·D], a [N, H·D] during attention, as g [M, F], u [M, F]
   *   during the MLP (M rows at a time, see mlpRows), and as t [R, E] for the final norm; then
   *   logits [R, V]. Prefill activations are (2E + 2HD + 2KD) floats per token instead of the sum
   *   of every width: 16.5 → 7 MiB for a 511-token chunk of a 768-wide, F = 2048 model.
   */
  private buffers(N: number, R: number): { ptrs: Record<string, number>; mlpRows: number } {
    const { hiddenSize: E, numHeads: H, numKvHeads: K, headDim: D, vocabSize: V } = this.spec;
    const F = this.spec.mlp.intermediateSize;
    const piece = (rows: number, width: number) => Math.ceil((rows * width * 4) / 64) * 64;
    const layout = (tokens: number, rows: number, mlpRows: number) => {
      // m [N, E]: a parallel block's MLP input (Falcon), only allocated for those models.
      const o: Record<string, number> = { x: 0, h: piece(tokens, E), m: 2 * piece(tokens, E) };
      const work = (this.options.parallel ? 3 : 2) * piece(tokens, E);
      o.q = work;
      o.k = o.q + piece(tokens, H * D);
      o.v = o.k + piece(tokens, K * D);
      o.a = o.v + piece(tokens, K * D);
      o.g = work;
      o.u = o.g + piece(mlpRows, F);
      o.t = work;
      const workEnd = Math.max(o.a + piece(tokens, H * D), o.u + piece(mlpRows, F), o.t + piece(rows, E));
      o.logits = workEnd;
      o.pos = workEnd + piece(rows, V); // i32 [N]: positions, for the kernels' RoPE
      return { offsets: o, bytes: o.pos + piece(tokens, 1) };
    };
    if (N > this.scratch.tokens || R > this.scratch.rows) {
      if (this.scratch.ptr) this.arena.release(this.scratch.ptr);
      const tokens = Math.max(N, this.scratch.tokens);
      const rows = Math.max(R, this.scratch.rows);
      const ptr = this.arena.alloc(layout(tokens, rows, this.mlpRows(tokens)).bytes, `activations for ${tokens} tokens`);
      this.scratch = { ptr, tokens, rows };
    }
    // Offsets for this call's N (not the block's capacity), so q, k, v, a are packed for N rows;
    // the MLP takes as many rows at a time as the block's capacity allows.
    const mlpRows = Math.min(N, this.mlpRows(this.scratch.tokens));
    const { offsets } = layout(N, R, mlpRows);
    const ptrs: Record<string, number> = {};
    for (const [k, o] of Object.entries(offsets)) ptrs[k] = this.scratch.ptr + o;
    return { ptrs, mlpRows };
  }

  /**
   * MLP rows per block when the activation block holds `tokens` tokens: as many as fit g (and u)
   * in the attention buffers' 2HD + 2KD floats per token, but at least 16 so a short prompt is
   * not split into tiny matmuls. e.g. tokens = 511, HD = 768, KD = 256, F = 2048 (gated) → 255.
   */
  mlpRows(tokens: number): number {
    const { numHeads: H, numKvHeads: K, headDim: D } = this.spec;
    const F = this.spec.mlp.intermediateSize;
    const mlpWidth = this.options.mlp === "gelu" ? F : 2 * F;
    return Math.min(tokens, Math.max(16, Math.floor((tokens * (2 * H * D + 2 * K * D)) / mlpWidth)));
  }

  /** Frees the activation buffers and the attention scratch (weights stay). */
  dispose(): void {
    if (this.scratch.ptr) this.arena.release(this.scratch.ptr);
    this.scratch = { ptr: 0, tokens: 0, rows: 0 };
    for (const a of this.attention) a.dispose();
    this.rope?.dispose();
    this.localRope?.dispose();
  }
}
