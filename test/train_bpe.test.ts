// The byte-level BPE trainer writes a tokenizer.json that @huggingface/tokenizers reads and that
// encodes to exactly the same ids as our encoder; decoding round-trips any text; the KJV parser
// strips references; the Brown reader drops the POS tags and keeps paragraphs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Tokenizer } from "@huggingface/tokenizers";
import { Bpe, trainBpe } from "../src/train/bpe.js";
import { parseBrown, parseKjv, readBrown, readSotu, splitDocs } from "../src/train/data.js";

const speeches = readSotu();

test("BPE tokenizer.json: @huggingface/tokenizers gives the same ids, and decoding round-trips", () => {
  const bpe = trainBpe(speeches.slice(0, 6).map((d) => d.text), { vocabSize: 700 });
  assert.equal(bpe.vocabSize, 700);
  const json = JSON.parse(JSON.stringify(bpe.toTokenizerJson()));
  const hf = new Tokenizer(json, { eos_token: "<|endoftext|>" });
  const again = Bpe.fromTokenizerJson(json);
  const text = speeches[100].text.slice(0, 6000) + "\n\n  Ünïcødé — “quotes” 1,234.5 it's 🙂\ttab";
  const ours = bpe.encode(text);
  const theirs = hf.encode(text, { add_special_tokens: false }).ids;
  const firstDiff = ours.findIndex((id, i) => id !== theirs[i]);
  assert.equal(firstDiff === -1 && ours.length === theirs.length, true, `ids differ at ${firstDiff}: ours ${ours[firstDiff]} vs HF ${theirs[firstDiff]}`);
  assert.ok(ours.length < Buffer.byteLength(text) / 2, `${ours.length} tokens for ${Buffer.byteLength(text)} bytes: merges barely compress`);
  assert.equal(hf.decode(ours), text);
  assert.equal(again.decode(again.encode(text)), text);
  const eos = bpe.specialId("<|endoftext|>");
  assert.equal(hf.decode([...ours.slice(0, 3), eos], { skip_special_tokens: false }).endsWith("<|endoftext|>"), true);
  assert.equal(bpe.bytesOf(eos), 0);
});

test("KJV parser strips chapter headers and verse numbers and splits by book", () => {
  const raw = "\nGenesis 1\n\n  1 In the beginning God created the heaven and the earth.\n  2 And the earth was without form, and void; and darkness was upon the face of\nthe deep.\n\nGenesis 2\n\n  1 Thus the heavens\n\n1 Samuel 1\n\n  1 Now there was a certain man\n";
  const docs = parseKjv(raw);
  assert.deepEqual(docs.map((d) => d.title), ["Genesis", "1 Samuel"]);
  assert.equal(docs[0].text, "In the beginning God created the heaven and the earth.\nAnd the earth was without form, and void; and darkness was upon the face of the deep.\n\nThus the heavens\n");
  assert.equal(docs[1].text, "Now there was a certain man\n");
});

test("Brown parser drops tags, rebuilds quotes and punctuation, keeps paragraphs; the corpus has its 500 samples", () => {
  const raw = "\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' that/cs any/dti took/vbd place/nn ./.\n\n\n\tIt/pps didn't/do* (/( 1/2/cd )/) see/vb Atlanta's/np$ $/$ 3/cd ,/, ok/uh ?/.\n";
  assert.equal(parseBrown(raw), 'The jury said "no evidence" that any took place.\nIt didn\'t (1/2) see Atlanta\'s $3, ok?\n');
  const docs = readBrown();
  assert.equal(docs.length, 500);
  assert.equal(docs[0].title, "ca01 (news)");
  assert.ok(docs[0].text.startsWith("The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced \"no evidence\""), docs[0].text.slice(0, 120));
  for (const d of docs) assert.ok(!/[A-Za-z]\/(?:nn|at|vbd|in|jj|np|cc)s?\b/.test(d.text), `${d.title} still holds POS tags`);
});

test("validation takes whole documents from each source", () => {
  const { train, val } = splitDocs(speeches);
  assert.equal(train.length + val.length, speeches.length);
  assert.equal(val.length, Math.floor((speeches.length + 4) / 10));
  const trainTitles = new Set(train.map((d) => d.title));
  for (const d of val) assert.ok(!trainTitles.has(d.title), `${d.title} is in both splits`);
});
