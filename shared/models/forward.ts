/**
 * The reference models' forward passes as plain tf ops on parameter tensors (no Layers API): faster than
 * running the Layers models (no symbolic bookkeeping, no variable reads), differentiable by tf.grads with
 * respect to the parameter tensors, and computing what `layers.ts` computes (tested to ~1e-5).
 *
 * Same math as the Layers models, arranged for speed on every backend:
 * - labels come one-hot (`oneHotLabels`) and embeddings are a matMul (gather's gradient needs
 *   UnsortedSegmentSum, missing on wasm);
 * - a layer fed concat([x, embedding(label)]) is computed as x·K_x + onehot·(table·K_e), splitting the
 *   kernel instead of concatenating activations: table·K_e has 10 rows instead of n, and no column split of
 *   activations is needed in the backward pass (slow on cpu). cdcgan's D does the same with its first conv,
 *   which is linear in its input channels: conv(image, K_image) + onehot·conv(label planes, K_label);
 * - BatchNorm is written out elementwise (tfjs 4.22's tf.batchNorm gradient throws for a 2-D input with
 *   per-channel statistics, such as cdcgan's dense layer's);
 * - matMuls and (transposed) convolutions use the custom gradients of `ops.ts`, fast on every backend.
 *
 * Callers own tidying: these functions create tensors and dispose nothing.
 */
import * as tf from "@tensorflow/tfjs-core";
import { conv, deconv, type GradsFor, matMul } from "./ops.ts";
import { addBias, batchNormTraining, leakyRelu as leakyReluOp } from "./pointwise.ts";
import {
  BN_EPSILON,
  CDCGAN_D_LAYERS,
  CDCGAN_G_LAYERS,
  CDCGAN_SEED_CHANNELS,
  CDCGAN_SEED_SIDE,
  CDCGAN_STRIDE,
  D_EMBEDDING_LAYER,
  G_EMBEDDING_DIM,
  G_EMBEDDING_LAYER,
  IMAGE_CHANNELS,
  IMAGE_PIXELS,
  IMAGE_SIDE,
  LABEL_PLANE_CHANNELS,
  LEAKY_ALPHA,
  MLP_D_LAYERS,
  MLP_G_LAYERS,
  NUM_CLASSES,
  trainableParams,
} from "./specs.ts";
import type { ModelSpecs } from "./types.ts";

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

type NetName = "generator" | "discriminator";

/** A piece of a net's trainable vector taken as one tensor: a whole weight, or a row block of one. */
export interface ParamPart {
  name: string;
  shape: number[];
  /** Offset and size in the net's trainable vector. */
  offset: number;
  size: number;
}

/**
 * The kernels [in, out] that conditionedDense splits into rows for x and rows for the label embedding:
 * the generator's first layer (z, then its embedding) and the mlp discriminator's (pixels, then the
 * label plane).
 */
function rowSplits(specs: ModelSpecs, net: NetName): Map<string, [number, number]> {
  if (net === "generator") {
    const first = specs.model === "cdcgan" ? CDCGAN_G_LAYERS.dense : MLP_G_LAYERS.hidden[0];
    return new Map([[`${first}/kernel`, [specs.latentDim, G_EMBEDDING_DIM]]]);
  }
  if (specs.model === "mlp") {
    return new Map([[`${MLP_D_LAYERS.hidden[0]}/kernel`, [IMAGE_PIXELS, IMAGE_PIXELS]]]);
  }
  return new Map();
}

/**
 * A net's trainable parameters as the forward passes take them fastest: spec order, with each kernel that
 * conditionedDense splits given as its two row blocks. A block of rows of a row-major [in, out] kernel is a
 * contiguous slice of the trainable vector, so the parts' values (and gradients), concatenated in this
 * order, are the trainable vector (and its gradient): no split kernel forward and no concat backward.
 */
export function trainingParts(specs: ModelSpecs, net: NetName): ParamPart[] {
  const splits = rowSplits(specs, net);
  return trainableParams(specs[net]).flatMap((p): ParamPart[] => {
    const rows = splits.get(p.name);
    if (rows === undefined) return [{ name: p.name, shape: p.shape, offset: p.offset, size: p.size }];
    const columns = p.shape[1];
    return rows.map((count, i) => ({
      name: `${p.name}#${i}`,
      shape: [count, columns],
      offset: p.offset + (i === 0 ? 0 : rows[0] * columns),
      size: count * columns,
    }));
  });
}

