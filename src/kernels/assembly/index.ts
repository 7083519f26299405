// Entry of the kernel module: task dispatch over the control block, the worker loop, and the
// bandwidth/peak probes the benchmark compares against. The same module runs on the host thread
// and in every worker, over one shared memory; module globals are per thread.
import * as L from "./layout";
import { attnItem, attnMerge } from "./attention";
import { matmulItem } from "./matmul";
import { activationItem } from "./activation";
import { trainItem } from "./train";
import { rowsItem } from "./rows";
import { fma } from "./simd";

export { attnMerge };

// Spin this many polls before sleeping in memory.atomic.wait32: a dispatch that follows soon
// after the last one (the next layer's call) then costs no futex round trip.
const SPIN = 20000;

/** First byte the module's own static data does not use; the host checks the Arena starts above it. */
export function heapBase(): usize {
  return __heap_base;
}

/**
 * Runs this thread's share of the current task: it claims work items one at a time from CTL_NEXT,
 * an i64 holding (task generation << 32 | next item), and counts each finished item in CTL_DONE.
 * Claims are compare-and-swap on the tagged value, so a thread that wakes late (after the host
 * has moved on) can never take an item of a task it did not read the arguments of, and the host
 * only waits for items, not for threads that found nothing left to do.
 */
export function runTask(ctl: usize, tid: i32): void {
  const gen = atomicLoad64(ctl + L.CTL_NEXT) >>> 32;
  while (true) {
    const v = atomicLoad64(ctl + L.CTL_NEXT);
    if (v >>> 32 != gen) return;
    const i = <i32>(v & 0xffffffff);
    const kind = load<i32>(ctl + L.CTL_KIND);
    if (i >= load<i32>(ctl + L.CTL_NITEMS)) return;
    if (!claim(ctl + L.CTL_NEXT, v)) continue;
    if (kind == L.KIND_ATTENTION) attnItem(ctl, i, tid);
    else if (kind == L.KIND_MATMUL) matmulItem(ctl, i, tid);
    else if (kind == L.KIND_ACTIVATION) activationItem(ctl, i);
    else if (kind == L.KIND_TRAIN) trainItem(ctl, i);
    else if (kind == L.KIND_ROWS) rowsItem(ctl, i);
    else if (kind == L.KIND_STREAM) streamItem(ctl, i, tid);
    else if (kind == L.KIND_PEAK) peakItem(ctl, tid);
    itemDone(ctl + L.CTL_DONE);
  }
}

// Atomics where the build has threads; plain memory operations in the single-thread build.
// @ts-ignore: decorator
@inline function atomicLoad64(p: usize): i64 {
  if (ASC_FEATURE_THREADS) return atomic.load<i64>(p);
  return load<i64>(p);
}
// @ts-ignore: decorator
@inline function claim(p: usize, v: i64): bool {
  if (ASC_FEATURE_THREADS) return atomic.cmpxchg<i64>(p, v, v + 1) == v;
  store<i64>(p, v + 1);
  return true;
}
// @ts-ignore: decorator
@inline function itemDone(p: usize): void {
  if (ASC_FEATURE_THREADS) {
    atomic.add<i32>(p, 1);
    atomic.notify(p, 1);
  } else store<i32>(p, load<i32>(p) + 1);
}

/** A worker's life: wait for a new generation, take items while there are any. Returns on quit. */
export function workerLoop(ctl: usize, tid: i32): void {
  if (!ASC_FEATURE_THREADS) return; // single-thread build (unshared memory): no workers
  let seen = atomic.load<i32>(ctl + L.CTL_GEN);
  atomic.add<i32>(ctl + L.CTL_READY, 1);
  atomic.notify(ctl + L.CTL_READY, 1);
  while (true) {
    let g = atomic.load<i32>(ctl + L.CTL_GEN);
    let spins = 0;
    while (g == seen) {
      if (spins < SPIN) spins++;
      else memory.atomic.wait32(ctl + L.CTL_GEN, seen, -1);
      g = atomic.load<i32>(ctl + L.CTL_GEN);
    }
    seen = g;
    if (atomic.load<i32>(ctl + L.CTL_QUIT) != 0) return;
    runTask(ctl, tid);
  }
}

// @ts-ignore: decorator
@inline function arg(ctl: usize, i: i32): u32 {
  return load<u32>(ctl + L.CTL_ARGS + (<usize>i << 2));
}

/** Streaming read of one chunk with SIMD loads (the bandwidth the decode kernels are held to). */
function streamItem(ctl: usize, item: i32, tid: i32): void {
  const chunk = <usize>arg(ctl, L.P_CHUNK);
  const start = <usize>arg(ctl, L.P_PTR) + <usize>item * chunk;
  const end = min(start + chunk, <usize>arg(ctl, L.P_PTR) + <usize>arg(ctl, L.P_BYTES));
  let a = i32x4.splat(0), b = i32x4.splat(0), c = i32x4.splat(0), d = i32x4.splat(0);
  let p = start;
  for (; p + 64 <= end; p += 64) {
    a = v128.xor(a, v128.load(p));
    b = v128.xor(b, v128.load(p, 16));
    c = v128.xor(c, v128.load(p, 32));
    d = v128.xor(d, v128.load(p, 48));
  }
  const sink = ctl + L.CTL_SINK + (<usize>tid << 4);
  v128.store(sink, v128.xor(v128.load(sink), v128.xor(v128.xor(a, b), v128.xor(c, d))));
}

/** SIMD peak: 12 independent multiply-add chains in registers (the same fma the kernels use). */
function peakItem(ctl: usize, tid: i32): void {
  const iters = <i32>arg(ctl, L.P_ITERS);
  const sink = ctl + L.CTL_SINK + (<usize>tid << 4);
  const m = f32x4.splat(0.999999), s = v128.load(sink);
  let c0 = f32x4.splat(1), c1 = f32x4.splat(2), c2 = f32x4.splat(3), c3 = f32x4.splat(4);
  let c4 = f32x4.splat(5), c5 = f32x4.splat(6), c6 = f32x4.splat(7), c7 = f32x4.splat(8);
  let c8 = f32x4.splat(9), c9 = f32x4.splat(10), c10 = f32x4.splat(11), c11 = f32x4.splat(12);
  for (let i = 0; i < iters; i++) {
    c0 = fma(c0, m, s);
    c1 = fma(c1, m, s);
    c2 = fma(c2, m, s);
    c3 = fma(c3, m, s);
    c4 = fma(c4, m, s);
    c5 = fma(c5, m, s);
    c6 = fma(c6, m, s);
    c7 = fma(c7, m, s);
    c8 = fma(c8, m, s);
    c9 = fma(c9, m, s);
    c10 = fma(c10, m, s);
    c11 = fma(c11, m, s);
  }
  const all = f32x4.add(f32x4.add(f32x4.add(c0, c1), f32x4.add(c2, c3)), f32x4.add(f32x4.add(c4, c5), f32x4.add(c6, c7)));
  v128.store(sink, f32x4.add(all, f32x4.add(f32x4.add(c8, c9), f32x4.add(c10, c11))));
}
