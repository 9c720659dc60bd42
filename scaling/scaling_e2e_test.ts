/**
 * `deno task scaling` end to end, as lean as it gets: simulated compute, mlp, 3 steps, 1 and 2 workers,
 * with --trace. Checks the table, scaling.csv, the plot and a 2-worker trace (every process's phases).
 */
import { assert, assertEquals } from "../shared/testing.ts";
import { TEST_BACKEND } from "../test/backend.ts";
import { expectExitZero, startProcess } from "../test/processes.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const TIMEOUT_MS = 180_000;

Deno.test({
  name:
    "deno task scaling --compute simulated --steps 3 --workers 1,2 writes the table, scaling.csv, the plot and traces",
  sanitizeResources: false,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "gantry-scaling-" });
    try {
      const tool = startProcess("scaling", [
        "task",
        `--config=${ROOT}deno.json`,
        "scaling",
        "--workers=1,2",
        "--model=mlp",
        "--compute=simulated",
        "--step-ms=4",
        "--steps=3",
        "--warmup=1",
        "--batch-per-worker=16",
        `--backend=${TEST_BACKEND}`,
        "--trace",
        `--out=${out}`,
      ]);
      await expectExitZero(tool, TIMEOUT_MS);
      assert(
        tool.output().includes("SIMULATED compute"),
        "the report says plainly that compute was simulated",
      );

      const [header, ...lines] = (await Deno.readTextFile(`${out}/scaling.csv`)).trim().split("\n");
      const columns = header.split(",");
      for (
        const c of [
          "workers",
          "compute",
          "images_per_s",
          "speedup",
          "efficiency",
          "network_ms",
          "overhead_ms",
        ]
      ) {
        assert(columns.includes(c), `scaling.csv has ${c}: ${header}`);
      }
      const rows = lines.map((l) => Object.fromEntries(l.split(",").map((v, i) => [columns[i], v])));
      assertEquals(rows.map((r) => r.workers), ["1", "2"]);
      assertEquals(rows.map((r) => r.global_batch), ["16", "32"], "weak scaling: 16 per worker");
      assert(rows.every((r) => r.compute === "simulated" && Number(r.images_per_s) > 0), header);
      assertEquals(Number(rows[0].speedup), 1);
      assert(
        rows.every((r) => Number(r.step_ms) >= 4),
        "a step cannot be shorter than its simulated compute",
      );

      const png = await Deno.readFile(`${out}/scaling.png`);
      assertEquals(Array.from(png.subarray(1, 4)), [80, 78, 71], "a PNG");

      const trace = JSON.parse(await Deno.readTextFile(`${out}/trace-2w.json`));
      const events = trace.traceEvents as Array<
        { ph: string; ts: number; dur: number; pid: number; name: string }
      >;
      const complete = events.filter((e) => e.ph === "X");
      assert(complete.every((e) => Number.isFinite(e.ts) && e.dur >= 0), "every span has ts and dur");
      const pids = new Set(complete.map((e) => e.pid));
      assert(pids.has(0) && pids.has(1) && pids.has(2), `coordinator and both workers traced: ${[...pids]}`);
      for (const name of ["D wait", "G sum+adam", "compute D", "decode task G"]) {
        assert(complete.some((e) => e.name === name), `a "${name}" span`);
      }
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
