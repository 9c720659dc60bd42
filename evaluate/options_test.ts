import { GantryError } from "../shared/errors.ts";
import { assertEquals, assertThrows } from "../shared/testing.ts";
import {
  DEFAULT_CLASSIFIER_EPOCHS,
  DEFAULT_COUNT,
  DEFAULT_SEED,
  type EvaluateOptions,
  MAX_COUNT,
  MAX_SEED,
  parseEvaluateArgs,
} from "./options.ts";

Deno.test("parseEvaluateArgs() defaults to 1000 samples per label, seed 1, the latest step and the auto backend", () => {
  assertEquals(parseEvaluateArgs(["--run", "runs/a"]), {
    run: "runs/a",
    real: false,
    trainClassifier: false,
    step: undefined,
    count: DEFAULT_COUNT,
    seed: DEFAULT_SEED,
    dataset: undefined,
    data: undefined,
    classifier: undefined,
    classifierEpochs: DEFAULT_CLASSIFIER_EPOCHS,
    backend: "auto",
  });
});

Deno.test("parseEvaluateArgs() reads every flag", () => {
  const options = parseEvaluateArgs([
    "--run=runs/b",
    "--step",
    "40",
    "--count",
    "5",
    "--seed=0",
    "--real",
    "--train-classifier",
    "--classifier-epochs",
    "2",
    "--dataset",
    "fashion-mnist",
    "--data",
    "/data/f",
    "--classifier",
    "/tmp/c",
    "--backend",
    "cpu",
  ]);
  assertEquals(options, {
    run: "runs/b",
    real: true,
    trainClassifier: true,
    step: 40,
    count: 5,
    seed: 0,
    dataset: "fashion-mnist",
    data: "/data/f",
    classifier: "/tmp/c",
    classifierEpochs: 2,
    backend: "cpu",
  });
  assertEquals((parseEvaluateArgs(["--real"]) as EvaluateOptions).real, true);
  assertEquals(parseEvaluateArgs(["--run", "x", "--help"]), "help");
});

Deno.test("parseEvaluateArgs() rejects bad values naming the flag and the value", () => {
  const cases: Array<[string[], string]> = [
    [[], "nothing to do: give --run RUN_DIR, --real or --train-classifier"],
    [
      ["--run", "r", "--count", "0"],
      `--count must be an integer from 1 to ${MAX_COUNT}: current value is "0"`,
    ],
    [["--run", "r", "--count", "1e3"], `--count must be an integer from 1 to ${MAX_COUNT}`],
    [
      ["--run", "r", "--seed", "-1"],
      `--seed must be an integer from 0 to ${MAX_SEED}: current value is "-1"`,
    ],
    [
      ["--real", "--dataset", "cifar"],
      `--dataset must be one of mnist, fashion-mnist: current value is "cifar"`,
    ],
    [["--real", "--backend", "gpu"], "--backend must be one of auto, tensorflow, wasm, cpu"],
    [["--real", "--count", "5"], "--count applies to --run only"],
    [["--run", ""], "--run must not be empty"],
    [["--run", "r", "--colour", "red"], "--colour"],
  ];
  for (const [args, message] of cases) {
    const error = assertThrows(() => parseEvaluateArgs(args), GantryError, message);
    assertEquals(error.code, "E_CONFIG", args.join(" "));
  }
});
