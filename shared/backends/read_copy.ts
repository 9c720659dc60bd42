/**
 * Releasing what a backend's reads return. Kept apart from the ops: the model ops, the step and the wasm
 * kernels all read tensors back into JS.
 */
import * as tf from "@tensorflow/tfjs-core";

/** Backends whose dataSync returns a fresh copy (their tensors live in TensorFlow or on the wasm heap). */
const COPYING_BACKENDS = new Set(["tensorflow", "wasm"]);

/** True when the current backend's reads are copies, which releaseReadCopy may free. */
export function readsAreCopies(): boolean {
  return COPYING_BACKENDS.has(tf.getBackend());
}

/**
 * Frees an array read back from the backend (dataSync) now rather than at V8's next full collection. A worker
 * read megabytes a step; V8 counted them toward its external-memory limit and ran a mark-compact every few
 * steps on the worker's one core. The cpu backend's reads return the tensor's own storage, so only the
 * copying backends' reads are released. Call it only on reads of tensors that an op produced: tensorflow hands
 * back a tensor's pending values, the very array it was made from, until an op has used the tensor.
 */
export function releaseReadCopy(values: Float32Array): void {
  const buffer = values.buffer;
  const whole = buffer instanceof ArrayBuffer && values.byteOffset === 0 &&
    values.byteLength === buffer.byteLength;
  if (whole && readsAreCopies()) buffer.transfer(0);
}
