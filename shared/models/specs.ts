/**
 * The parameter layout of the reference models (MODEL.md), derived by hand so that the coordinator can size
 * and initialize flat weight vectors without building a TF.js model. The order is TF.js Layers `model.weights`
 * order (all trainable weights in layer order, then the non-trainable BatchNorm moving statistics), which
 * `specs_test.ts` checks against the Layers models of `layers.ts`.
 *
 * This file is also the one place for the architectures' constants and layer names, shared by `layers.ts`
 * (the Layers model, saved in checkpoints) and `forward.ts` (the fast plain-ops forward used for training).
 */
import type { Rng } from "../rng.ts";
import type { BatchNormSpec, ModelName, ModelSpecs, NetSpec, NetWeights, ParamSpec } from "./types.ts";

export const MODEL_NAMES: readonly ModelName[] = ["cdcgan", "mlp"];

export const NUM_CLASSES = 10;
export const IMAGE_SIDE = 28;
export const IMAGE_CHANNELS = 1;
export const IMAGE_PIXELS = IMAGE_SIDE * IMAGE_SIDE * IMAGE_CHANNELS;
/** cdcgan's D sees the label as one extra image channel (its 784-value embedding). */
export const LABEL_PLANE_CHANNELS = 1;
/** Dataset bytes map to [-1, 1] as byte / PIXEL_HALF_RANGE - 1, the range of the generator's tanh. */
export const PIXEL_HALF_RANGE = 127.5;

/** Slope of every LeakyReLU (MODEL.md; TF.js's own default is 0.3, so the Layers model sets it explicitly). */
export const LEAKY_ALPHA = 0.2;
/** Keras's BatchNormalization default, used by the Layers model and the plain forward alike. */
export const BN_EPSILON = 1e-3;
/** Keras's default Embedding initializer is uniform(-0.05, 0.05). */
export const EMBEDDING_INIT_LIMIT = 0.05;

/** The generator's label embedding, concatenated with z. */
export const G_EMBEDDING_DIM = 50;

/** cdcgan: a 7x7x128 seed, upsampled twice by 4x4 stride-2 transposed convolutions (7 -> 14 -> 28). */
export const CDCGAN_KERNEL = 4;
export const CDCGAN_STRIDE = 2;
export const CDCGAN_SEED_SIDE = 7;
export const CDCGAN_SEED_CHANNELS = 128;
export const CDCGAN_G_DECONV_FILTERS = 64;
export const CDCGAN_D_CONV_FILTERS: readonly [number, number] = [64, 128];
/** Side of the feature maps after the first stride-2 layer (G's first deconvolution, D's first conv). */
export const CDCGAN_MID_SIDE = IMAGE_SIDE / CDCGAN_STRIDE;

/** mlp: hidden widths of the generator and the discriminator (Mirza & Osindero). */
export const MLP_G_HIDDEN: readonly number[] = [256, 512, 1024];
export const MLP_D_HIDDEN: readonly number[] = [512, 256];

/**
 * Layer names: prefix g_ / d_ so that G's and D's weights never collide in a checkpoint or a browser. Only
 * layers with weights are named here; `layers.ts` names the others.
 */
export const G_EMBEDDING_LAYER = "g_embedding";
export const D_EMBEDDING_LAYER = "d_embedding";

export const CDCGAN_G_LAYERS = {
  embedding: G_EMBEDDING_LAYER,
  dense: "g_dense",
  denseNorm: "g_dense_bn",
  deconv: "g_deconv",
  deconvNorm: "g_deconv_bn",
  output: "g_output",
} as const;

export const CDCGAN_D_LAYERS = {
  embedding: D_EMBEDDING_LAYER,
  conv1: "d_conv1",
  conv2: "d_conv2",
  logit: "d_logit",
} as const;

export const MLP_G_LAYERS = {
  embedding: G_EMBEDDING_LAYER,
  hidden: MLP_G_HIDDEN.map((_, i) => `g_dense${i + 1}`),
  output: "g_output",
} as const;

export const MLP_D_LAYERS = {
  embedding: D_EMBEDDING_LAYER,
  hidden: MLP_D_HIDDEN.map((_, i) => `d_dense${i + 1}`),
  logit: "d_logit",
} as const;

