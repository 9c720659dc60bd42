import { assertClose, assertEquals } from "../shared/testing.ts";
import type { ResultMessage } from "../shared/protocol.ts";
import { aggregateGradients, balancedShardSizes, shardSizes, sumBatchNormSums } from "./aggregate.ts";
import { Adam } from "./adam.ts";

function result(count: number, grads: number[], lossSum: number, bn?: number[]): ResultMessage {
  return {
    type: "result",
    version: 1,
    step: 1,
    phase: "G",
    count,
    grads: new Float32Array(grads),
    lossSum,
    realScoreSum: count * 0.5,
    fakeScoreSum: count * 0.25,
    computeMs: count,
    ...(bn ? { batchNormSums: new Float32Array(bn) } : {}),
  };
}

Deno.test("aggregateGradients() divides the shards' sums by the global batch, not by the number of workers", () => {
  const out = new Float32Array(2);
  const totals = aggregateGradients([result(3, [3, 6], 9), result(1, [1, -2], 3)], out);
  assertClose(out, [1, 1], 1e-7, "mean gradient");
  assertEquals(totals.count, 4);
  assertClose([totals.loss, totals.realScore, totals.fakeScore], [3, 0.5, 0.25], 1e-7, "means");
  assertEquals(totals.maxComputeMs, 3);
});

Deno.test("sumBatchNormSums() adds the shards' sums elementwise", () => {
  const sums = sumBatchNormSums([result(1, [0], 0, [1, 2]), result(1, [0], 0, [3, 4])], 2);
  assertEquals(Array.from(sums), [4, 6]);
});

Deno.test("shardSizes() splits a batch as evenly as possible and never makes an empty shard", () => {
  assertEquals(shardSizes(64, 2), [32, 32]);
  assertEquals(shardSizes(10, 3), [4, 3, 3]);
  assertEquals(shardSizes(2, 4), [1, 1]);
  assertEquals(shardSizes(7, 1), [7]);
});

Deno.test("aggregateGradients() sums any number of shards in fused passes, float16 ones by their gradScale", () => {
  const size = 5;
  const results: ResultMessage[] = [];
  const expected = new Float64Array(size);
  let count = 0;
  for (let k = 0; k < 6; k++) {
    const n = k + 1;
    count += n;
    const sum = Array.from({ length: size }, (_, i) => (k + 1) * (i - 2) * 0.5);
    sum.forEach((v, i) => expected[i] += v);
    const r = result(n, sum, n);
    if (k % 2 === 1) {
      // As a float16 worker sends it: the sum scaled by 2^3 into float16, with gradScale 1/8 to undo it.
      r.grads = new Float16Array(sum.map((v) => v * 8));
      r.gradScale = 1 / 8;
    }
    results.push(r);
  }
  const out = new Float32Array(size).fill(123);
  const totals = aggregateGradients(results, out);
  assertEquals(totals.count, count);
  assertClose(out, Array.from(expected, (v) => v / count), 1e-6, "mean over 6 shards");
  assertEquals(totals.maxComputeMs, 6);
});

Deno.test("balancedShardSizes() splits in proportion to speed, sums to the batch and leaves no shard empty", () => {
  assertEquals(balancedShardSizes(64, [100, 300]), [17, 47]);
  assertEquals(balancedShardSizes(64, [200, 200]), [32, 32]);
  assertEquals(balancedShardSizes(10, [0, 0, 0]), [4, 3, 3], "no speeds yet: even");
  assertEquals(balancedShardSizes(3, [1, 1000, 1]), [1, 1, 1]);
  for (const speeds of [[1, 2, 3], [5, 0, 7], [1e-3, 1e6], [3, 3, 3, 3, 3]]) {
    for (const batch of [speeds.length, 7, 64, 1000]) {
      const sizes = balancedShardSizes(batch, speeds);
      assertEquals(sizes.reduce((a, b) => a + b, 0), batch, `sum for ${speeds} / ${batch}`);
      assertEquals(sizes.every((s) => s >= 1), true, `no empty shard for ${speeds} / ${batch}`);
    }
  }
});

Deno.test("aggregateGradients() of float16 shards only (--wire float16) is the scaled sum over the global batch", () => {
  for (const workers of [1, 2, 3, 4]) {
    const results = Array.from({ length: workers }, (_, k) => {
      const r = result(2, [0], 0);
      r.grads = new Float16Array([k + 1, -(k + 1) * 2, 0.5]);
      r.gradScale = 2 ** -k;
      return r;
    });
    const out = new Float32Array(3);
    aggregateGradients(results, out);
    let a = 0;
    for (let k = 0; k < workers; k++) a += (k + 1) * 2 ** -k;
    assertClose(
      out,
      [a / (2 * workers), -2 * a / (2 * workers), 0.5 * (2 - 2 ** -(workers - 1)) / (2 * workers)],
      1e-6,
      `${workers} workers`,
    );
  }
});

Deno.test("the SIMD gradient sum in Adam's memory agrees with the JS sum, for 1 to 6 shards of odd sizes", () => {
  const size = 1003;
  for (const shards of [1, 2, 3, 5, 6]) {
    const results = Array.from(
      { length: shards },
      (_, k) => result(k + 1, Array.from({ length: size }, (_, i) => Math.sin(i * (k + 1.5)) * 10), k),
    );
    const plain = new Float32Array(size);
    aggregateGradients(results, plain);
    const adam = new Adam(size, { lr: 1e-3, beta1: 0.5, beta2: 0.999, epsilon: 1e-7 });
    const inside = adam.buffer();
    inside.fill(123); // last step's values must not leak into the sum
    aggregateGradients(results, inside, adam);
    assertClose(inside, Array.from(plain), 1e-5, `${shards} shard(s)`);
  }
});
