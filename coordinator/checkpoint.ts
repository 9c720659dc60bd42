/**
 * Checkpoints: G and D in TF.js Layers format (model.json + weights.bin, loadable with tf.loadLayersModel),
 * plus both Adam states and the clock, enough to continue the run. A checkpoint is written into a folder
 * aside and renamed into place, then `latest.json` is replaced atomically to point at it.
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { buildDiscriminator, buildGenerator, setLayersWeights } from "../shared/models/layers.ts";
import type { ModelSpecs, NetSpec, NetWeights } from "../shared/models/types.ts";
import type { AdamState } from "./adam.ts";
import type { ClockState } from "./batch_plan.ts";
import { writeFileAtomic } from "./recorder.ts";

export interface TrainingState {
  generator: NetWeights;
  discriminator: NetWeights;
  adamG: AdamState;
  adamD: AdamState;
  clock: ClockState;
}

/** Saves a Layers model's artifacts as model.json + weights.bin in `dir`. */
async function saveLayersModel(model: tf.LayersModel, dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData!));
    const manifest = [{ paths: ["weights.bin"], weights: artifacts.weightSpecs! }];
    const json = {
      modelTopology: artifacts.modelTopology,
      format: artifacts.format,
      generatedBy: artifacts.generatedBy,
      convertedBy: artifacts.convertedBy ?? null,
      weightsManifest: manifest,
    };
    await Deno.writeFile(join(dir, "weights.bin"), weights);
    await Deno.writeTextFile(join(dir, "model.json"), JSON.stringify(json));
    return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
  }));
}

/** Builds the Layers model of one net with the given weights, saves it, and frees it. */
async function saveNet(
  build: () => tf.LayersModel,
  net: NetSpec,
  weights: NetWeights,
  dir: string,
): Promise<void> {
  const model = build();
  try {
    setLayersWeights(model, net, weights);
    await saveLayersModel(model, dir);
  } finally {
    model.dispose();
  }
}

function optimizerBytes(state: TrainingState): Uint8Array {
  const parts = [state.adamG.m, state.adamG.v, state.adamD.m, state.adamD.v];
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return new Uint8Array(out.buffer);
}

/** Writes checkpoint `name` under `checkpointsDir` and points latest.json at it; returns its folder. */
export async function saveCheckpoint(
  checkpointsDir: string,
  name: string,
  specs: ModelSpecs,
  state: TrainingState,
  config: unknown,
): Promise<string> {
  const final = join(checkpointsDir, name);
  const aside = `${final}.partial`;
  await Deno.remove(aside, { recursive: true }).catch(() => {});
  await saveNet(
    () => buildGenerator(specs.model, specs.latentDim),
    specs.generator,
    state.generator,
    join(aside, "generator"),
  );
  await saveNet(
    () => buildDiscriminator(specs.model),
    specs.discriminator,
    state.discriminator,
    join(aside, "discriminator"),
  );
  await Deno.writeFile(join(aside, "optimizer.bin"), optimizerBytes(state));
  const meta = {
    format: "gantry-checkpoint-1",
    adam: { generatorStep: state.adamG.step, discriminatorStep: state.adamD.step },
    clock: state.clock,
    config,
  };
  await Deno.writeTextFile(join(aside, "state.json"), JSON.stringify(meta));
  await Deno.remove(final, { recursive: true }).catch(() => {});
  await Deno.rename(aside, final);
  await writeFileAtomic(join(checkpointsDir, "latest.json"), JSON.stringify({ name }) + "\n");
  return final;
}

/** Reads the float32 weights of a saved net, in model.weights order, as written by `saveCheckpoint`. */
export async function readSavedWeights(netDir: string): Promise<Float32Array> {
  const bytes = await Deno.readFile(join(netDir, "weights.bin"));
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}
