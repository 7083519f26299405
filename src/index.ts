// Library entry point.
export * from "./spec/types.js";
export * from "./kvcache/dtypes.js";
export * from "./kvcache/bytes.js";
export { UserError } from "./errors.js";
export * from "./attention/index.js";
export * from "./kvcache/index.js";
export { referenceKernels, referenceAttention, referenceMatmul } from "./kernels/reference.js";
export { Arena } from "./kernels/memory.js";
export type { AttentionCall, Kernels, KvDtype, KvSegment, MatmulCall, WeightDtype } from "./kernels/types.js";
export { createKernels } from "./kernels/index.js";
export type { CreateKernelsOptions, KernelBackend, KernelHandle } from "./kernels/index.js";
export * from "./planner/index.js";
export { loadSpec } from "./spec/load.js";
