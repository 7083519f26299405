// What `mqa eval` scores: a text file tokenized by the model's own tokenizer, or a split of the
// corpus `mqa prepare-data` wrote (the documents the trainer holds out). Each becomes token ids plus
// the number of text bytes the first k scored targets stand for.
import { readFileSync } from "node:fs";
import { UserError } from "../errors.js";
import type { TextTokenizer } from "../formats/tokenizer.js";
import { loadPrepared } from "../train/data.js";

export interface EvalInput {
  source: string; // the file or "<data>/val.bin"
  ids: number[]; // position 0 is context only; targets 1 … are scored
  prefix: "bos" | "eos" | "tokenizer" | "none"; // what position 0 is (see textInput)
  bytesOf: (targets: number) => number;
}

/**
 * A text file as one sequence. Every token of the text is scored, so position 0 is a start token:
 * the one the tokenizer adds itself (Llama-style post-processors), else the model's BOS, else its
 * EOS (the document separator most models are trained with; lm-evaluation-harness does the same),
 * else the text's first token, which is then not scored. Bits per byte divide by the UTF-8 bytes of
 * the scored text: the whole file when every token is scored.
 */
export function textInput(path: string, tok: TextTokenizer): EvalInput {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new UserError(`${path}: cannot read the text (${(e as NodeJS.ErrnoException).code ?? String(e)}); expected a UTF-8 text file`);
  }
  if (text.includes("\uFFFD")) throw new UserError(`${path}: not valid UTF-8 (decoding replaced bytes with U+FFFD); expected a UTF-8 text file`);
  if (text.trim().length === 0) throw new UserError(`${path}: the text is empty; expected text to score`);
  const ids = tok.encode(text);
  let prefix: EvalInput["prefix"] = "none";
  if (tok.bosId !== null && ids[0] === tok.bosId) prefix = "tokenizer";
  else if (tok.bosId !== null) (ids.unshift(tok.bosId), (prefix = "bos"));
  else if (tok.eosIds.length > 0) (ids.unshift(tok.eosIds[0]), (prefix = "eos"));
  const all = Buffer.byteLength(text);
  const textIds = prefix === "none" ? ids : ids.slice(1);
  const bytesOf = (k: number): number => {
    if (prefix !== "none" && k >= textIds.length) return all;
    // A prefix of the text: the bytes its tokens decode to (the first token is context when prefix is none).
    const from = prefix === "none" ? 1 : 0;
    return Buffer.byteLength(tok.decode(textIds.slice(from, from + k)));
  };
  return { source: path, ids, prefix, bytesOf };
}

/**
 * The validation split of prepared data, as the trainer sees it (documents joined by
 * <|endoftext|>). Every model scored on it (the model and a reference) must use the data's
 * tokenizer: the ids of the split's first document are decoded and encoded again with each
 * tokenizer, and must come back unchanged.
 */
export function splitInput(dataDir: string, split: "validation", tokenizers: { tok: TextTokenizer; name: string }[]): EvalInput {
  const data = loadPrepared(dataDir);
  const ids = Array.from(data.val);
  const end = ids.indexOf(data.meta.eosId);
  const probe = ids.slice(0, Math.min(end < 0 ? ids.length : end, 2000));
  const text = data.bpe.decode(probe);
  for (const { tok, name } of tokenizers) {
    let again = tok.encode(text);
    if (tok.bosId !== null && again[0] === tok.bosId && probe[0] !== tok.bosId) again = again.slice(1);
    if (again.length !== probe.length || again.some((x, i) => x !== probe[i])) {
      throw new UserError(`${name}: its tokenizer is not the one of ${dataDir}/tokenizer.json (the ${split} split's first ${probe.length} tokens encode differently); evaluate it on --text instead`);
    }
  }
  const prefixBytes = new Float64Array(ids.length);
  for (let p = 1; p < ids.length; p++) prefixBytes[p] = prefixBytes[p - 1] + data.bpe.bytesOf(ids[p]);
  return { source: `${dataDir}/val.bin`, ids, prefix: "none", bytesOf: (k) => prefixBytes[Math.min(k, ids.length - 1)] };
}
