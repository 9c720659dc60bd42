/**
 * The judge of generated digits: a small CNN trained on the real training set, whose predictions give the
 * conditional accuracy and the classifier score, and whose penultimate layer gives the features of the
 * Fréchet distance (metrics.ts). A TF.js Layers model, so it saves and loads like the run's checkpoints.
 *
 * Inputs are images as the generator draws them: [n, 28, 28, 1] in [-1, 1].
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import {
  IMAGE_CHANNELS,
  IMAGE_PIXELS,
  IMAGE_SIDE,
  NUM_CLASSES,
  PIXEL_HALF_RANGE,
} from "../shared/models/specs.ts";
import { Rng } from "../shared/rng.ts";

/** The layer whose output is the feature vector of the Fréchet distance. */
export const FEATURES_LAYER = "classifier_features";
export const FEATURES_DIM = 128;
const CONV_FILTERS: readonly [number, number] = [32, 64];
const KERNEL = 3;
const POOL = 2;
const DROPOUT = 0.3;
/** Images per forward pass when classifying: bounds the activations' memory (about 300 KB per image). */
const PREDICT_BATCH = 500;

export interface TrainClassifierOptions {
  /** Passes over the training images: 4 reach 99.0% on MNIST (README, Measuring quality). */
  epochs: number;
  batchSize: number;
  /** Adam's learning rate in the first epoch; each later epoch multiplies it by `learningRateDecay`. */
  learningRate: number;
  learningRateDecay: number;
  architecture?: ClassifierArchitecture;
  /** Seed of the initial weights and of the order of the examples (dropout draws unseeded). */
  seed: number;
  /** Told after each epoch. */
  onEpoch?: (epoch: number, loss: number, model: tfl.LayersModel) => void;
}

/** Labelled images as the dataset stores them: count * 784 uint8 pixels (0 = background) and count labels. */
export interface LabelledImages {
  images: Uint8Array;
  labels: Uint8Array;
}

/** Pixels 0..255 to the generator's range [-1, 1] (MODEL.md). */
export function pixelsToUnit(images: Uint8Array): Float32Array {
  const out = new Float32Array(images.length);
  for (let i = 0; i < images.length; i++) out[i] = images[i] / PIXEL_HALF_RANGE - 1;
  return out;
}

/**
 * "cnn": the classifier of every measurement (two conv + pool stages). "dense": the same head on the raw
 * pixels, for the test suite: seconds to train on any backend, and the same features layer and outputs,
 * so that it runs through exactly the code the CNN does.
 */
export type ClassifierArchitecture = "cnn" | "dense";

/** The classifier, untrained, with seeded initial weights. */
export function buildClassifier(seed: number, architecture: ClassifierArchitecture = "cnn"): tfl.LayersModel {
  let nextSeed = seed;
  const init = () => tfl.initializers.glorotUniform({ seed: nextSeed++ });
  const conv = (x: tfl.SymbolicTensor, filters: number, name: string) =>
    tfl.layers.conv2d({
      filters,
      kernelSize: KERNEL,
      padding: "same",
      activation: "relu",
      kernelInitializer: init(),
      name,
    }).apply(x) as tfl.SymbolicTensor;
  const pool = (name: string) => tfl.layers.maxPooling2d({ poolSize: POOL, name });
  const input = tfl.input({ shape: [IMAGE_SIDE, IMAGE_SIDE, IMAGE_CHANNELS], name: "classifier_image" });
  let x = input;
  if (architecture === "cnn") {
    x = conv(x, CONV_FILTERS[0], "classifier_conv1"); // [n, 28, 28, 32]
    x = pool("classifier_pool1").apply(x) as tfl.SymbolicTensor; // [n, 14, 14, 32]
    x = conv(x, CONV_FILTERS[1], "classifier_conv2"); // [n, 14, 14, 64]
    x = pool("classifier_pool2").apply(x) as tfl.SymbolicTensor; // [n, 7, 7, 64]
  }
  x = tfl.layers.flatten({ name: "classifier_flatten" }).apply(x) as tfl.SymbolicTensor; // [n, 3136] (dense: 784)
  const features = tfl.layers.dense({
    units: FEATURES_DIM,
    activation: "relu",
    kernelInitializer: init(),
    name: FEATURES_LAYER,
  }).apply(x) as tfl.SymbolicTensor; // [n, 128]
  // Dropout after the features, so that they are not thinned when read for the Fréchet distance. Not
  // seeded: TF.js would then draw the same mask at every step.
  const dropped = tfl.layers.dropout({ rate: DROPOUT, name: "classifier_dropout" })
    .apply(features) as tfl.SymbolicTensor;
  const probs = tfl.layers.dense({
    units: NUM_CLASSES,
    activation: "softmax",
    kernelInitializer: init(),
    name: "classifier_probs",
  }).apply(dropped) as tfl.SymbolicTensor; // [n, 10]
  return tfl.model({ inputs: input, outputs: probs, name: "gantry_classifier" });
}

