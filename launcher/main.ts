/**
 * `deno task train`: one coordinator and N local workers on this machine, like torchrun. Prefixes their log
 * lines with the role, forwards Ctrl-C, and exits with the coordinator's status.
 */
import type { Config } from "../config/config.ts";
import { toFlags } from "../config/load.ts";
import { runMain } from "../config/main.ts";
import { type Child, signalChild, spawnChild } from "./children.ts";
import { COORDINATOR_PERMISSIONS, WORKER_PERMISSIONS } from "./permissions.ts";

const CONFIG_FILE = new URL("../deno.json", import.meta.url).pathname;
const COORDINATOR_MAIN = new URL("../coordinator/main.ts", import.meta.url).pathname;
const WORKER_MAIN = new URL("../worker/main.ts", import.meta.url).pathname;
const LISTENING = /gantry coordinator listening on (ws:\/\/\S+)/;
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

export async function runTrain(config: Config): Promise<number> {
  const gpus = countGpus();
  const { workers, threads } = planWorkers(config, gpus, navigator.hardwareConcurrency);
  console.log(
    `[train] starting a coordinator and ${workers} worker(s)` +
      (gpus > 0
        ? ` (one per GPU of ${gpus})`
        : ` on ${navigator.hardwareConcurrency} cores, ${threads} thread(s) each`),
  );
  const coordinator = spawnChild("coordinator", [
    "run",
    `--config=${CONFIG_FILE}`,
    ...COORDINATOR_PERMISSIONS,
    COORDINATOR_MAIN,
    ...toFlags({ ...config, workers }, "coordinator"),
  ]);
  const workerChildren: Child[] = [];
  let interrupts = 0;
  const onInterrupt = () => {
    interrupts++;
    if (interrupts === 1) {
      console.log(
        "[train] interrupted: asking the coordinator to checkpoint and stop (Ctrl-C again to kill)",
      );
      signalChild(coordinator, "SIGINT");
    } else {
      for (const child of [coordinator, ...workerChildren]) signalChild(child, "SIGKILL");
    }
  };
  Deno.addSignalListener("SIGINT", onInterrupt);
  try {
    const listening = await coordinator.waitForLine(LISTENING);
    if (listening) {
      const url = listening[1].replace("//0.0.0.0:", "//127.0.0.1:");
      for (let i = 0; i < workers; i++) {
        const flags = toFlags({ ...config, threads }, "worker", ["workers"]);
        if (gpus > 0) flags.push(`--gpu=${i % gpus}`);
        workerChildren.push(
          spawnChild(`worker ${i + 1}`, [
            "run",
            `--config=${CONFIG_FILE}`,
            ...WORKER_PERMISSIONS,
            WORKER_MAIN,
            `--coordinator=${url}`,
            ...flags,
          ]),
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
