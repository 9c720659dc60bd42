import { GantryError } from "../shared/errors.ts";
import { Rng } from "../shared/rng.ts";
import { assert, assertClose, assertEquals, assertThrows } from "../shared/testing.ts";
import { matmul, sqrtPsd, symmetricEigen, traceSqrtProduct } from "./linalg.ts";
import { classifierScore, conditionalAccuracy, featureStats, frechetDistance } from "./metrics.ts";

const CLASSES = 10;
/** float64 results of O(n^3) work on well-scaled matrices. */
const TIGHT = 1e-9;

/** A random symmetric positive definite n x n matrix, B B^T + eps I. */
function randomSpd(n: number, rng: Rng): Float64Array {
  const b = Float64Array.from({ length: n * n }, () => rng.normal());
  const bt = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) bt[j * n + i] = b[i * n + j];
  const m = matmul(b, bt, n);
  for (let i = 0; i < n; i++) m[i * n + i] += 0.1;
  return m;
}

function stats(mean: number[], cov: number[]) {
  return { dim: mean.length, count: 100, mean: Float64Array.from(mean), cov: Float64Array.from(cov) };
}

Deno.test("symmetricEigen() finds the eigenvalues of a hand-checked matrix and orthonormal vectors that rebuild it", () => {
  const { values } = symmetricEigen(Float64Array.from([2, 1, 1, 2]), 2);
  assertClose([...values].sort(), [1, 3], TIGHT);

  const n = 20;
  const a = randomSpd(n, new Rng(1));
  const { values: l, vectors: v } = symmetricEigen(a, n);
  const rebuilt = new Float64Array(n * n);
  const gram = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      for (let k = 0; k < n; k++) {
        rebuilt[i * n + j] += v[i * n + k] * l[k] * v[j * n + k];
        gram[i * n + j] += v[k * n + i] * v[k * n + j];
      }
    }
  }
  assertClose(rebuilt, a, TIGHT * 100, "V diag(l) V^T");
  const identity = Float64Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0));
  assertClose(gram, identity, TIGHT, "V^T V");
});

Deno.test("sqrtPsd() squares back to the matrix", () => {
  const n = 12;
  const a = randomSpd(n, new Rng(2));
  const root = sqrtPsd(a, n);
  assertClose(matmul(root, root, n), a, TIGHT * 100);
});

Deno.test("traceSqrtProduct() matches the 2x2 closed form for matrices that do not commute", () => {
  // For a 2x2 matrix M with non-negative eigenvalues, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)).
  const a = [4, 1, 1, 2];
  const b = [1, -0.5, -0.5, 3];
  const m = matmul(Float64Array.from(a), Float64Array.from(b), 2);
  assert(Math.abs(m[1] - m[2]) > 0.1, "A B is not symmetric: A and B do not commute");
  const det = (x: number[]) => x[0] * x[3] - x[1] * x[2];
  const expected = Math.sqrt(m[0] + m[3] + 2 * Math.sqrt(det(a) * det(b)));
  assertClose([traceSqrtProduct(Float64Array.from(a), Float64Array.from(b), 2)], [expected], TIGHT);
});

Deno.test("frechetDistance() of 1-D and diagonal Gaussians is |mu1 - mu2|^2 + sum (s1 + s2 - 2 sqrt(s1 s2))", () => {
  // 1-D: N(1, 4) and N(-2, 1): 3^2 + (2 - 1)^2 = 10.
  assertClose([frechetDistance(stats([1], [4]), stats([-2], [1]))], [10], TIGHT);
  // Diagonal: variances (1, 9, 0.25) and (4, 1, 0.25), means differing by (1, 0, -2).
  const expected = (1 + 0 + 4) + (1 + 4 - 2 * 2) + (9 + 1 - 2 * 3) + (0.25 + 0.25 - 2 * 0.25);
  const a = stats([0, 5, 1], [1, 0, 0, 0, 9, 0, 0, 0, 0.25]);
  const b = stats([1, 5, -1], [4, 0, 0, 0, 1, 0, 0, 0, 0.25]);
  assertClose([frechetDistance(a, b)], [expected], TIGHT);
  assertClose([frechetDistance(b, a)], [expected], TIGHT, "symmetric");
});

