/**
 * The terminal progress. On a TTY: one bar per epoch (npm:cli-progress) with the losses, images/s and the
 * ETAs of the epoch and of the run; each finished epoch's bar stays on screen. Elsewhere (CI logs, files):
 * plain lines every --progress-interval-ms, so a log stays readable and small.
 */
// @ts-types="@types/cli-progress"
import cliProgress from "cli-progress";

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

/** Where the progress goes: stdout by default, a buffer in tests. */
export interface ProgressOutput {
  isTTY: boolean;
  columns: number;
  write(text: string): void;
}

export interface ProgressOptions {
  mode: "auto" | "bar" | "lines" | "none";
  intervalMs: number;
  /** Steps of a full epoch: the length of each epoch's bar. */
  stepsPerEpoch: number;
  output?: ProgressOutput;
}

/** Redraws per second of the bar (cli-progress redraws on a timer, not on every step). */
const BAR_FPS = 10;
const BAR_WIDTH = 20;
/** Terminal width assumed when the output cannot say. */
const DEFAULT_COLUMNS = 120;
const CLEAR_LINE = "\r\x1b[2K";

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

/** Deno's stdout as a stream cli-progress can drive (it writes ANSI sequences through node:readline). */
export function stdoutOutput(): ProgressOutput {
  const encoder = new TextEncoder();
  let columns = DEFAULT_COLUMNS;
  try {
    columns = Deno.consoleSize().columns;
  } catch { /* not a terminal */ }
  return {
    isTTY: Deno.stdout.isTerminal(),
    columns,
    write: (text) => Deno.stdout.writeSync(encoder.encode(text)),
  };
}

export class ProgressLine {
  readonly #mode: "bar" | "lines" | "none";
  readonly #intervalMs: number;
  readonly #stepsPerEpoch: number;
  readonly #output: ProgressOutput;
  #lastPrint = -Infinity;
  #imagesPerSec = 0;
  #bar: cliProgress.SingleBar | null = null;
  #barEpoch = 0;

  constructor(options: ProgressOptions) {
    this.#output = options.output ?? stdoutOutput();
    this.#mode = options.mode === "auto" ? (this.#output.isTTY ? "bar" : "lines") : options.mode;
    this.#intervalMs = options.intervalMs;
    this.#stepsPerEpoch = options.stepsPerEpoch;
  }

  /**
   * Called after every step, with `force` at each epoch's last step and the run's last; smooths images/s
   * so the ETA does not jump.
   */
  update(p: ProgressSnapshot, force = false): void {
    this.#imagesPerSec = this.#imagesPerSec === 0
      ? p.imagesPerSec
      : 0.9 * this.#imagesPerSec + 0.1 * p.imagesPerSec;
    const rate = this.#imagesPerSec;
    const runEta = (p.totalSteps - p.step) * p.batchSize / rate;
    if (this.#mode === "bar") this.#updateBar(p, runEta, force);
    else if (this.#mode === "lines") {
      const now = performance.now();
      if (!force && now - this.#lastPrint < this.#intervalMs) return;
      this.#lastPrint = now;
      this.#output.write(formatProgress({ ...p, imagesPerSec: rate }, runEta) + "\n");
    }
  }

  #updateBar(p: ProgressSnapshot, runEta: number, force: boolean): void {
    const epochStart = (p.epoch - 1) * this.#stepsPerEpoch;
    const epochSteps = Math.max(1, Math.min(this.#stepsPerEpoch, p.totalSteps - epochStart));
    const value = Math.min(epochSteps, Math.max(0, p.step - epochStart));
    if (this.#bar && this.#barEpoch !== p.epoch) this.close();
    const payload = {
      epochs: p.epochs,
      lossD: p.lossD.toFixed(4),
      lossG: p.lossG.toFixed(4),
      rate: this.#imagesPerSec.toFixed(1),
      epochEta: formatDuration((epochSteps - value) * p.batchSize / this.#imagesPerSec),
      runEta: formatDuration(runEta),
      workers: p.workers,
    };
    if (!this.#bar) {
      this.#bar = this.#newBar();
      this.#barEpoch = p.epoch;
      this.#bar.start(epochSteps, value, { epoch: p.epoch, ...payload });
    }
    this.#bar.update(value, payload);
    // The epoch is over: its bar is drawn once more, complete, and left on its own line.
    if (force) this.close();
  }

  #newBar(): cliProgress.SingleBar {
    return new cliProgress.SingleBar({
      format:
        "epoch {epoch}/{epochs} |{bar}| {value}/{total} | lossD {lossD} lossG {lossG} | {rate} img/s | " +
        "ETA {epochEta}, run {runEta} | workers {workers}",
      barsize: BAR_WIDTH,
      barCompleteChar: "\u2588",
      barIncompleteChar: "\u2591",
      fps: BAR_FPS,
      // Redraw even when nothing changed: a log line may have been printed over the bar (breakLine).
      forceRedraw: true,
      // The coordinator handles SIGINT itself (checkpoint, then exit).
      gracefulExit: false,
      // cli-progress uses only isTTY, columns and write (through node:readline) of its stream.
      stream: this.#output as unknown as NodeJS.WritableStream,
    });
  }

  /** Clears the bar's line so that a log line can be printed there; the bar is redrawn below it. */
  breakLine(): void {
    if (this.#bar) this.#output.write(CLEAR_LINE);
  }

  /** Stops the bar in progress (it leaves its last state on screen) and its redraw timer. */
  close(): void {
    this.#bar?.stop();
    this.#bar = null;
  }
}
