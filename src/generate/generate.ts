// The generation loop: one ragged prefill of every prompt, then one batched decode step per token
// for the sequences still running, all in one KV cache (paged when there are several prompts).
// Stops on eos/stop tokens, stop strings or max tokens; streams text deltas through onText.
//
// Legend: B prompts, T_b prompt tokens, V vocabulary.
import { UserError } from "../errors.js";
import type { KvDtype } from "../kernels/types.js";
import type { DecoderModel } from "../models/decoder.js";
import { checkSampling, sampleToken, seededRandom, type SamplingOptions } from "./sampling.js";

export interface GenerateOptions extends SamplingOptions {
  maxTokens: number; // new tokens per prompt, e.g. 64
  stopTokens?: number[]; // e.g. eos ids from config.json
  stopStrings?: string[]; // generation ends when the text contains one (it is cut off)
  decode?: (ids: number[]) => string; // token ids → text (needed for text and stop strings)
  kvDtype?: KvDtype; // default f32
  prefillChunk?: number; // prompt tokens per sequence per forward call, default 512
  onText?: (seq: number, delta: string) => void; // streamed text of prompt `seq`
  onToken?: (seq: number, token: number) => void;
}

export interface SequenceResult {
  tokens: number[]; // generated ids (prompt excluded; a stop token is not included)
  text: string;
  finishReason: "stop" | "length";
}

export interface GenerateResult {
  sequences: SequenceResult[];
  prefillTokens: number;
  prefillSeconds: number;
  decodeTokens: number; // tokens produced by decode steps
  decodeSeconds: number;
  kvCacheBytes: number; // cached rows at the end (kvCacheBytes of every sequence's length)
  kvCacheReservedBytes: number;
}

/**
 * Generates continuations of `prompts` (token ids). Each prompt gets its own RNG stream
 * (seed + index), so a batch gives the same tokens as running the prompts one by one.
 */
export function generate(model: DecoderModel, prompts: number[][], opts: GenerateOptions): GenerateResult {
  const sampling = checkSampling(opts);
  if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 0) throw new UserError(`--max-tokens must be an integer >= 0, got ${opts.maxTokens}`);
  if (prompts.length === 0) throw new UserError("generate: no prompts");
  const ctx = model.maxContext;
  prompts.forEach((p, b) => {
    if (p.length === 0) throw new UserError(`prompt ${b} is empty; expected at least one token`);
    if (p.length > ctx) throw new UserError(`prompt ${b} has ${p.length} tokens but the model's context is ${ctx} tokens`);
  });
  const B = prompts.length;
  const cache = model.createCache({ kind: B > 1 ? "paged" : "contiguous", dtype: opts.kvDtype, maxTokens: ctx, maxSequences: B });
  try {
    const seqs = prompts.map(() => cache.addSequence());
    const stop = new Set(opts.stopTokens ?? []);
    const randoms = prompts.map((_, b) => seededRandom(sampling.seed + b));
    const out: SequenceResult[] = prompts.map(() => ({ tokens: [], text: "", finishReason: "length" }));
    const emitted = prompts.map(() => 0); // characters of text already streamed
    const t0 = performance.now();
    let logits = model.prefill(cache, seqs, prompts, opts.prefillChunk ?? 512);
    const t1 = performance.now();
    const V = model.spec.vocabSize;
    let live = prompts.map((_, b) => b);
    let decodeTokens = 0;
    for (let step = 0; step < opts.maxTokens && live.length > 0; step++) {
      const next: number[] = [];
      const still: number[] = [];
      live.forEach((b, i) => {
        const row = logits.subarray(i * V, (i + 1) * V);
        const tok = sampleToken(row, sampling, [...prompts[b], ...out[b].tokens], randoms[b]);
        if (stop.has(tok)) {
          out[b].finishReason = "stop";
          return;
        }
        out[b].tokens.push(tok);
        opts.onToken?.(b, tok);
        if (updateText(out[b], opts, emitted, b)) return;
        if (prompts[b].length + out[b].tokens.length >= ctx) return; // context full: "length"
        still.push(b);
        next.push(tok);
      });
      live = still;
      if (live.length === 0 || step === opts.maxTokens - 1) break;
      logits = model.forward(cache, live.map((b) => seqs[b]), next.map((t) => [t]), "last");
      decodeTokens += live.length;
    }
    const t2 = performance.now();
    // Flush streamed text that was held back (possible stop-string prefixes, partial UTF-8).
    out.forEach((r, b) => {
      if (opts.decode && r.finishReason !== "stop") r.text = opts.decode(r.tokens);
      if (opts.onText && r.text.length > emitted[b]) opts.onText(b, r.text.slice(emitted[b]));
    });
    return {
      sequences: out,
      prefillTokens: prompts.reduce((a, p) => a + p.length, 0),
      prefillSeconds: (t1 - t0) / 1000,
      decodeTokens,
      decodeSeconds: (t2 - t1) / 1000,
      kvCacheBytes: cache.bytes(),
      kvCacheReservedBytes: cache.reservedBytes(),
    };
  } finally {
    cache.dispose();
  }
}

/** Updates r.text, streams the safe part, and returns true when a stop string ended the sequence. */
function updateText(r: SequenceResult, opts: GenerateOptions, emitted: number[], b: number): boolean {
  if (!opts.decode) return false;
  const text = opts.decode(r.tokens);
  const stops = opts.stopStrings ?? [];
  for (const s of stops) {
    const at = s ? text.indexOf(s) : -1;
    if (at >= 0) {
      r.text = text.slice(0, at);
      r.finishReason = "stop";
      if (opts.onText && r.text.length > emitted[b]) opts.onText(b, r.text.slice(emitted[b]));
      emitted[b] = Math.max(emitted[b], r.text.length);
      return true;
    }
  }
  r.text = text;
  // Hold back a trailing partial UTF-8 character and any suffix that could start a stop string.
  let safe = text.length;
  while (safe > 0 && text[safe - 1] === "\uFFFD") safe--;
  for (const s of stops) {
    for (let k = Math.min(s.length - 1, safe); k > 0; k--) {
      if (text.slice(safe - k, safe) === s.slice(0, k)) {
        safe -= k;
        break;
      }
    }
  }
  if (opts.onText && safe > emitted[b]) {
    opts.onText(b, text.slice(emitted[b], safe));
    emitted[b] = safe;
  }
  return false;
}
