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
import { pathExists, writeFileAtomic } from "../shared/files.ts";
import { errorMessage, GantryError } from "../shared/errors.ts";

const CHECKPOINT_FORMAT = "gantry-checkpoint-1";

export interface TrainingState {
  generator: NetWeights;
  discriminator: NetWeights;
  adamG: AdamState;
  adamD: AdamState;
  clock: ClockState;
}

/** Saves a Layers model's artifacts as model.json + weights.bin in `dir`. */
export async function saveLayersModel(model: tf.LayersModel, dir: string): Promise<void> {
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
  keep: number,
): Promise<string> {
  const final = join(checkpointsDir, name);
  const exists = await pathExists(final);
  // A checkpoint of this step is already whole (the state of a step does not change): removing it first
  // would leave latest.json pointing at nothing until the rename.
  if (exists) {
    await writeFileAtomic(join(checkpointsDir, "latest.json"), JSON.stringify({ name }) + "\n");
    return final;
  }
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
    format: CHECKPOINT_FORMAT,
    adam: { generatorStep: state.adamG.step, discriminatorStep: state.adamD.step },
    clock: state.clock,
    config,
  };
  await Deno.writeTextFile(join(aside, "state.json"), JSON.stringify(meta));
  await Deno.rename(aside, final);
  await writeFileAtomic(join(checkpointsDir, "latest.json"), JSON.stringify({ name }) + "\n");
  await pruneCheckpoints(checkpointsDir, keep);
  return final;
}

/** Reads the float32 weights of a saved net, in model.weights order, as written by `saveCheckpoint`. */
export async function readSavedWeights(netDir: string): Promise<Float32Array> {
  const bytes = await Deno.readFile(join(netDir, "weights.bin"));
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/** The checkpoint folder `latest.json` names in a run's checkpoints folder. */
export async function latestCheckpointDir(checkpointsDir: string): Promise<string> {
  const latest = join(checkpointsDir, "latest.json");
  let name: unknown;
  try {
    name = JSON.parse(await Deno.readTextFile(latest)).name;
  } catch (error) {
    throw new GantryError(
      "E_CHECKPOINT",
      `${latest}: no readable checkpoint pointer: ${errorMessage(error)}`,
    );
  }
  if (typeof name !== "string" || !/^step-\d+$/.test(name)) {
    throw new GantryError(
      "E_CHECKPOINT",
      `${latest}: "name" must be a checkpoint folder name, got ${JSON.stringify(name)}`,
    );
  }
  return join(checkpointsDir, name);
}

/** Splits a net's saved floats (model.weights order) into its trainable and state vectors. */
export function netWeightsFromSaved(net: NetSpec, saved: Float32Array, source: string): NetWeights {
  const size = net.trainableSize + net.stateSize;
  if (saved.length !== size) {
    throw new GantryError("E_CHECKPOINT", `${source}: holds ${saved.length} weights, the model has ${size}`);
  }
  const trainable = new Float32Array(net.trainableSize);
  const state = new Float32Array(net.stateSize);
  let at = 0;
  for (const p of net.params) {
    (p.kind === "trainable" ? trainable : state).set(saved.subarray(at, at + p.size), p.offset);
    at += p.size;
  }
  return { trainable, state };
}

export interface LoadedCheckpoint {
  dir: string;
  state: TrainingState;
  /** The configuration record the run was started with. */
  record: { config: Record<string, unknown> } & Record<string, unknown>;
}

/** Reads everything `saveCheckpoint` wrote, checking each part against the model. */
export async function loadCheckpoint(dir: string, specs: ModelSpecs): Promise<LoadedCheckpoint> {
  const meta = JSON.parse(await Deno.readTextFile(join(dir, "state.json")));
  if (meta.format !== CHECKPOINT_FORMAT) {
    throw new GantryError(
      "E_CHECKPOINT",
      `${dir}: format ${JSON.stringify(meta.format)}, expected ${CHECKPOINT_FORMAT}`,
    );
  }
  const generator = netWeightsFromSaved(specs.generator, await readSavedWeights(join(dir, "generator")), dir);
  const discriminator = netWeightsFromSaved(
    specs.discriminator,
    await readSavedWeights(join(dir, "discriminator")),
    dir,
  );
  const bytes = await Deno.readFile(join(dir, "optimizer.bin"));
  const floats = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const g = specs.generator.trainableSize;
  const d = specs.discriminator.trainableSize;
  if (floats.length !== 2 * (g + d)) {
    throw new GantryError(
      "E_CHECKPOINT",
      `${dir}/optimizer.bin: ${floats.length} values, expected ${2 * (g + d)}`,
    );
  }
  const take = (from: number, n: number) => floats.slice(from, from + n);
  return {
    dir,
    state: {
      generator,
      discriminator,
      adamG: { step: meta.adam.generatorStep, m: take(0, g), v: take(g, g) },
      adamD: { step: meta.adam.discriminatorStep, m: take(2 * g, d), v: take(2 * g + d, d) },
      clock: meta.clock,
    },
    record: meta.config,
  };
}

/** Deletes all but the newest `keep` checkpoints, and any half-written one a crash left behind. */
export async function pruneCheckpoints(checkpointsDir: string, keep: number): Promise<void> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(checkpointsDir)) {
    if (!entry.isDirectory) continue;
    if (entry.name.endsWith(".partial")) {
      await Deno.remove(join(checkpointsDir, entry.name), { recursive: true });
    } else if (/^step-\d+$/.test(entry.name)) names.push(entry.name);
  }
  names.sort();
  for (const name of names.slice(0, Math.max(0, names.length - keep))) {
    await Deno.remove(join(checkpointsDir, name), { recursive: true });
  }
}
