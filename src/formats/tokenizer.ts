// Tokenizer glue: tokenizer.json through @huggingface/tokenizers, the vocabulary embedded in a
// GGUF file (tokenizer.ggml.*), eos/bos ids from config.json / generation_config.json, and chat
// templates from tokenizer_config.json (or GGUF's tokenizer.chat_template) through @huggingface/jinja.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { errorLine, OptionError, UserError } from "../errors.js";

export interface ChatMessage {
  role: string; // "system" | "user" | "assistant"
  content: string;
}

export interface TextTokenizer {
  encode(text: string): number[];
  decode(ids: number[]): string;
  eosIds: number[]; // generation stops at these
  bosId: number | null; // the beginning-of-sequence token, when the model has one
  bosToken: string | null;
  eosToken: string | null;
  chatTemplate: string | null;
}

/** A JSON object file (null when absent); unreadable, malformed or non-object content is a UserError naming the file. */
export function readJsonFile(path: string): Record<string, unknown> | null {
  if (!existsSync(path)) return null;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8").replace(/^\uFEFF/, ""));
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${errorLine(e)})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new UserError(`${path}: expected a JSON object, got ${Array.isArray(json) ? "an array" : String(json)}`);
  return json as Record<string, unknown>;
}

const tokenText = (t: unknown): string | null => (typeof t === "string" ? t : t && typeof t === "object" && typeof (t as { content?: unknown }).content === "string" ? (t as { content: string }).content : null);

/** One special-token field: an id, a list of ids (Llama-3.1: eos [128001, 128008, 128009]) or null. */
function idList(file: string, field: string, v: unknown, vocabSize?: number): number[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  for (const id of list) {
    if (!Number.isInteger(id) || (id as number) < 0) throw new UserError(`${file}: field ${field} is ${JSON.stringify(v).slice(0, 60)}; expected a token id or a list of token ids`);
    if (vocabSize !== undefined && (id as number) >= vocabSize) throw new UserError(`${file}: ${field} ${id} is outside the vocabulary [0, ${vocabSize})`);
  }
  return list as number[];
}

/**
 * bos and eos ids of an HF folder: generation_config.json's, else config.json's (as transformers'
 * generate() does). With vocabSize, ids outside [0, vocabSize) are an error naming the file.
 */
export function specialTokenIds(dir: string, vocabSize?: number): { bos: number[]; eos: number[] } {
  const out = { bos: [] as number[], eos: [] as number[] };
  for (const f of ["config.json", "generation_config.json"]) {
    const path = join(dir, f);
    const j = readJsonFile(path);
    if (!j) continue;
    for (const k of ["bos", "eos"] as const) {
      const ids = idList(path, `${k}_token_id`, j[`${k}_token_id`], vocabSize);
      if (ids.length > 0) out[k] = ids; // generation_config.json (read second) wins
    }
  }
  return out;
}

/** tokenizer_config.json's chat_template: a string, or a list of {name, template} where "default" is used (as transformers does). */
export function chatTemplateOf(config: Record<string, unknown>): string | null {
  const t = config.chat_template;
  if (typeof t === "string") return t;
  if (Array.isArray(t)) {
    const named = t.find((x) => x && typeof x === "object" && (x as { name?: unknown }).name === "default");
    const template = named ? (named as { template?: unknown }).template : undefined;
    return typeof template === "string" ? template : null;
  }
  return null;
}

const MODEL_TYPES = ["BPE", "WordPiece", "Unigram", "WordLevel"];

/**
 * Builds a tokenizer from an HF tokenizer.json document and its tokenizer_config. A document the
 * tokenizers library cannot build is a UserError naming `where` (the file).
 */
export async function tokenizerFromJson(json: object, config: Record<string, unknown>, eosIds: number[], where = "tokenizer.json", bosId: number | null = null): Promise<TextTokenizer> {
  const { Tokenizer } = await import("@huggingface/tokenizers");
  const model = (json as { model?: { type?: unknown; vocab?: unknown } }).model;
  if (!model || typeof model !== "object") throw new UserError(`${where}: no "model" object; expected an HF tokenizers document (tokenizer.json)`);
  if (model.type !== undefined && !MODEL_TYPES.includes(String(model.type))) throw new UserError(`${where}: model.type ${JSON.stringify(model.type)} is not a tokenizer model; expected one of ${MODEL_TYPES.join(", ")}`);
  if (!model.vocab || typeof model.vocab !== "object") throw new UserError(`${where}: model.vocab is missing; expected the vocabulary`);
  let tok: InstanceType<typeof Tokenizer>;
  try {
    tok = new Tokenizer(json, config);
    tok.encode("a", { add_special_tokens: true }); // some malformed parts (normalizer, pre-tokenizer) only fail on first use
  } catch (e) {
    throw new UserError(`${where}: cannot build the tokenizer (${errorLine(e)})`);
  }
  const eosToken = tokenText(config.eos_token);
  const ids = [...eosIds];
  if (ids.length === 0 && eosToken) {
    const id = tok.token_to_id(eosToken);
    if (id !== undefined) ids.push(id);
  }
  return {
    encode: (text) => tok.encode(text, { add_special_tokens: true }).ids,
    decode: (ids) => tok.decode(ids, { skip_special_tokens: false }),
    eosIds: ids,
    bosId: bosId ?? (tokenText(config.bos_token) !== null ? (tok.token_to_id(tokenText(config.bos_token)!) ?? null) : null),
    bosToken: tokenText(config.bos_token),
    eosToken,
    chatTemplate: chatTemplateOf(config),
  };
}

