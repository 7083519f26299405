// Elementwise MLP activations in place (AssemblyScript, f32x4): see ActivationCall in
// src/kernels/types.ts for the ops. An item is ACT_CHUNK consecutive values (the host's
// ACTIVATION_CHUNK); threads take items dynamically.
//
// Both smooth activations are a·σ(u): SiLU with u = a, the tanh GELU with u = 2·√(2/π)·(a + 0.044715a³),
// because 0.5·(1 + tanh(z)) = σ(2z). σ(u) is computed from t = e^(−|u|) ∈ (0, 1] (exp2v), as
// 1/(1 + t) for u >= 0 and t/(1 + t) below, so it keeps its relative precision in both tails (no
// 1 − tanh cancellation). NaN, ±Inf and overflowing a³ follow the float64 reference: ±Inf·σ gives
// ±Inf or NaN where a·σ(a) does in float64.
import { exp2v } from "./simd";
import * as L from "./layout";

export const OP_SWIGLU = 0;
export const OP_GEGLU = 1;
export const OP_GELU = 2;
export const OP_RELU = 3;

// @ts-ignore: decorator
@inline function arg(ctl: usize, i: i32): u32 {
  return load<u32>(ctl + L.CTL_ARGS + (<usize>i << 2));
}

/** σ(u), 4 lanes (see the header). */
// @ts-ignore: decorator
@inline function sigmoid(u: v128): v128 {
  const t = exp2v(f32x4.mul(f32x4.neg(f32x4.abs(u)), f32x4.splat(1.4426950408889634)));
  const r = f32x4.div(f32x4.splat(1.0), f32x4.add(f32x4.splat(1.0), t));
  return v128.bitselect(r, f32x4.mul(t, r), f32x4.ge(u, f32x4.splat(0)));
}

// @ts-ignore: decorator
@inline function act(op: i32, a: v128): v128 {
  if (op == OP_RELU) return f32x4.max(a, f32x4.splat(0));
  if (op == OP_SWIGLU) return f32x4.mul(a, sigmoid(a));
  const a3 = f32x4.mul(f32x4.mul(a, a), a);
  const u = f32x4.mul(f32x4.add(a, f32x4.mul(a3, f32x4.splat(0.044715))), f32x4.splat(1.5957691216057308)); // 2·√(2/π)
  return f32x4.mul(a, sigmoid(u));
}

export function activationItem(ctl: usize, item: i32): void {
  const x = <usize>arg(ctl, L.E_X), y = <usize>arg(ctl, L.E_Y), n = <i32>arg(ctl, L.E_N), op = <i32>arg(ctl, L.E_OP);
  const chunk = <i32>arg(ctl, L.E_CHUNK);
  const i0 = item * chunk, i1 = min(n, i0 + chunk);
  if (op == OP_SWIGLU) run(OP_SWIGLU, x, y, i0, i1);
  else if (op == OP_GEGLU) run(OP_GEGLU, x, y, i0, i1);
  else if (op == OP_GELU) run(OP_GELU, x, y, i0, i1);
  else run(OP_RELU, x, y, i0, i1);
}

/** x[i] = act(x[i]) (· y[i] when gated) for i0 <= i < i1; inlined per op. */
// @ts-ignore: decorator
@inline function run(op: i32, x: usize, y: usize, i0: i32, i1: i32): void {
  const gated = op == OP_SWIGLU || op == OP_GEGLU;
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const p = x + (<usize>i << 2);
    let r = act(op, v128.load(p));
    if (gated) r = f32x4.mul(r, v128.load(y + (<usize>i << 2)));
    v128.store(p, r);
  }
  for (; i < i1; i++) {
    const p = x + (<usize>i << 2);
    let r = f32x4.extract_lane(act(op, f32x4.splat(load<f32>(p))), 0);
    if (gated) r *= load<f32>(y + (<usize>i << 2));
    store<f32>(p, r);
  }
}