/** Adam whose learning rate can be lowered between epochs (TF.js's keeps it protected). */
class DecayingAdam extends tf.AdamOptimizer {
  setLearningRate(rate: number): void {
    this.learningRate = rate;
  }
}

/** Images `indices` of `data` as a [n, 28, 28, 1] batch in [-1, 1], and their labels one-hot. */
function batchTensors(data: LabelledImages, indices: ArrayLike<number>): [tf.Tensor4D, tf.Tensor2D] {
  const n = indices.length;
  const bytes = new Uint8Array(n * IMAGE_PIXELS);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    bytes.set(
      data.images.subarray(indices[i] * IMAGE_PIXELS, (indices[i] + 1) * IMAGE_PIXELS),
      i * IMAGE_PIXELS,
    );
    labels[i] = data.labels[indices[i]];
  }
  const pixels = pixelsToUnit(bytes);
  return tf.tidy(() => [
    tf.tensor4d(pixels, [n, IMAGE_SIDE, IMAGE_SIDE, IMAGE_CHANNELS]),
    tf.oneHot(tf.tensor1d(labels, "int32"), NUM_CLASSES, 1, 0, "float32") as tf.Tensor2D,
  ]);
}

/**
 * Trains a new classifier on `train` with Adam and cross-entropy, shuffling with the seed each epoch; the
 * caller disposes the model. A manual loop over `trainOnBatch` rather than `fit`, so that the shuffle is
 * seeded and no tensor of the whole training set is ever built.
 */
export async function trainClassifier(
  train: LabelledImages,
  opts: TrainClassifierOptions,
): Promise<tfl.LayersModel> {
  const model = buildClassifier(opts.seed, opts.architecture);
  // Keras's default Adam (beta 0.9, 0.999, epsilon 1e-7).
  const optimizer = new DecayingAdam(opts.learningRate, 0.9, 0.999, 1e-7);
  model.compile({ optimizer, loss: "categoricalCrossentropy" });
  const rng = new Rng(opts.seed);
  const count = train.labels.length;
  const order = Uint32Array.from({ length: count }, (_, i) => i);
  for (let epoch = 1; epoch <= opts.epochs; epoch++) {
    optimizer.setLearningRate(opts.learningRate * opts.learningRateDecay ** (epoch - 1));
    for (let i = count - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    let lossSum = 0;
    let batches = 0;
    for (let start = 0; start < count; start += opts.batchSize) {
      const [x, y] = batchTensors(train, order.subarray(start, Math.min(count, start + opts.batchSize)));
      try {
        lossSum += (await model.trainOnBatch(x, y)) as number;
        batches++;
      } finally {
        tf.dispose([x, y]);
      }
    }
    opts.onEpoch?.(epoch, lossSum / batches, model);
  }
  return model;
}

/** What the classifier makes of a set of images. */
export interface Classified {
  /** count * 10 class probabilities, p(y|x). */
  probs: Float32Array;
  /** count * FEATURES_DIM penultimate-layer activations. */
  features: Float32Array;
}

/**
 * Runs the classifier on `images` in batches, reading the class probabilities and the features in the same
 * forward pass. Images are count * 784 values in [-1, 1], or the dataset's uint8 pixels, converted a batch
 * at a time so that the 60,000 training images never exist as floats all at once.
 */
export function classify(model: tfl.LayersModel, images: Float32Array | Uint8Array): Classified {
  const count = images.length / IMAGE_PIXELS;
  const probs = new Float32Array(count * NUM_CLASSES);
  const features = new Float32Array(count * FEATURES_DIM);
  // The same layers with a second output: shares the weights, builds nothing new to train.
  const both = tfl.model({
    inputs: model.inputs,
    outputs: [model.getLayer(FEATURES_LAYER).output as tfl.SymbolicTensor, model.outputs[0]],
  });
  for (let start = 0; start < count; start += PREDICT_BATCH) {
    const n = Math.min(PREDICT_BATCH, count - start);
    const slice = images.subarray(start * IMAGE_PIXELS, (start + n) * IMAGE_PIXELS);
    const pixels = slice instanceof Uint8Array ? pixelsToUnit(slice) : slice;
    const outputs = tf.tidy(() => {
      const x = tf.tensor4d(pixels, [n, IMAGE_SIDE, IMAGE_SIDE, IMAGE_CHANNELS]);
      return both.predict(x) as tf.Tensor[];
    });
    try {
      features.set(outputs[0].dataSync(), start * FEATURES_DIM);
      probs.set(outputs[1].dataSync(), start * NUM_CLASSES);
    } finally {
      tf.dispose(outputs);
    }
  }
  return { probs, features };
}
