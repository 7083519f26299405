// Continuous batching for `mqa serve`: one Batch (src/generate/generate.ts) that requests join as
// soon as it has free slots and leave when they finish; the others wait in arrival order. Each
// step is one forward over every running sequence, so concurrent requests share the weight reads
// that dominate decode on a CPU. The loop yields to the event loop after every step: streamed text
// leaves the sockets as it is made, new requests join, and aborted ones drop out.
//
// Memory: the Batch's paged KV pool holds `slots` sequences of the model's full context, reserved
// while any request runs and freed when the server goes idle; with prefixCache the batch and its
// pool stay (the cached prompt blocks live there) until close().
//
// Back-pressure: at most `maxQueue` requests wait; one more is refused at once (QueueFull, the
// server's 429 with Retry-After), and a request that waits longer than `queueTimeoutSeconds` is
// dropped from the line (QueueTimeout, the server's 503). Nothing waits without bound.
import { Batch, yieldToEventLoop, type SequenceOptions, type SequenceResult } from "../generate/generate.js";
import type { KvDtype } from "../kernels/types.js";
import type { DecoderModel } from "../models/decoder.js";

/** What a request gets back: its sequences and their timings (wall time, shared with other requests). */
export interface JobResult {
  sequences: SequenceResult[];
  prefillTokens: number;
  prefillSeconds: number; // the longest of its sequences
  decodeTokens: number; // tokens generated
  decodeSeconds: number; // the longest of its sequences
  aborted: boolean; // its signal fired before every sequence finished
}

/** The wait queue is full: retry after about `retryAfterSeconds`. */
export class QueueFull extends Error {
  constructor(readonly retryAfterSeconds: number, queued: number) {
    super(`the server is busy: ${queued} requests are already waiting for a slot; retry in about ${retryAfterSeconds} s`);
    this.name = "QueueFull";
  }
}

/** A request waited longer than the queue timeout without getting a slot. */
export class QueueTimeout extends Error {
  constructor(seconds: number) {
    super(`the request waited ${seconds} s for a free slot and was dropped; retry later`);
    this.name = "QueueTimeout";
  }
}

interface Entry {
  prompts: number[][];
  timer: ReturnType<typeof setTimeout> | null; // the queue timeout, cleared on admission
  options: SequenceOptions[]; // one per prompt
  stop: AbortController; // fires on the client's signal, or when adding the job failed
  results: SequenceResult[];
  left: number; // sequences not finished
  out: JobResult;
  resolve(r: JobResult): void;
  reject(e: unknown): void;
  admitted: number; // performance.now() when it joined the batch
}

export interface SchedulerOptions {
  model: DecoderModel;
  slots: number; // sequences generated at once, e.g. 4 (llama-server's --parallel)
  kvDtype?: KvDtype;
  prefillChunk?: number; // prompt tokens per step, shared by the prefilling sequences, default 512
  prefixCache?: boolean; // reuse KV blocks of earlier prompts; the batch (and its pool) then stays between requests
  maxQueue?: number; // requests that may wait for slots, default unbounded (mqa serve: 4 × slots)
  queueTimeoutSeconds?: number; // longest wait for a slot, default unbounded
}

export class Scheduler {
  private batch: Batch | null = null;
  private waiting: Entry[] = [];
  private inflight = new Set<Entry>();
  private loop: Promise<void> = Promise.resolve();
  private looping = false;
  private hitsBefore = 0; // prefix-cache counts of batches already disposed
  private reusedBefore = 0;
  private meanSeconds = 1; // running mean of a request's time in the batch, for Retry-After

  constructor(private readonly opts: SchedulerOptions) {}

  /** Requests generating now. */
  get running(): number {
    return this.inflight.size;
  }

  /** Requests waiting for free slots. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Generates `prompts` (at most `slots` of them) with per-prompt options; resolves when all are
   * done, or at once with `aborted` when `signal` fires first.
   */
  submit(prompts: number[][], options: SequenceOptions[], signal?: AbortSignal): Promise<JobResult> {
    if (prompts.length > this.opts.slots) throw new Error(`Scheduler.submit: ${prompts.length} prompts but ${this.opts.slots} slots`);
    const { maxQueue = Infinity, queueTimeoutSeconds = Infinity } = this.opts;
    // A request that would have to wait, behind a full line, is refused now.
    if (this.waiting.length >= maxQueue && (this.waiting.length > 0 || this.inflightSequences() + prompts.length > this.opts.slots)) {
      const waves = Math.ceil((this.waiting.length + 1) / this.opts.slots);
      return Promise.reject(new QueueFull(Math.max(1, Math.min(60, Math.ceil(waves * this.meanSeconds))), this.waiting.length));
    }
    return new Promise<JobResult>((resolve, reject) => {
      const stop = new AbortController();
      if (signal?.aborted) stop.abort();
      signal?.addEventListener("abort", () => stop.abort(), { once: true });
      const out: JobResult = { sequences: [], prefillTokens: prompts.reduce((a, p) => a + p.length, 0), prefillSeconds: 0, decodeTokens: 0, decodeSeconds: 0, aborted: false };
      const entry: Entry = { prompts, timer: null, options, stop, results: [], left: prompts.length, out, resolve, reject, admitted: 0 };
      if (Number.isFinite(queueTimeoutSeconds)) {
        entry.timer = setTimeout(() => {
          const i = this.waiting.indexOf(entry);
          if (i < 0) return;
          this.waiting.splice(i, 1);
          entry.reject(new QueueTimeout(queueTimeoutSeconds));
        }, queueTimeoutSeconds * 1000);
      }
      this.waiting.push(entry);
      if (!this.looping) this.loop = this.run();
    });
  }

