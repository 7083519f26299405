// The dtypes room, the ground floor every other folder may import: one table of element and
// block sizes (table.ts), the f16/bf16/int8 codecs (codecs.ts) GGML's Q8_0 blocks (q8_0.ts) and its
// 4/5/6-bit blocks (ggml_quants.ts).
export * from "./table.js";
export * from "./codecs.js";
export * from "./q8_0.js";
export * from "./ggml_quants.js";
