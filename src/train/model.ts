// The training model: a LLaMA-style decoder whose forward pass saves what its backward pass needs.
// Parameters and gradients each live in one flat buffer (float32 in the kernel arena for training,
// float64 for finite-difference checks) and every tensor is a named view with its HF name, so a
// checkpoint is a walk over `tensors`.
//
// Legend: B batch, T positions, N = B·T rows, C hidden, L layers, H query heads, K kv heads,
// G = H/K, D head dim, F MLP width, V vocab.
import type { TrainAttentionShape } from "../attention/train.js";
import { specFromHfConfig } from "../config/hf.js";
import { llamaTable } from "../models/llama.js";
import { hfConfig } from "./checkpoint.js";
import type { Buf, Matmuls } from "./matmul.js";
import { embeddingBackward, embeddingForward, ropeBackward, ropeForward, ropeTable, type RopeTable } from "./ops.js";
import { tsTrainOps, type TrainOps } from "./trainops.js";
import { Rng } from "../random.js";

export interface TrainModelConfig {
  vocabSize: number; // V, e.g. 4096 (the BPE vocabulary)
  hiddenSize: number; // C, e.g. 256
  numLayers: number; // L, e.g. 4
  numHeads: number; // H, e.g. 8 (several query heads, else MHA and MQA coincide)
  numKvHeads: number; // K, e.g. 8 (MHA), 4, 2 (GQA), 1 (MQA)
  headDim: number; // D, e.g. 32 = C / H
  intermediateSize: number; // F, e.g. 688 (≈ 8/3·C, the LLaMA ratio)
  maxPositions: number; // the training context, e.g. 256
  ropeTheta: number; // e.g. 10000
  normEps: number; // e.g. 1e-5
}

/** The SwiGLU width when none is given: 8/3 · hidden rounded up to a multiple of 32 (LLaMA's rule). */
export function defaultIntermediateSize(hidden: number): number {
  return Math.ceil((8 * hidden) / 3 / 32) * 32;
}

export interface TensorInfo {
  name: string; // HF name, e.g. "model.layers.0.self_attn.k_proj.weight"
  shape: number[]; // PyTorch order, e.g. [K·D, C]
  offset: number; // in elements, into the flat buffer
  size: number;
  decay: boolean; // AdamW weight decay applies (matrices yes, norm gains no)
}

export type Allocator = (n: number, what: string) => Buf;
export const f64Allocator: Allocator = (n) => new Float64Array(n);
export const f32Allocator: Allocator = (n) => new Float32Array(n);

/**
 * The parameter table: name → shape, in the order HF LlamaForCausalLM lists them. It is the runtime's own
 * checkpoint table (models/llama.ts llamaTable) for the config this model saves, so what the trainer writes is
 * what the loader expects by construction; matrices take AdamW weight decay, norm gains do not.
 */
export function parameterTable(cfg: TrainModelConfig): TensorInfo[] {
  const { numHeads: H, numKvHeads: K, headDim: D } = cfg;
  if (H % K !== 0) throw new Error(`TrainModel: numKvHeads ${K} must divide numHeads ${H}`);
  if (D % 2 !== 0) throw new Error(`TrainModel: headDim ${D} must be even for RoPE`);
  let offset = 0;
  return llamaTable(specFromHfConfig(hfConfig(cfg, null), "trainer config")).map((row) => {
    const size = row.shape.reduce((a, b) => a * b, 1);
    const t = { name: row.source, shape: row.shape, offset, size, decay: row.store === "matmul" };
    offset += size;
    return t;
  });
}

interface LayerActs {
  h1: Buf; rstd1: Buf; q: Buf; k: Buf; v: Buf; probs: Buf; att: Buf; mid: Buf;
  h2: Buf; rstd2: Buf; gate: Buf; up: Buf; act: Buf; out: Buf;
}

interface Acts {
  B: number;
  T: number;
  x0: Buf; // [N, C] embeddings (the residual stream entering layer 0)
  layers: LayerActs[];
  hf: Buf; rstdf: Buf; logits: Buf; // logits [N, V] become probabilities, then dlogits
  // backward scratch
  dres: Buf; dmid: Buf; dh: Buf; tmpC: Buf; dact: Buf; dgate: Buf; dup: Buf; dq: Buf; dk: Buf; dv: Buf; datt: Buf;
  tokens: Int32Array; targets: Int32Array;
}

