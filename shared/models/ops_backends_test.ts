/**
 * The custom ops take different paths per backend (phase-split transposed convolutions and TensorFlow's
 * LeakyReluGrad on tensorflow; prelu, matMul channel sums and the wasm kernels on wasm), so each backend's
 * values and gradients are checked against the cpu backend's. Backends that cannot load here are skipped.
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backends/select.ts";
import { nativeBindingMissing } from "../backends/tfjs_node_package.ts";
import { Rng } from "../rng.ts";
import { assertClose } from "../testing.ts";
import { conv, deconv, matMul } from "./ops.ts";
import { addBias, batchNormTraining, channelSum, leakyRelu } from "./pointwise.ts";

/** Largest allowed |backend − cpu|, relative to the largest |cpu| value of each result. */
const RELATIVE_TOLERANCE = 1e-4;

function random(shape: number[], seed: number): tf.Tensor {
  const rng = new Rng(seed);
  return tf.tensor(rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1))), shape);
}

/** Values and gradients of Σ f(inputs)·weights with respect to every input, as named arrays. */
function valueAndGrads(
  name: string,
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  shapes: number[][],
  seed: number,
): Array<[string, Float32Array]> {
  return tf.tidy(() => {
    const inputs = shapes.map((shape, i) => random(shape, seed + i));
    const weights = random(f(...inputs).shape, seed + 99);
    const { value, grads } = tf.valueAndGrads((...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), weights)))(
      inputs,
    );
    return [value, ...grads].map((
      t,
      i,
    ) => [`${name} ${i === 0 ? "value" : `d${i}`}`, t.dataSync() as Float32Array]);
  });
}

/** A training-mode BatchNorm's batch statistics (which the G phase reports for the moving averages). */
function batchStats(name: string, shape: number[], seed: number): Array<[string, Float32Array]> {
  return tf.tidy(() => {
    const channels = shape[shape.length - 1];
    const { mean, variance } = batchNormTraining(
      random(shape, seed),
      random([channels], seed + 1),
      random([
        channels,
      ], seed + 2),
      1e-3,
    );
    return [[`${name} mean`, mean.dataSync() as Float32Array], [
      `${name} variance`,
      variance.dataSync() as Float32Array,
    ]];
  });
}

/** Every op on the shapes that select its backend-specific paths, small enough for the cpu reference. */
function computeAll(): Array<[string, Float32Array]> {
  return [
    ...batchStats("batchNorm 4-D", [3, 4, 4, 5], 23),
    ...batchStats("batchNorm 2-D", [6, 5], 26),
    ...valueAndGrads("matMul", (a, b) => matMul(a as tf.Tensor2D, b as tf.Tensor2D), [[6, 5], [5, 7]], 1),
    ...valueAndGrads("conv", (x, k) => conv(x as tf.Tensor4D, k as tf.Tensor4D, 2), [[2, 8, 8, 3], [
      4,
      4,
      3,
      16,
    ]], 3),
    // 16 output channels: split into four phase convolutions on tensorflow and wasm.
    ...valueAndGrads("deconv 16", (x, k) => deconv(x as tf.Tensor4D, k as tf.Tensor4D, 2), [[2, 5, 5, 8], [
      4,
      4,
      16,
      8,
    ]], 5),
    // 1 output channel: TensorFlow's own kernel, one combined convolution on wasm.
    ...valueAndGrads("deconv 1", (x, k) => deconv(x as tf.Tensor4D, k as tf.Tensor4D, 2), [[2, 7, 7, 8], [
      4,
      4,
      1,
      8,
    ]], 7),
    ...valueAndGrads("leakyRelu", (x) => leakyRelu(x, 0.2), [[3, 4, 4, 5]], 11),
    ...valueAndGrads("addBias", (x, b) => addBias(x, b), [[3, 4, 4, 5], [5]], 13),
    ...valueAndGrads("channelSum", (x) => channelSum(x), [[3, 4, 4, 5]], 15),
    ...valueAndGrads("batchNorm 4-D", (x, g, b) => batchNormTraining(x, g, b, 1e-3).y, [[3, 4, 4, 5], [5], [
      5,
    ]], 17),
    ...valueAndGrads(
      "batchNorm 2-D",
      (x, g, b) => batchNormTraining(x, g, b, 1e-3).y,
      [[6, 5], [5], [5]],
      20,
    ),
  ];
}

async function computeOn(backend: "cpu" | "wasm" | "tensorflow"): Promise<Array<[string, Float32Array]>> {
  await initBackend({ backend, threads: 1, log: () => {} });
  const before = tf.memory().numTensors;
  const results = computeAll();
  if (tf.memory().numTensors !== before) throw new Error(`${backend}: the ops left tensors behind`);
  return results;
}

const NATIVE_MISSING = nativeBindingMissing();

for (const backend of ["wasm", "tensorflow"] as const) {
  Deno.test({
    name: `the custom ops' values and gradients on ${backend} equal cpu's`,
    ignore: backend === "tensorflow" && NATIVE_MISSING !== undefined,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const expected = await computeOn("cpu");
      const actual = await computeOn(backend);
      expected.forEach(([what, values], i) => {
        const scale = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        assertClose(actual[i][1], values, RELATIVE_TOLERANCE * Math.max(scale, 1e-6), `${backend} ${what}`);
      });
      await tf.setBackend("cpu");
    },
  });
}
