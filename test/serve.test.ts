// `mqa serve`: the OpenAI-compatible server, in-process on port 0 with the shipped default model
// (no chat template) and a tiny PyTorch fixture that has one. Completions equal generate() token
// for token; streams concatenate to the same text and end with [DONE]; a client that hangs up stops
// the generation; bad requests get 4xx bodies naming the field; the CLI prints its URL as JSON.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { runCli } from "./cli-helpers.js";
import { MODELS_DIR } from "./models-helpers.js";
import { applyChatTemplate, tokenizerFromJson } from "../src/formats/tokenizer.js";
import { generate } from "../src/generate/generate.js";
import { openRuntime, type Runtime } from "../src/generate/runtime.js";
import { defaultModelDir } from "../src/package-root.js";
import { startServer, type ApiServer, type RequestRecord } from "../src/serve/server.js";

interface Served {
  rt: Runtime;
  server: ApiServer;
  records: RequestRecord[];
}

async function serve(path: string, id: string): Promise<Served> {
  const rt = await openRuntime(path, { backend: "auto", threads: 1, smallYoungGeneration: false }) // one thread: results independent of the machine;
  const records: RequestRecord[] = [];
  const server = await startServer({ served: { id, model: rt.model, tokenizer: rt.tokenizer, maxTokensDefault: 16, parallel: 8 }, port: 0, onRequestDone: (r) => records.push(r) });
  return { rt, server, records };
}

/**
 * The same model with each forward step taking at least `ms` longer. Tests whose point is that one
 * request is still generating while another arrives use it, so that the overlap holds however fast
 * the CPU is (the default model decodes a token in about a millisecond on a fast machine, as long as
 * an HTTP round trip); the tokens are unchanged.
 */
function paced<M extends object>(model: M, ms: number): M {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  return new Proxy(model, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver);
      if (key !== "forward" || typeof v !== "function") return typeof v === "function" ? v.bind(target) : v;
      return (...args: unknown[]) => {
        Atomics.wait(pause, 0, 0, ms);
        return v.apply(target, args);
      };
    },
  });
}

let def: Served; // models/default: context 256, no chat template
let chat: Served; // llama-gqa-f16 fixture: context 64, chat_template in tokenizer_config.json
before(async () => {
  def = await serve(defaultModelDir(), "default");
  chat = await serve(join(MODELS_DIR, "llama-gqa-f16"), "tiny-chat");
});
after(async () => {
  for (const s of [def, chat]) {
    await s?.server.close();
    s?.rt.close();
  }
});

async function post(s: Served, path: string, body: unknown): Promise<{ status: number; json: any }> {
  const r = await fetch(s.server.url + path, { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body) });
  return { status: r.status, json: await r.json() };
}

/** POSTs with stream: true; returns the parsed data: events and whether the stream ended with [DONE]. */
async function stream(s: Served, path: string, body: object): Promise<{ status: number; events: any[]; done: boolean; type: string | null }> {
  const r = await fetch(s.server.url + path, { method: "POST", body: JSON.stringify({ ...body, stream: true }) });
  const text = await r.text();
  const datas = text.split("\n\n").filter((e) => e.trim() !== "").map((e) => e.replace(/^data: /, ""));
  const done = datas.at(-1) === "[DONE]";
  return { status: r.status, events: (done ? datas.slice(0, -1) : datas).map((d) => JSON.parse(d)), done, type: r.headers.get("content-type") };
}

/** generate() on the same model object, as the server should run it. */
function direct(s: Served, prompt: number[], maxTokens: number) {
  const tok = s.rt.tokenizer!;
  return generate(s.rt.model, [prompt], { maxTokens, temperature: 0, stopTokens: tok.eosIds, decode: (ids) => tok.decode(ids) }).sequences[0];
}

