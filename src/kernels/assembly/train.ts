// The training step's pointwise and row-wise work (AssemblyScript, f32x4), so that it runs on every
// thread instead of in TypeScript on the host: cross-entropy, SwiGLU, RMSNorm, residual adds, the
// gradient norm and AdamW. The plain-TS functions of src/train/ops.ts and optim.ts are the
// specification; test/train-kernels.test.ts holds these to them.
//
// An item is TR_CHUNK rows (row ops, width TR_C) or TR_CHUNK values (elementwise ops). Pointers are
// TR_P0.. and f32 scalars TR_F0.. (see layout.ts). Row ops keep their reductions inside one row, so
// items are independent; the two reductions across rows (the gradient's sum of squares, RMSNorm's
// weight gradient) write one partial result per item, which the host adds up in item order.
import * as L from "./layout";
import { exp2v, fma, hmax, hsum } from "./simd";

export const TR_XENT_FWD = 0;
export const TR_XENT_BWD = 1;
export const TR_SWIGLU_FWD = 2;
export const TR_SWIGLU_BWD = 3;
export const TR_ADD = 4;
export const TR_SUMSQ = 5;
export const TR_SCALE = 6;
export const TR_ADAMW = 7;
export const TR_RMS_FWD = 8;
export const TR_RMS_BWD = 9;
export const TR_ATTN_FWD = 10;
export const TR_ATTN_BWD = 11;

const LOG2E: f32 = 1.4426950408889634;

// @ts-ignore: decorator
@inline function ptr(ctl: usize, i: i32): usize {
  return <usize>load<u32>(ctl + L.CTL_ARGS + (<usize>(L.TR_P0 + i) << 2));
}
// @ts-ignore: decorator
@inline function f(ctl: usize, i: i32): f32 {
  return load<f32>(ctl + L.CTL_ARGS + (<usize>(L.TR_F0 + i) << 2));
}
// @ts-ignore: decorator
@inline function int(ctl: usize, i: i32): i32 {
  return load<i32>(ctl + L.CTL_ARGS + (<usize>(L.TR_I0 + i) << 2));
}
// @ts-ignore: decorator
@inline function word(ctl: usize, i: i32): i32 {
  return load<i32>(ctl + L.CTL_ARGS + (<usize>i << 2));
}

export function trainItem(ctl: usize, item: i32): void {
  const op = word(ctl, L.TR_OP), n = word(ctl, L.TR_N), chunk = word(ctl, L.TR_CHUNK);
  const i0 = item * chunk, i1 = min(n, i0 + chunk);
  if (op == TR_XENT_FWD) xentForward(ctl, i0, i1);
  else if (op == TR_XENT_BWD) xentBackward(ctl, i0, i1);
  else if (op == TR_SWIGLU_FWD) swigluForward(ctl, i0, i1);
  else if (op == TR_SWIGLU_BWD) swigluBackward(ctl, i0, i1);
  else if (op == TR_ADD) add(ctl, i0, i1);
  else if (op == TR_SUMSQ) sumsq(ctl, item, i0, i1);
  else if (op == TR_SCALE) scale(ctl, i0, i1);
  else if (op == TR_ADAMW) adamw(ctl, i0, i1);
  else if (op == TR_RMS_FWD) rmsForward(ctl, i0, i1);
  else if (op == TR_RMS_BWD) rmsBackward(ctl, item, i0, i1);
  else if (op == TR_ATTN_FWD) attnForward(ctl, item);
  else if (op == TR_ATTN_BWD) attnBackward(ctl, item);
}

/** σ(u) from t = 2^(−|u|·log2 e), kept accurate in both tails (as in activation.ts). */
// @ts-ignore: decorator
@inline function sigmoid(u: v128): v128 {
  const t = exp2v(f32x4.mul(f32x4.neg(f32x4.abs(u)), f32x4.splat(LOG2E)));
  const r = f32x4.div(f32x4.splat(1.0), f32x4.add(f32x4.splat(1.0), t));
  return v128.bitselect(r, f32x4.mul(t, r), f32x4.ge(u, f32x4.splat(0)));
}
// @ts-ignore: decorator
@inline function sigmoid1(u: f32): f32 {
  return f32x4.extract_lane(sigmoid(f32x4.splat(u)), 0);
}

