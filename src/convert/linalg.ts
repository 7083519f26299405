// Eigen-decomposition of a real symmetric matrix by cyclic Jacobi rotations, in float64. Small
// matrices only (the conversion's group Gram matrices: m·D ≤ a few hundred); O(n³) per sweep,
// quadratic convergence, accurate to a few ulps of the largest eigenvalue.

/**
 * A = V·diag(values)·Vᵀ for symmetric A [n, n] (row-major, not modified). Eigenvalues in descending
 * order; vectors[r·n + j] is component r of eigenvector j (columns are orthonormal).
 *
 *   symmetricEigen(Float64Array.of(2, 1, 1, 2), 2) // values [3, 1], first column ±[0.7071, 0.7071]
 */
export function symmetricEigen(A: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const a = A.slice();
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale = Math.max(scale, Math.abs(a[i]));
  const tol = scale * 1e-15;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off = Math.max(off, Math.abs(a[p * n + q]));
    if (off <= tol) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (Math.abs(apq) <= tol * 1e-3) continue;
        const app = a[p * n + p], aqq = a[q * n + q];
        // The rotation angle that zeroes a[p][q] (Golub & Van Loan, Algorithm 8.4.1).
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j] - a[i * n + i]);
  const values = Float64Array.from(order, (i) => a[i * n + i]);
  const vectors = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    // Sign convention: the largest-magnitude component of each eigenvector is positive.
    let big = 0;
    for (let r = 0; r < n; r++) if (Math.abs(v[r * n + order[j]]) > Math.abs(v[big * n + order[j]])) big = r;
    const sgn = v[big * n + order[j]] < 0 ? -1 : 1;
    for (let r = 0; r < n; r++) vectors[r * n + j] = sgn * v[r * n + order[j]];
  }
  return { values, vectors };
}