test("GET /v1/models, /v1/models/{id} and /health", async () => {
  const m = await (await fetch(def.server.url + "/v1/models")).json();
  assert.equal(m.object, "list");
  assert.deepEqual(m.data.map((d: any) => [d.id, d.object, d.max_model_len]), [["default", "model", 256]]);
  const one = await (await fetch(def.server.url + "/v1/models/default")).json();
  assert.deepEqual(one, m.data[0]);
  const other = await fetch(def.server.url + "/v1/models/gpt-4");
  assert.equal(other.status, 404);
  assert.equal((await other.json()).error.code, "model_not_found");
  assert.equal((await fetch(def.server.url + "/v1/models/%E0%A4%A")).status, 400, "malformed percent-encoding is the client's mistake");
  const h = await (await fetch(def.server.url + "/health")).json();
  assert.equal(h.status, "ok");
});

test("greedy /v1/completions equals generate() token for token; a prompt array is one batch with the same answers", async () => {
  const tok = def.rt.tokenizer!;
  const prompts = ["In the beginning", "And the LORD said unto Moses", "We the people"];
  const want = prompts.map((p) => direct(def, tok.encode(p), 24));
  const r = await post(def, "/v1/completions", { model: "default", prompt: prompts[0], max_tokens: 24, temperature: 0, return_tokens: true });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const j = r.json;
  assert.match(j.id, /^cmpl-/);
  assert.equal(j.object, "text_completion");
  assert.equal(j.model, "default");
  assert.ok(Number.isInteger(j.created));
  assert.deepEqual(j.choices[0].tokens, want[0].tokens);
  assert.equal(j.choices[0].text, want[0].text);
  assert.equal(j.choices[0].finish_reason, want[0].finishReason);
  const promptTokens = tok.encode(prompts[0]).length;
  assert.deepEqual(j.usage, { prompt_tokens: promptTokens, completion_tokens: want[0].tokens.length, total_tokens: promptTokens + want[0].tokens.length, prompt_tokens_details: { cached_tokens: 0 } });
  // The same prompt as token ids, with echo: the text starts with the decoded prompt.
  const ids = await post(def, "/v1/completions", { prompt: tok.encode(prompts[0]), max_tokens: 24, temperature: 0, echo: true });
  assert.equal(ids.json.choices[0].text, tok.decode(tok.encode(prompts[0])) + want[0].text);
  const batch = await post(def, "/v1/completions", { prompt: prompts, max_tokens: 24, temperature: 0, return_tokens: true });
  assert.equal(batch.status, 200, JSON.stringify(batch.json));
  batch.json.choices.forEach((c: any, b: number) => {
    assert.equal(c.index, b);
    assert.deepEqual(c.tokens, want[b].tokens, `prompt ${b}`);
  });
  // Three requests at once run as one batch and get the same answers.
  const all = await Promise.all(prompts.map((p) => post(def, "/v1/completions", { prompt: p, max_tokens: 24, temperature: 0 })));
  all.forEach((a, b) => assert.equal(a.json.choices[0].text, want[b].text, `concurrent request ${b}`));
  // Sampling with a seed is reproducible.
  const sampled = { prompt: prompts[1], max_tokens: 12, temperature: 0.9, top_k: 40, top_p: 0.95, min_p: 0.01, repetition_penalty: 1.1, frequency_penalty: 0.5, presence_penalty: 0.2, seed: 7, return_tokens: true };
  const s1 = await post(def, "/v1/completions", sampled);
  const s2 = await post(def, "/v1/completions", sampled);
  assert.equal(s1.status, 200, JSON.stringify(s1.json));
  assert.deepEqual(s1.json.choices[0].tokens, s2.json.choices[0].tokens);
});

