/**
 * What the coordinator and the workers agree on about a model: its parameters in TF.js Layers weight order,
 * laid out in flat Float32Arrays (one for trainable weights, one for BatchNorm moving statistics).
 */
export type ModelName = "cdcgan" | "mlp";

export interface ParamSpec {
  /** The Layers weight name without the model prefix, e.g. "g_dense_1/kernel". */
  name: string;
  shape: number[];
  size: number;
  /** Offset into the flat trainable vector (kind "trainable") or the flat state vector (kind "state"). */
  offset: number;
  kind: "trainable" | "state";
}

/** One BatchNorm layer: its channel count and how many values per example feed each channel's statistics. */
export interface BatchNormSpec {
  channels: number;
  valuesPerExample: number;
}

export interface NetSpec {
  /** Every weight of the Layers model, in `model.weights` order. */
  params: ParamSpec[];
  trainableSize: number;
  /** Size of the state vector: for each BatchNorm layer in order, movingMean[channels] then movingVariance[channels]. */
  stateSize: number;
  batchNorms: BatchNormSpec[];
}

export interface ModelSpecs {
  model: ModelName;
  latentDim: number;
  generator: NetSpec;
  discriminator: NetSpec;
}

export interface NetWeights {
  trainable: Float32Array;
  state: Float32Array;
}

/** The labels and noise of one phase for `count` examples, as drawn by the coordinator. */
export interface GeneratorShard {
  count: number;
  /** count x latentDim, N(0, 1). */
  z: Float32Array;
  labels: Uint8Array;
}

/** A discriminator-phase shard: real images with their labels, plus noise and labels for the fakes. */
export interface DiscriminatorShard {
  count: number;
  /** count x 784 raw dataset bytes (0..255); scaled to [-1, 1] by the worker. */
  real: Uint8Array;
  realLabels: Uint8Array;
  z: Float32Array;
  fakeLabels: Uint8Array;
}

/** Sums over a shard (not means): the coordinator divides by the global batch. */
export interface PhaseResult {
  /** Gradient of the summed loss with respect to the trainable vector of the net being updated. */
  grads: Float32Array;
  lossSum: number;
  /** Sum over the shard of sigmoid(D(x)) for real images (D phase only, else 0). */
  realScoreSum: number;
  /** Sum over the shard of sigmoid(D(G(z))). */
  fakeScoreSum: number;
  /**
   * G phase only: for each generator BatchNorm layer in order, sum[channels] then sumOfSquares[channels] of
   * its input over the shard (count x valuesPerExample values per channel). Same layout as the state vector.
   */
  batchNormSums?: Float32Array;
}