/**
 * Rows [i0, i1) of logits [N, V] (P0) become softmax probabilities in place; P2[n] (f32) gets the
 * row's loss −log p[target] (P1, i32; < 0 = ignored, loss 0).
 */
function xentForward(ctl: usize, i0: i32, i1: i32): void {
  const V = word(ctl, L.TR_C), base = ptr(ctl, 0), targets = ptr(ctl, 1), loss = ptr(ctl, 2);
  const V4 = V & ~3;
  for (let n = i0; n < i1; n++) {
    const row = base + (<usize>n * <usize>V << 2);
    const y = load<i32>(targets + (<usize>n << 2));
    const ly: f32 = y >= 0 ? load<f32>(row + (<usize>y << 2)) : 0;
    let mv = f32x4.splat(-Infinity);
    let v = 0;
    for (; v < V4; v += 4) mv = f32x4.max(mv, v128.load(row + (<usize>v << 2)));
    let mx = hmax(mv);
    for (; v < V; v++) mx = max(mx, load<f32>(row + (<usize>v << 2)));
    // e = 2^((x − max)·log2 e); z accumulates in f32x4 lanes (4 partial sums of ≤ V/4 terms each).
    const m2 = f32x4.splat(mx * LOG2E), l2 = f32x4.splat(LOG2E);
    let zv = f32x4.splat(0);
    for (v = 0; v < V4; v += 4) {
      const p = row + (<usize>v << 2);
      const e = exp2v(f32x4.sub(f32x4.mul(v128.load(p), l2), m2));
      v128.store(p, e);
      zv = f32x4.add(zv, e);
    }
    let z = hsum(zv);
    for (; v < V; v++) {
      const p = row + (<usize>v << 2);
      const e = f32x4.extract_lane(exp2v(f32x4.splat(load<f32>(p) * LOG2E - mx * LOG2E)), 0);
      store<f32>(p, e);
      z += e;
    }
    const inv = f32x4.splat(<f32>1 / z);
    for (v = 0; v < V4; v += 4) {
      const p = row + (<usize>v << 2);
      v128.store(p, f32x4.mul(v128.load(p), inv));
    }
    for (; v < V; v++) {
      const p = row + (<usize>v << 2);
      store<f32>(p, load<f32>(p) / z);
    }
    store<f32>(loss + (<usize>n << 2), y >= 0 ? -(ly - mx - Mathf.log(z)) : 0);
  }
}

/** Rows [i0, i1): P0 (probs → dlogits in place) = F0 · (p − onehot(P1[n])), 0 for ignored rows. */
function xentBackward(ctl: usize, i0: i32, i1: i32): void {
  const V = word(ctl, L.TR_C), base = ptr(ctl, 0), targets = ptr(ctl, 1), s = f(ctl, 0);
  const V4 = V & ~3;
  const sv = f32x4.splat(s);
  for (let n = i0; n < i1; n++) {
    const row = base + (<usize>n * <usize>V << 2);
    const y = load<i32>(targets + (<usize>n << 2));
    const k = y >= 0 ? sv : f32x4.splat(0);
    let v = 0;
    for (; v < V4; v += 4) {
      const p = row + (<usize>v << 2);
      v128.store(p, f32x4.mul(v128.load(p), k));
    }
    for (; v < V; v++) {
      const p = row + (<usize>v << 2);
      store<f32>(p, y >= 0 ? load<f32>(p) * s : 0);
    }
    if (y >= 0) {
      const p = row + (<usize>y << 2);
      store<f32>(p, load<f32>(p) - s);
    }
  }
}

/** P0[i] = silu(P1[i]) · P2[i]. */
function swigluForward(ctl: usize, i0: i32, i1: i32): void {
  const out = ptr(ctl, 0), gate = ptr(ctl, 1), up = ptr(ctl, 2);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    const g = v128.load(gate + o);
    v128.store(out + o, f32x4.mul(f32x4.mul(g, sigmoid(g)), v128.load(up + o)));
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    const g = load<f32>(gate + o);
    store<f32>(out + o, g * sigmoid1(g) * load<f32>(up + o));
  }
}

