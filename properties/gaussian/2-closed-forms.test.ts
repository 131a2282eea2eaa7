import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Rng } from '../../src/numeric/rng.ts';
import { TOL, override, type Tolerance } from '../../src/numeric/tolerance.ts';
import {
  affineGaussian,
  gaussianConditional,
  gaussianDensity,
  gaussianLogPdf,
  gaussianMarginal,
  gaussianSamples,
  linearGaussianJoint,
  linearGaussianMarginal,
  linearGaussianPosterior,
  productOfGaussians,
  sumIndependentGaussians,
} from '../../spec/gaussian/index.ts';
import { addVec, blockDiag, conditionNumber, identity, matMul, matVec, transpose } from '../../spec/linalg.ts';
import { integrate1d } from '../../spec/probability/density.ts';
import { expectGaussiansClose, expectMomentsMatch } from './moments.ts';
import { gaussianCase, linearGaussianCase, pointNear, rectMatrix, spdMatrix, vector, type LinearGaussianCase } from './arbitraries.ts';

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

/**
 * An M×D map with M ≤ D whose rows have norm ≥ 0.1 and are far from dependent (κ(AAᵀ) ≤ 1e4), so that AΣAᵀ is SPD
 * with a condition number the tolerances can state.
 */
function fullRowRank(D: number): fc.Arbitrary<number[][]> {
  return fc
    .integer({ min: 1, max: D })
    .chain((M) => rectMatrix(M, D))
    .filter((A) => A.every((r) => Math.hypot(...r) >= 0.1) && conditionNumber(matMul(A, transpose(A))) < 1e4);
}

