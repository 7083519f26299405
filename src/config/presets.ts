// Preset models: a data file (presets.json) of real HF configs, each with its source. Presets go through
// specFromHfConfig like any config.json, so they exercise the same parser. Pure (the web page uses it).
import { UserError } from "../errors.js";
import { specFromHfConfig } from "./hf.js";
import type { ModelSpec } from "./types.js";
import data from "./presets.json" with { type: "json" };

export interface Preset {
  name: string; // e.g. "llama-2-7b"
  hf: string; // the HF repository whose config.json this is, e.g. "meta-llama/Llama-2-7b-hf"
  aliases: string[];
  source: string; // where the values come from / were cross-checked
  config: Record<string, unknown>; // HF-config-shaped
}

const PRESETS: Preset[] = Object.entries(data.presets as Record<string, Omit<Preset, "name" | "aliases"> & { aliases?: string[] }>).map(
  ([name, p]) => ({ name, hf: p.hf, aliases: p.aliases ?? [], source: p.source, config: p.config }),
);

export function listPresets(): Preset[] {
  return PRESETS;
}

export function presetNames(): string[] {
  return PRESETS.map((p) => p.name);
}

/** Finds a preset by name, alias or HF repository id (case-insensitive); null when none matches. */
export function findPreset(name: string): Preset | null {
  const n = name.trim().toLowerCase();
  return PRESETS.find((p) => p.name === n || p.aliases.includes(n) || p.hf.toLowerCase() === n || p.hf.split("/")[1].toLowerCase() === n) ?? null;
}

/** The spec of a preset; an unknown name throws a UserError suggesting the closest names. */
export function presetSpec(name: string): ModelSpec {
  const p = findPreset(name);
  if (!p) throw new UserError(`unknown model preset "${name}"; did you mean ${closestNames(name, presetNames(), 3).join(", ")}? (mqa plan --list-models lists all)`);
  const spec = specFromHfConfig(p.config, `preset ${p.name}`);
  return { ...spec, name: p.name, source: `preset ${p.name} (${p.hf})` };
}

/** The `count` names nearest to `query` by edit distance. */
export function closestNames(query: string, names: string[], count: number): string[] {
  const q = query.toLowerCase();
  return names
    .map((n) => ({ n, d: editDistance(q, n.toLowerCase()), p: commonPrefix(q, n.toLowerCase()) }))
    .sort((a, b) => a.d - b.d || b.p - a.p || a.n.localeCompare(b.n))
    .slice(0, count)
    .map((x) => x.n);
}

/** Levenshtein distance (insert, delete, substitute all cost 1). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}
