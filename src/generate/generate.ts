// The generation loop. A Batch holds sequences that share one KV cache (paged when there are
// several) and advances them together: each step is one ragged forward over every running
// sequence's next prompt chunk or last sampled token, then a sample per sequence. Sequences stop
// on eos/stop tokens, stop strings, max tokens or the context, and stream text deltas through onText.
// generate() is one Batch of all prompts run to the end; generateAsync() is the same but yields to
// the event loop between steps; the server keeps one Batch that requests join and leave.
//
// Legend: B prompts, T_b prompt tokens, V vocabulary.
import { OptionError, UserError } from "../errors.js";
import type { KvDtype } from "../kernels/types.js";
import type { KvCache, PagedKvCache } from "../kvcache/index.js";
import type { DecoderModel } from "../models/decoder.js";
import { checkSampling, sampleToken, seededRandom, tokenLogprob, type SamplingOptions, type TokenLogprob } from "./sampling.js";

/** What one sequence generates and when it stops: shared by generate() and Batch.add(). */
export interface SequenceLimits extends SamplingOptions {
  maxTokens: number; // new tokens per prompt, e.g. 64
  stopTokens?: number[]; // e.g. eos ids from config.json
  stopStrings?: string[]; // generation ends when the text contains one (it is cut off)
  decode?: (ids: number[]) => string; // token ids → text (needed for text and stop strings)
  logprobs?: number; // report each generated token's log-probability and this many alternatives (e.g. 5); undefined = none
  promptLogprobs?: boolean; // also for every prompt token after the first (prefill computes logits for all rows); needs logprobs
}

export interface GenerateOptions extends SequenceLimits {
  kvDtype?: KvDtype; // default f32
  prefillChunk?: number; // prompt tokens per forward call (shared by the prompts of a batch), default 512
  onText?: (seq: number, delta: string) => void; // streamed text of prompt `seq`
  onToken?: (seq: number, token: number, logprob?: TokenLogprob) => void; // logprob when opts.logprobs is set
}

export interface SequenceResult {
  tokens: number[]; // generated ids (prompt excluded; a stop token is not included)
  text: string;
  finishReason: "stop" | "length";
  logprobs?: TokenLogprob[]; // one per generated token, when opts.logprobs is set
  promptLogprobs?: (TokenLogprob | null)[]; // one per prompt token (the first has none), when opts.promptLogprobs
  cachedTokens?: number; // prompt tokens taken from the prefix cache instead of computed (Batch with prefixCache)
}

export interface GenerateResult {
  sequences: SequenceResult[];
  prefillTokens: number;
  prefillSeconds: number;
  decodeTokens: number; // tokens produced by decode steps
  decodeSeconds: number;
  kvCacheBytes: number; // cached rows at the end (kvCacheBytes of every sequence's length)
  kvCacheReservedBytes: number;
  aborted: boolean; // generateAsync's signal stopped the run (generate(): always false)
}

/**
 * Generates continuations of `prompts` (token ids). Each prompt gets its own RNG stream
 * (seed + index), so a batch gives the same tokens as running the prompts one by one.
 */
export function generate(model: DecoderModel, prompts: number[][], opts: GenerateOptions): GenerateResult {
  const run = startRun(model, prompts, opts);
  try {
    while (run.batch.step());
    return run.result(false);
  } finally {
    run.batch.dispose();
  }
}

/** generateAsync's extra option. */
export interface AsyncGenerateOptions extends GenerateOptions {
  signal?: AbortSignal; // aborting stops the run after the current step (e.g. the client hung up)
}

/**
 * generate() for a server: the same tokens (the same Batch steps), but it returns to the event
 * loop after every step (a prefill chunk or a decode step), so text streamed through onText leaves
 * the socket as it is produced and `signal` can stop the run. An aborted run resolves with
 * `aborted: true`, the tokens made so far, and no flush of held-back text.
 */
export async function generateAsync(model: DecoderModel, prompts: number[][], opts: AsyncGenerateOptions): Promise<GenerateResult> {
  const run = startRun(model, prompts, opts); // validates before the first await: bad input rejects at once
  try {
    await yieldToEventLoop();
    while (run.batch.step()) await yieldToEventLoop();
    return run.result(opts.signal?.aborted ?? false);
  } finally {
    run.batch.dispose();
  }
}

/** setImmediate, not a resolved promise: I/O (socket writes, a client's close) runs in between. */
export const yieldToEventLoop = () => new Promise<void>((ok) => setImmediate(ok));

