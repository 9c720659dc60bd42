/**
 * The models' elementwise and per-channel ops (bias, LeakyReLU, training-mode BatchNorm) with custom
 * gradients that take fewer and faster kernels than autodiff through their parts:
 *
 * - per-channel sums (bias and BatchNorm gradients, batch statistics) are, on wasm, a matMul with a column
 *   of ones (see channelSum), 4x faster than wasm's Sum over the outer axes;
 * - LeakyReLU runs on wasm as XNNPACK's PReLU (6x faster than wasm's LeakyRelu kernel); its gradient is
 *   one TensorFlow LeakyReluGrad on tensorflow and dy · step(y, alpha) elsewhere, against three kernels
 *   (Greater, Multiply, Select) for the stock gradient;
 * - BatchNorm's gradient is the closed form, six elementwise kernels and two channel sums, against about
 *   twice that, with broadcasting reductions, through autodiff.
 *
 * What a gradient reads goes through customGrad's save: tf.grads disposes the forward pass's tensors before
 * the backward pass, except the saved copies.
 */
import * as tf from "@tensorflow/tfjs-core";
import { fusedBatchNorm, fusedBatchNormGrad, leakyReluGrad } from "./native_ops.ts";
import { backendIs } from "./ops.ts";

/**
 * Σ over every axis but the last: [..., C] -> [C]. On wasm, xᵀ·1 through BatchMatMul's transposed path
 * (1.2 ms for [12544, 64], against 5.3 ms for Sum, which transposes first). Not 1ᵀ·x: XNNPACK would pack
 * x as weights (9 ms), and tfjs-backend-wasm 4.22 caches packed weights by data id without the shape, so a
 * gradient reshaped differently as another matMul's weights would then be multiplied wrongly.
 */
export function channelSum(x: tf.Tensor): tf.Tensor1D {
  const channels = x.shape[x.shape.length - 1];
  if (backendIs("wasm")) {
    const rows = x.size / channels;
    const columns = tf.reshape<tf.Rank.R2>(x, [rows, channels]);
    return tf.reshape(tf.matMul(columns, tf.ones([rows, 1]), true, false), [channels]);
  }
  return tf.sum(x, x.shape.slice(0, -1).map((_, i) => i));
}

/** x + bias for x [..., C] and bias [C]; the bias gradient is a channel sum. */
export function addBias<T extends tf.Tensor>(x: T, bias: tf.Tensor): T {
  const op = tf.customGrad((...args) => {
    const [input, b] = args as [tf.Tensor, tf.Tensor];
    return {
      value: tf.add(input, b),
      gradFunc: (dy: tf.Tensor) => [dy, channelSum(dy)],
    };
  });
  return op(x, bias) as T;
}

/** tf.leakyRelu(x, alpha) for 0 < alpha < 1 (the output then has the input's sign: it is the mask). */
export function leakyRelu<T extends tf.Tensor>(x: T, alpha: number): T {
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`leakyRelu needs 0 < alpha < 1: got ${alpha}`);
  const op = tf.customGrad((...args) => {
    const [input, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const y = backendIs("wasm")
      ? tf.prelu(input, tf.fill([input.shape[input.shape.length - 1]], alpha))
      : tf.leakyRelu(input, alpha);
    save([y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, [mask]: tf.Tensor[]) =>
        backendIs("tensorflow") ? leakyReluGrad(dy, mask, alpha) : tf.mul(dy, tf.step(mask, alpha)),
    };
  });
  return op(x) as T;
}

/** A training-mode BatchNorm's output and the batch statistics it normalized with (biased variance). */
export interface BatchNormOutput<T extends tf.Tensor> {
  y: T;
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

/**
 * BatchNorm over every axis but the last with the batch's own statistics:
 * y = (x - mean) / sqrt(variance + epsilon) · gamma + beta. With x̂ the normalized input, m values per
 * channel and s = gamma / sqrt(variance + epsilon), the gradients are dbeta = Σ dy, dgamma = Σ dy·x̂ and
 * dx = s·dy - x̂·(s·dgamma/m) - s·dbeta/m (the last two terms are the paths through mean and variance).
 *
 * The statistics and x̂ are computed outside the custom op (which saves what its gradient needs): they reach
 * the caller as ordinary tensors, and the tape, which sees no path from them to y, does no work for them.
 */
export function batchNormTraining<T extends tf.Tensor>(
  x: T,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  epsilon: number,
): BatchNormOutput<T> {
  if (backendIs("tensorflow")) return nativeBatchNormTraining(x, gamma, beta, epsilon);
  const channels = x.shape[x.shape.length - 1];
  const m = x.size / channels;
  const mean = tf.div<tf.Tensor1D>(channelSum(x), m);
  const centered = tf.sub(x, mean);
  const variance = tf.div<tf.Tensor1D>(channelSum(tf.square(centered)), m);
  const invStd = tf.rsqrt(tf.add(variance, epsilon)); // [C]
  const normalized = tf.mul(centered, invStd);
  const op = tf.customGrad((...args) => {
    const [, g, b, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([normalized, invStd, g]);
    return {
      value: tf.add(tf.mul(normalized, g), b),
      gradFunc: (dy: tf.Tensor, [xHat, inv, g]: tf.Tensor[]) => {
        const dBeta = channelSum(dy);
        const dGamma = channelSum(tf.mul(dy, xHat));
        const scale = tf.mul(g, inv); // [C]
        const perX = tf.div(tf.mul(scale, dGamma), m); // [C]
        const shift = tf.div(tf.mul(scale, dBeta), m); // [C]
        const dx = tf.sub(tf.sub(tf.mul(dy, scale), tf.mul(xHat, perX)), shift);
        return [dx, dGamma, dBeta];
      },
    };
  });
  return { y: op(x, gamma, beta) as T, mean, variance };
}

/**
 * batchNormTraining on tensorflow: TensorFlow's FusedBatchNormV3 and FusedBatchNormGradV3, one kernel each
 * way (~7 against ~35 ms CPU for G's [64, 14, 14, 64] layer, forward and backward). They take 4-D inputs, so
 * [n, C] goes through as [n, 1, 1, C]. The forward kernel runs before the custom op, which returns its
 * output as its value: so the statistics it also computes reach the caller as ordinary tensors.
 */
function nativeBatchNormTraining<T extends tf.Tensor>(
  x: T,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  epsilon: number,
): BatchNormOutput<T> {
  const channels = x.shape[x.shape.length - 1];
  const x4 = x.rank === 4 ? x as unknown as tf.Tensor4D : tf.reshape<tf.Rank.R4>(x, [-1, 1, 1, channels]);
  const forward = fusedBatchNorm(x4, gamma, beta, epsilon);
  const op = tf.customGrad((...args) => {
    const [input, g, , save] = args as [tf.Tensor4D, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([input, g, ...forward.reserve]);
    return {
      value: forward.y,
      gradFunc: (dy: tf.Tensor4D, [sx, sg, r1, r2, r3]: tf.Tensor[]) =>
        fusedBatchNormGrad(dy, sx as tf.Tensor4D, sg, { reserve: [r1, r2, r3] }, epsilon),
    };
  });
  const y4 = op(x4, gamma, beta) as tf.Tensor4D;
  const m = x.size / channels;
  return {
    y: (x.rank === 4 ? y4 : tf.reshape(y4, x.shape)) as T,
    mean: forward.mean,
    variance: tf.mul(forward.correctedVariance, (m - 1) / m), // the biased variance, as Keras reports
  };
}
