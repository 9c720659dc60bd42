import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import { buildDiscriminator, buildGenerator, setLayersWeights } from "./models/layers.ts";
import {
  CDCGAN_G_LAYERS,
  IMAGE_PIXELS,
  IMAGE_SIDE,
  initialWeights,
  MODEL_NAMES,
  modelSpecs,
  NUM_CLASSES,
  PIXEL_HALF_RANGE,
  trainableParams,
} from "./models/specs.ts";
import type {
  DiscriminatorShard,
  GeneratorShard,
  ModelName,
  ModelSpecs,
  NetWeights,
} from "./models/types.ts";
import { Rng } from "./rng.ts";
import { StepComputer } from "./step.ts";
import { assert, assertClose, assertEquals, assertThrows } from "./testing.ts";

await tf.setBackend("cpu");

const LATENT_DIM = 100;
const LN2 = Math.log(2);
/** Gradient sums computed two ways agree to float32 rounding: relative to the largest component. */
const GRAD_TOLERANCE = 1e-4;

interface Setup {
  specs: ModelSpecs;
  g: NetWeights;
  d: NetWeights;
  computer: StepComputer;
}

function setup(model: ModelName, labelSmoothing = 0, seed = 1): Setup {
  const specs = modelSpecs(model, LATENT_DIM);
  const rng = new Rng(seed);
  const g = initialWeights(specs.generator, rng);
  const d = initialWeights(specs.discriminator, rng);
  const computer = new StepComputer(specs, labelSmoothing);
  computer.setGeneratorWeights(g.trainable);
  computer.setDiscriminatorWeights(d.trainable);
  return { specs, g, d, computer };
}

function discriminatorShard(count: number, seed: number): DiscriminatorShard {
  const rng = new Rng(seed);
  const real = new Uint8Array(count * IMAGE_PIXELS);
  for (let i = 0; i < real.length; i++) real[i] = rng.int(256);
  return {
    count,
    real,
    realLabels: rng.fillInts(new Uint8Array(count), NUM_CLASSES),
    z: rng.fillNormal(new Float32Array(count * LATENT_DIM)),
    fakeLabels: rng.fillInts(new Uint8Array(count), NUM_CLASSES),
  };
}

function generatorShard(count: number, seed: number): GeneratorShard {
  const rng = new Rng(seed);
  return {
    count,
    z: rng.fillNormal(new Float32Array(count * LATENT_DIM)),
    labels: rng.fillInts(new Uint8Array(count), NUM_CLASSES),
  };
}

/** Examples [from, to) of a shard, as the coordinator would send them to one worker. */
function sliceD(s: DiscriminatorShard, from: number, to: number): DiscriminatorShard {
  return {
    count: to - from,
    real: s.real.slice(from * IMAGE_PIXELS, to * IMAGE_PIXELS),
    realLabels: s.realLabels.slice(from, to),
    z: s.z.slice(from * LATENT_DIM, to * LATENT_DIM),
    fakeLabels: s.fakeLabels.slice(from, to),
  };
}

function sliceG(s: GeneratorShard, from: number, to: number): GeneratorShard {
  return {
    count: to - from,
    z: s.z.slice(from * LATENT_DIM, to * LATENT_DIM),
    labels: s.labels.slice(from, to),
  };
}

function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]));
  return m;
}

function add(a: Float32Array, b: Float32Array): Float32Array {
  return a.map((v, i) => v + b[i]);
}

function labelsColumn(labels: Uint8Array): tf.Tensor2D {
  return tf.tensor2d(Array.from(labels), [labels.length, 1]);
}

/** Σ BCE-with-logits against `targets`, by tfjs's own loss (a reference independent of step.ts). */
function referenceLoss(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return tf.losses.sigmoidCrossEntropy(targets, logits, undefined, 0, tf.Reduction.SUM) as tf.Scalar;
}

