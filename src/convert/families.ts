// Where each family keeps its attention projections, and how a converted layer is written back.
// One table entry per layout: the LLaMA layout (llama, mistral, qwen2 with q/k/v biases, gemma:
// separate q/k/v/o Linear weights), GPT-2 (fused Conv1D c_attn [C, 3C], written out as gpt_bigcode
// with multi_query, whose weights are Linear) and gpt_bigcode (fused Linear c_attn; per-head
// [q_h | k_h | v_h] rows without multi_query, [q | k | v] with it).
//
// Legend: C hidden, H query heads, S KV heads, D head dim, L layers.
import { OptionError, UserError } from "../errors.js";
import type { ModelSpec } from "../config/types.js";
import type { AttnLayer, LayerShape } from "./pool.js";

export interface Tensor {
  shape: number[];
  data: Float32Array;
  dtype: string; // source dtype: F32, F16, BF16 (kept unless --dtype says otherwise)
}
export type Tensors = Map<string, Tensor>;

export interface Layout {
  /** Reads layer l's projections (float64, Linear layout). */
  read(t: Tensors, l: number): AttnLayer;
  /** Writes layer l with K KV heads into `out` (replacing the source's attention tensors). */
  write(out: Tensors, l: number, layer: AttnLayer, K: number): void;
  /** The converted config.json. */
  config(json: Record<string, unknown>, K: number): Record<string, unknown>;
  /** The KV-head counts this layout can be converted to (beyond "divides the source's"). */
  check(spec: ModelSpec, K: number, where: string): void;
  /** Renames / transposes the tensors outside attention (GPT-2 → gpt_bigcode), in place. */
  finish?(out: Tensors): void;
}

export const CONVERTIBLE = ["llama", "mistral", "qwen2", "gemma", "gpt2", "gpt_bigcode"];

const f64 = (a: Float32Array) => Float64Array.from(a);
const f32 = (a: Float64Array) => Float32Array.from(a);

function get(t: Tensors, name: string, shape: number[]): Tensor {
  const x = t.get(name);
  if (!x) throw new UserError(`checkpoint: missing tensor ${name} (expected shape [${shape}])`);
  if (x.shape.join(",") !== shape.join(",")) throw new UserError(`checkpoint: ${name} has shape [${x.shape}], expected [${shape}] from config.json`);
  return x;
}

