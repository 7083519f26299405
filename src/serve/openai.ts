// The OpenAI API surface of `mqa serve`: request bodies → validated generation jobs, and the
// response / stream-chunk objects. No sockets here (server.ts does the HTTP).
//
// Every rejection is an ApiError whose message and `param` name the field, e.g.
// 400 {error: {message: "max_tokens: expected an integer >= 0, got \"x\"", type: "invalid_request_error", param: "max_tokens", code: null}}.
// Legend: B prompts in one request, V vocabulary, ctx the model's context (tokens).
import { randomUUID } from "node:crypto";
import { applyChatTemplate, encodeRendered, type ChatMessage, type TextTokenizer } from "../formats/tokenizer.js";
import type { SequenceOptions } from "../generate/generate.js";
import type { JobResult } from "./scheduler.js";
import type { TokenLogprob } from "../generate/sampling.js";
import type { DecoderModel } from "../models/decoder.js";

/** An error the client gets as {error: {message, type, param, code}} with HTTP `status`. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly param: string | null = null, readonly code: string | null = null) {
    super(message);
    this.name = "ApiError";
  }

  get type(): string {
    if (this.status === 401) return "authentication_error";
    if (this.status === 404) return "not_found_error";
    if (this.status === 429) return "rate_limit_error";
    return this.status >= 500 ? "server_error" : "invalid_request_error";
  }

  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** The model a server answers with. */
export interface ServedModel {
  id: string; // name in /v1/models and in every response, e.g. "default"
  model: DecoderModel;
  tokenizer: TextTokenizer | null; // null: prompts must be token ids, and texts are empty
  maxTokensDefault: number; // max_tokens when a request gives none, e.g. 256
  parallel: number; // sequences generated at once (continuous batching), also the most prompts per request, e.g. 4
}

/** A validated request: what to generate and how to answer. */
export interface Job {
  kind: "text" | "chat";
  prompts: number[][]; // [B][T_b] token ids
  echoTexts: string[] | null; // prompt texts to prepend (completions with echo: true)
  options: Omit<SequenceOptions, "decode" | "onText" | "onToken" | "onDone" | "signal">;
  stream: boolean;
  includeUsage: boolean; // stream_options.include_usage: one last chunk with usage
  returnTokens: boolean; // extension (llama-server): choices carry their token ids
}

type Body = Record<string, unknown>;

const show = (v: unknown) => (typeof v === "string" ? JSON.stringify(v) : JSON.stringify(v) ?? String(v));
const bad = (param: string, want: string, got: unknown) => new ApiError(400, `${param}: expected ${want}, got ${show(got)}`, param);

/** An optional number field (absent or null → undefined); `ok` says whether the value is allowed. */
function num(body: Body, param: string, want: string, ok: (n: number) => boolean, integer = false): number | undefined {
  const v = body[param];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || !ok(v)) throw bad(param, want, v);
  return v;
}

function bool(body: Body, param: string): boolean {
  const v = body[param];
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") throw bad(param, "true or false", v);
  return v;
}

/** Fields that exist in the OpenAI API but that this server does not implement: allowed only at their neutral value. */
function rejectUnsupported(body: Body, kind: Job["kind"]): void {
  num(body, "n", "1 (only one choice per prompt is supported)", (x) => x === 1, true);
  num(body, "best_of", "1 (best_of is not supported)", (x) => x === 1, true);
  const bias = body.logit_bias;
  if (bias !== undefined && bias !== null && !(typeof bias === "object" && Object.keys(bias).length === 0)) throw new ApiError(400, "logit_bias: not supported by this server", "logit_bias");
  if (typeof body.suffix === "string" && body.suffix !== "") throw new ApiError(400, "suffix: not supported by this server (no fill-in-the-middle)", "suffix");
  if (kind === "chat") {
    if (Array.isArray(body.tools) && body.tools.length > 0) throw new ApiError(400, "tools: tool calls are not supported by this server", "tools");
    const rf = body.response_format as { type?: unknown } | undefined | null;
    if (rf && rf.type !== "text") throw new ApiError(400, `response_format: only {"type": "text"} is supported, got ${show(rf)}`, "response_format");
  }
}

