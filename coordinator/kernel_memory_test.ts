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

Deno.test("the published weights are G, D and D's staged update side by side, Adam's moments elsewhere", () => {
  const arrays = masterArrays(1000, 300, ADAM, 2);
  const { generator: g, discriminator: d, stagedDiscriminator: s, published } = arrays;
  assertEquals([g.byteOffset, d.byteOffset, s.byteOffset], [0, REGION_ALIGN, 2 * REGION_ALIGN]);
  assertEquals([published.byteOffset, published.byteLength], [0, 3 * REGION_ALIGN]);
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