/** tokenizer.json (+ tokenizer_config.json) of an HF model folder. */
export async function loadTokenizer(dir: string): Promise<TextTokenizer> {
  const path = join(dir, "tokenizer.json");
  const json = readJsonFile(path);
  if (!json) throw new OptionError("promptTokens", `${dir}: no tokenizer.json; pass promptTokens to give token ids directly`);
  const special = specialTokenIds(dir);
  return tokenizerFromJson(json, readJsonFile(join(dir, "tokenizer_config.json")) ?? {}, special.eos, path, special.bos[0] ?? null);
}

/** A GGUF file's embedded vocabulary ("gpt2" byte-level BPE) as a tokenizer. */
export async function tokenizerFromGguf(meta: Record<string, unknown>, path: string): Promise<TextTokenizer> {
  const model = meta["tokenizer.ggml.model"];
  const tokens = meta["tokenizer.ggml.tokens"];
  if (!Array.isArray(tokens)) throw new OptionError("promptTokens", `${path}: no tokenizer.ggml.tokens; pass promptTokens to give token ids directly`);
  if (model === "llama") return spmFromGguf(meta, tokens as string[], path);
  if (model !== "gpt2") throw new OptionError("promptTokens", `${path}: GGUF tokenizer model "${String(model)}" is not supported ("gpt2" byte-level BPE and "llama" SentencePiece are); pass promptTokens`);
  const types = (meta["tokenizer.ggml.token_type"] as number[] | undefined) ?? [];
  const vocab: Record<string, number> = {};
  const added: object[] = [];
  tokens.forEach((t: string, id: number) => {
    if (types[id] === 3 || types[id] === 4) added.push({ id, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: types[id] === 3 });
    else vocab[t] = id;
  });
  const { eos, bos, stops } = ggufSpecialIds(meta, path, tokens.length);
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  // BOS only when the file asks for it (Llama-3 style vocabularies write add_bos_token true; GPT-2's add none).
  const bosProcessor = meta["tokenizer.ggml.add_bos_token"] === true && bos !== null ? bosTemplate(tokens[bos], bos) : null;
  const json = {
    version: "1.0", added_tokens: added, normalizer: null, pre_tokenizer: byteLevel, decoder: byteLevel,
    post_processor: bosProcessor ? { type: "Sequence", processors: [byteLevel, bosProcessor] } : byteLevel,
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false,
      vocab, merges: ((meta["tokenizer.ggml.merges"] as string[] | undefined) ?? []).map((m) => m.split(" ", 2)) },
  };
  const config = {
    eos_token: eos !== null ? tokens[eos] : null,
    bos_token: bos !== null ? tokens[bos] : null,
    chat_template: typeof meta["tokenizer.chat_template"] === "string" ? meta["tokenizer.chat_template"] : undefined,
  };
  return tokenizerFromJson(json, config, stops, path, bos);
}

/** An HF TemplateProcessing post-processor that puts `token` (id `id`) before every sequence. */
function bosTemplate(token: string, id: number): object {
  const bos = { SpecialToken: { id: token, type_id: 0 } };
  return { type: "TemplateProcessing", single: [bos, { Sequence: { id: "A", type_id: 0 } }], pair: [bos, { Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
    special_tokens: { [token]: { id: token, ids: [id], tokens: [token] } } };
}

/**
 * GGUF special ids, each checked to lie inside the vocabulary. Generation stops at eos and at
 * eot / eom (llama.cpp's llama_vocab_is_eog; export-gguf writes the 2nd and 3rd eos of a list there).
 */
function ggufSpecialIds(meta: Record<string, unknown>, path: string, vocab: number): { eos: number | null; bos: number | null; stops: number[] } {
  const id = (kind: string): number | null => {
    const key = `tokenizer.ggml.${kind}_token_id`;
    const v = typeof meta[key] === "bigint" ? Number(meta[key]) : meta[key];
    if (v === undefined || v === null) return null;
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) >= vocab) throw new UserError(`${path}: ${key} is ${String(v)}; expected a token id in [0, ${vocab})`);
    return v as number;
  };
  const eos = id("eos");
  const stops = [eos, id("eot"), id("eom")].filter((x): x is number => x !== null);
  return { eos, bos: id("bos"), stops: [...new Set(stops)] };
}