/** d loss / d (the Layers model's trainable weights), flattened in spec order. */
function layersGrads(model: tfl.LayersModel, loss: () => tf.Scalar): Float32Array {
  return tf.tidy(() => {
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { grads } = tf.variableGrads(loss, variables);
    return tf.concat(variables.map((v) => tf.reshape(grads[v.name], [-1]))).dataSync() as Float32Array;
  });
}

Deno.test("discriminatorPhase() equals autodiff through the Layers models: grads, loss, scores (mlp, smoothing 0.1)", () => {
  const smoothing = 0.1;
  const { specs, g, d, computer } = setup("mlp", smoothing);
  const n = 6;
  const shard = discriminatorShard(n, 2);
  const result = computer.discriminatorPhase(shard);

  const generator = buildGenerator("mlp", LATENT_DIM);
  const discriminator = buildDiscriminator("mlp");
  setLayersWeights(generator, specs.generator, g);
  setLayersWeights(discriminator, specs.discriminator, d);
  const real = tf.tensor4d(Float32Array.from(shard.real, (b) => b / PIXEL_HALF_RANGE - 1), [
    n,
    IMAGE_SIDE,
    IMAGE_SIDE,
    1,
  ]);
  const fake = generator.predict([
    tf.tensor2d(shard.z, [n, LATENT_DIM]),
    labelsColumn(shard.fakeLabels),
  ]) as tf.Tensor;
  const images = tf.concat([real, fake]);
  const labels = labelsColumn(Uint8Array.of(...shard.realLabels, ...shard.fakeLabels));
  const targets = tf.concat([tf.fill([n, 1], 1 - smoothing), tf.zeros([n, 1])]);
  const logits = (discriminator.predict([images, labels]) as tf.Tensor).dataSync();
  const expectedGrads = layersGrads(discriminator, () => {
    return referenceLoss(discriminator.apply([images, labels]) as tf.Tensor, targets);
  });
  const expectedLoss = referenceLoss(tf.tensor2d(logits, [2 * n, 1]), targets).dataSync()[0];
  const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
  const expectedReal = Array.from(logits.slice(0, n)).reduce((s, x) => s + sigmoid(x), 0);
  const expectedFake = Array.from(logits.slice(n)).reduce((s, x) => s + sigmoid(x), 0);

  assertEquals(result.grads.length, specs.discriminator.trainableSize);
  assertClose(result.grads, expectedGrads, GRAD_TOLERANCE * maxAbs(expectedGrads), "D grads");
  assertClose([result.lossSum, result.realScoreSum, result.fakeScoreSum], [
    expectedLoss,
    expectedReal,
    expectedFake,
  ], 1e-4);
  assertEquals(result.batchNormSums, undefined);
  tf.dispose([real, fake, images, labels, targets]);
  generator.dispose();
  discriminator.dispose();
  computer.dispose();
});

Deno.test("generatorPhase() equals autodiff through the Layers models: grads, loss, score (mlp)", () => {
  const { specs, g, d, computer } = setup("mlp");
  const n = 6;
  const shard = generatorShard(n, 3);
  const result = computer.generatorPhase(shard);

  const generator = buildGenerator("mlp", LATENT_DIM);
  const discriminator = buildDiscriminator("mlp");
  setLayersWeights(generator, specs.generator, g);
  setLayersWeights(discriminator, specs.discriminator, d);
  const z = tf.tensor2d(shard.z, [n, LATENT_DIM]);
  const labels = labelsColumn(shard.labels);
  const ones = tf.ones([n, 1]);
  const logitsOf = () =>
    discriminator.apply([generator.apply([z, labels]) as tf.Tensor, labels]) as tf.Tensor;
  const expectedGrads = layersGrads(generator, () => referenceLoss(logitsOf(), ones));
  const [expectedLoss, expectedScore] = tf.tidy(() => {
    const logits = logitsOf();
    return [referenceLoss(logits, ones).dataSync()[0], tf.sum(tf.sigmoid(logits)).dataSync()[0]];
  });

  assertEquals(result.grads.length, specs.generator.trainableSize);
  assertClose(result.grads, expectedGrads, GRAD_TOLERANCE * maxAbs(expectedGrads), "G grads");
  assertClose(
    [result.lossSum, result.fakeScoreSum, result.realScoreSum],
    [expectedLoss, expectedScore, 0],
    1e-4,
  );
  assertEquals(result.batchNormSums, new Float32Array(0));
  tf.dispose([z, labels, ones]);
  generator.dispose();
  discriminator.dispose();
  computer.dispose();
});