interface Params {
  /** A whole trainable weight by layer and weight name ("g_dense", "kernel"). */
  get(layer: string, weight: string): tf.Tensor;
  /** A split kernel's two row blocks, given as such or split from the whole kernel. */
  rows(layer: string, weight: string): [tf.Tensor2D, tf.Tensor2D];
}

/**
 * Looks up a net's trainable tensors by weight name, checking count and shapes once. `params` holds either
 * one tensor per trainable weight (spec order) or trainingParts' layout.
 */
function paramGetter(specs: ModelSpecs, net: NetName, params: tf.Tensor[]): Params {
  const whole = trainableParams(specs[net]);
  const parts = trainingParts(specs, net);
  const layout = params.length === whole.length ? whole : params.length === parts.length ? parts : null;
  if (layout === null) {
    throw new RangeError(`expected ${whole.length} parameter tensors: current count is ${params.length}`);
  }
  const byName = new Map<string, tf.Tensor>();
  layout.forEach((p, i) => {
    if (params[i].shape.join() !== p.shape.join()) {
      throw new RangeError(`${p.name} must have shape [${p.shape}]: current shape is [${params[i].shape}]`);
    }
    byName.set(p.name, params[i]);
  });
  const splits = rowSplits(specs, net);
  const get = (layer: string, weight: string) => {
    const t = byName.get(`${layer}/${weight}`);
    if (t === undefined) throw new Error(`no parameter ${layer}/${weight}`);
    return t;
  };
  return {
    get,
    rows: (layer, weight) => {
      const name = `${layer}/${weight}`;
      const [first, second] = [byName.get(`${name}#0`), byName.get(`${name}#1`)];
      if (first !== undefined && second !== undefined) return [first as tf.Tensor2D, second as tf.Tensor2D];
      const rows = splits.get(name);
      if (rows === undefined) throw new Error(`${name} is not split by rows`);
      return tf.split<tf.Tensor2D>(get(layer, weight) as tf.Tensor2D, rows, 0) as [tf.Tensor2D, tf.Tensor2D];
    },
  };
}

/**
 * Labels 0..9 as one-hot rows [n, 10] (float32): the models' label input, since an embedding lookup is then
 * a matMul. Built here rather than with tf.oneHot, whose wasm kernel ignores the float32 dtype (tfjs 4.22:
 * it writes the integer 1's bits, 1.4e-45).
 */
export function oneHotLabels(labels: ArrayLike<number>): tf.Tensor2D {
  const rows = new Float32Array(labels.length * NUM_CLASSES);
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    if (!(Number.isInteger(label) && label >= 0 && label < NUM_CLASSES)) {
      throw new RangeError(`labels must be integers in [0, ${NUM_CLASSES}): value at ${i} is ${label}`);
    }
    rows[i * NUM_CLASSES + label] = 1;
  }
  return tf.tensor2d(rows, [labels.length, NUM_CLASSES]);
}

/** x·kernel for [n, in]·[in, out]; `which` says which inputs need a gradient (null: neither). */
function linear(x: tf.Tensor2D, kernel: tf.Tensor, which: GradsFor | null): tf.Tensor2D {
  return which === null ? tf.matMul(x, kernel as tf.Tensor2D) : matMul(x, kernel as tf.Tensor2D, which);
}

/** x·kernel + bias for [n, in]·[in, out]. */
function dense(
  x: tf.Tensor2D,
  kernel: tf.Tensor,
  bias: tf.Tensor,
  which: GradsFor | null = "both",
): tf.Tensor2D {
  return addBias(linear(x, kernel, which), bias);
}

/** A stride-2 "same" convolution; `which` as for `linear`. */
function strided(x: tf.Tensor4D, kernel: tf.Tensor, which: GradsFor | null): tf.Tensor4D {
  const k = kernel as tf.Tensor4D;
  return which === null ? tf.conv2d(x, k, CDCGAN_STRIDE, "same") : conv(x, k, CDCGAN_STRIDE, which);
}

/** What needs a gradient in a two-input op, given whether its data input and its weight do. */
function gradsFor(dataNeedsGrad: boolean, weightNeedsGrad: boolean): GradsFor | null {
  if (dataNeedsGrad && weightNeedsGrad) return "both";
  if (dataNeedsGrad) return "first";
  return weightNeedsGrad ? "second" : null;
}