test("continuous batching: a request that arrives mid-generation joins the running batch, finishes first, and both answers equal generate()", async () => {
  const tok = def.rt.tokenizer!;
  const long = { prompt: "In the beginning", max_tokens: 120, temperature: 0, ignore_eos: true };
  const short = { prompt: "We the people", max_tokens: 6, temperature: 0, ignore_eos: true };
  // 120 steps of >= 5 ms: the long request runs >= 0.6 s, so the short one arrives while it generates on any CPU.
  const records: RequestRecord[] = [];
  const slow = await startServer({ served: { id: "default", model: paced(def.rt.model, 5), tokenizer: def.rt.tokenizer, maxTokensDefault: 16, parallel: 8 }, port: 0, onRequestDone: (r) => records.push(r) });
  const res = await fetch(slow.url + "/v1/completions", { method: "POST", body: JSON.stringify({ ...long, stream: true }) });
  const reader = res.body!.getReader();
  let text = new TextDecoder().decode((await reader.read()).value); // the long request is generating
  const s = await post({ ...def, server: slow, records }, "/v1/completions", short);
  for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value);
  const order = records.map((r) => r.completionTokens);
  assert.deepEqual(order, [6, 120], "the short request finished while the long one was still running");
  const ignoreEos = (p: string, n: number) => generate(def.rt.model, [tok.encode(p)], { maxTokens: n, temperature: 0, decode: (ids) => tok.decode(ids) }).sequences[0].text;
  assert.equal(s.json.choices[0].text, ignoreEos(short.prompt, 6));
  assert.ok(text.endsWith("data: [DONE]\n\n"));
  const longText = text.split("\n\n").filter((e) => e.startsWith("data: {")).map((e) => JSON.parse(e.slice(6)).choices[0].text).join("");
  assert.equal(longText, ignoreEos(long.prompt, 120));
  const h = await (await fetch(slow.url + "/health")).json();
  assert.deepEqual([h.status, h.running, h.queued], ["ok", 0, 0]);
  await slow.close();
});

test("prefix cache: a multi-turn history reuses the earlier turn's KV blocks, answers equal generate(), /metrics counts it; --no-prefix-cache reuses nothing", async () => {
  const tok = def.rt.tokenizer!;
  const turn1 = "And God said, Let there be light: and there was light. And God saw the light, that it was good: and God divided the light from the darkness.";
  const turn2 = turn1 + " And the evening and the morning were the first day. And God said";
  const metric = async (name: string) => Number(new RegExp(`^mqa:${name} (\\d+)`, "m").exec(await (await fetch(def.server.url + "/metrics")).text())![1]);
  const hits0 = await metric("prefix_cache_hits_total");
  const a = await post(def, "/v1/completions", { prompt: turn1, max_tokens: 8, temperature: 0, return_tokens: true });
  const b = await post(def, "/v1/completions", { prompt: turn2, max_tokens: 8, temperature: 0, return_tokens: true });
  const full1 = tok.encode(turn1).length;
  assert.ok(full1 >= 32, `turn 1 has ${full1} tokens: at least two 16-token blocks`);
  const cached = b.json.usage.prompt_tokens_details.cached_tokens;
  // Every full block turn 1 and turn 2 share (turn 2's tokens start with turn 1's but for a boundary token).
  const shared = tok.encode(turn2).findIndex((t, i) => t !== tok.encode(turn1)[i]);
  assert.equal(cached, Math.floor(shared / 16) * 16, `cached ${cached} of ${shared} shared prompt tokens`);
  assert.deepEqual(b.json.choices[0].tokens, direct(def, tok.encode(turn2), 8).tokens, "reuse never changes the answer");
  assert.deepEqual(a.json.choices[0].tokens, direct(def, tok.encode(turn1), 8).tokens);
  assert.ok((await metric("prefix_cache_hits_total")) >= hits0 + 1);
  assert.ok((await metric("prefix_cache_reused_tokens_total")) >= cached);
  const off = await startServer({ served: { id: "default", model: def.rt.model, tokenizer: def.rt.tokenizer, maxTokensDefault: 4, parallel: 1 }, port: 0, prefixCache: false });
  try {
    for (const p of [turn1, turn2]) {
      const r = await (await fetch(off.url + "/v1/completions", { method: "POST", body: JSON.stringify({ prompt: p, max_tokens: 8, temperature: 0 }) })).json();
      assert.equal(r.usage.prompt_tokens_details.cached_tokens, 0);
    }
  } finally {
    await off.close();
  }
});

