// Library entry point.
export * from "./spec/types.js";
export * from "./kvcache/dtypes.js";
export * from "./kvcache/bytes.js";
export { UserError } from "./errors.js";
export * from "./attention/index.js";
export * from "./kvcache/index.js";
export { referenceKernels, referenceAttention, referenceMatmul } from "./kernels/reference.js";