/**
 * Central differences of a phase's lossSum along the largest gradient component of each parameter tensor,
 * against that component. Independent of every gradient rule in TF.js. The step is small because LeakyReLU's
 * kinks bias larger ones (by 3% at 1e-3 for D's conv2 bias), and the tolerance loose because float32 losses
 * are differenced (rounding ~1e-7 / STEP).
 */
function checkFiniteDifferences(
  what: string,
  weights: Float32Array,
  params: ReturnType<typeof trainableParams>,
  grads: Float32Array,
  lossAt: (weights: Float32Array) => number,
): void {
  const STEP = 3e-4;
  for (const p of params) {
    let at = p.offset;
    for (let i = p.offset; i < p.offset + p.size; i++) if (Math.abs(grads[i]) > Math.abs(grads[at])) at = i;
    const shifted = weights.slice();
    shifted[at] = weights[at] + STEP;
    const up = lossAt(shifted);
    shifted[at] = weights[at] - STEP;
    const down = lossAt(shifted);
    const numeric = (up - down) / (2 * STEP);
    const analytic = grads[at];
    assert(
      Math.abs(numeric - analytic) <= 0.02 * Math.abs(analytic) + 1e-3,
      `${what} ${p.name}[${at - p.offset}]: finite difference ${numeric}, gradient ${analytic}`,
    );
  }
}

Deno.test("discriminatorPhase() grads match finite differences of its loss (cdcgan, smoothing 0.1)", () => {
  const { specs, d, computer } = setup("cdcgan", 0.1, 4);
  const shard = discriminatorShard(2, 5);
  const { grads } = computer.discriminatorPhase(shard);
  checkFiniteDifferences("D", d.trainable, trainableParams(specs.discriminator), grads, (w) => {
    computer.setDiscriminatorWeights(w);
    return computer.discriminatorPhase(shard).lossSum;
  });
  computer.dispose();
});

Deno.test("generatorPhase() grads match finite differences of its loss, through BatchNorm (cdcgan)", () => {
  const { specs, g, computer } = setup("cdcgan", 0, 6);
  const shard = generatorShard(3, 7);
  const { grads } = computer.generatorPhase(shard);
  checkFiniteDifferences("G", g.trainable, trainableParams(specs.generator), grads, (w) => {
    computer.setGeneratorWeights(w);
    return computer.generatorPhase(shard).lossSum;
  });
  computer.dispose();
});

Deno.test("mlp: gradient sums over a batch equal the sums of its two shards' gradient sums", () => {
  const { computer } = setup("mlp");
  const n = 8;
  const split = 3;
  const dShard = discriminatorShard(n, 8);
  const whole = computer.discriminatorPhase(dShard);
  const [a, b] = [
    computer.discriminatorPhase(sliceD(dShard, 0, split)),
    computer.discriminatorPhase(sliceD(dShard, split, n)),
  ];
  assertClose(add(a.grads, b.grads), whole.grads, GRAD_TOLERANCE * maxAbs(whole.grads), "D grads");
  assertClose(
    [a.lossSum + b.lossSum, a.realScoreSum + b.realScoreSum, a.fakeScoreSum + b.fakeScoreSum],
    [whole.lossSum, whole.realScoreSum, whole.fakeScoreSum],
    1e-4,
    "D sums",
  );

  const gShard = generatorShard(n, 9);
  const gWhole = computer.generatorPhase(gShard);
  const [ga, gb] = [
    computer.generatorPhase(sliceG(gShard, 0, split)),
    computer.generatorPhase(sliceG(gShard, split, n)),
  ];
  assertClose(add(ga.grads, gb.grads), gWhole.grads, GRAD_TOLERANCE * maxAbs(gWhole.grads), "G grads");
  assertClose([ga.lossSum + gb.lossSum, ga.fakeScoreSum + gb.fakeScoreSum], [
    gWhole.lossSum,
    gWhole.fakeScoreSum,
  ], 1e-4);
  computer.dispose();
});

