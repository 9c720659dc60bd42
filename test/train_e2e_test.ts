/**
 * End-to-end: real coordinator and worker processes on 127.0.0.1, ports picked at run time (--port 0),
 * every wait bounded. Small runs of the mlp model keep the suite within its time budget.
 */
import { freePort } from "../shared/net.ts";
import { assert, assertEquals } from "../shared/testing.ts";
import {
  cleanup,
  coordinatorUrl,
  latestCheckpoint,
  readMetrics,
  startCoordinator,
  startTrain,
  startWorker,
} from "./processes.ts";
import { TEST_BACKEND } from "./backend.ts";

const RUN_TIMEOUT_MS = 240_000;
const START_TIMEOUT_MS = 60_000;
/** 1280 examples at a global batch of 64: 20 steps an epoch, the run of the end-to-end issue. */
const SMALL_RUN = ["--model", "mlp", "--batch-size", "64", "--examples", "1280", "--progress", "lines"];

async function assertRunOutputs(
  runDir: string,
  epochs: number,
  steps: number,
  workers: number,
): Promise<void> {
  const metrics = await readMetrics(runDir);
  assertEquals(metrics.length, steps, "one metrics line per step");
  assertEquals(metrics.map((m) => m.step), Array.from({ length: steps }, (_, i) => i + 1));
  for (const m of metrics) {
    assert(Number.isFinite(m.lossD) && Number.isFinite(m.lossG), `finite losses at step ${m.step}`);
    assertEquals(m.workers, workers, `workers of step ${m.step}`);
  }
  assertEquals(metrics.at(-1)!.epoch, epochs);
  for (let e = 1; e <= epochs; e++) {
    const png = await Deno.readFile(`${runDir}/samples/epoch-${String(e).padStart(4, "0")}.png`);
    assertEquals(Array.from(png.subarray(1, 4)), [0x50, 0x4e, 0x47], "a PNG file");
    const width = new DataView(png.buffer).getUint32(16);
    assert(width >= 280, `grid width ${width} >= 280`);
  }
  const checkpoint = await latestCheckpoint(runDir);
  for (const net of ["generator", "discriminator"]) {
    const model = JSON.parse(await Deno.readTextFile(`${checkpoint}/${net}/model.json`));
    assertEquals(model.format, "layers-model");
    assertEquals(model.weightsManifest[0].paths, ["weights.bin"]);
    const bytes = (await Deno.stat(`${checkpoint}/${net}/weights.bin`)).size;
    const expected = model.weightsManifest[0].weights.reduce(
      (n: number, w: { shape: number[] }) => n + 4 * w.shape.reduce((a, b) => a * b, 1),
      0,
    );
    assertEquals(bytes, expected, `${net} weights.bin holds every weight`);
  }
  const config = JSON.parse(await Deno.readTextFile(`${runDir}/config.json`));
  assertEquals(config.workers.length, workers);
  for (const w of config.workers) {
    assert(typeof w.backend.name === "string", "each worker's backend is recorded");
  }
  assertEquals(typeof config.config.seed, "number");
}

