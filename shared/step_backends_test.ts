/**
 * One training step from the same weights and inputs gives the same update on every backend: D's and G's
 * Adam updates (the coordinator's math, on each backend's gradients) may differ by at most 1% of the learning
 * rate. Backends that cannot load here are skipped with their reason.
 */
import * as tf from "@tensorflow/tfjs";
import { Adam } from "../coordinator/adam.ts";
import { initBackend } from "./backends/select.ts";
import { nativeBindingMissing } from "./backends/tfjs_node_package.ts";
import { initialWeights, modelSpecs } from "./models/specs.ts";
import type { ModelName, NetWeights } from "./models/types.ts";
import { Rng } from "./rng.ts";
import { StepComputer } from "./step.ts";
import { assert, compareArrays } from "./testing.ts";

const LR = 2e-4;
const ADAM = { lr: LR, beta1: 0.5, beta2: 0.999, epsilon: 1e-7 };
const BOUND = 0.01 * LR;
const SHARD: Record<ModelName, number> = { mlp: 16, cdcgan: 4 };

interface Update {
  d: Float32Array;
  g: Float32Array;
}

/** Runs one full step (D phase, Adam on D, G phase through the new D, Adam on G) on `backend`. */
async function oneStep(backend: "tensorflow" | "wasm" | "cpu", model: ModelName): Promise<Update> {
  await initBackend({ backend, threads: 1, log: () => {} });
  const specs = modelSpecs(model, 100);
  const rng = new Rng(11);
  const g: NetWeights = initialWeights(specs.generator, rng);
  const d: NetWeights = initialWeights(specs.discriminator, rng);
  const n = SHARD[model];
  const real = Uint8Array.from({ length: n * 784 }, () => rng.int(256));
  const realLabels = rng.fillInts(new Uint8Array(n), 10);
  const dShard = {
    count: n,
    real,
    realLabels,
    z: rng.fillNormal(new Float32Array(n * 100)),
    fakeLabels: rng.fillInts(new Uint8Array(n), 10),
  };
  const gShard = {
    count: n,
    z: rng.fillNormal(new Float32Array(n * 100)),
    labels: rng.fillInts(new Uint8Array(n), 10),
  };
  const computer = new StepComputer(specs, 0);
  try {
    computer.setGeneratorWeights(g.trainable);
    computer.setDiscriminatorWeights(d.trainable);
    const dGrads = computer.discriminatorPhase(dShard).grads.map((v) => v / n);
    new Adam(dGrads.length, ADAM).apply(d.trainable, dGrads);
    computer.setDiscriminatorWeights(d.trainable);
    const gGrads = computer.generatorPhase(gShard).grads.map((v) => v / n);
    new Adam(gGrads.length, ADAM).apply(g.trainable, gGrads);
    return { d: d.trainable, g: g.trainable };
  } finally {
    computer.dispose();
  }
}

const NATIVE_MISSING = nativeBindingMissing();

for (const model of ["mlp", "cdcgan"] as const) {
  Deno.test({
    name:
      `one ${model} step gives the same update on the tensorflow, wasm and cpu backends (within 1% of lr)`,
    ignore: NATIVE_MISSING !== undefined,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const cpu = await oneStep("cpu", model);
      for (const backend of ["wasm", "tensorflow"] as const) {
        const other = await oneStep(backend, model);
        const d = compareArrays(cpu.d, other.d).worst;
        const g = compareArrays(cpu.g, other.g).worst;
        console.log(
          `${model} ${backend} vs cpu: D ${(100 * d / LR).toFixed(3)}% of lr, G ${
            (100 * g / LR).toFixed(3)
          }% of lr`,
        );
        assert(d <= BOUND && g <= BOUND, `${backend} differs from cpu by D ${d}, G ${g} (bound ${BOUND})`);
      }
      await tf.setBackend("cpu");
    },
  });
}
