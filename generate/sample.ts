/**
 * The images of a generate grid: row r shows labels[r], column c uses noise vector c in every row (as the
 * run's own sample grids do, MODEL.md), so a column keeps its style across labels.
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { GantryError } from "../shared/errors.ts";
import { IMAGE_PIXELS } from "../shared/models/specs.ts";
import { Rng } from "../shared/rng.ts";

/** Images per forward pass: bounds the activations' memory for large grids (cdcgan's are 50 KB per image). */
const PREDICT_BATCH = 256;

/** `count` noise vectors of length `latentDim` from N(0, 1), drawn from `seed`. */
export function drawNoise(seed: number, count: number, latentDim: number): Float32Array {
  return new Rng(seed).fillNormal(new Float32Array(count * latentDim));
}

/**
 * Runs the generator on every (label, noise vector) pair; returns labels.length * count images of 28x28
 * values in [-1, 1], row-major by label then column (the layout `encodeGridPng` takes).
 */
export function generateGrid(
  model: tfl.LayersModel,
  labels: readonly number[],
  noise: Float32Array,
  latentDim: number,
): Float32Array {
  const count = noise.length / latentDim;
  if (!Number.isInteger(count) || count < 1) {
    throw new GantryError(
      "E_CONFIG",
      `noise must hold whole vectors of ${latentDim} values: current length is ${noise.length}`,
    );
  }
  const n = labels.length * count;
  const z = new Float32Array(n * latentDim);
  const labelColumn = new Int32Array(n);
  labels.forEach((label, r) => {
    for (let c = 0; c < count; c++) {
      const i = r * count + c;
      z.set(noise.subarray(c * latentDim, (c + 1) * latentDim), i * latentDim);
      labelColumn[i] = label;
    }
  });
  const images = tf.tidy(() => {
    const inputs = [tf.tensor2d(z, [n, latentDim]), tf.tensor2d(labelColumn, [n, 1], "int32")];
    return model.predict(inputs, { batchSize: PREDICT_BATCH }) as tf.Tensor;
  });
  try {
    const values = images.dataSync() as Float32Array;
    if (values.length !== n * IMAGE_PIXELS) {
      throw new GantryError("E_CHECKPOINT", `generator gave ${values.length} values for ${n} images`);
    }
    return values;
  } finally {
    images.dispose();
  }
}
