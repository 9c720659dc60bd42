/**
 * `deno task evaluate` and the coordinator's --eval-every end to end: real processes, on checkpoints
 * written by the trainer's own code, measured with the tiny classifier of test_classifier.ts (the suite
 * starts with no cached classifier).
 */
import { join } from "node:path";
import { writeTestCheckpoint } from "../generate/test_checkpoint.ts";
import { assert, assertClose, assertEquals } from "../shared/testing.ts";
import { TEST_BACKEND } from "../test/backend.ts";
import { cleanup, startCoordinator, startProcess, startTrain } from "../test/processes.ts";
import { EVALUATION_TITLE } from "../coordinator/plots.ts";
import { evaluateRun } from "./evaluate.ts";
import { tinyClassifier } from "./test_classifier.ts";

const ROOT = new URL("..", import.meta.url).pathname;
/** Deno start-up, TF.js, a classifier and a generator loaded, a few hundred images through each. */
const RUN_TIMEOUT_MS = 120_000;
const TRAIN_TIMEOUT_MS = 240_000;
const EXIT_USAGE = 2;

async function evaluateTask(args: string[]): Promise<{ code: number; output: string }> {
  const proc = startProcess("evaluate", ["task", `--config=${ROOT}deno.json`, "evaluate", ...args]);
  const code = await proc.exit(RUN_TIMEOUT_MS);
  return { code, output: proc.output() };
}

async function withDir(prefix: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("deno task evaluate --run prints the measures and writes evaluation.json, as evaluateRun() computes them", async () => {
  const classifier = await tinyClassifier();
  await withDir("gantry-evaluate-e2e-", async (runDir) => {
    await writeTestCheckpoint(runDir, { model: "mlp", latentDim: 100, step: 3, weightsSeed: 4 });
    const args = ["--run", runDir, "--classifier", classifier.dir, "--count", "5", "--seed", "3"];
    const { code, output } = await evaluateTask([...args, "--backend", "cpu"]);
    assertEquals(code, 0, output);
    for (const text of ["conditional accuracy", "per label", "classifier score", "Fréchet distance"]) {
      assert(output.includes(text), `prints ${text}:\n${output}`);
    }
    const saved = JSON.parse(await Deno.readTextFile(join(runDir, "evaluation.json")));
    assertEquals([saved.step, saved.samples, saved.samplesPerLabel, saved.seed], [3, 50, 5, 3]);
    assertEquals(saved.perLabelAccuracy.length, 10);
    assertEquals(saved.classifier.dir, classifier.dir);
    // The same classifier on the same backend, in this process: the same numbers.
    const expected = await evaluateRun(classifier.model, classifier.testStats, { runDir, count: 5, seed: 3 });
    assertEquals(saved.conditionalAccuracy, expected.conditionalAccuracy);
    assertClose([saved.classifierScore, saved.frechetDistance], [
      expected.classifierScore,
      expected.frechetDistance,
    ], 1e-9);
  });
});

Deno.test("deno task evaluate exits 2 naming the flag at fault", async () => {
  const classifier = await tinyClassifier();
  await withDir("gantry-evaluate-e2e-", async (runDir) => {
    await Deno.writeTextFile(join(runDir, "config.json"), JSON.stringify({ config: { dataset: "mnist" } }));
    const cases: Array<[string[], string]> = [
      [["--count", "3"], "nothing to do"],
      [["--run", join(runDir, "missing")], "--run must be a run folder"],
      [["--run", runDir, "--dataset", "fashion-mnist"], "--dataset must match the run's (mnist)"],
      [
        ["--run", runDir, "--classifier", classifier.dir, "--backend", "cpu"],
        "--run names a run with no checkpoint yet",
      ],
    ];
    for (const [args, message] of cases) {
      const { code, output } = await evaluateTask(args);
      assertEquals(code, EXIT_USAGE, `${args.join(" ")}:\n${output}`);
      assert(output.includes(message), `${args.join(" ")} should say "${message}":\n${output}`);
    }
    assert(
      !(await Deno.stat(join(runDir, "evaluation.json")).then(() => true, () => false)),
      "nothing written",
    );
  });
});

Deno.test({
  name:
    "--eval-every 1 records an evaluation line at each epoch end, draws it, and matches deno task evaluate",
  sanitizeResources: false,
  async fn() {
    const classifier = await tinyClassifier();
    await withDir("gantry-eval-every-", async (out) => {
      const train = startTrain([
        ...["--model", "mlp", "--batch-size", "32", "--examples", "64", "--epochs", "2", "--workers", "1"],
        ...["--eval-every", "1", "--eval-count", "5", "--eval-classifier", classifier.dir],
        ...["--port", "0", "--backend", TEST_BACKEND, "--progress", "none", "--out", out],
      ]);
      try {
        assertEquals(await train.exit(TRAIN_TIMEOUT_MS), 0, train.output());
      } finally {
        await cleanup(train);
      }
      const lines = (await Deno.readTextFile(join(out, "metrics.jsonl"))).trim().split("\n").map((l) =>
        JSON.parse(l)
      );
      const evaluations = lines.filter((l) => l.type === "evaluation");
      assertEquals(
        lines.filter((l) => l.type === undefined).map((l) => l.step),
        [1, 2, 3, 4],
        "every step once",
      );
      assertEquals(evaluations.map((e) => [e.epoch, e.step, e.samples]), [[1, 2, 50], [2, 4, 50]]);
      assert(/epoch 2 evaluation \(50 samples/.test(train.output()), train.output());
      assert(
        (await Deno.readTextFile(join(out, "losses.svg"))).includes(EVALUATION_TITLE),
        "drawn in losses.svg",
      );

      // The last evaluation is of the weights of the last checkpoint: deno task evaluate agrees with it.
      const args = ["--run", out, "--classifier", classifier.dir, "--count", "5", "--backend", "cpu"];
      const { code, output } = await evaluateTask(args);
      assertEquals(code, 0, output);
      const saved = JSON.parse(await Deno.readTextFile(join(out, "evaluation.json")));
      const last = evaluations[1];
      assertEquals(saved.step, last.step);
      assertClose([saved.conditionalAccuracy], [last.conditionalAccuracy], 1 / 50 + 1e-9, "accuracy");
      assertClose([saved.classifierScore], [last.classifierScore], 1e-3 * last.classifierScore, "score");
      assertClose([saved.frechetDistance], [last.frechetDistance], 1e-3 * last.frechetDistance, "distance");
    });
  },
});

Deno.test({
  name: "a coordinator with --eval-every and no classifier exits 2 before it listens, saying how to make one",
  sanitizeResources: false,
  async fn() {
    await withDir("gantry-no-classifier-", async (empty) => {
      const coordinator = startCoordinator([
        "--model",
        "mlp",
        "--port",
        "0",
        "--eval-every",
        "1",
        "--eval-classifier",
        empty,
      ]);
      try {
        assertEquals(await coordinator.exit(RUN_TIMEOUT_MS), EXIT_USAGE, coordinator.output());
        const output = coordinator.output();
        assert(output.includes(`--eval-classifier needs a classifier in ${empty}`), output);
        assert(output.includes("deno task evaluate --train-classifier"), output);
        assert(!output.includes("listening"), output);
      } finally {
        await cleanup(coordinator);
      }
    });
  },
});