/** Sampling, length and stop fields shared by both endpoints. */
function generationOptions(body: Body, served: ServedModel, kind: Job["kind"]): Job["options"] {
  const maxName = kind === "chat" && body.max_completion_tokens !== undefined && body.max_completion_tokens !== null ? "max_completion_tokens" : "max_tokens";
  const maxTokens = num(body, maxName, "an integer >= 0", (x) => x >= 0, true) ?? served.maxTokensDefault;
  const topK = num(body, "top_k", "an integer >= 0 (0 or -1 = off)", (x) => x >= -1, true);
  let stop = body.stop;
  if (stop === undefined || stop === null) stop = [];
  if (typeof stop === "string") stop = [stop];
  if (!Array.isArray(stop) || !stop.every((s) => typeof s === "string")) throw bad("stop", "a string or an array of strings", body.stop);
  const ignoreEos = bool(body, "ignore_eos");
  return {
    maxTokens,
    temperature: num(body, "temperature", "a number >= 0 (0 = greedy)", (x) => x >= 0) ?? 1, // OpenAI's default
    topP: num(body, "top_p", "a number in (0, 1]", (x) => x > 0 && x <= 1),
    topK: topK === -1 ? 0 : topK,
    minP: num(body, "min_p", "a number in [0, 1)", (x) => x >= 0 && x < 1),
    repetitionPenalty: num(body, "repetition_penalty", "a number > 0 (1 = off)", (x) => x > 0),
    frequencyPenalty: num(body, "frequency_penalty", "a number in [-2, 2]", (x) => Math.abs(x) <= 2),
    presencePenalty: num(body, "presence_penalty", "a number in [-2, 2]", (x) => Math.abs(x) <= 2),
    seed: num(body, "seed", "an integer", Number.isSafeInteger, true),
    stopStrings: (stop as string[]).filter((s) => s !== ""),
    stopTokens: ignoreEos ? [] : served.tokenizer?.eosIds ?? [],
    logprobs: logprobsField(body, kind),
  };
}

/**
 * Alternatives per token when logprobs are wanted, else undefined. Completions: logprobs is that
 * number (0-20); chat: logprobs true, with top_logprobs (0-20) alternatives.
 */
function logprobsField(body: Body, kind: Job["kind"]): number | undefined {
  const want = "an integer in [0, 20] (alternatives per token)";
  if (kind === "text") return body.logprobs === false ? undefined : num(body, "logprobs", want, (x) => x >= 0 && x <= 20, true);
  const top = num(body, "top_logprobs", want, (x) => x >= 0 && x <= 20, true);
  if (!bool(body, "logprobs")) {
    if (top) throw new ApiError(400, "top_logprobs: needs \"logprobs\": true", "top_logprobs");
    return undefined;
  }
  return top ?? 0;
}

function needTokenizer(served: ServedModel, param: string): TextTokenizer {
  if (!served.tokenizer) throw new ApiError(400, `${param}: this model has no tokenizer (no tokenizer.json); send the prompt as token ids to /v1/completions`, param);
  return served.tokenizer;
}

/** Checks one tokenized prompt against the vocabulary and the context. */
function checkPrompt(ids: number[], param: string, model: DecoderModel): number[] {
  if (ids.length === 0) throw new ApiError(400, `${param}: the prompt is empty (0 tokens); expected at least one token`, param);
  const V = model.spec.vocabSize;
  const badId = ids.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= V);
  if (badId >= 0) throw new ApiError(400, `${param}: token id ${show(ids[badId])} at index ${badId} is outside the vocabulary [0, ${V})`, param);
  if (ids.length > model.maxContext) {
    throw new ApiError(400, `${param}: the prompt has ${ids.length} tokens but the model's context is ${model.maxContext} tokens`, param, "context_length_exceeded");
  }
  return ids;
}

const isIds = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "number");

/** prompt: a string, an array of strings, an array of token ids, or an array of arrays of token ids. */
function parsePrompt(body: Body, served: ServedModel): { prompts: number[][]; texts: (string | null)[] } {
  const p = body.prompt;
  const want = "a string, an array of strings, an array of token ids or an array of arrays of token ids";
  if (p === undefined || p === null) throw new ApiError(400, `prompt: required (${want})`, "prompt");
  let items: (string | number[])[];
  if (typeof p === "string" || isIds(p)) items = [p];
  else if (Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === "string" || isIds(x))) items = p as (string | number[])[];
  else throw bad("prompt", want, p);
  if (items.length > served.parallel) throw new ApiError(400, `prompt: ${items.length} prompts in one request; this server takes at most ${served.parallel} (--parallel)`, "prompt");
  const prompts = items.map((x, b) => {
    const param = items.length > 1 ? `prompt[${b}]` : "prompt";
    return checkPrompt(typeof x === "string" ? needTokenizer(served, param).encode(x) : x, param, served.model);
  });
  return { prompts, texts: items.map((x) => (typeof x === "string" ? x : null)) };
}

