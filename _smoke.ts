import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { buildDiscriminator, buildGenerator } from "./shared/models/layers.ts";
import { modelSpecs } from "./shared/models/specs.ts";
await tf.setBackend("cpu");
for (const m of ["cdcgan", "mlp"] as const) {
  const s = modelSpecs(m, 100);
  const g = buildGenerator(m, 100), d = buildDiscriminator(m);
  console.log(m, g.countParams(), s.generator.trainableSize, s.generator.stateSize, d.countParams(), s.discriminator.trainableSize);
  console.log(g.weights.map((w) => `${w.originalName} ${w.shape}`).join("; "));
  console.log(s.generator.params.map((p) => `${p.name} ${p.shape}`).join("; "));
  console.log(d.weights.map((w) => `${w.originalName} ${w.shape}`).join("; "));
  console.log(s.discriminator.params.map((p) => `${p.name} ${p.shape}`).join("; "));
}
