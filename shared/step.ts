/**
 * One worker's share of a training step (MODEL.md, "One training step"): gradient SUMS over a shard, which
 * the coordinator adds over workers and divides by the global batch. The single-process and the N-worker
 * paths both run this class, so they compute the same update.
 *
 *   (1) D phase: minimize BCE(D(x, y), 1 - smoothing) + BCE(D(G(z, y_f), y_f), 0) over D's weights.
 *   (2) G phase: minimize BCE(D(G(z', y'), y'), 1) over G's weights (non-saturating loss), through the
 *       updated D.
 *
 * G runs in training mode in both phases (BatchNorm normalizes with the shard's own statistics, which the
 * G phase reports as sums so that the coordinator can update the moving statistics over the global batch).
 * Everything runs inside tf.tidy; the only tensors that outlive a call are the current weights.
 */
import * as tf from "@tensorflow/tfjs-core";
// tfjs-core alone registers no gradients; the tfjs-layers bundle registers all of tfjs-core's (into the global
// registry that every copy of tfjs shares). Cheap (tens of ms), and checkpoints need tfjs-layers anyway.
import "@tensorflow/tfjs-layers";
import { discriminatorForward, generatorForward, oneHotLabels, trainingParts } from "./models/forward.ts";
import { releaseReadCopy } from "./backends/read_copy.ts";
import { IMAGE_CHANNELS, IMAGE_PIXELS, IMAGE_SIDE, PIXEL_HALF_RANGE } from "./models/specs.ts";
import type { DiscriminatorShard, GeneratorShard, ModelSpecs, PhaseResult } from "./models/types.ts";

/**
 * Σ BCE(sigmoid(logits), targets) = Σ softplus(x) - x·t (softplus is the backends' stable kernel), with
 * the closed-form gradient (sigmoid(x) - t)·dy: three kernels instead of autodiff through the formula's
 * eight (on tensorflow each op costs ~40 µs however small its tensor).
 */
function sigmoidCrossEntropySum(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  const op = tf.customGrad((...args) => {
    const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([x, targets]); // the targets are constants, kept with x for the backward pass
    return {
      value: tf.sum(tf.sub(tf.softplus(x), tf.mul(x, targets))),
      gradFunc: (dy: tf.Tensor, [sx, st]: tf.Tensor[]) => tf.mul(dy, tf.sub(tf.sigmoid(sx), st)),
    };
  });
  return op(logits) as tf.Scalar;
}

/** Dataset bytes 0..255 to pixels in [-1, 1], as [n, 28, 28, 1]. */
function imagesFromBytes(bytes: Uint8Array, count: number): tf.Tensor4D {
  const pixels = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) pixels[i] = bytes[i] / PIXEL_HALF_RANGE - 1;
  return tf.tensor4d(pixels, [count, IMAGE_SIDE, IMAGE_SIDE, IMAGE_CHANNELS]);
}

/**
 * The values of tensors made in a tidy, which are then disposed. Typed arrays are read outside the tidy:
 * tf.tidy walks every element of what it returns, looking for tensors (seconds for a 1.5M-value gradient).
 */
function readAndDispose(...tensors: tf.Tensor[]): Float32Array[] {
  try {
    return tensors.map((t) => t.dataSync() as Float32Array);
  } finally {
    tf.dispose(tensors);
  }
}

/**
 * One flat Float32Array from gradient tensors in spec order (the trainable vector's layout): read one by
 * one into place rather than concatenated by the backend (as many copies, fewer ops).
 */
function readFlat(tensors: tf.Tensor[], size: number, into?: Float32Array): Float32Array {
  if (into && into.length !== size) {
    throw new Error(`gradient target holds ${into.length} values, not ${size}`);
  }
  const flat = into ?? new Float32Array(size);
  let offset = 0;
  for (const t of tensors) {
    const values = t.dataSync() as Float32Array;
    flat.set(values, offset);
    releaseReadCopy(values);
    offset += t.size;
  }
  if (offset !== size) throw new Error(`gradients hold ${offset} values, not ${size}`);
  return flat;
}

/** The flat gradient and the sums of a phase's outputs, which are then disposed. */
function readPhase(
  out: { grads: tf.Tensor[]; sums: tf.Tensor1D },
  size: number,
  into?: Float32Array,
): [Float32Array, Float32Array] {
  try {
    return [readFlat(out.grads, size, into), out.sums.dataSync() as Float32Array];
  } finally {
    tf.dispose([...out.grads, out.sums]);
  }
}

function checkCount(what: string, count: number): void {
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`${what} count must be a positive integer: current value is ${count}`);
  }
}

