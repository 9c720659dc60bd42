/**
 * `deno task worker`: loads its backend, connects to the coordinator, and computes the gradient sums of the
 * shards it is sent until told to stop. Stateless apart from its replica of G and D.
 */
import type { Config } from "../config/config.ts";
import { runMain } from "../config/main.ts";
import { type BackendInfo, initBackend } from "../shared/backends/select.ts";
import { decodeFrame, encodeMessage } from "../shared/codec.ts";
import { errorMessage, GantryError } from "../shared/errors.ts";
import { modelSpecs } from "../shared/models/specs.ts";
import {
  type ExpectedSizes,
  expectedSizes,
  type Message,
  PROTOCOL_VERSION,
  validateFromCoordinator,
} from "../shared/protocol.ts";
import { StepComputer } from "../shared/step.ts";
import { connectWithRetry } from "./connection.ts";
import { TaskRunner } from "./compute.ts";

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
  const socket = await connectWithRetry({
    url: config.coordinator,
    connectTimeoutMs: config.connectTimeoutMs,
    connectRetryMs: config.connectRetryMs,
    log,
  });
  const send = (message: Message) => socket.send(encodeMessage(message));
  send({
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
  });

  let computer: StepComputer | null = null;
  let runner: TaskRunner | null = null;
  let sizes: ExpectedSizes | null = null;
  return await new Promise<number>((resolve) => {
    let exitCode: number | null = null;
    const finish = (code: number, why: string) => {
      if (exitCode !== null) return;
      exitCode = code;
      log(why);
      computer?.dispose();
      try {
        socket.close(1000);
      } catch { /* already closed */ }
      resolve(code);
    };
    socket.onmessage = (event) => {
      if (exitCode !== null) return;
      try {
        const message = validateFromCoordinator(
          decodeFrame(new Uint8Array(event.data as ArrayBuffer)),
          sizes,
        );
        switch (message.type) {
          case "welcome": {
            const specs = modelSpecs(message.model, message.latentDim);
            sizes = expectedSizes(specs);
            computer = new StepComputer(specs, message.labelSmoothing);
            runner = new TaskRunner(computer);
            log(`joined as worker ${message.workerId}: model ${message.model}`);
            break;
          }
          case "task":
            send(runner!.run(message));
            break;
          case "stop":
            finish(message.exitCode, `stopped by the coordinator: ${message.reason}`);
            break;
          case "error":
            finish(1, `the coordinator refused this worker: ${message.code}: ${message.message}`);
            break;
        }
      } catch (error) {
        const e = error instanceof GantryError
          ? error
          : new GantryError("E_BAD_MESSAGE", errorMessage(error));
        try {
          send({ type: "error", version: PROTOCOL_VERSION, code: e.code, message: e.message });
        } catch { /* the socket is gone */ }
        finish(1, `giving up: ${e.code}: ${e.message}`);
      }
    };
    socket.onclose = (event) => {
      finish(
        1,
        `the coordinator closed the connection (${event.code}${event.reason ? ` ${event.reason}` : ""})`,
      );
    };
  });
}

if (import.meta.main) await runMain("worker", runWorker);
