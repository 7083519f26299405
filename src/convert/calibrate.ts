// Calibration for the methods that need activations (pca): run the source model over a text and
// sum, per layer and target group, the statistics pool.ts merges heads with. The model runs on the
// WASM kernels through the runtime; the sums are float64.
import { UserError } from "../errors.js";
import { openRuntime } from "../generate/runtime.js";
import { accumulateStats, emptyStats, type LayerStats } from "./pool.js";
import { layerShape } from "./families.js";

export interface CalibrationOptions {
  text: string; // calibration text
  file: string; // its path, for messages
  K: number; // target KV heads
  maxTokens: number; // e.g. 32768
  window: number; // tokens per forward, e.g. 512 (capped at the model's context)
  threads?: number;
}

/** Per-layer statistics of the model at `dir` over the first maxTokens tokens of the text. */
export async function calibrate(dir: string, o: CalibrationOptions): Promise<{ stats: LayerStats[]; tokens: number }> {
  const rt = await openRuntime(dir, { threads: o.threads });
  try {
    const tok = rt.tokenizer;
    if (!tok) throw new UserError(`${dir}: no tokenizer; calibration needs one to tokenize ${o.file}`);
    const ids = tok.encode(o.text).slice(0, o.maxTokens);
    if (ids.length < 2) throw new UserError(`${o.file}: ${ids.length} tokens; calibration needs text (at least a sentence, ideally thousands of tokens)`);
    const model = rt.model;
    const shape = layerShape(model.spec);
    const stats = model.spec.layers.map(() => emptyStats(shape, o.K));
    model.observer = (l, k, v, N) => accumulateStats(stats[l], shape, o.K, k, v, N);
    const T = Math.min(o.window, model.maxContext);
    for (let s = 0; s < ids.length; s += T) {
      const cache = model.createCache({ maxTokens: T });
      const seq = cache.addSequence();
      model.forward(cache, [seq], [ids.slice(s, s + T)], "last");
      cache.dispose();
    }
    model.observer = null;
    return { stats, tokens: ids.length };
  } finally {
    rt.close();
  }
}
