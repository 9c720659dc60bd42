/**
 * The workers the coordinator knows, each with an explicit state. Transitions live here only:
 *
 *   IDLE ──task──▶ BUSY ──result──▶ IDLE
 *     │              │
 *     └──── close, timeout, bad frame ────▶ GONE      (STOPPED after a clean stop at the end)
 */
import type { WebSocket } from "ws";
import { encodeMessage } from "../shared/codec.ts";
import { GantryError } from "../shared/errors.ts";
import {
  type HelloMessage,
  type Message,
  type Phase,
  PROTOCOL_VERSION,
  type ResultMessage,
  type TaskMessage,
  type WorkerBackend,
} from "../shared/protocol.ts";

export type WorkerState = "IDLE" | "BUSY" | "GONE" | "STOPPED";

interface Pending {
  step: number;
  phase: Phase;
  count: number;
  resolve: (result: ResultMessage) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class WorkerHandle {
  readonly id: number;
  readonly name: string;
  readonly gpu: number | null;
  readonly pid: number;
  readonly backend: WorkerBackend;
  readonly joinedAtStep: number;
  state: WorkerState = "IDLE";
  goneReason = "";
  /** Versions of the weights this worker holds, so weights are sent only when stale. */
  generatorVersion = -1;
  discriminatorVersion = -1;
  lastComputeMs = 0;
  #socket: WebSocket;
  #pending: Pending | null = null;
  #onGone: (worker: WorkerHandle) => void;

  constructor(
    id: number,
    hello: HelloMessage,
    socket: WebSocket,
    joinedAtStep: number,
    onGone: (worker: WorkerHandle) => void,
  ) {
    this.id = id;
    this.name = hello.name;
    this.gpu = hello.gpu;
    this.pid = hello.pid;
    this.backend = hello.backend;
    this.joinedAtStep = joinedAtStep;
    this.#socket = socket;
    this.#onGone = onGone;
  }

  get live(): boolean {
    return this.state === "IDLE" || this.state === "BUSY";
  }

  send(message: Message): void {
    this.#socket.send(encodeMessage(message));
  }

  /** Sends a task and resolves with its result; rejects when the worker goes away or runs out of time. */
  request(task: TaskMessage, timeoutMs: number): Promise<ResultMessage> {
    if (this.state !== "IDLE") {
      return Promise.reject(new GantryError("E_CLOSED", `worker ${this.id} is ${this.state}`));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.drop(
          new GantryError(
            "E_TIMEOUT",
            `no result for step ${task.step} phase ${task.phase} in ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.#pending = { step: task.step, phase: task.phase, count: task.count, resolve, reject, timer };
      this.state = "BUSY";
      if (task.generator) this.generatorVersion = task.generatorVersion;
      if (task.discriminator) this.discriminatorVersion = task.discriminatorVersion;
      this.send(task);
    });
  }

  /** A validated result frame from this worker: it must answer the task in flight. */
  receiveResult(result: ResultMessage): void {
    const pending = this.#pending;
    if (
      !pending || result.step !== pending.step || result.phase !== pending.phase ||
      result.count !== pending.count
    ) {
      const expected = pending
        ? `step ${pending.step} phase ${pending.phase} count ${pending.count}`
        : "no result";
      this.drop(
        new GantryError(
          "E_PROTOCOL",
          `unexpected result for step ${result.step} phase ${result.phase} count ${result.count}: expected ${expected}`,
        ),
      );
      return;
    }
    clearTimeout(pending.timer);
    this.#pending = null;
    this.state = "IDLE";
    this.lastComputeMs = result.computeMs;
    pending.resolve(result);
  }

  /** Ends this worker: tells it why (when the socket is open), closes, fails the task in flight. */
  drop(error: GantryError): void {
    if (!this.live) return;
    this.state = "GONE";
    this.goneReason = `${error.code}: ${error.message}`;
    try {
      this.send({ type: "error", version: PROTOCOL_VERSION, code: error.code, message: error.message });
      this.#socket.close(error.closeCode, error.code);
    } catch {
      // The socket is already closed: nothing left to tell.
    }
    this.#settleGone(error);
  }

  /** The socket closed under us. */
  closed(code: number, reason: string): void {
    if (!this.live) return;
    this.state = "GONE";
    this.goneReason = `connection closed (${code}${reason ? ` ${reason}` : ""})`;
    this.#settleGone(new GantryError("E_CLOSED", `worker ${this.id} ${this.goneReason}`));
  }

  /** Tells the worker training is over; it exits with `exitCode`. */
  stop(reason: string, exitCode: number): void {
    if (!this.live) return;
    this.state = "STOPPED";
    try {
      this.send({ type: "stop", version: PROTOCOL_VERSION, reason, exitCode });
      this.#socket.close(1000, "stop");
    } catch {
      // Already closed.
    }
    this.#settleGone(new GantryError("E_CLOSED", reason));
  }

  #settleGone(error: Error): void {
    const pending = this.#pending;
    this.#pending = null;
    if (pending) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.#onGone(this);
  }
}

/** All workers, and a way to wait until enough are live. */
export class WorkerRegistry {
  readonly #workers = new Map<number, WorkerHandle>();
  #nextId = 1;
  #waiters: Array<() => void> = [];
  log: (line: string) => void;

  constructor(log: (line: string) => void) {
    this.log = log;
  }

  add(hello: HelloMessage, socket: WebSocket, step: number): WorkerHandle {
    const worker = new WorkerHandle(this.#nextId++, hello, socket, step, (w) => this.#gone(w));
    this.#workers.set(worker.id, worker);
    this.#wake();
    return worker;
  }

  get all(): WorkerHandle[] {
    return [...this.#workers.values()];
  }

  get live(): WorkerHandle[] {
    return this.all.filter((w) => w.live);
  }

  /** Resolves with the live workers once there are at least `n`; rejects after `timeoutMs`. */
  async waitForLive(n: number, timeoutMs: number, signal?: AbortSignal): Promise<WorkerHandle[]> {
    // The common case, on every phase: no timer and no signal, which would otherwise pile up by thousands.
    const live = this.live;
    if (live.length >= n) return live;
    const deadline = AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(signal ? [signal] : [])]);
    while (this.live.length < n) {
      if (deadline.aborted) {
        throw new GantryError(
          "E_TIMEOUT",
          `${this.live.length} of ${n} workers after waiting ${timeoutMs} ms`,
        );
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          deadline.removeEventListener("abort", done);
          this.#waiters = this.#waiters.filter((w) => w !== done);
          resolve();
        };
        this.#waiters.push(done);
        deadline.addEventListener("abort", done);
      });
    }
    return this.live;
  }

  stopAll(reason: string, exitCode: number): void {
    for (const worker of this.live) worker.stop(reason, exitCode);
  }

  #gone(worker: WorkerHandle): void {
    if (worker.state === "GONE") {
      this.log(`worker ${worker.id} (${worker.name}) is gone: ${worker.goneReason}`);
    }
    this.#wake();
  }

  #wake(): void {
    for (const wake of [...this.#waiters]) wake();
  }
}
