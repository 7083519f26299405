// The WASM kernel builds the kernel tests compare with the reference: created in a before() hook
// (plain SIMD first, then relaxed SIMD once its V8 flag is on) and closed in after().
import { after, before } from "node:test";
import { createKernels, type KernelHandle } from "../src/kernels/index.js";
import type { Arena } from "../src/kernels/memory.js";
import { enableRelaxedSimdFlag } from "../src/kernels/wasm-node.js";

export interface BackendVariant {
  threads: number;
  relaxed: boolean;
}

/** The filled-in list of backends, one per variant, in order (valid inside tests). */
export function wasmBackends(arena: Arena, variants: BackendVariant[]): KernelHandle[] {
  const backends: KernelHandle[] = [];
  before(async () => {
    for (const v of variants) {
      if (v.relaxed) enableRelaxedSimdFlag();
      backends.push(await createKernels({ arena, backend: "wasm", threads: v.threads, relaxed: v.relaxed ? "auto" : "off" }));
    }
  });
  after(() => backends.forEach((b) => b.close()));
  return backends;
}
