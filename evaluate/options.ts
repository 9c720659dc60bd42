/**
 * The flags of `deno task evaluate`. Like `deno task generate`, this tool is not a training role, so it has
 * its own small table here rather than a place in config/options.ts; errors follow the same shape:
 * GantryError("E_CONFIG") naming the flag and the value at fault.
 */
import { configError, flagError as fail, integerFlag, parseToolFlags } from "../config/tool_flags.ts";
import type { BackendChoice } from "../shared/backends/select.ts";
import { DATASET_NAMES, type DatasetName } from "../shared/data/dataset.ts";

/** Samples per label: 1000 gives 10,000 images, as many as the real test set they are compared with. */
export const DEFAULT_COUNT = 1000;
export const MAX_COUNT = 10_000;
/** A fixed default, so that two runs are measured on the same noise unless asked otherwise. */
export const DEFAULT_SEED = 1;
export const MAX_SEED = 2 ** 32 - 1;
export const DEFAULT_CLASSIFIER_EPOCHS = 4;
export const MAX_CLASSIFIER_EPOCHS = 100;
const BACKENDS: readonly BackendChoice[] = ["auto", "tensorflow", "wasm", "cpu"];

export interface EvaluateOptions {
  /** Run folder whose generator to measure. */
  run?: string;
  /** Measure the real test set against the real training set. */
  real: boolean;
  /** Train the classifier again even if its folder holds one. */
  trainClassifier: boolean;
  /** Checkpoint step of --run; absent: the latest. */
  step?: number;
  count: number;
  seed: number;
  /** Absent: the run's dataset with --run, else mnist. */
  dataset?: DatasetName;
  data?: string;
  /** Classifier folder; absent: .cache/classifier/<dataset>. */
  classifier?: string;
  classifierEpochs: number;
  backend: BackendChoice;
}

export const EVALUATE_USAGE = `Usage: deno task evaluate (--run RUN_DIR | --real | --train-classifier) [flags]

Measures generated digits with a CNN classifier trained on the real training set (trained on first use and
kept in .cache/classifier/<dataset>/): conditional accuracy (overall and per label), classifier score
(exp of the mean KL(p(y|x) || p(y)), 1 to 10) and the Fréchet distance between the classifier's features
of the images and of the real test set.

  --run RUN_DIR          measure the generator of this run's latest checkpoint; writes RUN_DIR/evaluation.json
  --step N               with --run: checkpoints/step-N instead of the latest
  --count N              with --run: samples per label, 1-${MAX_COUNT} (default: ${DEFAULT_COUNT})
  --seed S               with --run: seed of the noise, 0-${MAX_SEED} (default: ${DEFAULT_SEED})
  --real                 measure the real test set against the training set (the floor for any generator)
  --train-classifier     train the classifier again, even if one is cached
  --classifier-epochs N  epochs of classifier training, 1-${MAX_CLASSIFIER_EPOCHS} (default: ${DEFAULT_CLASSIFIER_EPOCHS})
  --dataset NAME         ${DATASET_NAMES.join(" or ")} (default: the run's, else mnist)
  --data DIR             folder of IDX files (default: the dataset's packaged copy)
  --classifier DIR       classifier folder (default: .cache/classifier/<dataset>)
  --backend NAME         ${BACKENDS.join(", ")} (default: auto, the fastest that loads)
  --help                 show this text`;

const FLAGS = {
  run: { type: "string" },
  step: { type: "string" },
  count: { type: "string" },
  seed: { type: "string" },
  real: { type: "boolean" },
  "train-classifier": { type: "boolean" },
  "classifier-epochs": { type: "string" },
  dataset: { type: "string" },
  data: { type: "string" },
  classifier: { type: "string" },
  backend: { type: "string" },
  help: { type: "boolean" },
} as const;

function optionalInteger(
  flag: string,
  raw: string | undefined,
  min: number,
  max: number,
): number | undefined {
  return raw === undefined ? undefined : integerFlag(flag, raw, min, max);
}

function oneOf<T extends string>(flag: string, raw: string | undefined, values: readonly T[]): T | undefined {
  if (raw === undefined) return undefined;
  if (!(values as readonly string[]).includes(raw)) {
    throw fail(flag, `must be one of ${values.join(", ")}`, raw);
  }
  return raw as T;
}

function nonEmpty(flag: string, raw: string | undefined): string | undefined {
  if (raw === "") throw fail(flag, "must not be empty", raw);
  return raw;
}

/** Parses the flags; returns "help" for --help, or throws GantryError("E_CONFIG") naming the bad flag. */
export function parseEvaluateArgs(args: string[]): EvaluateOptions | "help" {
  const values = parseToolFlags(args, FLAGS);
  if (values.help) return "help";
  const options: EvaluateOptions = {
    run: nonEmpty("run", values.run),
    real: values.real ?? false,
    trainClassifier: values["train-classifier"] ?? false,
    step: optionalInteger("step", values.step, 0, Number.MAX_SAFE_INTEGER),
    count: optionalInteger("count", values.count, 1, MAX_COUNT) ?? DEFAULT_COUNT,
    seed: optionalInteger("seed", values.seed, 0, MAX_SEED) ?? DEFAULT_SEED,
    dataset: oneOf("dataset", values.dataset, DATASET_NAMES),
    data: nonEmpty("data", values.data),
    classifier: nonEmpty("classifier", values.classifier),
    classifierEpochs:
      optionalInteger("classifier-epochs", values["classifier-epochs"], 1, MAX_CLASSIFIER_EPOCHS) ??
        DEFAULT_CLASSIFIER_EPOCHS,
    backend: oneOf("backend", values.backend, BACKENDS) ?? "auto",
  };
  if (options.run === undefined && !options.real && !options.trainClassifier) {
    throw configError("nothing to do: give --run RUN_DIR, --real or --train-classifier (see --help)");
  }
  for (const flag of ["step", "count", "seed"] as const) {
    if (values[flag] !== undefined && options.run === undefined) {
      throw fail(flag, "applies to --run only, which is absent", values[flag]!);
    }
  }
  return options;
}