test("streamed /v1/completions: SSE chunks concatenate to the non-streamed text and end with [DONE]; usage on request", async () => {
  const body = { prompt: "And God said", max_tokens: 20, temperature: 0, stop: [" the LORD"] };
  const whole = (await post(def, "/v1/completions", body)).json;
  const s = await stream(def, "/v1/completions", { ...body, stream_options: { include_usage: true } });
  assert.equal(s.status, 200);
  assert.match(s.type ?? "", /^text\/event-stream/);
  assert.ok(s.done, "ends with data: [DONE]");
  const usage = s.events.pop();
  assert.deepEqual(usage.choices, []);
  assert.deepEqual(usage.usage, whole.usage);
  assert.ok(s.events.length >= 3, `${s.events.length} chunks: the text arrives in pieces`);
  for (const e of s.events) assert.equal(e.object, "text_completion");
  assert.equal(new Set(s.events.map((e) => e.id)).size, 1, "one id for the whole stream");
  assert.equal(s.events.map((e) => e.choices[0].text).join(""), whole.choices[0].text);
  assert.deepEqual(s.events.map((e) => e.choices[0].finish_reason).filter((f) => f !== null), [whole.choices[0].finish_reason]);
});

test("logprobs: echo + max_tokens 0 scores the prompt like generate(); streamed logprobs equal the non-streamed ones; chat logprobs", async () => {
  const tok = def.rt.tokenizer!;
  const prompt = "And the LORD said unto Moses";
  const ids = tok.encode(prompt);
  const want = generate(def.rt.model, [ids], { maxTokens: 0, logprobs: 2, promptLogprobs: true }).sequences[0].promptLogprobs!;
  const r = await post(def, "/v1/completions", { prompt, max_tokens: 0, echo: true, logprobs: 2 });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const lp = r.json.choices[0].logprobs;
  assert.equal(r.json.choices[0].text, prompt);
  assert.deepEqual(lp.token_logprobs, want.map((l) => l?.logprob ?? null));
  assert.deepEqual(lp.tokens, ids.map((t) => tok.decode([t])));
  assert.equal(lp.top_logprobs[0], null);
  assert.deepEqual(Object.values(lp.top_logprobs[1]), want[1]!.top.map((t) => t.logprob));
  assert.deepEqual(lp.text_offset.slice(0, 2), [0, tok.decode([ids[0]]).length]);
  // Generated tokens: streamed chunks carry the logprobs of their tokens.
  const body = { prompt, max_tokens: 12, temperature: 0, logprobs: 1 };
  const whole = (await post(def, "/v1/completions", body)).json.choices[0].logprobs;
  assert.equal(whole.tokens.length, 12);
  assert.ok(whole.token_logprobs.every((x: number) => x <= 0 && Number.isFinite(x)));
  const s = await stream(def, "/v1/completions", body);
  const parts = s.events.map((e) => e.choices[0].logprobs).filter((l) => l !== null);
  for (const key of ["tokens", "token_logprobs", "top_logprobs", "text_offset"]) assert.deepEqual(parts.flatMap((p) => p[key]), whole[key], key);
  const c = await post(chat, "/v1/chat/completions", { messages: [{ role: "user", content: "the cat" }], max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 2 });
  assert.equal(c.status, 200, JSON.stringify(c.json));
  const content = c.json.choices[0].logprobs.content;
  assert.equal(content.length, c.json.usage.completion_tokens);
  assert.deepEqual(Object.keys(content[0]).sort(), ["bytes", "logprob", "token", "top_logprobs"]);
  assert.equal(content[0].top_logprobs.length, 2);
  assert.ok(content[0].top_logprobs[0].logprob >= content[0].logprob, "greedy: the chosen token is the most likely");
});

test("a client that hangs up mid-stream stops the generation", async () => {
  const before = def.records.length;
  const url = new URL(def.server.url + "/v1/completions");
  await new Promise<void>((ok, fail) => {
    const req = request(url, { method: "POST" }, (res) => {
      res.once("data", () => {
        req.destroy();
        ok();
      });
    });
    req.on("error", (e) => (req.destroyed ? undefined : fail(e)));
    req.end(JSON.stringify({ prompt: "In the beginning", max_tokens: 250, temperature: 0, ignore_eos: true, stream: true }));
  });
  while (def.records.length === before) await new Promise((r) => setTimeout(r, 10));
  const rec = def.records.at(-1)!;
  assert.equal(rec.aborted, true);
  assert.ok(rec.completionTokens < 250, `stopped after ${rec.completionTokens} of 250 tokens`);
  const h = await (await fetch(def.server.url + "/health")).json();
  assert.deepEqual([h.status, h.running, h.queued], ["ok", 0, 0]);
});

