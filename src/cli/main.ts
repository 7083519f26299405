// The `mqa` command line. Each command lives in its own file under src/cli/ and only parses
// arguments and prints results; the work is done by the library.
import { Command, CommanderError } from "commander";
import { UserError } from "../errors.js";
import { enableRelaxedSimdFlag } from "../kernels/wasm-node.js";
import { COMMANDS } from "./commands.js";
import { withFlagNames } from "./flags.js";

// Library option fields whose flag is not their kebab-case name (src/cli/flags.ts flagOf).
const FLAG_RENAMES: Readonly<Record<string, string>> = { "activation.overheadBytes": "--overhead-gib", "activation.bytes": "--activation-gib", seqLen: "--context" };

export async function main(argv: string[]): Promise<number> {
  // Node 20 validates relaxed SIMD (the FMA kernels, +25-35 % on the hot loops) only behind a V8 flag;
  // createKernels then picks the relaxed build when the runtime accepts it (`bench --no-relaxed` opts out).
  enableRelaxedSimdFlag();
  const program = new Command("mqa")
    .description("Multi-query / grouped-query attention toolkit: engine, runtime, planner, lab")
    .version("0.1.0")
    .exitOverride()
    // Usage mistakes read like every other user error: one "mqa: ..." line, exit code 2.
    .configureOutput({ outputError: (text, write) => write(`mqa: ${text.replace(/^error: /, "")}`) });
  for (const register of COMMANDS) register(program);
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    return reportError(withFlagNames(err, FLAG_RENAMES));
  }
}

/** Maps errors to exit codes: 0 for --help/--version, 2 for user mistakes, 1 for bugs. */
export function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") return 0;
    return 2; // commander already printed the message
  }
  if (err instanceof UserError) {
    console.error(`mqa: ${err.message}`);
    return 2;
  }
  const e = err as NodeJS.ErrnoException;
  if (e && (e.code === "ENOENT" || e.code === "EACCES" || e.code === "EISDIR")) {
    console.error(`mqa: ${e.message}`);
    return 2;
  }
  console.error(err instanceof Error ? err.stack ?? err.message : String(err));
  return 1;
}