Deno.test("frechetDistance() is 0 for identical feature sets and |c|^2 for a set shifted by c", () => {
  const dim = 128;
  const count = 600;
  const rng = new Rng(3);
  // Correlated, ReLU-like features, as a classifier's penultimate layer gives.
  const mix = Float64Array.from({ length: dim * dim }, () => rng.normal() / Math.sqrt(dim));
  const features = new Float32Array(count * dim);
  for (let i = 0; i < count; i++) {
    const z = Float64Array.from({ length: dim }, () => rng.normal());
    for (let j = 0; j < dim; j++) {
      let v = 0;
      for (let k = 0; k < dim; k++) v += mix[j * dim + k] * z[k];
      features[i * dim + j] = Math.max(0, v);
    }
  }
  const a = featureStats(features, dim);
  const b = featureStats(features.slice(), dim);
  const total = a.cov.reduce((s, v, i) => (i % (dim + 1) === 0 ? s + v : s), 0);
  assert(frechetDistance(a, b) <= 1e-9 * total, `identical sets: ${frechetDistance(a, b)}`);

  const shift = 0.25;
  const shifted = featureStats(features.map((v) => v + shift), dim);
  assertClose([frechetDistance(a, shifted)], [dim * shift * shift], 1e-3, "shifted by 0.25 in every feature");
});

Deno.test("featureStats() gives the mean and the unbiased covariance", () => {
  const s = featureStats([1, 2, 3, 6, 5, 10], 2);
  assertEquals(s.count, 3);
  assertClose(s.mean, [3, 6], TIGHT);
  // x: 1, 3, 5 (var 4); y: 2, 6, 10 (var 16); cov 8.
  assertClose(s.cov, [4, 8, 8, 16], TIGHT);
  assertThrows(() => featureStats([1, 2], 2), GantryError, "at least 2 whole rows");
});

Deno.test("classifierScore() is 1 for uniform or identical predictions, 10 for confident balanced ones, and between", () => {
  const flat = (n: number, row: (i: number) => number[]) =>
    Float32Array.from(Array.from({ length: n }, (_, i) => row(i)).flat());
  const oneHot = (k: number) => Array.from({ length: CLASSES }, (_, j) => (j === k ? 1 : 0));
  assertClose([classifierScore(flat(50, () => Array(CLASSES).fill(0.1)), CLASSES)], [1], TIGHT, "uniform");
  assertClose([classifierScore(flat(50, () => oneHot(3)), CLASSES)], [1], TIGHT, "all the same class");
  assertClose([classifierScore(flat(100, (i) => oneHot(i % CLASSES)), CLASSES)], [10], 1e-6, "confident");
  // Confident but only two classes used: exp(log 2) = 2.
  assertClose([classifierScore(flat(40, (i) => oneHot(i % 2)), CLASSES)], [2], 1e-6, "two classes");
  const rng = new Rng(4);
  for (let trial = 0; trial < 20; trial++) {
    const probs = flat(30, () => {
      const raw = Array.from({ length: CLASSES }, () => Math.exp(3 * rng.normal()));
      const sum = raw.reduce((a, b) => a + b, 0);
      return raw.map((v) => v / sum);
    });
    const score = classifierScore(probs, CLASSES);
    assert(score >= 1 - 1e-9 && score <= CLASSES + 1e-9, `score ${score} within [1, 10]`);
  }
});

Deno.test("conditionalAccuracy() counts argmax hits overall and per label", () => {
  const p = (k: number) => Array.from({ length: CLASSES }, (_, j) => (j === k ? 0.6 : 0.4 / (CLASSES - 1)));
  // Labels 0, 0, 1, 1, 2 predicted 0, 5, 1, 1, 7.
  const probs = Float32Array.from([p(0), p(5), p(1), p(1), p(7)].flat());
  const result = conditionalAccuracy(probs, [0, 0, 1, 1, 2], CLASSES);
  assertEquals(result.overall, 3 / 5);
  assertEquals(result.perLabel.slice(0, 3), [0.5, 1, 0]);
  assert(result.perLabel.slice(3).every(Number.isNaN), "labels with no sample are NaN");
  assertEquals(result.counts, [2, 2, 1, 0, 0, 0, 0, 0, 0, 0]);
  assertThrows(() => conditionalAccuracy(probs, [0, 0, 1], CLASSES), GantryError, "3 labels for 5 rows");
  assertThrows(() => conditionalAccuracy(probs, [0, 0, 1, 1, 10], CLASSES), GantryError, "label 10");
});
