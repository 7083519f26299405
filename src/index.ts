// Library entry point.
export * from "./spec/types.js";
export * from "./dtypes/table.js";
export * from "./dtypes/codecs.js";
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
// Model runtime: load an HF folder or a .gguf, generate, serve.
export { openRuntime } from "./generate/runtime.js";
export type { Runtime, RuntimeOptions } from "./generate/runtime.js";
export { generate, generateAsync, Batch } from "./generate/generate.js";
export type { GenerateOptions, GenerateResult, SequenceResult, SequenceOptions, BatchOptions, AsyncGenerateOptions } from "./generate/generate.js";
export { loadModel, DecoderModel } from "./models/index.js";
export type { LoadedModel, LoadOptions } from "./models/index.js";
export { loadTokenizer, tokenizerFromGguf, applyChatTemplate, encodeRendered } from "./formats/tokenizer.js";
export type { TextTokenizer, ChatMessage } from "./formats/tokenizer.js";
export { exportGguf } from "./formats/export.js";
export { startServer } from "./serve/server.js";
export type { ServerOptions, ApiServer } from "./serve/server.js";
export { defaultModelDir } from "./package-root.js";