export class TrainModel {
  readonly tensors: TensorInfo[];
  readonly numParams: number;
  readonly params: Buf;
  readonly grads: Buf;
  private readonly byName = new Map<string, TensorInfo>();
  private acts: Acts | null = null;
  private rope: RopeTable | null = null;

  /** `ops` runs the pointwise and row-wise work (kernelTrainOps for WASM, default the plain-TS ops). */
  constructor(readonly cfg: TrainModelConfig, readonly mm: Matmuls, readonly alloc: Allocator, readonly ops: TrainOps = tsTrainOps(mm)) {
    this.tensors = parameterTable(cfg);
    this.numParams = this.tensors.reduce((a, t) => a + t.size, 0);
    this.params = alloc(this.numParams, "parameters");
    this.grads = alloc(this.numParams, "gradients");
    for (const t of this.tensors) this.byName.set(t.name, t);
  }

  /** Normal(0, 0.02) matrices, residual output projections scaled by 1/sqrt(2L) (GPT-2), norm gains 1. */
  init(seed: number): void {
    const rng = new Rng(seed);
    const resid = 0.02 / Math.sqrt(2 * this.cfg.numLayers);
    for (const t of this.tensors) {
      const v = this.p(t.name);
      if (t.shape.length === 1) v.fill(1);
      else {
        const std = /o_proj|down_proj/.test(t.name) ? resid : 0.02;
        for (let i = 0; i < t.size; i++) v[i] = rng.normal() * std;
      }
    }
  }

  info(name: string): TensorInfo {
    const t = this.byName.get(name);
    if (!t) throw new Error(`TrainModel: no tensor named ${name}`);
    return t;
  }
  /** Parameter view by HF name. */
  p(name: string): Buf {
    const t = this.info(name);
    return this.params.subarray(t.offset, t.offset + t.size);
  }
  /** Gradient view by HF name. */
  g(name: string): Buf {
    const t = this.info(name);
    return this.grads.subarray(t.offset, t.offset + t.size);
  }
  zeroGrad(): void {
    this.grads.fill(0);
  }

  private ensureActs(B: number, T: number): Acts {
    if (this.acts && this.acts.B === B && this.acts.T === T) return this.acts;
    const { hiddenSize: C, numLayers: L, numHeads: H, numKvHeads: K, headDim: D, intermediateSize: F, vocabSize: V } = this.cfg;
    if (T > this.cfg.maxPositions) throw new Error(`TrainModel: T ${T} exceeds maxPositions ${this.cfg.maxPositions}`);
    const N = B * T;
    const a = (n: number, what: string) => this.alloc(n, what);
    const layers: LayerActs[] = [];
    for (let l = 0; l < L; l++) {
      layers.push({
        h1: a(N * C, "h1"), rstd1: a(N, "rstd1"), q: a(N * H * D, "q"), k: a(N * K * D, "k"), v: a(N * K * D, "v"),
        probs: a(B * H * T * T, "probs"), att: a(N * H * D, "att"), mid: a(N * C, "mid"), h2: a(N * C, "h2"),
        rstd2: a(N, "rstd2"), gate: a(N * F, "gate"), up: a(N * F, "up"), act: a(N * F, "act"), out: a(N * C, "out"),
      });
    }
    this.acts = {
      B, T, x0: a(N * C, "x0"), layers, hf: a(N * C, "hf"), rstdf: a(N, "rstdf"), logits: a(N * V, "logits"),
      dres: a(N * C, "dres"), dmid: a(N * C, "dmid"), dh: a(N * C, "dh"), tmpC: a(N * C, "tmpC"),
      dact: a(N * F, "dact"), dgate: a(N * F, "dgate"), dup: a(N * F, "dup"),
      dq: a(N * H * D, "dq"), dk: a(N * K * D, "dk"), dv: a(N * K * D, "dv"), datt: a(N * H * D, "datt"),
      tokens: new Int32Array(N), targets: new Int32Array(N),
    };
    if (!this.rope || this.rope.T < T) this.rope = ropeTable(this.cfg.maxPositions, D, this.cfg.ropeTheta);
    return this.acts;
  }

