/**
 * The models' heavy ops (matMul, strided convolution and transposed convolution) with custom gradients
 * that are fast on every backend. The stock gradients are correct but hit slow paths:
 *
 * - matMul's gradients are transposed matMuls, which the wasm backend runs 10-20x slower than an explicit
 *   transpose followed by a plain matMul.
 * - a convolution's kernel gradient is the Conv2DBackpropFilter kernel, which the cpu backend runs ~90x
 *   slower than a convolution of the same size (18.5 s against 0.2 s for D's second layer at batch 16) and
 *   the wasm backend lacks. Here it is itself a convolution (see convKernelGrad).
 * - a stride-2, kernel-4 transposed convolution (G's upsampling, and D's conv input gradient) is faster as
 *   four 2x2 stride-1 convolutions (phase_split.ts) than as the backends' Conv2DBackpropInput.
 *
 * tf.customGrad computes every input's gradient, even for inputs that need none (the stock gradients are
 * lazy), so each op takes the list of inputs that need one and treats the others as constants.
 *
 * Which path is fastest depends on the backend, so the choices below read tf.getBackend() when an op runs.
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  PHASE_MIN_CHANNELS,
  PHASE_STRIDE,
  phasePadding,
  PHASES,
  phaseTaps,
  reusedTaps,
  splitsIntoPhases,
} from "./phase_split.ts";

/** Which inputs of a two-input op need a gradient: both, or only the first or the second. */
export type GradsFor = "both" | "first" | "second";

/**
 * Wraps `value(a, b)` with the gradients `grads(dy, a, b)` = [da, db], skipping the one that `which` says no
 * one needs (it is then a constant to the tape: no gradient flows into it).
 *
 * What a gradient reads goes through customGrad's save: tf.grads disposes the forward pass's tensors before
 * the backward pass, except the saved copies.
 */