/**
 * concat([x, onehot·table]) · kernel without the concat: the kernel's rows split into the part for x and the
 * part for the embedding, and the embedding's part folded into the table first ([10, units]).
 */
function conditionedDense(
  x: tf.Tensor2D,
  xNeedsGrad: boolean,
  labels: tf.Tensor2D,
  table: tf.Tensor,
  [kx, ke]: [tf.Tensor2D, tf.Tensor2D],
  weightsNeedGrad = true,
): tf.Tensor2D {
  const fromX = linear(x, kx, gradsFor(xNeedsGrad, weightsNeedGrad));
  // The labels are constants; the folded table [10, units] needs a gradient when the weights do.
  const folded = linear(table as tf.Tensor2D, ke, weightsNeedGrad ? "both" : null);
  const fromLabel = linear(labels, folded, weightsNeedGrad ? "second" : null);
  return tf.add<tf.Tensor2D>(fromX, fromLabel);
}

function leakyRelu<T extends tf.Tensor>(x: T): T {
  return leakyReluOp(x, LEAKY_ALPHA);
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
    if (this.mode.training) {
      const { y, mean, variance } = batchNormTraining(x, gamma, beta, BN_EPSILON);
      this.stats.push({ mean, variance });
      return y;
    }
    const index = this.#next++;
    const [mean, movingVariance] = [this.mode.state[2 * index], this.mode.state[2 * index + 1]];
    if (mean === undefined || movingVariance === undefined) {
      throw new RangeError(
        `inference needs 2 state tensors per BatchNorm layer: got ${this.mode.state.length}`,
      );
    }
    // gamma / sqrt(var + eps) is per channel, so the [n, ...] tensor takes one mul and one add.
    const scale = tf.mul(gamma, tf.rsqrt(tf.add(movingVariance, BN_EPSILON)));
    return tf.add(tf.mul(tf.sub(x, mean), scale), beta);
  }
}

export function generatorForward(
  specs: ModelSpecs,
  params: tf.Tensor[],
  z: tf.Tensor2D,
  labels: tf.Tensor2D,
  mode: ForwardMode,
): GeneratorOutput {
  const weights = paramGetter(specs, "generator", params);
  const w = weights.get;
  const norm = new BatchNormRunner(mode);
  const n = z.shape[0];
  const table = w(G_EMBEDDING_LAYER, "embeddings"); // [10, 50], concatenated after z
  let images: tf.Tensor4D;
  if (specs.model === "cdcgan") {
    const L = CDCGAN_G_LAYERS;
    let h = conditionedDense(z, false, labels, table, weights.rows(L.dense, "kernel")); // [n, 6272]
    h = leakyRelu(norm.apply(h, w(L.denseNorm, "gamma"), w(L.denseNorm, "beta"))); // [n, 6272]
    let x = tf.reshape<tf.Rank.R4>(h, [n, CDCGAN_SEED_SIDE, CDCGAN_SEED_SIDE, CDCGAN_SEED_CHANNELS]); // [n, 7, 7, 128]
    x = deconv(x, w(L.deconv, "kernel") as tf.Tensor4D, CDCGAN_STRIDE); // [n, 14, 14, 64]
    x = leakyRelu(norm.apply(x, w(L.deconvNorm, "gamma"), w(L.deconvNorm, "beta"))); // [n, 14, 14, 64]
    x = deconv(x, w(L.output, "kernel") as tf.Tensor4D, CDCGAN_STRIDE); // [n, 28, 28, 1]
    images = tf.tanh(addBias(x, w(L.output, "bias"))); // [n, 28, 28, 1]
  } else {
    const L = MLP_G_LAYERS;
    const [first, ...rest] = L.hidden;
    let h = conditionedDense(z, false, labels, table, weights.rows(first, "kernel"));
    h = leakyRelu(addBias(h, w(first, "bias"))); // [n, 256]
    for (const layer of rest) h = leakyRelu(dense(h, w(layer, "kernel"), w(layer, "bias"))); // [n, 512], [n, 1024]
    h = tf.tanh(dense(h, w(L.output, "kernel"), w(L.output, "bias"))); // [n, 784]
    images = tf.reshape(h, [n, IMAGE_SIDE, IMAGE_SIDE, IMAGE_CHANNELS]); // [n, 28, 28, 1]
  }
  return { images, batchStats: norm.stats };
}

