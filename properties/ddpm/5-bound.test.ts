import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  boundTermsOnPath,
  chainExpectedBound,
  chainJoint,
  chainLogLikelihood,
  chainPathKl,
  chainMarginalX0,
  chainReverseModel,
  epsFormConstant,
  epsFormWeight,
  forwardStepSample,
  gaussianDataReverseChain,
  hoSchedule,
  lSimpleTerm,
  makeSchedule,
  muFromEps,
  natsToBitsPerDim,
  negElboOnPath,
  posteriorMeanCoefficients,
  posteriorVariance,
  priorTerm,
  priorTermBoundPerDim,
  qSample,
  reversePathLogDensity,
  transitionTerm,
  transitionTermEpsForm,
  type LinearGaussianChain,
  type Schedule,
} from '../../spec/ddpm/index.ts';
import { gaussianLogPdf, linearGaussianPosterior } from '../../spec/gaussian/index.ts';
import { identity, scaleMat } from '../../spec/linalg.ts';
import { mcAgrees } from '../../src/numeric/stats.ts';
import { TOL, override } from '../../src/numeric/tolerance.ts';
import { bpdTotalEqPriorPlusTerms, normalKlIsDivergence } from '../../src/conformance/ddpmLaws.ts';
import { show } from '../support/show.ts';
import { expectLawOnSpec, logReal, printable, real, rngArb, scheduleAndT, userBetas, vec } from './arbitraries.ts';

const EPS = Number.EPSILON;
const maxAbs = (...xs: (readonly number[])[]) => Math.max(0, ...xs.flat().map(Math.abs));

/**
 * A schedule with T ∈ 1…maxT steps (β ∈ [1e−3, 0.5]: keeps every variance of the chain away from 0) and a
 * linear-Gaussian reverse chain of the same length in D ∈ 1…3 dimensions: A_t entries in [−1.5, 1.5], b_t in
 * [−1, 1], σ_t² ∈ [0.01, 2] (bounded away from 0 so that log p_θ stays moderate).
 */
function scheduleAndChain(maxT = 6, minT = 1): fc.Arbitrary<{ s: Schedule; chain: LinearGaussianChain; D: number }> {
  return fc
    .record({ T: fc.integer({ min: minT, max: maxT }), D: fc.integer({ min: 1, max: 3 }) })
    .chain(({ T, D }) =>
      fc.record({
        betas: fc.array(logReal(1e-3, 0.5), { minLength: T, maxLength: T }),
        A: fc.array(fc.array(vec(D, 1.5), { minLength: D, maxLength: D }), { minLength: T, maxLength: T }),
        b: fc.array(vec(D, 1), { minLength: T, maxLength: T }),
        variance: fc.array(logReal(0.01, 2), { minLength: T, maxLength: T }),
        D: fc.constant(D),
      }),
    )
    .map(({ betas, A, b, variance, D }) => ({ s: printable(makeSchedule(betas)), chain: { A, b, variance }, D }));
}

/** One forward path x_1 … x_T ~ q(x_{1:T} | x_0), by the single steps. */
function forwardPath(s: Schedule, x0: number[], normals: () => ArrayLike<number>): number[][] {
  const path: number[][] = [];
  let x = x0;
  for (let t = 1; t <= s.T; t++) path.push((x = forwardStepSample(s, t, x, normals())));
  return path;
}

