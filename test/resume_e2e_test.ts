/**
 * Stopping and resuming: a resumed run computes the weights of an uninterrupted one, its metrics hold every
 * step exactly once, and a coordinator killed with SIGKILL at any moment (also while it writes a checkpoint)
 * leaves a checkpoint to resume from.
 */
import { readSavedWeights } from "../coordinator/checkpoint.ts";
import { assert, assertEquals, compareArrays } from "../shared/testing.ts";
import { TEST_BACKEND } from "./backend.ts";
import {
  assertEachStepOnce,
  cleanup,
  coordinatorUrl,
  expectExitZero,
  latestCheckpoint,
  metricLines,
  type Proc,
  readMetrics,
  signalGroup,
  startCoordinator,
  startTrain,
  startWorker,
  waitForSteps,
} from "./processes.ts";

const RUN_TIMEOUT_MS = 180_000;
const START_TIMEOUT_MS = 60_000;
const LR = 2e-4;
/** 256 examples at batch 32: 8 steps an epoch. */
const RUN = ["--model=mlp", "--seed=3", "--examples=256", "--batch-size=32", `--lr=${LR}`, "--progress=none"];
const STEPS_PER_EPOCH = 8;

/** `deno task train` of RUN with one worker into `out`. */
function trainArgs(out: string, extra: string[]): string[] {
  return [...RUN, "--workers=1", "--port=0", `--backend=${TEST_BACKEND}`, `--out=${out}`, ...extra];
}

async function train(out: string, extra: string[]): Promise<void> {
  await expectExitZero(startTrain(trainArgs(out, extra)), RUN_TIMEOUT_MS);
}

async function finalWeights(runDir: string): Promise<Float32Array[]> {
  const checkpoint = await latestCheckpoint(runDir);
  return [
    await readSavedWeights(`${checkpoint}/generator`),
    await readSavedWeights(`${checkpoint}/discriminator`),
  ];
}

function assertSameWeights(a: Float32Array[], b: Float32Array[], steps: number): void {
  const bound = 0.01 * LR * steps;
  for (let net = 0; net < a.length; net++) {
    const { worst, differing } = compareArrays(a[net], b[net]);
    console.log(
      `${net === 0 ? "G" : "D"}: ${differing} of ${a[net].length} weights differ, by at most ${worst}`,
    );
    assert(worst <= bound, `net ${net}: weights differ by ${worst} > ${bound}`);
  }
}

Deno.test({
  name:
    "a 2-epoch run resumed to 3 epochs ends with the weights of a 3-epoch run, each step once in its metrics",
  sanitizeResources: false,
  async fn() {
    const whole = await Deno.makeTempDir({ prefix: "gantry-whole-" });
    const resumed = await Deno.makeTempDir({ prefix: "gantry-resumed-" });
    try {
      await train(whole, ["--epochs=3"]);
      await train(resumed, ["--epochs=2"]);
      await train(resumed, [`--resume=${resumed}`, "--epochs=3"]);
      await assertEachStepOnce(resumed, 3 * STEPS_PER_EPOCH);
      assertSameWeights(await finalWeights(whole), await finalWeights(resumed), 3 * STEPS_PER_EPOCH);
      for (let e = 1; e <= 3; e++) await Deno.stat(`${resumed}/samples/epoch-000${e}.png`);
    } finally {
      await Deno.remove(whole, { recursive: true });
      await Deno.remove(resumed, { recursive: true });
    }
  },
});