export interface DiscriminatorOptions {
  /**
   * Whether the images need a gradient: true (the default) when they come from G and the loss is G's. The
   * D phase passes false, which saves the first layer's input gradient (a matMul or conv as large as the
   * layer itself).
   */
  imagesNeedGrad?: boolean;
  /**
   * Whether D's weights need a gradient: true (the default) in D's own phase; the G phase passes false, which
   * skips every weight gradient of D (a third of D's backward pass).
   */
  weightsNeedGrad?: boolean;
}

/** D's logit [n, 1] for images [n, 28, 28, 1] in [-1, 1] with their one-hot labels [n, 10]. */
export function discriminatorForward(
  specs: ModelSpecs,
  params: tf.Tensor[],
  images: tf.Tensor4D,
  labels: tf.Tensor2D,
  { imagesNeedGrad = true, weightsNeedGrad = true }: DiscriminatorOptions = {},
): tf.Tensor2D {
  const weights = paramGetter(specs, "discriminator", params);
  const w = weights.get;
  const n = images.shape[0];
  const table = w(D_EMBEDDING_LAYER, "embeddings"); // [10, 784]: a label's image-sized plane
  const hidden = gradsFor(true, weightsNeedGrad); // inner layers: their input always comes from D's weights
  if (specs.model === "cdcgan") {
    const L = CDCGAN_D_LAYERS;
    // conv1 over [image, label plane] (channels 0 and 1) = conv(image, K[:, :, :1]) + conv(plane, K[:, :, 1:]);
    // the second term takes one of 10 values, so it is computed per class and picked by the one-hot rows.
    const kernel1 = w(L.conv1, "kernel") as tf.Tensor4D;
    const [kImage, kLabel] = tf.split<tf.Tensor4D>(kernel1, [IMAGE_CHANNELS, LABEL_PLANE_CHANNELS], 2);
    const planeShape: [number, number, number, number] = [
      NUM_CLASSES,
      IMAGE_SIDE,
      IMAGE_SIDE,
      LABEL_PLANE_CHANNELS,
    ];
    const planes = tf.reshape<tf.Rank.R4>(table, planeShape); // [10, 28, 28, 1]
    const perClass = strided(planes, kLabel, weightsNeedGrad ? "both" : null); // [10, 14, 14, 64]
    const [, side, , channels] = perClass.shape;
    const perClassRows = tf.reshape<tf.Rank.R2>(perClass, [NUM_CLASSES, -1]);
    const labelTerm = linear(labels, perClassRows, weightsNeedGrad ? "second" : null); // [n, 14·14·64]
    const imageTerm = strided(images, kImage, gradsFor(imagesNeedGrad, weightsNeedGrad)); // [n, 14, 14, 64]
    let x = tf.add<tf.Tensor4D>(imageTerm, tf.reshape(labelTerm, [n, side, side, channels]));
    x = leakyRelu(addBias(x, w(L.conv1, "bias"))); // [n, 14, 14, 64]
    x = strided(x, w(L.conv2, "kernel"), hidden); // [n, 7, 7, 128]
    x = leakyRelu(addBias(x, w(L.conv2, "bias"))); // [n, 7, 7, 128]
    return dense(tf.reshape(x, [n, -1]), w(L.logit, "kernel"), w(L.logit, "bias"), hidden); // [n, 1]
  }
  const L = MLP_D_LAYERS;
  const [first, ...rest] = L.hidden;
  const pixels = tf.reshape<tf.Rank.R2>(images, [n, IMAGE_PIXELS]); // [n, 784], before the label's 784
  const kernel = weights.rows(first, "kernel");
  let h = conditionedDense(pixels, imagesNeedGrad, labels, table, kernel, weightsNeedGrad);
  h = leakyRelu(addBias(h, w(first, "bias"))); // [n, 512]
  for (const layer of rest) h = leakyRelu(dense(h, w(layer, "kernel"), w(layer, "bias"), hidden)); // [n, 256]
  return dense(h, w(L.logit, "kernel"), w(L.logit, "bias"), hidden); // [n, 1]
}
