// Number formatting for the page (presentation only): binary byte units and grouped integers.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** Bytes in binary units with 3 significant digits, e.g. 2147483648 → "2.00 GiB", 524288 → "512 KiB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  const sign = bytes < 0 ? "−" : "";
  let v = Math.abs(bytes);
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  const digits = u === 0 ? 0 : v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${sign}${v.toFixed(digits)} ${UNITS[u]}`;
}

/** An integer with thousands separators, e.g. 2147483648 → "2,147,483,648". */
export function formatInt(n: number): string {
  return n.toLocaleString("en-US", { maximumFractionDigits: 0 });
}

/** Tokens in short form for slider labels, e.g. 131072 → "128K", 1536 → "1.5K". */
export function formatTokens(n: number): string {
  if (n >= 1048576 && n % 1048576 === 0) return `${n / 1048576}M`;
  if (n >= 1024 && n % 512 === 0) return `${n / 1024}K`;
  return String(n);
}

/** A count or rate with 3 significant digits, e.g. 1234.5 → "1.23K", 6738415616 → "6.74B". */
export function formatRate(n: number): string {
  if (!Number.isFinite(n)) return "—";
  if (n >= 1e12) return `${(n / 1e12).toPrecision(3)}T`;
  if (n >= 1e9) return `${(n / 1e9).toPrecision(3)}B`;
  if (n >= 1e6) return `${(n / 1e6).toPrecision(3)}M`;
  if (n >= 1e3) return `${(n / 1e3).toPrecision(3)}K`;
  return n.toPrecision(3);
}