/** Renders a chat template (Jinja) for `messages`, ending with the assistant's turn prompt. */
export async function applyChatTemplate(tok: TextTokenizer, messages: ChatMessage[], where: string): Promise<string> {
  if (!tok.chatTemplate) throw new UserError(`${where}: chat needs a chat_template in tokenizer_config.json (or the GGUF), and there is none`);
  const { Template } = await import("@huggingface/jinja");
  try {
    return new Template(tok.chatTemplate).render({ messages, add_generation_prompt: true, bos_token: tok.bosToken ?? "", eos_token: tok.eosToken ?? "" });
  } catch (e) {
    throw new UserError(`${where}: chat template failed (${errorLine(e)})`);
  }
}

/**
 * A GGUF SentencePiece vocabulary ("llama": tokens + scores, byte-fallback pieces <0xNN>) as an HF
 * BPE tokenizer, the way transformers' GGUF converter does it: merges are every split of a piece
 * into two pieces that are both in the vocabulary, ranked by the merged piece's score; spaces
 * become "▁" and a "▁" is prepended unless tokenizer.ggml.add_space_prefix is false; BOS is added when
 * tokenizer.ggml.add_bos_token (default true).
 */
async function spmFromGguf(meta: Record<string, unknown>, tokens: string[], path: string): Promise<TextTokenizer> {
  const scores = (meta["tokenizer.ggml.scores"] as number[] | undefined) ?? tokens.map((_, i) => -i);
  const types = (meta["tokenizer.ggml.token_type"] as number[] | undefined) ?? [];
  const vocab: Record<string, number> = {};
  const added: object[] = [];
  tokens.forEach((t, id) => {
    vocab[t] = id;
    if (types[id] === 3 || types[id] === 4) added.push({ id, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: types[id] === 3 });
  });
  const merges: { pair: [string, string]; score: number; l: number; r: number }[] = [];
  tokens.forEach((piece, id) => {
    if (types[id] !== undefined && types[id] !== 1) return; // only normal pieces are merge results
    const chars = [...piece];
    for (let i = 1; i < chars.length; i++) {
      const l = chars.slice(0, i).join(""), r = chars.slice(i).join("");
      if (vocab[l] !== undefined && vocab[r] !== undefined) merges.push({ pair: [l, r], score: scores[id], l: vocab[l], r: vocab[r] });
    }
  });
  merges.sort((a, b) => b.score - a.score || a.l - b.l || a.r - b.r);
  const unk = meta["tokenizer.ggml.unknown_token_id"];
  const { eos, bos, stops } = ggufSpecialIds(meta, path, tokens.length);
  const addBos = meta["tokenizer.ggml.add_bos_token"] !== false && bos !== null;
  const addSpacePrefix = meta["tokenizer.ggml.add_space_prefix"] !== false; // llama.cpp's default: true (Gemma writes false)
  const bosTok = bos !== null ? tokens[bos] : null;
  const json = {
    version: "1.0", added_tokens: added,
    normalizer: { type: "Sequence", normalizers: [...(addSpacePrefix ? [{ type: "Prepend", prepend: "▁" }] : []), { type: "Replace", pattern: { String: " " }, content: "▁" }] },
    pre_tokenizer: null,
    post_processor: addBos ? bosTemplate(bosTok!, bos!) : null,
    decoder: { type: "Sequence", decoders: [{ type: "Replace", pattern: { String: "▁" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, ...(addSpacePrefix ? [{ type: "Strip", content: " ", start: 1, stop: 0 }] : [])] },
    model: { type: "BPE", dropout: null, unk_token: typeof unk === "number" ? tokens[unk] : null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges: merges.map((m) => m.pair) },
  };
  const config = {
    eos_token: eos !== null ? tokens[eos] : null,
    bos_token: bosTok,
    chat_template: typeof meta["tokenizer.chat_template"] === "string" ? meta["tokenizer.chat_template"] : undefined,
  };
  return tokenizerFromJson(json, config, stops, path, bos);
}

/**
 * Tokens of a rendered chat template. encode() adds the tokenizer's special tokens (a BOS for
 * Llama-style tokenizers), but templates usually write {{ bos_token }} themselves, and HF's
 * apply_chat_template and vLLM tokenize the rendering without special tokens: so a BOS that the
 * text starts with and encode() doubled is kept once.
 */
export function encodeRendered(tok: TextTokenizer, text: string): number[] {
  const ids = tok.encode(text);
  const doubled = tok.bosToken !== null && text.startsWith(tok.bosToken) && ids.length >= 2 && ids[0] === ids[1] && tok.decode([ids[0]]) === tok.bosToken;
  return doubled ? ids.slice(1) : ids;
}
