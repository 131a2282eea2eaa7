/**
 * Arbitraries for the Gaussian properties: symmetric positive definite matrices with a condition number known
 * by construction (well- and deliberately ill-conditioned), Gaussians, general matrices with a known condition
 * number, linear-Gaussian models. Properties scale their tolerances by the κ these return, with the reason.
 *
 * Construction: Σ = Q diag(λ) Qᵀ with Q a product of D Householder reflections (orthogonal for any non-zero
 * reflection vectors) and eigenvalues λ_i = s·10^{c·t_i} with t_0 = 0 and t_{D−1} = 1, so that the spectral
 * condition number is 10^c exactly (up to rounding in forming Σ, relative 1e−16·κ). The eigen-decomposition is
 * returned too: properties use it as an independent route to log-densities, determinants and sampling.
 */
import fc from 'fast-check';
import { real } from '../support/arbitraries.ts';
import { Rng } from '../../src/numeric/rng.ts';
import type { Gaussian, LinearGaussianModel } from '../../spec/gaussian/index.ts';

/** A symmetric positive definite matrix with its eigen-decomposition and condition number. */
export interface SpdCase {
  dim: number;
  /** Σ = Q diag(λ) Qᵀ, exactly symmetric. */
  cov: number[][];
  /** Q, orthogonal: `Q[i][k]` is entry i of the k-th eigenvector. */
  Q: number[][];
  /** Eigenvalues λ (ascending). */
  lambda: number[];
  /** Spectral condition number λ_max/λ_min = 10^logCond. */
  cond: number;
}

export interface SpdOptions {
  minDim?: number;
  maxDim?: number;
  /** log10 of the smallest condition number (default 0: κ = 1 allowed). */
  minLogCond?: number;
  /** log10 of the largest condition number (default 8, the ceiling). */
  maxLogCond?: number;
  /** Range of log10 of the smallest eigenvalue (default [−1, 1]: covariances of order one). */
  logScale?: readonly [number, number];
}

/** Shared with every property folder: a real number spread evenly over [min, max]. */
export { real };

/** Reflection vector entries in [−1, 1]; a vector of norm < 1e−3 is replaced by a basis vector. */
const unitEntry = real(-1, 1);

/**
 * Entries of D reflection vectors. Mostly (4 in 5) standard normals from a seeded stream, which give a generic
 * rotation, so that covariances are genuinely correlated; otherwise fast-check's own doubles, which favour 0 and
 * ±1 and so give axis-aligned and permuted cases (diagonal covariances). fast-check alone would make nearly every
 * Q a signed permutation, and a property about correlations would then check almost nothing.
 */
function reflections(n: number): fc.Arbitrary<number[]> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.integer().map((seed) => Array.from(new Rng(seed).normals(n))) },
    { weight: 1, arbitrary: fc.array(unitEntry, { minLength: n, maxLength: n }) },
  );
}

/** The orthogonal matrix H_1 ⋯ H_D with H_k = I − 2 v_k v_kᵀ/‖v_k‖². */
export function householderProduct(dim: number, entries: readonly number[]): number[][] {
  let Q: number[][] = Array.from({ length: dim }, (_, i) => Array.from({ length: dim }, (_, j) => (i === j ? 1 : 0)));
  for (let k = 0; k < dim; k++) {
    let v = entries.slice(k * dim, (k + 1) * dim);
    let n2 = v.reduce((a, x) => a + x * x, 0);
    if (n2 < 1e-6) {
      v = v.map((_, i) => (i === k ? 1 : 0));
      n2 = 1;
    }
    // Q ← Q H: Q − 2 (Q v) vᵀ / ‖v‖²
    const Qv = Q.map((row) => row.reduce((a, x, j) => a + x * v[j], 0));
    Q = Q.map((row, i) => row.map((x, j) => x - (2 * Qv[i] * v[j]) / n2));
  }
  return Q;
}

/** Q diag(λ) Qᵀ, symmetrised exactly. */
export function fromEigen(Q: readonly (readonly number[])[], lambda: readonly number[]): number[][] {
  const n = lambda.length;
  const S = Array.from({ length: n }, (_, i) =>
    Array.from({ length: n }, (_, j) => {
      let s = 0;
      for (let k = 0; k < n; k++) s += Q[i][k] * lambda[k] * Q[j][k];
      return s;
    }),
  );
  return S.map((row, i) => row.map((x, j) => 0.5 * (x + S[j][i])));
}

/**
 * SPD matrices of dimension 1–6 (default) with condition number 10^c, c uniform in [minLogCond, maxLogCond]
 * (default [0, 8]: from the identity's κ = 1 up to 1e8, where a float64 Cholesky still succeeds with eight digits
 * to spare), and overall scale s ∈ [0.1, 10] (covariances of order one; the algebra is scale-free).
 */
export function spdMatrix(opts: SpdOptions = {}): fc.Arbitrary<SpdCase> {
  const minDim = opts.minDim ?? 1;
  const maxDim = opts.maxDim ?? 6;
  const minLogCond = opts.minLogCond ?? 0;
  const maxLogCond = opts.maxLogCond ?? 8;
  return fc.integer({ min: minDim, max: maxDim }).chain((dim) =>
    fc
      .record({
        logCond: real(minLogCond, maxLogCond),
        logScale: real(opts.logScale?.[0] ?? -1, opts.logScale?.[1] ?? 1),
        ts: fc.array(real(0, 1), { minLength: dim, maxLength: dim }),
        refl: reflections(dim * dim),
      })
      .map(({ logCond, logScale, ts, refl }) => {
        const c = dim === 1 ? 0 : logCond;
        const t = ts.map((x, i) => (i === 0 ? 0 : i === dim - 1 ? 1 : x)).sort((a, b) => a - b);
        const s = 10 ** logScale;
        const lambda = t.map((x) => s * 10 ** (c * x));
        const Q = householderProduct(dim, refl);
        return { dim, cov: fromEigen(Q, lambda), Q, lambda, cond: lambda[dim - 1] / lambda[0] };
      }),
  );
}

