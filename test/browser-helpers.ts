// Shared by the real-browser tests (test/web.test.ts, test/web-model.test.ts; not a test file itself):
// Debian's chromium, its flags, and `mqa web` started from source on a free port.
import { spawn, type ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const CHROMIUM = "/usr/bin/chromium";
export const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];
/** `node <CLI> <args>` runs `mqa <args>` from the TypeScript sources. */
export const CLI = ["--import", "tsx", "--input-type=module", "-e", 'const { main } = await import("./src/cli/main.ts"); process.exitCode = await main(process.argv.slice(1));'];

/** Starts `mqa web --port 0 --json --root dir`; resolves with its URL (the first stdout line) once it listens. */
export function startWebServer(root: string, onChild: (child: ChildProcess) => void): Promise<string> {
  const child = spawn(process.execPath, [...CLI, "web", "--port", "0", "--host", "127.0.0.1", "--root", root, "--json"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  onChild(child);
  return new Promise((ok, fail) => {
    let out = "";
    let err = "";
    child.stderr!.on("data", (d) => (err += d));
    child.stdout!.on("data", (d) => {
      out += d;
      const nl = out.indexOf("\n");
      if (nl >= 0) ok((JSON.parse(out.slice(0, nl)) as { url: string }).url);
    });
    child.on("exit", (code) => fail(new Error(`mqa web exited with ${code} before printing its URL: ${err}`)));
  });
}