/** A layer that owns weights, in the terms needed to lay them out. */
type WeightedLayer =
  | { type: "embedding"; name: string; inputDim: number; outputDim: number }
  /** Dense ([in, out]) or convolution ([kh, kw, in, out]; transposed: [kh, kw, out, in]) with optional bias. */
  | { type: "kernel"; name: string; kernelShape: number[]; biasSize: number }
  | { type: "batchNorm"; name: string; norm: BatchNormSpec };

const NO_BIAS = 0;

function dense(name: string, inputDim: number, units: number, biasSize = units): WeightedLayer {
  return { type: "kernel", name, kernelShape: [inputDim, units], biasSize };
}

function generatorLayers(model: ModelName, latentDim: number): WeightedLayer[] {
  const embedding: WeightedLayer = {
    type: "embedding",
    name: G_EMBEDDING_LAYER,
    inputDim: NUM_CLASSES,
    outputDim: G_EMBEDDING_DIM,
  };
  const inputDim = latentDim + G_EMBEDDING_DIM;
  if (model === "cdcgan") {
    const seedSize = CDCGAN_SEED_SIDE * CDCGAN_SEED_SIDE * CDCGAN_SEED_CHANNELS;
    const k = CDCGAN_KERNEL;
    return [
      embedding,
      dense(CDCGAN_G_LAYERS.dense, inputDim, seedSize, NO_BIAS), // [n, 150] -> [n, 6272]
      {
        type: "batchNorm",
        name: CDCGAN_G_LAYERS.denseNorm,
        norm: { channels: seedSize, valuesPerExample: 1 },
      },
      {
        // [n, 7, 7, 128] -> [n, 14, 14, 64]; transposed kernels are [kh, kw, out, in]
        type: "kernel",
        name: CDCGAN_G_LAYERS.deconv,
        kernelShape: [k, k, CDCGAN_G_DECONV_FILTERS, CDCGAN_SEED_CHANNELS],
        biasSize: NO_BIAS,
      },
      {
        type: "batchNorm",
        name: CDCGAN_G_LAYERS.deconvNorm,
        norm: { channels: CDCGAN_G_DECONV_FILTERS, valuesPerExample: CDCGAN_MID_SIDE * CDCGAN_MID_SIDE },
      },
      {
        // [n, 14, 14, 64] -> [n, 28, 28, 1]
        type: "kernel",
        name: CDCGAN_G_LAYERS.output,
        kernelShape: [k, k, IMAGE_CHANNELS, CDCGAN_G_DECONV_FILTERS],
        biasSize: IMAGE_CHANNELS,
      },
    ];
  }
  const layers: WeightedLayer[] = [embedding];
  let width = inputDim;
  MLP_G_HIDDEN.forEach((units, i) => {
    layers.push(dense(MLP_G_LAYERS.hidden[i], width, units)); // [n, width] -> [n, units]
    width = units;
  });
  layers.push(dense(MLP_G_LAYERS.output, width, IMAGE_PIXELS)); // [n, 1024] -> [n, 784]
  return layers;
}

function discriminatorLayers(model: ModelName): WeightedLayer[] {
  const embedding: WeightedLayer = {
    type: "embedding",
    name: D_EMBEDDING_LAYER,
    inputDim: NUM_CLASSES,
    outputDim: IMAGE_PIXELS,
  };
  if (model === "cdcgan") {
    const k = CDCGAN_KERNEL;
    const [f1, f2] = CDCGAN_D_CONV_FILTERS;
    const inChannels = IMAGE_CHANNELS + LABEL_PLANE_CHANNELS; // the image and the label's plane
    const finalSide = CDCGAN_MID_SIDE / CDCGAN_STRIDE;
    return [
      embedding,
      { type: "kernel", name: CDCGAN_D_LAYERS.conv1, kernelShape: [k, k, inChannels, f1], biasSize: f1 }, // -> [n, 14, 14, 64]
      { type: "kernel", name: CDCGAN_D_LAYERS.conv2, kernelShape: [k, k, f1, f2], biasSize: f2 }, // -> [n, 7, 7, 128]
      dense(CDCGAN_D_LAYERS.logit, finalSide * finalSide * f2, 1), // [n, 6272] -> [n, 1]
    ];
  }
  const layers: WeightedLayer[] = [embedding];
  let width = 2 * IMAGE_PIXELS; // flattened image ++ label embedding
  MLP_D_HIDDEN.forEach((units, i) => {
    layers.push(dense(MLP_D_LAYERS.hidden[i], width, units));
    width = units;
  });
  layers.push(dense(MLP_D_LAYERS.logit, width, 1)); // [n, 256] -> [n, 1]
  return layers;
}

