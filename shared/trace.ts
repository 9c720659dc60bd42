/**
 * --trace: every phase of every process as Chrome trace events ("X" complete events, µs), for chrome://tracing
 * and Perfetto. Times are wall-clock µs (performance.timeOrigin + now), so the spans of workers in other
 * processes on the same machine line up with the coordinator's. Workers send their spans with each result;
 * the coordinator collects them and writes one file at the end.
 */
import type { Span } from "./protocol.ts";
import { writeFileAtomic } from "./files.ts";

/** Now, in µs since the epoch, with sub-millisecond resolution. */
export function nowUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

export interface TraceEvent {
  name: string;
  ph: "X" | "M";
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  args?: Record<string, unknown>;
}

/** A worker's (or any process's) spans, kept until they are taken (sent with the next result). */
export class SpanLog {
  #spans: Span[] = [];
  readonly enabled: boolean;
  /** Oldest spans are dropped beyond this, so a trace cannot grow a message without bound. */
  readonly limit: number;

  constructor(enabled: boolean, limit = 64) {
    this.enabled = enabled;
    this.limit = limit;
  }

  /** Runs `f`, recording a span named `name` around it when enabled. */
  time<T>(name: string, f: () => T): T {
    if (!this.enabled) return f();
    const start = nowUs();
    try {
      return f();
    } finally {
      this.add(name, start, nowUs() - start);
    }
  }

  add(name: string, startUs: number, durationUs: number): void {
    if (!this.enabled) return;
    if (this.#spans.length >= this.limit) this.#spans.shift();
    this.#spans.push([name, startUs, durationUs]);
  }

  take(): Span[] {
    const spans = this.#spans;
    this.#spans = [];
    return spans;
  }
}

/** All processes' events of a run, written as `{ traceEvents: [...] }`. */
export class Trace {
  readonly #events: TraceEvent[] = [];
  /** Events kept at most (a long run with --trace would otherwise grow memory for good). */
  readonly limit: number;
  #dropped = 0;

  constructor(limit = 2_000_000) {
    this.limit = limit;
  }

  /** Names a process (and its main thread) in the viewer. */
  nameProcess(pid: number, name: string): void {
    this.#events.push({ name: "process_name", ph: "M", ts: 0, pid, tid: 0, args: { name } });
  }

  add(name: string, startUs: number, durationUs: number, pid: number, args?: Record<string, unknown>): void {
    if (this.#events.length >= this.limit) {
      this.#dropped++;
      return;
    }
    const event: TraceEvent = { name, ph: "X", ts: startUs, dur: Math.max(0, durationUs), pid, tid: 0 };
    if (args) event.args = args;
    this.#events.push(event);
  }

  addSpans(spans: readonly Span[], pid: number): void {
    for (const [name, start, duration] of spans) this.add(name, start, duration, pid);
  }

  /** Times `f` as a span of process `pid`. */
  async time<T>(name: string, pid: number, f: () => Promise<T> | T): Promise<T> {
    const start = nowUs();
    try {
      return await f();
    } finally {
      this.add(name, start, nowUs() - start, pid);
    }
  }

  get events(): readonly TraceEvent[] {
    return this.#events;
  }

  get dropped(): number {
    return this.#dropped;
  }

  async write(path: string): Promise<void> {
    const meta = { tool: "gantry", droppedEvents: this.#dropped };
    await writeFileAtomic(path, JSON.stringify({ traceEvents: this.#events, displayTimeUnit: "ms", meta }));
  }
}
