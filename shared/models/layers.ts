/**
 * The reference models (MODEL.md) as TF.js Layers models: what checkpoints are saved as and what a browser
 * loads with `tf.loadLayersModel`, so only standard layers are used. Training does not run these (see
 * `forward.ts`); they define the saved format and serve as the reference the plain forward is tested against.
 *
 * Inputs: G takes [z: [n, latentDim], label: [n, 1]]; D takes [image: [n, 28, 28, 1], label: [n, 1]] and
 * outputs a logit [n, 1]. Labels may be int32 or float32 (Embedding casts them).
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import {
  BN_EPSILON,
  CDCGAN_D_CONV_FILTERS,
  CDCGAN_D_LAYERS,
  CDCGAN_G_DECONV_FILTERS,
  CDCGAN_G_LAYERS,
  CDCGAN_KERNEL,
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
  MLP_D_HIDDEN,
  MLP_D_LAYERS,
  MLP_G_HIDDEN,
  MLP_G_LAYERS,
  NUM_CLASSES,
} from "./specs.ts";
import type { ModelName, NetSpec, NetWeights } from "./types.ts";

type Symbolic = tfl.SymbolicTensor;

/** `layer.apply` on one symbolic tensor (or a list, for Concatenate), typed as the one output it gives. */
function apply(layer: tfl.layers.Layer, input: Symbolic | Symbolic[]): Symbolic {
  return layer.apply(input) as Symbolic;
}

function leakyRelu(name: string): tfl.layers.Layer {
  return tfl.layers.leakyReLU({ alpha: LEAKY_ALPHA, name });
}

function batchNorm(name: string): tfl.layers.Layer {
  return tfl.layers.batchNormalization({ epsilon: BN_EPSILON, name });
}

function labelInput(name: string): Symbolic {
  return tfl.input({ shape: [1], dtype: "int32", name });
}

export function buildGenerator(model: ModelName, latentDim: number): tfl.LayersModel {
  const z = tfl.input({ shape: [latentDim], name: "g_z" }); // [n, latentDim]
  const label = labelInput("g_label"); // [n, 1]
  const embedded = apply(
    tfl.layers.embedding({
      inputDim: NUM_CLASSES,
      outputDim: G_EMBEDDING_DIM,
      name: G_EMBEDDING_LAYER,
    }),
    label,
  ); // [n, 1, 50]
  const labelCode = apply(tfl.layers.flatten({ name: "g_embedding_flat" }), embedded); // [n, 50]
  let h = apply(tfl.layers.concatenate({ name: "g_concat" }), [z, labelCode]); // [n, latentDim + 50]
  let image: Symbolic;
  if (model === "cdcgan") {
    const seedSize = CDCGAN_SEED_SIDE * CDCGAN_SEED_SIDE * CDCGAN_SEED_CHANNELS;
    h = apply(tfl.layers.dense({ units: seedSize, useBias: false, name: CDCGAN_G_LAYERS.dense }), h); // [n, 6272]
    h = apply(batchNorm(CDCGAN_G_LAYERS.denseNorm), h); // [n, 6272]
    h = apply(leakyRelu("g_dense_lrelu"), h); // [n, 6272]
    h = apply(
      tfl.layers.reshape({
        targetShape: [CDCGAN_SEED_SIDE, CDCGAN_SEED_SIDE, CDCGAN_SEED_CHANNELS],
        name: "g_seed",
      }),
      h,
    ); // [n, 7, 7, 128]
    h = apply(
      tfl.layers.conv2dTranspose({
        filters: CDCGAN_G_DECONV_FILTERS,
        kernelSize: CDCGAN_KERNEL,
        strides: CDCGAN_STRIDE,
        padding: "same",
        useBias: false,
        name: CDCGAN_G_LAYERS.deconv,
      }),
      h,
    ); // [n, 14, 14, 64]
    h = apply(batchNorm(CDCGAN_G_LAYERS.deconvNorm), h); // [n, 14, 14, 64]
    h = apply(leakyRelu("g_deconv_lrelu"), h); // [n, 14, 14, 64]
    image = apply(
      tfl.layers.conv2dTranspose({
        filters: IMAGE_CHANNELS,
        kernelSize: CDCGAN_KERNEL,
        strides: CDCGAN_STRIDE,
        padding: "same",
        activation: "tanh",
        name: CDCGAN_G_LAYERS.output,
      }),
      h,
    ); // [n, 28, 28, 1]
  } else {
    MLP_G_HIDDEN.forEach((units, i) => {
      h = apply(tfl.layers.dense({ units, name: MLP_G_LAYERS.hidden[i] }), h); // [n, units]
      h = apply(leakyRelu(`${MLP_G_LAYERS.hidden[i]}_lrelu`), h); // [n, units]
    });
    h = apply(tfl.layers.dense({ units: IMAGE_PIXELS, activation: "tanh", name: MLP_G_LAYERS.output }), h); // [n, 784]
    image = apply(
      tfl.layers.reshape({ targetShape: [IMAGE_SIDE, IMAGE_SIDE, IMAGE_CHANNELS], name: "g_image" }),
      h,
    ); // [n, 28, 28, 1]
  }
  return tfl.model({ inputs: [z, label], outputs: image, name: `${model}_generator` });
}

