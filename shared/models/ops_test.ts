import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-layers"; // registers tfjs-core's gradients, the reference here
import { Rng } from "../rng.ts";
import { assertClose, assertEquals, assertThrows } from "../testing.ts";
import { conv, convKernelGrad, deconv, type GradsFor, matMul } from "./ops.ts";

await tf.setBackend("cpu");

const TOLERANCE = 1e-4;
const STRIDE = 2;

function random(shape: number[], seed: number): tf.Tensor {
  const rng = new Rng(seed);
  return tf.tensor(rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1))), shape);
}

/**
 * Gradients of Σ f(a, b)·weights (a fixed random weighting, so every output element's gradient differs)
 * with respect to a and b, through `custom` and through `stock` (tfjs's own ops and gradients).
 */
function compareGrads(
  custom: (a: tf.Tensor, b: tf.Tensor, which: GradsFor) => tf.Tensor,
  stock: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
  a: tf.Tensor,
  b: tf.Tensor,
): void {
  tf.tidy(() => {
    const weights = random(stock(a, b).shape, 99);
    const loss = (f: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor) => (x: tf.Tensor, y: tf.Tensor) =>
      tf.sum(tf.mul(f(x, y), weights));
    const expected = tf.grads(loss(stock))([a, b]);
    assertClose(custom(a, b, "both").dataSync(), stock(a, b).dataSync(), TOLERANCE, "value");
    const both = tf.grads(loss((x, y) => custom(x, y, "both")))([a, b]);
    assertClose(both[0].dataSync(), expected[0].dataSync(), TOLERANCE, "d first (both)");
    assertClose(both[1].dataSync(), expected[1].dataSync(), TOLERANCE, "d second (both)");
    const first = tf.grad((x) => loss((p, q) => custom(p, q, "first"))(x, b))(a);
    assertClose(first.dataSync(), expected[0].dataSync(), TOLERANCE, "d first (first only)");
    const second = tf.grad((y) => loss((p, q) => custom(p, q, "second"))(a, y))(b);
    assertClose(second.dataSync(), expected[1].dataSync(), TOLERANCE, "d second (second only)");
  });
}

Deno.test("matMul() has tf.matMul's value and gradients, for both inputs or either one", () => {
  compareGrads(
    (a, b, which) => matMul(a as tf.Tensor2D, b as tf.Tensor2D, which),
    (a, b) => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    random([6, 5], 1),
    random([5, 7], 2),
  );
});

Deno.test("conv() has tf.conv2d's value and gradients (stride 2, same, kernel 4)", () => {
  compareGrads(
    (x, k, which) => conv(x as tf.Tensor4D, k as tf.Tensor4D, STRIDE, which),
    (x, k) => tf.conv2d(x as tf.Tensor4D, k as tf.Tensor4D, STRIDE, "same"),
    random([3, 8, 8, 2], 3),
    random([4, 4, 2, 5], 4),
  );
});

Deno.test("deconv() has tf.conv2dTranspose's value and gradients (stride 2, same, kernel 4)", () => {
  compareGrads(
    (x, k, which) => deconv(x as tf.Tensor4D, k as tf.Tensor4D, STRIDE, which),
    (x, k) => {
      const [n, h, w] = (x as tf.Tensor4D).shape;
      const outShape: [number, number, number, number] = [
        n,
        h * STRIDE,
        w * STRIDE,
        (k as tf.Tensor4D).shape[2],
      ];
      return tf.conv2dTranspose(x as tf.Tensor4D, k as tf.Tensor4D, outShape, STRIDE, "same");
    },
    random([3, 4, 4, 5], 5),
    random([4, 4, 2, 5], 6),
  );
});

Deno.test("convKernelGrad() gives the kernel's shape and rejects sides not divisible by the stride", () => {
  tf.tidy(() => {
    const grad = convKernelGrad(
      random([2, 8, 8, 3], 1) as tf.Tensor4D,
      random([2, 4, 4, 6], 2) as tf.Tensor4D,
      4,
      2,
    );
    assertEquals(grad.shape, [4, 4, 3, 6]);
    assertThrows(
      () =>
        convKernelGrad(random([2, 9, 9, 3], 1) as tf.Tensor4D, random([2, 5, 5, 6], 2) as tf.Tensor4D, 4, 2),
      RangeError,
      "divisible by the stride",
    );
  });
});

Deno.test("the custom ops leave no tensors behind, forward and backward", () => {
  const a = random([4, 8, 8, 2], 1);
  const k = random([4, 4, 2, 3], 2);
  const before = tf.memory().numTensors;
  const grads = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
    tf.sum(deconv(conv(x as tf.Tensor4D, y as tf.Tensor4D, STRIDE), y as tf.Tensor4D, STRIDE))
  )([a, k]);
  assertEquals(tf.memory().numTensors, before + grads.length);
  tf.dispose([...grads, a, k]);
});
