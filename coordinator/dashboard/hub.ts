/**
 * What the dashboard shows, kept up to date from the run (the recorder's steps and sample grids, the
 * registry's workers), and pushed to every page that follows it as server-sent events: a `snapshot` on
 * connect, then `metrics`, `sample`, `workers` and `run` events. Read-only: nothing comes back from a page.
 */
import type { ServerResponse } from "node:http";
import { join } from "node:path";
import type { MetricsLine, RecorderListener } from "../recorder.ts";
import type { WorkerHandle } from "../registry.ts";

/** The fields of a step the charts need. */
const POINT_FIELDS = [
  "epoch",
  "step",
  "lossD",
  "lossG",
  "dReal",
  "dFakeD",
  "dFakeG",
  "imagesPerSec",
  "stepMs",
  "workers",
] as const satisfies readonly (keyof MetricsLine)[];

/** One step as the charts need it; `time` is Date.now() when the step was recorded. */
export type MetricsPoint = Pick<MetricsLine, typeof POINT_FIELDS[number]> & { time: number };

export interface WorkerView {
  id: number;
  name: string;
  gpu: number | null;
  backend: string;
  devices: string[];
  state: string;
  goneReason: string;
  /** Date.now() of its last frame (result or heartbeat). */
  lastSeen: number;
  imagesPerSec: number;
  joinedAtStep: number;
}

export type RunStatus = "waiting" | "training" | "finished" | "stopped" | "failed";

export interface RunView {
  dir: string;
  status: RunStatus;
  message: string;
  startedAt: number;
  epochs: number;
  totalSteps: number;
  stepsPerEpoch: number;
  batchSize: number;
  /** The resolved configuration and versions (config.json's content), secrets left out. */
  record: unknown;
}

export interface DashboardState {
  run: RunView;
  metrics: MetricsPoint[];
  /** The epochs that have a sample grid, oldest first. */
  samples: number[];
  workers: WorkerView[];
  /** The server's Date.now(), so a page can show "seen N s ago" whatever its own clock says. */
  now: number;
  /** The page thins its own history the same way past this many points. */
  maxPoints: number;
}

export interface HubOptions {
  runDir: string;
  maxClients: number;
  maxPoints: number;
  /** The workers as the registry knows them now; polled while pages are connected. */
  workers: () => WorkerView[];
}

/** How often the workers table is compared with what pages were last sent (and a keep-alive goes out). */
const WORKERS_POLL_MS = 1000;
/** A page whose unsent events pile up past this is disconnected (it reconnects and gets a snapshot). */
const MAX_CLIENT_BACKLOG_BYTES = 8 * 1024 * 1024;
const SAMPLE_NAME = /^epoch-(\d{4,9})\.png$/;
const SECRET_KEYS = new Set(["token"]);

export function samplePath(runDir: string, epoch: number): string {
  return join(runDir, "samples", `epoch-${String(epoch).padStart(4, "0")}.png`);
}

/** The epoch of a sample grid's file name, or null when the name is not exactly one (no paths). */
export function sampleEpoch(name: string): number | null {
  const match = name.match(SAMPLE_NAME);
  return match ? Number(match[1]) : null;
}

export function workerView(w: WorkerHandle): WorkerView {
  return {
    id: w.id,
    name: w.name,
    gpu: w.gpu,
    backend: w.backend.name,
    devices: w.backend.devices,
    state: w.state,
    goneReason: w.goneReason,
    lastSeen: w.lastSeen,
    imagesPerSec: w.imagesPerSec,
    joinedAtStep: w.joinedAtStep,
  };
}

function toPoint(line: MetricsLine): MetricsPoint {
  const point = { time: Date.parse(line.time) } as MetricsPoint;
  for (const field of POINT_FIELDS) point[field] = line[field];
  return point;
}

/** The record without secrets (the token), at any depth. */
export function withoutSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSecrets);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value).filter(([k]) => !SECRET_KEYS.has(k)).map(([k, v]) => [k, withoutSecrets(v)]),
  );
}

/** Keeps every other point when there are more than `max`: the whole run, at a coarser grain. */
export function thin(points: MetricsPoint[], max: number): MetricsPoint[] {
  return points.length > max ? points.filter((_, i) => i % 2 === 1 || i === points.length - 1) : points;
}

