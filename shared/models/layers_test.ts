import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import { Rng } from "../rng.ts";
import { assertClose, assertEquals, assertThrows } from "../testing.ts";
import { buildDiscriminator, buildGenerator, getLayersWeights, setLayersWeights } from "./layers.ts";
import { initialWeights, MODEL_NAMES, modelSpecs, NUM_CLASSES } from "./specs.ts";

await tf.setBackend("cpu");

const LATENT_DIM = 100;

/** Saves a Layers model to memory (what a checkpoint writes) and loads it back (what a browser does). */
async function saveAndLoad(model: tfl.LayersModel): Promise<{ loaded: tfl.LayersModel; names: string[] }> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler((a) => {
    artifacts = a;
    return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } });
  }));
  const names = artifacts!.weightSpecs!.map((s) => s.name);
  return { loaded: await tfl.loadLayersModel(tf.io.fromMemory(artifacts!)), names };
}

for (const model of MODEL_NAMES) {
  Deno.test(`the ${model} Layers models save and load with the spec's weight names and the same outputs`, async () => {
    const specs = modelSpecs(model, LATENT_DIM);
    // Built twice, as in a process that saves several checkpoints: the second build's variables get unique
    // suffixes, which must not reach the saved names.
    buildGenerator(model, LATENT_DIM).dispose();
    const generator = buildGenerator(model, LATENT_DIM);
    const discriminator = buildDiscriminator(model);
    const rng = new Rng(1);
    setLayersWeights(generator, specs.generator, initialWeights(specs.generator, rng));
    setLayersWeights(discriminator, specs.discriminator, initialWeights(specs.discriminator, rng));
    const n = 3;
    const z = tf.tensor2d(rng.fillNormal(new Float32Array(n * LATENT_DIM)), [n, LATENT_DIM]);
    const labels = tf.tensor2d([[0], [4], [9]]);
    for (
      const [net, layers, inputs] of [
        [specs.generator, generator, () => [z, labels]],
        [specs.discriminator, discriminator, () => [generator.predict([z, labels]) as tf.Tensor, labels]],
      ] as const
    ) {
      const { loaded, names } = await saveAndLoad(layers);
      assertEquals(names, net.params.map((p) => p.name));
      tf.tidy(() => {
        const expected = (layers.predict(inputs()) as tf.Tensor).dataSync();
        assertClose((loaded.predict(inputs()) as tf.Tensor).dataSync(), expected, 0, layers.name);
      });
      loaded.dispose();
    }
    tf.dispose([z, labels]);
    generator.dispose();
    discriminator.dispose();
  });
}

Deno.test("getLayersWeights() returns what setLayersWeights() set (cdcgan generator, with BatchNorm state)", () => {
  const net = modelSpecs("cdcgan", LATENT_DIM).generator;
  const rng = new Rng(2);
  const weights = initialWeights(net, rng);
  rng.fillUniform(weights.state, 0.5, 1.5);
  const generator = buildGenerator("cdcgan", LATENT_DIM);
  setLayersWeights(generator, net, weights);
  const back = getLayersWeights(generator, net);
  assertEquals(back.trainable, weights.trainable);
  assertEquals(back.state, weights.state);
  weights.trainable.fill(0); // the model holds copies
  assertEquals(getLayersWeights(generator, net).state, back.state);
  assertEquals(getLayersWeights(generator, net).trainable, back.trainable);
  generator.dispose();
});

Deno.test("setLayersWeights() rejects vectors of the wrong size and a model of another spec", () => {
  const specs = modelSpecs("mlp", LATENT_DIM);
  const generator = buildGenerator("mlp", LATENT_DIM);
  const w = initialWeights(specs.generator, new Rng(3));
  assertThrows(
    () => setLayersWeights(generator, specs.generator, { trainable: w.trainable.slice(1), state: w.state }),
    RangeError,
    "current lengths are 1499651 and 0",
  );
  assertThrows(() => setLayersWeights(generator, specs.discriminator, w), Error, "has 9 weights, the spec 7");
  const other = modelSpecs("mlp", LATENT_DIM + 1).generator;
  assertThrows(
    () => setLayersWeights(generator, other, initialWeights(other, new Rng(3))),
    Error,
    "weight 1",
  );
  generator.dispose();
});

Deno.test("the generator takes int32 or float32 labels alike", () => {
  const generator = buildGenerator("mlp", LATENT_DIM);
  tf.tidy(() => {
    const z = tf.zeros([NUM_CLASSES, LATENT_DIM]);
    const labels = Array.from({ length: NUM_CLASSES }, (_, i) => [i]);
    const asInt = (generator.predict([z, tf.tensor2d(labels, undefined, "int32")]) as tf.Tensor).dataSync();
    const asFloat = (generator.predict([z, tf.tensor2d(labels, undefined, "float32")]) as tf.Tensor)
      .dataSync();
    assertEquals(asFloat, asInt);
  });
  generator.dispose();
});
