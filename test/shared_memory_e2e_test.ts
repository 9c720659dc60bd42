/**
 * Workers on the coordinator's machine pass gradients, weights and task tensors through shared memory:
 * the training must be the very same as over sockets, a run may mix both kinds of worker, and nothing may
 * be left in /dev/shm when it ends.
 */
import { assert, assertEquals } from "../shared/testing.ts";
import { TEST_BACKEND } from "./backend.ts";
import {
  cleanup,
  coordinatorUrl,
  type Proc,
  readMetrics,
  startCoordinator,
  startWorker,
} from "./processes.ts";

const RUN_TIMEOUT_MS = 120_000;
const START_TIMEOUT_MS = 60_000;
const STEPS = 5;
const RUN = [
  "--model=cdcgan",
  "--examples=320",
  "--batch-size=16",
  `--max-steps=${STEPS}`,
  "--seed=5",
  "--workers=2",
  "--port=0",
  "--progress=none",
];

/** gantry's segment names in /dev/shm (listed with ls: Deno guards /dev/shm behind --allow-all). */
async function segments(): Promise<string[]> {
  const { stdout } = await new Deno.Command("ls", { args: ["/dev/shm"] }).output();
  return new TextDecoder().decode(stdout).split("\n").filter((name) => name.startsWith("gantry-"));
}

/** Trains STEPS steps on two workers, each with its own --shared-memory; returns the losses per step. */
async function losses(coordinatorMode: string, workerModes: [string, string], extra: string[] = []): Promise<{
  losses: number[][];
  coordinatorOutput: string;
  workerOutputs: string[];
}> {
  const out = await Deno.makeTempDir({ prefix: "gantry-shm-" });
  const coordinator = startCoordinator([
    ...RUN,
    `--shared-memory=${coordinatorMode}`,
    `--out=${out}`,
    ...extra,
  ]);
  let workers: Proc[] = [];
  try {
    const url = await coordinatorUrl(coordinator, START_TIMEOUT_MS);
    workers = workerModes.map((mode, i) =>
      startWorker(`worker ${i + 1}`, [
        `--coordinator=${url}`,
        `--backend=${TEST_BACKEND}`,
        `--shared-memory=${mode}`,
      ])
    );
    assertEquals(await coordinator.exit(RUN_TIMEOUT_MS), 0, coordinator.output());
    for (const w of workers) assertEquals(await w.exit(RUN_TIMEOUT_MS), 0, w.output());
    const metrics = await readMetrics(out);
    assertEquals(metrics.length, STEPS);
    return {
      losses: metrics.map((m) => [m.lossD as number, m.lossG as number]),
      coordinatorOutput: coordinator.output(),
      workerOutputs: workers.map((w) => w.output()),
    };
  } finally {
    await cleanup(coordinator, ...workers);
    await Deno.remove(out, { recursive: true });
  }
}

Deno.test({
  name:
    "workers on shared memory, on sockets, one of each, or more than the slots train exactly alike and leave /dev/shm clean",
  sanitizeResources: false,
  async fn() {
    const before = new Set(await segments());
    const sockets = await losses("off", ["auto", "auto"]);
    const shared = await losses("auto", ["auto", "auto"]);
    const mixed = await losses("auto", ["auto", "off"]);
    const oneSlot = await losses("auto", ["auto", "auto"], ["--shared-memory-workers=1"]);

    assertEquals(sockets.coordinatorOutput.match(/socket only/g)?.length, 2, sockets.coordinatorOutput);
    assertEquals(shared.coordinatorOutput.match(/, shared memory/g)?.length, 2, shared.coordinatorOutput);
    assert(
      shared.workerOutputs.every((o) => o.includes("wire float32, shared memory")),
      shared.workerOutputs.join(),
    );
    assertEquals(mixed.coordinatorOutput.match(/, shared memory/g)?.length, 1, mixed.coordinatorOutput);
    assertEquals(mixed.coordinatorOutput.match(/socket only/g)?.length, 1, mixed.coordinatorOutput);
    assert(mixed.workerOutputs.some((o) => o.includes("socket only (--shared-memory off)")));
    assertEquals(oneSlot.coordinatorOutput.match(/, shared memory/g)?.length, 1, oneSlot.coordinatorOutput);
    assert(
      oneSlot.coordinatorOutput.includes("all 1 shared-memory slots are taken (--shared-memory-workers)"),
      oneSlot.coordinatorOutput,
    );

    console.log(`losses over sockets: ${JSON.stringify(sockets.losses)}`);
    assertEquals(shared.losses, sockets.losses, "shared memory changes nothing in the training");
    assertEquals(mixed.losses, sockets.losses, "nor does a mix of both");
    assertEquals(oneSlot.losses, sockets.losses, "nor a worker left to the socket for want of a slot");
    const left = (await segments()).filter((name) => !before.has(name));
    assertEquals(left, [], "segments left in /dev/shm");
  },
});