/** A Gaussian with its covariance's eigen-decomposition and condition number. */
export interface GaussianCase extends SpdCase {
  g: Gaussian;
}

/** Means in [−5, 5]: the location does not enter any of the algebra; the bound keeps quadrature boxes small. */
const meanEntry = real(-5, 5);

export function gaussianCase(opts: SpdOptions = {}): fc.Arbitrary<GaussianCase> {
  return spdMatrix(opts).chain((s) =>
    fc.array(meanEntry, { minLength: s.dim, maxLength: s.dim }).map((mean) => ({ ...s, g: { mean, cov: s.cov } })),
  );
}

/** Well-conditioned covariances: κ ≤ 100. */
export const WELL: SpdOptions = { minLogCond: 0, maxLogCond: 2 };
/** Deliberately ill-conditioned covariances: 1e4 ≤ κ ≤ 1e8. */
export const ILL: SpdOptions = { minLogCond: 4, maxLogCond: 8 };

/** Points near a Gaussian: μ + Q diag(√λ) z with z ∈ [−4, 4]^D (within 4σ along each principal axis). */
export function pointNear(c: SpdCase & { g: Gaussian }): fc.Arbitrary<number[]> {
  return fc.array(real(-4, 4), { minLength: c.dim, maxLength: c.dim }).map((z) =>
    c.g.mean.map((m, i) => m + c.Q[i].reduce((a, q, k) => a + q * Math.sqrt(c.lambda[k]) * z[k], 0)),
  );
}

/** A general square matrix U diag(σ) Vᵀ with singular values spread over [1, 10^c] (κ₂ = 10^c exactly). */
export interface MatrixCase {
  dim: number;
  A: number[][];
  cond: number;
}

export function squareMatrix(opts: SpdOptions = {}): fc.Arbitrary<MatrixCase> {
  const minDim = opts.minDim ?? 1;
  const maxDim = opts.maxDim ?? 6;
  return fc.integer({ min: minDim, max: maxDim }).chain((dim) =>
    fc
      .record({
        logCond: real(opts.minLogCond ?? 0, opts.maxLogCond ?? 8),
        ts: fc.array(real(0, 1), { minLength: dim, maxLength: dim }),
        u: reflections(dim * dim),
        v: reflections(dim * dim),
        signs: fc.array(fc.boolean(), { minLength: dim, maxLength: dim }),
      })
      .map(({ logCond, ts, u, v, signs }) => {
        const c = dim === 1 ? 0 : logCond;
        const sigma = ts.map((x, i) => (i === 0 ? 0 : i === dim - 1 ? 1 : x)).map((x, i) => (signs[i] ? -1 : 1) * 10 ** (c * x));
        const U = householderProduct(dim, u);
        const V = householderProduct(dim, v);
        const A = U.map((_, i) => V.map((__, j) => U[i].reduce((a, uik, k) => a + uik * sigma[k] * V[j][k], 0)));
        return { dim, A, cond: 10 ** c };
      }),
  );
}

/** A real in [−bound, bound], spread evenly (see {@link real}). */
export function entry(bound: number): fc.Arbitrary<number> {
  return real(-bound, bound);
}

/** A rectangular matrix with entries in [−2, 2] (maps of Gaussians; magnitudes of order one). */
export function rectMatrix(rows: number, cols: number): fc.Arbitrary<number[][]> {
  return fc.array(fc.array(entry(2), { minLength: cols, maxLength: cols }), { minLength: rows, maxLength: rows });
}

/** A vector of length n with entries in [−bound, bound]. */
export function vector(n: number, bound = 5): fc.Arbitrary<number[]> {
  return fc.array(entry(bound), { minLength: n, maxLength: n });
}

/** A linear-Gaussian model with its parts' condition numbers. */
export interface LinearGaussianCase {
  m: LinearGaussianModel;
  /** Condition numbers of the prior covariance Λ⁻¹ and of the noise covariance L⁻¹. */
  condPrior: number;
  condNoise: number;
  D: number;
  M: number;
}

/**
 * Linear-Gaussian models p(x) = N(μ, Λ⁻¹), p(y|x) = N(Ax + b, L⁻¹) with D, M ∈ [1, 4] (every shape from scalar to
 * the over- and under-determined cases), A with entries in [−2, 2] (possibly rank-deficient: the noise keeps
 * everything SPD), and covariances with κ ≤ 10^maxLogCond.
 */
export function linearGaussianCase(maxLogCond = 2): fc.Arbitrary<LinearGaussianCase> {
  return fc
    .record({
      prior: gaussianCase({ minDim: 1, maxDim: 4, maxLogCond }),
      noise: spdMatrix({ minDim: 1, maxDim: 4, maxLogCond }),
    })
    .chain(({ prior, noise }) =>
      fc.record({ A: rectMatrix(noise.dim, prior.dim), b: vector(noise.dim, 2) }).map(({ A, b }) => ({
        m: { prior: prior.g, A, b, noiseCov: noise.cov },
        condPrior: prior.cond,
        condNoise: noise.cond,
        D: prior.dim,
        M: noise.dim,
      })),
    );
}
