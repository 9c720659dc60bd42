/**
 * Workers that die, stall or join, and a coordinator that dies: the run goes on with the workers it has,
 * pauses below --min-workers, and records every step exactly once.
 */
import { freePort } from "../shared/net.ts";
import { Rng } from "../shared/rng.ts";
import { assert, assertEquals } from "../shared/testing.ts";
import { TEST_BACKEND } from "./backend.ts";
import { TestPeer } from "./peer.ts";
import {
  assertEachStepOnce,
  cleanup,
  coordinatorUrl,
  latestCheckpoint,
  metricLines,
  type Proc,
  readMetrics,
  residentMb,
  startCoordinator,
  startWorker,
  waitForSteps,
} from "./processes.ts";

const RUN_TIMEOUT_MS = 120_000;
const START_TIMEOUT_MS = 60_000;
/** 240 examples at batch 24: 10 steps an epoch. */
const STEPS_PER_EPOCH = 10;
const RUN = ["--model=mlp", "--examples=240", "--batch-size=24", "--progress=none"];
const FAST_HEARTBEATS = ["--heartbeat-interval-ms=200", "--heartbeat-timeout-ms=2000"];

function worker(name: string, url: string, extra: string[] = []): Proc {
  return startWorker(name, [`--coordinator=${url}`, `--backend=${TEST_BACKEND}`, ...extra]);
}

