/**
 * The leak check of StepComputer that the step_memory_*_test.ts files run, one model per file so that each
 * stays within ~30 s on the cpu backend. Leaks do not depend on the batch size, so the tests use tiny ones.
 */
import * as tf from "@tensorflow/tfjs-core";
import { trainingParts } from "./models/forward.ts";
import { IMAGE_PIXELS, initialWeights, modelSpecs, NUM_CLASSES } from "./models/specs.ts";
import type { ModelName } from "./models/types.ts";
import { Rng } from "./rng.ts";
import { StepComputer } from "./step.ts";
import { readsAreCopies } from "./backends/read_copy.ts";
import { assert, assertEquals } from "./testing.ts";

const LATENT_DIM = 100;
export const LEAK_CHECK_STEPS = 50;
const CHECKPOINT_STEP = 10;

/**
 * Runs LEAK_CHECK_STEPS training steps as a worker sees them and asserts that tf.memory() is the same after
 * step 10 and after the last step, that only the weight tensors outlive a step, and that dispose() frees them.
 * On backends whose tensors live outside JS (readsAreCopies: tensorflow, wasm), it also asserts that no step
 * after the 10th leaves weight- or gradient-sized garbage in JS memory: V8 counts such arrays toward its
 * external-memory limit and collects every few steps on the worker's one core.
 */
export function checkStepLeaks(model: ModelName, batch: number): void {
  const before = tf.memory().numTensors;
  const specs = modelSpecs(model, LATENT_DIM);
  const rng = new Rng(1);
  const g = initialWeights(specs.generator, rng);
  const d = initialWeights(specs.discriminator, rng);
  const computer = new StepComputer(specs, 0.1);
  const labels = () => rng.fillInts(new Uint8Array(batch), NUM_CLASSES);
  const noise = () => rng.fillNormal(new Float32Array(batch * LATENT_DIM));
  let atCheckpoint: tf.MemoryInfo | undefined;
  let largestGarbage = 0;
  // Where the gradients go, kept from step to step, as a worker's shared memory is.
  const gradsD = new Float32Array(specs.discriminator.trainableSize);
  const gradsG = new Float32Array(specs.generator.trainableSize);
  computer.setGeneratorWeights(g.trainable);
  for (let step = 1; step <= LEAK_CHECK_STEPS; step++) {
    const externalBefore = Deno.memoryUsage().external;
    // New D weights, D phase, G phase through the new D, new G weights; a sample grid now and then.
    computer.setDiscriminatorWeights(d.trainable);
    const real = new Uint8Array(batch * IMAGE_PIXELS).map(() => rng.int(256));
    computer.discriminatorPhase({
      count: batch,
      real,
      realLabels: labels(),
      z: noise(),
      fakeLabels: labels(),
    }, gradsD);
    computer.generatorPhase({ count: batch, z: noise(), labels: labels() }, gradsG);
    computer.setGeneratorWeights(g.trainable);
    if (step % CHECKPOINT_STEP === 0) computer.generateImages(noise(), labels(), g.state);
    if (step === CHECKPOINT_STEP) atCheckpoint = tf.memory();
    if (step > CHECKPOINT_STEP) {
      largestGarbage = Math.max(largestGarbage, Deno.memoryUsage().external - externalBefore);
    }
  }
  const atEnd = tf.memory();
  assertEquals(atEnd.numTensors, atCheckpoint!.numTensors, "tensors after step 10 and after the last step");
  assertEquals(atEnd.numBytes, atCheckpoint!.numBytes, "bytes after step 10 and after the last step");
  // The weight tensors: one per trainable param, split kernels as their row blocks (trainingParts).
  const trainableTensors = trainingParts(specs, "generator").length +
    trainingParts(specs, "discriminator").length;
  assertEquals(atEnd.numTensors - before, trainableTensors, "tensors held between steps: the weights");
  computer.dispose();
  assertEquals(tf.memory().numTensors, before, "tensors after dispose()");
  if (readsAreCopies()) {
    // Fresh copies for each weight install and gradient read would leave 2 x (G + D) x 4 bytes a step. What is
    // left is smaller: inputs, losses, BatchNorm sums, and on tensorflow the read-backs of D's kernels for its
    // input gradient (about 1.2 MB for cdcgan), which are not released because they may be the tensor's own.
    const weightBytes = (specs.generator.trainableSize + specs.discriminator.trainableSize) * 4;
    assert(
      largestGarbage < weightBytes / 2,
      `a step left ${largestGarbage} bytes in JS memory (at most ${weightBytes / 2} expected)`,
    );
  }
}
