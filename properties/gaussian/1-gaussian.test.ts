import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import stdlibLogPdf from '@stdlib/stats-base-dists-normal-logpdf';
import stdlibCdf from '@stdlib/stats-base-dists-normal-cdf';
import stdlibErf from '@stdlib/math-base-special-erf';
import stdlibErfc from '@stdlib/math-base-special-erfc';
import { Rng } from '../../src/numeric/rng.ts';
import { ksTest, mcAgrees } from '../../src/numeric/stats.ts';
import { TOL, override } from '../../src/numeric/tolerance.ts';
import {
  Gaussian,
  SYMMETRY_RTOL,
  SpdMatrix,
  erf,
  erfc,
  gaussianDensity,
  gaussianEntropy,
  gaussianLogPdf,
  gaussianSample,
  gaussianSamples,
  normalCdf,
  normalLogPdf,
} from '../../spec/gaussian/index.ts';
import { cholesky, matVec } from '../../spec/linalg.ts';
import { integrate1d, integrate2d } from '../../spec/probability/density.ts';
import { assertIntegratesToOne1d, assertIntegratesToOne2d } from '../laws/probability.ts';
import { ILL, WELL, gaussianCase, pointNear, real, vector, type GaussianCase } from './arbitraries.ts';

const LOG_2PI = Math.log(2 * Math.PI);

/** log N(x | μ, Q diag(λ) Qᵀ) from the eigen-decomposition: an independent route to the log-density. */
function eigenLogPdf(c: GaussianCase, x: readonly number[]): number {
  let q = 0;
  let logDet = 0;
  for (let k = 0; k < c.dim; k++) {
    let proj = 0;
    for (let i = 0; i < c.dim; i++) proj += c.Q[i][k] * (x[i] - c.g.mean[i]);
    q += (proj * proj) / c.lambda[k];
    logDet += Math.log(c.lambda[k]);
  }
  return -0.5 * c.dim * LOG_2PI - 0.5 * logDet - 0.5 * q;
}

/** The box μ_i ± 10·√Σ_ii: the mass of a Gaussian outside it is below 2·10⁻²³ per axis. */
function box(g: Gaussian, i: number): [number, number] {
  const s = Math.sqrt(g.cov[i][i]);
  return [g.mean[i] - 10 * s, g.mean[i] + 10 * s];
}

/**
 * Quadrature on the ±10σ box: 24 panels of 10 Gauss–Legendre points per axis. For κ ≤ 10 the density's
 * narrowest cross-section is ≥ σ/√10, so a panel spans ≤ 2.7 of its standard deviations: the rule's error is
 * far below the 1e−10 the properties allow.
 */
const QUAD = { panels: 24, order: 10 };
const QUAD_TOL = override({ rtol: 1e-10, atol: 1e-10 }, 'composite Gauss–Legendre (24 panels × 10 points) on a ±10σ box, κ ≤ 10');

/** Directions for projections: entries in [−1, 1], not all near zero. */
function direction(n: number): fc.Arbitrary<number[]> {
  return vector(n, 1).filter((u) => u.some((v) => Math.abs(v) > 0.1));
}

