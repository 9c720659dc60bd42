/**
 * The workers the coordinator knows, each with an explicit state. Transitions live here only:
 *
 *   IDLE ──task──▶ BUSY ──result──▶ IDLE
 *     │              │
 *     └── close, silence, timeout, bad frame ──▶ GONE      (STOPPED after a clean stop at the end)
 */
import type { WebSocket } from "ws";
import { encodeMessage, type SharedPlacement } from "../shared/codec.ts";
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

/**
 * Starts a closing handshake, and ends the connection outright if the peer has not answered it within
 * `graceMs`: a peer that never acknowledges would otherwise hold its socket for ws's 30 s close timeout.
 */
export function closeFirmly(socket: WebSocket, code: number, reason: string, graceMs: number): void {
  const timer = setTimeout(() => socket.terminate(), graceMs);
  socket.once("close", () => clearTimeout(timer));
  socket.close(code, reason);
}

export type WorkerState = "IDLE" | "BUSY" | "GONE" | "STOPPED";

interface Pending {
  step: number;
  phase: Phase;
  count: number;
  resolve: (result: ResultMessage) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** The weight of each new step's speed in a worker's smoothed speed (a mean over about 10 steps). */
const BALANCE_SMOOTHING = 0.1;

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
  /** The coordinator's time to decode and check this worker's last result, ms. */
  lastDecodeMs = 0;
  /** Shared-memory regions this worker may place tensors in (its gradient segment), when it has any. */
  sharedRegions: Readonly<Record<string, Uint8Array>> = {};
  /** Where its tasks' tensors go, when it is on shared memory. */
  taskPlacement: SharedPlacement | undefined;
  /** performance.now() when its last result arrived (the end of its network wait). */
  lastResultAt = 0;
  /** Images of its shard per second of its compute over its last whole step (D + G), for the dashboard. */
  imagesPerSec = 0;
  /**
   * The same, averaged over recent steps (exponentially, BALANCE_SMOOTHING per step): what --balance shards
   * by. One step's speed is noisy (a worker's step time here wanders by 10% from step to step), while what
   * --balance must follow lasts (one core of this machine computed 3 to 5% slower than the other).
   */
  smoothedImagesPerSec = 0;
  #stepComputeMs = { step: 0, ms: 0 };
  /** Date.now() of the last frame from this worker, of any kind: what heartbeats keep fresh. */
  lastSeen = Date.now();
  #socket: WebSocket;
  #pending: Pending | null = null;
  #onGone: (worker: WorkerHandle) => void;
  #closeGraceMs: number;

  constructor(
    id: number,
    hello: HelloMessage,
    socket: WebSocket,
    joinedAtStep: number,
    onGone: (worker: WorkerHandle) => void,
    closeGraceMs: number,
  ) {
    this.#closeGraceMs = closeGraceMs;
    this.id = id;
    this.name = hello.name;
    this.gpu = hello.gpu;
    this.pid = hello.pid;
    this.backend = hello.backend;
    this.joinedAtStep = joinedAtStep;
    this.#socket = socket;
    this.#onGone = onGone;
  }

  /** Big tensors go through shared memory rather than the socket. */
  get sharedMemory(): boolean {
    return "grads" in this.sharedRegions;
  }

  get live(): boolean {
    return this.state === "IDLE" || this.state === "BUSY";
  }

  send(message: Message, shared?: SharedPlacement | readonly SharedPlacement[]): void {
    this.#socket.send(encodeMessage(message, undefined, undefined, shared));
  }

  /**
   * Sends a weights frame encoded once for all workers (the same bytes to each), and records that this
   * worker now holds that version. The socket keeps the order: the weights arrive before the next task.
   */
  sendWeights(net: Phase, weightsVersion: number, frame: Uint8Array, sent: () => void = () => {}): void {
    if (!this.live) {
      sent();
      return;
    }
    if (net === "G") this.generatorVersion = weightsVersion;
    else this.discriminatorVersion = weightsVersion;
    // ws writes large frames without copying them: `sent` says when the bytes may be reused.
    this.#socket.send(frame, () => sent());
  }