function withGrads<T extends tf.Tensor>(
  a: tf.Tensor,
  b: tf.Tensor,
  which: GradsFor,
  value: (a: tf.Tensor, b: tf.Tensor) => T,
  gradA: (dy: T, a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
  gradB: (dy: T, a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
): T {
  if (which === "both") {
    const op = tf.customGrad((...args) => {
      const [x, y, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
      save([x, y]);
      return {
        value: value(x, y),
        gradFunc: (dy: T, [sx, sy]: tf.Tensor[]) => [gradA(dy, sx, sy), gradB(dy, sx, sy)],
      };
    });
    return op(a, b) as T;
  }
  // One differentiable input; the other is saved with it so that it outlives the forward pass's tidy.
  const [active, constant] = which === "first" ? [a, b] : [b, a];
  const op = tf.customGrad((...args) => {
    const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([x, constant]);
    const [first, second] = which === "first" ? [x, constant] : [constant, x];
    return {
      value: value(first, second),
      gradFunc: (dy: T, [sx, sc]: tf.Tensor[]) => which === "first" ? gradA(dy, sx, sc) : gradB(dy, sc, sx),
    };
  });
  return op(active) as T;
}

/** The backend the ops run on now. */
export function backendIs(name: "tensorflow" | "wasm"): boolean {
  return tf.getBackend() === name;
}

/**
 * a·b for [m, k]·[k, n], with gradients dy·bᵀ and aᵀ·dy: through explicit transposes on wasm, whose
 * BatchMatMul uses XNNPACK only for untransposed inputs (tfjs 4.22: [64,1024]ᵀ·[64,784] takes 187 ms against
 * 8 ms), and through the transpose flags elsewhere (TensorFlow: 5-10% less CPU time than a Transpose first).
 */
export function matMul(a: tf.Tensor2D, b: tf.Tensor2D, which: GradsFor = "both"): tf.Tensor2D {
  return withGrads<tf.Tensor2D>(
    a,
    b,
    which,
    (x, y) => tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D),
    (dy, _x, y) =>
      backendIs("wasm")
        ? tf.matMul(dy, tf.transpose(y as tf.Tensor2D))
        : tf.matMul(dy, y as tf.Tensor2D, false, true),
    (dy, x) =>
      backendIs("wasm")
        ? tf.matMul(tf.transpose(x as tf.Tensor2D), dy)
        : tf.matMul(x as tf.Tensor2D, dy, true, false),
  );
}

/** TF's "same" padding when the input side is a multiple of the stride: k - s in total, the extra after. */
function samePadding(kernelSize: number, stride: number): [number, number] {
  const total = Math.max(kernelSize - stride, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

type Shape4 = [number, number, number, number];

/**
 * conv2dTranspose(x, kernel [k, k, O, C], outShape, stride, "same") for outShape = [n, H·s, W·s, O]. On
 * tensorflow a stride-2, kernel-4 one runs as its four output phases (phase_split.ts), interleaved by
 * DepthToSpace from their concatenation on channels; the taps are gathered in JS from the kernel's values
 * (a 131k-value read), which takes fewer ops than gathering them with tf ops, into arrays kept between
 * calls. Below PHASE_MIN_CHANNELS output channels (G's last layer) TensorFlow's own kernel is faster. On
 * wasm the split happens inside the Conv2DBackpropInput kernel (wasm_kernels.ts). Called only inside custom
 * ops, where nothing is taped (DepthToSpace has no gradient in tfjs).
 */
function transposedConv(
  x: tf.Tensor4D,
  kernel: tf.Tensor4D,
  outShape: Shape4,
  stride: number,
): tf.Tensor4D {
  const split = backendIs("tensorflow") && kernel.shape[2] >= PHASE_MIN_CHANNELS &&
    splitsIntoPhases(x.shape, kernel.shape, outShape, [stride, stride]);
  if (!split) {
    return tf.conv2dTranspose(x, kernel, outShape, stride, "same");
  }
  const [, , outChannels, inChannels] = kernel.shape;
  // Not released after use: until an op has used it, tensorflow hands back the very array the kernel was
  // made from (a worker's weights, staged), and the split kernel is never given to an op.
  const values = kernel.dataSync() as Float32Array;
  const taps = phaseTaps(values, outChannels, inChannels, reusedTaps(values.length / PHASES.length));
  return tf.tidy(() => {
    const phases = PHASES.map(([r, c], i) =>
      tf.conv2d(
        x,
        tf.tensor4d(taps[i], [PHASE_STRIDE, PHASE_STRIDE, inChannels, outChannels]),
        1,
        phasePadding(r, c),
      )
    ); // 4 x [n, H, W, O]
    return tf.depthToSpace(tf.concat4d(phases, 3), PHASE_STRIDE); // [n, 2H, 2W, O]
  });
}

/**
 * The kernel gradient of y = conv2d(x, K, stride, "same"), K: [k, k, C, O]:
 *   dK[a, b, c, o] = Σ_{n, i, j} xPadded[n, s·i + a, s·j + b, c] · dy[n, i, j, o].
 * That is a stride-1 convolution of xPadded viewed as [C, H', W', N] (channels as the batch, the
 * batch as the channels) with dy viewed as a [Ho, Wo, N, O] filter dilated by s; its output is [C, k, k, O].
 * A transposed convolution's kernel gradient is the same with x and dy swapped (see deconv).
 */
export function convKernelGrad(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  kernelSize: number,
  stride: number,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [before, after] = samePadding(kernelSize, stride);
    const input = tf.transpose(x, [3, 1, 2, 0]); // [C, H, W, N]
    const filter = tf.transpose(dy, [1, 2, 0, 3]); // [Ho, Wo, N, O]
    // The forward pass's padding, as the convolution's own (a separate pad kernel would copy x once more).
    const padding = [[0, 0], [before, after], [before, after], [0, 0]] as tf.backend_util.ExplicitPadding;
    const grad = tf.conv2d(input, filter, 1, padding, "NHWC", stride); // [C, k, k, O]
    if (grad.shape[1] !== kernelSize || grad.shape[2] !== kernelSize) {
      throw new RangeError(
        `kernel gradient needs input sides divisible by the stride ${stride}: got input [${x.shape}], ` +
          `output gradient [${dy.shape}]`,
      );
    }
    return tf.transpose(grad, [1, 2, 0, 3]); // [k, k, C, O]
  });
}

/** conv2d(x, kernel, stride, "same"): [n, H, W, C] -> [n, H/s, W/s, O] with kernel [k, k, C, O]. */
export function conv(
  x: tf.Tensor4D,
  kernel: tf.Tensor4D,
  stride: number,
  which: GradsFor = "both",
): tf.Tensor4D {
  return withGrads<tf.Tensor4D>(
    x,
    kernel,
    which,
    (a, k) => tf.conv2d(a as tf.Tensor4D, k as tf.Tensor4D, stride, "same"),
    (dy, a, k) => transposedConv(dy, k as tf.Tensor4D, a.shape as Shape4, stride),
    (dy, a, k) => convKernelGrad(a as tf.Tensor4D, dy, k.shape[0], stride),
  );
}

/**
 * conv2dTranspose(x, kernel, stride, "same"): [n, H, W, C] -> [n, H·s, W·s, O] with kernel [k, k, O, C]
 * (Keras's Conv2DTranspose layout). It is a convolution's input gradient, so its own gradients are a
 * convolution (for x) and a convolution's kernel gradient with x and dy swapped (for the kernel).
 */
export function deconv(
  x: tf.Tensor4D,
  kernel: tf.Tensor4D,
  stride: number,
  which: GradsFor = "both",
): tf.Tensor4D {
  const [n, height, width] = x.shape;
  const outShape: Shape4 = [n, height * stride, width * stride, kernel.shape[2]];
  return withGrads<tf.Tensor4D>(
    x,
    kernel,
    which,
    (a, k) => transposedConv(a as tf.Tensor4D, k as tf.Tensor4D, outShape, stride),
    (dy, _a, k) => tf.conv2d(dy, k as tf.Tensor4D, stride, "same"),
    (dy, a, k) => convKernelGrad(dy, a as tf.Tensor4D, k.shape[0], stride),
  );
}