describe('3.5 The variational bound L = L_T + Σ_{t≥2} L_{t−1} + L_0 ≥ −log p_θ(x_0) and its ε-form', () => {
  it('the reverse process is a Markov chain: log p(x_T) + Σ_t log p_θ(x_{t−1} | x_t) is the log-density of the chain’s joint Gaussian over x_{0:T}  [ddpm.bound.reverseMarkovFactorisationEqJoint]', () =>
    fc.assert(
      fc.property(scheduleAndChain().chain((c) => fc.tuple(fc.constant(c), vec(c.D, 2), fc.array(vec(c.D, 3), { minLength: c.s.T, maxLength: c.s.T }))), ([{ s, chain }, x0, path]) => {
        const factorised = reversePathLogDensity(s, x0, path, chainReverseModel(chain));
        const joint = gaussianLogPdf(chainJoint(chain), [...x0, ...path.flat()]);
        expect(factorised).toBeCloseWithin(joint, override({ rtol: 1e-9, atol: 1e-9 }, 'the joint covariance (A entries ≤ 1.5, T ≤ 6) is inverted by Cholesky; κ up to ~1e4'));
      }),
    ));

  it('the bound’s gap is the KL between path distributions: L + log p_θ(x_0) = KL(q(x_{1:T} | x_0) ‖ p_θ(x_{1:T} | x_0)), exactly on linear-Gaussian chains, and 0 at the true reverse of data N(0, I)  [ddpm.bound.elboGapEqPathKl]', () => {
    fc.assert(
      fc.property(scheduleAndChain(5).chain((c) => vec(c.D, 2).map((x0) => ({ ...c, x0 }))), ({ s, chain, x0 }) => {
        // Left: the decomposition (eq. 5), term by term in closed form, plus the exact log-likelihood. Right: one KL
        // between two Gaussians over the whole path (the ELBO identity of 1.5 with z = x_{1:T}).
        const gap = chainExpectedBound(s, chain, x0).total + chainLogLikelihood(chain, x0);
        const kl = chainPathKl(s, chain, x0);
        expect(gap).toBeCloseWithin(kl, override({ rtol: 1e-8, atol: 1e-8 }, 'two routes through inverses of path covariances (κ up to ~1e4 for β ≥ 1e−3)'));
        expect(kl).toBeGreaterThanOrEqual(-1e-9);
      }),
      { numRuns: 60 },
    );
    const s = makeSchedule([0.1, 0.2, 0.3]);
    const truth = gaussianDataReverseChain(s, [0], 1); // data N(0, I): the chain's joint is q's, so the gap is 0
    expect(chainPathKl(s, truth, [0.3])).toBeCloseWithin(0, override({ rtol: 0, atol: 1e-12 }, 'exactly 0 up to rounding'));
    const off = { ...truth, variance: truth.variance.map((v) => 1.5 * v) };
    show('KL at the true reverse', Math.abs(chainPathKl(s, truth, [0.3])) < 1e-12 ? 0 : chainPathKl(s, truth, [0.3]));
    show('with σ² × 1.5', chainPathKl(s, off, [0.3]), 'nats');
  });

  it('the exact bound of a linear-Gaussian reverse chain is ≥ −log p_θ(x_0) for every parameter and every x_0  [ddpm.bound.geNegLogLikelihood]', () =>
    fc.assert(
      fc.property(
        fc.oneof(
          scheduleAndChain().chain((c) => vec(c.D, 2).map((x0) => ({ ...c, x0 }))),
          // the true reverse process of Gaussian data N(m, vI), evaluated at data points
          fc
            .record({ betas: userBetas({ maxT: 20 }), D: fc.integer({ min: 1, max: 3 }), v: logReal(0.05, 4) })
            .chain(({ betas, D, v }) => fc.record({ m: vec(D, 2), z: vec(D, 3) }).map(({ m, z }) => {
              const s = printable(makeSchedule(betas));
              return { s, chain: gaussianDataReverseChain(s, m, v), D, x0: m.map((mi, i) => mi + Math.sqrt(v) * z[i]) };
            })),
        ),
        ({ s, chain, x0 }) => {
          const L = chainExpectedBound(s, chain, x0);
          const nll = -chainLogLikelihood(chain, x0);
          const slack = 1e-10 * (1 + Math.abs(nll) + Math.abs(L.total));
          expect(L.total, `bound ${L.total} < −log p_θ(x_0) = ${nll}`).toBeGreaterThanOrEqual(nll - slack);
          expect(L.total).toBeCloseWithin(L.prior + L.transitions.reduce((a, b) => a + b, 0) + L.decoder, TOL.float64);
          for (const v of [L.prior, ...L.transitions]) expect(v).toBeGreaterThanOrEqual(-1e-12); // each KL ≥ 0
        },
      ),
      { numRuns: 200 },
    ));

  it('the bound is tight when the reverse chain is the true reverse process of data N(0, I): L(x_0) = −log N(x_0; 0, I)  [ddpm.bound.tightAtTrueReverse]', () =>
    fc.assert(
      fc.property(userBetas({ maxT: 40 }), fc.integer({ min: 1, max: 3 }).chain((D) => vec(D, 3)), (betas, x0) => {
        const s = makeSchedule(betas);
        const D = x0.length;
        const chain = gaussianDataReverseChain(s, new Array<number>(D).fill(0), 1);
        const exact = -gaussianLogPdf({ mean: new Array<number>(D).fill(0), cov: identity(D) }, x0);
        const tol = override({ rtol: 1e-12, atol: 1e-12 * s.T }, 'a sum of T + 1 closed-form terms of order 1');
        expect(-chainLogLikelihood(chain, x0)).toBeCloseWithin(exact, tol, { what: '−log p_θ(x_0)' });
        expect(chainExpectedBound(s, chain, x0).total).toBeCloseWithin(exact, tol, { what: 'the bound L(x_0)' });
        expect(chainMarginalX0(chain).cov.flat()).toBeCloseWithin(identity(D).flat(), tol, { what: 'p_θ(x_0) = N(0, I)' });
      }),
    ));

  it('the true reverse chain of Gaussian data is the linear-Gaussian posterior of x_{t−1} given x_t  [ddpm.bound.trueReverseEqGaussianPosterior]', () =>
    fc.assert(
      fc.property(
        userBetas({ maxT: 20 }),
        fc.integer({ min: 1, max: 3 }).chain((D) => fc.tuple(vec(D, 2), vec(D, 3))),
        logReal(0.05, 4),
        (betas, [m, xt], v) => {
          const s = makeSchedule(betas);
          const D = m.length;
          const chain = gaussianDataReverseChain(s, m, v);
          const step = chainReverseModel(chain);
          for (let t = 1; t <= s.T; t++) {
            const vPrev = t === 1 ? v : s.alphaBar(t - 1) * v + s.oneMinusAlphaBar(t - 1); // q(x_{t−1}) = N(√ᾱ_{t−1} m, v' I)
            const post = linearGaussianPosterior(
              {
                prior: { mean: m.map((mi) => Math.sqrt(s.alphaBar(t - 1)) * mi), cov: scaleMat(identity(D), vPrev) },
                A: scaleMat(identity(D), Math.sqrt(s.alpha(t))),
                b: new Array<number>(D).fill(0),
                noiseCov: scaleMat(identity(D), s.beta(t)),
              },
              xt,
            );
            const p = step(t, xt);
            const tol = override({ rtol: 1e-12, atol: 1e-13 * (1 + maxAbs(m, xt)) }, 'precision form (two inverses) vs the scalar closed form');
            expect(p.mean).toBeCloseWithin(post.mean, tol, { what: `mean at t = ${t}` });
            expect(scaleMat(identity(D), p.variance).flat()).toBeCloseWithin(post.cov.flat(), override({ rtol: 1e-12, atol: 1e-300 }, 'two inverses'), { what: `variance at t = ${t}` });
          }
        },
      ),
    ));

  // False-failure rate: per run 2 + T checks (T ≤ 4) at α = 1e−6; 6 runs: ≤ 3.6e−5.
  it('the decomposition and the definition of the bound, evaluated on forward paths, both average to the exact bound (Monte Carlo, α = 3.6e−5)  [ddpm.bound.decompositionEqMonteCarlo]', () =>
    fc.assert(
      fc.property(scheduleAndChain(4, 2).chain((c) => vec(c.D, 1.5).map((x0) => ({ ...c, x0 }))), rngArb, ({ s, chain, D, x0 }, rng) => {
        const n = 3000;
        const model = chainReverseModel(chain);
        const exact = chainExpectedBound(s, chain, x0);
        const definition: number[] = [];
        const decomposition: number[] = [];
        const terms: number[][] = Array.from({ length: s.T + 1 }, () => []);
        for (let k = 0; k < n; k++) {
          const path = forwardPath(s, x0, () => rng.normals(D));
          definition.push(negElboOnPath(s, x0, path, model));
          const on = boundTermsOnPath(s, x0, path, model);
          decomposition.push(on.total);
          on.transitions.forEach((v, i) => terms[i].push(v));
          terms[s.T].push(on.decoder);
        }
        const opts = { alpha: 1e-6, floor: 1e-9 };
        expect(mcAgrees(definition, exact.total, opts)).toPassMonteCarlo('mean of −log p(x_T) − Σ log p_θ(x_{t−1}|x_t) + Σ log q(x_t|x_{t−1}) on paths');
        expect(mcAgrees(decomposition, exact.total, opts)).toPassMonteCarlo('mean of L_T + Σ KL(q(x_{t−1}|x_t,x_0) ‖ p_θ) − log p_θ(x_0|x_1) on paths');
        exact.transitions.forEach((v, i) => expect(mcAgrees(terms[i], v, opts)).toPassMonteCarlo(`L_${i + 1}`));
        expect(mcAgrees(terms[s.T], exact.decoder, opts)).toPassMonteCarlo('L_0');
      }),
      { numRuns: 6 },
    ));

  it('with μ_θ from ε_θ, L_{t−1} = β_t²/(2σ_t² α_t (1−ᾱ_t))·‖ε − ε_θ‖² + C_t for every σ_t²  [ddpm.bound.epsFormEqKl]', () =>
    fc.assert(
      fc.property(
        scheduleAndT({ lo: 2 }),
        fc.integer({ min: 1, max: 3 }).chain((D) => fc.tuple(vec(D, 1), vec(D), vec(D))),
        real(0, 1),
        ({ s, t }, [x0, eps, epsPred], u) => {
          const bt = posteriorVariance(s, t);
          const sigma2 = bt * (s.beta(t) / bt) ** u; // from β̃_t (u = 0) to β_t (u = 1)
          const xt = qSample(s, t, x0, eps);
          const muTheta = muFromEps(s, t, xt, epsPred);
          const kl = transitionTerm(s, t, x0, xt, muTheta, sigma2);
          const epsForm = transitionTermEpsForm(s, t, eps, epsPred, sigma2);
          // Δμ = μ̃ − μ_θ is a difference of terms of size |x_t|/√α_t: its rounding E enters the KL as (2|Δμ|E + E²)/(2σ²).
          const c = posteriorMeanCoefficients(s, t);
          const E = 16 * EPS * (c.x0 * maxAbs(x0) + c.xt * maxAbs(xt) + (maxAbs(xt) + (s.beta(t) / Math.sqrt(s.oneMinusAlphaBar(t))) * maxAbs(epsPred)) / Math.sqrt(s.alpha(t)));
          const dmu = Math.sqrt(2 * sigma2 * Math.max(0, epsForm - epsFormConstant(s, t, sigma2, x0.length)));
          const tol = override({ rtol: 1e-12, atol: (x0.length * (2 * dmu * E + E * E)) / (2 * sigma2) + 1e-15 }, 'the mean mismatch is a difference of larger terms');
          expect(kl).toBeCloseWithin(epsForm, tol);
        },
      ),
    ));

  it('L_simple(t) = ‖ε − ε_θ‖² is the ε-form with its weight w_t and constant C_t dropped; for Ho’s schedule w_t falls from 0.27 (t = 2) to 0.0102 (t = T) with σ² = β  [ddpm.bound.lSimpleDropsWeights]', () => {
    fc.assert(
      fc.property(scheduleAndT({ lo: 2 }), fc.integer({ min: 1, max: 3 }).chain((D) => fc.tuple(vec(D, 1), vec(D), vec(D))), ({ s, t }, [x0, eps, epsPred]) => {
        // Independent route: the KL L_{t−1} itself (posterior mean against μ_θ from ε_θ), less C_t, over w_t, is the
        // plain sum of squared errors, written out here (not the spec's lSimpleTerm or its ε-form).
        const sse = eps.reduce((a, e, i) => a + (e - epsPred[i]) ** 2, 0);
        expect(lSimpleTerm(eps, epsPred)).toBeCloseWithin(sse, TOL.float64);
        const xt = qSample(s, t, x0, eps);
        const c = posteriorMeanCoefficients(s, t);
        const E = 16 * EPS * (c.x0 * maxAbs(x0) + c.xt * maxAbs(xt) + (maxAbs(xt) + (s.beta(t) / Math.sqrt(s.oneMinusAlphaBar(t))) * maxAbs(epsPred)) / Math.sqrt(s.alpha(t)));
        for (const sigma2 of [s.beta(t), posteriorVariance(s, t)]) {
          const w = epsFormWeight(s, t, sigma2);
          expect(w).toBeGreaterThan(0);
          const C = epsFormConstant(s, t, sigma2, eps.length);
          const kl = transitionTerm(s, t, x0, xt, muFromEps(s, t, xt, epsPred), sigma2);
          const dmu = Math.sqrt(2 * sigma2 * w * sse);
          const tol = override({ rtol: 1e-10, atol: ((eps.length * (2 * dmu * E + E * E)) / (2 * sigma2) + 1e-14 * (1 + C)) / w }, '(KL − C)/w: the mean mismatch is a difference of larger terms, and C cancels');
          expect((kl - C) / w).toBeCloseWithin(sse, tol);
        }
      }),
    );
    const ho = hoSchedule();
    const two = override({ rtol: 5e-3, atol: 0 }, 'a number stated to 2–3 digits');
    expect(epsFormWeight(ho, 2, ho.beta(2))).toBeCloseWithin(0.2727, two);
    expect(epsFormWeight(ho, 1000, ho.beta(1000))).toBeCloseWithin(0.0102, two);
    expect(epsFormWeight(ho, 2, posteriorVariance(ho, 2))).toBeCloseWithin(0.5997, two); // σ² = β̃: 0.60 at t = 2
    show('w₂', epsFormWeight(ho, 2, ho.beta(2)));
    show('w_T', epsFormWeight(ho, 1000, ho.beta(1000)));
  });

  it('the prior term L_T for Ho’s schedule (ᾱ_T = 4.04e−5) is at most 2.91e−5 bits per dimension for data in [−1, 1]  [ddpm.bound.priorTermHoSmall]', () => {
    const s = hoSchedule();
    const three = override({ rtol: 2e-3, atol: 0 }, 'a number stated to 3 digits');
    expect(s.alphaBar(1000)).toBeCloseWithin(4.04e-5, three);
    expect(natsToBitsPerDim(priorTermBoundPerDim(s), 1)).toBeCloseWithin(2.91e-5, three);
    show('ᾱ_T', s.alphaBar(1000));
    show('L_T bound', natsToBitsPerDim(priorTermBoundPerDim(s), 1), 'bits/dim');
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 16 }).chain((D) => vec(D, 1)), (x0) => {
        const D = x0.length;
        const L = priorTerm(s, x0);
        expect(L).toBeGreaterThanOrEqual(0);
        expect(L).toBeLessThanOrEqual(D * priorTermBoundPerDim(s) + D * 1e-15); // the KL is a difference of O(1) terms: absolute rounding ~1e−16 per dimension
        expect(natsToBitsPerDim(L, D)).toBeLessThan(2.92e-5);
      }),
    );
    // The bound is attained at |x_0| = 1 in every dimension; at x_0 = 0 the term is second order, ≈ ᾱ_T²/4 nats.
    expect(priorTerm(s, [1, -1, 1])).toBeCloseWithin(3 * priorTermBoundPerDim(s), override({ rtol: 1e-9, atol: 0 }, 'log1p vs the KL formula’s log of a ratio'));
    expect(priorTerm(s, [0])).toBeCloseWithin(s.alphaBar(1000) ** 2 / 4, override({ rtol: 1e-3, atol: 1e-20 }, 'second-order expansion of −ᾱ − log(1 − ᾱ); the KL is computed as a difference of O(1) terms'));
  });

  it('the spec’s normal_kl is 0 between equal Gaussians and ≥ 0 otherwise  [ddpm.ops.normalKlIsDivergence]', () => expectLawOnSpec(normalKlIsDivergence));
  it('the spec’s calc_bpd_loop total is its prior term plus its per-timestep terms, in bits per dimension  [ddpm.ops.bpdTotalEqPriorPlusTerms]', () => expectLawOnSpec(bpdTotalEqPriorPlusTerms));
});