  /**
   * Runs the model on tokens[B·T] and scores targets[B·T] (−100 = ignore). Returns the summed
   * cross-entropy in nats and the number of scored positions; saves activations for backward().
   */
  forward(tokens: Int32Array, targets: Int32Array, B: number, T: number): { sum: number; count: number } {
    const A = this.ensureActs(B, T);
    const { hiddenSize: C, numLayers: L, numHeads: H, numKvHeads: K, headDim: D, intermediateSize: F, vocabSize: V, normEps } = this.cfg;
    const N = B * T;
    for (let i = 0; i < N; i++) {
      if (tokens[i] < 0 || tokens[i] >= V) throw new Error(`TrainModel.forward: token ${tokens[i]} at ${i} is outside [0, ${V})`);
    }
    A.tokens.set(tokens.subarray(0, N));
    A.targets.set(targets.subarray(0, N));
    const mm = this.mm;
    const attn: TrainAttentionShape = { B, T, H, K, D, scale: 1 / Math.sqrt(D) };
    embeddingForward(A.x0, A.tokens, this.p("model.embed_tokens.weight"), N, C);
    let x = A.x0;
    for (let l = 0; l < L; l++) {
      const S = A.layers[l];
      const p = `model.layers.${l}.`;
      this.ops.rmsnormForward(S.h1, S.rstd1, x, this.p(`${p}input_layernorm.weight`), N, C, normEps);
      mm.nt(S.q, S.h1, this.p(`${p}self_attn.q_proj.weight`), N, H * D, C);
      mm.nt(S.k, S.h1, this.p(`${p}self_attn.k_proj.weight`), N, K * D, C);
      mm.nt(S.v, S.h1, this.p(`${p}self_attn.v_proj.weight`), N, K * D, C);
      ropeForward(S.q, this.rope!, B, T, H);
      ropeForward(S.k, this.rope!, B, T, K);
      this.ops.attentionForward(S.att, S.probs, S.q, S.k, S.v, attn);
      mm.nt(S.mid, S.att, this.p(`${p}self_attn.o_proj.weight`), N, C, H * D);
      this.ops.add(S.mid, x, N * C);
      this.ops.rmsnormForward(S.h2, S.rstd2, S.mid, this.p(`${p}post_attention_layernorm.weight`), N, C, normEps);
      mm.nt(S.gate, S.h2, this.p(`${p}mlp.gate_proj.weight`), N, F, C);
      mm.nt(S.up, S.h2, this.p(`${p}mlp.up_proj.weight`), N, F, C);
      this.ops.swigluForward(S.act, S.gate, S.up, N * F);
      mm.nt(S.out, S.act, this.p(`${p}mlp.down_proj.weight`), N, C, F);
      this.ops.add(S.out, S.mid, N * C);
      x = S.out;
    }
    this.ops.rmsnormForward(A.hf, A.rstdf, x, this.p("model.norm.weight"), N, C, normEps);
    mm.nt(A.logits, A.hf, this.p("lm_head.weight"), N, V, C);
    return this.ops.crossEntropyForward(A.logits, A.logits, A.targets, N, V);
  }

