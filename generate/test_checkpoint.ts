/**
 * For tests: a run folder holding real checkpoints (written by coordinator/checkpoint.ts's `saveCheckpoint`,
 * the trainer's own code) of untrained nets with seeded Keras-style initial weights, so that tests of the
 * generate tool and of the browser read exactly the on-disk format a training run leaves.
 */
import { join } from "node:path";
import { saveCheckpoint, type TrainingState } from "../coordinator/checkpoint.ts";
import { initialWeights, modelSpecs } from "../shared/models/specs.ts";
import type { ModelName, NetWeights } from "../shared/models/types.ts";
import { Rng } from "../shared/rng.ts";

/** Enough to keep every checkpoint a test writes (saveCheckpoint prunes beyond this). */
const KEEP_ALL = 1000;

export interface TestCheckpointOptions {
  model: ModelName;
  latentDim: number;
  /** The step the checkpoint is named after (step-NNNNNNNN); it becomes the latest. */
  step: number;
  /** Seed of the initial weights: different seeds give different generators. */
  weightsSeed: number;
}

/** Writes checkpoint `step` into `runDir/checkpoints`; returns the generator's weights and the folder. */
export async function writeTestCheckpoint(
  runDir: string,
  opts: TestCheckpointOptions,
): Promise<{ dir: string; generator: NetWeights }> {
  const specs = modelSpecs(opts.model, opts.latentDim);
  const rng = new Rng(opts.weightsSeed);
  const generator = initialWeights(specs.generator, rng);
  const discriminator = initialWeights(specs.discriminator, rng);
  const adam = (size: number) => ({ step: 0, m: new Float32Array(size), v: new Float32Array(size) });
  const state: TrainingState = {
    generator,
    discriminator,
    adamG: adam(specs.generator.trainableSize),
    adamD: adam(specs.discriminator.trainableSize),
    clock: { epoch: 1, step: opts.step, position: 0, order: [], rng: rng.state() },
  };
  const name = `step-${String(opts.step).padStart(8, "0")}`;
  const record = { config: { model: opts.model, latentDim: opts.latentDim, seed: opts.weightsSeed } };
  const dir = await saveCheckpoint(join(runDir, "checkpoints"), name, specs, state, record, KEEP_ALL);
  return { dir, generator };
}