test("one slot: a request waits in line; its client leaving while queued answers it at once (aborted, no tokens)", async () => {
  const records: RequestRecord[] = [];
  // >= 5 ms per step: the 200-token request outlasts the polling below on any CPU.
  const one = await startServer({ served: { id: "default", model: paced(def.rt.model, 5), tokenizer: def.rt.tokenizer, maxTokensDefault: 4, parallel: 1 }, port: 0, onRequestDone: (r) => records.push(r) });
  const health = async () => (await fetch(one.url + "/health")).json();
  const until = async (ok: (h: any) => boolean) => {
    for (let h = await health(); !ok(h); h = await health()) await new Promise((r) => setTimeout(r, 5));
  };
  try {
    const long = new AbortController();
    const res = await fetch(one.url + "/v1/completions", { method: "POST", signal: long.signal, body: JSON.stringify({ prompt: "In", max_tokens: 200, ignore_eos: true, stream: true }) });
    const reader = res.body!.getReader();
    await reader.read();
    const queued = new AbortController();
    const second = fetch(one.url + "/v1/completions", { method: "POST", signal: queued.signal, body: JSON.stringify({ prompt: "We", max_tokens: 4 }) }).catch(() => "aborted");
    await until((h) => h.queued === 1 && h.running === 1);
    queued.abort();
    assert.equal(await second, "aborted");
    await until((h) => h.queued === 0);
    assert.equal((await health()).running, 1, "the long request still runs");
    const done = () => records.filter((r) => r.path === "/v1/completions");
    while (done().length === 0) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual([done()[0].status, done()[0].aborted, done()[0].completionTokens], [499, true, 0]);
    long.abort();
    await reader.read().catch(() => undefined);
  } finally {
    await one.close();
  }
});

test("back-pressure: beyond --max-queue a request gets 429 with Retry-After; waiting past --queue-timeout gets 503", async () => {
  const records: RequestRecord[] = [];
  // One slot, one place in line; >= 5 ms per step keeps the 200-token request running while we probe.
  const one = await startServer({ served: { id: "default", model: paced(def.rt.model, 5), tokenizer: def.rt.tokenizer, maxTokensDefault: 4, parallel: 1 }, port: 0, maxQueue: 1, queueTimeoutSeconds: 0.3, onRequestDone: (r) => records.push(r) });
  const health = async () => (await fetch(one.url + "/health")).json();
  const until = async (ok: (h: any) => boolean) => {
    for (let h = await health(); !ok(h); h = await health()) await new Promise((r) => setTimeout(r, 5));
  };
  const post = (body: object) => fetch(one.url + "/v1/completions", { method: "POST", body: JSON.stringify(body) });
  try {
    const long = new AbortController();
    const res = await fetch(one.url + "/v1/completions", { method: "POST", signal: long.signal, body: JSON.stringify({ prompt: "In", max_tokens: 200, ignore_eos: true, stream: true }) });
    const reader = res.body!.getReader();
    await reader.read();
    const waiting = post({ prompt: "We", max_tokens: 2 });
    await until((h) => h.queued === 1 && h.running === 1);
    const refused = await post({ prompt: "Be", max_tokens: 2 });
    assert.equal(refused.status, 429);
    const retry = Number(refused.headers.get("retry-after"));
    assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 60, `Retry-After ${refused.headers.get("retry-after")}`);
    const body = await refused.json();
    assert.equal(body.error.code, "queue_full");
    assert.equal(body.error.type, "rate_limit_error");
    // The waiting request outlives its 0.3 s in line (the long one runs >= 1 s): 503, and it leaves the queue.
    const timedOut = await waiting;
    assert.equal(timedOut.status, 503);
    assert.equal((await timedOut.json()).error.code, "queue_timeout");
    assert.equal((await health()).queued, 0);
    assert.equal((await health()).running, 1, "the long request still runs");
    long.abort();
    await reader.read().catch(() => undefined);
    await until((h) => h.running === 0);
    const ok = await post({ prompt: "We", max_tokens: 2 });
    assert.equal(ok.status, 200, "once idle, requests are served again");
    await ok.json();
    assert.deepEqual(records.filter((r) => r.status === 429 || r.status === 503).map((r) => r.status).sort(), [429, 503]);
  } finally {
    await one.close();
  }
});

