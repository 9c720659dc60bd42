/**
 * --balance shards each batch in proportion to each worker's measured speed, and the update stays that of
 * the global batch (shard sums / global count). Two workers of very different speeds (wasm and the plain
 * cpu backend) with --balance must end with the weights of one worker alone, up to float rounding; the bound
 * is the exactness test's (1% of the most Adam can move a weight).
 */
import { readSavedWeights } from "../coordinator/checkpoint.ts";
import { assert, compareArrays } from "../shared/testing.ts";
import {
  cleanup,
  coordinatorUrl,
  expectExitZero,
  latestCheckpoint,
  readMetrics,
  startCoordinator,
  startTrain,
  startWorker,
} from "./processes.ts";

const RUN_TIMEOUT_MS = 180_000;
const LR = 2e-4;
const STEPS = 6;
const BOUND = 0.01 * LR * STEPS;
const RUN = [
  "--model=mlp",
  "--seed=7",
  `--max-steps=${STEPS}`,
  "--batch-size=64",
  "--examples=1280",
  `--lr=${LR}`,
  "--port=0",
  "--progress=none",
  "--dashboard=false",
];

async function weights(dir: string): Promise<{ g: Float32Array; d: Float32Array }> {
  const checkpoint = await latestCheckpoint(dir);
  return {
    g: await readSavedWeights(`${checkpoint}/generator`),
    d: await readSavedWeights(`${checkpoint}/discriminator`),
  };
}

Deno.test({
  name: "--balance with a fast and a slow worker gives uneven shards and the weights of one worker alone",
  sanitizeResources: false,
  async fn() {
    const alone = await Deno.makeTempDir({ prefix: "gantry-balance-1w-" });
    const balanced = await Deno.makeTempDir({ prefix: "gantry-balance-2w-" });
    try {
      await expectExitZero(
        startTrain([...RUN, "--workers=1", "--backend=wasm", `--out=${alone}`]),
        RUN_TIMEOUT_MS,
      );

      const coordinator = startCoordinator([...RUN, "--workers=2", "--balance", `--out=${balanced}`]);
      const url = await coordinatorUrl(coordinator, 60_000);
      const fast = startWorker("fast", [`--coordinator=${url}`, "--backend=wasm"]);
      const slow = startWorker("slow", [`--coordinator=${url}`, "--backend=cpu"]);
      try {
        await expectExitZero(coordinator, RUN_TIMEOUT_MS);
      } finally {
        await cleanup(fast, slow);
      }
      const metrics = await readMetrics(balanced);
      const shards = metrics.map((m) => (m.shards as unknown as number[]).join("/"));
      console.log(`G shards per step: ${shards.join(" ")}`);
      assert(metrics.every((m) => m.workers === 2), "every step used both workers");
      assert(
        metrics.some((m) => {
          const [a, b] = m.shards as unknown as number[];
          return a !== b;
        }),
        `uneven shards once speeds are known: ${shards.join(" ")}`,
      );

      const one = await weights(alone);
      const two = await weights(balanced);
      const g = compareArrays(one.g, two.g).worst;
      const d = compareArrays(one.d, two.d).worst;
      console.log(
        `max |w1 - w2 balanced|: G ${g.toExponential(2)}, D ${d.toExponential(2)} (bound ${BOUND})`,
      );
      assert(g <= BOUND, `generator weights differ by ${g} > ${BOUND}`);
      assert(d <= BOUND, `discriminator weights differ by ${d} > ${BOUND}`);
    } finally {
      for (const dir of [alone, balanced]) await Deno.remove(dir, { recursive: true });
    }
  },
});
