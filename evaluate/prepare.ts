/**
 * The classifier an evaluation uses: the one in its folder, or a new one trained on the dataset's training
 * set, checked on its test set and saved there with the test set's feature statistics.
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { type Dataset, type DatasetName, loadDataset } from "../shared/data/dataset.ts";
import { NUM_CLASSES } from "../shared/models/specs.ts";
import { type ClassifierArchitecture, classify, FEATURES_DIM, trainClassifier } from "./classifier.ts";
import { conditionalAccuracy, featureStats } from "./metrics.ts";
import {
  type ClassifierMeta,
  hasClassifier,
  loadClassifier,
  saveClassifier,
  type StoredClassifier,
} from "./store.ts";

/** The test accuracy a classifier must reach to judge digits (the bar): below it, a warning. */
export const REQUIRED_ACCURACY: Record<DatasetName, number> = { mnist: 0.99, "fashion-mnist": 0.9 };
/** Training recipe: Adam from 1e-3, halved each epoch; see README, Measuring quality, for what it reaches. */
export const CLASSIFIER_RECIPE = { batchSize: 128, learningRate: 1e-3, learningRateDecay: 0.5, seed: 1 };

export interface PrepareOptions {
  dataset: DatasetName;
  /** Folder of IDX files (`--data`); default: the dataset's packaged copy. */
  dataDir?: string;
  /** The classifier's folder. */
  dir: string;
  /** Train a new one even when the folder holds one. */
  retrain: boolean;
  epochs: number;
  /** "dense" for tests; default "cnn". */
  architecture?: ClassifierArchitecture;
  /** Train on the first N training images only, and test on the first `testExamples` (tests). */
  trainExamples?: number;
  testExamples?: number;
  log: (line: string) => void;
}

/** Loads the classifier in `opts.dir`, training and saving one first when there is none (or `retrain`). */
export async function prepareClassifier(opts: PrepareOptions): Promise<StoredClassifier> {
  if (!opts.retrain && await hasClassifier(opts.dir)) return await loadClassifier(opts.dir);
  const train = await loadDataset({
    dataset: opts.dataset,
    dataDir: opts.dataDir,
    split: "train",
    examples: opts.trainExamples,
  });
  const test = await loadDataset({
    dataset: opts.dataset,
    dataDir: opts.dataDir,
    split: "test",
    examples: opts.testExamples,
  });
  opts.log(
    `training a classifier on ${train.count} ${opts.dataset} images (${opts.epochs} epochs, ` +
      `backend ${tf.getBackend()}) into ${opts.dir}`,
  );
  const started = performance.now();
  const model = await trainClassifier(train, {
    ...CLASSIFIER_RECIPE,
    architecture: opts.architecture,
    epochs: opts.epochs,
    // The test accuracy after each epoch shows whether fewer epochs would do (one pass: seconds).
    onEpoch: (epoch, loss, trained) =>
      opts.log(
        `classifier epoch ${epoch}/${opts.epochs}: loss ${loss.toFixed(4)}, test accuracy ` +
          `${percent(testAccuracyOf(trained, test))}, ${seconds(started)} s`,
      ),
  });
  try {
    // One pass over the test set gives both the accuracy and the reference features.
    const { probs, features } = classify(model, test.images);
    const testAccuracy = conditionalAccuracy(probs, test.labels, NUM_CLASSES).overall;
    const trainSeconds = Number(seconds(started));
    const meta: ClassifierMeta = {
      format: "gantry-classifier-1",
      dataset: opts.dataset,
      architecture: opts.architecture ?? "cnn",
      source: train.source,
      trainCount: train.count,
      testCount: test.count,
      testAccuracy,
      epochs: opts.epochs,
      ...CLASSIFIER_RECIPE,
      backend: tf.getBackend(),
      trainSeconds,
      createdAt: new Date().toISOString(),
    };
    await saveClassifier(opts.dir, model, meta, featureStats(features, FEATURES_DIM));
    const required = REQUIRED_ACCURACY[opts.dataset];
    const shortfall = testAccuracy < required
      ? `; WARNING: below the ${percent(required)} an evaluation of ${opts.dataset} assumes`
      : "";
    const accuracy = percent(testAccuracy);
    opts.log(
      `classifier test accuracy ${accuracy} on ${test.count} images, trained in ${trainSeconds} s${shortfall}`,
    );
  } finally {
    model.dispose();
  }
  return await loadClassifier(opts.dir);
}

function testAccuracyOf(model: tfl.LayersModel, test: Dataset): number {
  return conditionalAccuracy(classify(model, test.images).probs, test.labels, NUM_CLASSES).overall;
}

function seconds(since: number): string {
  return ((performance.now() - since) / 1000).toFixed(1);
}

export function percent(fraction: number): string {
  return `${(100 * fraction).toFixed(2)}%`;
}
