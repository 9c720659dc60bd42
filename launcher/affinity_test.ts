import { assert, assertEquals, assertThrows } from "../shared/testing.ts";
import { allowedCpus, batchSchedulingAvailable, boundCommand, parseCpuList } from "./affinity.ts";

Deno.test("parseCpuList() reads taskset's lists, ranges included, and refuses anything else", () => {
  assertEquals(parseCpuList("0"), [0]);
  assertEquals(parseCpuList("0-3,6,8-9\n"), [0, 1, 2, 3, 6, 8, 9]);
  assertThrows(() => parseCpuList("0-a"), Error, 'not a CPU list: "0-a"');
});

Deno.test("workers are bound round-robin to the CPUs this process may use, the last first", async () => {
  const cpus = await allowedCpus();
  assert(Array.isArray(cpus) && cpus.length === navigator.hardwareConcurrency, String(cpus));
  assertEquals([0, 1, 2].map((i) => boundCommand([4, 7], i, 3, true)), [
    ["taskset", "-c", "7"],
    ["taskset", "-c", "4"],
    ["taskset", "-c", "7"],
  ]);
});

Deno.test("workers with a core each run under SCHED_BATCH, when chrt can do it", async () => {
  assertEquals([0, 1].map((i) => boundCommand([4, 7], i, 2, true)), [
    ["chrt", "--batch", "0", "taskset", "-c", "7"],
    ["chrt", "--batch", "0", "taskset", "-c", "4"],
  ]);
  assertEquals(boundCommand([4, 7], 0, 2, false), ["taskset", "-c", "7"]);
  assert(await batchSchedulingAvailable(), "chrt (util-linux) runs a program under SCHED_BATCH here");
  // The policy reaches the program: chrt -p reports it for the started process.
  const { stdout } = await new Deno.Command("chrt", { args: ["--batch", "0", "chrt", "-p", "0"] }).output();
  assert(/SCHED_BATCH/.test(new TextDecoder().decode(stdout)), new TextDecoder().decode(stdout));
});