export class DashboardHub {
  readonly #options: HubOptions;
  readonly #clients = new Set<ServerResponse>();
  #run: RunView;
  #metrics: MetricsPoint[] = [];
  #samples: number[] = [];
  #workersJson = "";
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(options: HubOptions) {
    this.#options = options;
    this.#run = {
      dir: options.runDir,
      status: "waiting",
      message: "",
      startedAt: Date.now(),
      epochs: 0,
      totalSteps: 0,
      stepsPerEpoch: 0,
      batchSize: 0,
      record: null,
    };
  }

  /** Reads what the run folder already holds (a resumed run's steps and grids). */
  async load(): Promise<void> {
    try {
      const text = await Deno.readTextFile(join(this.#options.runDir, "metrics.jsonl"));
      for (const line of text.split("\n")) {
        if (line.trim() === "") continue;
        try {
          const record = JSON.parse(line);
          // Lines with a type (evaluations) are not steps.
          if (record.type === undefined) this.#push(toPoint(record));
        } catch { /* a torn line: the recorder drops it too */ }
      }
    } catch { /* a new run */ }
    try {
      for await (const entry of Deno.readDir(join(this.#options.runDir, "samples"))) {
        const epoch = sampleEpoch(entry.name);
        if (entry.isFile && epoch !== null) this.#samples.push(epoch);
      }
      this.#samples.sort((a, b) => a - b);
    } catch { /* no grids yet */ }
  }

  /** What the recorder tells the hub. */
  get listener(): RecorderListener {
    return {
      metrics: (line) => {
        const point = toPoint(line);
        this.#push(point);
        this.#broadcast("metrics", point);
      },
      samples: (epoch) => {
        if (!this.#samples.includes(epoch)) this.#samples.push(epoch);
        this.#broadcast("sample", { epoch });
      },
    };
  }

  /** Updates the run's description (totals, status, configuration) and tells the pages. */
  setRun(run: Partial<Omit<RunView, "dir" | "startedAt">>): void {
    this.#run = { ...this.#run, ...run, record: withoutSecrets(run.record ?? this.#run.record) };
    this.#broadcast("run", this.#run);
  }

  get clients(): number {
    return this.#clients.size;
  }

  snapshot(): DashboardState {
    return {
      run: this.#run,
      metrics: this.#metrics,
      samples: this.#samples,
      workers: this.#options.workers(),
      now: Date.now(),
      maxPoints: this.#options.maxPoints,
    };
  }

  /** Turns `res` into an event stream of this run; false (and nothing sent) when too many pages follow. */
  attach(res: ServerResponse): boolean {
    if (this.#clients.size >= this.#options.maxClients) return false;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      connection: "keep-alive",
    });
    this.#clients.add(res);
    res.on("close", () => this.#detach(res));
    this.#send(res, "snapshot", this.snapshot());
    this.#timer ??= setInterval(() => this.#poll(), WORKERS_POLL_MS);
    return true;
  }

  /** Ends every stream (the coordinator is shutting down). */
  close(): void {
    for (const res of this.#clients) res.end();
    this.#clients.clear();
    this.#stopPolling();
  }

  #push(point: MetricsPoint): void {
    this.#metrics.push(point);
    this.#metrics = thin(this.#metrics, this.#options.maxPoints);
  }

  #poll(): void {
    const workers = this.#options.workers();
    const json = JSON.stringify(workers);
    if (json !== this.#workersJson) {
      this.#workersJson = json;
      this.#broadcast("workers", { now: Date.now(), workers });
    } else {
      // A comment line: keeps proxies from closing an idle stream, and finds pages that went away.
      for (const res of this.#clients) this.#write(res, ": keep-alive\n\n");
    }
  }

  #broadcast(event: string, data: unknown): void {
    if (this.#clients.size === 0) return;
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of this.#clients) this.#write(res, frame);
  }

  #send(res: ServerResponse, event: string, data: unknown): void {
    this.#write(res, `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  #write(res: ServerResponse, frame: string): void {
    if (res.writableLength > MAX_CLIENT_BACKLOG_BYTES) {
      res.destroy();
      this.#detach(res);
      return;
    }
    res.write(frame);
  }

  #detach(res: ServerResponse): void {
    this.#clients.delete(res);
    if (this.#clients.size === 0) this.#stopPolling();
  }

  #stopPolling(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
