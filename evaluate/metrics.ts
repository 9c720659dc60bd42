/**
 * The quality measures of generated digits, as pure functions of a classifier's outputs (the GAN
 * literature's way of scoring MNIST samples with a classifier trained on real MNIST):
 *
 * - conditional accuracy: how often a sample is classified as the label it was generated for;
 * - classifier score: exp(E_x KL(p(y|x) || p(y))), the Inception Score with an MNIST classifier: 1 when
 *   every sample gets the same prediction, up to the number of classes for confident predictions spread
 *   evenly over the classes;
 * - Fréchet distance between Gaussians fitted to the classifier's features of two image sets (FID's
 *   formula): |mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrt(S1 S2)); 0 for identical statistics.
 */
import { GantryError } from "../shared/errors.ts";
import { traceSqrtProduct } from "./linalg.ts";

export interface ConditionalAccuracy {
  /** The fraction of all samples classified as their label. */
  overall: number;
  /** Per label, the fraction of its samples classified as it (NaN for a label with no sample). */
  perLabel: number[];
  /** Samples per label. */
  counts: number[];
}

/** A Gaussian fitted to a set of feature vectors. */
export interface FeatureStats {
  dim: number;
  count: number;
  mean: Float64Array;
  /** Unbiased (n - 1) covariance, row-major dim x dim. */
  cov: Float64Array;
}

function dataError(message: string): GantryError {
  return new GantryError("E_DATA", message);
}

/** Rows of `classes` probabilities; checks the shape. */
function rowCount(probs: ArrayLike<number>, classes: number): number {
  const n = probs.length / classes;
  if (!Number.isInteger(n) || n < 1) {
    throw dataError(`probabilities must be whole rows of ${classes}: current length is ${probs.length}`);
  }
  return n;
}

function argmax(values: ArrayLike<number>, from: number, length: number): number {
  let best = 0;
  for (let k = 1; k < length; k++) if (values[from + k] > values[from + best]) best = k;
  return best;
}

/** How often argmax p(y|x_i) is labels[i], overall and per label. */
export function conditionalAccuracy(
  probs: ArrayLike<number>,
  labels: ArrayLike<number>,
  classes: number,
): ConditionalAccuracy {
  const n = rowCount(probs, classes);
  if (labels.length !== n) {
    throw dataError(`${labels.length} labels for ${n} rows of probabilities`);
  }
  const hits = new Array<number>(classes).fill(0);
  const counts = new Array<number>(classes).fill(0);
  for (let i = 0; i < n; i++) {
    const label = labels[i];
    if (!(Number.isInteger(label) && label >= 0 && label < classes)) {
      throw dataError(`label ${label} at index ${i} is outside 0..${classes - 1}`);
    }
    counts[label]++;
    if (argmax(probs, i * classes, classes) === label) hits[label]++;
  }
  return {
    overall: hits.reduce((a, b) => a + b, 0) / n,
    perLabel: hits.map((h, k) => (counts[k] === 0 ? NaN : h / counts[k])),
    counts,
  };
}

/**
 * exp of the mean KL divergence between each p(y|x_i) and their mean p(y), over all samples as one split
 * (the Inception Score's formula). Terms with p(y|x) = 0 contribute 0 (the limit of p log p).
 */
export function classifierScore(probs: ArrayLike<number>, classes: number): number {
  const n = rowCount(probs, classes);
  const marginal = new Float64Array(classes);
  for (let i = 0; i < n; i++) for (let k = 0; k < classes; k++) marginal[k] += probs[i * classes + k] / n;
  let kl = 0;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < classes; k++) {
      const p = probs[i * classes + k];
      if (p > 0) kl += p * (Math.log(p) - Math.log(marginal[k]));
    }
  }
  return Math.exp(kl / n);
}

/** Mean and unbiased covariance of `features`, rows of `dim` values, in float64. */
export function featureStats(features: ArrayLike<number>, dim: number): FeatureStats {
  const count = features.length / dim;
  if (!Number.isInteger(count) || count < 2) {
    throw dataError(
      `feature statistics need at least 2 whole rows of ${dim}: current length is ${features.length}`,
    );
  }
  const mean = new Float64Array(dim);
  for (let i = 0; i < count; i++) for (let j = 0; j < dim; j++) mean[j] += features[i * dim + j];
  for (let j = 0; j < dim; j++) mean[j] /= count;
  const cov = new Float64Array(dim * dim);
  const centered = new Float64Array(dim);
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < dim; j++) centered[j] = features[i * dim + j] - mean[j];
    for (let a = 0; a < dim; a++) {
      const ca = centered[a];
      if (ca === 0) continue;
      for (let b = a; b < dim; b++) cov[a * dim + b] += ca * centered[b];
    }
  }
  for (let a = 0; a < dim; a++) {
    for (let b = a; b < dim; b++) {
      const value = cov[a * dim + b] / (count - 1);
      cov[a * dim + b] = value;
      cov[b * dim + a] = value;
    }
  }
  return { dim, count, mean, cov };
}

/** |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr(sqrt(S1 S2)); clamped at 0, which rounding can undershoot. */
export function frechetDistance(a: FeatureStats, b: FeatureStats): number {
  if (a.dim !== b.dim) throw dataError(`feature sizes differ: ${a.dim} and ${b.dim}`);
  const n = a.dim;
  let distance = 0;
  for (let j = 0; j < n; j++) distance += (a.mean[j] - b.mean[j]) ** 2;
  for (let j = 0; j < n; j++) distance += a.cov[j * n + j] + b.cov[j * n + j];
  distance -= 2 * traceSqrtProduct(a.cov, b.cov, n);
  return Math.max(0, distance);
}
