// The HTTP side of `mqa serve` (node:http, no framework): routes, SSE streaming (chunks leave as
// tokens are made), client disconnects that stop the generation, errors. Generation goes through
// the Scheduler (scheduler.ts: continuous batching); request parsing and response shapes are in
// openai.ts.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { UserError } from "../errors.js";
import type { SequenceOptions } from "../generate/generate.js";
import type { KvDtype } from "../kernels/types.js";
import { QueueFull, QueueTimeout, Scheduler } from "./scheduler.js";
import { ApiError, completionResponse, envelope, logprobsObject, modelList, parseChat, parseCompletion, responseHead, streamChunk, usage, type Job, type Scored, type ServedModel } from "./openai.js";

export interface ServerOptions {
  served: ServedModel;
  kvDtype?: KvDtype; // KV cache storage for every request, default f32
  prefillChunk?: number; // prompt tokens per step, shared by the prefilling sequences, default 512
  prefixCache?: boolean; // reuse the KV blocks of earlier prompts' shared prefixes (default true; the KV pool then stays reserved)
  maxQueue?: number; // requests that may wait for a slot; one more gets 429 with Retry-After (default unbounded)
  queueTimeoutSeconds?: number; // a request waiting longer gets 503 (default unbounded)
  host?: string; // e.g. "127.0.0.1"
  port?: number; // 0 = any free port; default 8080
  apiKey?: string; // when set, every route but /health needs "Authorization: Bearer <key>"
  maxBodyBytes?: number; // request body limit, default 16 MiB
  log?: (line: string) => void; // one line per request (and per internal error)
  onRequestDone?: (r: RequestRecord) => void; // after every request (tests, metrics)
}

/** What happened to one request. */
export interface RequestRecord {
  method: string;
  path: string;
  status: number;
  promptTokens: number;
  completionTokens: number;
  aborted: boolean; // the client went away before the answer was complete
  seconds: number; // wall time, queueing included
  prefillSeconds: number;
  decodeSeconds: number;
}

/** Running totals for GET /metrics (llama-server's metric set, prefixed mqa:). */
class Metrics {
  promptTokens = 0;
  predictedTokens = 0;
  prefillSeconds = 0;
  decodeSeconds = 0;
  requests = new Map<string, number>(); // "route status" → count

  add(r: RequestRecord): void {
    this.promptTokens += r.completionTokens > 0 || r.prefillSeconds > 0 ? r.promptTokens : 0;
    this.predictedTokens += r.completionTokens;
    this.prefillSeconds += r.prefillSeconds;
    this.decodeSeconds += r.decodeSeconds;
    const key = `${r.path} ${r.status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  /** Prometheus text format. */
  text(scheduler: Scheduler): string {
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, samples: [string, number][]) => {
      lines.push(`# HELP mqa:${name} ${help}`, `# TYPE mqa:${name} ${type}`);
      for (const [labels, v] of samples) lines.push(`mqa:${name}${labels} ${v}`);
    };
    metric("prompt_tokens_total", "counter", "Prompt tokens prefilled.", [["", this.promptTokens]]);
    metric("prompt_seconds_total", "counter", "Seconds spent in prefill.", [["", this.prefillSeconds]]);
    metric("tokens_predicted_total", "counter", "Tokens generated.", [["", this.predictedTokens]]);
    metric("tokens_predicted_seconds_total", "counter", "Seconds spent in decode steps.", [["", this.decodeSeconds]]);
    metric("requests_processing", "gauge", "Requests generating now (continuous batching).", [["", scheduler.running]]);
    metric("requests_deferred", "gauge", "Requests waiting for a free slot.", [["", scheduler.queued]]);
    const prefix = scheduler.prefixStats;
    metric("prefix_cache_hits_total", "counter", "Prompts that started from cached KV blocks of an earlier prompt.", [["", prefix.hits]]);
    metric("prefix_cache_reused_tokens_total", "counter", "Prompt tokens taken from the prefix cache instead of prefilled.", [["", prefix.reusedTokens]]);
    const byRoute = [...this.requests].map(([k, v]): [string, number] => {
      const [route, status] = k.split(" ");
      return [`{route=${JSON.stringify(route)},status="${status}"}`, v];
    });
    metric("requests_total", "counter", "Finished requests by route and HTTP status.", byRoute);
    return lines.join("\n") + "\n";
  }
}

export interface ApiServer {
  url: string; // e.g. "http://127.0.0.1:8080" (the OpenAI base URL is url + "/v1")
  server: Server;
  close(): Promise<void>; // stops listening, drops connections, waits for the running generation to stop
}

