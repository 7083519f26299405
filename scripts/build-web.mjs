// Builds the planner web page into dist/web/ (static files; `mqa web` serves them, any static host works).
//   web/main.ts ──esbuild──► dist/web/app.js   (bundles src/planner, src/spec, src/kvcache, vega, vega-lite)
//   web/index.html, web/style.css ──copy──► dist/web/
// The bundle targets the browser platform, so a node:* import anywhere in the planner's import graph
// fails the build: that keeps the shared planner code pure.
// Usage: node scripts/build-web.mjs [outDir] [--no-typecheck]
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const STATIC_FILES = ["index.html", "style.css"];

/** Type-checks web/ (esbuild strips types without checking them). */
export function typecheckWeb() {
  execFileSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(ROOT, "web/tsconfig.json")], { stdio: "inherit" });
}

/** Bundles the page into outDir; returns the esbuild metafile's output sizes in bytes. */
export async function buildWeb({ outDir = join(ROOT, "dist/web"), minify = true } = {}) {
  const esbuild = await import("esbuild");
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: [join(ROOT, "web/main.ts")],
    outfile: join(outDir, "app.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["es2022"],
    minify,
    sourcemap: "linked",
    metafile: true,
    legalComments: "linked",
    logLevel: "warning",
  });
  for (const f of STATIC_FILES) copyFileSync(join(ROOT, "web", f), join(outDir, f));
  const sizes = {};
  for (const [file, info] of Object.entries(result.metafile.outputs)) sizes[file] = info.bytes;
  return { outDir, sizes };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const outDir = args.find((a) => !a.startsWith("--"));
  if (!args.includes("--no-typecheck")) typecheckWeb();
  const { outDir: dir, sizes } = await buildWeb(outDir ? { outDir: resolve(outDir) } : {});
  const app = Object.entries(sizes).find(([f]) => f.endsWith("app.js"));
  console.log(`build-web: wrote ${dir} (app.js ${app ? (app[1] / 1024).toFixed(0) : "?"} KiB)`);
}
