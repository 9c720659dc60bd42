/**
 * `deno task generate` end to end: the real task, as a subprocess, on checkpoints written by the trainer's
 * own `saveCheckpoint`.
 */
import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import { join } from "node:path";
import { renderGrid } from "../shared/images/grid.ts";
import { IMAGE_PIXELS } from "../shared/models/specs.ts";
import { assert, assertEquals } from "../shared/testing.ts";
import { startProcess } from "../test/processes.ts";
import { writeTestCheckpoint } from "./test_checkpoint.ts";

tf.env().set("PROD", true);
await tf.setBackend("cpu");

const ROOT = new URL("..", import.meta.url).pathname;
/** One run: Deno start-up, loading TF.js and a 1.5 M-parameter model, a 100-image forward pass. */
const RUN_TIMEOUT_MS = 60_000;
const EXIT_USAGE = 2;
const EXIT_FAILED = 1;
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** IHDR is the first chunk: width and height are big-endian uint32s at these offsets. */
const PNG_WIDTH_OFFSET = 16;
const PNG_HEIGHT_OFFSET = 20;
const PRINTED_SEED = /seed (\d+) \(random/;

async function generate(args: string[]): Promise<{ code: number; output: string }> {
  const proc = startProcess("generate", ["task", `--config=${ROOT}deno.json`, "generate", ...args]);
  const code = await proc.exit(RUN_TIMEOUT_MS);
  return { code, output: proc.output() };
}

function pngSize(bytes: Uint8Array): { width: number; height: number } {
  assertEquals([...bytes.subarray(0, PNG_SIGNATURE.length)], PNG_SIGNATURE, "a PNG file");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: view.getUint32(PNG_WIDTH_OFFSET), height: view.getUint32(PNG_HEIGHT_OFFSET) };
}

/** The size encodeGridPng gives a grid of rows x cols images. */
function gridSize(rows: number, cols: number): { width: number; height: number } {
  const { width, height } = renderGrid(new Float32Array(rows * cols * IMAGE_PIXELS), { rows, cols });
  return { width, height };
}

async function withRun(fn: (runDir: string) => Promise<void>): Promise<void> {
  const runDir = await Deno.makeTempDir({ prefix: "gantry-generate-e2e-" });
  try {
    await fn(runDir);
  } finally {
    await Deno.remove(runDir, { recursive: true });
  }
}

Deno.test("deno task generate draws one row per label and --count columns, and its printed seed redraws the grid", async () => {
  await withRun(async (runDir) => {
    await writeTestCheckpoint(runDir, { model: "mlp", latentDim: 100, step: 1, weightsSeed: 1 });
    const common = ["--checkpoint", runDir, "--labels", "3,1,4", "--count", "5"];
    const first = await generate([...common, "--out", join(runDir, "out", "first.png")]);
    assertEquals(first.code, 0, first.output);
    const seed = first.output.match(PRINTED_SEED)?.[1];
    assert(seed !== undefined, `a random seed is printed:\n${first.output}`);
    const firstPng = await Deno.readFile(join(runDir, "out", "first.png"));
    assertEquals(pngSize(firstPng), gridSize(3, 5));

    const again = await generate([...common, "--seed", seed, "--out", join(runDir, "again.png")]);
    assertEquals(again.code, 0, again.output);
    assertEquals(
      await Deno.readFile(join(runDir, "again.png")),
      firstPng,
      "the same seed draws the same grid",
    );
  });
});

Deno.test("deno task generate draws 10x10 by default, from the checkpoint --step names", async () => {
  await withRun(async (runDir) => {
    await writeTestCheckpoint(runDir, { model: "mlp", latentDim: 100, step: 1, weightsSeed: 1 });
    await writeTestCheckpoint(runDir, { model: "mlp", latentDim: 100, step: 2, weightsSeed: 2 });
    const seed = ["--seed", "9"];
    const latest = await generate(["--checkpoint", runDir, ...seed, "--out", join(runDir, "latest.png")]);
    assertEquals(latest.code, 0, latest.output);
    assert(latest.output.includes("step-00000002"), latest.output);
    const step1 = await generate([
      "--checkpoint",
      runDir,
      "--step",
      "1",
      ...seed,
      "--out",
      join(runDir, "1.png"),
    ]);
    assertEquals(step1.code, 0, step1.output);
    assert(step1.output.includes("step-00000001"), step1.output);
    const [a, b] = await Promise.all(
      [join(runDir, "latest.png"), join(runDir, "1.png")].map((p) => Deno.readFile(p)),
    );
    assertEquals(pngSize(a), gridSize(10, 10));
    assert(a.some((v, i) => v !== b[i]), "another checkpoint draws another grid");
  });
});

Deno.test("deno task generate exits 2 naming the flag at fault, and writes nothing", async () => {
  await withRun(async (runDir) => {
    await writeTestCheckpoint(runDir, { model: "mlp", latentDim: 100, step: 40, weightsSeed: 1 });
    const out = join(runDir, "never.png");
    const cases: Array<[string[], string]> = [
      [["--checkpoint", runDir, "--labels", "1,x", "--out", out], "--labels must list digits 0-9"],
      [["--checkpoint", runDir, "--count", "0", "--out", out], "--count must be an integer from 1"],
      [["--checkpoint", runDir, "--colour", "red", "--out", out], "--colour"],
      [["--checkpoint", join(runDir, "missing"), "--out", out], "--checkpoint must be a run folder"],
      [["--checkpoint", runDir, "--step", "7", "--out", out], "--step has no checkpoint step-00000007"],
    ];
    for (const [args, message] of cases) {
      const { code, output } = await generate(args);
      assertEquals(code, EXIT_USAGE, `${args.join(" ")}:\n${output}`);
      assert(output.includes(message), `${args.join(" ")} should say "${message}":\n${output}`);
    }
    assert(!(await Deno.stat(out).then(() => true, () => false)), "no PNG is written");
  });
});

Deno.test("deno task generate exits 1 when the checkpoint cannot be read", async () => {
  await withRun(async (runDir) => {
    const { dir } = await writeTestCheckpoint(runDir, {
      model: "mlp",
      latentDim: 100,
      step: 1,
      weightsSeed: 1,
    });
    await Deno.writeTextFile(join(dir, "generator", "model.json"), "{ not json");
    const { code, output } = await generate(["--checkpoint", runDir, "--out", join(runDir, "x.png")]);
    assertEquals(code, EXIT_FAILED, output);
    assert(output.includes("model.json: not a readable model.json"), output);
  });
});
