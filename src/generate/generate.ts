// The generation loop: a ragged prefill of every prompt (in chunks), then one batched decode step
// per token for the sequences still running, all in one KV cache (paged when there are several
// prompts). Stops on eos/stop tokens, stop strings or max tokens; streams text deltas through onText.
// generate() runs to the end; generateAsync() yields to the event loop between steps (the server
// streams through it). Both drive the same Generation (prefillStep, step, finish).
//
// Legend: B prompts, T_b prompt tokens, V vocabulary.
import { UserError } from "../errors.js";
import type { KvDtype } from "../kernels/types.js";
import type { KvCache } from "../kvcache/index.js";
import type { DecoderModel } from "../models/decoder.js";
import { checkSampling, sampleToken, seededRandom, tokenLogprob, type SamplingOptions, type TokenLogprob } from "./sampling.js";

export interface GenerateOptions extends SamplingOptions {
  maxTokens: number; // new tokens per prompt, e.g. 64
  stopTokens?: number[]; // e.g. eos ids from config.json
  stopStrings?: string[]; // generation ends when the text contains one (it is cut off)
  decode?: (ids: number[]) => string; // token ids → text (needed for text and stop strings)
  kvDtype?: KvDtype; // default f32
  prefillChunk?: number; // prompt tokens per sequence per forward call, default 512
  onText?: (seq: number, delta: string) => void; // streamed text of prompt `seq`
  onToken?: (seq: number, token: number, logprob?: TokenLogprob) => void; // logprob when opts.logprobs is set
  logprobs?: number; // report each generated token's log-probability and this many alternatives (e.g. 5); undefined = none
  promptLogprobs?: boolean; // also for every prompt token after the first (prefill computes logits for all rows); needs logprobs
}

export interface SequenceResult {
  tokens: number[]; // generated ids (prompt excluded; a stop token is not included)
  text: string;
  finishReason: "stop" | "length";
  logprobs?: TokenLogprob[]; // one per generated token, when opts.logprobs is set
  promptLogprobs?: (TokenLogprob | null)[]; // one per prompt token (the first has none), when opts.promptLogprobs
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
  const run = new Generation(model, prompts, opts);
  try {
    while (run.prefillStep());
    while (run.step());
    return run.finish(false);
  } finally {
    run.dispose();
  }
}

/** generateAsync's extra option. */
export interface AsyncGenerateOptions extends GenerateOptions {
  signal?: AbortSignal; // aborting stops the run after the current step (e.g. the client hung up)
}

/**
 * generate() for a server: the same tokens (the same prefill and decode steps), but it returns to
 * the event loop after every prefill chunk and decode step, so text streamed through onText leaves
 * the socket as it is produced and `signal` can stop the run. An aborted run resolves with
 * `aborted: true`, the tokens made so far, and no flush of held-back text.
 */
export async function generateAsync(model: DecoderModel, prompts: number[][], opts: AsyncGenerateOptions): Promise<GenerateResult> {
  const run = new Generation(model, prompts, opts); // validates before the first await: bad input rejects at once
  const stopped = () => opts.signal?.aborted ?? false;
  try {
    await yieldToEventLoop();
    while (!stopped() && run.prefillStep()) await yieldToEventLoop();
    while (!stopped() && run.step()) await yieldToEventLoop();
    return run.finish(stopped());
  } finally {
    run.dispose();
  }
}

/** setImmediate, not a resolved promise: I/O (socket writes, a client's close) runs in between. */
const yieldToEventLoop = () => new Promise<void>((ok) => setImmediate(ok));

/**
 * One generation in progress: the state that generate() and generateAsync() advance with the
 * same prefillStep() and step(), so the two loops cannot drift apart.
 */
class Generation {
  private readonly sampling: Required<SamplingOptions>;
  private readonly cache: KvCache;
  private readonly seqs: number[]; // cache sequence of each prompt
  private readonly stop: Set<number>;
  private readonly randoms: (() => number)[];
  private readonly out: SequenceResult[];
  private readonly emitted: number[]; // characters of text already streamed, per prompt
  private logits: Float32Array; // [live, V] next-token logits of the live sequences
  private live: number[]; // prompts still generating, in the order of the logits rows
  private prefilled = 0; // prompt positions already in the cache (every prompt advances by one chunk per prefillStep)
  private steps = 0;
  private decodeTokens = 0;
  private t0 = 0; // performance.now() when prefill started (0: not yet)
  private t1 = 0; // ... and when it ended (0: not yet)

