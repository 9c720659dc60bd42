import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import { Rng } from "../rng.ts";
import { assertClose, assertEquals, assertThrows } from "../testing.ts";
import { discriminatorForward, generatorForward, oneHotLabels, trainingParts } from "./forward.ts";
import { buildDiscriminator, buildGenerator, setLayersWeights } from "./layers.ts";
import {
  CDCGAN_G_LAYERS,
  IMAGE_SIDE,
  initialWeights,
  MODEL_NAMES,
  modelSpecs,
  NUM_CLASSES,
  trainableParams,
  weightKind,
} from "./specs.ts";
import type { NetSpec, NetWeights } from "./types.ts";

await tf.setBackend("cpu");

const LATENT_DIM = 100;
const BATCH = 5;
/** Float32 sums over up to ~6000 terms in a different order: agreement to ~1e-6 relative, 1e-5 is safe. */
const TOLERANCE = 1e-5;

/**
 * Keras's initial weights with every weight moved off its initial value (biases and BatchNorm parameters
 * start at constants that would hide a missing or misplaced term), deterministic from the seed.
 */
function perturbedWeights(net: NetSpec, seed: number): NetWeights {
  const rng = new Rng(seed);
  const w = initialWeights(net, rng);
  for (const p of net.params) {
    const values = (p.kind === "trainable" ? w.trainable : w.state).subarray(p.offset, p.offset + p.size);
    const kind = weightKind(p.name);
    for (let i = 0; i < values.length; i++) {
      if (kind === "gamma" || kind === "moving_variance") values[i] = 0.5 + rng.uniform();
      else if (kind === "kernel") values[i] *= 0.5 + rng.uniform();
      else values[i] += 0.2 * (rng.uniform() - 0.5);
    }
  }
  return w;
}

function paramTensors(net: NetSpec, w: NetWeights): tf.Tensor[] {
  return trainableParams(net).map((p) => tf.tensor(w.trainable.slice(p.offset, p.offset + p.size), p.shape));
}

function stateTensors(net: NetSpec, w: NetWeights): tf.Tensor1D[] {
  return net.params.filter((p) => p.kind === "state").map((p) =>
    tf.tensor1d(w.state.slice(p.offset, p.offset + p.size))
  );
}

function labelsOf(rng: Rng, n: number): Uint8Array {
  return rng.fillInts(new Uint8Array(n), NUM_CLASSES);
}

/** The Layers models' label input: [n, 1], int32 as declared (float32 works too: Embedding casts). */
function layersLabels(labels: Uint8Array, dtype: "int32" | "float32" = "int32"): tf.Tensor2D {
  return tf.tensor2d(Array.from(labels), [labels.length, 1], dtype);
}

