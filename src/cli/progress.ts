// A progress bar on stderr for long work: cli-progress with rate and ETA on a terminal, a line every
// 10 s otherwise (logs stay readable), nothing with --json. mqa eval counts tokens; mqa train counts
// updates and shows its own rate (tokens/s), ETA and loss.
export interface ProgressInfo {
  rate?: number; // units per second to show (default: done / elapsed)
  rateUnit?: string; // the rate's unit when it is not the bar's (train: "tok")
  eta?: number; // seconds left (default: cli-progress's estimate)
  detail?: string; // e.g. "loss 3.412"
}

export interface Progress {
  update(done: number, total: number, info?: ProgressInfo): void;
  /** A line of its own above the bar (e.g. an evaluation result); printed even when the bar is off. */
  log(line: string): void;
  stop(): void;
}

export async function progressBar(label: string, unit: string, enabled: boolean): Promise<Progress> {
  if (!enabled) return { update() {}, log: (line) => console.error(line), stop() {} };
  const t0 = performance.now();
  const rateText = (done: number, info: ProgressInfo = {}) => `${(info.rate ?? done / Math.max((performance.now() - t0) / 1000, 1e-9)).toFixed(0)} ${info.rateUnit ?? unit}/s`;
  const tail = (info: ProgressInfo = {}) => `${info.eta !== undefined ? ` | ETA ${fmtSeconds(info.eta)}` : ""}${info.detail ? ` | ${info.detail}` : ""}`;
  if (!process.stderr.isTTY) {
    let last = t0; // quiet for work shorter than 10 s, then a line every 10 s and one at the end
    return {
      update(done, total, info) {
        if (performance.now() - last < 10000 && done !== total) return;
        last = performance.now();
        console.error(`${label} ${done}/${total} ${unit} | ${rateText(done, info)}${tail(info)}`);
      },
      log: (line) => console.error(line),
      stop() {},
    };
  }
  const { SingleBar, Presets } = await import("cli-progress");
  const bar = new SingleBar({ format: `${label} {bar} {value}/{total} ${unit} | {rate} | ETA {etaText}{detail}`, hideCursor: true, stream: process.stderr }, Presets.shades_classic);
  let running = false;
  let last: { done: number; total: number; info?: ProgressInfo } = { done: 0, total: 0 };
  const etaOf = (done: number, total: number, info: ProgressInfo = {}) => info.eta ?? (done > 0 ? ((total - done) * (performance.now() - t0)) / 1000 / done : Infinity);
  const fields = (done: number, total: number, info: ProgressInfo = {}) => ({ rate: rateText(done, info), etaText: fmtSeconds(etaOf(done, total, info)), detail: info.detail ? ` | ${info.detail}` : "" });
  return {
    update(done, total, info) {
      last = { done, total, info };
      if (!running) (bar.start(total, done, fields(done, total, info)), (running = true));
      else bar.update(done, fields(done, total, info));
    },
    log(line) {
      if (running) bar.stop();
      console.error(line);
      if (running && last.done < last.total) bar.start(last.total, last.done, fields(last.done, last.total, last.info));
      else running = false;
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
  };
}

/** 42s, 12.5m, 3.1h. */
export function fmtSeconds(s: number): string {
  if (!Number.isFinite(s)) return "-";
  if (s < 90) return `${s.toFixed(0)}s`;
  if (s < 5400) return `${(s / 60).toFixed(1)}m`;
  return `${(s / 3600).toFixed(1)}h`;
}
