// Summary statistics the experiment reports share: mean and sample standard deviation over seeds;
// and the kernel benchmarks' interleaved best-of timing.

export interface Stats {
  mean: number;
  std: number; // sample standard deviation (n − 1); 0 when n < 2
  n: number;
}

export function stats(xs: number[]): Stats {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / Math.max(1, n);
  const std = n > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}

/** "mean ± std (n = k)" with `digits` decimals; "—" for no values, "(n = 1)" without a spread. */
export function fmtStats(s: Stats | null, digits = 4): string {
  if (!s || s.n === 0) return "—";
  return s.n === 1 ? `${s.mean.toFixed(digits)} (n = 1)` : `${s.mean.toFixed(digits)} ± ${s.std.toFixed(digits)} (n = ${s.n})`;
}

/**
 * Best time (ms) of each function over at least `seconds` (and 3 rounds), the functions alternating
 * every round so all see the same machine state; round 0 is a warm-up and not counted.
 */
export function timeTogether(fns: (() => void)[], seconds: number): number[] {
  const best = fns.map(() => Infinity);
  const t0 = performance.now();
  for (let r = 0; r < 3 || performance.now() - t0 < seconds * 1000; r++) {
    fns.forEach((fn, i) => {
      const a = performance.now();
      fn();
      if (r > 0) best[i] = Math.min(best[i], performance.now() - a);
    });
  }
  return best;
}