function checkLength(what: string, actual: number, expected: number): void {
  if (actual !== expected) {
    throw new RangeError(`${what} must have ${expected} values: current length is ${actual}`);
  }
}

/** Two arrays handed out in turn, each allocated once (again only if the size asked for changes). */
class StagingPair {
  #arrays: [Float32Array, Float32Array] = [new Float32Array(0), new Float32Array(0)];
  #turn = 0;

  next(size: number): Float32Array {
    this.#turn ^= 1;
    if (this.#arrays[this.#turn].length !== size) this.#arrays[this.#turn] = new Float32Array(size);
    return this.#arrays[this.#turn];
  }
}

export class StepComputer {
  readonly specs: ModelSpecs;
  readonly labelSmoothing: number;
  #generator: tf.Tensor[] | null = null;
  #discriminator: tf.Tensor[] | null = null;
  /**
   * Where each net's weights are copied before they become tensors, two per net used in turn, allocated once:
   * a fresh copy per install was megabytes of garbage a step (see releaseReadCopy). Two, because a backend may
   * keep the array it is given (cpu for the tensor's life, tensorflow until its first use), and the previous
   * install's tensors live until the new ones exist.
   */
  #staging = { generator: new StagingPair(), discriminator: new StagingPair() };

  constructor(specs: ModelSpecs, labelSmoothing: number) {
    if (!(labelSmoothing >= 0 && labelSmoothing < 1)) {
      throw new RangeError(`labelSmoothing must be in [0, 1): current value is ${labelSmoothing}`);
    }
    this.specs = specs;
    this.labelSmoothing = labelSmoothing;
  }