/** Rows [r0, r1) of a row-major [R, cols] matrix. */
function rows(a: Float32Array | Float64Array, cols: number, r0: number, r1: number): Float64Array {
  return Float64Array.from(a.subarray(r0 * cols, r1 * cols));
}
function transpose(a: Float32Array | Float64Array, R: number, Cc: number): Float64Array {
  const out = new Float64Array(R * Cc);
  for (let r = 0; r < R; r++) for (let c = 0; c < Cc; c++) out[c * R + r] = a[r * Cc + c];
  return out;
}
function concat(parts: Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function llamaLayout(spec: ModelSpec): Layout {
  const { hiddenSize: C, numHeads: H, numKvHeads: S, headDim: D } = spec;
  const p = (l: number) => `model.layers.${l}.self_attn.`;
  return {
    read(t, l) {
      const b = (n: string, size: number) => (spec.qkvBias ? f64(get(t, p(l) + n + "_proj.bias", [size]).data) : null);
      return {
        q: f64(get(t, p(l) + "q_proj.weight", [H * D, C]).data), qb: b("q", H * D),
        k: f64(get(t, p(l) + "k_proj.weight", [S * D, C]).data), kb: b("k", S * D),
        v: f64(get(t, p(l) + "v_proj.weight", [S * D, C]).data), vb: b("v", S * D),
        o: f64(get(t, p(l) + "o_proj.weight", [C, H * D]).data),
      };
    },
    write(out, l, x, K) {
      const dt = out.get(p(l) + "k_proj.weight")!.dtype;
      const put = (n: string, shape: number[], data: Float64Array | null) => data && out.set(p(l) + n, { shape, data: f32(data), dtype: dt });
      put("q_proj.weight", [H * D, C], x.q);
      put("k_proj.weight", [K * D, C], x.k);
      put("v_proj.weight", [K * D, C], x.v);
      put("o_proj.weight", [C, H * D], x.o);
      put("q_proj.bias", [H * D], x.qb);
      put("k_proj.bias", [K * D], x.kb);
      put("v_proj.bias", [K * D], x.vb);
    },
    config: (json, K) => ({ ...json, num_key_value_heads: K }),
    check() {},
  };
}

/** GPT-2 → gpt_bigcode (multi_query): every Conv1D [in, out] becomes a Linear [out, in]. */
function gpt2Layout(spec: ModelSpec): Layout {
  const { hiddenSize: C, numHeads: H, headDim: D, numLayers: L } = spec;
  const p = (l: number) => `transformer.h.${l}.attn.`;
  return {
    read(t, l) {
      const w = transpose(get(t, p(l) + "c_attn.weight", [C, 3 * C]).data, C, 3 * C); // [3C, C]
      const b = f64(get(t, p(l) + "c_attn.bias", [3 * C]).data);
      return {
        q: rows(w, C, 0, C), qb: b.slice(0, C), k: rows(w, C, C, 2 * C), kb: b.slice(C, 2 * C), v: rows(w, C, 2 * C, 3 * C), vb: b.slice(2 * C, 3 * C),
        o: transpose(get(t, p(l) + "c_proj.weight", [C, C]).data, C, C),
      };
    },
    write(out, l, x, K) {
      const dt = out.get(p(l) + "c_attn.weight")!.dtype;
      const fused = C + 2 * K * D;
      out.set(p(l) + "c_attn.weight", { shape: [fused, C], data: f32(concat([x.q, x.k, x.v])), dtype: dt });
      out.set(p(l) + "c_attn.bias", { shape: [fused], data: f32(concat([x.qb!, x.kb!, x.vb!])), dtype: dt });
      out.set(p(l) + "c_proj.weight", { shape: [C, C], data: f32(x.o), dtype: dt });
    },
    config(json, K) {
      const { architectures: _a, model_type: _m, n_ctx: _n, ...rest } = json;
      return { ...rest, architectures: ["GPTBigCodeForCausalLM"], model_type: "gpt_bigcode", multi_query: K === 1, n_inner: spec.mlp.intermediateSize, activation_function: json.activation_function ?? "gelu_new" };
    },
    check(s, K, where) {
      if (K !== 1) throw new OptionError("kvHeads", `${where}: kvHeads ${K}: a GPT-2 model converts to gpt_bigcode with multi_query (1 KV head); HF's gpt_bigcode has no other KV-head counts below ${s.numHeads}`);
    },
    finish(out) {
      // The MLP's Conv1D weights become Linear; GPT-2's causal-mask buffers are not weights.
      for (let l = 0; l < L; l++) {
        for (const [n, R, Cc] of [["mlp.c_fc.weight", C, spec.mlp.intermediateSize], ["mlp.c_proj.weight", spec.mlp.intermediateSize, C]] as const) {
          const name = `transformer.h.${l}.${n}`;
          const x = get(out, name, [R, Cc]);
          out.set(name, { shape: [Cc, R], data: f32(transpose(x.data, R, Cc)), dtype: x.dtype });
        }
        out.delete(`transformer.h.${l}.attn.bias`);
        out.delete(`transformer.h.${l}.attn.masked_bias`);
      }
    },
  };
}

function gptBigcodeLayout(spec: ModelSpec): Layout {
  const { hiddenSize: C, numHeads: H, numKvHeads: S, headDim: D } = spec;
  const p = (l: number) => `transformer.h.${l}.attn.`;
  const fusedIn = S === 1 ? C + 2 * D : 3 * C;
  return {
    read(t, l) {
      const w = get(t, p(l) + "c_attn.weight", [fusedIn, C]).data;
      const b = get(t, p(l) + "c_attn.bias", [fusedIn]).data;
      const o = f64(get(t, p(l) + "c_proj.weight", [C, C]).data);
      if (S === 1) return { q: rows(w, C, 0, C), qb: Float64Array.from(b.subarray(0, C)), k: rows(w, C, C, C + D), kb: Float64Array.from(b.subarray(C, C + D)), v: rows(w, C, C + D, C + 2 * D), vb: Float64Array.from(b.subarray(C + D, C + 2 * D)), o };
      // Without multi_query, c_attn rows are [H, 3, D]: head h's q, k, v slices.
      const part = (i: number) => concat(Array.from({ length: H }, (_, h) => rows(w, C, h * 3 * D + i * D, h * 3 * D + (i + 1) * D)));
      const partB = (i: number) => concat(Array.from({ length: H }, (_, h) => Float64Array.from(b.subarray(h * 3 * D + i * D, h * 3 * D + (i + 1) * D))));
      return { q: part(0), qb: partB(0), k: part(1), kb: partB(1), v: part(2), vb: partB(2), o };
    },
    write(out, l, x, K) {
      const dt = out.get(p(l) + "c_attn.weight")!.dtype;
      if (K !== 1) throw new Error("gpt_bigcode writes multi_query only");
      out.set(p(l) + "c_attn.weight", { shape: [C + 2 * D, C], data: f32(concat([x.q, x.k, x.v])), dtype: dt });
      out.set(p(l) + "c_attn.bias", { shape: [C + 2 * D], data: f32(concat([x.qb!, x.kb!, x.vb!])), dtype: dt });
      out.set(p(l) + "c_proj.weight", { shape: [C, C], data: f32(x.o), dtype: dt });
    },
    config: (json, K) => ({ ...json, multi_query: K === 1 }),
    check(s, K, where) {
      if (K !== 1) throw new OptionError("kvHeads", `${where}: kvHeads ${K}: gpt_bigcode has 1 KV head (multi_query true) or num_attention_heads (false); convert to 1 KV head`);
    },
  };
}

/** The layout of a model family, or a one-line refusal naming what is supported. */
export function layoutOf(spec: ModelSpec, where: string): Layout {
  if (spec.mla) throw new UserError(`${where}: multi-head latent attention has no per-head K/V projections to pool`);
  switch (spec.family) {
    case "llama":
    case "mistral":
    case "qwen2":
    case "gemma":
      return llamaLayout(spec);
    case "gpt2":
      return gpt2Layout(spec);
    case "gpt_bigcode":
      return gptBigcodeLayout(spec);
    default:
      throw new UserError(`${where}: model_type "${spec.family}": mqa convert knows the K/V projections of ${CONVERTIBLE.join(", ")}`);
  }
}

/** The layer shape of a spec (the runtime already refuses layers of different shapes). */
export function layerShape(spec: ModelSpec): LayerShape {
  return { C: spec.hiddenSize, H: spec.numHeads, S: spec.numKvHeads, D: spec.headDim };
}