/** generate()'s batch: every prompt added at once with seed + index, finished rows kept for kvCacheBytes. */
function startRun(model: DecoderModel, prompts: number[][], opts: AsyncGenerateOptions) {
  const { seed } = checkSampling(opts); // one base seed, also when it is random
  if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 0) throw new OptionError("maxTokens", `maxTokens must be an integer >= 0, got ${opts.maxTokens}`);
  if (prompts.length === 0) throw new UserError("generate: no prompts");
  const B = prompts.length;
  prompts.forEach((p, b) => checkPrompt(model, p, `prompt ${b}`));
  const batch = new Batch(model, { kind: B > 1 ? "paged" : "contiguous", kvDtype: opts.kvDtype, maxSequences: B, prefillChunk: opts.prefillChunk, keepFinished: true });
  try {
    const sequences = prompts.map((p, b) => batch.add(p, {
      ...opts, seed: seed + b,
      onText: opts.onText && ((d) => opts.onText!(b, d)),
      onToken: opts.onToken && ((t, lp) => opts.onToken!(b, t, lp)),
    }));
    const result = (aborted: boolean): GenerateResult => ({
      sequences,
      prefillTokens: prompts.reduce((a, p) => a + p.length, 0),
      prefillSeconds: batch.prefillSeconds,
      decodeTokens: batch.decodeTokens,
      decodeSeconds: batch.decodeSeconds,
      kvCacheBytes: batch.cache.bytes(),
      kvCacheReservedBytes: batch.cache.reservedBytes(),
      aborted,
    });
    return { batch, result };
  } catch (e) {
    batch.dispose();
    throw e;
  }
}

function checkPrompt(model: DecoderModel, p: number[], what: string): void {
  if (p.length === 0) throw new UserError(`${what} is empty; expected at least one token`);
  if (p.length > model.maxContext) throw new UserError(`${what} has ${p.length} tokens but the model's context is ${model.maxContext} tokens (${model.contextField})`);
}

/** What may differ between the sequences of one Batch. */
export interface SequenceOptions extends SequenceLimits {
  onText?: (delta: string) => void;
  onToken?: (token: number, logprob?: TokenLogprob) => void;
  onDone?: (result: SequenceResult, info: { aborted: boolean; prefillSeconds: number; decodeSeconds: number }) => void;
  signal?: AbortSignal; // aborting drops the sequence at the next step (its KV rows are freed)
}

export interface BatchOptions {
  maxSequences: number; // sequences at once (the cache's capacity), e.g. 4
  kind?: "paged" | "contiguous"; // default paged
  kvDtype?: KvDtype; // default f32
  prefillChunk?: number; // prompt tokens per step, shared by the prefilling sequences, default 512
  keepFinished?: boolean; // keep finished sequences' KV rows until dispose (generate() reports their bytes); default false
  prefixCache?: boolean; // paged: reuse the KV blocks of earlier prompts' full blocks (default false; see PagedKvCache)
}

/** One sequence of a Batch. */
interface Seq {
  prompt: number[];
  opts: SequenceOptions;
  sampling: Required<SamplingOptions>;
  random: () => number;
  stop: Set<number>;
  cacheSeq: number;
  out: SequenceResult;
  emitted: number; // characters of text already streamed
  prefilled: number; // prompt tokens in the cache
  last: number; // the sampled token to feed next (decoding)
  done: boolean;
  t0: number; // performance.now() when its first step began (0: not yet)
  t1: number; // ... and when its prefill ended (0: not yet)
}

/**
 * Sequences that share one KV cache and advance together, one forward per step(): each running
 * sequence contributes its next prompt chunk (prefill) or its last sampled token (decode), so
 * sequences can join while others decode (continuous batching, as vLLM and llama-server do) and
 * leave when they finish. generate() is one Batch whose prompts all join at the start.
 * @example const batch = new Batch(model, { maxSequences: 2 }); const r = batch.add([1, 2, 3], { maxTokens: 8 });
 *          while (batch.step()); batch.dispose(); // r.tokens
 */
export class Batch {
  readonly cache: KvCache;
  private seqs: Seq[] = []; // running
  private held = 0; // sequences with rows in the cache: running, plus finished ones when keepFinished
  prefillSeconds = 0; // wall time of the steps that held prefill rows
  decodeSeconds = 0; // ... and of the decode-only steps
  decodeTokens = 0; // rows fed back by decode
  prefixHits = 0; // sequences that started from cached prefix blocks (prefixCache)
  prefixReusedTokens = 0; // ... and the prompt tokens they did not compute

