import { assert, assertClose, assertEquals, assertThrows } from "../shared/testing.ts";
import { GantryError } from "../shared/errors.ts";
import { globalBatch, parseScalingArgs } from "./args.ts";
import {
  BREAKDOWN,
  buildRows,
  combinePeers,
  combineRuns,
  CSV_COLUMNS,
  type RunSummary,
  type StepMetrics,
  summarizeRun,
  toCsv,
  toTable,
} from "./report.ts";

function steps(stepMs: number[], computeMs = 5): StepMetrics[] {
  return stepMs.map((ms, i) => ({
    step: i + 1,
    stepMs: ms,
    computeMs,
    workers: 1,
    networkMs: 2,
    optimizerMs: 1,
  }));
}

Deno.test("summarizeRun() leaves out the warm-up and takes medians; buildRows() gives speed-up and efficiency", () => {
  const one = summarizeRun(steps([500, 20, 10, 10, 30]), 1, 64, 1, 5);
  assertEquals(one.measuredSteps, 4);
  assertEquals(one.stepMs, 15, "median of 20, 10, 10, 30");
  assertEquals(one.imagesPerSec, 64 / 0.015);
  assertEquals(one.overheadMs, 10, "step minus the simulated 5 ms");
  assertEquals(one.otherMs, 15 - 8, "what the breakdown does not explain");
  const two = summarizeRun(steps([999, 20, 20]), 2, 128, 1);
  const rows = buildRows(
    [two, one],
    new Map([[1, { name: "ddp", imagesPerSec: 100 }], [2, { name: "ddp", imagesPerSec: 150 }]]),
  );
  assertEquals(rows.map((r) => r.workers), [1, 2]);
  assertClose(
    [rows[1].speedup, rows[1].efficiency, rows[1].peerEfficiency!],
    [1.5, 0.75, 0.75],
    1e-12,
    "2 workers",
  );
  const csv = toCsv(rows, { compute: "simulated", model: "mlp", wire: "float32", balance: false }).trim()
    .split("\n");
  assertEquals(csv[0], CSV_COLUMNS.join(","));
  assertEquals(csv.length, 3);
  assert(
    toTable(rows, {
      compute: "simulated",
      model: "mlp",
      wire: "float32",
      balance: false,
      stepMs: 5,
      strong: false,
    })
      .includes("SIMULATED compute"),
    "the table says the compute was simulated",
  );
});

Deno.test("parseScalingArgs() reads the issue's flags and names the flag at fault", () => {
  const args = parseScalingArgs([
    "--workers",
    "4,1,2",
    "--model",
    "mlp",
    "--strong",
    "--compute=simulated",
    "--out",
    "x",
  ]);
  assertEquals(args.workers, [1, 2, 4]);
  assertEquals([globalBatch(args, 1), globalBatch(args, 4)], [64, 64], "--strong: the global batch stays");
  assertEquals(globalBatch(parseScalingArgs(["--out=x", "--workers=1,4"]), 4), 256, "weak: per worker");
  for (
    const [argv, flag] of [[["--workers", "0"], "--workers"], [["--model", "vgg"], "--model"], [
      [],
      "--out",
    ]] as const
  ) {
    const error = assertThrows(
      () => parseScalingArgs([...argv, ...(flag === "--out" ? [] : ["--out=x"])]),
      GantryError,
    );
    assert(error.message.includes(flag), error.message);
  }
});

Deno.test("combineRuns() and combinePeers() take the medians of repeated runs", () => {
  const run = (stepMs: number, network: number): RunSummary => ({
    workers: 2,
    globalBatch: 128,
    measuredSteps: 10,
    stepMs,
    imagesPerSec: 128 / (stepMs / 1000),
    breakdown: {
      ...Object.fromEntries(BREAKDOWN.map((k) => [k, 1])),
      networkMs: network,
    } as RunSummary["breakdown"],
    otherMs: stepMs / 10,
    overheadMs: stepMs - 5,
    lossD: 1,
    lossG: 2,
  });
  const combined = combineRuns([run(300, 9), run(100, 1), run(200, 5)]);
  assertEquals(
    [
      combined.stepMs,
      combined.imagesPerSec,
      combined.breakdown.networkMs,
      combined.otherMs,
      combined.overheadMs,
    ],
    [200, 640, 5, 20, 195],
  );
  assertEquals(combined.measuredSteps, 30);
  assertEquals(
    combinePeers([{ name: "ddp", imagesPerSec: 90 }, { name: "ddp", imagesPerSec: 70 }, {
      name: "ddp",
      imagesPerSec: 80,
    }]),
    { name: "ddp", imagesPerSec: 80 },
  );
  assertEquals(combinePeers([{ name: "gloo", ms: 5 }, { name: "gloo", skipped: "no torch" }]), {
    name: "gloo",
    skipped: "no torch",
  });
});