test("/v1/chat/completions renders the chat template; streamed deltas start with the role and concatenate to the message", async () => {
  const tok = chat.rt.tokenizer!;
  const messages = [{ role: "system", content: "be brief" }, { role: "user", content: [{ type: "text", text: "the cat" }] }];
  const text = await applyChatTemplate(tok, [{ role: "system", content: "be brief" }, { role: "user", content: "the cat" }], "test");
  const want = direct(chat, tok.encode(text), 10);
  const r = await post(chat, "/v1/chat/completions", { model: "tiny-chat", messages, max_tokens: 10, temperature: 0, return_tokens: true });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.match(r.json.id, /^chatcmpl-/);
  assert.equal(r.json.object, "chat.completion");
  assert.deepEqual(r.json.choices[0].message, { role: "assistant", content: want.text });
  assert.deepEqual(r.json.choices[0].tokens, want.tokens);
  assert.equal(r.json.usage.prompt_tokens, tok.encode(text).length);
  const s = await stream(chat, "/v1/chat/completions", { messages, max_tokens: 10, temperature: 0 });
  assert.ok(s.done);
  for (const e of s.events) assert.equal(e.object, "chat.completion.chunk");
  assert.equal(s.events[0].choices[0].delta.role, "assistant");
  assert.equal(s.events.map((e) => e.choices[0].delta.content ?? "").join(""), want.text);
  assert.equal(s.events.at(-1).choices[0].finish_reason, want.finishReason);
  // A tokenizer that adds BOS and a template that writes it: the prompt starts with one BOS, not two.
  const json = JSON.parse(readFileSync(join(MODELS_DIR, "llama-gqa-f16", "tokenizer.json"), "utf8"));
  const bos = { SpecialToken: { id: "<s>", type_id: 0 } };
  json.post_processor = { type: "TemplateProcessing", single: [bos, { Sequence: { id: "A", type_id: 0 } }], pair: [bos, { Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }], special_tokens: { "<s>": { id: "<s>", ids: [286], tokens: ["<s>"] } } };
  const bosTok = await tokenizerFromJson(json, { bos_token: "<s>", eos_token: "</s>", chat_template: tok.chatTemplate }, tok.eosIds);
  assert.deepEqual(bosTok.encode(text).slice(0, 2), [286, 286], "the fixture: encode() adds a BOS before the template's");
  const withBos = await startServer({ served: { id: "bos", model: chat.rt.model, tokenizer: bosTok, maxTokensDefault: 2, parallel: 1 }, port: 0 });
  try {
    const r2 = await (await fetch(withBos.url + "/v1/chat/completions", { method: "POST", body: JSON.stringify({ messages, temperature: 0, return_tokens: true }) })).json();
    assert.equal(r2.usage.prompt_tokens, bosTok.encode(text).length - 1);
    assert.deepEqual(r2.choices[0].tokens, direct(chat, bosTok.encode(text).slice(1), 2).tokens);
  } finally {
    await withBos.close();
  }
  // The default model has no chat template: a 400 that says so.
  const none = await post(def, "/v1/chat/completions", { messages: [{ role: "user", content: "hi" }] });
  assert.equal(none.status, 400);
  assert.equal(none.json.error.code, "no_chat_template");
  assert.match(none.json.error.message, /no chat template/);
});