for (const model of MODEL_NAMES) {
  Deno.test(`generatorForward() in inference mode equals the Layers generator's predict (${model})`, () => {
    const specs = modelSpecs(model, LATENT_DIM);
    const w = perturbedWeights(specs.generator, 1);
    const layers = buildGenerator(model, LATENT_DIM);
    setLayersWeights(layers, specs.generator, w);
    const rng = new Rng(2);
    const z = rng.fillNormal(new Float32Array(BATCH * LATENT_DIM));
    const labels = labelsOf(rng, BATCH);
    tf.tidy(() => {
      const expected = layers.predict([
        tf.tensor2d(z, [BATCH, LATENT_DIM]),
        layersLabels(labels),
      ]) as tf.Tensor;
      const { images, batchStats } = generatorForward(
        specs,
        paramTensors(specs.generator, w),
        tf.tensor2d(z, [BATCH, LATENT_DIM]),
        oneHotLabels(labels),
        { training: false, state: stateTensors(specs.generator, w) },
      );
      assertEquals(images.shape, [BATCH, IMAGE_SIDE, IMAGE_SIDE, 1]);
      assertEquals(batchStats, []);
      assertClose(images.dataSync(), expected.dataSync(), TOLERANCE, "images");
    });
    layers.dispose();
  });

  Deno.test(`discriminatorForward() equals the Layers discriminator's predict (${model})`, () => {
    const specs = modelSpecs(model, LATENT_DIM);
    const w = perturbedWeights(specs.discriminator, 3);
    const layers = buildDiscriminator(model);
    setLayersWeights(layers, specs.discriminator, w);
    const rng = new Rng(4);
    const images = rng.fillUniform(new Float32Array(BATCH * IMAGE_SIDE * IMAGE_SIDE), -1, 1);
    const labels = labelsOf(rng, BATCH);
    const shape: [number, number, number, number] = [BATCH, IMAGE_SIDE, IMAGE_SIDE, 1];
    tf.tidy(() => {
      const expected = layers.predict([
        tf.tensor4d(images, shape),
        layersLabels(labels, "float32"),
      ]) as tf.Tensor;
      const logits = discriminatorForward(
        specs,
        paramTensors(specs.discriminator, w),
        tf.tensor4d(images, shape),
        oneHotLabels(labels),
      );
      assertEquals(logits.shape, [BATCH, 1]);
      assertClose(logits.dataSync(), expected.dataSync(), TOLERANCE, "logits");
    });
    layers.dispose();
  });
}

Deno.test("generatorForward() in training mode equals the Layers generator with training: true (cdcgan)", () => {
  const specs = modelSpecs("cdcgan", LATENT_DIM);
  const w = perturbedWeights(specs.generator, 5);
  const layers = buildGenerator("cdcgan", LATENT_DIM);
  setLayersWeights(layers, specs.generator, w);
  // The BatchNorm layers' inputs, to check the batch statistics against tf.moments of them.
  const normInputs = tfl.model({
    inputs: layers.inputs,
    outputs: [CDCGAN_G_LAYERS.dense, CDCGAN_G_LAYERS.deconv].map((name) =>
      layers.getLayer(name).output
    ) as tfl.SymbolicTensor[],
  });
  const rng = new Rng(6);
  const z = rng.fillNormal(new Float32Array(BATCH * LATENT_DIM));
  const labels = labelsOf(rng, BATCH);
  tf.tidy(() => {
    const inputs = [tf.tensor2d(z, [BATCH, LATENT_DIM]), layersLabels(labels)];
    const expected = layers.apply(inputs, { training: true }) as tf.Tensor;
    const expectedNormInputs = normInputs.apply(inputs, { training: true }) as tf.Tensor[];
    const { images, batchStats } = generatorForward(
      specs,
      paramTensors(specs.generator, w),
      tf.tensor2d(z, [BATCH, LATENT_DIM]),
      oneHotLabels(labels),
      { training: true },
    );
    assertClose(images.dataSync(), expected.dataSync(), TOLERANCE, "images");
    assertEquals(batchStats.length, 2);
    batchStats.forEach(({ mean, variance }, i) => {
      const x = expectedNormInputs[i];
      const moments = tf.moments(x, x.shape.slice(0, -1).map((_, axis) => axis));
      assertClose(mean.dataSync(), moments.mean.dataSync(), TOLERANCE, `mean ${i}`);
      const scale = Math.max(...moments.variance.dataSync());
      assertClose(variance.dataSync(), moments.variance.dataSync(), TOLERANCE * scale, `variance ${i}`);
    });
  });
  layers.dispose();
});

Deno.test("generatorForward() in inference mode needs two state tensors per BatchNorm layer", () => {
  const specs = modelSpecs("cdcgan", LATENT_DIM);
  const w = initialWeights(specs.generator, new Rng(1));
  tf.tidy(() => {
    const params = paramTensors(specs.generator, w);
    const state = stateTensors(specs.generator, w).slice(0, 2);
    assertThrows(
      () =>
        generatorForward(specs, params, tf.zeros([1, LATENT_DIM]), oneHotLabels([0]), {
          training: false,
          state,
        }),
      RangeError,
      "2 state tensors per BatchNorm layer",
    );
  });
});

