import { assert, assertEquals, assertThrows } from "../shared/testing.ts";
import { segmentName, SharedSegment, unlinkSegment } from "../shared/shared_memory.ts";
import { Adam } from "./adam.ts";
import { KernelMemory, REGION_ALIGN, regionBytes } from "./kernel_memory.ts";
import { masterArrays } from "./master_arrays.ts";

const ADAM = { lr: 1e-3, beta1: 0.5, beta2: 0.999, epsilon: 1e-7 };

Deno.test("kernel memory hands out zeroed, aligned regions that do not overlap, then says it is full", () => {
  const memory = new KernelMemory([10, REGION_ALIGN / 4 + 1]);
  const a = memory.floats(10);
  const b = memory.floats(REGION_ALIGN / 4 + 1);
  assertEquals([a.byteOffset, b.byteOffset], [0, REGION_ALIGN]);
  assertEquals(regionBytes(REGION_ALIGN / 4 + 1), 2 * REGION_ALIGN);
  assert(a.every((x) => x === 0) && b.every((x) => x === 0));
  assert(memory.holds(a) && !memory.holds(new Float32Array(4)));
  assertThrows(() => memory.floats(1), Error, "KernelMemory: no room for 1 more floats");
});

Deno.test("the published weights are G and D with their staged updates side by side, Adam's moments elsewhere", () => {
  const arrays = masterArrays(1000, 300, ADAM, 2);
  const { generator: g, stagedGenerator: sg, discriminator: d, stagedDiscriminator: sd, published } = arrays;
  assertEquals([g, sg, d, sd].map((a) => a.byteOffset), [0, 1, 2, 3].map((i) => i * REGION_ALIGN));
  assertEquals([published.byteOffset, published.byteLength], [0, 4 * REGION_ALIGN]);
  for (const other of [arrays.gradG, arrays.gradD, arrays.adamG.m, arrays.adamD.v, ...arrays.slots]) {
    assert(arrays.memory.holds(other) && other.byteOffset >= published.byteLength);
  }
  assertEquals(arrays.slots.map((slot) => slot.length), [1000, 1000]);
});

Deno.test("a segment mapped over a region is what the kernels read and write, and zeros once closed", () => {
  const size = 50_000;
  const memory = new KernelMemory(new Array(Adam.REGIONS + 2).fill(size));
  const adam = new Adam(size, ADAM, memory);
  const sum = memory.floats(size);
  const slot = memory.floats(size);
  const name = segmentName("test");
  const worker = SharedSegment.create(name, regionBytes(size));
  try {
    const mapped = SharedSegment.open(name, regionBytes(size), memory.pointerTo(slot));
    // Written by the "worker" through its own mapping, summed by the kernel where it lies.
    const written = new Float32Array(worker.bytes.buffer, 0, size);
    for (let i = 0; i < size; i++) written[i] = i % 7;
    assertEquals(slot[6], 6);
    assertEquals(adam.sumInto(sum, [slot], [0.5]), -1);
    assertEquals([sum[0], sum[5], sum[size - 1]], [0, 2.5, ((size - 1) % 7) / 2]);
    // And the kernel's writes are what the other side reads.
    slot.fill(2);
    assertEquals(written[123], 2);
    mapped.close();
    assertEquals([slot[0], slot[6], written[6]], [0, 0, 2]);
    assertThrows(
      () => SharedSegment.open(name, 4096, memory.pointerTo(slot)),
      Error,
      "a fixed mapping must be whole 65536-byte pages",
    );
  } finally {
    worker.close();
    unlinkSegment(name);
  }
});

Deno.test("kernels split over threads give the same bits as one thread, NaN check included", () => {
  const size = 100_003; // not a whole number of vectors, nor of parts
  const results = [1, 3].map((threads) => {
    const memory = new KernelMemory(new Array(Adam.REGIONS + 4).fill(size), threads, 10_000);
    try {
      const adam = new Adam(size, ADAM, memory);
      const [params, sum, a, b] = [0, 1, 2, 3].map(() => memory.floats(size));
      for (let i = 0; i < size; i++) {
        params[i] = Math.sin(i);
        a[i] = Math.cos(i * 0.37);
        b[i] = (i % 11) - 5;
      }
      const clean = adam.sumInto(sum, [a, b], [0.25, 0.125]);
      adam.apply(params, sum);
      adam.apply(params, sum);
      b[size - 1] = NaN;
      const dirty = adam.sumInto(sum, [a, b], [0.25, 0.125]);
      return { clean, dirty, params: params.slice(), m: adam.m.slice(), v: adam.v.slice() };
    } finally {
      memory.close();
    }
  });
  assertEquals([results[0].clean, results[0].dirty], [-1, 1]);
  assertEquals([results[1].clean, results[1].dirty], [-1, 1]);
  assertEquals(results[1].params, results[0].params);
  assertEquals(results[1].m, results[0].m);
  assertEquals(results[1].v, results[0].v);
});
