/**
 * `deno task train`: one coordinator and N local workers on this machine, like torchrun. Prefixes their log
 * lines with the role, forwards Ctrl-C, and exits with the coordinator's status.
 */
import type { Config } from "../config/config.ts";
import { isLoopback, SUPERVISED_VARIABLE, toFlags, TOKEN_VARIABLE } from "../config/load.ts";
import { runMain } from "../config/main.ts";
import { pressHandler } from "../shared/interrupts.ts";
import { freePort } from "../shared/net.ts";
import {
  allowedCpus,
  batchSchedulingAvailable,
  boundCommand,
  type Placement,
  underBatch,
  workerCores,
} from "./affinity.ts";
import { type Child, signalChild, spawnChild } from "./children.ts";
import { COORDINATOR_PERMISSIONS, WORKER_PERMISSIONS } from "./permissions.ts";

const CONFIG_FILE = new URL("../deno.json", import.meta.url).pathname;
const COORDINATOR_MAIN = new URL("../coordinator/main.ts", import.meta.url).pathname;
const WORKER_MAIN = new URL("../worker/main.ts", import.meta.url).pathname;
const LISTENING = /gantry coordinator listening on (ws:\/\/\S+)/;
const DASHBOARD = /gantry dashboard at (http:\/\/\S+)/;
/** Where the NVIDIA driver lists one folder per GPU: counting them needs no process and no CUDA. */
const NVIDIA_GPUS_DIR = "/proc/driver/nvidia/gpus";

export function countGpus(): number {
  try {
    return [...Deno.readDirSync(NVIDIA_GPUS_DIR)].filter((e) => e.isDirectory).length;
  } catch {
    return 0;
  }
}

/** Workers and threads per worker: one worker per GPU, else one per core sharing the cores evenly. */
export function planWorkers(
  config: Config,
  gpus: number,
  cores: number,
): { workers: number; threads?: number } {
  const workers = config.workers ?? (gpus > 0 ? gpus : cores);
  const threads = config.threads ?? (gpus > 0 ? undefined : Math.max(1, Math.floor(cores / workers)));
  return { workers, threads };
}

/** The address local workers reach the coordinator at. */
function workerHost(host: string): string {
  if (!isLoopback(host)) return "127.0.0.1";
  return host.includes(":") ? `[${host}]` : host;
}

export async function runTrain(config: Config): Promise<number> {
  const gpus = countGpus();
  const { workers, threads } = planWorkers(config, gpus, navigator.hardwareConcurrency);
  console.log(
    `[train] starting a coordinator and ${workers} worker(s)` +
      (gpus > 0
        ? ` (one per GPU of ${gpus})`
        : ` on ${navigator.hardwareConcurrency} cores, ${threads} thread(s) each`),
  );
  // The token travels in the environment: command lines are visible to every user in `ps`.
  const secret: Record<string, string> = config.token ? { [TOKEN_VARIABLE]: config.token } : {};
  // On a terminal the coordinator writes to it directly, so that it draws its progress bars; its port is then
  // chosen here, since its listening line is not read.
  const direct = config.progress !== "lines" && config.progress !== "none" && Deno.stdout.isTerminal();
  const port = direct && config.port === 0 ? freePort() : config.port;
  const coordinator = spawnChild(
    "coordinator",
    [
      "run",
      `--config=${CONFIG_FILE}`,
      ...COORDINATOR_PERMISSIONS,
      COORDINATOR_MAIN,
      ...toFlags({ ...config, workers, port }, "coordinator", ["token"]),
    ],
    secret,
    direct,
  );
  // Watched from the start: the coordinator prints it right after its listening line (--dashboard false: never).
  coordinator.waitForLine(DASHBOARD).then((m) => m && console.log(`[train] dashboard: ${m[1]}`));
  const workerChildren: Child[] = [];
  const onInterrupt = pressHandler(() => {
    console.log("[train] interrupted: asking the coordinator to checkpoint and stop (Ctrl-C again to kill)");
    signalChild(coordinator, "SIGINT");
  }, () => {
    for (const child of [coordinator, ...workerChildren]) signalChild(child, "SIGKILL");
  });
  Deno.addSignalListener("SIGINT", onInterrupt);
  try {
    // Workers retry until the coordinator listens: in direct mode they start at once.
    const listening = direct
      ? [``, `ws://${workerHost(config.host)}:${port}`]
      : await coordinator.waitForLine(LISTENING);
    if (listening) {
      const url = listening[1].replace("//0.0.0.0:", "//127.0.0.1:");
      const cpus = config.pinWorkers === "auto" ? await allowedCpus() : "--pin-workers off";
      const placement: Placement | null = typeof cpus === "string"
        ? null
        : { cpus, workers, each: threads ?? 1, chrtWorks: await batchSchedulingAvailable() };
      console.log(
        placement === null
          ? `[train] workers not bound to cores: ${cpus}`
          : `[train] workers bound to cores ${
            Array.from({ length: workers }, (_, i) =>
              workerCores(placement.cpus, i, placement.each).join("+"))
              .join(", ")
          }${underBatch(placement) ? ", under SCHED_BATCH" : ""} (--pin-workers)`,
      );
      for (let i = 0; i < workers; i++) {
        const flags = toFlags({ ...config, threads }, "worker", ["workers", "token"]);
        if (gpus > 0) flags.push(`--gpu=${i % gpus}`);
        workerChildren.push(
          spawnChild(
            `worker ${i + 1}`,
            [
              "run",
              `--config=${CONFIG_FILE}`,
              ...WORKER_PERMISSIONS,
              WORKER_MAIN,
              `--coordinator=${url}`,
              ...flags,
            ],
            { ...secret, [SUPERVISED_VARIABLE]: "1" },
            false,
            placement === null ? [] : boundCommand(placement, i),
          ),
        );
      }
    }
    const status = await coordinator.status;
    // The coordinator has told its workers to stop; give them a moment to exit on their own.
    const deadline = AbortSignal.timeout(config.shutdownTimeoutMs);
    await Promise.race([
      Promise.all(workerChildren.map((w) => w.status)),
      new Promise((resolve) => deadline.addEventListener("abort", resolve)),
    ]);
    for (const w of workerChildren) signalChild(w, "SIGKILL");
    await Promise.all(workerChildren.map((w) => w.status));
    console.log(`[train] coordinator exited with status ${status.code}`);
    return status.code;
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
  }
}

if (import.meta.main) await runMain("train", runTrain);
