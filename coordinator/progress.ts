/**
 * The terminal progress: one line rewritten in place on a TTY, plain periodic lines otherwise (CI logs,
 * files), so a log is readable and a terminal is not flooded.
 */
export interface ProgressSnapshot {
  epoch: number;
  epochs: number;
  step: number;
  totalSteps: number;
  batchSize: number;
  lossD: number;
  lossG: number;
  imagesPerSec: number;
  workers: number;
}

/** A TTY line is redrawn at most this often. */
const BAR_REFRESH_MS = 100;

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const mmss = `${String(m).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
  return h > 0 ? `${h}:${mmss}` : mmss;
}

export function formatProgress(p: ProgressSnapshot, etaSeconds: number): string {
  return `epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.totalSteps} ` +
    `lossD ${p.lossD.toFixed(4)} lossG ${p.lossG.toFixed(4)} ` +
    `${p.imagesPerSec.toFixed(1)} img/s ETA ${formatDuration(etaSeconds)} workers ${p.workers}`;
}

export class ProgressLine {
  readonly #mode: "bar" | "lines" | "none";
  readonly #intervalMs: number;
  #lastPrint = 0;
  #imagesPerSec = 0;
  #onLine = false;
  #encoder = new TextEncoder();

  constructor(mode: "auto" | "bar" | "lines" | "none", intervalMs: number) {
    this.#mode = mode === "auto" ? (Deno.stdout.isTerminal() ? "bar" : "lines") : mode;
    this.#intervalMs = intervalMs;
  }

  /** Called after every step; smooths images/s so the ETA does not jump. */
  update(p: ProgressSnapshot, force = false): void {
    this.#imagesPerSec = this.#imagesPerSec === 0
      ? p.imagesPerSec
      : 0.9 * this.#imagesPerSec + 0.1 * p.imagesPerSec;
    const now = performance.now();
    const interval = this.#mode === "bar" ? BAR_REFRESH_MS : this.#intervalMs;
    if (this.#mode === "none" || (!force && now - this.#lastPrint < interval)) return;
    this.#lastPrint = now;
    const eta = (p.totalSteps - p.step) * p.batchSize / this.#imagesPerSec;
    const line = formatProgress({ ...p, imagesPerSec: this.#imagesPerSec }, eta);
    if (this.#mode === "bar") {
      Deno.stdout.writeSync(this.#encoder.encode(`\r\x1b[2K${line}`));
      this.#onLine = true;
    } else console.log(line);
  }

  /** Ends the in-place line so that the next log line starts on its own. */
  breakLine(): void {
    if (this.#onLine) Deno.stdout.writeSync(this.#encoder.encode("\n"));
    this.#onLine = false;
  }
}