/** Validates a /v1/completions body. */
export function parseCompletion(body: Body, served: ServedModel): Job {
  rejectUnsupported(body, "text");
  const options = generationOptions(body, served, "text");
  const { prompts, texts } = parsePrompt(body, served);
  const echo = bool(body, "echo");
  const stream = bool(body, "stream");
  const tok = served.tokenizer;
  // echo + logprobs scores the prompt too (what lm-eval-harness's loglikelihood requests send).
  options.promptLogprobs = echo && options.logprobs !== undefined;
  if (options.promptLogprobs && stream) throw new ApiError(400, "echo: echo with logprobs (prompt logprobs) works without streaming only; send \"stream\": false", "echo");
  return {
    kind: "text",
    prompts,
    echoTexts: echo ? texts.map((t, b) => t ?? (tok ? tok.decode(prompts[b]) : "")) : null,
    options,
    stream,
    includeUsage: streamUsage(body),
    returnTokens: bool(body, "return_tokens"),
  };
}

function streamUsage(body: Body): boolean {
  const so = body.stream_options;
  if (so === undefined || so === null) return false;
  if (typeof so !== "object" || Array.isArray(so)) throw bad("stream_options", "an object like {\"include_usage\": true}", so);
  return bool(so as Body, "include_usage");
}

/** messages[i].content: a string, null, or an array of {type: "text", text} parts. */
function messageText(content: unknown, param: string): string {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content.map((part, j) => {
      const p = part as { type?: unknown; text?: unknown } | null;
      if (!p || p.type !== "text" || typeof p.text !== "string") throw bad(`${param}[${j}]`, "a {\"type\": \"text\", \"text\": string} part (images and audio are not supported)", part);
      return p.text;
    }).join("");
  }
  throw bad(param, "a string or an array of text parts", content);
}

/** Validates a /v1/chat/completions body and renders the messages with the model's chat template. */
export async function parseChat(body: Body, served: ServedModel): Promise<Job> {
  rejectUnsupported(body, "chat");
  const options = generationOptions(body, served, "chat");
  const raw = body.messages;
  if (!Array.isArray(raw) || raw.length === 0) throw bad("messages", "a non-empty array of {role, content}", raw);
  const messages: ChatMessage[] = raw.map((m, i) => {
    if (!m || typeof m !== "object" || Array.isArray(m)) throw bad(`messages[${i}]`, "an object {role, content}", m);
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (typeof role !== "string" || role === "") throw bad(`messages[${i}].role`, "a string such as \"system\", \"user\" or \"assistant\"", role);
    return { role, content: messageText(content, `messages[${i}].content`) };
  });
  const tok = needTokenizer(served, "messages");
  if (!tok.chatTemplate) {
    throw new ApiError(400, `messages: model "${served.id}" has no chat template (no chat_template in tokenizer_config.json or the GGUF); start the server with --chat-template <file>, or use /v1/completions`, "messages", "no_chat_template");
  }
  let text: string;
  try {
    text = await applyChatTemplate(tok, messages, served.id);
  } catch (e) {
    throw new ApiError(400, `messages: ${(e as Error).message}`, "messages");
  }
  return {
    kind: "chat",
    prompts: [checkPrompt(encodeRendered(tok, text), "messages", served.model)],
    echoTexts: null,
    options,
    stream: bool(body, "stream"),
    includeUsage: streamUsage(body),
    returnTokens: bool(body, "return_tokens"),
  };
}

/** The id, creation time and model shared by a response and all its stream chunks. */
export interface ResponseHead {
  id: string; // "cmpl-…" or "chatcmpl-…"
  created: number; // unix seconds
  model: string;
}

export function responseHead(kind: Job["kind"], model: string): ResponseHead {
  return { id: `${kind === "chat" ? "chatcmpl" : "cmpl"}-${randomUUID().replace(/-/g, "")}`, created: Math.floor(Date.now() / 1000), model };
}

/** {id, object, created, model}: the first fields of every answer, in OpenAI's order. */
export function envelope(head: ResponseHead, object: string) {
  return { id: head.id, object, created: head.created, model: head.model };
}

export function usage(job: Job, result: JobResult) {
  const prompt = job.prompts.reduce((a, p) => a + p.length, 0);
  const completion = result.sequences.reduce((a, s) => a + s.tokens.length, 0);
  const cached = result.sequences.reduce((a, s) => a + (s.cachedTokens ?? 0), 0);
  // OpenAI's prompt_tokens_details.cached_tokens: prompt tokens served from the prefix cache.
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: cached } };
}

