// The worker pool's dispatch and barrier, host side (browser-neutral: no Node imports).
//
// All threads run the same WASM module over one shared memory. A task is published by writing its
// arguments into the control block, then NEXT = (generation << 32 | 0), then bumping GEN; workers
// (spinning briefly, then sleeping in memory.atomic.wait32) wake and claim work items by
// compare-and-swap on NEXT, counting finished items in DONE. The calling thread works too (as
// thread 0), then waits until DONE = items with Atomics.wait (allowed on Node's main thread and in
// browser workers). It never waits for a worker that found nothing to do, so a worker that is
// descheduled on a busy machine costs only the items it holds. Offsets mirror assembly/layout.ts.

import { CTL } from "./abi.js";

export { CTL, KIND } from "./abi.js";

/** The kernel module's exports (src/kernels/assembly/index.ts). */
export interface KernelExports {
  runTask(ctl: number, tid: number): void;
  workerLoop(ctl: number, tid: number): void;
  attnMerge(ctl: number): void;
  heapBase(): number;
}

export interface SpawnedWorker {
  terminate(): void;
}

/** Starts threads; Node's is in pool-node.ts, a browser's would wrap Web Workers the same way. */
export interface WorkerHost {
  /** Starts a thread that instantiates `module` over `memory` and calls workerLoop(ctl, tid). */
  spawn(opts: { module: WebAssembly.Module; memory: WebAssembly.Memory; ctl: number; tid: number }): SpawnedWorker;
}

/** Instantiates the kernel module over `memory`; its only import is env.memory. */
export function instantiateKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  const abort = () => {
    throw new Error("kernel module aborted");
  };
  const inst = new WebAssembly.Instance(module, { env: { memory, abort } });
  return inst.exports as unknown as KernelExports;
}

const SPIN = 20000; // polls of DONE before sleeping (a short task returns in microseconds)

export class Pool {
  private i32: Int32Array;
  private i64: BigInt64Array;
  private gen = 0;
  private broken: string | null = null;

  private constructor(
    private readonly memory: WebAssembly.Memory,
    readonly exports: KernelExports,
    readonly ctl: number,
    private readonly workers: SpawnedWorker[],
  ) {
    this.i32 = new Int32Array(memory.buffer);
    this.i64 = new BigInt64Array(memory.buffer);
  }

  get threads(): number {
    return this.workers.length + 1;
  }

  /** Spawns threads-1 workers and resolves when all of them wait in workerLoop. */
  static async start(opts: {
    memory: WebAssembly.Memory;
    module: WebAssembly.Module;
    exports: KernelExports;
    ctl: number;
    threads: number;
    host?: WorkerHost;
  }): Promise<Pool> {
    const { memory, module, exports, ctl, threads, host } = opts;
    const workers: SpawnedWorker[] = [];
    const pool = new Pool(memory, exports, ctl, workers);
    if (threads > 1 && !host) throw new Error(`Pool.start: ${threads} threads need a WorkerHost`);
    for (let tid = 1; tid < threads; tid++) workers.push(host!.spawn({ module, memory, ctl, tid }));
    const deadline = Date.now() + 30000;
    while (Atomics.load(pool.view(), (ctl + CTL.READY) >> 2) < threads - 1) {
      const err = Atomics.load(pool.view(), (ctl + CTL.ERR) >> 2);
      if (err !== 0 || Date.now() > deadline) {
        pool.close();
        throw new Error(`Pool.start: worker ${err || "?"} did not start (${threads - 1} expected)`);
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    return pool;
  }

  /** The control block as u32 words (re-made after the memory grows). */
  args(): Uint32Array {
    return new Uint32Array(this.memory.buffer, this.ctl + CTL.ARGS, 64);
  }

  view(): Int32Array {
    if (this.i32.buffer !== this.memory.buffer) {
      this.i32 = new Int32Array(this.memory.buffer);
      this.i64 = new BigInt64Array(this.memory.buffer);
    }
    return this.i32;
  }

  /** Runs task `kind` with `nitems` work items on all threads and returns when all items are done. */
  run(kind: number, nitems: number): void {
    if (this.broken) throw new Error(`kernel pool is unusable: ${this.broken}`);
    const v = this.view();
    const c = this.ctl >> 2;
    v[c + (CTL.KIND >> 2)] = kind;
    v[c + (CTL.NITEMS >> 2)] = nitems;
    Atomics.store(v, c + (CTL.DONE >> 2), 0);
    this.gen = (this.gen + 1) & 0x7fffffff;
    Atomics.store(this.i64, (this.ctl + CTL.NEXT) >> 3, BigInt(this.gen) << 32n); // publishes the task
    if (this.workers.length > 0) {
      Atomics.add(v, c + (CTL.GEN >> 2), 1);
      Atomics.notify(v, c + (CTL.GEN >> 2));
    }
    let failure: unknown = null;
    try {
      this.exports.runTask(this.ctl, 0);
    } catch (e) {
      failure = e;
    }
    // Barrier on items: workers still inside an item finish it before the next task is published.
    let spins = 0;
    for (;;) {
      const done = Atomics.load(v, c + (CTL.DONE >> 2));
      if (done >= nitems || Atomics.load(v, c + (CTL.ERR >> 2)) !== 0) break;
      if (failure) {
        // This thread trapped inside an item it claimed: that item never finishes. Wait for the
        // others to drain what they hold, then give up on the pool.
        const next = Number(Atomics.load(this.i64, (this.ctl + CTL.NEXT) >> 3) & 0xffffffffn);
        if (done >= Math.min(next, nitems) - 1) break;
      }
      if (++spins > SPIN) Atomics.wait(v, c + (CTL.DONE >> 2), done, 50);
    }
    // Close the task before the caller writes the next one's arguments: a worker still looping in
    // runTask for this generation read NEXT = (gen, nitems) and then NITEMS, and if NITEMS already
    // held the next task's larger count, its compare-and-swap on the unchanged NEXT claimed an item
    // of a task whose arguments were half written (and counted it in the next task's DONE, so that
    // barrier could return one item early): wrong outputs, rarely (it needs a preempted worker).
    // With NEXT = (gen, 2^31 - 1) every such worker sees no item left and its CAS fails.
    Atomics.store(this.i64, (this.ctl + CTL.NEXT) >> 3, (BigInt(this.gen) << 32n) | 0x7fffffffn);
    const err = Atomics.load(v, c + (CTL.ERR >> 2));
    if (err !== 0) {
      this.broken = `worker ${err} crashed`;
      failure ??= new Error(`kernel worker ${err} crashed during task ${kind}`);
    }
    if (failure) {
      this.broken ??= `a kernel trapped: ${failure instanceof Error ? failure.message : String(failure)}`;
      throw failure;
    }
  }

  /** Stops the workers (they return from workerLoop) and terminates them. */
  close(): void {
    const v = this.view();
    const c = this.ctl >> 2;
    Atomics.store(v, c + (CTL.QUIT >> 2), 1);
    Atomics.add(v, c + (CTL.GEN >> 2), 1);
    Atomics.notify(v, c + (CTL.GEN >> 2));
    for (const w of this.workers) w.terminate();
    this.workers.length = 0;
    this.broken = "closed";
  }
}