test("bad requests: 4xx with an OpenAI error body naming the field; the server keeps serving", async () => {
  const cases: [string, unknown, number, string | null, RegExp][] = [
    ["/v1/completions", "{not json", 400, null, /not valid JSON/],
    ["/v1/completions", "", 400, null, /body is empty/],
    ["/v1/completions", [1, 2], 400, null, /expected a JSON object/],
    ["/v1/completions", { prompt: "x", max_tokens: "x" }, 400, "max_tokens", /max_tokens: expected an integer >= 0, got "x"/],
    ["/v1/completions", { prompt: "x", n: 2 }, 400, "n", /n: expected 1/],
    ["/v1/completions", { prompt: "x", temperature: -1 }, 400, "temperature", /temperature/],
    ["/v1/completions", { prompt: "x", top_p: 0 }, 400, "top_p", /top_p: expected a number in \(0, 1\]/],
    ["/v1/completions", { prompt: "x", stop: [1] }, 400, "stop", /stop: expected a string or an array of strings/],
    ["/v1/completions", { prompt: "x", stream: "yes" }, 400, "stream", /stream: expected true or false/],
    ["/v1/completions", { prompt: "x", logprobs: 50 }, 400, "logprobs", /logprobs: expected an integer in \[0, 20\]/],
    ["/v1/completions", { prompt: "x", logprobs: 1, echo: true, stream: true }, 400, "echo", /without streaming only/],
    ["/v1/completions", { prompt: "x", logit_bias: { 5: 1 } }, 400, "logit_bias", /not supported/],
    ["/v1/chat/completions", { messages: [{ role: "user", content: "x" }], top_logprobs: 2 }, 400, "top_logprobs", /needs "logprobs": true/],
    ["/v1/completions", { max_tokens: 3 }, 400, "prompt", /prompt: required/],
    ["/v1/completions", { prompt: [] }, 400, "prompt", /prompt: expected a string/],
    ["/v1/completions", { prompt: [1, 4096] }, 400, "prompt", /token id 4096 at index 1 is outside the vocabulary \[0, 4096\)/],
    ["/v1/completions", { prompt: new Array(300).fill(5) }, 400, "prompt", /300 tokens but the model's context is 256 tokens/],
    ["/v1/completions", { prompt: ["a", "b", "c", "d", "e", "f", "g", "h", "i"] }, 400, "prompt", /9 prompts in one request; this server takes at most 8 \(--parallel\)/],
    ["/v1/chat/completions", { messages: [] }, 400, "messages", /messages: expected a non-empty array/],
    ["/v1/chat/completions", { messages: [{ content: "hi" }] }, 400, "messages[0].role", /messages\[0\].role: expected a string/],
    ["/v1/chat/completions", { messages: [{ role: "user", content: [{ type: "image_url" }] }] }, 400, "messages[0].content[0]", /text/],
    ["/v1/nope", {}, 404, null, /unknown route POST \/v1\/nope/],
  ];
  for (const [path, body, status, param, re] of cases) {
    const r = await post(def, path, body);
    const what = `${path} ${JSON.stringify(body).slice(0, 60)}`;
    assert.equal(r.status, status, `${what}: ${JSON.stringify(r.json)}`);
    assert.deepEqual(Object.keys(r.json.error).sort(), ["code", "message", "param", "type"], what);
    assert.equal(r.json.error.param, param, what);
    assert.match(r.json.error.message, re, what);
  }
  const get = await fetch(def.server.url + "/v1/completions");
  assert.equal(get.status, 405);
  assert.match((await get.json()).error.message, /takes POST/);
  const h = await fetch(def.server.url + "/health");
  assert.equal(h.status, 200);
});

test("--api-key guards every route but /health; /tokenize and /detokenize round-trip; /metrics; CORS preflight", async () => {
  const keyed = await startServer({ served: { id: "default", model: def.rt.model, tokenizer: def.rt.tokenizer, maxTokensDefault: 4, parallel: 1 }, port: 0, apiKey: "sekret" });
  try {
    const none = await fetch(keyed.url + "/v1/models");
    assert.equal(none.status, 401);
    assert.equal((await none.json()).error.code, "invalid_api_key");
    assert.equal((await fetch(keyed.url + "/v1/models", { headers: { Authorization: "Bearer wrong" } })).status, 401);
    assert.equal((await fetch(keyed.url + "/v1/models", { headers: { Authorization: "Bearer sekret" } })).status, 200);
    assert.equal((await fetch(keyed.url + "/health")).status, 200);
    // One slot (parallel 1): two requests at once take turns and both get generate()'s answer.
    const auth = { Authorization: "Bearer sekret" };
    const two = await Promise.all(["In the beginning", "We the people"].map(async (prompt) => (await fetch(keyed.url + "/v1/completions", { method: "POST", headers: auth, body: JSON.stringify({ prompt, max_tokens: 8, temperature: 0 }) })).json()));
    two.forEach((j, i) => assert.equal(j.choices[0].text, direct(def, def.rt.tokenizer!.encode(["In the beginning", "We the people"][i]), 8).text));
  } finally {
    await keyed.close();
  }
  const tok = def.rt.tokenizer!;
  const t = await post(def, "/tokenize", { content: "In the beginning" });
  assert.deepEqual(t.json.tokens, tok.encode("In the beginning"));
  const d = await post(def, "/detokenize", { tokens: t.json.tokens });
  assert.equal(d.json.content, tok.decode(t.json.tokens));
  const bad = await post(def, "/detokenize", { tokens: [1, -1] });
  assert.deepEqual([bad.status, bad.json.error.param], [400, "tokens"]);
  // /metrics: Prometheus text with the tokens of the requests so far.
  const m = await (await fetch(def.server.url + "/metrics")).text();
  const value = (name: string) => Number(new RegExp(`^mqa:${name} (\\S+)$`, "m").exec(m)?.[1]);
  const done = def.records.filter((r) => r.completionTokens > 0 || r.prefillSeconds > 0);
  assert.equal(value("tokens_predicted_total"), def.records.reduce((a, r) => a + r.completionTokens, 0));
  assert.equal(value("prompt_tokens_total"), done.reduce((a, r) => a + r.promptTokens, 0));
  assert.ok(value("prompt_tokens_total") > 0);
  assert.equal(value("requests_processing"), 0);
  assert.match(m, /^mqa:requests_total\{route="\/v1\/completions",status="200"\} \d+$/m);
  const pre = await fetch(def.server.url + "/v1/chat/completions", { method: "OPTIONS" });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get("access-control-allow-origin"), "*");
});

