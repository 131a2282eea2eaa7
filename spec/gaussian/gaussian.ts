/**
 * The multivariate Gaussian N(x | μ, Σ) in D dimensions: its schema (an SPD covariance, checked), log-density,
 * sampling through the Cholesky factor, entropy.
 *
 * Shapes: `mean` has length D ≥ 1; `cov` is D×D, row-major. Logs are natural (nats).
 *
 * @module
 */
import { z } from 'zod';
import type { Rng } from '../../src/numeric/rng.ts';
import { cholesky, solveLower } from '../linalg.ts';
import type { Density } from '../probability/density.ts';
import { parseArg } from '../probability/validate.ts';

const LOG_2PI = Math.log(2 * Math.PI);

/**
 * Relative tolerance of the symmetry check of a covariance: entries (i, j) and (j, i) may differ by at most
 * `SYMMETRY_RTOL · √(Σ_ii Σ_jj)`, the natural scale of a covariance entry (|Σ_ij| ≤ √(Σ_ii Σ_jj) for any
 * positive semi-definite Σ). Loose enough for products like AΣAᵀ computed in float64, tight enough that a
 * transposition error (Σ_ij ≠ Σ_ji by O(1)) is rejected.
 *
 * @see property `gaussian.schema.rejectsAsymmetric`
 */
export const SYMMETRY_RTOL = 1e-9;

/** The first violated condition of "Σ is a D×D symmetric positive definite matrix", in words, or null. */
function spdViolation(A: readonly (readonly number[])[]): string | null {
  const n = A.length;
  if (n === 0) return 'must have at least one row';
  for (let i = 0; i < n; i++) {
    if (A[i].length !== n) return `must be square: it has ${n} rows but row ${i} has ${A[i].length} columns`;
  }
  for (let i = 0; i < n; i++) {
    if (!(A[i][i] > 0)) return `not positive definite: diagonal entry [${i}][${i}] = ${A[i][i]} must be > 0`;
  }
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const bound = SYMMETRY_RTOL * Math.sqrt(A[i][i] * A[j][j]);
      if (!(Math.abs(A[i][j] - A[j][i]) <= bound)) {
        return `not symmetric: [${i}][${j}] = ${A[i][j]} but [${j}][${i}] = ${A[j][i]} (|Δ| must be ≤ ${bound.toExponential(2)})`;
      }
    }
  }
  try {
    cholesky(A);
  } catch (e) {
    return `not positive definite: the Cholesky factorisation fails (${(e as Error).message.replace(/^cholesky: A is not positive definite: /, '')})`;
  }
  return null;
}

/**
 * A symmetric positive definite matrix (a covariance or a precision): square, finite, symmetric within
 * {@link SYMMETRY_RTOL}, and its Cholesky factorisation succeeds. The error names the first violated condition.
 *
 * @see property `gaussian.schema.rejectsNonSpd`
 * @see property `linalg.cholesky.rejectsIndefinite`
 */
export const SpdMatrix = z
  .array(z.array(z.number()).readonly())
  .readonly()
  .superRefine((A, ctx) => {
    const v = spdViolation(A);
    if (v !== null) ctx.addIssue({ code: 'custom', message: v });
  });
export type SpdMatrix = z.infer<typeof SpdMatrix>;

/**
 * A D-dimensional Gaussian N(μ, Σ): `mean` μ of length D ≥ 1 and `cov` Σ, D×D symmetric positive definite.
 * Parsing rejects NaN/±∞, a `cov` whose size differs from `mean`'s length, an asymmetric `cov`, and a `cov`
 * whose Cholesky factorisation fails, naming the condition.
 *
 * @see property `gaussian.schema.rejectsNonSpd`
 * @see property `gaussian.schema.rejectsMismatchedDims`
 */
export const Gaussian = z
  .object({
    mean: z.array(z.number()).min(1).readonly(),
    cov: z.array(z.array(z.number()).readonly()).readonly(),
  })
  .superRefine((g, ctx) => {
    if (g.cov.length !== g.mean.length) {
      ctx.addIssue({ code: 'custom', path: ['cov'], message: `must be ${g.mean.length}×${g.mean.length} to match mean, got ${g.cov.length} rows` });
      return;
    }
    const v = spdViolation(g.cov);
    if (v !== null) ctx.addIssue({ code: 'custom', path: ['cov'], message: v });
  });
export type Gaussian = z.infer<typeof Gaussian>;