describe('2.2 Affine maps and sums of Gaussians', () => {
  // 20 runs × ≤ 13 checks at α = 1e−6: false-failure rate ≤ 2.6e−4 per seed.
  it('an affine map of a Gaussian is N(Aμ + b, AΣAᵀ): Monte Carlo on mapped samples (n = 3000, α = 1e−6 per check)  [gaussian.affine.eqMonteCarlo]', () =>
    fc.assert(
      fc.property(
        gaussianCase({ maxLogCond: 6 }).chain((c) => fc.record({ c: fc.constant(c), A: fullRowRank(c.dim), b: vector(c.dim, 3) })),
        fc.integer(),
        ({ c, A, b }, seed) => {
          const bb = b.slice(0, A.length);
          const y = affineGaussian(c.g, A, bb);
          const xs = gaussianSamples(c.g, new Rng(seed), 3000).map((x) => addVec(matVec(A, x), bb));
          expectMomentsMatch(xs, y, 'Ax + b');
        },
      ),
      { numRuns: 20 },
    ));

  it('affine maps compose: mapping by (A₁, b₁) then (A₂, b₂) is mapping by (A₂A₁, A₂b₁ + b₂)  [gaussian.affine.matchesComposition]', () =>
    fc.assert(
      fc.property(
        gaussianCase({ maxLogCond: 4 }).chain((c) =>
          fullRowRank(c.dim).chain((A1) => fc.record({ c: fc.constant(c), A1: fc.constant(A1), A2: fullRowRank(A1.length), b1: vector(A1.length), b2: vector(c.dim) })),
        ),
        ({ c, A1, A2, b1, b2 }) => {
          const bb2 = b2.slice(0, A2.length);
          const twice = affineGaussian(affineGaussian(c.g, A1, b1), A2, bb2);
          const once = affineGaussian(c.g, matMul(A2, A1), addVec(matVec(A2, b1), bb2));
          // The two routes associate the products differently: rounding relative to |A₂||A₁||Σ||A₁ᵀ||A₂ᵀ| ≲ 16·max|Σ|·D².
          expectGaussiansClose(twice, once, override({ rtol: 1e-12, atol: 1e-13 * 16 * c.dim * c.dim }, 'products associated differently; |A| ≤ 2 entries'), 'composition');
        },
      ),
    ));

  it('an affine map with rank-deficient A, or with mismatched shapes, is rejected with the reason  [gaussian.affine.rejectsBadInput]', () =>
    fc.assert(
      fc.property(gaussianCase({ minDim: 2, maxDim: 5, maxLogCond: 2 }), (c) => {
        const row = range(c.dim).map((i) => i + 1);
        expect(() => affineGaussian(c.g, [row, row], [0, 0])).toThrow(/^affineGaussian: A Σ Aᵀ \(A must have full row rank\) is not a valid Gaussian: not positive definite/);
        expect(() => affineGaussian(c.g, [[...row, 1]], [0])).toThrow(`affineGaussian: A must have ${c.dim} columns (the dimension of g), got ${c.dim + 1}`);
        expect(() => affineGaussian(c.g, [row], [0, 0])).toThrow('affineGaussian: b must have length 1 (the rows of A), got 2');
        expect(() => affineGaussian(c.g, [row, [1]], [0, 0])).toThrow(/^affineGaussian: A: must be rectangular/);
      }),
      { numRuns: 20 },
    ));

  // 20 runs × ≤ 13 checks at α = 1e−6: false-failure rate ≤ 2.6e−4 per seed.
  it('the sum of independent Gaussians is N(μ₁ + μ₂, Σ₁ + Σ₂): Monte Carlo (n = 3000, α = 1e−6 per check)  [gaussian.sum.eqMonteCarlo]', () =>
    fc.assert(
      fc.property(
        gaussianCase({ maxLogCond: 6 }).chain((c) => fc.tuple(fc.constant(c), gaussianCase({ minDim: c.dim, maxDim: c.dim, maxLogCond: 6 }))),
        fc.integer(),
        ([c1, c2], seed) => {
          const rng = new Rng(seed);
          const x1 = gaussianSamples(c1.g, rng.split(), 3000);
          const x2 = gaussianSamples(c2.g, rng.split(), 3000);
          expectMomentsMatch(x1.map((x, k) => addVec(x, x2[k])), sumIndependentGaussians(c1.g, c2.g), 'x₁ + x₂');
        },
      ),
      { numRuns: 20 },
    ));

  it('the sum of independent Gaussians is the affine image [I I] of their joint  [gaussian.sum.eqAffineOfJoint]', () =>
    fc.assert(
      fc.property(gaussianCase().chain((c) => fc.tuple(fc.constant(c), gaussianCase({ minDim: c.dim, maxDim: c.dim }))), ([c1, c2]) => {
        const D = c1.dim;
        const joint = { mean: [...c1.g.mean, ...c2.g.mean], cov: blockDiag(c1.g.cov, c2.g.cov) };
        const II = range(D).map((i) => [...identity(D)[i], ...identity(D)[i]]);
        expectGaussiansClose(sumIndependentGaussians(c1.g, c2.g), affineGaussian(joint, II, new Array(D).fill(0)), TOL.float64, 'Σ₁ + Σ₂ vs [I I] blockdiag(Σ₁, Σ₂) [I I]ᵀ');
        expect(() => sumIndependentGaussians(c1.g, { mean: [...c1.g.mean, 0], cov: blockDiag(c1.g.cov, [[1]]) })).toThrow(
          `sumIndependentGaussians: g1 and g2 must have the same dimension, got ${D} and ${D + 1}`,
        );
      }),
    ));
});

/** Tolerance for comparing two routes through a linear-Gaussian model: each inverts Λ⁻¹, L⁻¹ or their combination. */
function lgTol(c: LinearGaussianCase): Tolerance {
  const k = c.condPrior * c.condNoise;
  return override({ rtol: 1e-13 * k + 1e-12, atol: 1e-13 * k + 1e-12 }, `κ(Λ⁻¹)·κ(L⁻¹) = ${k.toExponential(1)}: the precision form inverts both covariances and their combination; error ≈ κ·ε for each`);
}