/**
 * Lays out the weights of `layers` in Layers order, with offsets into the trainable and the state vectors.
 * A Layers model lists all trainable weights first, then all non-trainable ones (the moving statistics),
 * each group in layer order: that is the order of `model.weights`, `setWeights` and saved checkpoints.
 */
function netSpec(layers: WeightedLayer[]): NetSpec {
  const trainable: ParamSpec[] = [];
  const state: ParamSpec[] = [];
  const batchNorms: BatchNormSpec[] = [];
  let trainableSize = 0;
  let stateSize = 0;
  const add = (layer: string, weight: string, shape: number[], kind: ParamSpec["kind"]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const name = `${layer}/${weight}`;
    if (kind === "trainable") {
      trainable.push({ name, shape, size, offset: trainableSize, kind });
      trainableSize += size;
    } else {
      state.push({ name, shape, size, offset: stateSize, kind });
      stateSize += size;
    }
  };
  for (const layer of layers) {
    switch (layer.type) {
      case "embedding":
        add(layer.name, "embeddings", [layer.inputDim, layer.outputDim], "trainable");
        break;
      case "kernel":
        add(layer.name, "kernel", layer.kernelShape, "trainable");
        if (layer.biasSize > 0) add(layer.name, "bias", [layer.biasSize], "trainable");
        break;
      case "batchNorm": {
        const c = [layer.norm.channels];
        add(layer.name, "gamma", c, "trainable");
        add(layer.name, "beta", c, "trainable");
        add(layer.name, "moving_mean", c, "state");
        add(layer.name, "moving_variance", c, "state");
        batchNorms.push(layer.norm);
        break;
      }
    }
  }
  return { params: [...trainable, ...state], trainableSize, stateSize, batchNorms };
}

export function modelSpecs(model: ModelName, latentDim: number): ModelSpecs {
  if (!MODEL_NAMES.includes(model)) {
    throw new RangeError(`model must be one of ${MODEL_NAMES.join(", ")}: current value is ${model}`);
  }
  if (!Number.isInteger(latentDim) || latentDim < 1) {
    throw new RangeError(`latentDim must be a positive integer: current value is ${latentDim}`);
  }
  return {
    model,
    latentDim,
    generator: netSpec(generatorLayers(model, latentDim)),
    discriminator: netSpec(discriminatorLayers(model)),
  };
}

/** The trainable parameters of a net, in order (what `forward.ts` takes as tensors). */
export function trainableParams(net: NetSpec): ParamSpec[] {
  return net.params.filter((p) => p.kind === "trainable");
}

/** The last part of a weight name ("g_dense/kernel" -> "kernel"), which says how Keras initializes it. */
export function weightKind(name: string): string {
  return name.slice(name.lastIndexOf("/") + 1);
}

/** Glorot (Xavier) uniform limit, with Keras's fans: kernels' last two axes are in/out, the rest receptive field. */
function glorotLimit(shape: number[]): number {
  const receptiveField = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  const fanIn = shape[shape.length - 2] * receptiveField;
  const fanOut = shape[shape.length - 1] * receptiveField;
  return Math.sqrt(6 / (fanIn + fanOut));
}

/**
 * Keras's default initial weights, drawn from `rng` in spec order (never from TF.js's random ops), so the
 * coordinator's seed fixes them on every backend.
 */
export function initialWeights(net: NetSpec, rng: Rng): NetWeights {
  const trainable = new Float32Array(net.trainableSize);
  const state = new Float32Array(net.stateSize);
  for (const p of net.params) {
    const out = (p.kind === "trainable" ? trainable : state).subarray(p.offset, p.offset + p.size);
    switch (weightKind(p.name)) {
      case "kernel": {
        const limit = glorotLimit(p.shape);
        rng.fillUniform(out, -limit, limit);
        break;
      }
      case "embeddings":
        rng.fillUniform(out, -EMBEDDING_INIT_LIMIT, EMBEDDING_INIT_LIMIT);
        break;
      case "gamma":
      case "moving_variance":
        out.fill(1);
        break;
      case "bias":
      case "beta":
      case "moving_mean":
        out.fill(0);
        break;
      default:
        throw new Error(`no initializer for weight ${p.name}`);
    }
  }
  return { trainable, state };
}
