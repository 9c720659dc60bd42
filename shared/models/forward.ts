/**
 * The reference models' forward passes as plain tf ops on parameter tensors (no Layers API): faster than
 * running the Layers models (no symbolic bookkeeping, no variable reads), differentiable by tf.grads with
 * respect to the parameter tensors, and computing exactly what `layers.ts` computes (tested to ~1e-5).
 *
 * Only kernels that every backend has, with gradients built from basic ops: embeddings are a one-hot matMul
 * (gather's gradient needs UnsortedSegmentSum, missing on wasm) and BatchNorm is written out elementwise
 * (tf.batchNorm's gradient tiles a rank-4 reshape, which fails on 2-D inputs such as cdcgan's dense layer).
 *
 * Callers own tidying: these functions create tensors and dispose nothing.
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  BN_EPSILON,
  CDCGAN_D_LAYERS,
  CDCGAN_G_DECONV_FILTERS,
  CDCGAN_G_LAYERS,
  CDCGAN_MID_SIDE,
  CDCGAN_SEED_CHANNELS,
  CDCGAN_SEED_SIDE,
  CDCGAN_STRIDE,
  IMAGE_CHANNELS,
  IMAGE_PIXELS,
  IMAGE_SIDE,
  LEAKY_ALPHA,
  MLP_D_LAYERS,
  MLP_G_LAYERS,
  NUM_CLASSES,
  trainableParams,
} from "./specs.ts";
import type { ModelSpecs, NetSpec } from "./types.ts";

/**
 * Training mode normalizes with the batch's statistics (and reports them); inference mode with the moving
 * statistics in `state`: for each BatchNorm layer in order, movingMean [channels] then movingVariance.
 */
export type ForwardMode = { training: true } | { training: false; state: tf.Tensor1D[] };

/** The statistics a training-mode BatchNorm layer normalized with (biased variance, as Keras). */
export interface BatchStats {
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

export interface GeneratorOutput {
  /** [n, 28, 28, 1] in [-1, 1]. */
  images: tf.Tensor4D;
  /** One per BatchNorm layer in training mode; empty in inference mode. */
  batchStats: BatchStats[];
}

/** Looks up a net's trainable tensors by weight name ("g_dense/kernel"), checking count and shapes once. */
function paramGetter(net: NetSpec, params: tf.Tensor[]): (layer: string, weight: string) => tf.Tensor {
  const specs = trainableParams(net);
  if (params.length !== specs.length) {
    throw new RangeError(`expected ${specs.length} parameter tensors: current count is ${params.length}`);
  }
  const byName = new Map<string, tf.Tensor>();
  specs.forEach((p, i) => {
    if (params[i].shape.join() !== p.shape.join()) {
      throw new RangeError(`${p.name} must have shape [${p.shape}]: current shape is [${params[i].shape}]`);
    }
    byName.set(p.name, params[i]);
  });
  return (layer, weight) => {
    const t = byName.get(`${layer}/${weight}`);
    if (t === undefined) throw new Error(`no parameter ${layer}/${weight}`);
    return t;
  };
}

/** Embedding lookup as oneHot(labels) · table: [n] int32 -> [n, dim]. */
function embed(labels: tf.Tensor1D, table: tf.Tensor): tf.Tensor2D {
  return tf.matMul(tf.oneHot(labels, NUM_CLASSES, 1, 0, "float32"), table as tf.Tensor2D);
}

function dense(x: tf.Tensor2D, kernel: tf.Tensor, bias?: tf.Tensor): tf.Tensor2D {
  const y = tf.matMul(x, kernel as tf.Tensor2D);
  return bias === undefined ? y : tf.add(y, bias);
}

function leakyRelu<T extends tf.Tensor>(x: T): T {
  return tf.leakyRelu(x, LEAKY_ALPHA);
}

/** Upsamples by CDCGAN_STRIDE with a [k, k, outChannels, inChannels] kernel ("same" padding, like Keras). */
function deconv(x: tf.Tensor4D, kernel: tf.Tensor, outSide: number, outChannels: number): tf.Tensor4D {
  return tf.conv2dTranspose(
    x,
    kernel as tf.Tensor4D,
    [x.shape[0], outSide, outSide, outChannels],
    CDCGAN_STRIDE,
    "same",
  );
}

function conv(x: tf.Tensor4D, kernel: tf.Tensor, bias: tf.Tensor): tf.Tensor4D {
  return tf.add(tf.conv2d(x, kernel as tf.Tensor4D, CDCGAN_STRIDE, "same"), bias);
}

/**
 * BatchNorm over every axis but the last (channels). Each call consumes the next entry of `state` in
 * inference mode, or pushes the batch statistics to `stats` in training mode.
 */
class BatchNormRunner {
  readonly stats: BatchStats[] = [];
  #next = 0;
  constructor(private readonly mode: ForwardMode) {}

