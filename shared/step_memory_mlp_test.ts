import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { checkStepLeaks, LEAK_CHECK_STEPS } from "./step_leak_check.ts";

await tf.setBackend("cpu");

Deno.test(`StepComputer keeps tf.memory().numTensors flat over ${LEAK_CHECK_STEPS} steps (mlp)`, () => {
  checkStepLeaks("mlp", 2);
});
