// Node's WorkerHost: worker_threads that instantiate the kernel module over the shared memory and
// enter workerLoop. The worker script is inline (eval), so it runs the same from src/ (tsx) and
// dist/. Workers are unref'd: an idle pool never keeps the process alive.
import { Worker } from "node:worker_threads";
import { CTL, type SpawnedWorker, type WorkerHost } from "./pool.js";

const WORKER_SCRIPT = `
const { workerData } = require("node:worker_threads");
const { module, memory, ctl, tid } = workerData;
try {
  const abort = () => { throw new Error("kernel module aborted"); };
  const inst = new WebAssembly.Instance(module, { env: { memory, abort } });
  inst.exports.workerLoop(ctl, tid);
} catch (e) {
  const v = new Int32Array(memory.buffer);
  Atomics.store(v, (ctl + ${CTL.ERR}) >> 2, tid);
  Atomics.add(v, (ctl + ${CTL.DONE}) >> 2, 1);
  Atomics.notify(v, (ctl + ${CTL.DONE}) >> 2);
  throw e;
}
`;

export const nodeWorkerHost: WorkerHost = {
  spawn({ module, memory, ctl, tid }): SpawnedWorker {
    const w = new Worker(WORKER_SCRIPT, { eval: true, workerData: { module, memory, ctl, tid } });
    w.on("error", (e) => {
      // The control block already carries the failure; keep the message for the log.
      process.emitWarning(`mqa kernel worker ${tid}: ${e instanceof Error ? e.message : String(e)}`);
    });
    w.unref();
    return { terminate: () => void w.terminate() };
  },
};
