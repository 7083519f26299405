// The KV cache: one interface (cache.ts), three forms, one byte count (bytes.ts).
//
// Legend: K kv heads, D head dim, W window, bs block size.
import type { Arena } from "../kernels/memory.js";
import type { KvCache, KvCacheConfig } from "./cache.js";
import { ContiguousKvCache, type ContiguousKvCacheOptions } from "./contiguous.js";
import { PagedKvCache, type PagedKvCacheOptions } from "./paged.js";
import { SlidingWindowKvCache, type SlidingWindowKvCacheOptions } from "./window.js";

export * from "./cache.js";
export { ContiguousKvCache, type ContiguousKvCacheOptions } from "./contiguous.js";
export { PagedKvCache, type PagedKvCacheOptions } from "./paged.js";
export { SlidingWindowKvCache, type SlidingWindowKvCacheOptions } from "./window.js";

/** Which form to build, with that form's options. */
export type KvCacheSpec =
  | (KvCacheConfig & { kind: "contiguous" } & ContiguousKvCacheOptions)
  | (KvCacheConfig & { kind: "paged" } & PagedKvCacheOptions)
  | (KvCacheConfig & { kind: "window" } & SlidingWindowKvCacheOptions);

/**
 * Builds a cache of the requested form.
 * @example createKvCache(arena, { kind: "paged", numLayers: 2, numKvHeads: 1, headDim: 64, dtype: "f16", blockSize: 16, numBlocks: 256 })
 */
export function createKvCache(arena: Arena, spec: KvCacheSpec): KvCache {
  switch (spec.kind) {
    case "contiguous":
      return new ContiguousKvCache(arena, spec, spec);
    case "paged":
      return new PagedKvCache(arena, spec, spec);
    case "window":
      return new SlidingWindowKvCache(arena, spec, spec);
    default:
      throw new RangeError(`createKvCache: kind must be "contiguous", "paged" or "window", got "${(spec as { kind: string }).kind}"`);
  }
}
