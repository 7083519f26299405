// One kernel thread of the engine (bundled to dist/web/kernel-worker.js): waits for its init message
// (module, shared memory, control block, thread id) and enters workerLoop; see src/kernels/pool-browser.ts.
import { runKernelWorker, type KernelWorkerInit } from "../src/kernels/pool-browser.js";

self.onmessage = (e: MessageEvent<KernelWorkerInit>) => runKernelWorker(e.data);
