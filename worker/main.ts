/**
 * `deno task worker`: loads its backend, connects to the coordinator, and computes the gradient sums of the
 * shards it is sent until told to stop. Stateless apart from its replica of G and D.
 */
import type { Config } from "../config/config.ts";
import { SUPERVISED_VARIABLE } from "../config/load.ts";
import { runMain } from "../config/main.ts";
import { type BackendInfo, initBackend } from "../shared/backends/select.ts";
import { decodeFrame } from "../shared/codec.ts";
import { errorMessage, GantryError } from "../shared/errors.ts";
import { modelSpecs } from "../shared/models/specs.ts";
import {
  type ExpectedSizes,
  expectedSizes,
  type HelloMessage,
  PROTOCOL_VERSION,
  validateFromCoordinator,
  type WelcomeMessage,
} from "../shared/protocol.ts";
import { StepComputer } from "../shared/step.ts";
import { CoordinatorLink } from "./link.ts";
import { LocalMemory } from "./local_memory.ts";
import { TaskRunner } from "./compute.ts";
import { nowUs, SpanLog } from "../shared/trace.ts";

/** How long a worker waits for its last words (an error frame, a close) to leave before it exits. */
const CLOSE_WAIT_MS = 2000;

/** Runs one worker until the coordinator stops it; returns the exit code. */
export async function runWorker(config: Config): Promise<number> {
  const name = config.gpu === undefined ? `worker-${Deno.pid}` : `gpu${config.gpu}-${Deno.pid}`;
  const log = (line: string) => console.log(line);
  const backend: BackendInfo = await initBackend({
    backend: config.backend,
    gpu: config.gpu,
    threads: config.threads,
    log,
  });
  const local = new LocalMemory();
  const localUnavailable = LocalMemory.unavailable(config);
  const baseHello: HelloMessage = {
    type: "hello",
    version: PROTOCOL_VERSION,
    name,
    gpu: config.gpu ?? null,
    pid: Deno.pid,
    backend: {
      name: backend.name,
      tfjsVersion: backend.tfjsVersion,
      ...(backend.tfVersion ? { tfVersion: backend.tfVersion } : {}),
      devices: backend.devices,
      fallbackReasons: backend.fallbackReasons,
    },
    ...(config.token ? { token: config.token } : {}),
  };
  /** A hello, with a fresh shared-memory probe when the coordinator may be on this machine. */
  const hello = (): HelloMessage => {
    if (localUnavailable !== null) return baseHello;
    try {
      return { ...baseHello, sharedMemory: local.offer() };
    } catch (error) {
      log(`not offering shared memory: ${errorMessage(error)}`);
      return baseHello;
    }
  };

  const kept = new Map<number, Float32Array>();
  const keptArray = (size: number): Float32Array => {
    let array = kept.get(size);
    if (!array) kept.set(size, array = new Float32Array(size));
    return array;
  };
  let computer = null as StepComputer | null;
  let runner: TaskRunner | null = null;
  let spans = new SpanLog(false);
  /** Time spent decoding frames since the last result (weights frames come ahead of their task). */
  let decodeMs = 0;
  let sizes: ExpectedSizes | null = null;
  let exitCode: number | null = null;
  let done: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => done = resolve);
  const finish = async (code: number, why: string, close?: GantryError) => {
    if (exitCode !== null) return;
    exitCode = code;
    log(why);
    await link.close(close?.closeCode ?? 1000, close?.code ?? "done", CLOSE_WAIT_MS);
    done(code);
  };

  /** A welcome, again after a reconnection: the replica is rebuilt only when the model differs. */
  const welcome = (message: WelcomeMessage) => {
    const specs = modelSpecs(message.model, message.latentDim);
    const simulated = config.compute === "simulated";
    const same = computer !== null && computer.specs.model === specs.model &&
      computer.specs.latentDim === specs.latentDim && computer.labelSmoothing === message.labelSmoothing;
    if (!same) computer?.dispose();
    // Simulated compute builds no model at all: only the sizes of its gradients matter.
    const current = simulated ? null : same ? computer! : new StepComputer(specs, message.labelSmoothing);
    computer = current;
    sizes = expectedSizes(specs);
    spans = new SpanLog(message.trace);
    const transport = local.accept(message.sharedMemory);
    // A new connection knows nothing of the weights held: the coordinator sends them before the first task.
    runner = new TaskRunner(current, {
      wire: message.wire,
      spans,
      ...(simulated ? { simulated: { stepMs: config.stepMs, specs } } : {}),
      // float32 gradients are read straight into shared memory (float16 ones are converted first), or into
      // arrays kept from step to step: the frame gets a copy, and megabytes are not allocated per step.
      ...(message.wire === "float32"
        ? { gradsInto: message.sharedMemory ? (n: number) => local.gradsView(n) : keptArray }
        : {}),
    });
    link.setHeartbeat(message.heartbeatIntervalMs, message.heartbeatTimeoutMs);
    log(
      `joined as worker ${message.workerId}: model ${message.model}, wire ${message.wire}, ` +
        `${transport}${localUnavailable ? ` (${localUnavailable})` : ""}` +
        (simulated ? `, simulated compute of ${config.stepMs} ms per step` : ""),
    );
  };

  const receive = (bytes: Uint8Array) => {
    if (exitCode !== null) return;
    try {
      const started = performance.now();
      const startUs = nowUs();
      const message = validateFromCoordinator(decodeFrame(bytes, local.regions), sizes);
      switch (message.type) {
        case "heartbeat":
          break;
        case "welcome":
          welcome(message);
          break;
        case "weights":
          runner!.weights(message);
          decodeMs += performance.now() - started;
          spans.add(`weights ${message.net}`, startUs, nowUs() - startUs);
          break;
        case "task": {
          decodeMs += performance.now() - started;
          spans.add(`decode task ${message.phase}`, startUs, nowUs() - startUs);
          const result = runner!.run(message, decodeMs);
          decodeMs = 0;
          const sendUs = nowUs();
          link.send(result, local.gradsPlacement);
          // Lands in the next result's spans (this one is already encoded).
          spans.add(`encode result ${message.phase}`, sendUs, nowUs() - sendUs);
          break;
        }
        case "stop":
          void finish(message.exitCode, `stopped by the coordinator: ${message.reason}`);
          break;
        case "error":
          void finish(1, `the coordinator refused this worker: ${message.code}: ${message.message}`);
          break;
      }
    } catch (error) {
      const e = error instanceof GantryError ? error : new GantryError("E_BAD_MESSAGE", errorMessage(error));
      link.send({ type: "error", version: PROTOCOL_VERSION, code: e.code, message: e.message });
      void finish(1, `giving up: ${e.code}: ${e.message}`, e);
    }
  };

  /** The coordinator went away without a stop: it may come back (restarted with --resume). */
  const lost = async (code: number, reason: string) => {
    if (exitCode !== null) return;
    const what = `lost the coordinator (${code}${reason ? ` ${reason}` : ""})`;
    if (config.reconnectTimeoutMs === 0) {
      await finish(1, `${what}; not reconnecting (--reconnect-timeout-ms 0)`);
      return;
    }
    log(`${what}; reconnecting for up to ${config.reconnectTimeoutMs} ms`);
    try {
      await link.connect(config.reconnectTimeoutMs, "reconnect-timeout-ms", true);
      log(`reconnected to ${config.coordinator}`);
      sizes = null;
      link.send(hello());
    } catch (error) {
      await finish(1, `giving up: ${errorMessage(error)}`);
    }
  };

  const link = new CoordinatorLink({
    url: config.coordinator,
    retryMs: config.connectRetryMs,
    backoffMaxMs: config.reconnectBackoffMaxMs,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    heartbeatTimeoutMs: config.heartbeatTimeoutMs,
  }, { frame: receive, closed: (code, reason) => void lost(code, reason), log });
  const leaveInterruptToCoordinator = () => log("interrupted: the coordinator will stop this worker");
  const supervised = Deno.env.get(SUPERVISED_VARIABLE) === "1";
  if (supervised) Deno.addSignalListener("SIGINT", leaveInterruptToCoordinator);
  try {
    await link.connect(config.connectTimeoutMs, "connect-timeout-ms", false);
    link.send(hello());
    return await finished;
  } finally {
    if (supervised) Deno.removeSignalListener("SIGINT", leaveInterruptToCoordinator);
    computer?.dispose();
    link.terminate();
    local.close();
  }
}

if (import.meta.main) await runMain("worker", runWorker);