interface Ctx {
  opts: ServerOptions;
  scheduler: Scheduler;
  metrics: Metrics;
  created: number; // unix seconds the server started (the model's "created")
}

type Handler = (ctx: Ctx, req: IncomingMessage, res: ServerResponse, rec: RequestRecord) => Promise<void>;

const ROUTES: Record<string, { method: "GET" | "POST"; auth: boolean; run: Handler }> = {
  "/health": { method: "GET", auth: false, run: async (ctx, _req, res) => sendJson(res, 200, { status: "ok", model: ctx.opts.served.id, slots: ctx.opts.served.parallel, running: ctx.scheduler.running, queued: ctx.scheduler.queued }) },
  "/v1/models": { method: "GET", auth: true, run: async (ctx, _req, res) => sendJson(res, 200, modelList(ctx.opts.served, ctx.created)) },
  "/v1/completions": { method: "POST", auth: true, run: async (ctx, req, res, rec) => runJob(ctx, parseCompletion(await readBody(ctx, req), ctx.opts.served), res, rec) },
  "/v1/chat/completions": { method: "POST", auth: true, run: async (ctx, req, res, rec) => runJob(ctx, await parseChat(await readBody(ctx, req), ctx.opts.served), res, rec) },
  "/metrics": { method: "GET", auth: true, run: async (ctx, _req, res) => {
    const text = ctx.metrics.text(ctx.scheduler);
    res.writeHead(200, { ...CORS, "Content-Type": "text/plain; version=0.0.4; charset=utf-8", "Content-Length": Buffer.byteLength(text) }).end(text);
  } },
  "/tokenize": { method: "POST", auth: true, run: tokenize },
  "/detokenize": { method: "POST", auth: true, run: detokenize },
};
/** GET /v1/models/{id}: the model object, or 404 for another id. */
const MODEL_ROUTE: (typeof ROUTES)[string] = {
  method: "GET", auth: true,
  run: async (ctx, req, res) => {
    const raw = (req.url ?? "").split("?")[0].replace(/\/+$/, "").slice("/v1/models/".length);
    let id: string;
    try {
      id = decodeURIComponent(raw);
    } catch {
      throw new ApiError(400, `model id "${raw}": malformed percent-encoding`, "model");
    }
    const model = modelList(ctx.opts.served, ctx.created).data[0];
    if (id !== model.id) throw new ApiError(404, `model "${id}" does not exist; this server has "${model.id}"`, "model", "model_not_found");
    sendJson(res, 200, model);
  },
};
// llama-server also answers without the /v1 prefix.
for (const p of ["/models", "/completions", "/chat/completions"]) ROUTES[p] = ROUTES[`/v1${p}`];

const CORS = { "Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, POST, OPTIONS", "Access-Control-Allow-Headers": "Content-Type, Authorization" };

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...CORS, "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

/** The body as a JSON object; 400 for empty or invalid JSON, 413 past maxBodyBytes. */
async function readBody(ctx: Ctx, req: IncomingMessage): Promise<Record<string, unknown>> {
  const limit = ctx.opts.maxBodyBytes ?? 16 * 1024 * 1024;
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    bytes += c.length;
    if (bytes <= limit) chunks.push(c); // past the limit: drain, then answer 413
  }
  if (bytes > limit) throw new ApiError(413, `request body is ${bytes} bytes; this server accepts at most ${limit}`, null, "body_too_large");
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") throw new ApiError(400, "request body is empty; expected a JSON object", null, "invalid_json");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, `request body is not valid JSON (${(e as Error).message})`, null, "invalid_json");
  }
  if (!body || typeof body !== "object" || Array.isArray(body)) throw new ApiError(400, `request body: expected a JSON object, got ${Array.isArray(body) ? "an array" : JSON.stringify(body)}`, null, "invalid_json");
  return body as Record<string, unknown>;
}

/** Server-sent events; the 200 header goes out with the first event, so a failure before it can still be a 4xx. */
class SseWriter {
  constructor(private readonly res: ServerResponse) {}

  send(event: unknown): void {
    const { res } = this;
    if (res.destroyed || res.writableEnded) return;
    if (!res.headersSent) res.writeHead(200, { ...CORS, "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache", Connection: "keep-alive", "X-Accel-Buffering": "no" });
    res.write(`data: ${JSON.stringify(event)}\n\n`);
  }

  done(): void {
    if (!this.res.writableEnded) this.res.end("data: [DONE]\n\n");
  }
}