Deno.test({
  name: "deno task train --workers 2 writes sample grids, a metrics line per step and TF.js checkpoints",
  sanitizeResources: false,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "gantry-train-" });
    const train = startTrain([
      ...SMALL_RUN,
      "--workers",
      "2",
      "--epochs",
      "2",
      "--port",
      "0",
      "--backend",
      TEST_BACKEND,
      "--out",
      out,
    ]);
    try {
      const code = await train.exit(RUN_TIMEOUT_MS);
      assertEquals(code, 0, train.output());
      assert(/\[coordinator\] .*training finished/.test(train.output()), "coordinator lines are prefixed");
      assert(/\[worker 2\] /.test(train.output()), "worker lines are prefixed");
      await assertRunOutputs(out, 2, 40, 2);
    } finally {
      await cleanup(train);
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "a coordinator and two workers started by hand with --gpu 0 and --gpu 1 train together",
  sanitizeResources: false,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "gantry-hand-" });
    // The workers start first: they retry until the coordinator is up.
    const coordinatorPort = freePort();
    const url = `ws://127.0.0.1:${coordinatorPort}`;
    const workers = [0, 1].map((gpu) =>
      startWorker(`worker ${gpu}`, ["--gpu", String(gpu), "--coordinator", url, "--backend", TEST_BACKEND])
    );
    const coordinator = startCoordinator([
      ...SMALL_RUN,
      "--workers",
      "2",
      "--epochs",
      "1",
      "--port",
      String(coordinatorPort),
      "--out",
      out,
    ]);
    try {
      assertEquals(await coordinator.exit(RUN_TIMEOUT_MS), 0, coordinator.output());
      for (const w of workers) assertEquals(await w.exit(START_TIMEOUT_MS), 0, w.output());
      await assertRunOutputs(out, 1, 20, 2);
      const config = JSON.parse(await Deno.readTextFile(`${out}/config.json`));
      assertEquals(config.workers.map((w: { gpu: number }) => w.gpu).sort(), [0, 1]);
      assert(
        /worker \d joined, from step \d+: gpu0-/.test(coordinator.output()),
        "the coordinator shows each worker",
      );
    } finally {
      await cleanup(coordinator, ...workers);
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "a worker started alone gives up after --connect-timeout-ms with a message naming the coordinator",
  sanitizeResources: false,
  async fn() {
    const port = freePort();
    const worker = startWorker("worker", [
      "--coordinator",
      `ws://127.0.0.1:${port}`,
      "--connect-timeout-ms",
      "1500",
      "--backend",
      "cpu",
    ]);
    try {
      assertEquals(await worker.exit(START_TIMEOUT_MS), 1);
      assert(
        worker.output().includes(`could not reach the coordinator at ws://127.0.0.1:${port}`),
        worker.output(),
      );
    } finally {
      await cleanup(worker);
    }
  },
});

Deno.test({
  name: "the coordinator refuses a bad flag with exit code 2 and a message naming the flag and value",
  sanitizeResources: false,
  async fn() {
    const coordinator = startCoordinator(["--batch-size", "-3"]);
    try {
      assertEquals(await coordinator.exit(START_TIMEOUT_MS), 2);
      assert(
        coordinator.output().includes(`--batch-size must be >= 1: current value is "-3"`),
        coordinator.output(),
      );
    } finally {
      await cleanup(coordinator);
    }
  },
});

Deno.test({
  name: "the coordinator prints the port it picked for --port 0",
  sanitizeResources: false,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "gantry-port-" });
    const coordinator = startCoordinator(["--model", "mlp", "--port", "0", "--examples", "64", "--out", out]);
    try {
      const url = await coordinatorUrl(coordinator, START_TIMEOUT_MS);
      assert(/^ws:\/\/127\.0\.0\.1:\d+$/.test(url) && !url.endsWith(":0"), url);
    } finally {
      await cleanup(coordinator);
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "deno task train on a terminal shows the coordinator's progress bar, one per epoch",
  sanitizeResources: false,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "gantry-tty-" });
    // `script` (util-linux) runs the command on a pseudo-terminal, as a person's shell would.
    const command = [
      Deno.execPath(),
      "task",
      `--config=${new URL("../deno.json", import.meta.url).pathname}`,
      "train",
      ...["--model=mlp", "--batch-size=32", "--examples=256", "--epochs=2", "--workers=1", "--port=0"],
      `--backend=${TEST_BACKEND}`,
      `--out=${out}`,
    ].join(" ");
    const child = new Deno.Command("script", {
      args: ["-qefc", command, "/dev/null"],
      env: { NO_COLOR: "1", COLUMNS: "160" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(RUN_TIMEOUT_MS),
    });
    try {
      const { code, stdout } = await child.output();
      const text = new TextDecoder().decode(stdout);
      assertEquals(code, 0, text.slice(-3000));
      for (const epoch of [1, 2]) {
        assert(
          new RegExp(`epoch ${epoch}/2 \\|[█░]+\\| 8/8`).test(text),
          `a full bar for epoch ${epoch}:\n${text}`,
        );
      }
      assertEquals((await readMetrics(out)).length, 16);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
