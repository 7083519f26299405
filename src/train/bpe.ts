// Byte-level BPE (GPT-2 style): trained here on the training split, saved as a standard HF
// tokenizer.json (ByteLevel pre-tokenizer + BPE model + ByteLevel decoder) that
// @huggingface/tokenizers and the Rust `tokenizers` crate read.
// Ids: 0..255 are the 256 bytes (in byte order), then one id per merge, then the special tokens.

/** GPT-2's pre-tokenizer regex, exactly as the ByteLevel pre-tokenizer uses it (use_regex: true). */
export const BYTE_LEVEL_REGEX = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards. */
export const BYTE_TO_CHAR: string[] = (() => {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i])));
  return out;
})();

const PAIR = 1 << 16; // pair key = a * PAIR + b; ids stay below 65536

export interface BpeTrainOptions {
  vocabSize: number; // total, including the 256 bytes and the specials, e.g. 4096
  specials?: string[]; // e.g. ["<|endoftext|>"]
  minCount?: number; // stop merging when the best pair occurs fewer times, e.g. 2
}

export class Bpe {
  readonly tokens: string[]; // id -> token in byte-unicode form (what tokenizer.json's vocab holds)
  private readonly rank = new Map<number, number>(); // pair key -> merged id
  private readonly tokenBytes: Uint8Array[]; // id -> raw bytes
  private readonly cache = new Map<string, number[]>();
  readonly specials: string[];

  constructor(readonly merges: [number, number][], specials: string[]) {
    this.specials = specials;
    this.tokens = BYTE_TO_CHAR.slice();
    this.tokenBytes = BYTE_TO_CHAR.map((_, b) => Uint8Array.of(b));
    for (const [a, b] of merges) {
      const id = this.tokens.length;
      this.rank.set(a * PAIR + b, id);
      this.tokens.push(this.tokens[a] + this.tokens[b]);
      const bytes = new Uint8Array(this.tokenBytes[a].length + this.tokenBytes[b].length);
      bytes.set(this.tokenBytes[a]);
      bytes.set(this.tokenBytes[b], this.tokenBytes[a].length);
      this.tokenBytes.push(bytes);
    }
    for (const s of specials) {
      this.tokens.push(s);
      this.tokenBytes.push(new Uint8Array(0)); // specials carry no text bytes (for bits per byte)
    }
  }

  get vocabSize(): number {
    return this.tokens.length;
  }

  specialId(s: string): number {
    const i = this.specials.indexOf(s);
    if (i < 0) throw new Error(`Bpe: no special token ${s}`);
    return 256 + this.merges.length + i;
  }

  /** Number of text bytes token `id` stands for (0 for specials). */
  bytesOf(id: number): number {
    return this.tokenBytes[id].length;
  }

  /** Encodes plain text (no special tokens are parsed out of it). */
  encode(text: string): number[] {
    const out: number[] = [];
    for (const word of text.match(BYTE_LEVEL_REGEX) ?? []) {
      let ids = this.cache.get(word);
      if (!ids) {
        ids = this.encodeWord(word);
        if (this.cache.size < 200000) this.cache.set(word, ids);
      }
      for (const id of ids) out.push(id);
    }
    return out;
  }

  private encodeWord(word: string): number[] {
    const ids = Array.from(new TextEncoder().encode(word));
    for (;;) {
      let best = -1, bestId = Infinity;
      for (let i = 0; i + 1 < ids.length; i++) {
        const id = this.rank.get(ids[i] * PAIR + ids[i + 1]);
        if (id !== undefined && id < bestId) {
          bestId = id;
          best = i;
        }
      }
      if (best < 0) return ids;
      ids.splice(best, 2, bestId);
    }
  }

