/**
 * The three measures of a set of images conditioned on labels (metrics.ts), through a classifier, and the
 * two sets `deno task evaluate` measures: samples of a run's generator, and the real test set (the floor
 * any generator is compared with).
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { join } from "node:path";
import { loadGenerator } from "../generate/load_generator.ts";
import { drawNoise, generateGrid } from "../generate/sample.ts";
import type { Dataset } from "../shared/data/dataset.ts";
import { IMAGE_PIXELS, NUM_CLASSES } from "../shared/models/specs.ts";
import { classify, FEATURES_DIM } from "./classifier.ts";
import {
  classifierScore,
  conditionalAccuracy,
  type FeatureStats,
  featureStats,
  frechetDistance,
} from "./metrics.ts";

export interface Evaluation {
  /** Images measured. */
  samples: number;
  /** Fraction classified as the label they were generated for (real images: their true label). */
  conditionalAccuracy: number;
  perLabelAccuracy: number[];
  /** exp(E KL(p(y|x) || p(y))), from 1 to 10. */
  classifierScore: number;
  /** Between the classifier's features of these images and of the reference set. */
  frechetDistance: number;
}

/** Measures `images` (count * 784 values in [-1, 1], or uint8 pixels) conditioned on `labels`. */
export function evaluateImages(
  model: tfl.LayersModel,
  images: Float32Array | Uint8Array,
  labels: ArrayLike<number>,
  reference: FeatureStats,
): Evaluation {
  const { probs, features } = classify(model, images);
  const accuracy = conditionalAccuracy(probs, labels, NUM_CLASSES);
  return {
    samples: labels.length,
    conditionalAccuracy: accuracy.overall,
    perLabelAccuracy: accuracy.perLabel,
    classifierScore: classifierScore(probs, NUM_CLASSES),
    frechetDistance: frechetDistance(featureStats(features, FEATURES_DIM), reference),
  };
}

/** The feature statistics of a set of real images. */
export function realFeatureStats(model: tfl.LayersModel, data: Pick<Dataset, "images">): FeatureStats {
  return featureStats(classify(model, data.images).features, FEATURES_DIM);
}

/** Draws `n` images of `label` from the noise vectors `z` (n * latentDim values), in [-1, 1]. */
export type LabelGenerator = (z: Float32Array, label: number) => Float32Array;

/** Images per generator call: bounds the activations' memory (cdcgan's are about 50 KB per image). */
const GENERATE_CHUNK = 250;

/**
 * `count` samples of every label, label-major (all 0s, then all 1s, ...), each from its own noise vector:
 * the noise of `seed` is drawn once for all 10 * count samples, in that order, so the same seed and count
 * give the same samples whichever generator implementation draws them (a checkpoint's Layers model in
 * `deno task evaluate`, the coordinator's own forward pass with --eval-every).
 */
export function generateBalanced(
  generate: LabelGenerator,
  opts: { count: number; seed: number; latentDim: number },
): { images: Float32Array; labels: Uint8Array } {
  const { count, latentDim } = opts;
  const noise = drawNoise(opts.seed, NUM_CLASSES * count, latentDim);
  const images = new Float32Array(NUM_CLASSES * count * IMAGE_PIXELS);
  const labels = new Uint8Array(NUM_CLASSES * count);
  for (let label = 0; label < NUM_CLASSES; label++) {
    for (let start = 0; start < count; start += GENERATE_CHUNK) {
      const first = label * count + start;
      const n = Math.min(GENERATE_CHUNK, count - start);
      const drawn = generate(noise.subarray(first * latentDim, (first + n) * latentDim), label);
      images.set(drawn, first * IMAGE_PIXELS);
      labels.fill(label, first, first + n);
    }
  }
  return { images, labels };
}

export interface RunEvaluation extends Evaluation {
  /** The checkpoint folder the generator came from, and its clock. */
  checkpoint: string;
  step: number;
  epoch: number;
  samplesPerLabel: number;
  seed: number;
}

/**
 * Draws `count` samples of every label from a run's checkpoint (the latest, or `step`) with noise from
 * `seed`, and measures them against `reference`.
 */
export async function evaluateRun(
  classifier: tfl.LayersModel,
  reference: FeatureStats,
  opts: { runDir: string; step?: number; count: number; seed: number },
): Promise<RunEvaluation> {
  const { model, checkpointDir, latentDim } = await loadGenerator(opts.runDir, opts.step);
  try {
    // generateGrid with one row: n samples of `label`, one per noise vector.
    const generate: LabelGenerator = (z, label) => generateGrid(model, [label], z, latentDim);
    const { images, labels } = generateBalanced(generate, { count: opts.count, seed: opts.seed, latentDim });
    const clock = await checkpointClock(checkpointDir);
    return {
      checkpoint: checkpointDir,
      ...clock,
      samplesPerLabel: opts.count,
      seed: opts.seed,
      ...evaluateImages(classifier, images, labels, reference),
    };
  } finally {
    model.dispose();
  }
}

/** The step and epoch a checkpoint was written at (its state.json's clock). */
async function checkpointClock(checkpointDir: string): Promise<{ step: number; epoch: number }> {
  const state = JSON.parse(await Deno.readTextFile(join(checkpointDir, "state.json")));
  return { step: state.clock.step, epoch: state.clock.epoch };
}