  /** Adds d(lossScale · summed loss)/dθ into grads; call after forward(). */
  backward(lossScale: number): void {
    const A = this.acts;
    if (!A) throw new Error("TrainModel.backward: call forward() first");
    const { B, T } = A;
    const { hiddenSize: C, numLayers: L, numHeads: H, numKvHeads: K, headDim: D, intermediateSize: F, vocabSize: V } = this.cfg;
    const N = B * T;
    const mm = this.mm;
    const attn: TrainAttentionShape = { B, T, H, K, D, scale: 1 / Math.sqrt(D) };
    const addInto = (dst: Buf, src: Buf, n: number) => this.ops.add(dst, src, n);
    // undoes: logits = hf · lm_headᵀ; loss = CE(logits)
    this.ops.crossEntropyBackward(A.logits, A.logits, A.targets, N, V, lossScale);
    mm.tnAcc(this.g("lm_head.weight"), A.logits, A.hf, N, V, C);
    mm.nn(A.dh, A.logits, this.p("lm_head.weight"), N, V, C);
    const dres = A.dres;
    const dmid = A.dmid;
    dres.fill(0, 0, N * C);
    const xL = L > 0 ? A.layers[L - 1].out : A.x0;
    this.ops.rmsnormBackward(dres, this.g("model.norm.weight"), A.dh, xL, this.p("model.norm.weight"), A.rstdf, N, C);
    for (let l = L - 1; l >= 0; l--) {
      const S = A.layers[l];
      const p = `model.layers.${l}.`;
      const xIn = l > 0 ? A.layers[l - 1].out : A.x0;
      // undoes: out = mid + act · down_projᵀ
      dmid.set(dres.subarray(0, N * C));
      mm.tnAcc(this.g(`${p}mlp.down_proj.weight`), dres, S.act, N, C, F);
      mm.nn(A.dact, dres, this.p(`${p}mlp.down_proj.weight`), N, C, F);
      this.ops.swigluBackward(A.dgate, A.dup, A.dact, S.gate, S.up, N * F);
      // undoes: gate = h2 · gate_projᵀ; up = h2 · up_projᵀ
      mm.tnAcc(this.g(`${p}mlp.gate_proj.weight`), A.dgate, S.h2, N, F, C);
      mm.tnAcc(this.g(`${p}mlp.up_proj.weight`), A.dup, S.h2, N, F, C);
      mm.nn(A.dh, A.dgate, this.p(`${p}mlp.gate_proj.weight`), N, F, C);
      mm.nn(A.tmpC, A.dup, this.p(`${p}mlp.up_proj.weight`), N, F, C);
      addInto(A.dh, A.tmpC, N * C);
      this.ops.rmsnormBackward(dmid, this.g(`${p}post_attention_layernorm.weight`), A.dh, S.mid, this.p(`${p}post_attention_layernorm.weight`), S.rstd2, N, C);
      // undoes: mid = x + att · o_projᵀ
      dres.set(dmid.subarray(0, N * C));
      mm.tnAcc(this.g(`${p}self_attn.o_proj.weight`), dmid, S.att, N, C, H * D);
      mm.nn(A.datt, dmid, this.p(`${p}self_attn.o_proj.weight`), N, C, H * D);
      this.ops.attentionBackward(A.dq, A.dk, A.dv, A.datt, S.att, S.probs, S.q, S.k, S.v, attn);
      ropeBackward(A.dq, this.rope!, B, T, H);
      ropeBackward(A.dk, this.rope!, B, T, K);
      // undoes: q = h1 · q_projᵀ; k = h1 · k_projᵀ; v = h1 · v_projᵀ
      mm.tnAcc(this.g(`${p}self_attn.q_proj.weight`), A.dq, S.h1, N, H * D, C);
      mm.tnAcc(this.g(`${p}self_attn.k_proj.weight`), A.dk, S.h1, N, K * D, C);
      mm.tnAcc(this.g(`${p}self_attn.v_proj.weight`), A.dv, S.h1, N, K * D, C);
      mm.nn(A.dh, A.dq, this.p(`${p}self_attn.q_proj.weight`), N, H * D, C);
      mm.nn(A.tmpC, A.dk, this.p(`${p}self_attn.k_proj.weight`), N, K * D, C);
      addInto(A.dh, A.tmpC, N * C);
      mm.nn(A.tmpC, A.dv, this.p(`${p}self_attn.v_proj.weight`), N, K * D, C);
      addInto(A.dh, A.tmpC, N * C);
      this.ops.rmsnormBackward(dres, this.g(`${p}input_layernorm.weight`), A.dh, xIn, this.p(`${p}input_layernorm.weight`), S.rstd1, N, C);
    }
    // undoes: x0 = embed_tokens[tokens]
    embeddingBackward(this.g("model.embed_tokens.weight"), A.tokens, dres, N, C);
  }

  /** Greedy-free logits access for evaluation: row n of the last forward's probabilities [N, V]. */
  lastProbs(): Buf {
    if (!this.acts) throw new Error("TrainModel.lastProbs: call forward() first");
    return this.acts.logits;
  }
}
