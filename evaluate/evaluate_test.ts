/**
 * The measures on cases with known answers, through a real (tiny) classifier: real images conditioned on
 * their labels score the classifier's accuracy, constant images score 10% and a classifier score of 1,
 * and a set compared with its own statistics has distance 0.
 */
import * as tf from "@tensorflow/tfjs-core";
import { writeTestCheckpoint } from "../generate/test_checkpoint.ts";
import { loadDataset } from "../shared/data/dataset.ts";
import { GantryError } from "../shared/errors.ts";
import { IMAGE_PIXELS, IMAGE_SIDE, modelSpecs, NUM_CLASSES } from "../shared/models/specs.ts";
import { StepComputer } from "../shared/step.ts";
import { assert, assertClose, assertEquals, assertRejects } from "../shared/testing.ts";
import { pixelsToUnit } from "./classifier.ts";
import { EpochEvaluator, evaluationHook, type EvaluationLine } from "./epoch.ts";
import { evaluateImages, evaluateRun, realFeatureStats } from "./evaluate.ts";
import { DEFAULT_SEED } from "./options.ts";
import { TINY_TEST_EXAMPLES, tinyClassifier } from "./test_classifier.ts";

/** The trace of a covariance: the scale a distance of "0" is judged against. */
function trace(cov: Float64Array, dim: number): number {
  let sum = 0;
  for (let i = 0; i < dim; i++) sum += cov[i * dim + i];
  return sum;
}

async function testSet() {
  return await loadDataset({ dataset: "mnist", split: "test", examples: TINY_TEST_EXAMPLES });
}

Deno.test("real images conditioned on their true labels score the classifier's accuracy, at distance 0 from themselves", async () => {
  const classifier = await tinyClassifier();
  const test = await testSet();
  const before = tf.memory().numTensors;
  const e = evaluateImages(classifier.model, test.images, test.labels, classifier.testStats);
  assertEquals(tf.memory().numTensors, before, "no tensor left behind");

  // The accuracy computed another way: TF's own argmax over the model's predictions.
  const hits = tf.tidy(() => {
    const x = tf.tensor4d(pixelsToUnit(test.images), [test.count, IMAGE_SIDE, IMAGE_SIDE, 1]);
    const predicted = (classifier.model.predict(x) as tf.Tensor).argMax(-1);
    return predicted.equal(tf.tensor1d(test.labels, "int32")).sum().dataSync()[0];
  });
  assertEquals(e.conditionalAccuracy, hits / test.count);
  assertEquals(e.conditionalAccuracy, classifier.meta.testAccuracy, "the accuracy recorded at training");
  assert(e.conditionalAccuracy > 0.7, `far above chance: ${e.conditionalAccuracy}`);
  assert(e.classifierScore > 2, `informative, balanced predictions: score ${e.classifierScore}`);
  // The stored statistics are of these very images: the same features, so distance 0.
  const scale = trace(classifier.testStats.cov, classifier.testStats.dim);
  assert(e.frechetDistance <= 1e-6 * scale, `distance ${e.frechetDistance} (trace ${scale})`);
});

Deno.test("constant images score exactly 10% whatever their labels, a classifier score of 1 and a large distance", async () => {
  const classifier = await tinyClassifier();
  const count = 20;
  const labels = Array.from({ length: NUM_CLASSES * count }, (_, i) => Math.floor(i / count));
  const test = await testSet();
  const real = evaluateImages(classifier.model, test.images, test.labels, classifier.testStats);
  for (const value of [-1, 0, 1]) {
    const images = new Float32Array(labels.length * IMAGE_PIXELS).fill(value);
    const e = evaluateImages(classifier.model, images, labels, classifier.testStats);
    // Every image gets the same prediction, so exactly the tenth of the labels that is that class is right.
    assertEquals(e.conditionalAccuracy, 0.1, `images of ${value}`);
    assertEquals(e.perLabelAccuracy.filter((a) => a === 1).length, 1);
    assertEquals(e.perLabelAccuracy.filter((a) => a === 0).length, NUM_CLASSES - 1);
    assertClose([e.classifierScore], [1], 1e-5, `images of ${value}`);
    assert(
      e.frechetDistance > 10 * real.frechetDistance + 1,
      `${e.frechetDistance} vs real ${real.frechetDistance}`,
    );
  }
});

