import { assert, assertEquals, assertThrows } from "../shared/testing.ts";
import { allowedCpus, boundCommand, parseCpuList } from "./affinity.ts";

Deno.test("parseCpuList() reads taskset's lists, ranges included, and refuses anything else", () => {
  assertEquals(parseCpuList("0"), [0]);
  assertEquals(parseCpuList("0-3,6,8-9\n"), [0, 1, 2, 3, 6, 8, 9]);
  assertThrows(() => parseCpuList("0-a"), Error, 'not a CPU list: "0-a"');
});

Deno.test("workers are bound round-robin to the CPUs this process may use, the last first", async () => {
  const cpus = await allowedCpus();
  assert(Array.isArray(cpus) && cpus.length === navigator.hardwareConcurrency, String(cpus));
  assertEquals([0, 1, 2].map((i) => boundCommand([4, 7], i)), [
    ["taskset", "-c", "7"],
    ["taskset", "-c", "4"],
    ["taskset", "-c", "7"],
  ]);
});
