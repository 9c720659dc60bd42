import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { Rng } from "../rng.ts";
import { assert, assertEquals, assertThrows } from "../testing.ts";
import { buildDiscriminator, buildGenerator } from "./layers.ts";
import { EMBEDDING_INIT_LIMIT, initialWeights, MODEL_NAMES, modelSpecs, weightKind } from "./specs.ts";
import type { ModelName, NetSpec } from "./types.ts";

await tf.setBackend("cpu");

const LATENT_DIM = 100;

/** Exact counts (all weights, BatchNorm moving statistics included, as Layers' countParams) and MODEL.md's. */
const EXPECTED: Record<ModelName, { generator: number; discriminator: number; modelMd: [number, number] }> = {
  cdcgan: { generator: 1_098_741, discriminator: 147_425, modelMd: [1.09e6, 0.15e6] },
  mlp: { generator: 1_499_652, discriminator: 942_753, modelMd: [1.50e6, 0.94e6] },
};
/** MODEL.md rounds to 2-3 significant digits. */
const MODEL_MD_TOLERANCE = 0.02;

function total(net: NetSpec): number {
  return net.trainableSize + net.stateSize;
}

for (const model of MODEL_NAMES) {
  Deno.test(`modelSpecs(${model}) counts the parameters of the Layers models, close to MODEL.md`, () => {
    const specs = modelSpecs(model, LATENT_DIM);
    const g = buildGenerator(model, LATENT_DIM);
    const d = buildDiscriminator(model);
    const expected = EXPECTED[model];
    assertEquals(total(specs.generator), expected.generator);
    assertEquals(total(specs.discriminator), expected.discriminator);
    assertEquals(g.countParams(), expected.generator);
    assertEquals(d.countParams(), expected.discriminator);
    const [gApprox, dApprox] = expected.modelMd;
    assert(Math.abs(expected.generator / gApprox - 1) < MODEL_MD_TOLERANCE, `G ${expected.generator}`);
    assert(
      Math.abs(expected.discriminator / dApprox - 1) < MODEL_MD_TOLERANCE,
      `D ${expected.discriminator}`,
    );
    g.dispose();
    d.dispose();
  });

  Deno.test(`modelSpecs(${model}) lists the Layers models' weights: names, shapes, kinds, order`, () => {
    const specs = modelSpecs(model, LATENT_DIM);
    for (
      const [net, layers] of [[specs.generator, buildGenerator(model, LATENT_DIM)], [
        specs.discriminator,
        buildDiscriminator(model),
      ]] as const
    ) {
      const fromLayers = layers.weights.map((w) => ({
        name: w.originalName,
        shape: w.shape,
        kind: w.trainable ? "trainable" : "state",
      }));
      const fromSpecs = net.params.map(({ name, shape, kind }) => ({ name, shape, kind }));
      assertEquals(fromSpecs, fromLayers);
      layers.dispose();
    }
  });

  Deno.test(`modelSpecs(${model}) lays params out back to back in the trainable and state vectors`, () => {
    const specs = modelSpecs(model, LATENT_DIM);
    for (const net of [specs.generator, specs.discriminator]) {
      const ends = { trainable: 0, state: 0 };
      for (const p of net.params) {
        assertEquals(p.size, p.shape.reduce((a, b) => a * b, 1));
        assertEquals(p.offset, ends[p.kind], p.name);
        ends[p.kind] += p.size;
      }
      assertEquals(ends, { trainable: net.trainableSize, state: net.stateSize });
      const normChannels = net.batchNorms.reduce((sum, b) => sum + b.channels, 0);
      assertEquals(net.stateSize, 2 * normChannels); // moving mean and variance per channel
    }
  });
}

Deno.test("modelSpecs() gives cdcgan's BatchNorm layers their channels and values per example", () => {
  assertEquals(modelSpecs("cdcgan", LATENT_DIM).generator.batchNorms, [
    { channels: 6272, valuesPerExample: 1 },
    { channels: 64, valuesPerExample: 14 * 14 },
  ]);
  assertEquals(modelSpecs("mlp", LATENT_DIM).generator.batchNorms, []);
});

Deno.test("modelSpecs() rejects an unknown model and a bad latentDim", () => {
  assertThrows(() => modelSpecs("resnet" as ModelName, LATENT_DIM), RangeError, "current value is resnet");
  assertThrows(() => modelSpecs("mlp", 0), RangeError, "latentDim");
  assertThrows(() => modelSpecs("mlp", 1.5), RangeError, "latentDim");
});

Deno.test("initialWeights() is a function of the seed alone", () => {
  const net = modelSpecs("cdcgan", LATENT_DIM).generator;
  const a = initialWeights(net, new Rng(7));
  const b = initialWeights(net, new Rng(7));
  const c = initialWeights(net, new Rng(8));
  assertEquals(a.trainable, b.trainable);
  assertEquals(a.state, b.state);
  assert(a.trainable.some((v, i) => v !== c.trainable[i]), "another seed gives other weights");
});

Deno.test("initialWeights() follows Keras's initializers (glorot uniform, uniform embeddings, BN ones/zeros)", () => {
  for (const model of MODEL_NAMES) {
    const specs = modelSpecs(model, LATENT_DIM);
    for (const net of [specs.generator, specs.discriminator]) {
      const w = initialWeights(net, new Rng(1));
      for (const p of net.params) {
        const values = (p.kind === "trainable" ? w.trainable : w.state).subarray(p.offset, p.offset + p.size);
        const kind = weightKind(p.name);
        if (kind === "kernel" || kind === "embeddings") {
          const rf = p.shape.slice(0, -2).reduce((a, b) => a * b, 1);
          const limit = kind === "embeddings"
            ? EMBEDDING_INIT_LIMIT
            : Math.sqrt(6 / (rf * (p.shape[p.shape.length - 2] + p.shape[p.shape.length - 1])));
          const max = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          assert(max <= limit, `${p.name}: |w| ${max} > ${limit}`);
          if (p.size >= 1000) {
            // Uniform(-l, l): mean 0, variance l²/3, so the max is close to the limit too.
            const mean = values.reduce((s, v) => s + v, 0) / p.size;
            const variance = values.reduce((s, v) => s + v * v, 0) / p.size;
            assert(Math.abs(mean) < 0.01 * limit + 3 * limit / Math.sqrt(p.size), `${p.name} mean ${mean}`);
            assert(Math.abs(variance / (limit * limit / 3) - 1) < 0.1, `${p.name} variance ${variance}`);
            assert(max > 0.95 * limit, `${p.name} max ${max}`);
          }
        } else {
          const expected = kind === "gamma" || kind === "moving_variance" ? 1 : 0;
          assert(values.every((v) => v === expected), `${p.name} should be all ${expected}`);
        }
      }
    }
  }
});
