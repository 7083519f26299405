// A progress bar on stderr for long work: cli-progress with rate and ETA on a terminal, a line every
// 10 s otherwise (logs stay readable), nothing with --json.
export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

export async function progressBar(label: string, unit: string, enabled: boolean): Promise<Progress> {
  if (!enabled) return { update() {}, stop() {} };
  const t0 = performance.now();
  const rate = (done: number) => done / Math.max((performance.now() - t0) / 1000, 1e-9);
  if (!process.stderr.isTTY) {
    let last = t0; // quiet for work shorter than 10 s
    return {
      update(done, total) {
        if (performance.now() - last < 10000) return;
        last = performance.now();
        console.error(`${label} ${done}/${total} ${unit} | ${rate(done).toFixed(0)} ${unit}/s`);
      },
      stop() {},
    };
  }
  const { SingleBar, Presets } = await import("cli-progress");
  const bar = new SingleBar({ format: `${label} {bar} {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted}`, hideCursor: true, stream: process.stderr, etaBuffer: 20 }, Presets.shades_classic);
  let started = false;
  return {
    update(done, total) {
      if (!started) (bar.start(total, done, { rate: "-" }), (started = true));
      else bar.update(done, { rate: rate(done).toFixed(0) });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
