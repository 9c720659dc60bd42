/**
 * The leak check of step_leak_check.ts on the backends whose custom paths make tensors outside the engine's
 * kernels: wasm (the phase-split Conv2DBackpropInput on the wasm heap) and tensorflow (TensorFlow ops run by
 * name, such as FusedBatchNormV3). Backends that cannot load here are skipped. Both hold their tensors outside
 * JS, so a step must also leave no weight- or gradient-sized garbage there.
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "./backends/select.ts";
import { nativeBindingMissing } from "./backends/tfjs_node_package.ts";
import { checkStepLeaks, LEAK_CHECK_STEPS } from "./step_leak_check.ts";

const NATIVE_MISSING = nativeBindingMissing();

for (const backend of ["wasm", "tensorflow"] as const) {
  Deno.test({
    name: `StepComputer keeps tf.memory() flat over ${LEAK_CHECK_STEPS} steps on ${backend} (cdcgan, mlp)`,
    ignore: backend === "tensorflow" && NATIVE_MISSING !== undefined,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      await initBackend({ backend, threads: 1, log: () => {} });
      try {
        checkStepLeaks("cdcgan", 2);
        checkStepLeaks("mlp", 2);
      } finally {
        await tf.setBackend("cpu");
      }
    },
  });
}