describe('2.1 The Gaussian density, sampling and entropy', () => {
  it('the schema rejects a covariance that is not positive definite, naming the condition  [gaussian.schema.rejectsNonSpd]', () =>
    fc.assert(
      fc.property(gaussianCase({ minDim: 1, maxDim: 6, maxLogCond: 4 }), (c) => {
        // Flip the smallest eigenvalue: Σ − 2λ_min q qᵀ is symmetric with eigenvalue −λ_min.
        const q = c.Q.map((r) => r[0]);
        const bad = c.cov.map((r, i) => r.map((v, j) => v - 2 * c.lambda[0] * q[i] * q[j]));
        const sym = bad.map((r, i) => r.map((v, j) => 0.5 * (v + bad[j][i])));
        expect(() => gaussianLogPdf({ mean: c.g.mean, cov: sym }, c.g.mean)).toThrow(/^gaussianLogPdf: g\.cov: not positive definite: /);
        expect(() => gaussianEntropy({ mean: c.g.mean, cov: sym })).toThrow(/^gaussianEntropy: g\.cov: not positive definite/);
        const negDiag = c.cov.map((r, i) => r.map((v, j) => (i === j && i === 0 ? -v : v)));
        expect(() => gaussianSample({ mean: c.g.mean, cov: negDiag }, new Rng(1))).toThrow(/g\.cov: not positive definite: diagonal entry \[0\]\[0\] = -[\d.e+-]+ must be > 0/);
        expect(SpdMatrix.safeParse(c.cov).success).toBe(true);
        expect(SpdMatrix.safeParse(sym).success).toBe(false);
      }),
    ));

  it('the schema rejects an asymmetric covariance beyond SYMMETRY_RTOL and accepts rounding-level asymmetry  [gaussian.schema.rejectsAsymmetric]', () =>
    fc.assert(
      fc.property(gaussianCase({ minDim: 2, maxDim: 6, maxLogCond: 4 }), fc.nat(), (c, k) => {
        const i = k % c.dim;
        const j = (i + 1 + (Math.floor(k / c.dim) % (c.dim - 1))) % c.dim;
        const scale = Math.sqrt(c.cov[i][i] * c.cov[j][j]);
        const perturbed = (d: number) => c.cov.map((r, a) => r.map((v, b) => (a === i && b === j ? v + d : v)));
        const r = Gaussian.safeParse({ mean: c.g.mean, cov: perturbed(100 * SYMMETRY_RTOL * scale) });
        expect(r.success).toBe(false);
        expect(r.error?.issues[0].message).toMatch(new RegExp(`^not symmetric: \\[${Math.min(i, j)}\\]\\[${Math.max(i, j)}\\] = `));
        expect(Gaussian.safeParse({ mean: c.g.mean, cov: perturbed(1e-3 * SYMMETRY_RTOL * scale) }).success).toBe(true);
      }),
    ));

  it('bad shapes and non-finite numbers are rejected with the argument and the condition  [gaussian.schema.rejectsMismatchedDims]', () => {
    const g = { mean: [0, 0], cov: [[1, 0], [0, 1]] };
    expect(() => gaussianLogPdf({ mean: [0, 0, 0], cov: g.cov }, [0, 0, 0])).toThrow('gaussianLogPdf: g.cov: must be 3×3 to match mean, got 2 rows');
    expect(() => gaussianLogPdf({ mean: [0, 0], cov: [[1, 0], [0]] }, [0, 0])).toThrow('gaussianLogPdf: g.cov: must be square: it has 2 rows but row 1 has 1 columns');
    expect(() => gaussianLogPdf(g, [0, 0, 0])).toThrow('gaussianLogPdf: x must have length 2 (the dimension of g), got 3');
    expect(() => gaussianLogPdf({ mean: [0, Number.NaN], cov: g.cov }, [0, 0])).toThrow(/^gaussianLogPdf: g\.mean\[1\]: .*NaN/);
    expect(() => gaussianLogPdf({ mean: [0, 0], cov: [[1, 0], [0, Number.POSITIVE_INFINITY]] }, [0, 0])).toThrow(/^gaussianLogPdf: g\.cov\[1\]\[1\]: .*Infinity/);
    expect(() => gaussianLogPdf(g, [0, Number.NaN])).toThrow(/^gaussianLogPdf: x\[1\]: .*NaN/);
    expect(() => gaussianLogPdf({ mean: [], cov: [] }, [])).toThrow(/^gaussianLogPdf: g\.mean: /);
    expect(() => gaussianSamples(g, new Rng(1), 0)).toThrow('gaussianSamples: n must be a positive integer, got 0');
    expect(() => normalLogPdf(0, 0, 0)).toThrow('normalLogPdf: variance must be > 0, got 0');
    expect(() => normalLogPdf(Number.NaN, 0, 1)).toThrow('normalLogPdf: x must be a finite number, got NaN');
    expect(() => normalCdf(0, 0, -1)).toThrow('normalCdf: sd must be > 0, got -1');
  });

  it('the log-density equals the eigen-decomposition form, for κ up to 1e8  [gaussian.logPdf.eqEigenForm]', () =>
    fc.assert(
      fc.property(gaussianCase().chain((c) => fc.tuple(fc.constant(c), pointNear(c))), ([c, x]) => {
        const expected = eigenLogPdf(c, x);
        // Both sides carry the error of Σ's rounding amplified by κ, on the log-det and the quadratic form (≤ 8D).
        const tol = override({ rtol: 0, atol: 1e-14 * c.dim * c.cond * (1 + 8 * c.dim) }, `κ = ${c.cond.toExponential(1)}: relative error κ·ε on log det Σ and on (x−μ)ᵀΣ⁻¹(x−μ) ≤ 16D`);
        expect(gaussianLogPdf(c.g, x)).toBeCloseWithin(expected, tol);
      }),
    ));

  it('with a diagonal covariance the log-density is the sum of 1-D log-densities  [gaussian.logPdf.eqProductOf1d]', () =>
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }).chain((n) => fc.tuple(vector(n), fc.array(real(-3, 3), { minLength: n, maxLength: n }), vector(n))),
        ([mean, logVar, x]) => {
          const v = logVar.map((l) => 10 ** l);
          const cov = v.map((vi, i) => v.map((_, j) => (i === j ? vi : 0)));
          const sum = x.reduce((a, xi, i) => a + normalLogPdf(xi, mean[i], v[i]), 0);
          expect(gaussianLogPdf({ mean, cov }, x)).toBeCloseWithin(sum, override({ rtol: 1e-13, atol: 1e-13 }, 'D ≤ 6 sums of terms computed in different orders'));
        },
      ),
    ));

  it('the density integrates to 1 in 1-D and 2-D (quadrature on ±10σ, κ ≤ 10)  [gaussian.logPdf.integratesToOne]', () =>
    fc.assert(
      fc.property(gaussianCase({ minDim: 1, maxDim: 2, maxLogCond: 1 }), (c) => {
        const d = gaussianDensity(c.g);
        if (c.dim === 1) assertIntegratesToOne1d((x) => d.logPdf([x]), ...box(c.g, 0), QUAD_TOL, 'N(μ, σ²)', QUAD);
        else assertIntegratesToOne2d((x, y) => d.logPdf([x, y]), box(c.g, 0), box(c.g, 1), QUAD_TOL, 'N(μ, Σ)', QUAD);
      }),
      { numRuns: 15 },
    ));

  it('the 1-D log-density agrees with @stdlib/stats-base-dists-normal-logpdf  [gaussian.normal1d.logPdfAgreesWithStdlib]', () =>
    fc.assert(
      fc.property(real(-100, 100), real(-6, 6), real(-30, 30), (mean, logVar, z) => {
        const variance = 10 ** logVar;
        const x = mean + z * Math.sqrt(variance);
        const tol = override({ rtol: 1e-13, atol: 1e-13 }, 'a handful of operations, rounded differently (stdlib uses σ, we use σ²)');
        expect(normalLogPdf(x, mean, variance)).toBeCloseWithin(stdlibLogPdf(x, mean, Math.sqrt(variance)), tol);
        expect(gaussianLogPdf({ mean: [mean], cov: [[variance]] }, [x])).toBeCloseWithin(stdlibLogPdf(x, mean, Math.sqrt(variance)), tol);
      }),
    ));

  it('the normal CDF agrees with @stdlib/stats-base-dists-normal-cdf in the bulk and both tails  [gaussian.normal1d.cdfAgreesWithStdlib]', () =>
    fc.assert(
      fc.property(real(-37, 8.2), real(-10, 10), real(-3, 3), (z, mean, logSd) => {
        const sd = 10 ** logSd;
        const x = mean + z * sd;
        const zz = (x - mean) / sd;
        // In the lower tail Φ(z) ≈ φ(z)/|z|: the rounding of z² (and of z itself, from x) is amplified by z².
        const tol = override({ rtol: 4e-15 * (1 + zz * zz) + 1e-14, atol: 1e-300 }, 'relative error of e^{−z²/2} grows like z²·ε in the tail');
        expect(normalCdf(x, mean, sd)).toBeCloseWithin(stdlibCdf(x, mean, sd), tol);
      }),
    ));

  it('erf and erfc agree with @stdlib to a few ulps relative  [gaussian.normal1d.erfAgreesWithStdlib]', () =>
    fc.assert(
      fc.property(real(-6, 26), (x) => {
        expect(erf(x)).toBeCloseWithin(stdlibErf(x), override({ rtol: 1e-14, atol: 1e-300 }, 'series vs rational approximation: a few ulps'));
        expect(erfc(x)).toBeCloseWithin(stdlibErfc(x), override({ rtol: 4e-15 * (1 + x * x) + 1e-14, atol: 1e-300 }, 'continued fraction vs rational approximation; the relative error of e^{−x²} grows like x²·ε'));
        expect(erf(-x)).toBe(-erf(x));
      }),
    ));

  it('a draw is μ + Lε with L the Cholesky factor and ε the next D normals of the stream  [gaussian.sample.usesCholeskyFactor]', () =>
    fc.assert(
      fc.property(gaussianCase(), fc.integer(), (c, seed) => {
        const rng = new Rng(seed);
        const eps = rng.clone().normals(c.dim);
        const expected = matVec(cholesky(c.g.cov), Array.from(eps)).map((v, i) => v + c.g.mean[i]);
        expect(gaussianSample(c.g, rng)).toBeCloseWithin(expected, override({ rtol: 0, atol: 1e-15 * (1 + Math.max(...c.lambda.map(Math.sqrt))) * 10 }, 'the same products summed in another order'));
        const r1 = new Rng(seed);
        const r2 = new Rng(seed);
        const many = gaussianSamples(c.g, r1, 3);
        const one = [gaussianSample(c.g, r2), gaussianSample(c.g, r2), gaussianSample(c.g, r2)];
        expect(many.flat()).toBeCloseWithin(one.flat(), TOL.exact);
        const viaDensity = gaussianDensity(c.g).sample(new Rng(seed));
        expect(viaDensity).toBeCloseWithin(gaussianSample(c.g, new Rng(seed)), TOL.exact);
      }),
    ));

  // 25 runs × (D + 3 ≤ 9) checks at α = 1e−6 each: false-failure rate of this property ≤ 2.3e−4 per seed (nominal;
  // the squared projections are χ²-distributed, whose sample mean at n = 4000 is close to normal).
  it('samples have mean μ and covariance Σ (Monte Carlo, n = 4000, α = 1e−6 per check), for κ up to 1e8  [gaussian.sample.momentsEqMonteCarlo]', () =>
    fc.assert(
      fc.property(gaussianCase().chain((c) => fc.tuple(fc.constant(c), fc.array(direction(c.dim), { minLength: 3, maxLength: 3 }))), fc.integer(), ([c, dirs], seed) => {
        const xs = gaussianSamples(c.g, new Rng(seed), 4000);
        for (let i = 0; i < c.dim; i++) {
          expect(mcAgrees(xs.map((x) => x[i]), c.g.mean[i], { alpha: 1e-6, floor: 1e-12 })).toPassMonteCarlo(`mean of coordinate ${i}`);
        }
        for (const u of dirs) {
          const uSu = u.reduce((a, ui, i) => a + ui * u.reduce((b, uj, j) => b + c.cov[i][j] * uj, 0), 0);
          const proj = xs.map((x) => x.reduce((a, xi, i) => a + u[i] * (xi - c.g.mean[i]), 0) ** 2);
          expect(mcAgrees(proj, uSu, { alpha: 1e-6, floor: 1e-12 * uSu })).toPassMonteCarlo(`E[(uᵀ(x − μ))²] = uᵀΣu for u = [${u.map((v) => v.toFixed(3))}]`);
        }
      }),
      { numRuns: 25 },
    ));

  // 25 runs at α = 1e−6: false-failure rate ≤ 2.5e−5 per seed.
  it('projections of samples pass a Kolmogorov–Smirnov test against N(uᵀμ, uᵀΣu) (n = 1000, α = 1e−6)  [gaussian.sample.ksAgainstCdf]', () =>
    fc.assert(
      fc.property(gaussianCase().chain((c) => fc.tuple(fc.constant(c), direction(c.dim))), fc.integer(), ([c, u], seed) => {
        const xs = gaussianSamples(c.g, new Rng(seed), 1000);
        const m = u.reduce((a, ui, i) => a + ui * c.g.mean[i], 0);
        const v = u.reduce((a, ui, i) => a + ui * u.reduce((b, uj, j) => b + c.cov[i][j] * uj, 0), 0);
        const r = ksTest(xs.map((x) => x.reduce((a, xi, i) => a + u[i] * xi, 0)), (t) => stdlibCdf(t, m, Math.sqrt(v)));
        expect(r.pValue, `KS statistic ${r.statistic.toFixed(4)}, p = ${r.pValue.toExponential(2)}`).toBeGreaterThan(1e-6);
      }),
      { numRuns: 25 },
    ));

  // 20 runs at α = 1e−6: false-failure rate ≤ 2e−5 per seed.
  it('the entropy equals −E[log p(x)] by Monte Carlo (n = 2000, α = 1e−6), for κ up to 1e8  [gaussian.entropy.eqMonteCarlo]', () =>
    fc.assert(
      fc.property(fc.oneof(gaussianCase(WELL), gaussianCase(ILL)), fc.integer(), (c, seed) => {
        const d = gaussianDensity(c.g);
        const rng = new Rng(seed);
        const values = Array.from({ length: 2000 }, () => -d.logPdf(d.sample(rng)));
        expect(mcAgrees(values, gaussianEntropy(c.g), { alpha: 1e-6, floor: 1e-10 })).toPassMonteCarlo('−E[log p]');
      }),
      { numRuns: 20 },
    ));

  it('the entropy equals −∫ p log p by quadrature in 1-D and 2-D, and ½ log det(2πeΣ) from the eigenvalues  [gaussian.entropy.eqQuadrature]', () =>
    fc.assert(
      fc.property(gaussianCase({ minDim: 1, maxDim: 2, maxLogCond: 1 }), (c) => {
        const d = gaussianDensity(c.g);
        const H =
          c.dim === 1
            ? integrate1d((x) => { const l = d.logPdf([x]); return -Math.exp(l) * l; }, ...box(c.g, 0), QUAD)
            : integrate2d((x, y) => { const l = d.logPdf([x, y]); return -Math.exp(l) * l; }, box(c.g, 0), box(c.g, 1), QUAD);
        expect(gaussianEntropy(c.g)).toBeCloseWithin(H, QUAD_TOL);
        const eig = 0.5 * c.dim * (1 + LOG_2PI) + 0.5 * c.lambda.reduce((a, l) => a + Math.log(l), 0);
        expect(gaussianEntropy(c.g)).toBeCloseWithin(eig, override({ rtol: 1e-13, atol: 1e-13 }, 'log det from Cholesky vs from the eigenvalues, κ ≤ 10'));
      }),
      { numRuns: 15 },
    ));

  it('gaussianDensity evaluates exactly what gaussianLogPdf does and checks its argument  [gaussian.density.eqLogPdfAndSample]', () =>
    fc.assert(
      fc.property(gaussianCase().chain((c) => fc.tuple(fc.constant(c), pointNear(c))), ([c, x]) => {
        const d = gaussianDensity(c.g);
        expect(d.dim).toBe(c.dim);
        expect(d.logPdf(x)).toBeCloseWithin(gaussianLogPdf(c.g, x), TOL.exact);
        expect(() => d.logPdf([...x, 0])).toThrow(`gaussianDensity.logPdf: x must have length ${c.dim}, got ${c.dim + 1}`);
        expect(() => gaussianDensity({ mean: c.g.mean, cov: c.cov.map((r) => r.map(() => 0)) })).toThrow(/^gaussianDensity: g\.cov: not positive definite/);
      }),
    ));
});

