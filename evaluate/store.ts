/**
 * The classifier's folder (default .cache/classifier/<dataset>/): model.json + weights.bin (TF.js Layers
 * format), classifier.json (what it was trained on and its test accuracy) and the feature statistics of
 * the real images (stats-test.json, written with the classifier; stats-train.json, on first use by
 * `--real`), so that evaluating a run costs one pass over the generated images only.
 */
import * as tfl from "@tensorflow/tfjs-layers";
import { join } from "node:path";
import { saveLayersModel } from "../coordinator/checkpoint.ts";
import { loadLayersModelFile } from "../generate/file_handler.ts";
import type { DatasetName, Split } from "../shared/data/dataset.ts";
import { errorMessage, GantryError } from "../shared/errors.ts";
import { pathExists, writeFileAtomic } from "../shared/files.ts";
import { type ClassifierArchitecture, FEATURES_DIM, FEATURES_LAYER } from "./classifier.ts";
import type { FeatureStats } from "./metrics.ts";

const FORMAT = "gantry-classifier-1";
const META_JSON = "classifier.json";
const MODEL_JSON = "model.json";
const REPO_DIR = decodeURIComponent(new URL("..", import.meta.url).pathname);

/** What classifier.json records. */
export interface ClassifierMeta {
  format: typeof FORMAT;
  dataset: DatasetName;
  architecture: ClassifierArchitecture;
  /** The folder the training and test images were read from. */
  source: string;
  trainCount: number;
  testCount: number;
  /** Fraction of the test set classified right. */
  testAccuracy: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  learningRateDecay: number;
  seed: number;
  backend: string;
  trainSeconds: number;
  createdAt: string;
}

export interface StoredClassifier {
  model: tfl.LayersModel;
  dir: string;
  meta: ClassifierMeta;
  /** Features of the real test set: the reference generated images are compared with. */
  testStats: FeatureStats;
}

/** `.cache/classifier/<dataset>` in the checkout, whatever the working directory. */
export function defaultClassifierDir(dataset: DatasetName): string {
  return join(REPO_DIR, ".cache", "classifier", dataset);
}

function statsPath(dir: string, split: Split): string {
  return join(dir, `stats-${split}.json`);
}

export async function hasClassifier(dir: string): Promise<boolean> {
  return (await pathExists(join(dir, META_JSON))) && (await pathExists(join(dir, MODEL_JSON)));
}

/** Writes the model, its statistics of the test set and then classifier.json, which marks the folder whole. */
export async function saveClassifier(
  dir: string,
  model: tfl.LayersModel,
  meta: ClassifierMeta,
  testStats: FeatureStats,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.remove(join(dir, META_JSON)).catch(() => {});
  // Statistics of the train split belong to the classifier they were computed with.
  await Deno.remove(statsPath(dir, "train")).catch(() => {});
  await saveLayersModel(model, dir);
  await writeStats(dir, "test", testStats);
  await writeFileAtomic(join(dir, META_JSON), JSON.stringify(meta, null, 2) + "\n");
}

export async function writeStats(dir: string, split: Split, stats: FeatureStats): Promise<void> {
  const json = { dim: stats.dim, count: stats.count, mean: [...stats.mean], cov: [...stats.cov] };
  await writeFileAtomic(statsPath(dir, split), JSON.stringify(json));
}

/** The statistics of a split's features, or undefined when they were never computed. */
export async function readStats(dir: string, split: Split): Promise<FeatureStats | undefined> {
  const path = statsPath(dir, split);
  if (!(await pathExists(path))) return undefined;
  try {
    const json = JSON.parse(await Deno.readTextFile(path));
    const { dim, count } = json;
    if (dim !== FEATURES_DIM || json.mean?.length !== dim || json.cov?.length !== dim * dim) {
      throw new Error(`expected ${FEATURES_DIM} features, a mean of ${FEATURES_DIM} and a covariance`);
    }
    return { dim, count, mean: Float64Array.from(json.mean), cov: Float64Array.from(json.cov) };
  } catch (error) {
    throw new GantryError("E_CHECKPOINT", `${path}: not feature statistics: ${errorMessage(error)}`);
  }
}

/** Loads a classifier folder written by `saveClassifier`; the caller disposes `model`. */
export async function loadClassifier(dir: string): Promise<StoredClassifier> {
  const metaPath = join(dir, META_JSON);
  let meta: ClassifierMeta;
  try {
    meta = JSON.parse(await Deno.readTextFile(metaPath));
  } catch (error) {
    throw new GantryError("E_CHECKPOINT", `${metaPath}: cannot read it: ${errorMessage(error)}`);
  }
  if (meta.format !== FORMAT) {
    throw new GantryError(
      "E_CHECKPOINT",
      `${metaPath}: format is ${JSON.stringify(meta.format)}, not ${FORMAT}`,
    );
  }
  const testStats = await readStats(dir, "test");
  if (testStats === undefined) {
    throw new GantryError("E_CHECKPOINT", `${statsPath(dir, "test")}: missing (train the classifier again)`);
  }
  const modelJson = join(dir, MODEL_JSON);
  const model = await loadLayersModelFile(modelJson);
  try {
    model.getLayer(FEATURES_LAYER);
  } catch {
    model.dispose();
    throw new GantryError(
      "E_CHECKPOINT",
      `${modelJson}: has no layer ${FEATURES_LAYER}: not a gantry classifier`,
    );
  }
  return { model, dir, meta, testStats };
}
