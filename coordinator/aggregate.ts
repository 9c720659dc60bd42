/**
 * Turns the workers' per-shard sums into the global batch's means, so the update is that of one process
 * with the whole batch whatever the number of workers.
 */
import type { ResultMessage } from "../shared/protocol.ts";
import type { Adam } from "./adam.ts";
import { GantryError } from "../shared/errors.ts";
import { float16Bits, float16Table, widenFloat16 } from "../shared/float16.ts";

export interface PhaseTotals {
  count: number;
  loss: number;
  realScore: number;
  fakeScore: number;
  maxComputeMs: number;
}

/**
 * Writes the mean gradient over all shards into `out` and returns the means of the scalars. The shards'
 * gradients are summed in one fused pass (four shards per pass: one read of each input, one write of `out`),
 * each scaled by its `gradScale` (float16 gradients arrive scaled into float16's range), then divided by the
 * global batch.
 */
const scratchArrays: Float32Array[] = [];

function scratch(i: number, size: number): Float32Array {
  if (scratchArrays[i]?.length !== size) scratchArrays[i] = new Float32Array(size);
  return scratchArrays[i];
}

/**
 * Sums float32 gradients faster than the JS loop below (Adam's SIMD kernel, when `out` is its buffer), and
 * returns the index of the first input that is not finite, or -1.
 */
export interface GradientSummer {
  sumInto(out: Float32Array, inputs: Float32Array[], scales: number[]): number;
}

/** A shard's gradient holds a NaN or an infinity: `index` is its place in the results. */
export class NonFiniteGradient extends GantryError {
  readonly index: number;
  constructor(index: number) {
    super("E_BAD_VALUES", "result.grads: holds a NaN or an infinity");
    this.index = index;
  }
}

export function aggregateGradients(
  results: ResultMessage[],
  out: Float32Array,
  summer?: GradientSummer,
): PhaseTotals {
  const totals = phaseTotals(results);
  const scale = 1 / totals.count;
  const scales = results.map((r) => r.gradScale ?? 1);
  if (summer && results.every((r) => r.grads instanceof Float32Array)) {
    const bad = summer.sumInto(
      out,
      results.map((r) => r.grads as Float32Array),
      scales.map((s) => s * scale),
    );
    if (bad >= 0) throw new NonFiniteGradient(bad);
  } else if (results.length <= 4 && results.every((r) => r.grads instanceof Float16Array)) {
    // All float16 (--wire float16): widened through the table inside the one fused pass.
    fusedSumFloat16(out, results.map((r) => float16Bits(r.grads as Float16Array)), scales, scale);
  } else {
    sumFloat32(results, scales, out, scale);
  }
  return totals;
}

/** An optimizer that stages its update from a sum of gradients. */
export type GradientStager = Pick<Adam, "stageSum" | "stage" | "sumInto">;

/**
 * Stages the optimizer's update of `params` into `out` from the mean gradient over all shards, and returns
 * the means of the scalars. float32 shards go straight to the optimizer, which sums them in its own pass
 * (`gradient` holds the sum when it must be written out); float16 ones are summed here first.
 */
export function stageMeanGradient(
  results: ResultMessage[],
  optimizer: GradientStager,
  params: Float32Array,
  out: Float32Array,
  gradient: Float32Array,
): PhaseTotals {
  if (!results.every((r) => r.grads instanceof Float32Array)) {
    const totals = aggregateGradients(results, gradient, optimizer);
    optimizer.stage(params, gradient, out);
    return totals;
  }
  const totals = phaseTotals(results);
  const scale = 1 / totals.count;
  const scales = results.map((r) => (r.gradScale ?? 1) * scale);
  const grads = results.map((r) => r.grads as Float32Array);
  const bad = optimizer.stageSum(params, grads, scales, out, gradient);
  if (bad >= 0) throw new NonFiniteGradient(bad);
  return totals;
}

/** The scalars' means over the global batch, and the slowest shard's compute time. */
function phaseTotals(results: ResultMessage[]): PhaseTotals {
  let count = 0;
  for (const r of results) count += r.count;
  const totals: PhaseTotals = { count, loss: 0, realScore: 0, fakeScore: 0, maxComputeMs: 0 };
  for (const r of results) {
    totals.loss += r.lossSum;
    totals.realScore += r.realScoreSum;
    totals.fakeScore += r.fakeScoreSum;
    totals.maxComputeMs = Math.max(totals.maxComputeMs, r.computeMs);
  }
  const scale = 1 / count;
  totals.loss *= scale;
  totals.realScore *= scale;
  totals.fakeScore *= scale;
  return totals;
}

