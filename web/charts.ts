// Renders the planner's Vega-Lite chart specs (src/planner/charts.ts, the same builders `mqa plan --chart`
// uses) in the browser: vega-lite compiles to Vega, a Vega View draws SVG into the container.
import { parse, View } from "vega";
import { compile, type TopLevelSpec } from "vega-lite";

const views = new Map<HTMLElement, View>();

/** Replaces the chart in `container` with `spec`; resolves when it is drawn. */
export async function showChart(container: HTMLElement, spec: TopLevelSpec): Promise<void> {
  const compiled = compile(spec).spec;
  const view = new View(parse(compiled), { renderer: "svg", container, hover: true });
  views.get(container)?.finalize();
  views.set(container, view);
  await view.runAsync();
}

/** Clears a chart (e.g. when the model does not parse). */
export function clearChart(container: HTMLElement): void {
  views.get(container)?.finalize();
  views.delete(container);
  container.replaceChildren();
}
