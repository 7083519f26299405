// Builds the web pages into dist/web/ (static files; `mqa web` serves them, any static host works).
//   web/main.ts          ──esbuild──► dist/web/app.js            the planner (src/planner, src/spec, src/kvcache, vega)
//   web/model.ts         ──esbuild──► dist/web/model.js          the model page (draws; planner functions for the diagram)
//   web/engine-worker.ts ──esbuild──► dist/web/engine-worker.js  the engine: arena, kernels, model, generation loop
//   web/kernel-worker.ts ──esbuild──► dist/web/kernel-worker.js  one kernel thread (src/kernels/pool-browser.ts)
//   build/kernels-*.wasm, models/default/* ──copy──► dist/web/   (the page fetches them; nothing is uploaded)
//   web/index.html, web/model.html, web/style.css ──copy──► dist/web/
// The bundles target the browser platform. The planner bundle must import no node:* module at all, which
// keeps the shared planner code pure. The engine bundles reach files that also serve the CLI (the model
// registry, the tokenizer glue, the kernel factory) whose Node-only functions (reading a folder, spawning
// worker_threads) the browser never calls: their node:* imports resolve to a stub whose every export
// throws "Node-only", so no Node module is in the bundle and a call that slipped through says so by name.
// Usage: node scripts/build-web.mjs [outDir] [--no-typecheck]
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const STATIC_FILES = ["index.html", "model.html", "style.css"];
const KERNEL_BUILDS = ["kernels-simd", "kernels-relaxed", "kernels-simd-st", "kernels-relaxed-st"];
const DEFAULT_MODEL_FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md"];

/** Type-checks web/ (esbuild strips types without checking them). */
export function typecheckWeb() {
  for (const p of ["web/tsconfig.json", "web/tsconfig.engine.json"]) execFileSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(ROOT, p)], { stdio: "inherit" });
}

/** esbuild plugin: Node built-ins (node:fs, and bare "fs" from dependencies) → a module whose every export throws; records who imported what. */
function nodeStubPlugin(record) {
  const builtins = new Set(builtinModules);
  return {
    name: "node-only-stub",
    setup(build) {
      build.onResolve({ filter: /^[a-z0-9_/:]+$/ }, (args) => {
        const bare = args.path.replace(/^node:/, "");
        if (!args.path.startsWith("node:") && !builtins.has(bare)) return undefined;
        record.push(`${relative(ROOT, args.importer)} → ${args.path}`);
        return { path: bare, namespace: "node-only" };
      });
      build.onLoad({ filter: /.*/, namespace: "node-only" }, async (args) => {
        // The export names of the real module, so every named import resolves (to a function that throws).
        const names = Object.keys(await import(`node:${args.path}`)).filter((n) => /^[A-Za-z_$][\w$]*$/.test(n) && n !== "default");
        const fail = `(n) => () => { throw new Error(\`\${n} is Node-only (node:${args.path}): the browser engine cannot call it\`); }`;
        return { contents: `const stub = ${fail};\n${names.map((n) => `export const ${n} = stub(${JSON.stringify(n)});`).join("\n")}\nexport default {};\n`, loader: "js" };
      });
    },
  };
}

/** Bundles the pages into outDir; returns the esbuild output sizes in bytes and the stubbed node:* imports. */
export async function buildWeb({ outDir = join(ROOT, "dist/web"), minify = true } = {}) {
  const esbuild = await import("esbuild");
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const common = { absWorkingDir: ROOT, bundle: true, format: "esm", platform: "browser", target: ["es2022"], minify, sourcemap: "linked", metafile: true, legalComments: "linked", logLevel: "warning" };
  const planner = await esbuild.build({ ...common, entryPoints: [join(ROOT, "web/main.ts")], outfile: join(outDir, "app.js") });
  const stubbed = [];
  const engine = await esbuild.build({
    ...common,
    entryPoints: { model: join(ROOT, "web/model.ts"), "engine-worker": join(ROOT, "web/engine-worker.ts"), "kernel-worker": join(ROOT, "web/kernel-worker.ts") },
    outdir: outDir,
    plugins: [nodeStubPlugin(stubbed)],
  });
  for (const f of STATIC_FILES) copyFileSync(join(ROOT, "web", f), join(outDir, f));
  for (const k of KERNEL_BUILDS) {
    const src = join(ROOT, "build", `${k}.wasm`);
    if (!existsSync(src)) throw new Error(`build-web: ${src} is missing; run \`npm run build\` (it compiles the kernels first)`);
    copyFileSync(src, join(outDir, `${k}.wasm`));
  }
  mkdirSync(join(outDir, "models/default"), { recursive: true });
  for (const f of DEFAULT_MODEL_FILES) copyFileSync(join(ROOT, "models/default", f), join(outDir, "models/default", f));
  const sizes = {};
  for (const r of [planner, engine]) for (const [file, info] of Object.entries(r.metafile.outputs)) sizes[file] = info.bytes;
  return { outDir, sizes, stubbed: [...new Set(stubbed)].sort() };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const outDir = args.find((a) => !a.startsWith("--"));
  if (!args.includes("--no-typecheck")) typecheckWeb();
  const { outDir: dir, sizes } = await buildWeb(outDir ? { outDir: resolve(outDir) } : {});
  const kib = (suffix) => {
    const e = Object.entries(sizes).find(([f]) => f.endsWith(suffix));
    return e ? `${(e[1] / 1024).toFixed(0)} KiB` : "?";
  };
  console.log(`build-web: wrote ${dir} (app.js ${kib("/app.js")}, model.js ${kib("/model.js")}, engine-worker.js ${kib("/engine-worker.js")})`);
}