  /**
   * Sends a task and resolves with its result; rejects when the worker goes away or runs out of time.
   * `weights`: where the task's weights lie in shared memory (a worker that maps it reads them there).
   */
  request(task: TaskMessage, timeoutMs: number, weights?: SharedPlacement): Promise<ResultMessage> {
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
      this.send(task, this.taskPlacement && weights ? [this.taskPlacement, weights] : this.taskPlacement);
    });
  }

  /** A validated result frame from this worker: it must answer the task in flight. */
  receiveResult(result: ResultMessage, decodeMs = 0): void {
    this.lastDecodeMs = decodeMs;
    this.lastResultAt = performance.now();
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
    if (result.step !== this.#stepComputeMs.step) this.#stepComputeMs = { step: result.step, ms: 0 };
    this.#stepComputeMs.ms += result.computeMs;
    if (result.phase === "G" && this.#stepComputeMs.ms > 0) {
      this.imagesPerSec = result.count * 1000 / this.#stepComputeMs.ms;
      this.smoothedImagesPerSec = this.smoothedImagesPerSec === 0
        ? this.imagesPerSec
        : this.smoothedImagesPerSec + BALANCE_SMOOTHING * (this.imagesPerSec - this.smoothedImagesPerSec);
    }
    pending.resolve(result);
  }

  /** Drops this worker when nothing has come from it for `timeoutMs`; true when it was dropped. */
  dropIfSilent(now: number, timeoutMs: number): boolean {
    const silentMs = now - this.lastSeen;
    if (!this.live || silentMs <= timeoutMs) return false;
    this.drop(
      new GantryError("E_TIMEOUT", `silent for ${silentMs} ms (over --heartbeat-timeout-ms ${timeoutMs})`),
    );
    return true;
  }

  /** Ends this worker: tells it why (when the socket is open), closes, fails the task in flight. */
  drop(error: GantryError): void {
    if (!this.live) return;
    this.state = "GONE";
    this.goneReason = `${error.code}: ${error.message}`;
    try {
      this.send({ type: "error", version: PROTOCOL_VERSION, code: error.code, message: error.message });
      closeFirmly(this.#socket, error.closeCode, error.code, this.#closeGraceMs);
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
      closeFirmly(this.#socket, 1000, "stop", this.#closeGraceMs);
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
  /** Departed workers remembered; older ones are forgotten, so joins and leaves cannot grow memory. */
  readonly history: number;
  readonly closeGraceMs: number;
  /** Called once for each worker that leaves, whatever the reason. */
  onDeparted: (worker: WorkerHandle) => void = () => {};

  constructor(log: (line: string) => void, history = 64, closeGraceMs = 10_000) {
    this.log = log;
    this.history = history;
    this.closeGraceMs = closeGraceMs;
  }

  add(hello: HelloMessage, socket: WebSocket, step: number): WorkerHandle {
    const worker = new WorkerHandle(
      this.#nextId++,
      hello,
      socket,
      step,
      (w) => this.#gone(w),
      this.closeGraceMs,
    );
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

  /**
   * The workers that take part in `step`: those that joined before it began. A worker that joins mid-step
   * starts with the next one, unless nobody else is left to finish this one.
   */
  forStep(step: number): WorkerHandle[] {
    const live = this.live;
    const joined = live.filter((w) => w.joinedAtStep <= step);
    return joined.length > 0 ? joined : live;
  }

  /**
   * Every `intervalMs`: a heartbeat to each live worker, and the drop of those silent for over `timeoutMs`.
   * Returns the function that stops it.
   */
  startHeartbeats(intervalMs: number, timeoutMs: number): () => void {
    let lastTick = Date.now();
    const timer = setInterval(() => {
      const now = Date.now();
      // A late tick means this process was busy (a checkpoint, a plot): the frames that came meanwhile are
      // still queued behind this timer, so judge silence only on the next, punctual tick.
      const punctual = now - lastTick < 2 * intervalMs;
      lastTick = now;
      for (const worker of this.live) {
        if (punctual && worker.dropIfSilent(now, timeoutMs)) continue;
        try {
          worker.send({ type: "heartbeat", version: PROTOCOL_VERSION });
        } catch {
          // A socket closing under us: its close event drops the worker.
        }
      }
    }, intervalMs);
    return () => clearInterval(timer);
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
    this.onDeparted(worker);
    this.#forgetOldest();
    this.#wake();
  }

  #forgetOldest(): void {
    const departed = this.all.filter((w) => !w.live);
    // Map order is join order: the first departed are the oldest.
    for (const worker of departed.slice(0, Math.max(0, departed.length - this.history))) {
      this.#workers.delete(worker.id);
    }
  }

  #wake(): void {
    for (const wake of [...this.#waiters]) wake();
  }
}