Deno.test({
  name: "--resume refuses to change what the run computes, naming the option and both values",
  sanitizeResources: false,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "gantry-fixed-" });
    try {
      await train(out, ["--epochs=1"]);
      const p = startCoordinator([`--resume=${out}`, "--batch-size=16", "--port=0"]);
      try {
        assertEquals(await p.exit(START_TIMEOUT_MS), 2, p.output());
        assert(p.output().includes("--batch-size cannot change on --resume"), p.output());
        assert(p.output().includes("has 32, current value is 16"), p.output());
      } finally {
        await cleanup(p);
      }
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

/** A coordinator and one worker on `out`, resuming when `resume` is set. */
async function startPair(out: string, extra: string[]): Promise<Proc[]> {
  const coordinator = startCoordinator([...RUN, "--workers=1", "--port=0", `--out=${out}`, ...extra]);
  const url = await coordinatorUrl(coordinator, START_TIMEOUT_MS);
  const worker = startWorker("worker", [`--coordinator=${url}`, `--backend=${TEST_BACKEND}`]);
  return [coordinator, worker];
}

async function hasPartialCheckpoint(runDir: string): Promise<boolean> {
  try {
    for await (const e of Deno.readDir(`${runDir}/checkpoints`)) if (e.name.endsWith(".partial")) return true;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error; // not created yet
  }
  return false;
}

Deno.test({
  name:
    "a coordinator killed with SIGKILL at several points, also mid-checkpoint, resumes to the same weights",
  sanitizeResources: false,
  async fn() {
    const whole = await Deno.makeTempDir({ prefix: "gantry-nokill-" });
    const killed = await Deno.makeTempDir({ prefix: "gantry-killed-" });
    const epochs = ["--epochs=3", "--checkpoint-every=1"];
    const total = 3 * STEPS_PER_EPOCH;
    let procs: Proc[] = [];
    try {
      await train(whole, epochs);
      let kills = 0;
      let midWrite = 0;
      procs = await startPair(killed, epochs);
      // A kill that waits for a checkpoint's folder aside lands while it is being written; the others come at
      // growing step counts, wherever the coordinator is then.
      const killAt = async (ready: () => Promise<boolean>) => {
        const deadline = Date.now() + RUN_TIMEOUT_MS;
        while (!(await ready()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
        procs[0].kill("SIGKILL");
        await cleanup(...procs);
        kills++;
        if (await hasPartialCheckpoint(killed)) midWrite++;
        procs = await startPair(killed, [`--resume=${killed}`, ...epochs]);
      };
      // The first kill may land in the step-0 checkpoint (the run then starts over); the second lands in a
      // later one, with whole checkpoints before it.
      await killAt(() => hasPartialCheckpoint(killed));
      await killAt(async () => (await metricLines(killed)) >= 4 && await hasPartialCheckpoint(killed));
      for (const step of [12, 18]) await killAt(async () => (await metricLines(killed)) >= step);
      assertEquals(await procs[0].exit(RUN_TIMEOUT_MS), 0, procs[0].output());
      console.log(`killed ${kills} times, ${midWrite} of them while a checkpoint was being written`);
      assertEquals(kills, 4);
      assert(midWrite >= 2, `only ${midWrite} of ${kills} kills landed while a checkpoint was being written`);
      await assertEachStepOnce(killed, total);
      assertSameWeights(await finalWeights(whole), await finalWeights(killed), total);
    } finally {
      await cleanup(...procs);
      await Deno.remove(whole, { recursive: true });
      await Deno.remove(killed, { recursive: true });
    }
  },
});

Deno.test({
  name: "Ctrl-C on deno task train in a terminal (SIGINT to the whole process group) checkpoints the step " +
    "reached, prints how to resume, and exits 130",
  sanitizeResources: false,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "gantry-ctrlc-" });
    const epochs = 6;
    const p = startTrain(trainArgs(out, [`--epochs=${epochs}`]), true);
    try {
      await waitForSteps(out, 3, RUN_TIMEOUT_MS);
      signalGroup(p, "SIGINT");
      assertEquals(await p.exit(RUN_TIMEOUT_MS), 130, p.output());
      assert(p.output().includes(`continue with deno task train --resume ${out}`), p.output());
      const stoppedAt = (await readMetrics(out)).length;
      assert(stoppedAt < epochs * STEPS_PER_EPOCH, `stopped early, at step ${stoppedAt}`);
      assert((await latestCheckpoint(out)).endsWith(`step-${String(stoppedAt).padStart(8, "0")}`));
      await train(out, [`--resume=${out}`]);
      await assertEachStepOnce(out, epochs * STEPS_PER_EPOCH);
    } finally {
      await cleanup(p);
      await Deno.remove(out, { recursive: true });
    }
  },
});
