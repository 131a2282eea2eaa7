/**
 * The energy-distance two-sample test (Székely & Rizzo 2004) with a permutation p-value: distribution-free,
 * consistent against every alternative, and usable in two dimensions where Kolmogorov–Smirnov is not.
 *
 * $$\mathcal E(X, Y) = \frac{2}{nm}\sum_{i,j}\|x_i - y_j\| - \frac{1}{n^2}\sum_{i,i'}\|x_i - x_{i'}\| - \frac{1}{m^2}\sum_{j,j'}\|y_j - y_{j'}\|$$
 *
 * p = (1 + #{permutations with 𝓔 ≥ observed}) / (1 + permutations): under the null hypothesis (same
 * distribution) P(p ≤ α) ≤ α, so a test that fails when p ≤ α has false-failure rate at most α.
 */
import type { Rng } from '../../../src/numeric/rng.ts';

export interface EnergyTest {
  statistic: number;
  pValue: number;
  permutations: number;
}

/** Points are row-major [n, dim]. The permutations are drawn from `rng`. */
export function energyTest(xs: ArrayLike<number>, ys: ArrayLike<number>, dim: number, rng: Rng, permutations = 199): EnergyTest {
  const n = xs.length / dim;
  const m = ys.length / dim;
  const N = n + m;
  const pts = new Float64Array(N * dim);
  pts.set(Array.from(xs), 0);
  pts.set(Array.from(ys), n * dim);
  const dist = new Float64Array(N * N);
  for (let i = 0; i < N; i++)
    for (let j = i + 1; j < N; j++) {
      let s = 0;
      for (let k = 0; k < dim; k++) s += (pts[i * dim + k] - pts[j * dim + k]) ** 2;
      dist[i * N + j] = dist[j * N + i] = Math.sqrt(s);
    }
  let total = 0;
  for (let i = 0; i < N * N; i++) total += dist[i];
  // With group labels g: Σ_within-X, Σ_within-Y and Σ_between determine 𝓔; Σ_between = (total − wX − wY)/2.
  const stat = (inX: Uint8Array): number => {
    let wx = 0;
    let wy = 0;
    for (let i = 0; i < N; i++)
      for (let j = 0; j < N; j++) {
        if (inX[i] && inX[j]) wx += dist[i * N + j];
        else if (!inX[i] && !inX[j]) wy += dist[i * N + j];
      }
    const between = (total - wx - wy) / 2;
    return (2 * between) / (n * m) - wx / (n * n) - wy / (m * m);
  };
  const labels = new Uint8Array(N);
  for (let i = 0; i < n; i++) labels[i] = 1;
  const observed = stat(labels);
  let atLeast = 0;
  const perm = labels.slice();
  for (let p = 0; p < permutations; p++) {
    for (let i = N - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    if (stat(perm) >= observed) atLeast++;
  }
  return { statistic: observed, pValue: (1 + atLeast) / (1 + permutations), permutations };
}
