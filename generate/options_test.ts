import { GantryError } from "../shared/errors.ts";
import { assert, assertEquals, assertThrows } from "../shared/testing.ts";
import { DEFAULT_COUNT, MAX_COUNT, MAX_SEED, parseGenerateArgs } from "./options.ts";

const REQUIRED = ["--checkpoint", "runs/a", "--out", "grid.png"];

Deno.test("parseGenerateArgs() defaults to all ten labels, ten samples, the latest step and a random seed", () => {
  assertEquals(parseGenerateArgs(REQUIRED), {
    checkpoint: "runs/a",
    step: undefined,
    labels: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    count: DEFAULT_COUNT,
    seed: undefined,
    out: "grid.png",
  });
});

Deno.test("parseGenerateArgs() reads every flag in both --flag value and --flag=value forms", () => {
  const options = parseGenerateArgs([
    ...REQUIRED,
    "--step=40",
    "--labels",
    "3, 1,4,1",
    "--count=5",
    "--seed",
    String(MAX_SEED),
  ]);
  assert(options !== "help");
  assertEquals([options.step, options.labels, options.count, options.seed], [40, [3, 1, 4, 1], 5, MAX_SEED]);
});

Deno.test("parseGenerateArgs() returns help for --help, even without the required flags", () => {
  assertEquals(parseGenerateArgs(["--help"]), "help");
});

Deno.test("parseGenerateArgs() rejects labels that are not digits 0-9, giving the value", () => {
  for (const labels of ["1,x", "10", "", "1,,2", "-1", "1;2", "3.0"]) {
    const error = assertThrows(
      () => parseGenerateArgs([...REQUIRED, "--labels", labels]),
      GantryError,
      "--labels must list digits 0-9",
    );
    assert(error.message.includes(`current value is ${JSON.stringify(labels)}`), error.message);
    assertEquals(error.code, "E_CONFIG");
  }
});

Deno.test("parseGenerateArgs() rejects counts, steps and seeds that are not integers in range", () => {
  const cases: Array<[string, string]> = [
    ["--count", "0"],
    ["--count", String(MAX_COUNT + 1)],
    ["--count", "2.5"],
    ["--count", "1e1"],
    ["--step", "x"],
    ["--step", "-1"],
    ["--seed", String(MAX_SEED + 1)],
    ["--seed", "0x10"],
    ["--seed", "-7"],
  ];
  for (const [flag, value] of cases) {
    const error = assertThrows(
      () => parseGenerateArgs([...REQUIRED, flag, value]),
      GantryError,
      `${flag} must be an integer from`,
    );
    assert(error.message.includes(`current value is ${JSON.stringify(value)}`), error.message);
  }
});

Deno.test("parseGenerateArgs() requires --checkpoint and a .png --out, and rejects unknown flags by name", () => {
  assertThrows(() => parseGenerateArgs(["--out", "a.png"]), GantryError, "--checkpoint is required");
  assertThrows(() => parseGenerateArgs(["--checkpoint", "runs/a"]), GantryError, "--out is required");
  assertThrows(
    () => parseGenerateArgs(["--checkpoint", "runs/a", "--out", "a.jpg"]),
    GantryError,
    '--out must name a .png file: current value is "a.jpg"',
  );
  assertThrows(() => parseGenerateArgs([...REQUIRED, "--labes", "1"]), GantryError, "--labes");
  assertThrows(() => parseGenerateArgs([...REQUIRED, "extra"]), GantryError, "extra");
  assertThrows(() => parseGenerateArgs([...REQUIRED, "--count"]), GantryError, "--count");
});
