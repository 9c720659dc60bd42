/**
 * The native `tensorflow` backend against TF.js's cpu backend, op by op, on the ops the models train with.
 * Skipped (with the reason printed) when the binding is not built: `deno task setup` builds it.
 *
 *   deno test --allow-read --allow-env --allow-ffi shared/backends/tensorflow_test.ts
 */
import * as tf from "@tensorflow/tfjs";
import { GantryError } from "../errors.ts";
import { Rng } from "../rng.ts";
import { assert, assertClose, assertEquals, assertRejects } from "../testing.ts";
import { loadTensorflowBackend, TENSORFLOW_BACKEND_NAME } from "./tensorflow.ts";
import { nativeBindingMissing } from "./tfjs_node_package.ts";

/** Largest allowed |tensorflow − cpu| (the issue measured 3e-5 on these ops). */
const TOLERANCE = 1e-4;
/** Inputs are N(0, 1) scaled by this, so that results stay near 1 and an absolute tolerance is fair. */
const INPUT_SCALE = 0.25;
const THREADS = 1;
const SEED = 4;

const SKIP_REASON = nativeBindingMissing();
if (SKIP_REASON !== undefined) console.warn(`tensorflow_test: native tests skipped: ${SKIP_REASON}`);
const native = { ignore: SKIP_REASON !== undefined };

function randomArray(rng: Rng, shape: number[]): Float32Array {
  const values = rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1)));
  return values.map((v) => v * INPUT_SCALE);
}

/**
 * Runs `compute` on one backend with the same input arrays and returns the values of its outputs; the
 * engine's tensor count must be the same afterwards (no leak in either backend's kernels).
 */
async function runOn(backend: string, compute: () => tf.Tensor[]): Promise<Float32Array[]> {
  assert(await tf.setBackend(backend), `backend ${backend} failed to initialize`);
  const before = tf.memory().numTensors;
  const outputs = tf.tidy(compute);
  const values = await Promise.all(outputs.map(async (t) => (await t.data()) as Float32Array));
  tf.dispose(outputs);
  assertEquals(tf.memory().numTensors, before, `tensors leaked on ${backend}`);
  return values;
}

/** `compute` on tensorflow and on cpu agree to TOLERANCE, output by output. */
async function assertAgrees(what: string, compute: () => tf.Tensor[]): Promise<void> {
  await loadTensorflowBackend({ threads: THREADS });
  const onTensorflow = await runOn(TENSORFLOW_BACKEND_NAME, compute);
  const onCpu = await runOn("cpu", compute);
  assertEquals(onTensorflow.length, onCpu.length);
  onTensorflow.forEach((values, i) => assertClose(values, onCpu[i], TOLERANCE, `${what}, output ${i}:`));
  await tf.setBackend(TENSORFLOW_BACKEND_NAME);
}

Deno.test("loadTensorflowBackend() rejects a thread count below 1 before loading anything", async () => {
  const error = await assertRejects(() => loadTensorflowBackend({ threads: 0 }), GantryError, "threads");
  assertEquals(error.code, "E_CONFIG");
});

Deno.test({
  name: "loadTensorflowBackend() makes tensorflow the backend and reports TensorFlow's version and devices",
  ...native,
  fn: async () => {
    const info = await loadTensorflowBackend({ threads: THREADS });
    console.log(`TensorFlow ${info.tfVersion}, devices ${info.devices.join(", ")}`);
    assert(/^\d+\.\d+\.\d+/.test(info.tfVersion), `tfVersion "${info.tfVersion}" is not a version`);
    assert(info.devices.length > 0, "no devices");
    assert(info.devices.some((d) => /^CPU(:\d+)?$/.test(d)), `no CPU in ${info.devices}`);
    assertEquals(tf.getBackend(), TENSORFLOW_BACKEND_NAME);
    // A second call is the same TensorFlow: it starts once per process.
    assertEquals(await loadTensorflowBackend({ threads: THREADS }), info);
  },
});

Deno.test({
  name: "matMul (plain and transposed) on tensorflow agrees with cpu",
  ...native,
  fn: async () => {
    const rng = new Rng(SEED);
    const a = randomArray(rng, [32, 100]);
    const b = randomArray(rng, [100, 64]);
    await assertAgrees("matMul", () => {
      const [ta, tb] = [tf.tensor2d(a, [32, 100]), tf.tensor2d(b, [100, 64])];
      return [tf.matMul(ta, tb), tf.matMul(ta, ta, false, true), tf.matMul(tb, tb, true, false)];
    });
  },
});

Deno.test({
  name: "conv2d and its gradients on tensorflow agree with cpu",
  ...native,
  fn: async () => {
    const rng = new Rng(SEED + 1);
    const xShape: [number, number, number, number] = [2, 14, 14, 8];
    const wShape: [number, number, number, number] = [5, 5, 8, 16];
    const x = randomArray(rng, xShape);
    const w = randomArray(rng, wShape);
    const r = randomArray(rng, [2, 7, 7, 16]); // d loss / d output: loss = sum(conv2d(x, w) * r)
    await assertAgrees("conv2d", () => {
      const [tx, tw, tr] = [tf.tensor4d(x, xShape), tf.tensor4d(w, wShape), tf.tensor4d(r, [2, 7, 7, 16])];
      const conv = (xi: tf.Tensor4D, wi: tf.Tensor4D) => tf.conv2d(xi, wi, 2, "same");
      const [dx, dw] = tf.grads((xi: tf.Tensor, wi: tf.Tensor) =>
        tf.sum(tf.mul(conv(xi as tf.Tensor4D, wi as tf.Tensor4D), tr))
      )([tx, tw]);
      return [conv(tx, tw), dx, dw];
    });
  },
});

Deno.test({
  name: "conv2dTranspose and its gradients on tensorflow agree with cpu",
  ...native,
  fn: async () => {
    const rng = new Rng(SEED + 2);
    const xShape: [number, number, number, number] = [2, 7, 7, 16];
    const wShape: [number, number, number, number] = [5, 5, 8, 16]; // [h, w, out channels, in channels]
    const outShape: [number, number, number, number] = [2, 14, 14, 8];
    const x = randomArray(rng, xShape);
    const w = randomArray(rng, wShape);
    const r = randomArray(rng, outShape);
    await assertAgrees("conv2dTranspose", () => {
      const [tx, tw, tr] = [tf.tensor4d(x, xShape), tf.tensor4d(w, wShape), tf.tensor4d(r, outShape)];
      const deconv = (xi: tf.Tensor4D, wi: tf.Tensor4D) => tf.conv2dTranspose(xi, wi, outShape, 2, "same");
      const [dx, dw] = tf.grads((xi: tf.Tensor, wi: tf.Tensor) =>
        tf.sum(tf.mul(deconv(xi as tf.Tensor4D, wi as tf.Tensor4D), tr))
      )([tx, tw]);
      return [deconv(tx, tw), dx, dw];
    });
  },
});