/** llama-server's timings extension (milliseconds, tokens per second). */
export function timings(result: JobResult) {
  const perSecond = (n: number, s: number) => (n > 0 ? n / Math.max(s, 1e-9) : 0);
  return {
    cache_n: result.sequences.reduce((a, s) => a + (s.cachedTokens ?? 0), 0), // llama-server: prompt tokens reused from the cache
    prompt_n: result.prefillTokens,
    prompt_ms: result.prefillSeconds * 1000,
    prompt_per_second: perSecond(result.prefillTokens, result.prefillSeconds),
    predicted_n: result.decodeTokens,
    predicted_ms: result.decodeSeconds * 1000,
    predicted_per_second: perSecond(result.decodeTokens, result.decodeSeconds),
  };
}

/** Tokens with their logprobs (null: the first prompt token, which nothing scores). */
export interface Scored {
  ids: number[];
  logprobs: (TokenLogprob | null)[];
}

/**
 * OpenAI's logprobs object for `s`: completions' {tokens, token_logprobs, top_logprobs, text_offset}
 * (offsets count from `offset` characters), or chat's {content: [{token, logprob, bytes, top_logprobs}]}.
 * Each token is decoded alone, so a byte-level piece of a multi-byte character reads as U+FFFD.
 */
export function logprobsObject(job: Job, served: ServedModel, s: Scored, offset = 0) {
  const piece = (id: number) => served.tokenizer?.decode([id]) ?? "";
  const pieces = s.ids.map(piece);
  if (job.kind === "chat") {
    const entry = (token: string, logprob: number) => ({ token, logprob, bytes: [...Buffer.from(token, "utf8")] });
    return { content: s.logprobs.map((l, i) => ({ ...entry(pieces[i], l?.logprob ?? 0), top_logprobs: (l?.top ?? []).map((t) => entry(piece(t.token), t.logprob)) })) };
  }
  const textOffset: number[] = [];
  for (const p of pieces) {
    textOffset.push(offset);
    offset += p.length;
  }
  return {
    tokens: pieces,
    token_logprobs: s.logprobs.map((l) => l?.logprob ?? null),
    top_logprobs: s.logprobs.map((l) => (l ? Object.fromEntries(l.top.map((t) => [piece(t.token), t.logprob])) : null)),
    text_offset: textOffset,
  };
}

/** The non-streamed answer: text_completion or chat.completion. */
export function completionResponse(job: Job, served: ServedModel, head: ResponseHead, result: JobResult) {
  const choices = result.sequences.map((s, b) => {
    const tokens = job.returnTokens ? { tokens: s.tokens } : {};
    const scored: Scored = job.options.promptLogprobs ? { ids: [...job.prompts[b], ...s.tokens], logprobs: [...s.promptLogprobs!, ...s.logprobs!] } : { ids: s.tokens, logprobs: s.logprobs ?? [] };
    const logprobs = job.options.logprobs !== undefined ? logprobsObject(job, served, scored) : null;
    if (job.kind === "chat") return { index: b, message: { role: "assistant", content: s.text }, logprobs, finish_reason: s.finishReason, ...tokens };
    return { index: b, text: (job.echoTexts?.[b] ?? "") + s.text, logprobs, finish_reason: s.finishReason, ...tokens };
  });
  const object = job.kind === "chat" ? "chat.completion" : "text_completion";
  return { ...envelope(head, object), choices, usage: usage(job, result), timings: timings(result) };
}

/** One streamed chunk: a text delta of choice `index`, or (finishReason set) its last chunk. */
export function streamChunk(job: Job, head: ResponseHead, index: number, delta: { text?: string; role?: string; tokens?: number[]; logprobs?: unknown }, finishReason: string | null = null) {
  const tokens = job.returnTokens && delta.tokens ? { tokens: delta.tokens } : {};
  const logprobs = delta.logprobs ?? null;
  if (job.kind === "chat") {
    const d: Record<string, string> = {};
    if (delta.role) d.role = delta.role;
    if (delta.text !== undefined) d.content = delta.text;
    return { ...envelope(head, "chat.completion.chunk"), choices: [{ index, delta: d, logprobs, finish_reason: finishReason, ...tokens }] };
  }
  return { ...envelope(head, "text_completion"), choices: [{ index, text: delta.text ?? "", logprobs, finish_reason: finishReason, ...tokens }] };
}

/** The /v1/models list (one model). */
export function modelList(served: ServedModel, created: number) {
  return { object: "list", data: [{ id: served.id, object: "model", created, owned_by: "mqa", max_model_len: served.model.maxContext }] };
}
