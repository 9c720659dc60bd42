import { assert, assertEquals, assertThrows } from "../shared/testing.ts";
import {
  allowedCpus,
  batchSchedulingAvailable,
  boundCommand,
  parseCpuList,
  workerCores,
} from "./affinity.ts";

Deno.test("parseCpuList() reads taskset's lists, ranges included, and refuses anything else", () => {
  assertEquals(parseCpuList("0"), [0]);
  assertEquals(parseCpuList("0-3,6,8-9\n"), [0, 1, 2, 3, 6, 8, 9]);
  assertThrows(() => parseCpuList("0-a"), Error, 'not a CPU list: "0-a"');
});

Deno.test("workers are bound round-robin to the CPUs this process may use, the last first", async () => {
  const cpus = await allowedCpus();
  assert(Array.isArray(cpus) && cpus.length === navigator.hardwareConcurrency, String(cpus));
  const placement = { cpus: [4, 7], workers: 3, each: 1, chrtWorks: true };
  assertEquals([0, 1, 2].map((i) => boundCommand(placement, i)), [
    ["taskset", "-c", "7"],
    ["taskset", "-c", "4"],
    ["taskset", "-c", "7"],
  ]);
});

Deno.test("workers with a core each run under SCHED_BATCH, when chrt can do it", async () => {
  const placement = { cpus: [4, 7], workers: 2, each: 1, chrtWorks: true };
  assertEquals([0, 1].map((i) => boundCommand(placement, i)), [
    ["chrt", "--batch", "0", "taskset", "-c", "7"],
    ["chrt", "--batch", "0", "taskset", "-c", "4"],
  ]);
  assertEquals(boundCommand({ ...placement, chrtWorks: false }, 0), ["taskset", "-c", "7"]);
  assert(await batchSchedulingAvailable(), "chrt (util-linux) runs a program under SCHED_BATCH here");
  // The policy reaches the program: chrt -p reports it for the started process.
  const { stdout } = await new Deno.Command("chrt", { args: ["--batch", "0", "chrt", "-p", "0"] }).output();
  assert(/SCHED_BATCH/.test(new TextDecoder().decode(stdout)), new TextDecoder().decode(stdout));
});

Deno.test("a worker with several threads is bound to as many cores, blocks from the last core down", () => {
  // One worker on a 2-core machine computes with 2 threads: both cores, not two threads on one core.
  assertEquals(boundCommand({ cpus: [0, 1], workers: 1, each: 2, chrtWorks: true }, 0), [
    "chrt",
    "--batch",
    "0",
    "taskset",
    "-c",
    "1,0",
  ]);
  assertEquals([0, 1].map((i) => workerCores([0, 1, 2, 3], i, 2)), [[3, 2], [1, 0]]);
  // More threads than cores: blocks wrap round, no core is listed twice for one worker, and no SCHED_BATCH.
  assertEquals(workerCores([0, 1], 0, 3), [1, 0]);
  assertEquals([0, 1].map((i) => workerCores([0, 1, 2], i, 2)), [[2, 1], [0, 2]]);
  assertEquals(boundCommand({ cpus: [0, 1, 2], workers: 2, each: 2, chrtWorks: true }, 1), [
    "taskset",
    "-c",
    "0,2",
  ]);
});
