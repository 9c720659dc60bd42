/**
 * TensorFlow ops that tfjs does not expose, run by name through the tensorflow backend (tfjs-node's
 * NodeJSKernelBackend.executeSingleOutput / executeMultipleOutputs, the path its own kernels use). Each
 * replaces several tfjs kernels by one, which matters on tensorflow, where every op costs ~40 µs of
 * overhead however small its tensors, and where TensorFlow's fused kernels make fewer passes over memory.
 *
 * Call these only when tf.getBackend() is "tensorflow". They bypass the engine's kernel registry, so they
 * are not recorded on the gradient tape: callers wrap them in tf.customGrad.
 */
import * as tf from "@tensorflow/tfjs-core";

/** The part of tfjs-node's NodeJSKernelBackend (nodejs_kernel_backend.ts) used here. */
interface NativeBackend {
  binding: {
    TF_ATTR_BOOL: number;
    TF_ATTR_FLOAT: number;
    TF_ATTR_STRING: number;
    TF_ATTR_TYPE: number;
    TF_FLOAT: number;
  };
  executeSingleOutput(name: string, attrs: unknown[], inputs: tf.Tensor[]): tf.Tensor;
  executeMultipleOutputs(name: string, attrs: unknown[], inputs: tf.Tensor[], count: number): tf.Tensor[];
}

function native(): NativeBackend {
  const backend = tf.backend() as unknown as Partial<NativeBackend>;
  if (typeof backend.executeMultipleOutputs !== "function" || backend.binding === undefined) {
    throw new Error(`TensorFlow ops need the tensorflow backend: current backend is ${tf.getBackend()}`);
  }
  return backend as NativeBackend;
}

/** TensorFlow's LeakyReluGrad(dy, features): dy where features > 0, else alpha·dy, in one kernel. */
export function leakyReluGrad(dy: tf.Tensor, features: tf.Tensor, alpha: number): tf.Tensor {
  const backend = native();
  const { TF_ATTR_FLOAT, TF_ATTR_TYPE, TF_FLOAT } = backend.binding;
  return backend.executeSingleOutput("LeakyReluGrad", [
    { name: "alpha", type: TF_ATTR_FLOAT, value: alpha },
    { name: "T", type: TF_ATTR_TYPE, value: TF_FLOAT },
  ], [dy, features]);
}

/** What FusedBatchNormGradV3 needs from the forward pass, besides x and gamma. */
export interface FusedBatchNormReserve {
  reserve: [tf.Tensor, tf.Tensor, tf.Tensor];
}

export interface FusedBatchNormOutput extends FusedBatchNormReserve {
  y: tf.Tensor4D;
  mean: tf.Tensor1D;
  /** The batch variance as TensorFlow reports it: Bessel-corrected (m / (m - 1) times the biased one). */
  correctedVariance: tf.Tensor1D;
}

function batchNormAttrs(backend: NativeBackend, epsilon: number): unknown[] {
  const { TF_ATTR_BOOL, TF_ATTR_FLOAT, TF_ATTR_STRING, TF_ATTR_TYPE, TF_FLOAT } = backend.binding;
  return [
    { name: "T", type: TF_ATTR_TYPE, value: TF_FLOAT },
    { name: "U", type: TF_ATTR_TYPE, value: TF_FLOAT },
    { name: "epsilon", type: TF_ATTR_FLOAT, value: epsilon },
    { name: "data_format", type: TF_ATTR_STRING, value: "NHWC" },
    { name: "is_training", type: TF_ATTR_BOOL, value: true },
  ];
}

/** FusedBatchNormV3 in training mode on x [n, H, W, C]: normalizes with the batch's own statistics. */
export function fusedBatchNorm(
  x: tf.Tensor4D,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  epsilon: number,
): FusedBatchNormOutput {
  const backend = native();
  const { TF_ATTR_FLOAT } = backend.binding;
  const attrs = [
    ...batchNormAttrs(backend, epsilon),
    { name: "exponential_avg_factor", type: TF_ATTR_FLOAT, value: 1 },
  ];
  // In training mode the population mean and variance inputs must be empty.
  const none = tf.tensor1d([]);
  try {
    const [y, mean, correctedVariance, r1, r2, r3] = backend.executeMultipleOutputs(
      "FusedBatchNormV3",
      attrs,
      [x, gamma, beta, none, none],
      6,
    );
    return {
      y: y as tf.Tensor4D,
      mean: mean as tf.Tensor1D,
      correctedVariance: correctedVariance as tf.Tensor1D,
      reserve: [r1, r2, r3],
    };
  } finally {
    none.dispose();
  }
}

/** FusedBatchNormGradV3 in training mode: [dx, dgamma, dbeta] for the forward pass that gave `reserve`. */
export function fusedBatchNormGrad(
  dy: tf.Tensor4D,
  x: tf.Tensor4D,
  gamma: tf.Tensor,
  { reserve }: FusedBatchNormReserve,
  epsilon: number,
): [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D] {
  const backend = native();
  const [dx, dGamma, dBeta, unused1, unused2] = backend.executeMultipleOutputs(
    "FusedBatchNormGradV3",
    batchNormAttrs(backend, epsilon),
    [dy, x, gamma, ...reserve],
    5,
  );
  tf.dispose([unused1, unused2]);
  return [dx as tf.Tensor4D, dGamma as tf.Tensor1D, dBeta as tf.Tensor1D];
}