describe('2.3 The linear-Gaussian model (PRML 2.113–2.117)', () => {
  // 20 runs × ≤ 17 checks at α = 1e−6: false-failure rate ≤ 3.4e−4 per seed.
  it('the joint of (x, y) matches ancestral samples x ~ p(x), y = Ax + b + ε (n = 3000, α = 1e−6 per check)  [gaussian.linearGaussian.jointEqMonteCarlo]', () =>
    fc.assert(
      fc.property(linearGaussianCase(4), fc.integer(), (c, seed) => {
        const rng = new Rng(seed);
        const xs = gaussianSamples(c.m.prior, rng.split(), 3000);
        const eps = gaussianSamples({ mean: new Array(c.M).fill(0), cov: c.m.noiseCov }, rng.split(), 3000);
        const xy = xs.map((x, k) => [...x, ...addVec(addVec(matVec(c.m.A, x), c.m.b), eps[k])]);
        expectMomentsMatch(xy, linearGaussianJoint(c.m), '(x, y)');
      }),
      { numRuns: 20 },
    ));

  it('the marginal of y is N(Aμ + b, L⁻¹ + AΛ⁻¹Aᵀ), the y-block of the joint  [gaussian.linearGaussian.marginalEqJoint]', () =>
    fc.assert(
      fc.property(fc.oneof(linearGaussianCase(2), linearGaussianCase(6)), (c) => {
        const fromJoint = gaussianMarginal(linearGaussianJoint(c.m), range(c.M, c.D));
        expectGaussiansClose(linearGaussianMarginal(c.m), fromJoint, override({ rtol: 1e-12, atol: 1e-13 * 16 * c.D }, 'the same sums of products, associated differently'), 'p(y)');
      }),
    ));

  it('the posterior N(Σ{AᵀL(y − b) + Λμ}, (Λ + AᵀLA)⁻¹) equals conditioning the joint on y, for κ up to 1e6 per covariance  [gaussian.linearGaussian.posteriorEqJoint]', () =>
    fc.assert(
      fc.property(fc.oneof(linearGaussianCase(2), linearGaussianCase(6)).chain((c) => fc.tuple(fc.constant(c), vector(c.M, 10))), ([c, y]) => {
        const fromJoint = gaussianConditional(linearGaussianJoint(c.m), range(c.D), range(c.M, c.D), y);
        expectGaussiansClose(linearGaussianPosterior(c.m, y), fromJoint, lgTol(c), 'p(x | y)');
      }),
    ));

  it("the posterior satisfies Bayes' rule pointwise: log p(x|y) = log p(x) + log p(y|x) − log p(y)  [gaussian.linearGaussian.posteriorEqBayes]", () =>
    fc.assert(
      fc.property(
        linearGaussianCase(2).chain((c) => fc.tuple(fc.constant(c), vector(c.M, 10), vector(c.D, 3))),
        ([c, y, z]) => {
          const post = linearGaussianPosterior(c.m, y);
          const x = addVec(post.mean, z.map((v, i) => v * Math.sqrt(post.cov[i][i])));
          const lhs = gaussianLogPdf(post, x);
          const terms = [gaussianLogPdf(c.m.prior, x), gaussianLogPdf({ mean: addVec(matVec(c.m.A, x), c.m.b), cov: c.m.noiseCov }, y), -gaussianLogPdf(linearGaussianMarginal(c.m), y)];
          const rhs = terms[0] + terms[1] + terms[2];
          // Each log-density is accurate to a few hundred ulps × κ relative to its own size (the posterior mean is
          // Σ·AᵀL(y − b), whose intermediate sums exceed the terms); the terms can be ~1e4 and cancel.
          const scale = terms.reduce((a, t) => a + Math.abs(t), Math.abs(lhs) + 1);
          const k = c.condPrior * c.condNoise * conditionNumber(post.cov);
          expect(lhs).toBeCloseWithin(rhs, override({ rtol: 0, atol: 1e-13 * scale * k }, `κ(Λ⁻¹)·κ(L⁻¹)·κ(Σ_post) = ${k.toExponential(1)}, relative to the sum of |terms| = ${scale.toPrecision(3)}`));
        },
      ),
    ));

  it('mismatched shapes in the model are rejected with the part and the condition  [gaussian.linearGaussian.rejectsMismatchedDims]', () => {
    const prior = { mean: [0, 0], cov: [[1, 0], [0, 1]] };
    const m = { prior, A: [[1, 0]], b: [0], noiseCov: [[1]] };
    expect(() => linearGaussianMarginal({ ...m, A: [[1, 0, 0]] })).toThrow('linearGaussianMarginal: m.A: must have 2 columns (the dimension of prior), got 3');
    expect(() => linearGaussianMarginal({ ...m, b: [0, 0] })).toThrow('linearGaussianMarginal: m.b: must have length 1 (the rows of A), got 2');
    expect(() => linearGaussianMarginal({ ...m, noiseCov: [[1, 0], [0, 1]] })).toThrow('linearGaussianMarginal: m.noiseCov: must be 1×1 (the rows of A), got 2 rows');
    expect(() => linearGaussianPosterior({ ...m, noiseCov: [[-1]] }, [0])).toThrow(/^linearGaussianPosterior: m\.noiseCov: not positive definite/);
    expect(() => linearGaussianPosterior(m, [0, 1])).toThrow('linearGaussianPosterior: y must have length 1 (the rows of m.A), got 2');
    expect(() => linearGaussianJoint({ ...m, prior: { mean: [0, 0], cov: [[1, 2], [2, 1]] } })).toThrow(/^linearGaussianJoint: m\.prior\.cov: not positive definite/);
  });
});

