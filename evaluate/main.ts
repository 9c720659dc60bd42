/**
 * `deno task evaluate`: measures a run's generated digits (or the real test set) with a classifier trained
 * on the real training set. Exit codes: 0 done, 1 a checkpoint, classifier or dataset could not be read,
 * 2 a bad flag (the message names it).
 */
import * as tf from "@tensorflow/tfjs-core";
import { join } from "node:path";
import { initBackend } from "../shared/backends/select.ts";
import { type DatasetName, loadDataset } from "../shared/data/dataset.ts";
import { errorMessage, GantryError } from "../shared/errors.ts";
import { pathExists, writeFileAtomic } from "../shared/files.ts";
import { evaluateImages, evaluateRun, type Evaluation, realFeatureStats } from "./evaluate.ts";
import { EVALUATE_USAGE, type EvaluateOptions, parseEvaluateArgs } from "./options.ts";
import { percent, prepareClassifier } from "./prepare.ts";
import { defaultClassifierDir, readStats, type StoredClassifier, writeStats } from "./store.ts";

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const PREFIX = "gantry evaluate:";
export const EVALUATION_JSON = "evaluation.json";

/** What a run's config.json says of its data, when it has one. */
async function runData(runDir: string): Promise<{ dataset?: DatasetName; data?: string; model?: string }> {
  if (!(await pathExists(runDir)) || !(await Deno.stat(runDir)).isDirectory) {
    throw new GantryError(
      "E_CONFIG",
      `--run must be a run folder: current value is ${JSON.stringify(runDir)}`,
    );
  }
  const path = join(runDir, "config.json");
  if (!(await pathExists(path))) return {};
  try {
    const { dataset, data, model } = JSON.parse(await Deno.readTextFile(path)).config ?? {};
    return { dataset, data, model };
  } catch (error) {
    throw new GantryError("E_CHECKPOINT", `${path}: cannot read it: ${errorMessage(error)}`);
  }
}

/** The measures as printed lines. */
function report(e: Evaluation, reference: string): string[] {
  const perLabel = e.perLabelAccuracy.map((a, label) => `${label}: ${(100 * a).toFixed(1)}%`).join("  ");
  return [
    `  conditional accuracy  ${percent(e.conditionalAccuracy)}`,
    `    per label           ${perLabel}`,
    `  classifier score      ${e.classifierScore.toFixed(3)} (1 to 10)`,
    `  Fréchet distance      ${e.frechetDistance.toFixed(3)} (classifier features, vs ${reference})`,
  ];
}

/** Runs what the options ask for: trains the classifier if needed, then measures --real and --run. */
export async function evaluate(options: EvaluateOptions, log: (line: string) => void): Promise<void> {
  const run = options.run === undefined ? undefined : await runData(options.run);
  if (run?.dataset && options.dataset && run.dataset !== options.dataset) {
    throw new GantryError(
      "E_CONFIG",
      `--dataset must match the run's (${run.dataset}): current value is ${JSON.stringify(options.dataset)}`,
    );
  }
  const dataset = options.dataset ?? run?.dataset ?? "mnist";
  const dataDir = options.data ?? run?.data;
  const backend = await initBackend({ backend: options.backend, log });
  tf.env().set("PROD", true);
  const classifier = await prepareClassifier({
    dataset,
    dataDir,
    dir: options.classifier ?? defaultClassifierDir(dataset),
    retrain: options.trainClassifier,
    epochs: options.classifierEpochs,
    log: (line) => log(`${PREFIX} ${line}`),
  });
  try {
    const { meta } = classifier;
    log(
      `${PREFIX} classifier ${classifier.dir}: test accuracy ${percent(meta.testAccuracy)} on ` +
        `${meta.testCount} ${meta.dataset} test images (trained on ${meta.trainCount}, ${meta.epochs} epochs)`,
    );
    if (options.real) await evaluateReal(classifier, dataset, dataDir, log);
    if (options.run !== undefined) {
      await evaluateRunAndSave(classifier, options, run?.model, backend.name, log);
    }
  } finally {
    classifier.model.dispose();
  }
}

/** The real test set, conditioned on its true labels, against the training set's features. */
async function evaluateReal(
  classifier: StoredClassifier,
  dataset: DatasetName,
  dataDir: string | undefined,
  log: (line: string) => void,
): Promise<void> {
  let trainStats = await readStats(classifier.dir, "train");
  if (trainStats === undefined) {
    const train = await loadDataset({ dataset, dataDir, split: "train" });
    trainStats = realFeatureStats(classifier.model, train);
    await writeStats(classifier.dir, "train", trainStats);
  }
  const test = await loadDataset({ dataset, dataDir, split: "test" });
  const e = evaluateImages(classifier.model, test.images, test.labels, trainStats);
  log(`${PREFIX} the real ${dataset} test set (${test.count} images, their true labels):`);
  for (const line of report(e, `the ${trainStats.count} training images`)) log(line);
}

async function evaluateRunAndSave(
  classifier: StoredClassifier,
  options: EvaluateOptions,
  model: string | undefined,
  backend: string,
  log: (line: string) => void,
): Promise<void> {
  const runDir = options.run!;
  const started = performance.now();
  let e;
  try {
    e = await evaluateRun(classifier.model, classifier.testStats, {
      runDir,
      step: options.step,
      count: options.count,
      seed: options.seed,
    });
  } catch (error) {
    // load_generator.ts names generate's flag; here the run folder is --run.
    if (error instanceof GantryError && error.code === "E_CONFIG") {
      throw new GantryError("E_CONFIG", error.message.replace(/^--checkpoint/, "--run"));
    }
    throw error;
  }
  const seconds = (performance.now() - started) / 1000;
  log(
    `${PREFIX} ${runDir}: ${e.checkpoint} (epoch ${e.epoch}, step ${e.step}), ${e.samples} samples ` +
      `(${e.samplesPerLabel} per label, seed ${e.seed}):`,
  );
  const reference = `the ${classifier.testStats.count} ${classifier.meta.dataset} test images`;
  for (const line of report(e, reference)) log(line);
  const record = {
    format: "gantry-evaluation-1",
    run: runDir,
    model,
    dataset: classifier.meta.dataset,
    ...e,
    reference: { split: "test", count: classifier.testStats.count },
    classifier: { dir: classifier.dir, testAccuracy: classifier.meta.testAccuracy },
    backend,
    seconds,
    evaluatedAt: new Date().toISOString(),
  };
  const path = join(runDir, EVALUATION_JSON);
  await writeFileAtomic(path, JSON.stringify(record, null, 2) + "\n");
  log(`${PREFIX} wrote ${path}`);
}

/** The command line's entry: parses `args`, runs, and returns the exit code; errors go to stderr. */
export async function main(args: string[]): Promise<number> {
  let options: EvaluateOptions | "help";
  try {
    options = parseEvaluateArgs(args);
  } catch (error) {
    console.error(`${PREFIX} ${errorMessage(error)}`);
    return EXIT_USAGE;
  }
  if (options === "help") {
    console.log(EVALUATE_USAGE);
    return EXIT_OK;
  }
  try {
    await evaluate(options, (line) => console.log(line));
    return EXIT_OK;
  } catch (error) {
    console.error(`${PREFIX} ${errorMessage(error)}`);
    return error instanceof GantryError && error.code === "E_CONFIG" ? EXIT_USAGE : EXIT_FAILED;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