  decode(ids: ArrayLike<number>): string {
    const parts: Uint8Array[] = [];
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (id >= 256 + this.merges.length) {
        parts.push(new TextEncoder().encode(this.tokens[id]));
      } else parts.push(this.tokenBytes[id]);
      n += parts[parts.length - 1].length;
    }
    const all = new Uint8Array(n);
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.length;
    }
    return new TextDecoder().decode(all);
  }

  /** The standard HF tokenizer.json document. */
  toTokenizerJson(): object {
    const vocab: Record<string, number> = {};
    const nonSpecial = 256 + this.merges.length;
    for (let id = 0; id < nonSpecial; id++) vocab[this.tokens[id]] = id;
    const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
    return {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: this.specials.map((content, i) => ({
        id: nonSpecial + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
      })),
      normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: byteLevel,
      decoder: byteLevel,
      model: {
        type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab,
        merges: this.merges.map(([a, b]) => [this.tokens[a], this.tokens[b]]),
      },
    };
  }

  /** Reads back a tokenizer.json written by toTokenizerJson (checks the byte alphabet and merge order). */
  static fromTokenizerJson(json: unknown): Bpe {
    const doc = json as { model?: { type?: string; vocab?: Record<string, number>; merges?: ([string, string] | string)[] }; added_tokens?: { content: string; id: number }[] };
    const model = doc.model;
    if (!model || model.type !== "BPE" || !model.vocab || !model.merges) throw new Error("tokenizer.json: expected a BPE model with vocab and merges");
    for (let b = 0; b < 256; b++) {
      if (model.vocab[BYTE_TO_CHAR[b]] !== b) throw new Error(`tokenizer.json: byte ${b} is not id ${b}; not written by mqa's BPE trainer`);
    }
    const merges: [number, number][] = model.merges.map((m, i) => {
      const [a, b] = typeof m === "string" ? (m.split(" ", 2) as [string, string]) : m;
      const ia = model.vocab![a], ib = model.vocab![b];
      if (ia === undefined || ib === undefined || model.vocab![a + b] !== 256 + i) throw new Error(`tokenizer.json: merge ${i} (${a} ${b}) does not match the vocab order`);
      return [ia, ib];
    });
    const specials = (doc.added_tokens ?? []).slice().sort((x, y) => x.id - y.id).map((t) => t.content);
    return new Bpe(merges, specials);
  }
}

/**
 * Trains byte-level BPE on documents: counts pre-tokenized words, then repeatedly merges the most
 * frequent adjacent pair (ties: the smaller pair key, so training is deterministic), updating only
 * the words that contain the merged pair.
 */
export function trainBpe(docs: Iterable<string>, opts: BpeTrainOptions): Bpe {
  const specials = opts.specials ?? ["<|endoftext|>"];
  const numMerges = opts.vocabSize - 256 - specials.length;
  if (numMerges < 0 || opts.vocabSize > 65536) throw new Error(`trainBpe: vocabSize ${opts.vocabSize} must be in [${256 + specials.length}, 65536]`);
  const counts = new Map<string, number>();
  for (const doc of docs) for (const w of doc.match(BYTE_LEVEL_REGEX) ?? []) counts.set(w, (counts.get(w) ?? 0) + 1);
  const enc = new TextEncoder();
  const words: number[][] = [];
  const freq: number[] = [];
  for (const [w, c] of counts) {
    words.push(Array.from(enc.encode(w)));
    freq.push(c);
  }
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const add = (wi: number, sign: number) => {
    const s = words[wi];
    for (let i = 0; i + 1 < s.length; i++) {
      const key = s[i] * PAIR + s[i + 1];
      pairCount.set(key, (pairCount.get(key) ?? 0) + sign * freq[wi]);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, (set = new Set()));
        set.add(wi);
      }
    }
  };
  for (let wi = 0; wi < words.length; wi++) add(wi, 1);
  const merges: [number, number][] = [];
  const minCount = opts.minCount ?? 2;
  while (merges.length < numMerges) {
    let best = -1, bestCount = 0;
    for (const [key, c] of pairCount) {
      if (c > bestCount || (c === bestCount && key < best)) {
        best = key;
        bestCount = c;
      }
    }
    if (best < 0 || bestCount < minCount) break;
    const a = Math.floor(best / PAIR), b = best % PAIR;
    const id = 256 + merges.length;
    merges.push([a, b]);
    for (const wi of pairWords.get(best) ?? []) {
      const s = words[wi];
      let has = false;
      for (let i = 0; i + 1 < s.length; i++) if (s[i] === a && s[i + 1] === b) has = true;
      if (!has) continue;
      add(wi, -1);
      const merged: number[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          merged.push(id);
          i++;
        } else merged.push(s[i]);
      }
      words[wi] = merged;
      add(wi, 1);
    }
    pairCount.delete(best);
    pairWords.delete(best);
    if (merges.length % 256 === 0) for (const [k, c] of pairCount) if (c <= 0) pairCount.delete(k);
  }
  return new Bpe(merges, specials);
}