  constructor(private readonly model: DecoderModel, private readonly opts: BatchOptions) {
    const chunk = opts.prefillChunk ?? 512;
    if (!Number.isInteger(chunk) || chunk < 1) throw new UserError(`generate: prefillChunk must be an integer >= 1, got ${chunk}`);
    if (opts.prefixCache && (opts.kind ?? "paged") !== "paged") throw new OptionError("prefixCache", `prefixCache needs the paged cache (kind "paged"), got kind "${opts.kind}"`);
    this.cache = model.createCache({ kind: opts.kind ?? "paged", dtype: opts.kvDtype, maxTokens: model.maxContext, maxSequences: opts.maxSequences, prefixCache: opts.prefixCache });
  }

  /** Sequences still running (prefilling or decoding). */
  get active(): number {
    return this.seqs.length;
  }

  /** Adds a sequence that starts with the next step; its result object fills in as it runs. */
  add(prompt: number[], opts: SequenceOptions): SequenceResult {
    const sampling = checkSampling(opts);
    if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 0) throw new OptionError("maxTokens", `maxTokens must be an integer >= 0, got ${opts.maxTokens}`);
    checkPrompt(this.model, prompt, "prompt");
    const k = opts.logprobs;
    const V = this.model.spec.vocabSize;
    if (k !== undefined && (!Number.isInteger(k) || k < 0 || k > V)) throw new UserError(`generate: logprobs must be an integer in [0, ${V}], got ${k}`);
    if (opts.promptLogprobs && k === undefined) throw new UserError("generate: promptLogprobs needs logprobs (the number of alternatives, e.g. 0)");
    if (this.held >= this.opts.maxSequences) throw new Error(`Batch.add: ${this.held} sequences hold KV rows; the batch holds ${this.opts.maxSequences}`);
    this.held++;
    const out: SequenceResult = {
      tokens: [], text: "", finishReason: "length",
      ...(k !== undefined ? { logprobs: [] } : {}),
      ...(opts.promptLogprobs ? { promptLogprobs: [null] } : {}),
    };
    const cacheSeq = this.cache.addSequence();
    // Prompt logprobs need every prompt row's logits, so those prompts are computed in full.
    const reused = this.opts.prefixCache && !opts.promptLogprobs ? (this.cache as PagedKvCache).attachPrefix(cacheSeq, prompt) : 0;
    if (reused > 0) (this.prefixHits++, (this.prefixReusedTokens += reused));
    if (this.opts.prefixCache) out.cachedTokens = reused;
    this.seqs.push({ prompt, opts, sampling, random: seededRandom(sampling.seed), stop: new Set(opts.stopTokens ?? []), cacheSeq, out, emitted: 0, prefilled: reused, last: -1, done: false, t0: 0, t1: 0 });
    return out;
  }

  /**
   * One forward over every running sequence (a prompt chunk or one fed-back token each), then a
   * sample for each sequence whose prompt is complete; false once no sequence runs.
   */
  step(): boolean {
    for (const s of this.seqs) if (s.opts.signal?.aborted) this.finish(s, true);
    this.seqs = this.seqs.filter((s) => !s.done);
    if (this.seqs.length === 0) return false;
    const { model } = this;
    const V = model.spec.vocabSize;
    const t = performance.now();
    // Every decoding sequence feeds its last token; prefilling ones share a budget of prefillChunk
    // prompt tokens per step, in arrival order (vLLM's chunked prefill), so a long prompt that joins
    // delays the others' next token by one chunk's worth of compute at most.
    let budget = this.opts.prefillChunk ?? 512;
    const run: Seq[] = [];
    const inputs: number[][] = [];
    for (const s of this.seqs) {
      if (s.prefilled >= s.prompt.length) inputs.push([s.last]);
      else if (budget > 0) {
        const n = Math.min(budget, s.prompt.length - s.prefilled);
        budget -= n;
        inputs.push(s.prompt.slice(s.prefilled, s.prefilled + n));
      } else continue; // waits for a later step
      run.push(s);
    }
    const prefilling = run.some((s) => s.prefilled < s.prompt.length);
    // Prompt logprobs need every row's logits; otherwise only each sequence's last row.
    const all = run.some((s) => s.opts.promptLogprobs && s.prefilled < s.prompt.length);
    for (const s of run) if (s.t0 === 0) s.t0 = t;
    const logits = model.forward(this.cache, run.map((s) => s.cacheSeq), inputs, all ? "all" : "last");
    let row = 0;
    run.forEach((s, i) => {
      const n = inputs[i].length;
      const at = all ? row + n - 1 : i;
      if (s.prefilled < s.prompt.length) {
        if (s.opts.promptLogprobs) {
          // Row p scores prompt token p + 1; the prompt's last row is the next-token logits.
          for (let j = 0; j < n && s.prefilled + j + 1 < s.prompt.length; j++) {
            s.out.promptLogprobs!.push(tokenLogprob(logits.subarray((row + j) * V, (row + j + 1) * V), s.prompt[s.prefilled + j + 1], s.opts.logprobs!));
          }
        }
        s.prefilled += n;
        row += n;
        if (s.prefilled < s.prompt.length) return;
        // Only prompt blocks are indexed: their rows come from prefill, as a later prompt's would, so
        // reusing them gives the rows recomputing would (generated tokens' rows come from decode steps).
        if (this.opts.prefixCache) (this.cache as PagedKvCache).registerPrefix(s.cacheSeq, s.prompt);
        s.t1 = performance.now();
        if (s.opts.maxTokens === 0) return this.finish(s, false);
      } else {
        row += 1;
        this.decodeTokens++;
      }
      this.sample(s, logits.subarray(at * V, (at + 1) * V));
    });
    const seconds = (performance.now() - t) / 1000;
    if (prefilling) this.prefillSeconds += seconds;
    else this.decodeSeconds += seconds;
    this.seqs = this.seqs.filter((s) => !s.done);
    return this.seqs.length > 0;
  }

  /** Samples s's next token from `row` [V] and finishes s, or queues the token to be fed back. */
  private sample(s: Seq, row: Float32Array): void {
    const { out, opts } = s;
    const raw = opts.logprobs !== undefined ? row.slice() : null; // sampling applies penalties in place
    const tok = sampleToken(row, s.sampling, [...s.prompt, ...out.tokens], s.random, out.tokens);
    if (s.stop.has(tok)) {
      out.finishReason = "stop";
      return this.finish(s, false);
    }
    out.tokens.push(tok);
    const lp = raw ? tokenLogprob(raw, tok, opts.logprobs!) : undefined;
    if (lp) out.logprobs!.push(lp);
    opts.onToken?.(tok, lp);
    if (updateText(s)) return this.finish(s, false);
    if (s.prompt.length + out.tokens.length >= this.model.maxContext) return this.finish(s, false); // context full: "length"
    if (out.tokens.length >= opts.maxTokens) return this.finish(s, false); // the last sample is not fed back
    s.last = tok;
  }

  /** Ends s: unless aborted, flushes text that was held back (possible stop-string prefixes, partial UTF-8). */
  private finish(s: Seq, aborted: boolean): void {
    const { out, opts } = s;
    s.done = true;
    if (!aborted) {
      if (opts.decode && out.finishReason !== "stop" && out.tokens.length > 0) out.text = opts.decode(out.tokens); // tokenizers reject an empty list
      if (opts.onText && out.text.length > s.emitted) opts.onText(out.text.slice(s.emitted));
    }
    if (!this.opts.keepFinished) {
      this.cache.freeSequence(s.cacheSeq);
      this.held--;
    }
    const t2 = performance.now();
    const [t0, t1] = [s.t0 || t2, s.t1 || t2]; // aborted before or during prefill
    opts.onDone?.(out, { aborted, prefillSeconds: (t1 - t0) / 1000, decodeSeconds: (t2 - t1) / 1000 });
  }

  dispose(): void {
    this.cache.dispose();
  }
}

/** Updates s.out.text, streams the safe part, and returns true when a stop string ended the sequence. */
function updateText(s: Seq): boolean {
  const { out: r, opts } = s;
  if (!opts.decode) return false;
  const text = opts.decode(r.tokens);
  const stops = opts.stopStrings ?? [];
  for (const stop of stops) {
    const at = stop ? text.indexOf(stop) : -1;
    if (at >= 0) {
      r.text = text.slice(0, at);
      r.finishReason = "stop";
      if (opts.onText && r.text.length > s.emitted) opts.onText(r.text.slice(s.emitted));
      s.emitted = Math.max(s.emitted, r.text.length);
      return true;
    }
  }
  r.text = text;
  // Hold back a trailing partial UTF-8 character and any suffix that could start a stop string.
  let safe = text.length;
  while (safe > 0 && text[safe - 1] === "\uFFFD") safe--;
  for (const stop of stops) {
    for (let k = Math.min(stop.length - 1, safe); k > 0; k--) {
      if (text.slice(safe - k, safe) === stop.slice(0, k)) {
        safe -= k;
        break;
      }
    }
  }
  if (opts.onText && safe > s.emitted) {
    opts.onText(text.slice(s.emitted, safe));
    s.emitted = safe;
  }
  return false;
}