  apply<T extends tf.Tensor>(x: T, gamma: tf.Tensor, beta: tf.Tensor): T {
    const axes = x.shape.slice(0, -1).map((_, i) => i);
    let centered: T;
    let variance: tf.Tensor;
    if (this.mode.training) {
      const mean = tf.mean(x, axes) as tf.Tensor1D;
      centered = tf.sub(x, mean);
      variance = tf.mean(tf.square(centered), axes);
      this.stats.push({ mean, variance: variance as tf.Tensor1D });
    } else {
      const index = this.#next++;
      const [mean, movingVariance] = [this.mode.state[2 * index], this.mode.state[2 * index + 1]];
      if (mean === undefined || movingVariance === undefined) {
        throw new RangeError(`inference needs 2 state tensors per BatchNorm layer: got ${this.mode.state.length}`);
      }
      centered = tf.sub(x, mean);
      variance = movingVariance;
    }
    // gamma / sqrt(var + eps) is per channel, so the [n, ...] tensor takes one mul and one add.
    const scale = tf.mul(gamma, tf.rsqrt(tf.add(variance, BN_EPSILON)));
    return tf.add(tf.mul(centered, scale), beta);
  }
}

export function generatorForward(
  specs: ModelSpecs,
  params: tf.Tensor[],
  z: tf.Tensor2D,
  labels: tf.Tensor1D,
  mode: ForwardMode,
): GeneratorOutput {
  const w = paramGetter(specs.generator, params);
  const norm = new BatchNormRunner(mode);
  const n = z.shape[0];
  const e = embed(labels, w(CDCGAN_G_LAYERS.embedding, "embeddings")); // [n, 50]
  let h: tf.Tensor2D = tf.concat([z, e], 1); // [n, latentDim + 50]
  let images: tf.Tensor4D;
  if (specs.model === "cdcgan") {
    const L = CDCGAN_G_LAYERS;
    h = dense(h, w(L.dense, "kernel")); // [n, 6272]
    h = leakyRelu(norm.apply(h, w(L.denseNorm, "gamma"), w(L.denseNorm, "beta"))); // [n, 6272]
    let x = tf.reshape(h, [n, CDCGAN_SEED_SIDE, CDCGAN_SEED_SIDE, CDCGAN_SEED_CHANNELS]) as tf.Tensor4D; // [n, 7, 7, 128]
    x = deconv(x, w(L.deconv, "kernel"), CDCGAN_MID_SIDE, CDCGAN_G_DECONV_FILTERS); // [n, 14, 14, 64]
    x = leakyRelu(norm.apply(x, w(L.deconvNorm, "gamma"), w(L.deconvNorm, "beta"))); // [n, 14, 14, 64]
    x = deconv(x, w(L.output, "kernel"), IMAGE_SIDE, IMAGE_CHANNELS); // [n, 28, 28, 1]
    images = tf.tanh(tf.add(x, w(L.output, "bias")));
  } else {
    const L = MLP_G_LAYERS;
    for (const layer of L.hidden) h = leakyRelu(dense(h, w(layer, "kernel"), w(layer, "bias"))); // [n, units]
    h = tf.tanh(dense(h, w(L.output, "kernel"), w(L.output, "bias"))); // [n, 784]
    images = tf.reshape(h, [n, IMAGE_SIDE, IMAGE_SIDE, IMAGE_CHANNELS]); // [n, 28, 28, 1]
  }
  return { images, batchStats: norm.stats };
}

/** D's logit [n, 1] for images [n, 28, 28, 1] in [-1, 1] with their int32 labels [n]. */
export function discriminatorForward(
  specs: ModelSpecs,
  params: tf.Tensor[],
  images: tf.Tensor4D,
  labels: tf.Tensor1D,
): tf.Tensor2D {
  const w = paramGetter(specs.discriminator, params);
  const n = images.shape[0];
  const e = embed(labels, w(CDCGAN_D_LAYERS.embedding, "embeddings")); // [n, 784]
  if (specs.model === "cdcgan") {
    const L = CDCGAN_D_LAYERS;
    const plane = tf.reshape(e, [n, IMAGE_SIDE, IMAGE_SIDE, 1]); // [n, 28, 28, 1]
    let x: tf.Tensor4D = tf.concat([images, plane], 3); // [n, 28, 28, 2]
    x = leakyRelu(conv(x, w(L.conv1, "kernel"), w(L.conv1, "bias"))); // [n, 14, 14, 64]
    x = leakyRelu(conv(x, w(L.conv2, "kernel"), w(L.conv2, "bias"))); // [n, 7, 7, 128]
    return dense(tf.reshape(x, [n, -1]), w(L.logit, "kernel"), w(L.logit, "bias")); // [n, 1]
  }
  const L = MLP_D_LAYERS;
  let h: tf.Tensor2D = tf.concat([tf.reshape(images, [n, IMAGE_PIXELS]), e], 1); // [n, 1568]
  for (const layer of L.hidden) h = leakyRelu(dense(h, w(layer, "kernel"), w(layer, "bias"))); // [n, units]
  return dense(h, w(L.logit, "kernel"), w(L.logit, "bias")); // [n, 1]
}
