import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import kstest from '@stdlib/stats-kstest';
import normalCdf from '@stdlib/stats-base-dists-normal-cdf';
import { Rng } from '../../src/numeric/rng.ts';
import { kolmogorovTail, ksTest, ksTest2, mcAgrees, mean, standardError, variance, zFor } from '../../src/numeric/stats.ts';
import { TOL, override } from '../../src/numeric/tolerance.ts';

describe('0.3 Statistics for Monte Carlo checks: |m̂ − m| ≤ z·se + floor', () => {
  it('mean, variance and standard error match hand-computed values  [numeric.stats.moments]', () => {
    const xs = [1, 2, 3, 4, 10];
    expect(mean(xs)).toBeCloseWithin(4, TOL.float64);
    expect(variance(xs)).toBeCloseWithin(12.5, TOL.float64); // Σ(x−4)² = 50, / (n−1)
    expect(standardError(xs)).toBeCloseWithin(Math.sqrt(12.5 / 5), TOL.float64);
  });

  it('z for a false-failure rate α is Φ⁻¹(1 − α/2)  [numeric.stats.zFor]', () => {
    expect(zFor(0.05)).toBeCloseWithin(1.959963984540054, TOL.float64);
    expect(zFor(1e-6)).toBeCloseWithin(4.891638475698, override({ rtol: 1e-10, atol: 0 }, 'reference value printed to 13 digits'));
    expect(() => zFor(0)).toThrow(/alpha must be in \(0, 1\)/);
  });

  it('the Kolmogorov tail matches its textbook values  [numeric.stats.kolmogorovTail]', () => {
    // P(K > 1.358) = 0.05 and P(K > 1.628) = 0.01 (tables of the Kolmogorov distribution).
    const t = override({ rtol: 2e-3, atol: 0 }, 'the table gives the quantiles to 4 digits');
    expect(kolmogorovTail(1.3581)).toBeCloseWithin(0.05, t);
    expect(kolmogorovTail(1.6276)).toBeCloseWithin(0.01, t);
  });

  it('the one-sample KS p-value agrees with @stdlib/stats-kstest  [numeric.stats.ksAgreesWithStdlib]', () =>
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 50, max: 400 }), fc.double({ min: -0.3, max: 0.3, noNaN: true }), (s, n, shift) => {
        const xs = Array.from(new Rng(s).normals(n), (x) => x + shift);
        const ours = ksTest(xs, (x) => normalCdf(x, 0, 1));
        const theirs = kstest(xs, 'normal', 0, 1);
        expect(ours.statistic).toBeCloseWithin(theirs.statistic, TOL.float64);
        // Stephens' asymptotic formula vs stdlib's exact distribution: within 0.02 in p for n ≥ 50.
        expect(ours.pValue).toBeCloseWithin(theirs.pValue, override({ rtol: 0, atol: 0.02 }, 'asymptotic vs exact KS distribution, n ≥ 50'));
      }),
      { numRuns: 30 },
    ));

  it('the two-sample KS test accepts equal distributions and rejects a shift of 0.5σ  [numeric.stats.ks2Power]', () => {
    const r = new Rng(3);
    expect(ksTest2(r.normals(2000), r.normals(2000)).pValue).toBeGreaterThan(1e-4); // false-failure rate 1e-4
    const shifted = Array.from(r.normals(2000), (x) => x + 0.5);
    expect(ksTest2(r.normals(2000), shifted).pValue).toBeLessThan(1e-6);
  });

  it('a Monte Carlo check without a floor fails a near-deterministic estimator; the floor fixes it  [numeric.stats.mcFloor]', () => {
    const xs = [1 + 1e-15, 1 - 1e-15, 1 + 2e-15, 1 - 2e-15, 1];
    expect(mcAgrees(xs, 1 + 1e-13, { alpha: 1e-6, floor: 0 }).ok).toBe(false);
    expect(mcAgrees(xs, 1 + 1e-13, { alpha: 1e-6, floor: 1e-12 }).ok).toBe(true);
  });
});
