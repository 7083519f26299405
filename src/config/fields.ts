// Reading typed fields out of a parsed config object with errors that name the file, the field and
// what was expected. Every config reader (HF, GGUF, presets) goes through these, so a missing or
// malformed field is always a one-line UserError and never a NaN further down.
import { UserError } from "../errors.js";

export type Json = Record<string, unknown>;

/** A field source: the parsed object plus the name of the file it came from (for messages). */
export interface FieldSource {
  obj: Json;
  file: string; // e.g. "models/llama/config.json" or "preset llama-2-7b"
}

const show = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? s.slice(0, 57) + "..." : s;
};

/** True when the key is present with a value other than null/undefined. */
export function has(src: FieldSource, key: string): boolean {
  return src.obj[key] !== undefined && src.obj[key] !== null;
}

/**
 * The first present key among aliases, e.g. ["num_attention_heads", "n_head"]. Two aliases that are both
 * present with different values are a contradiction and throw, unless strict is false (then the first wins).
 */
export function pick(src: FieldSource, keys: string[], strict = true): { key: string; value: unknown } | null {
  let found: { key: string; value: unknown } | null = null;
  for (const key of keys) {
    if (!has(src, key)) continue;
    const value = src.obj[key];
    if (!strict) return { key, value }; // the first alias wins (fields whose aliases may legitimately differ)
    if (found && JSON.stringify(found.value) !== JSON.stringify(value)) {
      throw new UserError(`${src.file}: contradictory fields ${found.key}=${show(found.value)} and ${key}=${show(value)}; expected equal values`);
    }
    if (!found) found = { key, value };
  }
  return found;
}

export interface IntOptions {
  min?: number; // default 1 (sizes are positive)
  fallback?: number; // used when no alias is present; without it the field is required
  what?: string; // e.g. "number of layers", used in the message
  strict?: boolean; // default true: differing aliases throw; false: the first alias wins
  max?: number; // default Number.MAX_SAFE_INTEGER (larger values are not exact in JavaScript)
}

/** A required (or defaulted) integer field, e.g. int(src, ["num_hidden_layers", "n_layer"]). */
export function int(src: FieldSource, keys: string[], opts: IntOptions = {}): number {
  const min = opts.min ?? 1;
  const hit = pick(src, keys, opts.strict ?? true);
  if (!hit) {
    if (opts.fallback !== undefined) return opts.fallback;
    const names = keys.length === 1 ? keys[0] : `${keys[0]} (or ${keys.slice(1).join(", ")})`;
    throw new UserError(`${src.file}: missing field ${names}; expected an integer >= ${min}${opts.what ? ` (${opts.what})` : ""}`);
  }
  return checkInt(src.file, hit.key, hit.value, min, opts.max);
}

/** An optional integer: null when absent (or null). */
export function optInt(src: FieldSource, keys: string[], min = 1, strict = true): number | null {
  const hit = pick(src, keys, strict);
  return hit ? checkInt(src.file, hit.key, hit.value, min) : null;
}

export function checkInt(file: string, key: string, value: unknown, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  // JSON has no int type, and GGUF metadata may come as bigint: accept any integral number.
  const n = typeof value === "bigint" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isFinite(n) || !Number.isInteger(n)) {
    throw new UserError(`${file}: field ${key} is ${show(value)}; expected an integer >= ${min}`);
  }
  if (n < min) throw new UserError(`${file}: field ${key} is ${n}; expected an integer >= ${min}`);
  // 1e30 or 2^53 + 1 parse as "integers" but are not exact; sizes that large are a broken file.
  if (n > max) throw new UserError(`${file}: field ${key} is ${show(value)}; expected an integer <= ${max}`);
  return n;
}

/** Upper limits for structural sizes: far above any real model, low enough that the per-layer tables stay small. */
export const LIMITS = { layers: 100_000, experts: 100_000, tableEntries: 10_000_000 } as const;

/** An optional finite number (floats such as rms_norm_eps, rope_theta). */
export function num(src: FieldSource, keys: string[], fallback: number, opts: { positive?: boolean } = {}): number {
  const hit = pick(src, keys, false);
  if (!hit) return fallback;
  const n = typeof hit.value === "bigint" ? Number(hit.value) : hit.value;
  if (typeof n !== "number" || !Number.isFinite(n) || (opts.positive && n <= 0)) {
    throw new UserError(`${src.file}: field ${hit.key} is ${show(hit.value)}; expected a ${opts.positive ? "positive " : ""}number`);
  }
  return n;
}

export function optNum(src: FieldSource, keys: string[]): number | null {
  const hit = pick(src, keys);
  if (!hit) return null;
  if (typeof hit.value !== "number" || !Number.isFinite(hit.value)) {
    throw new UserError(`${src.file}: field ${hit.key} is ${show(hit.value)}; expected a number`);
  }
  return hit.value;
}

export function bool(src: FieldSource, keys: string[], fallback: boolean): boolean {
  const hit = pick(src, keys);
  if (!hit) return fallback;
  if (typeof hit.value !== "boolean") throw new UserError(`${src.file}: field ${hit.key} is ${show(hit.value)}; expected true or false`);
  return hit.value;
}

export function str(src: FieldSource, keys: string[]): string | null {
  const hit = pick(src, keys, false);
  if (!hit) return null;
  if (typeof hit.value !== "string") throw new UserError(`${src.file}: field ${hit.key} is ${show(hit.value)}; expected a string`);
  return hit.value;
}

export function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