Deno.test("cdcgan: generatorPhase() reports Σx and Σx² of each BatchNorm input, adding up over shards", () => {
  const { specs, g, computer } = setup("cdcgan");
  const n = 4;
  const shard = generatorShard(n, 10);
  const { batchNormSums } = computer.generatorPhase(shard);
  assert(batchNormSums !== undefined);
  assertEquals(batchNormSums.length, specs.generator.stateSize);

  // The first BatchNorm's input (the dense layer's output) does not depend on batch statistics: compare it
  // with the Layers model's, and check that shards add up to the batch.
  const [first, second] = specs.generator.batchNorms;
  const generator = buildGenerator("cdcgan", LATENT_DIM);
  setLayersWeights(generator, specs.generator, g);
  const dense = tfl.model({
    inputs: generator.inputs,
    outputs: generator.getLayer(CDCGAN_G_LAYERS.dense).output as tfl.SymbolicTensor,
  });
  const [sums, squares] = tf.tidy(() => {
    const x = dense.predict([tf.tensor2d(shard.z, [n, LATENT_DIM]), labelsColumn(shard.labels)]) as tf.Tensor;
    return [tf.sum(x, 0).dataSync(), tf.sum(tf.square(x), 0).dataSync()];
  });
  const c = first.channels;
  assertClose(batchNormSums.subarray(0, c), sums, 1e-4 * maxAbs(sums), "Σx");
  assertClose(batchNormSums.subarray(c, 2 * c), squares, 1e-4 * maxAbs(squares), "Σx²");
  const a = computer.generatorPhase(sliceG(shard, 0, 1)).batchNormSums!;
  const b = computer.generatorPhase(sliceG(shard, 1, n)).batchNormSums!;
  assertClose(
    add(a, b).subarray(0, 2 * c),
    batchNormSums.subarray(0, 2 * c),
    1e-4 * maxAbs(squares),
    "shards",
  );

  // The second's input follows the first's per-shard normalization; its sums must still describe a
  // distribution: Σx² ≥ (Σx)² / m for the m values per channel.
  const m = n * second.valuesPerExample;
  for (let ch = 0; ch < second.channels; ch++) {
    const sum = batchNormSums[2 * c + ch];
    const sumOfSquares = batchNormSums[2 * c + second.channels + ch];
    assert(sumOfSquares >= (sum * sum) / m * (1 - 1e-5), `channel ${ch}: Σx² ${sumOfSquares}, Σx ${sum}`);
  }
  generator.dispose();
  computer.dispose();
});

for (const model of MODEL_NAMES) {
  Deno.test(`losses and scores at initialization are finite and near chance (${model})`, () => {
    const { computer } = setup(model, 0, 11);
    const n = model === "cdcgan" ? 4 : 16;
    const dResult = computer.discriminatorPhase(discriminatorShard(n, 12));
    const gResult = computer.generatorPhase(generatorShard(n, 13));
    // D(x) ≈ 0.5 at initialization: lossD ≈ 2·ln 2 per example, lossG ≈ ln 2.
    const lossD = dResult.lossSum / n;
    const lossG = gResult.lossSum / n;
    assert(Math.abs(lossD - 2 * LN2) < 0.25, `lossD per example ${lossD}`);
    assert(Math.abs(lossG - LN2) < 0.25, `lossG per example ${lossG}`);
    for (const score of [dResult.realScoreSum / n, dResult.fakeScoreSum / n, gResult.fakeScoreSum / n]) {
      assert(Math.abs(score - 0.5) < 0.2, `mean score ${score}`);
    }
    assert(dResult.grads.every(Number.isFinite) && gResult.grads.every(Number.isFinite), "finite grads");
    assert(maxAbs(dResult.grads) > 0 && maxAbs(gResult.grads) > 0, "nonzero grads");
    computer.dispose();
  });
}

