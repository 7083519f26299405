// Command-line values for the benchmark scripts: `--name value`, or the default when absent.
export function flag(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}