  setGeneratorWeights(trainable: Float32Array): void {
    const next = this.#paramTensors("generator", trainable);
    if (this.#generator) tf.dispose(this.#generator);
    this.#generator = next;
  }

  setDiscriminatorWeights(trainable: Float32Array): void {
    const next = this.#paramTensors("discriminator", trainable);
    if (this.#discriminator) tf.dispose(this.#discriminator);
    this.#discriminator = next;
  }

  /**
   * (1) Gradient sums of D's loss on real images (target 1 - smoothing) and on G's fakes (target 0), read
   * into `gradsInto` when given (a worker's shared memory: the coordinator reads them there).
   */
  discriminatorPhase(shard: DiscriminatorShard, gradsInto?: Float32Array): PhaseResult {
    const n = shard.count;
    checkCount("discriminator shard", n);
    checkLength("real", shard.real.length, n * IMAGE_PIXELS);
    checkLength("realLabels", shard.realLabels.length, n);
    checkLength("z", shard.z.length, n * this.specs.latentDim);
    checkLength("fakeLabels", shard.fakeLabels.length, n);
    const g = this.#weights("generator", this.#generator);
    const d = this.#weights("discriminator", this.#discriminator);
    let logits: tf.Tensor2D | undefined; // kept out of the gradient's tidy, disposed below
    let out: { grads: tf.Tensor[]; sums: tf.Tensor1D };
    try {
      out = tf.tidy((): { grads: tf.Tensor[]; sums: tf.Tensor1D } => {
        const fakeLabels = oneHotLabels(shard.fakeLabels);
        // Outside the gradient function: no gradient flows into G.
        const fake =
          generatorForward(this.specs, g, this.#z(shard.z, n), fakeLabels, { training: true }).images;
        // D has no BatchNorm, so one pass over real ++ fake equals two passes, at half the kernel launches.
        const images = tf.concat([imagesFromBytes(shard.real, n), fake]);
        const labels = tf.concat([oneHotLabels(shard.realLabels), fakeLabels]);
        const targets = tf.concat([tf.fill([n, 1], 1 - this.labelSmoothing), tf.zeros([n, 1])]);
        const { value, grads } = tf.valueAndGrads((...params: tf.Tensor[]) => {
          logits = tf.keep(
            discriminatorForward(this.specs, params, images, labels, { imagesNeedGrad: false }),
          ); // [2n, 1]
          return sigmoidCrossEntropySum(logits, targets);
        })(d);
        const scoreSums = tf.sum<tf.Tensor1D>(tf.reshape(tf.sigmoid(logits!), [2, n]), 1); // [real, fake]
        return {
          grads,
          sums: tf.concat<tf.Tensor1D>([tf.reshape<tf.Rank.R1>(value, [1]), scoreSums]),
        };
      });
    } finally {
      logits?.dispose();
    }
    const [grads, [lossSum, realScoreSum, fakeScoreSum]] = readPhase(
      out,
      this.specs.discriminator.trainableSize,
      gradsInto,
    );
    return { grads, lossSum, realScoreSum, fakeScoreSum };
  }

  /** (2) Gradient sums of G's non-saturating loss through the current D, plus G's BatchNorm input sums. */
  generatorPhase(shard: GeneratorShard, gradsInto?: Float32Array): PhaseResult {
    const n = shard.count;
    checkCount("generator shard", n);
    checkLength("z", shard.z.length, n * this.specs.latentDim);
    checkLength("labels", shard.labels.length, n);
    const g = this.#weights("generator", this.#generator);
    const d = this.#weights("discriminator", this.#discriminator);
    let sides: tf.Tensor1D | undefined; // [fakeScoreSum, ...batchNormSums], kept out of the gradient's tidy
    let out: { grads: tf.Tensor[]; sums: tf.Tensor1D };
    try {
      out = tf.tidy((): { grads: tf.Tensor[]; sums: tf.Tensor1D } => {
        const z = this.#z(shard.z, n);
        const labels = oneHotLabels(shard.labels);
        const ones = tf.ones([n, 1]);
        const { value, grads } = tf.valueAndGrads((...params: tf.Tensor[]) => {
          const { images, batchStats } = generatorForward(this.specs, params, z, labels, { training: true });
          // D's weights are constants here: only the gradient with respect to the images flows back.
          const logits = discriminatorForward(this.specs, d, images, labels, { weightsNeedGrad: false }); // [n, 1]
          // Shard sums from the batch statistics: Σx = m·mean, Σx² = m·(variance + mean²), m values/channel.
          const normSums = batchStats.flatMap(({ mean, variance }, i) => {
            const m = n * this.specs.generator.batchNorms[i].valuesPerExample;
            return [tf.mul<tf.Tensor1D>(mean, m), tf.mul<tf.Tensor1D>(tf.add(variance, tf.square(mean)), m)];
          });
          sides = tf.keep(
            tf.concat<tf.Tensor1D>([tf.reshape<tf.Rank.R1>(tf.sum(tf.sigmoid(logits)), [1]), ...normSums]),
          );
          return sigmoidCrossEntropySum(logits, ones);
        })(g);
        return {
          grads,
          sums: tf.concat<tf.Tensor1D>([tf.reshape<tf.Rank.R1>(value, [1]), sides!]),
        };
      });
    } finally {
      sides?.dispose();
    }
    const [grads, sums] = readPhase(out, this.specs.generator.trainableSize, gradsInto);
    return {
      grads,
      lossSum: sums[0],
      realScoreSum: 0,
      fakeScoreSum: sums[1],
      batchNormSums: sums.slice(2),
    };
  }

  /**
   * G in inference mode (BatchNorm with the moving statistics in `state`), for sample grids: count x 784
   * pixels in [-1, 1].
   */
  generateImages(z: Float32Array, labels: Uint8Array, state: Float32Array): Float32Array {
    const n = labels.length;
    checkCount("generateImages", n);
    checkLength("z", z.length, n * this.specs.latentDim);
    checkLength("state", state.length, this.specs.generator.stateSize);
    const g = this.#weights("generator", this.#generator);
    const images = tf.tidy(() => {
      const moving = this.specs.generator.params
        .filter((p) => p.kind === "state")
        .map((p) => tf.tensor1d(state.slice(p.offset, p.offset + p.size)));
      const mode = { training: false, state: moving } as const;
      return generatorForward(this.specs, g, this.#z(z, n), oneHotLabels(labels), mode).images;
    });
    return readAndDispose(images)[0];
  }

  /** Frees the weight tensors; the computer cannot be used again until weights are set. */
  dispose(): void {
    if (this.#generator) tf.dispose(this.#generator);
    if (this.#discriminator) tf.dispose(this.#discriminator);
    this.#generator = null;
    this.#discriminator = null;
  }

  #z(z: Float32Array, n: number): tf.Tensor2D {
    return tf.tensor2d(z, [n, this.specs.latentDim]);
  }

  #weights(net: string, weights: tf.Tensor[] | null): tf.Tensor[] {
    if (weights === null) throw new Error(`${net} weights are not set`);
    return weights;
  }

  /**
   * The tensors of a net's trainable vector in the forward passes' fastest layout (trainingParts: a kernel
   * that a layer splits comes as its row blocks). The values are copied: backends such as cpu keep the array
   * they are given, and the caller's vector (say, the coordinator's master weights) changes under Adam.
   */
  #paramTensors(net: "generator" | "discriminator", trainable: Float32Array): tf.Tensor[] {
    checkLength(`${net} weights`, trainable.length, this.specs[net].trainableSize);
    const copy = this.#staging[net].next(trainable.length);
    copy.set(trainable);
    return trainingParts(this.specs, net).map((p) =>
      tf.tensor(copy.subarray(p.offset, p.offset + p.size), p.shape)
    );
  }
}