/** dgate P0, dup P1 (overwritten) from dout P2, gate P3, up P4. */
function swigluBackward(ctl: usize, i0: i32, i1: i32): void {
  const dgate = ptr(ctl, 0), dup = ptr(ctl, 1), dout = ptr(ctl, 2), gate = ptr(ctl, 3), up = ptr(ctl, 4);
  const one = f32x4.splat(1);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    const g = v128.load(gate + o), d = v128.load(dout + o);
    const sig = sigmoid(g);
    v128.store(dup + o, f32x4.mul(f32x4.mul(d, g), sig));
    // dgate = dout · up · σ · (1 + g·(1 − σ))
    const k = fma(g, f32x4.sub(one, sig), one);
    v128.store(dgate + o, f32x4.mul(f32x4.mul(f32x4.mul(d, v128.load(up + o)), sig), k));
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    const g = load<f32>(gate + o), d = load<f32>(dout + o);
    const sig = sigmoid1(g);
    store<f32>(dup + o, d * g * sig);
    store<f32>(dgate + o, d * load<f32>(up + o) * sig * (1 + g * (1 - sig)));
  }
}

/** P0[i] += P1[i]. */
function add(ctl: usize, i0: i32, i1: i32): void {
  const dst = ptr(ctl, 0), src = ptr(ctl, 1);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    v128.store(dst + o, f32x4.add(v128.load(dst + o), v128.load(src + o)));
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    store<f32>(dst + o, load<f32>(dst + o) + load<f32>(src + o));
  }
}

/** P1[item] (f64) = Σ P0[i]² over the item, summed in f64 lanes. */
function sumsq(ctl: usize, item: i32, i0: i32, i1: i32): void {
  const x = ptr(ctl, 0), out = ptr(ctl, 1);
  let a = f64x2.splat(0), b = f64x2.splat(0);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const v = v128.load(x + (<usize>i << 2));
    const lo = f64x2.promote_low_f32x4(v), hi = f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1));
    a = f64x2.add(a, f64x2.mul(lo, lo));
    b = f64x2.add(b, f64x2.mul(hi, hi));
  }
  const s2 = f64x2.add(a, b);
  let s = f64x2.extract_lane(s2, 0) + f64x2.extract_lane(s2, 1);
  for (; i < i1; i++) {
    const v = <f64>load<f32>(x + (<usize>i << 2));
    s += v * v;
  }
  store<f64>(out + (<usize>item << 3), s);
}

/** P0[i] *= F0. */
function scale(ctl: usize, i0: i32, i1: i32): void {
  const x = ptr(ctl, 0), k = f(ctl, 0), kv = f32x4.splat(k);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = x + (<usize>i << 2);
    v128.store(o, f32x4.mul(v128.load(o), kv));
  }
  for (; i < i1; i++) {
    const o = x + (<usize>i << 2);
    store<f32>(o, load<f32>(o) * k);
  }
}

/**
 * AdamW on params P0 with grads P1, moments m P2 and v P3:
 *   m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  p = p·decay − step · m / (sqrt(v · invC2) + eps)
 * with F0 β1, F1 β2, F2 eps, F3 step = lr / (1 − β1^t), F4 decay = 1 − lr·wd (or 1), F5 invC2 = 1 / (1 − β2^t).
 */