function sumFloat32(results: ResultMessage[], scales: number[], out: Float32Array, scale: number): void {
  // float16 shards are widened first (into scratch arrays kept between steps), so that the fused loop
  // reads float32 only: V8 reads Float16Array elements slowly.
  const grads = results.map((r, i) =>
    r.grads instanceof Float16Array ? widenFloat16(r.grads, scratch(i, out.length)) : r.grads
  );
  for (let first = 0; first < grads.length; first += 4) {
    const last = first + 4 >= grads.length;
    fusedSum(out, grads.slice(first, first + 4), scales.slice(first, first + 4), first > 0, last ? scale : 1);
  }
}

let zeroBits = new Uint16Array(0);

/** out = (sum_k table[bits_k] * s_k) * finalScale for one to four float16 inputs, in one pass. */
function fusedSumFloat16(out: Float32Array, b: Uint16Array[], s: number[], finalScale: number): void {
  const t = float16Table();
  const n = out.length;
  // Absent inputs read float16 zeros (bits 0) from one array kept between calls.
  if (zeroBits.length < n) zeroBits = new Uint16Array(n);
  const zero = zeroBits;
  const [b0, b1 = zero, b2 = zero, b3 = zero] = b;
  const [s0, s1 = 0, s2 = 0, s3 = 0] = s;
  for (let i = 0; i < n; i++) {
    out[i] = (t[b0[i]] * s0 + t[b1[i]] * s1 + t[b2[i]] * s2 + t[b3[i]] * s3) * finalScale;
  }
}

/** out = ((accumulate ? out : 0) + sum_k g_k * s_k) * finalScale, for up to four inputs, in one pass. */
function fusedSum(
  out: Float32Array,
  g: Float32Array[],
  s: number[],
  accumulate: boolean,
  finalScale: number,
): void {
  const n = out.length;
  const zero = new Float32Array(0);
  const [g0, g1 = zero, g2 = zero, g3 = zero] = g;
  const [s0, s1 = 0, s2 = 0, s3 = 0] = s;
  const k = g.length;
  const a = accumulate ? 1 : 0;
  // Separate loops per arity: the branch-free inner body is what V8 compiles tight.
  if (k === 1) { for (let i = 0; i < n; i++) out[i] = (a * out[i] + g0[i] * s0) * finalScale; }
  else if (k === 2) {
    for (let i = 0; i < n; i++) {
      out[i] = (a * out[i] + g0[i] * s0 + g1[i] * s1) * finalScale;
    }
  } else if (k === 3) {
    for (let i = 0; i < n; i++) out[i] = (a * out[i] + g0[i] * s0 + g1[i] * s1 + g2[i] * s2) * finalScale;
  } else {
    for (let i = 0; i < n; i++) {
      out[i] = (a * out[i] + g0[i] * s0 + g1[i] * s1 + g2[i] * s2 + g3[i] * s3) * finalScale;
    }
  }
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

/**
 * --balance: shard sizes in proportion to each worker's speed (images/s; 0 or unknown counts as the mean of
 * the known ones), summing to `batch`, none empty while batch >= workers. Largest remainders get the leftover
 * examples, so the split is deterministic for given speeds.
 */
export function balancedShardSizes(batch: number, speeds: number[]): number[] {
  const n = Math.min(batch, speeds.length);
  const known = speeds.slice(0, n).filter((v) => Number.isFinite(v) && v > 0);
  if (known.length === 0) return shardSizes(batch, n);
  const mean = known.reduce((x, y) => x + y, 0) / known.length;
  const weights = speeds.slice(0, n).map((v) => (Number.isFinite(v) && v > 0 ? v : mean));
  const total = weights.reduce((x, y) => x + y, 0);
  // One example each first, then the rest in proportion.
  const rest = batch - n;
  const exact = weights.map((w) => (rest * w) / total);
  const sizes = exact.map((e) => 1 + Math.floor(e));
  let left = batch - sizes.reduce((x, y) => x + y, 0);
  const order = exact.map((e, i) => [e - Math.floor(e), i]).sort((p, q) => q[0] - p[0] || p[1] - q[1]);
  for (let j = 0; left > 0; j = (j + 1) % n, left--) sizes[order[j][1]]++;
  return sizes;
}
