import { assertClose, assertEquals } from "../shared/testing.ts";
import type { ResultMessage } from "../shared/protocol.ts";
import { aggregateGradients, shardSizes, sumBatchNormSums } from "./aggregate.ts";

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
