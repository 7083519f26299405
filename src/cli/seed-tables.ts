// `mqa seed-tables`: regenerates docs/seed-tables.md and its charts from the planner.
import type { Command } from "commander";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../errors.js";
import { makeDirs, renderChartFile } from "../planner/render.js";
import { seedTables } from "../planner/seed.js";

export function register(program: Command): void {
  program
    .command("seed-tables")
    .description("Regenerate docs/seed-tables.md (the seed article's tables and heatmap, recomputed)")
    .option("--out <dir>", "output folder", "docs")
    .option("--json", "print the markdown and chart file names as JSON instead of writing files")
    .action(async (flags: { out: string; json?: boolean }) => {
      const { markdown, charts } = seedTables();
      if (flags.json) return void console.log(JSON.stringify({ markdown, charts: charts.map((c) => c.file) }));
      try {
        makeDirs(flags.out);
        writeFileSync(join(flags.out, "seed-tables.md"), markdown);
      } catch (e) {
        throw new UserError(`--out ${flags.out}: cannot write seed-tables.md (${(e as Error).message.split("\n")[0]}); expected a writable folder`);
      }
      for (const c of charts) await renderChartFile(c.spec, join(flags.out, c.file));
      console.log(`wrote ${join(flags.out, "seed-tables.md")} and ${charts.map((c) => join(flags.out, c.file)).join(", ")}`);
    });
}
