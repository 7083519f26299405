// Renders a Vega-Lite spec to an SVG or PNG file (node only; the web page renders in the browser).
// vega-lite compile → vega View with renderer "none" → toSVG(); PNG via @resvg/resvg-js.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, extname, resolve } from "node:path";
import type { TopLevelSpec } from "vega-lite";
import { OptionError } from "../errors.js";

export async function chartToSvg(spec: TopLevelSpec): Promise<string> {
  const vl = await import("vega-lite");
  const vega = await import("vega");
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

export async function svgToPng(svg: string, scale = 2): Promise<Buffer> {
  const { Resvg } = await import("@resvg/resvg-js");
  const resvg = new Resvg(svg, {
    fitTo: { mode: "zoom", value: scale },
    background: "white",
    font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" },
  });
  return resvg.render().asPng();
}

/**
 * mkdir -p that fails instead of hanging: Node 20's mkdirSync(..., { recursive: true }) loops forever under /proc
 * (ENOENT is retried), so the missing levels are created one by one from the deepest existing ancestor.
 */
export function makeDirs(dir: string): void {
  const missing: string[] = [];
  let d = resolve(dir);
  while (!existsSync(d)) {
    missing.unshift(d);
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  for (const m of missing) mkdirSync(m);
}

/** Writes the chart to `path`; the extension (.svg or .png) picks the format. */
export async function renderChartFile(spec: TopLevelSpec, path: string): Promise<void> {
  const ext = extname(path).toLowerCase();
  if (ext !== ".svg" && ext !== ".png") throw new OptionError("chart", `chart ${path}: expected a .svg or .png file name`);
  const svg = await chartToSvg(spec);
  const data = ext === ".svg" ? svg : await svgToPng(svg);
  try {
    makeDirs(dirname(path) || ".");
    writeFileSync(path, data);
  } catch (e) {
    // EACCES, ENOENT under /proc, EISDIR, ENOSPC, ...: the user's path, named with the flag.
    throw new OptionError("chart", `chart ${path}: cannot write the file (${(e as Error).message.split("\n")[0]}); expected a writable path`);
  }
}
