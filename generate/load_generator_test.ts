import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import { join } from "node:path";
import { GantryError } from "../shared/errors.ts";
import { buildGenerator, setLayersWeights } from "../shared/models/layers.ts";
import { modelSpecs } from "../shared/models/specs.ts";
import type { ModelName } from "../shared/models/types.ts";
import { assert, assertClose, assertEquals, assertRejects } from "../shared/testing.ts";
import { fileLoadHandler } from "./file_handler.ts";
import { loadGenerator, resolveCheckpointDir } from "./load_generator.ts";
import { drawNoise, generateGrid } from "./sample.ts";
import { writeTestCheckpoint } from "./test_checkpoint.ts";

tf.env().set("PROD", true);
await tf.setBackend("cpu");

/** The loaded model runs the same kernels on the same weights as the one that was saved. */
const SAME_MODEL_TOLERANCE = 0;
const NOISE_SEED = 5;

/** A run folder with checkpoints at steps 1 and 2 (the latest), of different weights. */
async function runWithTwoCheckpoints(model: ModelName, latentDim: number) {
  const runDir = await Deno.makeTempDir({ prefix: "gantry-generate-" });
  const first = await writeTestCheckpoint(runDir, { model, latentDim, step: 1, weightsSeed: 1 });
  const second = await writeTestCheckpoint(runDir, { model, latentDim, step: 2, weightsSeed: 2 });
  return { runDir, first, second };
}

Deno.test("loadGenerator() loads the latest checkpoint's generator, or the one --step names", async () => {
  const model: ModelName = "cdcgan";
  const latentDim = 16;
  const { runDir, first, second } = await runWithTwoCheckpoints(model, latentDim);
  const specs = modelSpecs(model, latentDim);
  const labels = [3, 7];
  const noise = drawNoise(NOISE_SEED, 2, latentDim);
  try {
    for (const [step, saved] of [[undefined, second], [1, first]] as const) {
      const before = tf.memory().numTensors;
      const loaded = await loadGenerator(runDir, step);
      assertEquals(loaded.checkpointDir, saved.dir);
      assertEquals(loaded.latentDim, latentDim);
      const images = generateGrid(loaded.model, labels, noise, latentDim);
      loaded.model.dispose();
      assertEquals(tf.memory().numTensors, before, "loading and sampling leave no tensor behind");

      const reference = buildGenerator(model, latentDim);
      setLayersWeights(reference, specs.generator, saved.generator);
      assertClose(
        images,
        generateGrid(reference, labels, noise, latentDim),
        SAME_MODEL_TOLERANCE,
        `step ${step}`,
      );
      reference.dispose();
    }
  } finally {
    await Deno.remove(runDir, { recursive: true });
  }
});

Deno.test("generateGrid() gives row r label r and column c noise vector c", async () => {
  const latentDim = 100;
  const runDir = await Deno.makeTempDir({ prefix: "gantry-generate-" });
  try {
    await writeTestCheckpoint(runDir, { model: "mlp", latentDim, step: 1, weightsSeed: 3 });
    const { model } = await loadGenerator(runDir);
    const labels = [4, 9, 4];
    const count = 3;
    const noise = drawNoise(NOISE_SEED, count, latentDim);
    const grid = generateGrid(model, labels, noise, latentDim);
    const cell = (images: Float32Array, i: number) => images.subarray(i * 784, (i + 1) * 784);
    for (let r = 0; r < labels.length; r++) {
      for (let c = 0; c < count; c++) {
        const single = generateGrid(
          model,
          [labels[r]],
          noise.subarray(c * latentDim, (c + 1) * latentDim),
          latentDim,
        );
        assertClose(cell(grid, r * count + c), single, 1e-6, `row ${r} column ${c}`);
      }
    }
    assertClose(cell(grid, 0), cell(grid, 2 * count), 0, "the same label and noise draw the same image");
    const differs = (a: Float32Array, b: Float32Array) => a.some((v, i) => v !== b[i]);
    assert(differs(cell(grid, 0), cell(grid, count)), "another label draws another image");
    assert(differs(cell(grid, 0), cell(grid, 1)), "another noise vector draws another image");
    model.dispose();
  } finally {
    await Deno.remove(runDir, { recursive: true });
  }
});

Deno.test("resolveCheckpointDir() names --checkpoint or --step, and the steps there are, when nothing is there", async () => {
  const runDir = await Deno.makeTempDir({ prefix: "gantry-generate-" });
  try {
    const missing = join(runDir, "nope");
    const noRun = await assertRejects(() => resolveCheckpointDir(missing), GantryError, "--checkpoint");
    assert(noRun.message.includes(JSON.stringify(missing)), noRun.message);
    assertEquals(noRun.code, "E_CONFIG");
    await assertRejects(() => resolveCheckpointDir(runDir), GantryError, "with no checkpoint yet");
    await Deno.mkdir(join(runDir, "checkpoints"));
    await assertRejects(() => resolveCheckpointDir(runDir, 1), GantryError, "with no checkpoint yet");
    await writeTestCheckpoint(runDir, { model: "mlp", latentDim: 100, step: 40, weightsSeed: 1 });
    const noStep = await assertRejects(() => resolveCheckpointDir(runDir, 7), GantryError, "--step");
    assert(
      noStep.message.includes("step-00000007") && noStep.message.includes("steps there: 40"),
      noStep.message,
    );
    assertEquals(noStep.code, "E_CONFIG");
    assertEquals(await resolveCheckpointDir(runDir, 40), join(runDir, "checkpoints", "step-00000040"));
  } finally {
    await Deno.remove(runDir, { recursive: true });
  }
});

Deno.test("loadGenerator() reports a checkpoint with missing or foreign files as E_CHECKPOINT", async () => {
  const runDir = await Deno.makeTempDir({ prefix: "gantry-generate-" });
  try {
    const { dir } = await writeTestCheckpoint(runDir, {
      model: "mlp",
      latentDim: 100,
      step: 1,
      weightsSeed: 1,
    });
    await Deno.remove(join(dir, "generator", "weights.bin"));
    const noWeights = await assertRejects(() => loadGenerator(runDir), GantryError, "weights.bin");
    assertEquals(noWeights.code, "E_CHECKPOINT");
    // A discriminator is a Layers model too, but not one that draws digits.
    await Deno.remove(join(dir, "generator"), { recursive: true });
    await Deno.rename(join(dir, "discriminator"), join(dir, "generator"));
    await assertRejects(() => loadGenerator(runDir), GantryError, "not a gantry generator");
    await Deno.writeTextFile(join(runDir, "checkpoints", "latest.json"), "{}");
    await assertRejects(() => loadGenerator(runDir), GantryError, "latest.json");
  } finally {
    await Deno.remove(runDir, { recursive: true });
  }
});

Deno.test("fileLoadHandler() refuses weight files outside the model's folder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gantry-generate-" });
  try {
    const modelJson = join(dir, "model.json");
    const manifest = [{ paths: ["../secret.bin"], weights: [] }];
    await Deno.writeTextFile(modelJson, JSON.stringify({ modelTopology: {}, weightsManifest: manifest }));
    await assertRejects(() => fileLoadHandler(modelJson).load!(), GantryError, "outside its folder");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
