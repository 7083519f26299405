// `mqa bench attention`: times the WASM attention kernels against the machine's measured limits
// (bench/attention.ts does the work). Prints a markdown report or JSON, and can update the results
// section of docs/benchmarks/attention.md in place.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { renderAttentionMarkdown, runAttentionBench } from "../../bench/attention.js";
import { intListFlag } from "./flags.js";

const BEGIN = "<!-- bench:attention:begin -->";
const END = "<!-- bench:attention:end -->";

interface BenchFlags {
  quick?: boolean;
  json?: boolean;
  threads: string;
  relaxed: boolean;
  doc?: string;
}

export function register(program: Command): void {
  const bench = program.command("bench").description("Benchmarks against this machine's own limits");
  bench
    .command("attention")
    .description("Decode and prefill speed of the WASM attention kernels (MHA/GQA/MQA, f32/f16/bf16 caches) beside streaming-read bandwidth and SIMD peak")
    .option("--quick", "about a minute: T in {4k, 16k}, prefill T = 1k, short repeats")
    .option("--threads <list>", "thread counts to run, comma-separated", "1,2")
    .option("--no-relaxed", "use the plain SIMD build even if relaxed SIMD can be enabled")
    .option("--doc <path>", "replace the results section (between the bench:attention markers) of this markdown file")
    .option("--json", "print the results as JSON")
    .action(async (flags: BenchFlags) => {
      const threads = intListFlag("--threads", flags.threads, { max: 64 });
      const log = flags.json ? undefined : (line: string) => console.error(line);
      const result = await runAttentionBench({ quick: flags.quick, threads, relaxed: flags.relaxed, log });
      const md = renderAttentionMarkdown(result);
      if (flags.doc) writeResults(flags.doc, md);
      console.log(flags.json ? JSON.stringify(result, null, 2) : md);
    });
}

/** Puts `md` between the markers of `path` (appending the markers if the file has none). */
function writeResults(path: string, md: string): void {
  const old = existsSync(path) ? readFileSync(path, "utf8") : "";
  const block = `${BEGIN}\n${md}\n${END}`;
  const i = old.indexOf(BEGIN), j = old.indexOf(END);
  const next = i >= 0 && j > i ? old.slice(0, i) + block + old.slice(j + END.length) : `${old}${old ? "\n\n" : ""}${block}\n`;
  writeFileSync(path, next);
}
