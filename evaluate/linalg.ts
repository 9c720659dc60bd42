/**
 * The little linear algebra the Fréchet distance needs, in float64 JS: TF.js has no eigensolver, and
 * float32 would lose the small eigenvalues whose square roots the distance sums. Matrices are square,
 * row-major Float64Arrays of n * n values.
 */
import { GantryError } from "../shared/errors.ts";

/** Sweeps of the Jacobi method before giving up: it converges quadratically, 128x128 takes about 8. */
const MAX_JACOBI_SWEEPS = 100;
/** Off-diagonal mass, relative to the whole matrix's, below which the matrix counts as diagonal. */
const JACOBI_RELATIVE_TOLERANCE = 1e-22;

export interface Eigen {
  /** The eigenvalues, in no particular order. */
  values: Float64Array;
  /** Row-major n x n: column k is the unit eigenvector of values[k]. */
  vectors: Float64Array;
}

function checkSquare(m: Float64Array, n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1 || m.length !== n * n) {
    throw new GantryError("E_DATA", `${what} must be ${n}x${n}: current length is ${m.length}`);
  }
}

/**
 * Eigen-decomposition of a symmetric matrix by the cyclic Jacobi method: rotations zero each off-diagonal
 * pair in turn until the off-diagonal mass vanishes. Slow for large n (O(n^3) per sweep) but simple, exact
 * to rounding, and the matrices here are the classifier's feature covariances (128 x 128).
 */
export function symmetricEigen(matrix: Float64Array, n: number): Eigen {
  checkSquare(matrix, n, "symmetricEigen's matrix");
  const a = Float64Array.from(matrix);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let total = 0;
  for (let i = 0; i < n * n; i++) total += a[i] * a[i];
  for (let sweep = 0; sweep < MAX_JACOBI_SWEEPS; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += 2 * a[p * n + q] * a[p * n + q];
    if (off <= JACOBI_RELATIVE_TOLERANCE * total || off === 0) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        // The rotation angle that zeroes a[p][q] (Numerical Recipes' stable form: the smaller root).
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        // A <- J^T A J, touching only rows and columns p and q.
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k];
          const aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = a[i * n + i];
  return { values, vectors: v };
}

/**
 * The square root of a symmetric positive semi-definite matrix, V diag(sqrt(max(l, 0))) V^T. Eigenvalues a
 * hair below zero are rounding (a covariance cannot have negative ones) and count as zero.
 */
export function sqrtPsd(matrix: Float64Array, n: number): Float64Array {
  const { values, vectors } = symmetricEigen(matrix, n);
  const roots = values.map((l) => Math.sqrt(Math.max(l, 0)));
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let sum = 0;
      for (let k = 0; k < n; k++) sum += vectors[i * n + k] * roots[k] * vectors[j * n + k];
      out[i * n + j] = sum;
      out[j * n + i] = sum;
    }
  }
  return out;
}

/** a * b for n x n matrices. */
export function matmul(a: Float64Array, b: Float64Array, n: number): Float64Array {
  checkSquare(a, n, "matmul's left matrix");
  checkSquare(b, n, "matmul's right matrix");
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k];
      if (aik === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += aik * b[k * n + j];
    }
  }
  return out;
}

/**
 * tr(sqrt(A B)) for symmetric PSD A and B. A B is not symmetric, but it is similar to
 * sqrt(A) B sqrt(A), which is symmetric PSD and has the same eigenvalues, so the trace of the root is the
 * sum of the roots of that matrix's eigenvalues.
 */
export function traceSqrtProduct(a: Float64Array, b: Float64Array, n: number): number {
  const rootA = sqrtPsd(a, n);
  const m = matmul(matmul(rootA, b, n), rootA, n);
  // Symmetric in exact arithmetic; averaging with the transpose removes rounding's asymmetry.
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const mean = (m[i * n + j] + m[j * n + i]) / 2;
      m[i * n + j] = mean;
      m[j * n + i] = mean;
    }
  }
  let trace = 0;
  for (const l of symmetricEigen(m, n).values) trace += Math.sqrt(Math.max(l, 0));
  return trace;
}