function adamw(ctl: usize, i0: i32, i1: i32): void {
  const P = ptr(ctl, 0), G = ptr(ctl, 1), Mp = ptr(ctl, 2), Vp = ptr(ctl, 3);
  const b1 = f(ctl, 0), b2 = f(ctl, 1), eps = f(ctl, 2), step = f(ctl, 3), decay = f(ctl, 4), ic2 = f(ctl, 5);
  const b1v = f32x4.splat(b1), c1v = f32x4.splat(1 - b1), b2v = f32x4.splat(b2), c2v = f32x4.splat(1 - b2);
  const ev = f32x4.splat(eps), sv = f32x4.splat(step), dv = f32x4.splat(decay), iv = f32x4.splat(ic2);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    const g = v128.load(G + o);
    const m = f32x4.add(f32x4.mul(b1v, v128.load(Mp + o)), f32x4.mul(c1v, g));
    const v = f32x4.add(f32x4.mul(b2v, v128.load(Vp + o)), f32x4.mul(c2v, f32x4.mul(g, g)));
    v128.store(Mp + o, m);
    v128.store(Vp + o, v);
    const den = f32x4.add(f32x4.sqrt(f32x4.mul(v, iv)), ev);
    v128.store(P + o, f32x4.sub(f32x4.mul(v128.load(P + o), dv), f32x4.div(f32x4.mul(sv, m), den)));
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    const g = load<f32>(G + o);
    const m = b1 * load<f32>(Mp + o) + (1 - b1) * g;
    const v = b2 * load<f32>(Vp + o) + (1 - b2) * g * g;
    store<f32>(Mp + o, m);
    store<f32>(Vp + o, v);
    store<f32>(P + o, load<f32>(P + o) * decay - (step * m) / (Mathf.sqrt(v * ic2) + eps));
  }
}

/** Rows [i0, i1): out P0 = x P2 · rstd · weight P3, rstd P1[n] = 1 / sqrt(mean(x²) + F0). */
function rmsForward(ctl: usize, i0: i32, i1: i32): void {
  const C = word(ctl, L.TR_C), out = ptr(ctl, 0), rstd = ptr(ctl, 1), X = ptr(ctl, 2), W = ptr(ctl, 3), eps = f(ctl, 0);
  const C4 = C & ~3;
  for (let n = i0; n < i1; n++) {
    const x = X + (<usize>n * <usize>C << 2), o = out + (<usize>n * <usize>C << 2);
    let sv = f32x4.splat(0);
    let c = 0;
    for (; c < C4; c += 4) {
      const v = v128.load(x + (<usize>c << 2));
      sv = fma(v, v, sv);
    }
    let ss = hsum(sv);
    for (; c < C; c++) {
      const v = load<f32>(x + (<usize>c << 2));
      ss += v * v;
    }
    const r: f32 = <f32>1 / Mathf.sqrt(ss / <f32>C + eps);
    store<f32>(rstd + (<usize>n << 2), r);
    const rv = f32x4.splat(r);
    for (c = 0; c < C4; c += 4) {
      const q = <usize>c << 2;
      v128.store(o + q, f32x4.mul(f32x4.mul(v128.load(x + q), rv), v128.load(W + q)));
    }
    for (; c < C; c++) {
      const q = <usize>c << 2;
      store<f32>(o + q, load<f32>(x + q) * r * load<f32>(W + q));
    }
  }
}

/**
 * Rows [i0, i1): dx P0 += r·(w⊙dy) − x·r³/C·Σ(w⊙dy⊙x); the item's weight gradient Σ_n dy⊙x·r
 * goes to row `item` of the partials P1 [items, C] (overwritten), from dy P2, x P3, w P4, rstd P5.
 */
