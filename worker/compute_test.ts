/**
 * The worker's compute path, driven with real task messages the way the coordinator sends them (weights
 * only when they change), without a network.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertThrows } from "../shared/testing.ts";
import { GantryError } from "../shared/errors.ts";
import { initialWeights, modelSpecs } from "../shared/models/specs.ts";
import { PROTOCOL_VERSION, type TaskMessage } from "../shared/protocol.ts";
import { Rng } from "../shared/rng.ts";
import { StepComputer } from "../shared/step.ts";
import { TaskRunner, toFloat16 } from "./compute.ts";

const SHARD = 8;

function task(
  step: number,
  phase: "D" | "G",
  rng: Rng,
  latent: number,
  versions: [number, number],
): TaskMessage {
  const t: TaskMessage = {
    type: "task",
    version: PROTOCOL_VERSION,
    step,
    phase,
    generatorVersion: versions[0],
    discriminatorVersion: versions[1],
    count: SHARD,
    z: rng.fillNormal(new Float32Array(SHARD * latent)),
    labels: rng.fillInts(new Uint8Array(SHARD), 10),
  };
  if (phase === "D") {
    t.real = Uint8Array.from({ length: SHARD * 784 }, () => rng.int(256));
    t.realLabels = rng.fillInts(new Uint8Array(SHARD), 10);
  }
  return t;
}

Deno.test("a worker's tf.memory().numTensors is the same after step 10 and step 50 (mlp)", async () => {
  await tf.setBackend("cpu");
  const specs = modelSpecs("mlp", 100);
  const rng = new Rng(1);
  const g = initialWeights(specs.generator, rng);
  const d = initialWeights(specs.discriminator, rng);
  const computer = new StepComputer(specs, 0);
  const runner = new TaskRunner(computer);
  let after10 = -1;
  for (let step = 1; step <= 50; step++) {
    // As the coordinator does: new D weights with the G phase, new G weights with the next D phase.
    const dTask = task(step, "D", rng, 100, [step - 1, step - 1]);
    dTask.generator = g.trainable;
    if (step === 1) dTask.discriminator = d.trainable;
    const dResult = runner.run(dTask);
    assertEquals(dResult.grads.length, specs.discriminator.trainableSize);
    const gTask = task(step, "G", rng, 100, [step - 1, step]);
    gTask.discriminator = d.trainable;
    const gResult = runner.run(gTask);
    assert(Number.isFinite(gResult.lossSum), `finite G loss at step ${step}`);
    if (step === 10) after10 = tf.memory().numTensors;
  }
  assertEquals(tf.memory().numTensors, after10, "no tensor leaked between step 10 and step 50");
  computer.dispose();
});

Deno.test("TaskRunner refuses a task whose weights it does not hold", async () => {
  await tf.setBackend("cpu");
  const specs = modelSpecs("mlp", 100);
  const computer = new StepComputer(specs, 0);
  const runner = new TaskRunner(computer);
  const error = assertThrows(
    () => runner.run(task(1, "G", new Rng(2), 100, [0, 0])),
    GantryError,
    "holds G-1/D-1",
  );
  assertEquals(error.code, "E_PROTOCOL");
  computer.dispose();
});

Deno.test("toFloat16() scales gradients into float16's range; times gradScale they come back within float16 precision", () => {
  for (const magnitude of [1e-6, 1, 3e5]) {
    const grads = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i + 1) * magnitude);
    const { values, scale } = toFloat16(grads);
    let worst = 0;
    for (let i = 0; i < grads.length; i++) {
      assert(Number.isFinite(values[i]), `finite at ${magnitude}`);
      worst = Math.max(worst, Math.abs(values[i] * scale - grads[i]) / magnitude);
    }
    assert(worst < 1e-3, `relative error ${worst} at magnitude ${magnitude}`);
  }
  assertEquals(toFloat16(new Float32Array(3)).scale, 1, "all zeros: no scaling");
});

Deno.test("a simulated TaskRunner answers gradient-sized zeros after its step time, without a model", () => {
  const specs = modelSpecs("cdcgan", 100);
  const runner = new TaskRunner(null, { simulated: { stepMs: 20, specs }, wire: "float16" });
  runner.weights({ type: "weights", version: 1, net: "G", weightsVersion: 0, values: new Float16Array(1) });
  runner.weights({ type: "weights", version: 1, net: "D", weightsVersion: 0, values: new Float32Array(1) });
  const started = performance.now();
  const result = runner.run(task(1, "G", new Rng(3), 100, [0, 0]));
  assert(performance.now() - started >= 9, "half of the 20 ms step per phase");
  assertEquals(result.grads.length, specs.generator.trainableSize);
  assertEquals(result.grads instanceof Float16Array, true, "float16 on the wire");
  assertEquals(result.batchNormSums?.length, specs.generator.stateSize);
});