export function buildDiscriminator(model: ModelName): tfl.LayersModel {
  const image = tfl.input({ shape: [IMAGE_SIDE, IMAGE_SIDE, IMAGE_CHANNELS], name: "d_image" }); // [n, 28, 28, 1]
  const label = labelInput("d_label"); // [n, 1]
  const embedded = apply(
    tfl.layers.embedding({ inputDim: NUM_CLASSES, outputDim: IMAGE_PIXELS, name: D_EMBEDDING_LAYER }),
    label,
  ); // [n, 1, 784]
  let h: Symbolic;
  if (model === "cdcgan") {
    const labelPlane = apply(
      tfl.layers.reshape({
        targetShape: [IMAGE_SIDE, IMAGE_SIDE, LABEL_PLANE_CHANNELS],
        name: "d_label_plane",
      }),
      embedded,
    ); // [n, 28, 28, 1]
    h = apply(tfl.layers.concatenate({ name: "d_concat" }), [image, labelPlane]); // [n, 28, 28, 2]
    const conv = (filters: number, name: string) =>
      tfl.layers.conv2d({
        filters,
        kernelSize: CDCGAN_KERNEL,
        strides: CDCGAN_STRIDE,
        padding: "same",
        name,
      });
    h = apply(conv(CDCGAN_D_CONV_FILTERS[0], CDCGAN_D_LAYERS.conv1), h); // [n, 14, 14, 64]
    h = apply(leakyRelu("d_conv1_lrelu"), h); // [n, 14, 14, 64]
    h = apply(conv(CDCGAN_D_CONV_FILTERS[1], CDCGAN_D_LAYERS.conv2), h); // [n, 7, 7, 128]
    h = apply(leakyRelu("d_conv2_lrelu"), h); // [n, 7, 7, 128]
    h = apply(tfl.layers.flatten({ name: "d_flatten" }), h); // [n, 6272]
    h = apply(tfl.layers.dense({ units: 1, name: CDCGAN_D_LAYERS.logit }), h); // [n, 1]
  } else {
    const pixels = apply(tfl.layers.flatten({ name: "d_image_flat" }), image); // [n, 784]
    const labelCode = apply(tfl.layers.flatten({ name: "d_embedding_flat" }), embedded); // [n, 784]
    h = apply(tfl.layers.concatenate({ name: "d_concat" }), [pixels, labelCode]); // [n, 1568]
    MLP_D_HIDDEN.forEach((units, i) => {
      h = apply(tfl.layers.dense({ units, name: MLP_D_LAYERS.hidden[i] }), h); // [n, units]
      h = apply(leakyRelu(`${MLP_D_LAYERS.hidden[i]}_lrelu`), h); // [n, units]
    });
    h = apply(tfl.layers.dense({ units: 1, name: MLP_D_LAYERS.logit }), h); // [n, 1]
  }
  return tfl.model({ inputs: [image, label], outputs: h, name: `${model}_discriminator` });
}

/** Checks that `model`'s weights are `net`'s params, in order and shape; throws naming the first mismatch. */
function checkLayout(model: tfl.LayersModel, net: NetSpec): void {
  const weights = model.weights;
  if (weights.length !== net.params.length) {
    throw new Error(`${model.name} has ${weights.length} weights, the spec ${net.params.length}`);
  }
  net.params.forEach((p, i) => {
    const w = weights[i];
    if (w.originalName !== p.name || w.shape.join() !== p.shape.join()) {
      throw new Error(
        `${model.name} weight ${i} is ${w.originalName} [${w.shape}], the spec ${p.name} [${p.shape}]`,
      );
    }
  });
}

/** Loads flat weights (trainable and BatchNorm state) into a Layers model built for the same spec. */
export function setLayersWeights(model: tfl.LayersModel, net: NetSpec, w: NetWeights): void {
  checkLayout(model, net);
  if (w.trainable.length !== net.trainableSize || w.state.length !== net.stateSize) {
    throw new RangeError(
      `weights must have ${net.trainableSize} trainable and ${net.stateSize} state values: ` +
        `current lengths are ${w.trainable.length} and ${w.state.length}`,
    );
  }
  const tensors = net.params.map((p) => {
    const source = p.kind === "trainable" ? w.trainable : w.state;
    // A copy: on some backends the variable would otherwise keep sharing the caller's array.
    return tf.tensor(source.slice(p.offset, p.offset + p.size), p.shape, "float32");
  });
  try {
    model.setWeights(tensors);
  } finally {
    tf.dispose(tensors);
  }
}

/** The inverse of `setLayersWeights`: a Layers model's weights (e.g. a loaded checkpoint) as flat vectors. */
export function getLayersWeights(model: tfl.LayersModel, net: NetSpec): NetWeights {
  checkLayout(model, net);
  const trainable = new Float32Array(net.trainableSize);
  const state = new Float32Array(net.stateSize);
  // getWeights() returns the variables themselves, not copies: read them, never dispose them.
  model.getWeights().forEach((value, i) => {
    const p = net.params[i];
    (p.kind === "trainable" ? trainable : state).set(value.dataSync() as Float32Array, p.offset);
  });
  return { trainable, state };
}