function rmsBackward(ctl: usize, item: i32, i0: i32, i1: i32): void {
  const C = word(ctl, L.TR_C), DX = ptr(ctl, 0), part = ptr(ctl, 1) + (<usize>item * <usize>C << 2);
  const DY = ptr(ctl, 2), X = ptr(ctl, 3), W = ptr(ctl, 4), rstd = ptr(ctl, 5);
  const C4 = C & ~3;
  memory.fill(part, 0, <usize>C << 2);
  for (let n = i0; n < i1; n++) {
    const row = <usize>n * <usize>C << 2;
    const dx = DX + row, dy = DY + row, x = X + row;
    const r = load<f32>(rstd + (<usize>n << 2));
    let dv = f32x4.splat(0);
    let c = 0;
    for (; c < C4; c += 4) {
      const q = <usize>c << 2;
      dv = fma(f32x4.mul(v128.load(W + q), v128.load(dy + q)), v128.load(x + q), dv);
    }
    let dot = hsum(dv);
    for (; c < C; c++) {
      const q = <usize>c << 2;
      dot += load<f32>(W + q) * load<f32>(dy + q) * load<f32>(x + q);
    }
    const k = (r * r * r * dot) / <f32>C;
    const rv = f32x4.splat(r), kv = f32x4.splat(k);
    for (c = 0; c < C4; c += 4) {
      const q = <usize>c << 2;
      const g = v128.load(dy + q), xv = v128.load(x + q);
      v128.store(part + q, fma(f32x4.mul(g, xv), rv, v128.load(part + q)));
      const t = f32x4.sub(f32x4.mul(f32x4.mul(rv, v128.load(W + q)), g), f32x4.mul(xv, kv));
      v128.store(dx + q, f32x4.add(v128.load(dx + q), t));
    }
    for (; c < C; c++) {
      const q = <usize>c << 2;
      const g = load<f32>(dy + q), xv = load<f32>(x + q);
      store<f32>(part + q, load<f32>(part + q) + g * xv * r);
      store<f32>(dx + q, load<f32>(dx + q) + r * load<f32>(W + q) * g - xv * k);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Causal self-attention for training, any number of KV heads (src/attention/train.ts is the
// specification). Layouts: q, out, dq, dout [B, T, H, D]; k, v, dk, dv [B, T, K, D]; probs
// [B, H, T, T], of which only the causal part s ≤ t of row t is written and read. Query head h
// reads KV head h / G. Masked blocks are skipped, not computed: row t touches keys 0..t only.
// D must be a multiple of 4 (the host falls back to the matmul path otherwise).

// @ts-ignore: decorator
@inline function dot4(a: usize, b: usize, D: i32): f32 {
  let acc = f32x4.splat(0), acc2 = f32x4.splat(0);
  let d = 0;
  for (; d + 8 <= D; d += 8) {
    const o = <usize>d << 2;
    acc = fma(v128.load(a + o), v128.load(b + o), acc);
    acc2 = fma(v128.load(a + o, 16), v128.load(b + o, 16), acc2);
  }
  if (d < D) acc = fma(v128.load(a + (<usize>d << 2)), v128.load(b + (<usize>d << 2)), acc);
  return hsum(f32x4.add(acc, acc2));
}

// @ts-ignore: decorator
@inline function axpy4(y: usize, a: f32, x: usize, D: i32): void {
  const av = f32x4.splat(a);
  for (let d = 0; d < D; d += 4) {
    const o = <usize>d << 2;
    v128.store(y + o, fma(av, v128.load(x + o), v128.load(y + o)));
  }
}

/**
 * Item = (b, kv head, query tile), the largest tiles (latest positions) first. Pointers: P0 q, P1 k,
 * P2 v, P3 out, P4 probs. Ints: I0 T, I1 H, I2 K, I3 D, I4 rows per query tile, I5 tiles. F0 scale.
 */
function attnForward(ctl: usize, item: i32): void {
  const Q = ptr(ctl, 0), Kp = ptr(ctl, 1), Vp = ptr(ctl, 2), O = ptr(ctl, 3), Pr = ptr(ctl, 4);
  const T = int(ctl, 0), H = int(ctl, 1), K = int(ctl, 2), D = int(ctl, 3), BQ = int(ctl, 4), NQT = int(ctl, 5);
  const G = H / K;
  const scale2 = f(ctl, 0) * LOG2E;
  const qt = NQT - 1 - item % NQT, kv = (item / NQT) % K, b = item / (NQT * K);
  const t0 = qt * BQ, t1 = min(T, t0 + BQ);
  for (let g = 0; g < G; g++) {
    const h = kv * G + g;
    for (let t = t0; t < t1; t++) {
      const q = Q + ((<usize>(b * T + t) * <usize>H + <usize>h) * <usize>D << 2);
      const row = Pr + ((<usize>(b * H + h) * <usize>T + <usize>t) * <usize>T << 2);
      // scores in base 2: x_s = scale·log2(e)·q·k_s
      let mx: f32 = -Infinity;
      for (let s = 0; s <= t; s++) {
        const x = dot4(q, Kp + ((<usize>(b * T + s) * <usize>K + <usize>kv) * <usize>D << 2), D) * scale2;
        store<f32>(row + (<usize>s << 2), x);
        mx = max(mx, x);
      }
      const n = t + 1, n4 = n & ~3, mv = f32x4.splat(mx);
      let zv = f32x4.splat(0);
      let s = 0;
      for (; s < n4; s += 4) {
        const p = row + (<usize>s << 2);
        const e = exp2v(f32x4.sub(v128.load(p), mv));
        v128.store(p, e);
        zv = f32x4.add(zv, e);
      }
      let z = hsum(zv);
      for (; s < n; s++) {
        const p = row + (<usize>s << 2);
        const e = f32x4.extract_lane(exp2v(f32x4.splat(load<f32>(p) - mx)), 0);
        store<f32>(p, e);
        z += e;
      }
      const inv: f32 = <f32>1 / z, iv = f32x4.splat(inv);
      for (s = 0; s < n4; s += 4) {
        const p = row + (<usize>s << 2);
        v128.store(p, f32x4.mul(v128.load(p), iv));
      }
      for (; s < n; s++) store<f32>(row + (<usize>s << 2), load<f32>(row + (<usize>s << 2)) * inv);
      // out_t = Σ_s p_s · v_s
      const o = O + ((<usize>(b * T + t) * <usize>H + <usize>h) * <usize>D << 2);
      memory.fill(o, 0, <usize>D << 2);
      for (s = 0; s <= t; s++) axpy4(o, load<f32>(row + (<usize>s << 2)), Vp + ((<usize>(b * T + s) * <usize>K + <usize>kv) * <usize>D << 2), D);
    }
  }
}

/**
 * Item = (b, kv head): it owns dk and dv of that head and dq of its G query heads, so items never
 * write the same memory. Pointers: P0 dq, P1 dk, P2 dv, P3 dout, P4 out, P5 probs, P6 q, P7 k, P8 v.
 * Ints as the forward. F0 scale.
 *   dv_s += p_ts·dout_t;  dp_ts = dout_t·v_s;  ds_ts = p_ts·(dp_ts − dout_t·out_t)·scale;
 *   dq_t += ds_ts·k_s;  dk_s += ds_ts·q_t        (s ≤ t; the group's heads add into dk, dv)
 */
function attnBackward(ctl: usize, item: i32): void {
  const DQ = ptr(ctl, 0), DK = ptr(ctl, 1), DV = ptr(ctl, 2), DO = ptr(ctl, 3), O = ptr(ctl, 4), Pr = ptr(ctl, 5);
  const Q = ptr(ctl, 6), Kp = ptr(ctl, 7), Vp = ptr(ctl, 8);
  const T = int(ctl, 0), H = int(ctl, 1), K = int(ctl, 2), D = int(ctl, 3);
  const G = H / K, scale = f(ctl, 0);
  const kv = item % K, b = item / K;
  const rowBytes = <usize>D << 2;
  for (let t = 0; t < T; t++) {
    const kvo = (<usize>(b * T + t) * <usize>K + <usize>kv) * rowBytes;
    memory.fill(DK + kvo, 0, rowBytes);
    memory.fill(DV + kvo, 0, rowBytes);
  }
  for (let g = 0; g < G; g++) {
    const h = kv * G + g;
    for (let t = 0; t < T; t++) {
      const qo = (<usize>(b * T + t) * <usize>H + <usize>h) * rowBytes;
      const dq = DQ + qo, dout = DO + qo, q = Q + qo;
      const row = Pr + ((<usize>(b * H + h) * <usize>T + <usize>t) * <usize>T << 2);
      const rowDot = dot4(dout, O + qo, D);
      memory.fill(dq, 0, rowBytes);
      for (let s = 0; s <= t; s++) {
        const so = (<usize>(b * T + s) * <usize>K + <usize>kv) * rowBytes;
        const p = load<f32>(row + (<usize>s << 2));
        const dp = dot4(dout, Vp + so, D);
        axpy4(DV + so, p, dout, D);
        const ds = p * (dp - rowDot) * scale;
        axpy4(dq, ds, Kp + so, D);
        axpy4(DK + so, ds, q, D);
      }
    }
  }
}
