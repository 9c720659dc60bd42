/**
 * Turns the workers' per-shard sums into the global batch's means, so the update is that of one process
 * with the whole batch whatever the number of workers.
 */
import type { ResultMessage } from "../shared/protocol.ts";

export interface PhaseTotals {
  count: number;
  loss: number;
  realScore: number;
  fakeScore: number;
  maxComputeMs: number;
}

/** Writes the mean gradient over all shards into `out` (one fused pass per shard) and returns the means. */
export function aggregateGradients(results: ResultMessage[], out: Float32Array): PhaseTotals {
  let count = 0;
  for (const r of results) count += r.count;
  out.fill(0);
  const totals: PhaseTotals = { count, loss: 0, realScore: 0, fakeScore: 0, maxComputeMs: 0 };
  for (const r of results) {
    const g = r.grads;
    for (let i = 0; i < out.length; i++) out[i] += g[i];
    totals.loss += r.lossSum;
    totals.realScore += r.realScoreSum;
    totals.fakeScore += r.fakeScoreSum;
    totals.maxComputeMs = Math.max(totals.maxComputeMs, r.computeMs);
  }
  const scale = 1 / count;
  for (let i = 0; i < out.length; i++) out[i] *= scale;
  totals.loss *= scale;
  totals.realScore *= scale;
  totals.fakeScore *= scale;
  return totals;
}

/** Sums the shards' BatchNorm sums (layout of the state vector: sum[ch] then sumOfSquares[ch] per layer). */
export function sumBatchNormSums(results: ResultMessage[], size: number): Float32Array {
  const out = new Float32Array(size);
  for (const r of results) {
    const s = r.batchNormSums;
    if (!s) continue;
    for (let i = 0; i < size; i++) out[i] += s[i];
  }
  return out;
}

/** Shard sizes for `workers` shards of `batch` examples: as even as possible, summing to `batch`. */
export function shardSizes(batch: number, workers: number): number[] {
  const n = Math.min(batch, workers);
  const base = Math.floor(batch / n);
  const extra = batch % n;
  return Array.from({ length: n }, (_, i) => base + (i < extra ? 1 : 0));
}
