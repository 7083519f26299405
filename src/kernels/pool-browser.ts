// The browser's WorkerHost: Web Workers that instantiate the kernel module over the shared memory and
// enter workerLoop, exactly as pool-node.ts does with worker_threads. The worker script is a separate
// file (web/kernel-worker.ts, bundled to kernel-worker.js beside the page) because a page served with
// COEP require-corp should not run blob: scripts of unknown origin. Spawn from a dedicated worker (the
// engine), not the page: Pool.run blocks in Atomics.wait, which a page's main thread may not do.
//
//   const host = webWorkerHost(new URL("kernel-worker.js", self.location.href));
//   const kernels = await createKernels({ arena, module, host, threads: navigator.hardwareConcurrency });
import { CTL, type SpawnedWorker, type WorkerHost } from "./pool.js";

/** What the kernel worker receives in its one message. */
export interface KernelWorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory; // shared
  ctl: number; // control block offset
  tid: number; // thread id, 1 .. threads-1
}

/** Runs in a kernel worker: instantiate and enter workerLoop; on failure, flag ERR in the control block as pool-node's script does. */
export function runKernelWorker({ module, memory, ctl, tid }: KernelWorkerInit): void {
  try {
    const abort = () => {
      throw new Error("kernel module aborted");
    };
    const inst = new WebAssembly.Instance(module, { env: { memory, abort } });
    (inst.exports as unknown as { workerLoop(ctl: number, tid: number): void }).workerLoop(ctl, tid);
  } catch (e) {
    const v = new Int32Array(memory.buffer);
    Atomics.store(v, (ctl + CTL.ERR) >> 2, tid);
    Atomics.add(v, (ctl + CTL.DONE) >> 2, 1);
    Atomics.notify(v, (ctl + CTL.DONE) >> 2);
    throw e;
  }
}

/** A WorkerHost over `new Worker(scriptUrl, { type: "module" })`; the script calls runKernelWorker on its first message. */
export function webWorkerHost(scriptUrl: string | URL): WorkerHost {
  return {
    spawn({ module, memory, ctl, tid }): SpawnedWorker {
      const w = new Worker(scriptUrl, { type: "module", name: `mqa-kernels-${tid}` });
      w.onerror = (e) => console.warn(`mqa kernel worker ${tid}: ${e.message}`);
      const init: KernelWorkerInit = { module, memory, ctl, tid };
      w.postMessage(init);
      return { terminate: () => w.terminate() };
    },
  };
}