  constructor(private readonly model: DecoderModel, private readonly prompts: number[][], private readonly opts: GenerateOptions) {
    this.sampling = checkSampling(opts);
    if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 0) throw new UserError(`--max-tokens must be an integer >= 0, got ${opts.maxTokens}`);
    if (prompts.length === 0) throw new UserError("generate: no prompts");
    const chunk = opts.prefillChunk ?? 512;
    if (!Number.isInteger(chunk) || chunk < 1) throw new UserError(`generate: prefillChunk must be an integer >= 1, got ${chunk}`);
    const k = opts.logprobs;
    if (k !== undefined && (!Number.isInteger(k) || k < 0 || k > model.spec.vocabSize)) throw new UserError(`generate: logprobs must be an integer in [0, ${model.spec.vocabSize}], got ${k}`);
    if (opts.promptLogprobs && k === undefined) throw new UserError("generate: promptLogprobs needs logprobs (the number of alternatives, e.g. 0)");
    const ctx = model.maxContext;
    prompts.forEach((p, b) => {
      if (p.length === 0) throw new UserError(`prompt ${b} is empty; expected at least one token`);
      if (p.length > ctx) throw new UserError(`prompt ${b} has ${p.length} tokens but the model's context is ${ctx} tokens`);
    });
    const B = prompts.length;
    this.cache = model.createCache({ kind: B > 1 ? "paged" : "contiguous", dtype: opts.kvDtype, maxTokens: ctx, maxSequences: B });
    this.seqs = prompts.map(() => this.cache.addSequence());
    this.stop = new Set(opts.stopTokens ?? []);
    this.randoms = prompts.map((_, b) => seededRandom(this.sampling.seed + b));
    this.out = prompts.map((): SequenceResult => ({
      tokens: [], text: "", finishReason: "length",
      ...(k !== undefined ? { logprobs: [] } : {}),
      ...(opts.promptLogprobs ? { promptLogprobs: [null] } : {}),
    }));
    this.emitted = prompts.map(() => 0);
    this.live = prompts.map((_, b) => b);
    this.logits = new Float32Array(B * model.spec.vocabSize);
  }

  /**
   * Prefills the next chunk (prefillChunk tokens, default 512) of every prompt that has one, one
   * ragged forward as in DecoderModel.prefill; false once every prompt is in the cache. A prompt's
   * last chunk leaves its last-token logits in row b of this.logits.
   */
  prefillStep(): boolean {
    const { model, prompts } = this;
    const chunk = this.opts.prefillChunk ?? 512;
    const start = this.prefilled;
    if (start === 0) this.t0 = performance.now();
    const live = prompts.map((_, b) => b).filter((b) => prompts[b].length > start);
    const V = model.spec.vocabSize;
    const seqs = live.map((b) => this.seqs[b]);
    const pieces = live.map((b) => prompts[b].slice(start, start + chunk));
    if (this.opts.promptLogprobs) {
      // Every row: position p's logits score prompt token p + 1; a prompt's last row is its next-token logits.
      const all = model.forward(this.cache, seqs, pieces, "all");
      let row = 0;
      live.forEach((b, i) => {
        for (let t = 0; t < pieces[i].length; t++, row++) {
          const r = all.subarray(row * V, (row + 1) * V);
          const next = start + t + 1;
          if (next < prompts[b].length) this.out[b].promptLogprobs!.push(tokenLogprob(r, prompts[b][next], this.opts.logprobs!));
          else this.logits.set(r, b * V);
        }
      });
    } else {
      const logits = model.prefill(this.cache, seqs, pieces, chunk);
      live.forEach((b, i) => this.logits.set(logits.subarray(i * V, (i + 1) * V), b * V));
    }
    this.prefilled += chunk;
    if (prompts.some((p) => p.length > this.prefilled)) return true;
    this.t1 = performance.now();
    return false;
  }

  /** Samples one token per live sequence and feeds them back; false once every sequence is done. */
  step(): boolean {
    const { model, prompts, out, opts } = this;
    if (this.steps >= opts.maxTokens || this.live.length === 0) return false;
    const V = model.spec.vocabSize;
    const next: number[] = [];
    const still: number[] = [];
    this.live.forEach((b, i) => {
      const row = this.logits.subarray(i * V, (i + 1) * V);
      const raw = opts.logprobs !== undefined ? row.slice() : null; // sampling applies penalties in place
      const tok = sampleToken(row, this.sampling, [...prompts[b], ...out[b].tokens], this.randoms[b], out[b].tokens);
      if (this.stop.has(tok)) {
        out[b].finishReason = "stop";
        return;
      }
      out[b].tokens.push(tok);
      const lp = raw ? tokenLogprob(raw, tok, opts.logprobs!) : undefined;
      if (lp) out[b].logprobs!.push(lp);
      opts.onToken?.(b, tok, lp);
      if (updateText(out[b], opts, this.emitted, b)) return;
      if (prompts[b].length + out[b].tokens.length >= model.maxContext) return; // context full: "length"
      still.push(b);
      next.push(tok);
    });
    this.live = still;
    this.steps++;
    // The last sample is not fed back: nothing would read its logits.
    if (this.live.length === 0 || this.steps === opts.maxTokens) return false;
    this.logits = model.forward(this.cache, this.live.map((b) => this.seqs[b]), next.map((t) => [t]), "last");
    this.decodeTokens += this.live.length;
    return true;
  }

  /** The result; unless aborted, first flushes streamed text that was held back (possible stop-string prefixes, partial UTF-8). */
  finish(aborted: boolean): GenerateResult {
    const t2 = performance.now();
    const t0 = this.t0 || t2; // a run aborted during prefill spent all its time there
    const t1 = this.t1 || t2;
    const { opts } = this;
    if (!aborted) {
      this.out.forEach((r, b) => {
        if (opts.decode && r.finishReason !== "stop" && r.tokens.length > 0) r.text = opts.decode(r.tokens); // tokenizers reject an empty list
        if (opts.onText && r.text.length > this.emitted[b]) opts.onText(b, r.text.slice(this.emitted[b]));
      });
    }
    return {
      sequences: this.out,
      prefillTokens: this.prompts.reduce((a, p) => a + p.length, 0),
      prefillSeconds: (t1 - t0) / 1000,
      decodeTokens: this.decodeTokens,
      decodeSeconds: (t2 - t1) / 1000,
      kvCacheBytes: this.cache.bytes(),
      kvCacheReservedBytes: this.cache.reservedBytes(),
      aborted,
    };
  }

  dispose(): void {
    this.cache.dispose();
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
