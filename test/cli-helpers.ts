// Runs `mqa` in-process through main(argv), capturing what it prints. process.stdout stays untouched:
// the test runner reports through it.
import { main } from "../src/cli/main.js";

export async function runCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error, writeErr] = [console.log, console.error, process.stderr.write.bind(process.stderr)];
  console.log = (...a: unknown[]) => void out.push(a.join(" ") + "\n");
  console.error = (...a: unknown[]) => void err.push(a.join(" ") + "\n");
  process.stderr.write = ((c: string | Uint8Array) => (err.push(String(c)), true)) as typeof process.stderr.write;
  try {
    return { code: await main(args), out: out.join(""), err: err.join("").trim() };
  } finally {
    [console.log, console.error, process.stderr.write] = [log, error, writeErr];
    process.exitCode = undefined;
  }
}
