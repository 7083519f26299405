// Opening a model for generation: arena + kernels (WASM SIMD with worker threads when available,
// else the reference) + weights + tokenizer. close() stops the kernel worker threads.
import { Arena } from "../kernels/memory.js";
import { createKernels, type KernelBackend, type KernelHandle } from "../kernels/index.js";
import { loadModel, type LoadedModel } from "../models/index.js";
import { loadTokenizer, tokenizerFromGguf, type TextTokenizer } from "../formats/tokenizer.js";

export interface RuntimeOptions {
  backend?: KernelBackend; // "auto" (default), "wasm" or "reference"
  threads?: number; // kernel threads, default all cores
  tokenizer?: boolean | "optional"; // load the tokenizer (default true); "optional": null when the files have none
}

export interface Runtime extends Omit<LoadedModel, "ggufMetadata"> {
  arena: Arena;
  kernels: KernelHandle;
  tokenizer: TextTokenizer | null;
  loadSeconds: number;
  close(): void;
}

export async function openRuntime(path: string, opts: RuntimeOptions = {}): Promise<Runtime> {
  const t0 = performance.now();
  const arena = new Arena({ initialBytes: 64 * 1024 * 1024 });
  const kernels = await createKernels({ arena, backend: opts.backend ?? "auto", threads: opts.threads });
  try {
    // The GGUF metadata is not kept: once the tokenizer is built it is garbage (a 32K vocabulary).
    const { ggufMetadata, ...loaded } = await loadModel(path, { arena, kernels });
    let tokenizer: TextTokenizer | null = null;
    if (opts.tokenizer !== false) {
      try {
        if (loaded.dir) tokenizer = await loadTokenizer(loaded.dir);
        else tokenizer = await tokenizerFromGguf(ggufMetadata!, path);
      } catch (e) {
        if (opts.tokenizer !== "optional") throw e;
      }
    }
    return { ...loaded, arena, kernels, tokenizer, loadSeconds: (performance.now() - t0) / 1000, close: () => kernels.close() };
  } catch (e) {
    kernels.close();
    throw e;
  }
}