/** Generates `job` through the scheduler and answers with one JSON body or an SSE stream. */
async function runJob(ctx: Ctx, job: Job, res: ServerResponse, rec: RequestRecord): Promise<void> {
  const { served } = ctx.opts;
  const abort = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) abort.abort(); // the client hung up before the answer was complete
  });
  rec.promptTokens = job.prompts.reduce((a, p) => a + p.length, 0);
  const head = responseHead(job.kind, served.id);
  const tok = served.tokenizer;
  const sse = job.stream ? new SseWriter(res) : null;
  // Tokens made but not yet sent (their text may be held back): they ride on the next chunk.
  const pending = job.prompts.map((): Scored => ({ ids: [], logprobs: [] }));
  const offsets = job.prompts.map((_, b) => job.echoTexts?.[b].length ?? 0); // text_offset of the next token
  const take = (b: number) => {
    const s = pending[b];
    pending[b] = { ids: [], logprobs: [] };
    if (job.options.logprobs === undefined) return { tokens: s.ids };
    const logprobs = logprobsObject(job, served, s, offsets[b]);
    if (job.kind === "text") offsets[b] += (logprobs as { tokens: string[] }).tokens.join("").length;
    return { tokens: s.ids, logprobs };
  };
  const opened = job.prompts.map(() => false);
  const open = (b: number) => {
    if (opened[b] || !sse) return;
    opened[b] = true;
    if (job.kind === "chat") sse.send(streamChunk(job, head, b, { role: "assistant", text: "" }));
    if (job.echoTexts) sse.send(streamChunk(job, head, b, { text: job.echoTexts[b] }));
  };
  // Prompt b samples with seed + b, as generate() does for a batch.
  const seed = job.options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const options = job.prompts.map((_, b): SequenceOptions => ({
    ...job.options,
    seed: seed + b,
    decode: tok ? (ids) => tok.decode(ids) : undefined,
    onToken: sse && (job.returnTokens || job.options.logprobs !== undefined)
      ? (t, lp) => {
        pending[b].ids.push(t);
        pending[b].logprobs.push(lp ?? null);
      }
      : undefined,
    onText: sse
      ? (text) => {
        open(b);
        sse.send(streamChunk(job, head, b, { text, ...take(b) }));
      }
      : undefined,
  }));
  const result = await ctx.scheduler.submit(job.prompts, options, abort.signal);
  rec.completionTokens = result.decodeTokens;
  rec.prefillSeconds = result.prefillSeconds;
  rec.decodeSeconds = result.decodeSeconds;
  rec.aborted = result.aborted;
  if (!result.aborted) {
    if (!sse) sendJson(res, 200, completionResponse(job, served, head, result));
    else {
      result.sequences.forEach((s, b) => {
        open(b);
        sse.send(streamChunk(job, head, b, take(b), s.finishReason));
      });
      if (job.includeUsage) sse.send({ ...envelope(head, job.kind === "chat" ? "chat.completion.chunk" : "text_completion"), choices: [], usage: usage(job, result) });
      sse.done();
    }
  }
  rec.status = res.headersSent ? res.statusCode : 499; // 499: client closed the request (nginx's code)
}

/** llama-server's POST /tokenize {content, add_special?} → {tokens}. */
async function tokenize(ctx: Ctx, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readBody(ctx, req);
  const tok = ctx.opts.served.tokenizer;
  if (typeof body.content !== "string") throw new ApiError(400, `content: expected a string, got ${JSON.stringify(body.content) ?? "nothing"}`, "content");
  if (!tok) throw new ApiError(400, "content: this model has no tokenizer", "content");
  sendJson(res, 200, { tokens: tok.encode(body.content) });
}

/** llama-server's POST /detokenize {tokens} → {content}. */
async function detokenize(ctx: Ctx, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readBody(ctx, req);
  const tok = ctx.opts.served.tokenizer;
  const V = ctx.opts.served.model.spec.vocabSize;
  const ids = body.tokens;
  if (!Array.isArray(ids) || !ids.every((t) => Number.isInteger(t) && t >= 0 && t < V)) throw new ApiError(400, `tokens: expected an array of token ids in [0, ${V})`, "tokens");
  if (!tok) throw new ApiError(400, "tokens: this model has no tokenizer", "tokens");
  sendJson(res, 200, { content: tok.decode(ids as number[]) });
}

