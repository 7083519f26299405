// WebAssembly feature checks by validating tiny hand-assembled modules (no instantiation, works in
// browsers and Node). The kernel factory picks the build from these answers.

// (func (result v128) i32.const 0 i32x4.splat)
const SIMD = [0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 8, 1, 6, 0, 65, 0, 253, 17, 11];
// (func (result v128) three splats, f32x4.relaxed_madd)  — opcode 0xfd 0x105
const RELAXED = [
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 19, 1, 17, 0, 65, 0, 253, 17, 65, 0, 253, 17, 65, 0, 253, 17, 253, 133, 2, 11,
];
// (memory 1 1 shared)
const SHARED_MEMORY = [0, 97, 115, 109, 1, 0, 0, 0, 5, 4, 1, 3, 1, 1];

export interface WasmFeatures {
  wasm: boolean;
  simd: boolean;
  relaxedSimd: boolean; // Node 20: only with --experimental-wasm-relaxed-simd
  threads: boolean; // shared memory + SharedArrayBuffer + Atomics (browsers: cross-origin isolated)
}

function validates(bytes: number[]): boolean {
  try {
    return WebAssembly.validate(new Uint8Array(bytes));
  } catch {
    return false;
  }
}

/** What this runtime supports right now (relaxed SIMD can change if V8 flags are set later). */
export function detectWasmFeatures(): WasmFeatures {
  const wasm = typeof WebAssembly === "object" && typeof WebAssembly.validate === "function";
  const simd = wasm && validates(SIMD);
  return {
    wasm,
    simd,
    relaxedSimd: simd && validates(RELAXED),
    threads: wasm && typeof SharedArrayBuffer === "function" && typeof Atomics === "object" && validates(SHARED_MEMORY),
  };
}