  private inflightSequences(): number {
    let n = 0;
    for (const e of this.inflight) n += e.left;
    return n;
  }

  /** Resolves once nothing runs or waits. */
  idle(): Promise<void> {
    return this.loop;
  }

  private async run(): Promise<void> {
    const { model, slots, kvDtype, prefillChunk, prefixCache } = this.opts;
    this.looping = true;
    try {
      this.batch ??= new Batch(model, { maxSequences: slots, kvDtype, prefillChunk, prefixCache });
      for (;;) {
        this.admit(this.batch);
        if (!this.batch.step() && this.waiting.length === 0) break;
        await yieldToEventLoop();
      }
    } catch (e) {
      // A bug (user input was checked before): every request in flight or waiting gets the error.
      for (const entry of [...this.inflight, ...this.waiting]) {
        if (entry.timer) clearTimeout(entry.timer);
        entry.reject(e);
      }
      this.inflight.clear();
      this.waiting = [];
      this.batch?.dispose(); // after a bug the pool is not trusted
      this.batch = null;
    } finally {
      this.looping = false;
      if (!prefixCache) this.dispose();
    }
  }

  /** Prefix-cache totals: sequences that reused cached blocks, and the prompt tokens reused. */
  get prefixStats(): { hits: number; reusedTokens: number } {
    return { hits: this.hitsBefore + (this.batch?.prefixHits ?? 0), reusedTokens: this.reusedBefore + (this.batch?.prefixReusedTokens ?? 0) };
  }

  /** Frees the batch and its KV pool (the prefix cache with it); the next request makes a new one. */
  dispose(): void {
    if (!this.batch) return;
    this.hitsBefore += this.batch.prefixHits;
    this.reusedBefore += this.batch.prefixReusedTokens;
    this.batch.dispose();
    this.batch = null;
  }

  /** Moves waiting requests into the batch while their prompts fit in the free slots (first come, first served). */
  private admit(batch: Batch): void {
    // Requests whose clients left while waiting are answered (aborted) wherever they are in line.
    for (const entry of this.waiting) {
      if (!entry.stop.signal.aborted) continue;
      if (entry.timer) clearTimeout(entry.timer);
      entry.resolve({ ...entry.out, aborted: true });
    }
    this.waiting = this.waiting.filter((entry) => !entry.stop.signal.aborted);
    while (this.waiting.length > 0) {
      const entry = this.waiting[0];
      if (batch.active + entry.prompts.length > this.opts.slots) return;
      this.waiting.shift();
      if (entry.timer) clearTimeout(entry.timer);
      entry.admitted = performance.now();
      this.inflight.add(entry);
      try {
        entry.prompts.forEach((p, b) => {
          entry.results[b] = batch.add(p, { ...entry.options[b], signal: entry.stop.signal, onDone: (r, info) => this.done(entry, info) });
        });
      } catch (e) {
        entry.stop.abort(); // the sequences already added drop out at the next step
        this.inflight.delete(entry);
        entry.reject(e);
      }
    }
  }

  private done(entry: Entry, info: { aborted: boolean; prefillSeconds: number; decodeSeconds: number }): void {
    const { out } = entry;
    out.aborted ||= info.aborted;
    out.prefillSeconds = Math.max(out.prefillSeconds, info.prefillSeconds);
    out.decodeSeconds = Math.max(out.decodeSeconds, info.decodeSeconds);
    if (--entry.left > 0 || !this.inflight.has(entry)) return;
    this.inflight.delete(entry);
    this.meanSeconds = 0.8 * this.meanSeconds + 0.2 * ((performance.now() - entry.admitted) / 1000);
    out.sequences = entry.results;
    out.decodeTokens = entry.results.reduce((a, s) => a + s.tokens.length, 0);
    entry.resolve(out);
  }
}
