import { assert, assertEquals } from "../shared/testing.ts";
import type { Dataset } from "../shared/data/dataset.ts";
import { BatchPlan, shardDraw } from "./batch_plan.ts";

function tinyDataset(count: number): Dataset {
  const images = new Uint8Array(count * 784);
  for (let i = 0; i < count; i++) images[i * 784] = i; // the first pixel names the example
  return {
    name: "mnist",
    split: "train",
    count,
    height: 28,
    width: 28,
    images,
    labels: Uint8Array.from({ length: count }, (_, i) => i % 10),
    source: "test",
  };
}

Deno.test("BatchPlan visits every example once per epoch and drops the last partial batch", () => {
  const plan = new BatchPlan(tinyDataset(10), 3, 4, 1);
  assertEquals(plan.stepsPerEpoch, 3);
  const seen: number[] = [];
  for (let s = 0; s < 3; s++) {
    const draw = plan.next();
    for (let i = 0; i < draw.count; i++) seen.push(draw.real[i * 784]);
  }
  assert(plan.epochDone);
  assertEquals(new Set(seen).size, 9);
  plan.next();
  assertEquals([plan.epoch, plan.step], [2, 4]);
});

Deno.test("BatchPlan draws the same batches and noise from the same seed, and others from another", () => {
  const a = new BatchPlan(tinyDataset(20), 4, 3, 7).next();
  const b = new BatchPlan(tinyDataset(20), 4, 3, 7).next();
  const c = new BatchPlan(tinyDataset(20), 4, 3, 8).next();
  assertEquals(Array.from(a.gZ), Array.from(b.gZ));
  assertEquals(Array.from(a.realLabels), Array.from(b.realLabels));
  assert(Array.from(a.gZ).join() !== Array.from(c.gZ).join());
});

Deno.test("BatchPlan.restore() continues the same sequence of draws", () => {
  const a = new BatchPlan(tinyDataset(20), 4, 3, 7);
  a.next();
  const b = new BatchPlan(tinyDataset(20), 4, 3, 99);
  b.restore(a.state());
  assertEquals(Array.from(b.next().dZ), Array.from(a.next().dZ));
});

Deno.test("shardDraw() cuts a draw into consecutive shards that cover it exactly", () => {
  const draw = new BatchPlan(tinyDataset(20), 5, 3, 1).next();
  const shards = shardDraw(draw, [3, 2], 3);
  assertEquals(shards.map((s) => s.count), [3, 2]);
  assertEquals([...shards[0].gZ, ...shards[1].gZ], Array.from(draw.gZ));
  assertEquals([...shards[0].realLabels, ...shards[1].realLabels], Array.from(draw.realLabels));
  assertEquals(shards[1].real.length, 2 * 784);
});
