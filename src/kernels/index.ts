// The kernel factory: picks the fastest backend this runtime supports, with a fallback.
//
//   const kernels = await createKernels({ arena, backend: "auto", threads: 2 });
//   kernels.attention(call); kernels.matmul(call); kernels.close();
//
// "auto" = WASM SIMD (relaxed-SIMD build when WebAssembly.validate accepts f32x4.relaxed_madd)
// when the runtime has SIMD, else the plain-TS reference. Threads need a shared arena memory.
import type { Arena } from "./memory.js";
import type { Kernels } from "./types.js";
import { referenceKernels } from "./reference.js";
import { WasmKernels } from "./wasm.js";
import { detectWasmFeatures, type WasmFeatures } from "./wasm-features.js";
import type { WorkerHost } from "./pool.js";
import { UserError } from "../errors.js";

export type { Kernels } from "./types.js";
export { WasmKernels } from "./wasm.js";
export { detectWasmFeatures, type WasmFeatures } from "./wasm-features.js";

/** The kernel backends createKernels offers; "auto" is WASM SIMD when the runtime has it, else the reference. */
export const KERNEL_BACKENDS = ["auto", "wasm", "reference"] as const;
export type KernelBackend = (typeof KERNEL_BACKENDS)[number];

export interface CreateKernelsOptions {
  arena: Arena;
  backend?: KernelBackend; // default "auto"
  threads?: number; // default: all cores (Node: os.availableParallelism()), 1 = calling thread only
  relaxed?: "auto" | "off"; // "auto" uses the relaxed-SIMD build when the runtime validates it
  module?: WebAssembly.Module; // browsers: a compiled build/kernels-*.wasm (skips the Node loader)
  host?: WorkerHost; // browsers: a Web Worker host (Node uses worker_threads)
}

/** Kernels plus what was chosen and why, and close() to stop worker threads. */
export interface KernelHandle extends Kernels {
  readonly features: WasmFeatures;
  close(): void;
}

/** Creates the kernels for `arena`; see the file header. */
export async function createKernels(opts: CreateKernelsOptions): Promise<KernelHandle> {
  const { arena, backend = "auto", relaxed = "auto" } = opts;
  if (!["auto", "wasm", "reference"].includes(backend)) throw new UserError(`createKernels: unknown backend "${backend}"; expected auto, wasm or reference`);
  const features = detectWasmFeatures();
  if (backend === "reference" || (backend === "auto" && !features.simd)) {
    return { ...referenceKernels(arena), features, close() {} };
  }
  if (!features.simd) throw new UserError("createKernels: backend wasm needs WebAssembly SIMD, which this runtime lacks");
  const shared = typeof SharedArrayBuffer === "function" && arena.memory.buffer instanceof SharedArrayBuffer;
  const useRelaxed = relaxed === "auto" && features.relaxedSimd;
  let threads = opts.threads ?? (await defaultThreads());
  if (!Number.isInteger(threads) || threads < 1) throw new UserError(`createKernels: threads must be a positive integer, got ${threads}`);
  if (!shared || !features.threads) threads = 1;
  let module = opts.module;
  let host = opts.host;
  if (!module || (threads > 1 && !host)) {
    const node = await import("./wasm-node.js");
    const variant = `kernels-${useRelaxed ? "relaxed" : "simd"}${shared ? "" : "-st"}` as const;
    module ??= node.loadKernelModule(variant);
    if (threads > 1 && !host) host = (await import("./pool-node.js")).nodeWorkerHost;
  }
  const k = await WasmKernels.create({ arena, module, threads, host, name: useRelaxed ? "wasm-relaxed-simd" : "wasm-simd" });
  return Object.assign(k, { features });
}

async function defaultThreads(): Promise<number> {
  if (typeof navigator === "object" && navigator.hardwareConcurrency) return navigator.hardwareConcurrency;
  const os = await import("node:os");
  return os.availableParallelism();
}