async function withRunDir(prefix: string, fn: (out: string) => Promise<void>): Promise<void> {
  const out = await Deno.makeTempDir({ prefix });
  try {
    await fn(out);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}

for (const seed of [1, 2, 3]) {
  Deno.test({
    name: `seed ${seed}: one of 3 workers killed with SIGKILL at a random step; every step is recorded once`,
    sanitizeResources: false,
    fn: () =>
      withRunDir("gantry-kill-", async (out) => {
        const killAt = 2 + new Rng(seed).int(STEPS_PER_EPOCH - 4);
        const coordinator = startCoordinator([
          ...RUN,
          `--seed=${seed}`,
          "--epochs=1",
          "--workers=3",
          "--port=0",
          `--out=${out}`,
        ]);
        const url = await coordinatorUrl(coordinator, START_TIMEOUT_MS);
        const workers = [1, 2, 3].map((i) => worker(`worker ${i}`, url));
        try {
          await waitForSteps(out, killAt, RUN_TIMEOUT_MS);
          workers[1].kill("SIGKILL");
          assertEquals(await coordinator.exit(RUN_TIMEOUT_MS), 0, coordinator.output());
          await assertEachStepOnce(out, STEPS_PER_EPOCH);
          const counts = (await readMetrics(out)).map((m) => m.workers);
          console.log(`killed after step ${killAt}; workers per step: ${counts.join(" ")}`);
          assertEquals(counts[0], 3);
          assertEquals(counts.at(-1), 2);
          assert(
            /worker \d \(\S+\) is gone: connection closed/.test(coordinator.output()),
            coordinator.output(),
          );
        } finally {
          await cleanup(coordinator, ...workers);
        }
      }),
  });
}

Deno.test({
  name:
    "a worker joining mid-run takes part from the next step; a stalled one (SIGSTOP) is dropped for silence",
  sanitizeResources: false,
  fn: () =>
    withRunDir("gantry-join-", async (out) => {
      const coordinator = startCoordinator([
        ...RUN,
        ...FAST_HEARTBEATS,
        "--seed=4",
        "--epochs=2",
        "--workers=1",
        "--port=0",
        `--out=${out}`,
      ]);
      const url = await coordinatorUrl(coordinator, START_TIMEOUT_MS);
      const first = worker("worker 1", url);
      let second: Proc | null = null;
      try {
        await waitForSteps(out, 3, RUN_TIMEOUT_MS);
        second = worker("worker 2", url);
        const from = Number(
          (await coordinator.waitFor(/worker 2 joined, from step (\d+)/, START_TIMEOUT_MS))[1],
        );
        await waitForSteps(out, from + 2, RUN_TIMEOUT_MS);
        second.kill("SIGSTOP");
        const dropped = await coordinator.waitFor(
          /worker 2 \(\S+\) is gone: (E_TIMEOUT: silent for \d+ ms)/,
          10_000,
        );
        console.log(`joined for step ${from}; after SIGSTOP: ${dropped[1]}`);
        second.kill("SIGKILL");
        assertEquals(await coordinator.exit(RUN_TIMEOUT_MS), 0, coordinator.output());
        await assertEachStepOnce(out, 2 * STEPS_PER_EPOCH);
        const counts = (await readMetrics(out)).map((m) => m.workers);
        console.log(`workers per step: ${counts.join(" ")}`);
        assert(counts.slice(0, from - 1).every((n) => n === 1), "one worker before the join");
        assertEquals(counts[from - 1], 2, `step ${from} has both workers`);
        assertEquals(counts.at(-1), 1);
      } finally {
        await cleanup(coordinator, first, ...(second ? [second] : []));
      }
    }),
});

Deno.test({
  name: "a coordinator restarted with --resume gets its workers back; below --min-workers it pauses, " +
    "checkpoints and exits 3; resumed, the run ends with every step once",
  sanitizeResources: false,
  fn: () =>
    withRunDir("gantry-restart-", async (out) => {
      const port = freePort();
      const url = `ws://127.0.0.1:${port}`;
      const args = [
        ...RUN,
        "--seed=5",
        "--epochs=1",
        "--workers=2",
        "--min-workers=2",
        "--join-timeout-ms=3000",
        "--checkpoint-every=1",
        `--port=${port}`,
        `--out=${out}`,
      ];
      const procs: Proc[] = [];
      const run = (p: Proc) => (procs.push(p), p);
      try {
        const first = run(startCoordinator(args));
        await coordinatorUrl(first, START_TIMEOUT_MS);
        const workers = [1, 2].map((i) => run(worker(`worker ${i}`, url, ["--reconnect-timeout-ms=60000"])));
        await waitForSteps(out, 3, RUN_TIMEOUT_MS);
        first.kill("SIGKILL");
        await first.exit(START_TIMEOUT_MS);

        const second = run(startCoordinator([...args, `--resume=${out}`]));
        await second.waitFor(/worker 2 joined/, START_TIMEOUT_MS);
        for (const w of workers) await w.waitFor(/reconnected to/, START_TIMEOUT_MS);
        const reached = (await metricLines(out)) + 2;
        await waitForSteps(out, reached, RUN_TIMEOUT_MS);
        workers[1].kill("SIGKILL");
        assertEquals(await second.exit(RUN_TIMEOUT_MS), 3, second.output());
        const log = second.output();
        assert(/paused at step \d+: 1 live worker\(s\), --min-workers is 2/.test(log), log);
        assert(/gave up at step \d+: 1 of 2 workers after 3000 ms/.test(log), log);
        const recorded = await metricLines(out);
        assert((await latestCheckpoint(out)).endsWith(`step-${String(recorded).padStart(8, "0")}`));

        const third = run(startCoordinator([...args, `--resume=${out}`]));
        await coordinatorUrl(third, START_TIMEOUT_MS);
        for (const i of [3, 4]) run(worker(`worker ${i}`, url));
        assertEquals(await third.exit(RUN_TIMEOUT_MS), 0, third.output());
        await assertEachStepOnce(out, STEPS_PER_EPOCH);
        console.log(
          `coordinator killed after step 3, paused and gave up after step ${recorded}, resumed to the end`,
        );
      } finally {
        await cleanup(...procs);
      }
    }),
});

Deno.test({
  name: "the coordinator's memory does not grow over 500 connect/disconnect cycles",
  sanitizeResources: false,
  fn: () =>
    withRunDir("gantry-cycles-", async (out) => {
      // It waits for 2 workers that never come together: only joins and leaves happen.
      const coordinator = startCoordinator([...RUN, "--workers=2", "--port=0", `--out=${out}`]);
      try {
        const url = await coordinatorUrl(coordinator, START_TIMEOUT_MS);
        const cycle = async () => {
          const peer = await TestPeer.open(url, 5_000);
          await peer.join(undefined, 5_000);
          peer.close();
          await peer.closedWithin(5_000);
        };
        for (let i = 0; i < 50; i++) await cycle();
        const before = await residentMb(coordinator.child.pid);
        for (let i = 0; i < 500; i++) await cycle();
        // The last departures are still being logged and written into config.json: let them settle.
        await new Promise((r) => setTimeout(r, 500));
        const after = await residentMb(coordinator.child.pid);
        const config = JSON.parse(await Deno.readTextFile(`${out}/config.json`));
        console.log(
          `RSS after 50 cycles ${before.toFixed(1)} MB, after 500 more ${after.toFixed(1)} MB; ` +
            `config.json remembers ${config.workers.length} workers`,
        );
        assert(after - before < 20, `RSS grew by ${(after - before).toFixed(1)} MB`);
        assert(config.workers.length <= 65, `${config.workers.length} workers remembered`);
      } finally {
        await cleanup(coordinator);
      }
    }),
});
