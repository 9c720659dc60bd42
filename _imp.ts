const t0 = performance.now();
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
await import("@tensorflow/tfjs-core/dist/register_all_gradients.js");
await tf.setBackend("cpu");
const x = tf.tensor1d([1,2,3]);
console.log("@tensorflow/tfjs-core/dist/register_all_gradients.js", tf.grad((a: tf.Tensor) => tf.sum(tf.square(a)))(x).dataSync(), (performance.now()-t0).toFixed(0), "ms");
