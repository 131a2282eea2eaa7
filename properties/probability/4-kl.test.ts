import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Rng } from '../../src/numeric/rng.ts';
import { mcAgrees } from '../../src/numeric/stats.ts';
import { override } from '../../src/numeric/tolerance.ts';
import { affineGaussian, gaussianDensity, klDiagGaussian, klGaussian, type Gaussian } from '../../spec/gaussian/index.ts';
import { diag } from '../../spec/linalg.ts';
import { entropyDiscrete, klDiscrete, klMonteCarlo, klQuadrature1d, klQuadrature2d, klTabular } from '../../spec/probability/kl.ts';
import { allAssignments, tabularCondition, tabularMarginal } from '../../spec/probability/table.ts';
import { assertIsDivergence } from '../laws/probability.ts';
import { gaussianCase, real, squareMatrix, vector } from '../gaussian/arbitraries.ts';
import { probVector, tablePair } from './arbitraries.ts';

/** A pair of probability vectors of the same length 2–6, with zeros allowed (to exercise 0·log 0 and q·log(q/0)). */
const vectorPair = fc.integer({ min: 2, max: 6 }).chain((n) => fc.tuple(probVector(n, true), probVector(n, true)));
const differ = (q: readonly number[], p: readonly number[]) => q.some((v, i) => Math.abs(v - p[i]) > 1e-6);

/** Bernoulli(θ) as a probability vector, θ ∈ [0.01, 0.99] (away from 0 and 1 so that every KL is finite). */
const theta = real(0.01, 0.99);
const bern = (t: number) => [t, 1 - t];

/** Two Gaussians of the same dimension 1–6 with κ ≤ 10^maxLogCond each. */
function gaussianPair(maxLogCond: number, minDim = 1, maxDim = 6) {
  return gaussianCase({ minDim, maxDim, maxLogCond }).chain((q) => fc.tuple(fc.constant(q), gaussianCase({ minDim: q.dim, maxDim: q.dim, maxLogCond })));
}

function box(g: Gaussian, i: number): [number, number] {
  const s = Math.sqrt(g.cov[i][i]);
  return [g.mean[i] - 10 * s, g.mean[i] + 10 * s];
}

