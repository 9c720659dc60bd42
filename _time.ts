import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { initialWeights, modelSpecs } from "./shared/models/specs.ts";
import { StepComputer } from "./shared/step.ts";
import { Rng } from "./shared/rng.ts";
await tf.setBackend(Deno.args[2] ?? "cpu");
const m = (Deno.args[0] ?? "mlp") as "mlp" | "cdcgan";
const B = Number(Deno.args[1] ?? 64);
const specs = modelSpecs(m, 100);
const rng = new Rng(1);
const gw = initialWeights(specs.generator, rng), dw = initialWeights(specs.discriminator, rng);
const sc = new StepComputer(specs, 0);
sc.setGeneratorWeights(gw.trainable); sc.setDiscriminatorWeights(dw.trainable);
const real = new Uint8Array(B * 784).map(() => rng.int(256));
const lab = () => rng.fillInts(new Uint8Array(B), 10);
const z = () => rng.fillNormal(new Float32Array(B * 100));
for (let i = 0; i < 4; i++) {
  const t0 = performance.now();
  const rd = sc.discriminatorPhase({ count: B, real, realLabels: lab(), z: z(), fakeLabels: lab() });
  const t1 = performance.now();
  const rg = sc.generatorPhase({ count: B, z: z(), labels: lab() });
  const t2 = performance.now();
  console.log(m, B, "D", (t1 - t0).toFixed(0), "ms G", (t2 - t1).toFixed(0), "ms", rd.lossSum / B, rg.lossSum / B, rd.realScoreSum / B, rd.fakeScoreSum / B, tf.memory().numTensors);
}
