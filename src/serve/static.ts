// The static server behind `mqa web`: serves the web page (the static build in dist/web/, made by
// `npm run build`) on a local port. The page is plain static files; all planning happens in the
// browser with the same planner code the CLI uses (bundled by scripts/build-web.mjs).
//
// Every response carries COOP same-origin and COEP require-corp: the page is cross-origin isolated, so
// the engine can later use a SharedArrayBuffer (WebAssembly threads) in the browser.
import { existsSync, readFileSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, resolve, sep } from "node:path";
import { UserError } from "../errors.js";
import { packageRoot } from "../package-root.js";

const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".wasm": "application/wasm",
  ".txt": "text/plain; charset=utf-8",
};

/** Headers on every response (files and errors alike). */
const COMMON_HEADERS = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
  "X-Content-Type-Options": "nosniff",
  "Cache-Control": "no-cache",
};

export interface WebServerOptions {
  root?: string; // folder with index.html, default <package>/dist/web
  host?: string; // e.g. "127.0.0.1"
  port?: number; // 0 = any free port
}

export interface WebServer {
  url: string; // e.g. "http://127.0.0.1:8417/"
  root: string;
  server: Server;
  close(): Promise<void>;
}

/**
 * Maps a request path to a file inside `root`, or null when it would leave `root` (".." segments,
 * encoded slashes or backslashes, NUL bytes) or is malformed. "/" and folders map to their index.html.
 * @example resolveRequestPath("/web", "/app.js") // "/web/app.js"; resolveRequestPath("/web", "/../etc/passwd") // null
 */
export function resolveRequestPath(root: string, urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath.split("?")[0].split("#")[0]);
  } catch {
    return null; // malformed percent-encoding
  }
  if (decoded.includes("\0") || decoded.includes("\\") || !decoded.startsWith("/")) return null;
  if (decoded.split("/").some((seg) => seg === ".." || seg === ".")) return null;
  const base = resolve(root);
  let file = resolve(base, "." + decoded);
  if (file !== base && !file.startsWith(base + sep)) return null;
  if (existsSync(file) && statSync(file).isDirectory()) file = join(file, "index.html");
  return file;
}

function send(res: ServerResponse, status: number, body: string | Buffer, type: string, head: boolean): void {
  res.writeHead(status, { ...COMMON_HEADERS, "Content-Type": type, "Content-Length": Buffer.byteLength(body) });
  res.end(head ? undefined : body);
}

function handle(root: string, req: IncomingMessage, res: ServerResponse): void {
  const head = req.method === "HEAD";
  if (req.method !== "GET" && !head) {
    res.setHeader("Allow", "GET, HEAD");
    return send(res, 405, "method not allowed\n", MIME[".txt"], false);
  }
  const file = resolveRequestPath(root, req.url ?? "/");
  if (file === null) return send(res, 400, "bad request path\n", MIME[".txt"], head);
  if (!existsSync(file) || !statSync(file).isFile()) return send(res, 404, "not found\n", MIME[".txt"], head);
  const type = MIME[extname(file).toLowerCase()] ?? "application/octet-stream";
  send(res, 200, readFileSync(file), type, head);
}

/** Starts the static server; resolves once it listens. */
export async function startWebServer(opts: WebServerOptions = {}): Promise<WebServer> {
  const root = resolve(opts.root ?? join(packageRoot(), "dist", "web"));
  if (!existsSync(join(root, "index.html"))) {
    throw new UserError(`web: ${join(root, "index.html")} is missing; run \`npm run build\` (it writes the static page to dist/web/)`);
  }
  const host = opts.host ?? "127.0.0.1";
  const server = createServer((req, res) => handle(root, req, res));
  await new Promise<void>((ok, fail) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      fail(e.code === "EADDRINUSE" || e.code === "EACCES" || e.code === "EADDRNOTAVAIL" ? new UserError(`web: cannot listen on ${host}:${opts.port ?? 8417} (${e.code})`) : e),
    );
    server.listen(opts.port ?? 8417, host, () => ok());
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}/`,
    root,
    server,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}