/** Maps anything thrown to an OpenAI error body; only bugs are logged, and never with a stack trace. */
function sendError(ctx: Ctx, req: IncomingMessage, res: ServerResponse, e: unknown): number {
  let err: ApiError;
  if (e instanceof ApiError) err = e;
  else if (e instanceof QueueFull) {
    err = new ApiError(429, e.message, null, "queue_full");
    res.setHeader("Retry-After", String(e.retryAfterSeconds));
  } else if (e instanceof QueueTimeout) err = new ApiError(503, e.message, null, "queue_timeout");
  else if (e instanceof UserError) err = new ApiError(400, e.message);
  else {
    err = new ApiError(500, `internal error: ${(e as Error)?.message ?? String(e)}`);
    ctx.opts.log?.(`mqa serve: ${req.method} ${req.url}: ${err.message}`);
  }
  if (res.destroyed || res.writableEnded) return err.status;
  if (res.headersSent) {
    // Mid-stream: one error event, then the end of the stream.
    res.end(`data: ${JSON.stringify(err.body())}\n\n`);
    return res.statusCode;
  }
  if (err.status === 401) res.setHeader("WWW-Authenticate", "Bearer");
  sendJson(res, err.status, err.body());
  return err.status;
}

async function handle(ctx: Ctx, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const t0 = performance.now();
  const path = (req.url ?? "/").split("?")[0].replace(/\/+$/, "") || "/";
  const rec: RequestRecord = { method: req.method ?? "?", path, status: 200, promptTokens: 0, completionTokens: 0, aborted: false, seconds: 0, prefillSeconds: 0, decodeSeconds: 0 };
  try {
    if (req.method === "OPTIONS") {
      res.writeHead(204, CORS).end();
      rec.status = 204;
      return;
    }
    const route = ROUTES[path] ?? (path.startsWith("/v1/models/") ? MODEL_ROUTE : undefined);
    if (!route) throw new ApiError(404, `unknown route ${req.method} ${path}; this server has GET /health, GET /v1/models, POST /v1/completions, POST /v1/chat/completions, POST /tokenize, POST /detokenize, GET /metrics`, null, "not_found");
    if (req.method !== route.method) {
      res.setHeader("Allow", `${route.method}, OPTIONS`);
      throw new ApiError(405, `${path} takes ${route.method}, not ${req.method}`, null, "method_not_allowed");
    }
    const key = ctx.opts.apiKey;
    if (key && route.auth && req.headers.authorization !== `Bearer ${key}`) throw new ApiError(401, "missing or wrong API key (send the header \"Authorization: Bearer <key>\")", null, "invalid_api_key");
    await route.run(ctx, req, res, rec);
  } catch (e) {
    rec.status = sendError(ctx, req, res, e);
  } finally {
    rec.seconds = (performance.now() - t0) / 1000;
    if (rec.promptTokens > 0 || rec.status >= 400) {
      const tokens = rec.promptTokens > 0 ? ` ${rec.promptTokens} prompt + ${rec.completionTokens} completion tokens` : "";
      ctx.opts.log?.(`${rec.method} ${rec.path} ${rec.status}${tokens} ${rec.seconds.toFixed(2)} s${rec.aborted ? " (client closed)" : ""}`);
    }
    if (ROUTES[path]) ctx.metrics.add(rec); // unknown paths would make unbounded label sets
    ctx.opts.onRequestDone?.(rec);
  }
}

/**
 * Starts the OpenAI-compatible server for one loaded model; resolves once it listens.
 * @example const s = await startServer({ served: { id: "default", model, tokenizer, maxTokensDefault: 256, parallel: 4 }, port: 0 });
 *          await fetch(`${s.url}/v1/models`); await s.close();
 */
export async function startServer(opts: ServerOptions): Promise<ApiServer> {
  const ctx: Ctx = { opts, scheduler: new Scheduler({ model: opts.served.model, slots: opts.served.parallel, kvDtype: opts.kvDtype, prefillChunk: opts.prefillChunk, prefixCache: opts.prefixCache ?? true, maxQueue: opts.maxQueue, queueTimeoutSeconds: opts.queueTimeoutSeconds }), metrics: new Metrics(), created: Math.floor(Date.now() / 1000) };
  const host = opts.host ?? "127.0.0.1";
  const port = opts.port ?? 8080;
  const server = createServer((req, res) => void handle(ctx, req, res));
  server.on("clientError", (_e, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
  });
  await new Promise<void>((ok, fail) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      fail(e.code === "EADDRINUSE" || e.code === "EACCES" || e.code === "EADDRNOTAVAIL" || e.code === "ENOTFOUND" ? new UserError(`serve: cannot listen on ${host}:${port} (${e.code})`) : e),
    );
    server.listen(port, host, () => ok());
  });
  const address = server.address() as AddressInfo;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${address.port}`,
    server,
    close: async () => {
      const closed = new Promise<void>((ok) => server.close(() => ok()));
      server.closeAllConnections(); // open streams see "close" and abort their generation
      await closed;
      await ctx.scheduler.idle();
      ctx.scheduler.dispose();
    },
  };
}