Deno.test("generateImages() equals the Layers generator's predict with the moving statistics (cdcgan)", () => {
  const { specs, g, computer } = setup("cdcgan");
  const rng = new Rng(14);
  // Moving statistics away from their initial 0 and 1, as after training.
  rng.fillUniform(g.state, 0.5, 1.5);
  const n = 3;
  const z = rng.fillNormal(new Float32Array(n * LATENT_DIM));
  const labels = Uint8Array.of(0, 5, 9);
  const images = computer.generateImages(z, labels, g.state);
  const generator = buildGenerator("cdcgan", LATENT_DIM);
  setLayersWeights(generator, specs.generator, g);
  const expected = tf.tidy(() =>
    (generator.predict([tf.tensor2d(z, [n, LATENT_DIM]), labelsColumn(labels)]) as tf.Tensor).dataSync()
  );
  assertEquals(images.length, n * IMAGE_PIXELS);
  assertClose(images, expected, 1e-5, "images");
  assert(images.every((v) => v >= -1 && v <= 1), "pixels in [-1, 1]");
  generator.dispose();
  computer.dispose();
});

Deno.test("StepComputer copies weight vectors: later changes to the caller's array do not leak in", () => {
  const { d, computer } = setup("mlp");
  const shard = discriminatorShard(2, 15);
  const before = computer.discriminatorPhase(shard);
  d.trainable.fill(0); // e.g. the coordinator's master weights updated in place by Adam
  const after = computer.discriminatorPhase(shard);
  assertEquals(after.grads, before.grads);
  assertEquals(after.lossSum, before.lossSum);
  computer.dispose();
});

Deno.test("StepComputer rejects mis-sized shards and weights, bad smoothing, and phases before weights", () => {
  const specs = modelSpecs("mlp", LATENT_DIM);
  assertThrows(() => new StepComputer(specs, 1), RangeError, "labelSmoothing must be in [0, 1)");
  assertThrows(() => new StepComputer(specs, -0.1), RangeError, "current value is -0.1");
  const empty = new StepComputer(specs, 0);
  assertThrows(() => empty.generatorPhase(generatorShard(1, 1)), Error, "generator weights are not set");
  assertThrows(() => empty.setGeneratorWeights(new Float32Array(3)), RangeError, "current length is 3");

  const before = tf.memory().numTensors;
  const { computer } = setup("mlp");
  const shard = discriminatorShard(2, 16);
  assertThrows(() => computer.discriminatorPhase({ ...shard, count: 3 }), RangeError, "real must have");
  assertThrows(
    () => computer.discriminatorPhase({ ...shard, z: shard.z.slice(1) }),
    RangeError,
    "z must have",
  );
  assertThrows(() => computer.discriminatorPhase({ ...shard, count: 0 }), RangeError, "positive integer");
  const badLabel = { ...shard, fakeLabels: Uint8Array.of(3, 10) };
  assertThrows(() => computer.discriminatorPhase(badLabel), RangeError, "value at 1 is 10");
  const g = generatorShard(2, 17);
  assertThrows(
    () => computer.generatorPhase({ ...g, labels: g.labels.slice(1) }),
    RangeError,
    "labels must have",
  );
  assertThrows(
    () => computer.generateImages(g.z, g.labels, new Float32Array(1)),
    RangeError,
    "state must have 0",
  );
  computer.dispose();
  assertEquals(tf.memory().numTensors, before, "failed calls leave no tensors");
});
