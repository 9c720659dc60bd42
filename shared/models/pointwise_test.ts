import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-layers"; // registers tfjs-core's gradients, the reference here
import { Rng } from "../rng.ts";
import { assertClose, assertEquals, assertThrows } from "../testing.ts";
import { addBias, batchNormTraining, channelSum, leakyRelu } from "./pointwise.ts";

await tf.setBackend("cpu");

const TOLERANCE = 1e-4;
const EPSILON = 1e-3;

function random(shape: number[], seed: number, scale = 1): tf.Tensor {
  const rng = new Rng(seed);
  return tf.mul(tf.tensor(rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1))), shape), scale);
}

/** Value and gradients of Σ f(inputs)·weights (a fixed random weighting) with respect to every input. */
function valueAndGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[]): Float32Array[] {
  return tf.tidy(() => {
    const weights = random(f(...inputs).shape, 99);
    const { value, grads } = tf.valueAndGrads((...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), weights)))(
      inputs,
    );
    return [value, ...grads].map((t) => t.dataSync() as Float32Array);
  });
}

function assertSameValueAndGrads(
  custom: (...xs: tf.Tensor[]) => tf.Tensor,
  stock: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
): void {
  const expected = valueAndGrads(stock, inputs);
  const actual = valueAndGrads(custom, inputs);
  expected.forEach((values, i) =>
    assertClose(
      actual[i],
      values,
      TOLERANCE * Math.max(1, ...values.map(Math.abs)),
      i === 0 ? "value" : `d input ${i}`,
    )
  );
}

Deno.test("channelSum() sums every axis but the last", () => {
  tf.tidy(() => {
    const x = random([3, 4, 5, 6], 1);
    assertClose(channelSum(x).dataSync(), tf.sum(x, [0, 1, 2]).dataSync(), TOLERANCE, "4-D");
    assertEquals(channelSum(tf.ones([7, 2])).arraySync(), [7, 7]);
  });
});

Deno.test("addBias() has tf.add's value and gradients for [n, C] and [n, H, W, C] inputs", () => {
  for (const shape of [[5, 3], [2, 4, 4, 3]]) {
    assertSameValueAndGrads(addBias, (x, b) => tf.add(x, b), [random(shape, 1), random([3], 2)]);
  }
});

Deno.test("leakyRelu() has tf.leakyRelu's value and gradient, and needs 0 < alpha < 1", () => {
  const x = random([4, 3, 3, 5], 3);
  assertSameValueAndGrads((v) => leakyRelu(v, 0.2), (v) => tf.leakyRelu(v, 0.2), [x]);
  assertThrows(() => leakyRelu(x, 0), RangeError, "0 < alpha < 1");
});

Deno.test("batchNormTraining() has the value, statistics and gradients of BatchNorm written out in tf ops", () => {
  const stock = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => {
    const axes = x.shape.slice(0, -1).map((_, i) => i);
    const { mean, variance } = tf.moments(x, axes);
    return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, EPSILON))), gamma), beta);
  };
  for (const shape of [[6, 4], [3, 5, 5, 4]]) {
    // An offset and a scale, so that the mean and variance paths of the gradient matter.
    const inputs = [tf.add(random(shape, 4, 3), 2), tf.add(random([4], 5), 1), random([4], 6)];
    assertSameValueAndGrads((x, g, b) => batchNormTraining(x, g, b, EPSILON).y, stock, inputs);
    tf.tidy(() => {
      const { mean, variance } = batchNormTraining(inputs[0], inputs[1], inputs[2], EPSILON);
      const reference = tf.moments(inputs[0], shape.slice(0, -1).map((_, i) => i));
      assertClose(mean.dataSync(), reference.mean.dataSync(), TOLERANCE, "mean");
      assertClose(variance.dataSync(), reference.variance.dataSync(), TOLERANCE, "variance");
    });
  }
});

Deno.test("the pointwise ops leave no tensors behind, forward and backward", () => {
  const x = random([2, 3, 3, 4], 7);
  const g = random([4], 8);
  const b = random([4], 9);
  const before = tf.memory().numTensors;
  const grads = tf.grads((v: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) =>
    tf.sum(leakyRelu(addBias(batchNormTraining(v, gamma, beta, EPSILON).y, beta), 0.2))
  )([x, g, b]);
  assertEquals(tf.memory().numTensors, before + grads.length);
  tf.dispose([...grads, x, g, b]);
});
