// Flag values shared by every command: one parser per kind of value, so that the same spelling
// means the same thing everywhere.
//
// The number rule, for every flag of every command: a number is written in plain decimal, with an
// optional sign, fraction and exponent ("8", "0.95", "1e-5"); an integer is written in decimal
// digits only ("4096"; a flag that says so also takes a k suffix for × 1024, "32k"). Number()
// alone would also take "0x10", "0b1", "0o7", "Infinity", "" and " " (as 0); all of these are
// refused, so `--context 0x10` is an error rather than 16.
//
// Messages name the flag and quote the value: `--tp: "0" is not an integer >= 1`.
import { OptionError, UserError } from "../errors.js";
import { canonicalDtype } from "../dtypes/table.js";

const DECIMAL = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;
const INTEGER = /^\s*([+-]?\d+)\s*([kK]?)\s*$/;

export interface IntRange {
  min?: number; // default 1
  max?: number; // default 2^53 - 1
  k?: boolean; // accept a k suffix (× 1024), e.g. --context 32k
}

/** A TCP port; 0 asks the OS for a free one (mqa serve, mqa web). */
export const PORT: IntRange = { min: 0, max: 65535 };

/** An integer flag in [min, max]: `intFlag("--tp", "4")` = 4. */
export function intFlag(flag: string, value: string, range: IntRange = {}): number {
  const { min = 1, max = Number.MAX_SAFE_INTEGER, k = false } = range;
  const m = INTEGER.exec(value);
  const n = m && (!m[2] || k) ? Number(m[1]) * (m[2] ? 1024 : 1) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const want = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new UserError(`${flag}: "${value}" is not an integer ${want}`);
  }
  return n;
}

/** A comma-separated list of integers, each in [min, max]: `intListFlag("--mqar-pairs", "4,8")` = [4, 8]. */
export function intListFlag(flag: string, value: string, range: IntRange = {}): number[] {
  return value.split(",").map((s) => intFlag(flag, s, range));
}

export interface NumRange {
  min?: number; // default: no bound
  max?: number;
  minOpen?: boolean; // (min, ...]: min itself refused, e.g. --top-p
  maxOpen?: boolean; // [..., max): max itself refused, e.g. --min-p
}

/** A finite decimal number flag in the range: `numFlag("--top-p", "0.9", { min: 0, minOpen: true, max: 1 })` = 0.9. */
export function numFlag(flag: string, value: string, range: NumRange = {}): number {
  const { min = -Infinity, max = Infinity, minOpen = false, maxOpen = false } = range;
  const n = Number(value);
  const inRange = (minOpen ? n > min : n >= min) && (maxOpen ? n < max : n <= max);
  if (!DECIMAL.test(value) || !Number.isFinite(n) || !inRange) {
    throw new UserError(`${flag}: "${value}" is not a number${rangeText(range)}`);
  }
  return n;
}

function rangeText({ min, max, minOpen, maxOpen }: NumRange): string {
  if (min !== undefined && max !== undefined) return ` in ${minOpen ? "(" : "["}${min}, ${max}${maxOpen ? ")" : "]"}`;
  if (min !== undefined) return ` ${minOpen ? ">" : ">="} ${min}`;
  if (max !== undefined) return ` ${maxOpen ? "<" : "<="} ${max}`;
  return "";
}

/** One of a fixed list, taken from the library (e.g. KERNEL_BACKENDS): `choiceFlag("--backend", "wasm", KERNEL_BACKENDS)`. */
export function choiceFlag<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) throw new UserError(`${flag}: "${value}" is not one of ${choices.join(", ")}`);
  return value as T;
}

/** The canonical dtype for a flag value in any accepted spelling ("fp16", "half", "BF16", ...). */
export function dtypeFlag(flag: string, value: string, allowed: readonly string[]): string {
  try {
    return canonicalDtype(value, allowed);
  } catch (e) {
    throw new UserError(`${flag}: ${(e as Error).message}`);
  }
}

/**
 * The flag that sets a library option field: the field in kebab case ("maxTokens" → "--max-tokens",
 * "activation.tokens" → "--activation-tokens"), unless `renames` says otherwise (train's seqLen is
 * --context).
 */
export function flagOf(field: string, renames: Readonly<Record<string, string>> = {}): string {
  return renames[field] ?? `--${field.replace(/\./g, "-").replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/**
 * A library OptionError re-worded for the command line: the first mention of each field it names
 * becomes the flag, so `context: "0" ...` from the planner prints as `--context: "0" ...`. Other
 * errors pass through unchanged.
 */
export function withFlagNames(err: unknown, renames: Readonly<Record<string, string>> = {}): unknown {
  if (!(err instanceof OptionError)) return err;
  let message = err.message;
  for (const field of err.fields) {
    const at = new RegExp(`(^|[^\\w.-])${field.replace(/\./g, "\\.")}(?![\\w-])`).exec(message);
    if (at) message = message.slice(0, at.index + at[1].length) + flagOf(field, renames) + message.slice(at.index + at[0].length);
  }
  return new UserError(message);
}
