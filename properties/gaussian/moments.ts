/**
 * Assertions shared by the Gaussian properties: two Gaussians are close entry by entry; samples have a Gaussian's
 * first and second moments (Monte Carlo).
 */
import { expect } from 'vitest';
import { mcAgrees } from '../../src/numeric/stats.ts';
import { override, type Tolerance } from '../../src/numeric/tolerance.ts';
import type { Gaussian } from '../../spec/gaussian/index.ts';

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);
const maxAbs = (xs: readonly number[]) => xs.reduce((a, x) => Math.max(a, Math.abs(x)), 0);

/** Compare two Gaussians entry by entry, with tolerances relative to the size of the covariance. */
export function expectGaussiansClose(actual: Gaussian, expected: Gaussian, tol: Tolerance, what: string): void {
  expect(actual.mean.length, `${what}: dimension`).toBe(expected.mean.length);
  const scale = Math.max(maxAbs(expected.cov.flat()), maxAbs(expected.mean), 1);
  const t = override({ rtol: tol.rtol, atol: tol.atol * scale }, `${tol.reason}; absolute part relative to max(|μ|, |Σ|) = ${scale.toPrecision(3)}`);
  expect(actual.mean).toBeCloseWithin(expected.mean, t, { what: `${what}: mean` });
  expect(actual.cov.flat()).toBeCloseWithin(expected.cov.flat(), t, { what: `${what}: covariance`, shape: [expected.mean.length, expected.mean.length] });
}

/**
 * Monte Carlo check that samples have the given Gaussian's moments: each coordinate's mean, and E[(uᵀ(x − μ))²] =
 * uᵀΣu along the coordinate axes and along the all-ones direction (which sees every covariance entry).
 * D + D + 1 checks at α = 1e−6 each.
 */
export function expectMomentsMatch(xs: readonly (readonly number[])[], g: Gaussian, what: string): void {
  const D = g.mean.length;
  for (let i = 0; i < D; i++) {
    expect(mcAgrees(xs.map((x) => x[i]), g.mean[i], { alpha: 1e-6, floor: 1e-12 })).toPassMonteCarlo(`${what}: mean of coordinate ${i}`);
  }
  const dirs = [...range(D).map((i) => range(D).map((j) => (i === j ? 1 : 0))), range(D).map(() => 1)];
  for (const u of dirs) {
    const uSu = u.reduce((a, ui, i) => a + ui * u.reduce((b, uj, j) => b + g.cov[i][j] * uj, 0), 0);
    const proj = xs.map((x) => x.reduce((a, xi, i) => a + u[i] * (xi - g.mean[i]), 0) ** 2);
    expect(mcAgrees(proj, uSu, { alpha: 1e-6, floor: 1e-12 * uSu })).toPassMonteCarlo(`${what}: E[(uᵀ(x − μ))²] = uᵀΣu, u = [${u}]`);
  }
}