describe('1.4 KL divergence', () => {
  it('KL between finite distributions is a divergence: ≥ 0 (Gibbs), and 0 exactly when q = p  [probability.kl.isDivergence]', () => {
    assertIsDivergence('klDiscrete', klDiscrete, vectorPair, override({ rtol: 0, atol: 1e-15 }, 'Σ q·log(q/q) is exactly 0; rounding of q·log(q/p) for q ≈ p'), differ);
    assertIsDivergence('klTabular', klTabular, tablePair(), override({ rtol: 0, atol: 1e-15 }, 'Σ q·log(q/q) is exactly 0'), (q, p) => differ(q.values, p.values), { numRuns: 50 });
  });

  it('KL is not symmetric: KL[(½,½) ‖ (0.9,0.1)] = 0.5108 but KL[(0.9,0.1) ‖ (½,½)] = 0.3681, and a search finds asymmetric pairs  [probability.kl.notSymmetric]', () => {
    const t = override({ rtol: 1e-15, atol: 0 }, 'closed forms of two terms');
    expect(klDiscrete([0.5, 0.5], [0.9, 0.1])).toBeCloseWithin(0.5 * Math.log(0.5 / 0.9) + 0.5 * Math.log(0.5 / 0.1), t);
    expect(klDiscrete([0.9, 0.1], [0.5, 0.5])).toBeCloseWithin(0.9 * Math.log(1.8) + 0.1 * Math.log(0.2), t);
    expect(klDiscrete([0.5, 0.5], [0.9, 0.1]) - klDiscrete([0.9, 0.1], [0.5, 0.5])).toBeGreaterThan(0.14);
    const search = fc.check(fc.property(theta, theta, (a, b) => Math.abs(klDiscrete(bern(a), bern(b)) - klDiscrete(bern(b), bern(a))) < 1e-3), { numRuns: 1000 });
    expect(search.failed, 'the search for an asymmetric pair of Bernoullis found none').toBe(true);
    const [a, b] = search.counterexample as [number, number];
    expect(Math.abs(klDiscrete(bern(a), bern(b)) - klDiscrete(bern(b), bern(a))), `KL asymmetric at θ = ${a}, ${b}`).toBeGreaterThanOrEqual(1e-3);
  });

  it('KL violates the triangle inequality: a search over Bernoulli triples finds KL(a‖c) > KL(a‖b) + KL(b‖c)  [probability.kl.triangleViolated]', () => {
    const search = fc.check(
      // The margin 1e−9 keeps shrinking from stopping at rounding-level "violations" near a = b = c.
      fc.property(theta, theta, theta, (a, b, c) => klDiscrete(bern(a), bern(c)) <= klDiscrete(bern(a), bern(b)) + klDiscrete(bern(b), bern(c)) + 1e-9),
      { numRuns: 1000 },
    );
    expect(search.failed, 'the search for a triangle-inequality violation found none in 1000 triples').toBe(true);
    const [a, b, c] = search.counterexample as [number, number, number];
    const lhs = klDiscrete(bern(a), bern(c));
    const rhs = klDiscrete(bern(a), bern(b)) + klDiscrete(bern(b), bern(c));
    // A margin far above rounding, so that the counterexample is a real violation.
    expect(lhs - rhs, `counterexample θ = (${a}, ${b}, ${c}): KL(a‖c) = ${lhs}, KL(a‖b) + KL(b‖c) = ${rhs}`).toBeGreaterThan(1e-9);
    // A hand-checked instance: (0.1, 0.5, 0.9) gives 1.758 > 0.368 + 0.511.
    expect(klDiscrete(bern(0.1), bern(0.9))).toBeGreaterThan(klDiscrete(bern(0.1), bern(0.5)) + klDiscrete(bern(0.5), bern(0.9)) + 0.8);
  });

  it('KL is unbounded: KL[Bern(½) ‖ Bern(ε)] exceeds any M ≤ 350 for ε = e^{−2(M+1)}; it is +∞ where p = 0 < q, and KL[N(μ,1) ‖ N(0,1)] = μ²/2  [probability.kl.unbounded]', () =>
    fc.assert(
      fc.property(real(0, 350), real(-1e3, 1e3), (M, mu) => {
        const eps = Math.exp(-2 * (M + 1));
        expect(klDiscrete([0.5, 0.5], [eps, 1 - eps])).toBeGreaterThan(M);
        expect(klDiscrete([0.5, 0.5], [0, 1])).toBe(Infinity);
        expect(klDiscrete([0, 1], [0.5, 0.5])).toBeCloseWithin(Math.log(2), override({ rtol: 1e-15, atol: 0 }, 'one term'));
        expect(klGaussian({ mean: [mu], cov: [[1]] }, { mean: [0], cov: [[1]] })).toBeCloseWithin((mu * mu) / 2, override({ rtol: 1e-14, atol: 1e-14 }, 'a few roundings'));
      }),
    ));

  it('KL has a chain rule: KL[q(x,y) ‖ p(x,y)] = KL[q(x) ‖ p(x)] + E_q(x) KL[q(y|x) ‖ p(y|x)]  [probability.kl.chainRule]', () =>
    fc.assert(
      fc.property(tablePair({ minVars: 2, maxVars: 3 }), ([q, p]) => {
        const [x] = q.variables;
        const qx = tabularMarginal(q, [x.name]);
        const px = tabularMarginal(p, [x.name]);
        const conditional = allAssignments([x]).reduce((s, a, k) => s + qx.values[k] * klTabular(tabularCondition(q, a), tabularCondition(p, a)), 0);
        expect(klTabular(qx, px) + conditional).toBeCloseWithin(klTabular(q, p), override({ rtol: 1e-12, atol: 1e-14 }, 'sums of ≤ 64 terms q·log(q/p), regrouped'));
      }),
      { numRuns: 50 },
    ));

  it('KL is cross-entropy minus entropy: KL[q‖p] = −Σ q log p − H[q]  [probability.kl.eqCrossEntropyMinusEntropy]', () =>
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 6 }).chain((n) => fc.tuple(probVector(n, true), probVector(n))), ([q, p]) => {
        const cross = -q.reduce((s, v, i) => (v === 0 ? s : s + v * Math.log(p[i])), 0);
        expect(klDiscrete(q, p)).toBeCloseWithin(cross - entropyDiscrete(q), override({ rtol: 1e-12, atol: 1e-13 }, 'the difference of two sums of size ≤ log 1e3 + log 6'));
      }),
    ));

  it('bad input (unnormalised, negative, NaN, different lengths or variables) is rejected with the argument and the condition  [probability.kl.rejectsBadInput]', () => {
    expect(() => klDiscrete([0.5, 0.6], [0.5, 0.5])).toThrow(/^klDiscrete: q: probabilities must sum to 1 \(within 1e-9\), got 1\.1/);
    expect(() => klDiscrete([0.5, 0.5], [1.5, -0.5])).toThrow(/^klDiscrete: p\[1\]: .*>=0/);
    expect(() => klDiscrete([0.5, Number.NaN], [0.5, 0.5])).toThrow(/^klDiscrete: q\[1\]: .*NaN/);
    expect(() => klDiscrete([1], [0.5, 0.5])).toThrow('klDiscrete: q and p must have the same length, got 1 and 2');
    expect(() => entropyDiscrete([])).toThrow(/^entropyDiscrete: p: /);
    const a = { variables: [{ name: 'a', size: 2 }], values: [0.5, 0.5] };
    const b = { variables: [{ name: 'b', size: 2 }], values: [0.5, 0.5] };
    expect(() => klTabular(a, b)).toThrow('klTabular: q and p must be over the same variables in the same order, got [a:2] and [b:2]');
    expect(() => klGaussian({ mean: [0], cov: [[1]] }, { mean: [0, 0], cov: [[1, 0], [0, 1]] })).toThrow('klGaussian: q and p must have the same dimension, got 1 and 2');
    expect(() => klDiagGaussian([0], [0], [0], [1])).toThrow(/^klDiagGaussian: varQ\[0\]: .*>0/);
    expect(() => klDiagGaussian([0, 0], [1, 1], [0], [1])).toThrow('klDiagGaussian: meanP must have length 2 (the length of meanQ), got 1');
  });

  it('KL between Gaussians (full covariance) is a divergence, for κ up to 1e8  [gaussian.kl.isDivergence]', () =>
    assertIsDivergence(
      'klGaussian',
      klGaussian,
      gaussianPair(8).map(([q, p]) => [q.g, p.g] as const),
      override({ rtol: 0, atol: 1e-12 * 6 * 1e4 }, 'KL(q, q): tr(L⁻¹L) − D rounds to ≈ D·√κ·ε ≤ 6·1e4·ε at κ = 1e8'),
      // Materially different: a mean moves by > 1e−3 standard deviations, or a covariance entry by > 1e−3 relative
      // (then KL ≳ 1e−7, far above the ≈ D·ε rounding of tr(Σ_p⁻¹Σ_q) − D; closer pairs have KL below rounding).
      (q, p) =>
        q.mean.some((m, i) => Math.abs(m - p.mean[i]) > 1e-3 * Math.sqrt(Math.min(q.cov[i][i], p.cov[i][i]))) ||
        q.cov.some((r, i) => r.some((v, j) => Math.abs(v - p.cov[i][j]) > 1e-3 * Math.sqrt(q.cov[i][i] * q.cov[j][j]))),
    ));

  it('the Gaussian KL closed form equals ∫ q (log q − log p) by quadrature in 1-D and 2-D (κ ≤ 10)  [gaussian.kl.eqQuadrature]', () =>
    fc.assert(
      fc.property(gaussianPair(1, 1, 2), ([q, p]) => {
        const dq = gaussianDensity(q.g);
        const dp = gaussianDensity(p.g);
        const Q = { panels: 24, order: 10 };
        const kl = klGaussian(q.g, p.g);
        const quad =
          q.dim === 1
            ? klQuadrature1d((x) => dq.logPdf([x]), (x) => dp.logPdf([x]), ...box(q.g, 0), Q)
            : klQuadrature2d((x, y) => dq.logPdf([x, y]), (x, y) => dp.logPdf([x, y]), box(q.g, 0), box(q.g, 1), Q);
        expect(kl).toBeCloseWithin(quad, override({ rtol: 1e-9, atol: 1e-9 }, 'Gauss–Legendre (24 × 10) on the ±10σ box of q, κ ≤ 10; the integrand grows like the squared distance'));
      }),
      { numRuns: 20 },
    ));

  // 25 runs at α = 1e−6: false-failure rate ≤ 2.5e−5 per seed.
  it('the Gaussian KL closed form equals the Monte Carlo mean of log q − log p under q (n = 4000, α = 1e−6), D ≤ 6, κ up to 1e4  [gaussian.kl.eqMonteCarlo]', () =>
    fc.assert(
      fc.property(gaussianPair(4), fc.integer(), ([q, p], seed) => {
        const dp = gaussianDensity(p.g);
        const r = klMonteCarlo(gaussianDensity(q.g), (x) => dp.logPdf(x), 4000, new Rng(seed));
        expect(mcAgrees(r.values, klGaussian(q.g, p.g), { alpha: 1e-6, floor: 1e-9 })).toPassMonteCarlo(`KL[q ‖ p], D = ${q.dim}`);
      }),
      { numRuns: 25 },
    ));

  it('KL is invariant under a shared invertible affine map: KL[Aq + b ‖ Ap + b] = KL[q ‖ p]  [gaussian.kl.affineInvariant]', () =>
    fc.assert(
      fc.property(
        gaussianPair(2).chain(([q, p]) => fc.tuple(fc.constant(q), fc.constant(p), squareMatrix({ minDim: q.dim, maxDim: q.dim, maxLogCond: 2 }), vector(q.dim))),
        ([q, p, A, b]) => {
          const kl = klGaussian(q.g, p.g);
          const mapped = klGaussian(affineGaussian(q.g, A.A, b), affineGaussian(p.g, A.A, b));
          const k = A.cond * A.cond * Math.max(q.cond, p.cond) * q.dim;
          expect(mapped).toBeCloseWithin(kl, override({ rtol: 1e-14 * k, atol: 1e-14 * k }, `κ(A)²·κ(Σ)·D = ${k.toExponential(1)}: AΣAᵀ is formed and factored again`));
        },
      ),
    ));

  it('the diagonal KL equals the full-covariance KL with diagonal matrices  [gaussian.kl.diagEqFull]', () =>
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }).chain((n) => fc.tuple(vector(n), vector(n), fc.array(real(-3, 3), { minLength: n, maxLength: n }), fc.array(real(-3, 3), { minLength: n, maxLength: n }))),
        ([mq, mp, lq, lp]) => {
          const vq = lq.map((l) => 10 ** l);
          const vp = lp.map((l) => 10 ** l);
          const full = klGaussian({ mean: mq, cov: diag(vq) }, { mean: mp, cov: diag(vp) });
          expect(klDiagGaussian(mq, vq, mp, vp)).toBeCloseWithin(full, override({ rtol: 1e-12, atol: 1e-12 }, 'log of ratios vs difference of logs; variance ratios up to 1e6'));
        },
      ),
    ));

  it('the diagonal KL is the sum over dimensions of 1-D KLs  [gaussian.kl.diagSumOverDims]', () =>
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }).chain((n) => fc.tuple(vector(n), vector(n), fc.array(real(-3, 3), { minLength: n, maxLength: n }), fc.array(real(-3, 3), { minLength: n, maxLength: n }))),
        ([mq, mp, lq, lp]) => {
          const vq = lq.map((l) => 10 ** l);
          const vp = lp.map((l) => 10 ** l);
          const sum = mq.reduce((s, _, i) => s + klGaussian({ mean: [mq[i]], cov: [[vq[i]]] }, { mean: [mp[i]], cov: [[vp[i]]] }), 0);
          expect(klDiagGaussian(mq, vq, mp, vp)).toBeCloseWithin(sum, override({ rtol: 1e-12, atol: 1e-12 }, 'the same terms, computed by two formulas'));
        },
      ),
    ));
});