Deno.test("generatorForward() rejects parameters that do not match the spec", () => {
  const specs = modelSpecs("mlp", LATENT_DIM);
  const w = initialWeights(specs.generator, new Rng(1));
  tf.tidy(() => {
    const params = paramTensors(specs.generator, w);
    const z = tf.zeros<tf.Rank.R2>([1, LATENT_DIM]);
    const mode = { training: true } as const;
    assertThrows(
      () => generatorForward(specs, params.slice(1), z, oneHotLabels([0]), mode),
      RangeError,
      "expected 9",
    );
    const reshaped = [tf.reshape(params[0], [50, 10]), ...params.slice(1)];
    assertThrows(
      () => generatorForward(specs, reshaped, z, oneHotLabels([0]), mode),
      RangeError,
      "g_embedding",
    );
  });
});

Deno.test("oneHotLabels() makes float32 one-hot rows and rejects labels outside 0..9", () => {
  tf.tidy(() => {
    const rows = oneHotLabels([0, 9, 3]);
    assertEquals(rows.dtype, "float32");
    assertEquals(rows.shape, [3, NUM_CLASSES]);
    assertEquals(Array.from(tf.argMax(rows, 1).dataSync()), [0, 9, 3]);
    assertEquals(tf.sum(rows).dataSync()[0], 3);
  });
  assertThrows(() => oneHotLabels([10]), RangeError, "value at 0 is 10");
  assertThrows(() => oneHotLabels([1, -1]), RangeError, "value at 1 is -1");
  assertThrows(() => oneHotLabels([0.5]), RangeError, "value at 0 is 0.5");
});

for (const model of MODEL_NAMES) {
  Deno.test(`trainingParts() tiles the trainable vector, and the forward passes take it like the whole weights (${model})`, () => {
    const specs = modelSpecs(model, LATENT_DIM);
    for (const net of ["generator", "discriminator"] as const) {
      const parts = trainingParts(specs, net);
      let offset = 0;
      for (const p of parts) {
        assertEquals(p.offset, offset, `${p.name} starts where the previous part ends`);
        assertEquals(p.size, p.shape.reduce((a, b) => a * b, 1), `${p.name} size`);
        offset += p.size;
      }
      assertEquals(offset, specs[net].trainableSize, `${net} parts cover the trainable vector`);
    }
    assertEquals(trainingParts(specs, "generator").length, trainableParams(specs.generator).length + 1);
    tf.tidy(() => {
      const rng = new Rng(3);
      const g = perturbedWeights(specs.generator, 1);
      const d = perturbedWeights(specs.discriminator, 2);
      const asParts = (net: "generator" | "discriminator", w: NetWeights) =>
        trainingParts(specs, net).map((p) =>
          tf.tensor(w.trainable.slice(p.offset, p.offset + p.size), p.shape)
        );
      const z = tf.tensor2d(rng.fillNormal(new Float32Array(BATCH * LATENT_DIM)), [BATCH, LATENT_DIM]);
      const labels = oneHotLabels(labelsOf(rng, BATCH));
      const mode = { training: true } as const;
      const images = generatorForward(specs, paramTensors(specs.generator, g), z, labels, mode).images;
      const fromParts = generatorForward(specs, asParts("generator", g), z, labels, mode).images;
      assertClose(fromParts.dataSync(), images.dataSync(), TOLERANCE, "generator");
      const logits = discriminatorForward(specs, paramTensors(specs.discriminator, d), images, labels);
      const logitsFromParts = discriminatorForward(specs, asParts("discriminator", d), images, labels);
      assertClose(logitsFromParts.dataSync(), logits.dataSync(), TOLERANCE, "discriminator");
    });
  });
}