/**
 * Log-density of N(x | μ, Σ) in nats, through the Cholesky factor Σ = LLᵀ (z = L⁻¹(x − μ)):
 *
 * $$\log\mathcal N(x\mid\mu,\Sigma) = -\tfrac D2\log 2\pi - \tfrac12\log\det\Sigma - \tfrac12(x-\mu)^\top\Sigma^{-1}(x-\mu)
 *   = -\tfrac D2\log2\pi - \sum_i\log L_{ii} - \tfrac12\|z\|^2$$
 *
 * @param x - a point of length D
 * @see property `gaussian.logPdf.integratesToOne`
 * @see property `gaussian.logPdf.eqEigenForm`
 * @see property `gaussian.logPdf.eqProductOf1d`
 * @see property `gaussian.normal1d.logPdfAgreesWithStdlib`
 */
export function gaussianLogPdf(g: Gaussian, x: readonly number[]): number {
  const G = parseArg('gaussianLogPdf', 'g', Gaussian, g);
  const xs = parseArg('gaussianLogPdf', 'x', z.array(z.number()), x);
  const D = G.mean.length;
  if (xs.length !== D) throw new RangeError(`gaussianLogPdf: x must have length ${D} (the dimension of g), got ${xs.length}`);
  return logPdfWithFactor(G.mean, cholesky(G.cov), xs);
}

/** log N(x | μ, LLᵀ) for a known Cholesky factor (no checks; internal). */
function logPdfWithFactor(mean: readonly number[], L: readonly (readonly number[])[], x: readonly number[]): number {
  const D = mean.length;
  const z = solveLower(L, x.map((v, i) => v - mean[i]));
  let q = 0;
  let logDetHalf = 0;
  for (let i = 0; i < D; i++) {
    q += z[i] * z[i];
    logDetHalf += Math.log(L[i][i]);
  }
  return -0.5 * D * LOG_2PI - logDetHalf - 0.5 * q;
}

/**
 * One draw from N(μ, Σ) through the Cholesky factor: x = μ + Lε with ε ~ N(0, I_D) taken from `rng`
 * (D standard normals, in order).
 *
 * @see property `gaussian.sample.usesCholeskyFactor`
 * @see property `gaussian.sample.momentsEqMonteCarlo`
 */
export function gaussianSample(g: Gaussian, rng: Rng): number[] {
  return gaussianSamples(g, rng, 1)[0];
}

/**
 * n draws from N(μ, Σ), x_k = μ + Lε_k, the ε_k taken from `rng` in order (the same stream as n calls of
 * {@link gaussianSample}); the covariance is checked and factored once.
 *
 * @param n - number of draws, a positive integer
 * @see property `gaussian.sample.momentsEqMonteCarlo`
 * @see property `gaussian.sample.ksAgainstCdf`
 */
export function gaussianSamples(g: Gaussian, rng: Rng, n: number): number[][] {
  const G = parseArg('gaussianSamples', 'g', Gaussian, g);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`gaussianSamples: n must be a positive integer, got ${n}`);
  const L = cholesky(G.cov);
  const D = G.mean.length;
  const out: number[][] = [];
  for (let k = 0; k < n; k++) {
    const eps = rng.normals(D);
    const x = new Array<number>(D);
    for (let i = 0; i < D; i++) {
      let s = G.mean[i];
      for (let j = 0; j <= i; j++) s += L[i][j] * eps[j];
      x[i] = s;
    }
    out.push(x);
  }
  return out;
}

/**
 * Differential entropy of N(μ, Σ) in nats:
 *
 * $$H[\mathcal N(\mu,\Sigma)] = \tfrac D2(1 + \log 2\pi) + \tfrac12\log\det\Sigma$$
 *
 * @see property `gaussian.entropy.eqMonteCarlo`
 * @see property `gaussian.entropy.eqQuadrature`
 */
export function gaussianEntropy(g: Gaussian): number {
  const G = parseArg('gaussianEntropy', 'g', Gaussian, g);
  const L = cholesky(G.cov);
  let logDetHalf = 0;
  for (let i = 0; i < L.length; i++) logDetHalf += Math.log(L[i][i]);
  return 0.5 * G.mean.length * (1 + LOG_2PI) + logDetHalf;
}

/**
 * N(μ, Σ) as a {@link Density}: its log-density and its sampler, with the covariance checked and factored once.
 * For the generic Monte Carlo routines of `spec/probability` (KL by Monte Carlo, importance sampling).
 *
 * @see property `gaussian.density.eqLogPdfAndSample`
 */
export function gaussianDensity(g: Gaussian): Density {
  const G = parseArg('gaussianDensity', 'g', Gaussian, g);
  const L = cholesky(G.cov);
  const D = G.mean.length;
  return {
    dim: D,
    logPdf: (x) => {
      if (x.length !== D) throw new RangeError(`gaussianDensity.logPdf: x must have length ${D}, got ${x.length}`);
      return logPdfWithFactor(G.mean, L, x);
    },
    sample: (rng) => {
      const eps = rng.normals(D);
      return G.mean.map((m, i) => {
        let s = m;
        for (let j = 0; j <= i; j++) s += L[i][j] * eps[j];
        return s;
      });
    },
  };
}
