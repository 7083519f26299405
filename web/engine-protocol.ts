// Messages between the model page (web/model.ts) and the engine worker (web/engine-worker.ts).
// Legend: T prompt tokens, N positions so far (prompt + generated), H query heads, L layers.
import type { ModelSpec } from "../src/config/types.js";

export type EngineRequest =
  | { type: "load"; files: [string, ArrayBuffer][]; where: string; threads?: number }
  | { type: "generate"; prompt: string; maxTokens: number; maps?: boolean; ignoreEos?: boolean } // maps: hand over attention rows (default true); ignoreEos: run all maxTokens (the speed bench)
  | { type: "stop" };

/** One layer's attention rows that arrived in one forward: rows[h][i] = weights of query position pos0 + i over keys 0 .. pos0 + i. */
export interface StepMaps {
  layer: number;
  pos0: number;
  rows: number[][][]; // [H][rows of this step][keys]
}

/** headDivergence (src/generate/attention-maps.ts) of one layer over every row so far. */
export interface LayerDivergence {
  layer: number;
  withinGroup: number | null; // bits, mean over pairs of heads sharing a KV head
  betweenGroups: number | null; // bits, mean over pairs of heads of different KV heads
  pairsWithin: number;
  pairsBetween: number;
  rows: number; // query rows averaged over (row 0 excluded: it sees one key)
}

export type EngineEvent =
  | { type: "loaded"; spec: ModelSpec; where: string; kernels: string; threads: number; weightBytes: number; loadSeconds: number; hasTokenizer: boolean }
  | { type: "prompt"; tokens: number[]; labels: string[] }
  | { type: "step"; phase: "prefill" | "decode"; tokens: number[]; labels: string[]; text: string; positions: number; kvCacheBytes: number; maps: StepMaps[]; divergence: LayerDivergence[]; stepSeconds: number }
  | { type: "done"; tokens: number[]; text: string; finishReason: string; prefillTokens: number; prefillSeconds: number; decodeTokens: number; decodeSeconds: number; kvCacheBytes: number; aborted: boolean }
  | { type: "error"; message: string };
