// Node-only loading of the compiled kernel builds (build/*.wasm, made by src/kernels/assembly/build.mjs).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";

export type KernelVariant = "kernels-simd" | "kernels-relaxed" | "kernels-simd-st" | "kernels-relaxed-st";

/** build/ of the package: found by walking up from this file (src/kernels or dist/src/kernels). */
export function kernelBuildDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const b = join(dir, "build");
    if (existsSync(join(b, "kernels-simd.wasm"))) return b;
    dir = dirname(dir);
  }
  throw new Error("kernels: build/kernels-simd.wasm not found; run `npm run build` first");
}

/** Compiles one build synchronously (Node allows sync compiles of any size). */
export function loadKernelModule(variant: KernelVariant): WebAssembly.Module {
  return new WebAssembly.Module(readFileSync(join(kernelBuildDir(), `${variant}.wasm`)));
}

/**
 * Turns on V8's relaxed SIMD in this process (Node 20 ships it behind --experimental-wasm-relaxed-simd).
 * Process-wide; call before creating kernels. Returns whether the runtime now validates it.
 */
export function enableRelaxedSimdFlag(): void {
  setFlagsFromString("--experimental-wasm-relaxed-simd");
}