Deno.test("realFeatureStats() of half the test set: 0 from itself, near the other half, far from blank images", async () => {
  const classifier = await tinyClassifier();
  const test = await testSet();
  const half = (test.count / 2) * IMAGE_PIXELS;
  const a = realFeatureStats(classifier.model, { images: test.images.subarray(0, half) });
  const selfA = evaluateImages(
    classifier.model,
    test.images.subarray(0, half),
    test.labels.subarray(0, test.count / 2),
    a,
  );
  const scale = trace(a.cov, a.dim);
  assert(selfA.frechetDistance <= 1e-6 * scale, `self distance ${selfA.frechetDistance}`);
  const constant = evaluateImages(
    classifier.model,
    new Float32Array(half).fill(-1),
    test.labels.subarray(0, test.count / 2),
    a,
  );
  const halves = evaluateImages(
    classifier.model,
    test.images.subarray(half),
    test.labels.subarray(test.count / 2),
    a,
  );
  assert(halves.frechetDistance > 0, "two different samples are not at distance 0");
  assert(
    halves.frechetDistance < constant.frechetDistance / 10,
    `${halves.frechetDistance} vs ${constant.frechetDistance}`,
  );
});

Deno.test("evaluateRun() and the coordinator's --eval-every draw the same samples and agree", async () => {
  const classifier = await tinyClassifier();
  const runDir = await Deno.makeTempDir({ prefix: "gantry-evaluate-" });
  try {
    const latentDim = 100;
    const saved = await writeTestCheckpoint(runDir, { model: "mlp", latentDim, step: 7, weightsSeed: 2 });
    const count = 6;
    const fromCheckpoint = await evaluateRun(classifier.model, classifier.testStats, {
      runDir,
      count,
      seed: DEFAULT_SEED,
    });
    assertEquals([fromCheckpoint.step, fromCheckpoint.samples, fromCheckpoint.samplesPerLabel], [7, 60, 6]);
    const again = await evaluateRun(classifier.model, classifier.testStats, {
      runDir,
      count,
      seed: DEFAULT_SEED,
    });
    assertEquals(again.frechetDistance, fromCheckpoint.frechetDistance, "the same seed, the same samples");
    const other = await evaluateRun(classifier.model, classifier.testStats, { runDir, count, seed: 99 });
    assert(other.frechetDistance !== fromCheckpoint.frechetDistance, "another seed, other samples");

    const evaluator = await EpochEvaluator.open({
      every: 2,
      count,
      dataset: "mnist",
      classifierDir: classifier.dir,
      latentDim,
    });
    const sampler = new StepComputer(modelSpecs("mlp", latentDim), 0);
    const lines: EvaluationLine[] = [];
    const logged: string[] = [];
    try {
      const hook = evaluationHook(evaluator, {
        sampler,
        generator: () => saved.generator,
        recorder: { appendRecord: (line) => lines.push(line as EvaluationLine) },
        log: (line) => logged.push(line),
        latentDim,
      });
      await hook(1, 7, false);
      assertEquals(lines.length, 0, "epoch 1 is not due with --eval-every 2");
      await hook(2, 14, false);
      await hook(3, 21, true);
      assertEquals(lines.map((l) => [l.type, l.epoch, l.step]), [["evaluation", 2, 14], [
        "evaluation",
        3,
        21,
      ]]);
      assert(logged[0].includes("epoch 2 evaluation (60 samples"), logged[0]);
    } finally {
      sampler.dispose();
      evaluator.dispose();
    }
    // The coordinator's plain-ops forward and the checkpoint's Layers model differ by float rounding only.
    const line = lines[0];
    assertClose([line.conditionalAccuracy], [fromCheckpoint.conditionalAccuracy], 1 / 60 + 1e-9, "accuracy");
    assertClose(
      [line.classifierScore],
      [fromCheckpoint.classifierScore],
      1e-3 * line.classifierScore,
      "score",
    );
    assertClose(
      [line.frechetDistance],
      [fromCheckpoint.frechetDistance],
      1e-3 * line.frechetDistance,
      "distance",
    );
  } finally {
    await Deno.remove(runDir, { recursive: true });
  }
});

Deno.test("EpochEvaluator.open() fails at once, naming the flag, without a classifier or with another dataset's", async () => {
  const classifier = await tinyClassifier();
  const empty = await Deno.makeTempDir({ prefix: "gantry-no-classifier-" });
  try {
    const options = { every: 1, count: 1, latentDim: 100 };
    const missing = await assertRejects(
      () => EpochEvaluator.open({ ...options, dataset: "mnist", classifierDir: empty }),
      GantryError,
      `--eval-classifier needs a classifier in ${empty}`,
    );
    assertEquals(missing.code, "E_CONFIG");
    assert(missing.message.includes("deno task evaluate --train-classifier"), missing.message);
    const other = await assertRejects(
      () => EpochEvaluator.open({ ...options, dataset: "fashion-mnist", classifierDir: classifier.dir }),
      GantryError,
      "was trained on mnist, not on fashion-mnist",
    );
    assertEquals(other.code, "E_CONFIG");
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});
