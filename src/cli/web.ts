// `mqa web`: serves the web page on a local port (src/serve/static.ts) until Ctrl-C.
import type { Command } from "commander";
import { startWebServer } from "../serve/static.js";
import { intFlag, PORT } from "./flags.js";

export function register(program: Command): void {
  program
    .command("web")
    .description("Serve the web pages (planner, and model.html: a model running in the browser; static build in dist/web/) on a local port")
    .option("--port <n>", "TCP port; 0 picks a free one", (v: string) => intFlag("--port", v, PORT), 8417)
    .option("--host <addr>", "address to listen on", "127.0.0.1")
    .option("--root <dir>", "folder to serve (default: the package's dist/web)")
    .option("--json", "print {\"url\", \"root\"} as one JSON line instead of a sentence")
    .action(async (opts: { port: number; host: string; root?: string; json?: boolean }) => {
      const web = await startWebServer({ port: opts.port, host: opts.host, root: opts.root });
      if (opts.json) console.log(JSON.stringify({ url: web.url, root: web.root }));
      else console.log(`mqa web: serving ${web.root} at ${web.url} (Ctrl-C to stop)`);
      const stop = () => void web.close().then(() => process.exit(0));
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      await new Promise<void>((ok) => web.server.once("close", () => ok()));
    });
}
