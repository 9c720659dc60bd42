/**
 * The run folder: config.json, metrics.jsonl and the sample grids. The coordinator is the only process that
 * writes here (after nanoGPT: one process does all logging and checkpointing).
 */
import { join } from "node:path";
import { writeFileAtomic } from "../shared/files.ts";

export interface MetricsLine {
  epoch: number;
  step: number;
  lossD: number;
  lossG: number;
  /** Mean sigmoid(D(x)) over the real images, and sigmoid(D(G(z))) in the D and G phases. */
  dReal: number;
  dFakeD: number;
  dFakeG: number;
  imagesPerSec: number;
  workers: number;
  /** The backend of each worker of the step's G phase, in shard order. */
  backends: string[];
  stepMs: number;
  computeMs: number;
  /** Where the step's time went besides compute (ms, D + G phases); see issue 7 and scaling/. */
  broadcastMs?: number;
  encodeMs?: number;
  networkMs?: number;
  decodeMs?: number;
  optimizerMs?: number;
  /** The G phase's shard sizes, in worker order (uneven under --balance). */
  shards?: number[];
  /** The coordinator's memory after the step, to see that it stays flat. */
  heapMb: number;
  rssMb: number;
  time: string;
}

/** Rewrites metrics.jsonl with the whole lines of steps <= `step` (a torn last line is dropped too). */
async function keepMetricsThrough(path: string, step: number): Promise<void> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return;
  }
  const kept = text.split("\n").filter((line) => {
    try {
      return (JSON.parse(line) as MetricsLine).step <= step;
    } catch {
      return false;
    }
  });
  await writeFileAtomic(path, kept.map((l) => l + "\n").join(""));
}

/** Follows a run as it is recorded (the dashboard): each step's line, and each sample grid once written. */
export interface RecorderListener {
  metrics?(line: MetricsLine): void;
  samples?(epoch: number, path: string): void;
}

export class RunRecorder {
  readonly dir: string;
  #metrics: Deno.FsFile;
  #encoder = new TextEncoder();
  #listeners: RecorderListener[] = [];

  private constructor(dir: string, metrics: Deno.FsFile) {
    this.dir = dir;
    this.#metrics = metrics;
  }

  /**
   * Opens a run folder. With `resumedAtStep`, metrics lines after that step (written after the checkpoint
   * being resumed, and about to be computed again) are dropped, so every step stays in the file exactly once.
   */
  static async create(dir: string, resumedAtStep?: number): Promise<RunRecorder> {
    await Deno.mkdir(join(dir, "samples"), { recursive: true });
    await Deno.mkdir(join(dir, "checkpoints"), { recursive: true });
    const path = join(dir, "metrics.jsonl");
    if (resumedAtStep !== undefined) await keepMetricsThrough(path, resumedAtStep);
    const metrics = await Deno.open(path, { create: true, append: true });
    return new RunRecorder(dir, metrics);
  }

  async writeConfig(record: unknown): Promise<void> {
    await writeFileAtomic(join(this.dir, "config.json"), JSON.stringify(record, null, 2) + "\n");
  }

  /** One line per step, written through at once so a crash loses at most the step in flight. */
  appendMetrics(line: MetricsLine): void {
    this.#metrics.writeSync(this.#encoder.encode(JSON.stringify(line) + "\n"));
    for (const listener of this.#listeners) listener.metrics?.(line);
  }

  /**
   * A line that is not a step's (an --eval-every evaluation, told apart by its `type`), written the same way;
   * step listeners do not see it.
   */
  appendRecord(line: { type: string; step: number }): void {
    this.#metrics.writeSync(this.#encoder.encode(JSON.stringify(line) + "\n"));
  }

  listen(listener: RecorderListener): void {
    this.#listeners.push(listener);
  }

  async writeSamples(epoch: number, png: Uint8Array): Promise<string> {
    const path = join(this.dir, "samples", `epoch-${String(epoch).padStart(4, "0")}.png`);
    await writeFileAtomic(path, png);
    for (const listener of this.#listeners) listener.samples?.(epoch, path);
    return path;
  }

  close(): void {
    this.#metrics.close();
  }
}

/** `runs/<timestamp>` in local time, sortable and safe in file names. */
export function defaultRunDir(now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  const stamp = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${
    p(now.getMinutes())
  }${p(now.getSeconds())}`;
  return join("runs", stamp);
}
