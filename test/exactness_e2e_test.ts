/**
 * Synchronous data parallelism computes the update of one process with the whole global batch: with the
 * same seed, 1 and 2 workers must end with the same weights up to float rounding. The bound is 1% of the
 * most Adam can move a weight (lr x steps). The control run changes only the math of the step (label
 * smoothing 0.1, same seed and so the same start) and must be told apart by the same measure.
 */
import { readSavedWeights } from "../coordinator/checkpoint.ts";
import { assert, assertEquals, compareArrays } from "../shared/testing.ts";
import { TRAINING_BACKENDS } from "./backend.ts";
import { expectExitZero, latestCheckpoint, readMetrics, startTrain } from "./processes.ts";

const RUN_TIMEOUT_MS = 180_000;
const LR = 2e-4;
const STEPS = 6;
const BOUND = 0.01 * LR * STEPS;

async function trainWeights(
  backend: string,
  workers: number,
  extra: string[] = [],
): Promise<{ g: Float32Array; d: Float32Array; dir: string }> {
  const out = await Deno.makeTempDir({ prefix: `gantry-exact-${workers}w-` });
  const train = startTrain([
    "--model=mlp",
    "--seed=7",
    `--max-steps=${STEPS}`,
    `--workers=${workers}`,
    "--batch-size=64",
    "--examples=1280",
    `--lr=${LR}`,
    "--port=0",
    `--backend=${backend}`,
    "--progress=none",
    `--out=${out}`,
    ...extra,
  ]);
  await expectExitZero(train, RUN_TIMEOUT_MS);
  const metrics = await readMetrics(out);
  assertEquals(metrics.length, STEPS);
  assert(metrics.every((m) => m.workers === workers), `every step used ${workers} worker(s)`);
  const checkpoint = await latestCheckpoint(out);
  return {
    g: await readSavedWeights(`${checkpoint}/generator`),
    d: await readSavedWeights(`${checkpoint}/discriminator`),
    dir: out,
  };
}

for (const backend of TRAINING_BACKENDS) {
  Deno.test({
    name:
      `--model mlp --seed 7 --max-steps ${STEPS} ends with the same weights on 1 and 2 workers (${backend.name})`,
    ignore: backend.ignore,
    sanitizeResources: false,
    async fn() {
      const one = await trainWeights(backend.name, 1);
      const two = await trainWeights(backend.name, 2);
      const control = await trainWeights(backend.name, 2, ["--label-smoothing=0.1"]);
      try {
        const g = compareArrays(one.g, two.g).worst;
        const d = compareArrays(one.d, two.d).worst;
        console.log(
          `max |w1 - w2|: G ${g.toExponential(2)} (${(100 * g / (LR * STEPS)).toFixed(3)}% of lr x steps), ` +
            `D ${d.toExponential(2)} (${(100 * d / (LR * STEPS)).toFixed(3)}%)`,
        );
        assert(g <= BOUND, `generator weights differ by ${g} > ${BOUND}`);
        assert(d <= BOUND, `discriminator weights differ by ${d} > ${BOUND}`);
        // Without the control, a comparison that cannot see a change in the math would pass as well.
        const gControl = compareArrays(one.g, control.g).worst;
        const dControl = compareArrays(one.d, control.d).worst;
        console.log(
          `control (label smoothing 0.1): G ${gControl.toExponential(2)}, D ${dControl.toExponential(2)}`,
        );
        assert(dControl > 10 * BOUND, `the control's D differs by only ${dControl}`);
      } finally {
        for (const r of [one, two, control]) await Deno.remove(r.dir, { recursive: true });
      }
    },
  });
}
