// What a prompt and its stop tokens are, before generation: text (optionally wrapped as a chat
// through the model's template) to token ids, and the end-of-sequence ids that end a sequence.
// The CLI (mqa generate) and library callers share these; serve renders its own message lists.
import { UserError } from "../errors.js";
import { applyChatTemplate, encodeRendered, specialTokenIds, type ChatMessage, type TextTokenizer } from "../formats/tokenizer.js";

export interface PromptOptions {
  chat?: boolean; // wrap the text as a user message with the model's chat template
  system?: string; // system message (chat only)
}

/** Token ids of one prompt text; `where` (the model path) names the model in errors. */
export async function encodePrompt(tok: TextTokenizer, text: string, opts: PromptOptions, where: string): Promise<number[]> {
  if (!opts.chat) {
    if (opts.system !== undefined) throw new UserError(`${where}: a system message needs chat mode (it goes through the chat template)`);
    return tok.encode(text);
  }
  const messages: ChatMessage[] = [...(opts.system !== undefined ? [{ role: "system", content: opts.system }] : []), { role: "user", content: text }];
  // A rendered template usually writes its own BOS: keep one (as serve and HF's apply_chat_template do).
  return encodeRendered(tok, await applyChatTemplate(tok, messages, where));
}

/**
 * End-of-sequence ids of a loaded model: the tokenizer's, else (no tokenizer files) those of the
 * folder's config.json / generation_config.json. Every id must lie in the vocabulary, since an id
 * outside it is never sampled and generation would silently never stop.
 */
export function stopTokenIds(model: { tokenizer: TextTokenizer | null; dir: string; spec: { vocabSize: number } }, where: string): number[] {
  if (model.dir) specialTokenIds(model.dir, model.spec.vocabSize); // names the file and field of an out-of-range id
  const eos = model.tokenizer?.eosIds ?? (model.dir ? specialTokenIds(model.dir).eos : []);
  const bad = eos.find((id) => id >= model.spec.vocabSize);
  if (bad !== undefined) throw new UserError(`${where}: end-of-sequence token id ${bad} is outside the vocabulary [0, ${model.spec.vocabSize})`);
  return eos;
}
