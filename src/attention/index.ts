// The attention library: configuration, prefill/decode over a KV cache, any numKvHeads.
export * from "./config.js";
export * from "./attention.js";
