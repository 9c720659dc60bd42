/**
 * `--eval-every K` on the coordinator: at the end of every K-th epoch (and of the run) the generator's
 * current weights draw --eval-count samples of each label, which the classifier of `deno task evaluate`
 * measures; the result is one line of metrics.jsonl with `"type": "evaluation"`, drawn in losses.png.
 *
 * The samples are those `deno task evaluate --run DIR --count N` draws from the checkpoint of the same
 * step (same noise, seed 1, same order), so the two tools agree up to float rounding.
 */
import type { RunRecorder } from "../coordinator/recorder.ts";
import type { DatasetName } from "../shared/data/dataset.ts";
import type { NetWeights } from "../shared/models/types.ts";
import type { StepComputer } from "../shared/step.ts";
import { GantryError } from "../shared/errors.ts";
import { evaluateImages, type Evaluation, generateBalanced, type LabelGenerator } from "./evaluate.ts";
import { DEFAULT_SEED } from "./options.ts";
import { defaultClassifierDir, hasClassifier, loadClassifier, type StoredClassifier } from "./store.ts";

/** The metrics.jsonl line of one evaluation; `type` tells it from the per-step lines. */
export interface EvaluationLine extends Evaluation {
  type: "evaluation";
  epoch: number;
  step: number;
  samplesPerLabel: number;
  evalMs: number;
  time: string;
}

export const EVALUATION_LINE_TYPE = "evaluation";

export interface EpochEvaluatorOptions {
  every: number;
  /** Samples per label. */
  count: number;
  dataset: DatasetName;
  /** The classifier folder (--eval-classifier); default .cache/classifier/<dataset>. */
  classifierDir?: string;
  latentDim: number;
}

export class EpochEvaluator {
  readonly #classifier: StoredClassifier;
  readonly #opts: EpochEvaluatorOptions;

  private constructor(classifier: StoredClassifier, opts: EpochEvaluatorOptions) {
    this.#classifier = classifier;
    this.#opts = opts;
  }

  /**
   * Loads the classifier before training starts, so that a missing one fails the run at once (E_CONFIG,
   * naming the flag and the command that makes it) rather than at the end of the first epoch.
   */
  static async open(opts: EpochEvaluatorOptions): Promise<EpochEvaluator> {
    const dir = opts.classifierDir ?? defaultClassifierDir(opts.dataset);
    const flag = opts.classifierDir === undefined ? "--eval-every" : "--eval-classifier";
    if (!(await hasClassifier(dir))) {
      throw new GantryError(
        "E_CONFIG",
        `${flag} needs a classifier in ${dir}, and there is none: make it with ` +
          `deno task evaluate --train-classifier --dataset ${opts.dataset}` +
          (opts.classifierDir === undefined ? "" : ` --classifier ${dir}`),
      );
    }
    const classifier = await loadClassifier(dir);
    if (classifier.meta.dataset !== opts.dataset) {
      classifier.model.dispose();
      throw new GantryError(
        "E_CONFIG",
        `${flag}: the classifier in ${dir} was trained on ${classifier.meta.dataset}, not on ${opts.dataset}`,
      );
    }
    return new EpochEvaluator(classifier, opts);
  }

  get classifierDir(): string {
    return this.#classifier.dir;
  }

  /** Whether the end of `epoch` is one to evaluate at: every --eval-every epochs, and the run's last step. */
  due(epoch: number, last: boolean): boolean {
    return last || epoch % this.#opts.every === 0;
  }

  /** Draws the samples with `generate` and measures them. */
  evaluate(generate: LabelGenerator, epoch: number, step: number): EvaluationLine {
    const started = performance.now();
    const { count, latentDim } = this.#opts;
    const { images, labels } = generateBalanced(generate, { count, seed: DEFAULT_SEED, latentDim });
    const measured = evaluateImages(this.#classifier.model, images, labels, this.#classifier.testStats);
    return {
      type: EVALUATION_LINE_TYPE,
      epoch,
      step,
      samplesPerLabel: count,
      ...measured,
      evalMs: performance.now() - started,
      time: new Date().toISOString(),
    };
  }

  dispose(): void {
    this.#classifier.model.dispose();
  }
}

/** What the hook needs of the coordinator. */
export interface EvaluationHookParts {
  /** The coordinator's own forward pass (it draws the sample grids too). */
  sampler: Pick<StepComputer, "setGeneratorWeights" | "generateImages">;
  /** The generator's current master weights. */
  generator: () => NetWeights;
  recorder: Pick<RunRecorder, "appendRecord">;
  log: (line: string) => void;
  latentDim: number;
}

/** The trainer's `evaluateEpoch`: evaluates when due, appends the line to metrics.jsonl and logs it. */
export function evaluationHook(
  evaluator: EpochEvaluator,
  parts: EvaluationHookParts,
): (epoch: number, step: number, last: boolean) => Promise<void> {
  return (epoch, step, last) => {
    if (!evaluator.due(epoch, last)) return Promise.resolve();
    const weights = parts.generator();
    parts.sampler.setGeneratorWeights(weights.trainable);
    const generate: LabelGenerator = (z, label) => {
      const labels = new Uint8Array(z.length / parts.latentDim).fill(label);
      return parts.sampler.generateImages(z, labels, weights.state);
    };
    const line = evaluator.evaluate(generate, epoch, step);
    parts.recorder.appendRecord(line);
    parts.log(
      `epoch ${epoch} evaluation (${line.samples} samples, ${
        (line.evalMs / 1000).toFixed(1)
      } s): conditional ` +
        `accuracy ${(100 * line.conditionalAccuracy).toFixed(2)}%, classifier score ` +
        `${line.classifierScore.toFixed(3)}, Fréchet distance ${line.frechetDistance.toFixed(3)}`,
    );
    return Promise.resolve();
  };
}
