// Opening a model for generation: arena + kernels (WASM SIMD with worker threads when available,
// else the reference) + weights + tokenizer. close() stops the kernel worker threads.
import { Arena } from "../kernels/memory.js";
import { createKernels, type KernelBackend, type KernelHandle } from "../kernels/index.js";
import { enableRelaxedSimdFlag } from "../kernels/wasm-node.js";
import { loadModel, type LoadedModel } from "../models/index.js";
import { loadTokenizer, tokenizerFromGguf, type TextTokenizer } from "../formats/tokenizer.js";

export interface RuntimeOptions {
  backend?: KernelBackend; // "auto" (default), "wasm" or "reference"
  threads?: number; // kernel threads, default all cores
  tokenizer?: boolean | "optional"; // load the tokenizer (default true); "optional": null when the files have none
  smallYoungGeneration?: boolean; // Node: keep V8's young generation at its initial size (default true); see below
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
  if (opts.smallYoungGeneration ?? true) await keepYoungGenerationSmall();
  // Node 20 validates relaxed SIMD (the fused multiply-add kernels) only behind a V8 flag; turn it
  // on as the CLI does, so library callers get the same kernels. Process-wide, harmless if set.
  enableRelaxedSimdFlag();
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

/**
 * Building a tokenizer (tens of thousands of surviving objects) makes V8 grow its young generation
 * from 2 to 16 MiB, and the garbage of every later forward() then touches all of it:
 * ~8 MiB of resident memory that holds nothing (measured on a 190 MiB f16 model: peak RSS 294 →
 * 286 MiB). Everything large lives in the arena; a decode step allocates ~200 KiB of short-lived
 * JS objects (views, call records), so a 2 MiB young generation means one cheap scavenge every
 * few steps. Only Node has node:v8. V8 reads this flag each time it considers growing the young
 * generation, so setting it at run time takes effect (--max-semi-space-size would not: it is
 * read once at heap setup).
 */
async function keepYoungGenerationSmall(): Promise<void> {
  if (typeof process === "undefined" || !process.versions?.node) return;
  const v8 = await import("node:v8");
  v8.setFlagsFromString("--semi-space-growth-factor=1");
}