describe('2.4 Products of Gaussian densities', () => {
  it('N(x|a,A)·N(x|b,B) = Z·N(x|c,C) pointwise, with C = (A⁻¹ + B⁻¹)⁻¹, c = C(A⁻¹a + B⁻¹b), Z = N(a|b, A + B)  [gaussian.product.eqPointwise]', () =>
    fc.assert(
      fc.property(
        gaussianCase({ maxLogCond: 3 }).chain((c1) => fc.tuple(fc.constant(c1), gaussianCase({ minDim: c1.dim, maxDim: c1.dim, maxLogCond: 3 }))).chain(([c1, c2]) => fc.tuple(fc.constant(c1), fc.constant(c2), pointNear(c1))),
        ([c1, c2, x]) => {
          const { gaussian, logNormaliser } = productOfGaussians(c1.g, c2.g);
          const lhs = gaussianLogPdf(c1.g, x) + gaussianLogPdf(c2.g, x);
          const rhs = logNormaliser + gaussianLogPdf(gaussian, x);
          const k = c1.cond * c2.cond;
          expect(rhs).toBeCloseWithin(lhs, override({ rtol: 1e-13 * k, atol: 1e-13 * k }, `κ(A)·κ(B) = ${k.toExponential(1)}: three inverses in the precision form`));
        },
      ),
    ));

  it('the normaliser Z is ∫ N(x|a,A) N(x|b,B) dx (1-D quadrature)  [gaussian.product.normaliserEqQuadrature]', () =>
    fc.assert(
      fc.property(gaussianCase({ minDim: 1, maxDim: 1 }), gaussianCase({ minDim: 1, maxDim: 1 }), (c1, c2) => {
        const { logNormaliser, gaussian } = productOfGaussians(c1.g, c2.g);
        const d1 = gaussianDensity(c1.g);
        const d2 = gaussianDensity(c2.g);
        const s = Math.sqrt(gaussian.cov[0][0]);
        const Z = integrate1d((x) => Math.exp(d1.logPdf([x]) + d2.logPdf([x])), gaussian.mean[0] - 12 * s, gaussian.mean[0] + 12 * s, { panels: 48, order: 12 });
        expect(Math.log(Z)).toBeCloseWithin(logNormaliser, override({ rtol: 1e-10, atol: 1e-10 }, 'Gauss–Legendre on ±12 standard deviations of the product'));
      }),
      { numRuns: 30 },
    ));

  it('products with mismatched dimensions are rejected  [gaussian.product.rejectsMismatchedDims]', () =>
    fc.assert(
      fc.property(spdMatrix({ minDim: 1, maxDim: 4, maxLogCond: 2 }), (s) => {
        const g = { mean: new Array(s.dim).fill(0), cov: s.cov };
        const h = { mean: new Array(s.dim + 1).fill(0), cov: identity(s.dim + 1) };
        expect(() => productOfGaussians(g, h)).toThrow(`productOfGaussians: g1 and g2 must have the same dimension, got ${s.dim} and ${s.dim + 1}`);
      }),
      { numRuns: 10 },
    ));
});
