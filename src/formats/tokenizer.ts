// Tokenizer glue: tokenizer.json through @huggingface/tokenizers, the vocabulary embedded in a
// GGUF file (tokenizer.ggml.*), eos/bos ids from config.json / generation_config.json, and chat
// templates from tokenizer_config.json (or GGUF's tokenizer.chat_template) through @huggingface/jinja.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../errors.js";

export interface ChatMessage {
  role: string; // "system" | "user" | "assistant"
  content: string;
}

export interface TextTokenizer {
  encode(text: string): number[];
  decode(ids: number[]): string;
  eosIds: number[]; // generation stops at these
  bosToken: string | null;
  eosToken: string | null;
  chatTemplate: string | null;
}

function readJson(path: string): Record<string, unknown> | null {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, "utf8").replace(/^\uFEFF/, ""));
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${(e as Error).message.split("\n")[0]})`);
  }
}

const tokenText = (t: unknown): string | null => (typeof t === "string" ? t : t && typeof t === "object" && typeof (t as { content?: unknown }).content === "string" ? (t as { content: string }).content : null);

/** eos ids: generation_config.json's eos_token_id, else config.json's (a number or a list). */
function eosFrom(dir: string): number[] {
  for (const f of ["generation_config.json", "config.json"]) {
    const j = readJson(join(dir, f));
    const v = j?.eos_token_id;
    if (typeof v === "number") return [v];
    if (Array.isArray(v)) return v.filter((x): x is number => typeof x === "number");
  }
  return [];
}

/** Builds a tokenizer from an HF tokenizer.json document and its tokenizer_config. */
export async function tokenizerFromJson(json: object, config: Record<string, unknown>, eosIds: number[]): Promise<TextTokenizer> {
  const { Tokenizer } = await import("@huggingface/tokenizers");
  const tok = new Tokenizer(json, config);
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
    bosToken: tokenText(config.bos_token),
    eosToken,
    chatTemplate: typeof config.chat_template === "string" ? config.chat_template : null,
  };
}

/** tokenizer.json (+ tokenizer_config.json) of an HF model folder. */
export async function loadTokenizer(dir: string): Promise<TextTokenizer> {
  const path = join(dir, "tokenizer.json");
  const json = readJson(path);
  if (!json) throw new UserError(`${dir}: no tokenizer.json; pass --prompt-tokens to give token ids directly`);
  return tokenizerFromJson(json, readJson(join(dir, "tokenizer_config.json")) ?? {}, eosFrom(dir));
}

/** A GGUF file's embedded vocabulary ("gpt2" byte-level BPE) as a tokenizer. */
export async function tokenizerFromGguf(meta: Record<string, unknown>, path: string): Promise<TextTokenizer> {
  const model = meta["tokenizer.ggml.model"];
  const tokens = meta["tokenizer.ggml.tokens"];
  if (!Array.isArray(tokens)) throw new UserError(`${path}: no tokenizer.ggml.tokens; pass --prompt-tokens to give token ids directly`);
  if (model === "llama") return spmFromGguf(meta, tokens as string[]);
  if (model !== "gpt2") throw new UserError(`${path}: GGUF tokenizer model "${String(model)}" is not supported ("gpt2" byte-level BPE and "llama" SentencePiece are); pass --prompt-tokens`);
  const types = (meta["tokenizer.ggml.token_type"] as number[] | undefined) ?? [];
  const vocab: Record<string, number> = {};
  const added: object[] = [];
  tokens.forEach((t: string, id: number) => {
    if (types[id] === 3 || types[id] === 4) added.push({ id, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: types[id] === 3 });
    else vocab[t] = id;
  });
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  const json = {
    version: "1.0", added_tokens: added, normalizer: null, pre_tokenizer: byteLevel, post_processor: byteLevel, decoder: byteLevel,
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false,
      vocab, merges: ((meta["tokenizer.ggml.merges"] as string[] | undefined) ?? []).map((m) => m.split(" ", 2)) },
  };
  const eos = meta["tokenizer.ggml.eos_token_id"];
  const bos = meta["tokenizer.ggml.bos_token_id"];
  const config = {
    eos_token: typeof eos === "number" ? tokens[eos] : null,
    bos_token: typeof bos === "number" ? tokens[bos] : null,
    chat_template: typeof meta["tokenizer.chat_template"] === "string" ? meta["tokenizer.chat_template"] : undefined,
  };
  return tokenizerFromJson(json, config, typeof eos === "number" ? [eos] : []);
}

/** Renders a chat template (Jinja) for `messages`, ending with the assistant's turn prompt. */
export async function applyChatTemplate(tok: TextTokenizer, messages: ChatMessage[], where: string): Promise<string> {
  if (!tok.chatTemplate) throw new UserError(`${where}: --chat needs a chat_template in tokenizer_config.json (or the GGUF), and there is none`);
  const { Template } = await import("@huggingface/jinja");
  try {
    return new Template(tok.chatTemplate).render({ messages, add_generation_prompt: true, bos_token: tok.bosToken ?? "", eos_token: tok.eosToken ?? "" });
  } catch (e) {
    throw new UserError(`${where}: chat template failed (${(e as Error).message.split("\n")[0]})`);
  }
}

/**
 * A GGUF SentencePiece vocabulary ("llama": tokens + scores, byte-fallback pieces <0xNN>) as an HF
 * BPE tokenizer, the way transformers' GGUF converter does it: merges are every split of a piece
 * into two pieces that are both in the vocabulary, ranked by the merged piece's score; spaces
 * become "▁" and a "▁" is prepended; BOS is added when tokenizer.ggml.add_bos_token (default true).
 */
async function spmFromGguf(meta: Record<string, unknown>, tokens: string[]): Promise<TextTokenizer> {
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
  const bos = meta["tokenizer.ggml.bos_token_id"];
  const eos = meta["tokenizer.ggml.eos_token_id"];
  const addBos = meta["tokenizer.ggml.add_bos_token"] !== false && typeof bos === "number";
  const bosTok = typeof bos === "number" ? tokens[bos] : null;
  const json = {
    version: "1.0", added_tokens: added,
    normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" }] },
    pre_tokenizer: null,
    post_processor: addBos
      ? { type: "TemplateProcessing", single: [{ SpecialToken: { id: bosTok, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }], pair: [{ SpecialToken: { id: bosTok, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
        special_tokens: { [bosTok!]: { id: bosTok, ids: [bos], tokens: [bosTok] } } }
      : null,
    decoder: { type: "Sequence", decoders: [{ type: "Replace", pattern: { String: "▁" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 0 }] },
    model: { type: "BPE", dropout: null, unk_token: typeof unk === "number" ? tokens[unk] : null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges: merges.map((m) => m.pair) },
  };
  const config = {
    eos_token: typeof eos === "number" ? tokens[eos] : null,
    bos_token: bosTok,
    chat_template: typeof meta["tokenizer.chat_template"] === "string" ? meta["tokenizer.chat_template"] : undefined,
  };
  return tokenizerFromJson(json, config, typeof eos === "number" ? [eos] : []);
}
