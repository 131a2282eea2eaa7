import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Rng } from '../../src/numeric/rng.ts';
import { override } from '../../src/numeric/tolerance.ts';
import { gaussianDensity, gaussianLogPdf, gaussianMarginal, gaussianSamples } from '../../spec/gaussian/index.ts';
import { integrate1d, marginalLogDensity2d } from '../../spec/probability/density.ts';
import { allAssignments, tableValue, tabularMarginal } from '../../spec/probability/table.ts';
import { assertIsDistribution } from '../laws/probability.ts';
import { gaussianCase, real } from '../gaussian/arbitraries.ts';
import { expectGaussiansClose, expectMomentsMatch } from '../gaussian/moments.ts';
import { table } from './arbitraries.ts';
import { mixtureArb, mixtureBox } from './densities.ts';

/** A subset of {0, …, D − 1} in a random order, non-empty. */
function indexSubset(D: number): fc.Arbitrary<number[]> {
  return fc.shuffledSubarray(Array.from({ length: D }, (_, i) => i), { minLength: 1, maxLength: D });
}

const SUM_TOL = override({ rtol: 0, atol: 1e-14 }, 'sums of ≤ 64 probabilities, each rounded once');

describe('1.2 Marginalisation', () => {
  it('the marginal of a table is a distribution over the kept variables, in the order asked, with p(x_K) = Σ p(x_K, x_rest)  [probability.marginal.isDistribution]', () =>
    fc.assert(
      fc.property(table().chain((p) => fc.tuple(fc.constant(p), fc.shuffledSubarray(p.variables.map((v) => v.name)))), ([p, keep]) => {
        const m = tabularMarginal(p, keep);
        expect(m.variables.map((v) => v.name)).toEqual(keep);
        assertIsDistribution(m.values, SUM_TOL, `p(${keep.join(', ')})`);
        for (const a of allAssignments(m.variables)) {
          const direct = allAssignments(p.variables)
            .filter((b) => keep.every((n) => b[n] === a[n]))
            .reduce((s, b) => s + tableValue(p, b), 0);
          expect(tableValue(m, a)).toBeCloseWithin(direct, SUM_TOL);
        }
      }),
    ));

  it('marginalising in either order, or all at once, gives the same table  [probability.marginal.commutes]', () =>
    fc.assert(
      fc.property(table({ minVars: 3, maxVars: 3 }), (p) => {
        const [a, b, c] = p.variables.map((v) => v.name);
        const bThenC = tabularMarginal(tabularMarginal(p, [a, c]), [a]);
        const cThenB = tabularMarginal(tabularMarginal(p, [a, b]), [a]);
        const once = tabularMarginal(p, [a]);
        expect(bThenC.values).toBeCloseWithin(once.values, SUM_TOL);
        expect(cThenB.values).toBeCloseWithin(once.values, SUM_TOL);
      }),
    ));

  it('the marginal of a 2-D density is a 1-D density (nested quadrature)  [probability.marginal.densityIsDistribution]', () =>
    fc.assert(
      fc.property(mixtureArb(2), fc.integer({ min: 0, max: 1 }), (m, keep) => {
        const other = 1 - keep;
        const Q = { panels: 16, order: 10 };
        const lm = marginalLogDensity2d((x, y) => m.logPdf([x, y]), keep as 0 | 1, mixtureBox(m, other), Q);
        const mass = integrate1d((v) => Math.exp(lm(v)), ...mixtureBox(m, keep), Q);
        expect(mass).toBeCloseWithin(1, override({ rtol: 1e-8, atol: 1e-8 }, 'nested Gauss–Legendre, 16 panels × 10 points on the ±10σ box'), { what: `∫ p(x_${keep}) dx_${keep}` });
      }),
      { numRuns: 10 },
    ));

  it('the marginal of a 2-D Gaussian is N(μ_a, Σ_aa): quadrature of the joint agrees pointwise  [gaussian.marginal.eqQuadrature]', () =>
    fc.assert(
      fc.property(gaussianCase({ minDim: 2, maxDim: 2, maxLogCond: 1 }), fc.integer({ min: 0, max: 1 }), real(-4, 4), (c, keep, z) => {
        const other = 1 - keep;
        const d = gaussianDensity(c.g);
        const s = Math.sqrt(c.g.cov[other][other]);
        const lm = marginalLogDensity2d((x, y) => d.logPdf([x, y]), keep as 0 | 1, [c.g.mean[other] - 10 * s, c.g.mean[other] + 10 * s], { panels: 24, order: 10 });
        const v = c.g.mean[keep] + z * Math.sqrt(c.g.cov[keep][keep]);
        expect(lm(v)).toBeCloseWithin(gaussianLogPdf(gaussianMarginal(c.g, [keep]), [v]), override({ rtol: 1e-9, atol: 1e-9 }, 'Gauss–Legendre (24 × 10) on ±10σ, κ ≤ 10; the log of a quadrature accurate to 1e−10 relative'));
      }),
      { numRuns: 30 },
    ));

  // 20 runs × ≤ 13 checks at α = 1e−6: false-failure rate ≤ 2.6e−4 per seed.
  it('the marginal of a D-dimensional Gaussian over any ordered subset matches the joint’s samples (n = 3000, α = 1e−6 per check), κ up to 1e8  [gaussian.marginal.eqMonteCarlo]', () =>
    fc.assert(
      fc.property(gaussianCase({ minDim: 2, maxDim: 6 }).chain((c) => fc.tuple(fc.constant(c), indexSubset(c.dim))), fc.integer(), ([c, idx], seed) => {
        const xs = gaussianSamples(c.g, new Rng(seed), 3000).map((x) => idx.map((i) => x[i]));
        expectMomentsMatch(xs, gaussianMarginal(c.g, idx), `x_[${idx}]`);
      }),
      { numRuns: 20 },
    ));

  it('marginalising a Gaussian in steps or at once gives the same Gaussian, and bad indices are rejected  [gaussian.marginal.commutes]', () =>
    fc.assert(
      fc.property(gaussianCase({ minDim: 3, maxDim: 6 }).chain((c) => fc.tuple(fc.constant(c), indexSubset(c.dim), fc.nat())), ([c, idx, k]) => {
        const sub = idx.slice(0, 1 + (k % idx.length));
        const stepwise = gaussianMarginal(gaussianMarginal(c.g, idx), sub.map((_, j) => j));
        expectGaussiansClose(stepwise, gaussianMarginal(c.g, sub), override({ rtol: 0, atol: 0 }, 'selection of entries is exact'), 'marginal of a marginal');
        expect(() => gaussianMarginal(c.g, [0, 0])).toThrow('gaussianMarginal: idx must not repeat an index, got 0 twice');
        expect(() => gaussianMarginal(c.g, [c.dim])).toThrow(`gaussianMarginal: idx must hold integers in [0, ${c.dim}), got ${c.dim}`);
      }),
    ));
});
