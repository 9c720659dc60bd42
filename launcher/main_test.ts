import { assertEquals } from "../shared/testing.ts";
import { loadConfig } from "../config/load.ts";
import { planWorkers } from "./main.ts";

Deno.test("planWorkers() starts one worker per GPU, else one per core with the cores shared out", () => {
  const defaults = loadConfig("train", []);
  assertEquals(planWorkers(defaults, 4, 16), { workers: 4, threads: undefined });
  assertEquals(planWorkers(defaults, 0, 8), { workers: 8, threads: 1 });
  assertEquals(planWorkers(loadConfig("train", ["--workers", "2"]), 0, 8), { workers: 2, threads: 4 });
  assertEquals(planWorkers(loadConfig("train", ["--workers", "3", "--threads", "2"]), 0, 8), {
    workers: 3,
    threads: 2,
  });
});
