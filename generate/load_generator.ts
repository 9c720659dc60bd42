/**
 * Finds a run's checkpoint (the latest, or one step) and loads its generator as a TF.js Layers model,
 * checked to be a gantry generator: inputs z [n, latentDim] and label [n, 1], output [n, 28, 28, 1].
 *
 * A run folder or step that does not exist is the caller's mistake and is reported as E_CONFIG naming the
 * flag (`deno task generate` exits 2); files that exist but are not a checkpoint are E_CHECKPOINT.
 */
import { pathExists } from "../shared/files.ts";
import * as tfl from "@tensorflow/tfjs-layers";
import { join } from "node:path";
import { latestCheckpointDir } from "../coordinator/checkpoint.ts";
import { GantryError } from "../shared/errors.ts";
import { IMAGE_CHANNELS, IMAGE_SIDE } from "../shared/models/specs.ts";
import { loadLayersModelFile } from "./file_handler.ts";

const CHECKPOINTS_FOLDER = "checkpoints";
const GENERATOR_FOLDER = "generator";
const MODEL_JSON = "model.json";
const LATEST_JSON = "latest.json";
/** Checkpoint folders are step-NNNNNNNN, the step zero-padded to this many digits (coordinator/trainer.ts). */
const STEP_DIGITS = 8;
const STEP_FOLDER = /^step-(\d+)$/;
const GENERATOR_INPUTS = 2;
const IMAGE_SHAPE: readonly number[] = [IMAGE_SIDE, IMAGE_SIDE, IMAGE_CHANNELS];

export interface LoadedGenerator {
  model: tfl.LayersModel;
  /** The checkpoint folder the generator came from. */
  checkpointDir: string;
  /** Length of the noise vector z, read from the model's first input. */
  latentDim: number;
}

async function isDirectory(path: string): Promise<boolean> {
  return (await pathExists(path)) && (await Deno.stat(path)).isDirectory;
}

/** The checkpoint folders under `checkpointsDir` by step, oldest first. */
async function checkpointFolders(checkpointsDir: string): Promise<Map<number, string>> {
  const found: Array<[number, string]> = [];
  for await (const entry of Deno.readDir(checkpointsDir)) {
    const match = entry.isDirectory ? STEP_FOLDER.exec(entry.name) : null;
    if (match) found.push([Number(match[1]), entry.name]);
  }
  return new Map(found.sort((a, b) => a[0] - b[0]));
}

/** The folder of the checkpoint to load: `checkpoints/step-N` with a step, else the one latest.json names. */
export async function resolveCheckpointDir(runDir: string, step?: number): Promise<string> {
  const shown = JSON.stringify(runDir);
  if (!(await isDirectory(runDir))) {
    throw new GantryError(
      "E_CONFIG",
      `--checkpoint must be a run folder: current value is ${shown} (no such folder)`,
    );
  }
  const checkpointsDir = join(runDir, CHECKPOINTS_FOLDER);
  const folders = (await isDirectory(checkpointsDir))
    ? await checkpointFolders(checkpointsDir)
    : new Map<number, string>();
  // A run still in its first epoch has a checkpoints/ folder (or not) but nothing in it yet: say so plainly
  // rather than report a missing latest.json.
  if (folders.size === 0 && !(await pathExists(join(checkpointsDir, LATEST_JSON)))) {
    throw new GantryError(
      "E_CONFIG",
      `--checkpoint names a run with no checkpoint yet: current value is ${shown} (a run writes one at ` +
        `the end of each epoch, into ${CHECKPOINTS_FOLDER}/)`,
    );
  }
  if (step === undefined) return await latestCheckpointDir(checkpointsDir);
  const name = folders.get(step);
  if (name === undefined) {
    const steps = [...folders.keys()];
    throw new GantryError(
      "E_CONFIG",
      `--step has no checkpoint step-${String(step).padStart(STEP_DIGITS, "0")} in ${checkpointsDir}: ` +
        `current value is ${step} (steps there: ${steps.length > 0 ? steps.join(", ") : "none"})`,
    );
  }
  return join(checkpointsDir, name);
}

/** Checks the loaded model's inputs and output; returns latentDim. */
function checkGenerator(model: tfl.LayersModel, source: string): number {
  const shapes = model.inputs.map((input) => input.shape);
  const output = model.outputs.length === 1 ? model.outputs[0].shape : null;
  const latentDim = shapes[0]?.[1];
  const ok = shapes.length === GENERATOR_INPUTS &&
    shapes[0].length === 2 && typeof latentDim === "number" && latentDim > 0 &&
    shapes[1].length === 2 && shapes[1][1] === 1 &&
    output !== null && output.slice(1).join() === IMAGE_SHAPE.join();
  if (!ok) {
    throw new GantryError(
      "E_CHECKPOINT",
      `${source}: not a gantry generator: inputs ${JSON.stringify(shapes)}, output ` +
        `${JSON.stringify(model.outputs.map((o) => o.shape))}; expected [[null, latentDim], [null, 1]] -> ` +
        `[null, ${IMAGE_SHAPE.join(", ")}]`,
    );
  }
  return latentDim as number;
}

/** Loads the generator of a checkpoint folder (`step-N/`); the caller disposes `model`. */
export async function loadGeneratorFrom(checkpointDir: string): Promise<LoadedGenerator> {
  const modelJson = join(checkpointDir, GENERATOR_FOLDER, MODEL_JSON);
  const model = await loadLayersModelFile(modelJson);
  try {
    return { model, checkpointDir, latentDim: checkGenerator(model, modelJson) };
  } catch (error) {
    model.dispose();
    throw error;
  }
}

/** Loads the generator of a run's latest checkpoint, or of `step`; the caller disposes `model`. */
export async function loadGenerator(runDir: string, step?: number): Promise<LoadedGenerator> {
  return await loadGeneratorFrom(await resolveCheckpointDir(runDir, step));
}