test("mqa serve: --help, bad flags exit 2 on one line, --port 0 --json prints the URL it listens on", async () => {
  const write = process.stdout.write;
  let helpText = "";
  process.stdout.write = ((c: string | Uint8Array) => ((helpText += String(c)), true)) as typeof process.stdout.write; // commander prints help there
  const help = await runCli(["serve", "--help"]).finally(() => (process.stdout.write = write));
  assert.equal(help.code, 0);
  for (const flag of ["--port", "--host", "--threads", "--kv-dtype", "--max-tokens-default", "--max-queue", "--queue-timeout", "--json"]) assert.ok(helpText.includes(flag), `--help mentions ${flag}`);
  const bad = await runCli(["serve", "--kv-dtype", "f8"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--kv-dtype: unknown dtype "f8"; expected one of f32, f16, bf16, int8/);
  assert.equal(bad.err.split("\n").length, 1);
  for (const [flags, want] of [[["--max-queue", "-1"], /--max-queue: "-1" is not an integer >= 0/], [["--queue-timeout", "soon"], /--queue-timeout: "soon" is not a number in \[0, 86400\]/]] as const) {
    const r = await runCli(["serve", ...flags]);
    assert.equal(r.code, 2);
    assert.match(r.err, want);
  }
  const src = `import { main } from ${JSON.stringify(join(import.meta.dirname, "..", "src", "cli", "main.ts"))}; process.exitCode = await main(["serve", "--port", "0", "--json", "--threads", "1", "--quiet"]);`;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", src], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  try {
    const line = await new Promise<string>((ok, fail) => {
      createInterface({ input: child.stdout }).once("line", ok);
      child.once("exit", (code) => fail(new Error(`mqa serve exited with ${code}: ${err}`)));
    });
    const info = JSON.parse(line);
    assert.match(info.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(info.url, "http://127.0.0.1:0");
    assert.equal(info.model, "default");
    assert.equal(info.contextTokens, 256);
    assert.deepEqual([info.maxQueue, info.queueTimeoutSeconds], [4 * info.parallel, 300], "default back-pressure: 4 × --parallel in line, 300 s");
    const m = await (await fetch(info.url + "/v1/models")).json();
    assert.equal(m.data[0].id, "default");
  } finally {
    const exited = new Promise<number | null>((ok) => child.once("exit", (code) => ok(code)));
    child.kill("SIGTERM");
    assert.equal(await exited, 0, `exit code after SIGTERM; stderr: ${err}`);
  }
});
