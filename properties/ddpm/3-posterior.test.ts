import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  clippedLogPosteriorVariance,
  forwardMarginal,
  forwardStep,
  forwardStepLogDensityByBayes,
  forwardPosterior,
  makeSchedule,
  posteriorMeanCoefficients,
  posteriorVariance,
} from '../../spec/ddpm/index.ts';
import { gaussianConditional, linearGaussianJoint, linearGaussianPosterior, normalLogPdf } from '../../spec/gaussian/index.ts';
import { identity, scaleMat } from '../../spec/linalg.ts';
import { TOL, override } from '../../src/numeric/tolerance.ts';
import { posteriorAtFirstStepIsX0, posteriorEqCoefficients, posteriorVarianceBetweenZeroAndBeta, xprevInvertsPosteriorMean } from '../../src/conformance/ddpmLaws.ts';
import { expectLawOnSpec, schedule, scheduleAndT, userBetas, vec } from './arbitraries.ts';
import { improvedCases } from './upstream.ts';

const EPS = Number.EPSILON;

describe('3.3 The posterior q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I): μ̃_t = c_0·x_0 + c_t·x_t, β̃_t = β_t(1 − ᾱ_{t−1})/(1 − ᾱ_t)', () => {
  it('equals the conditional of the joint Gaussian of (x_{t−1}, x_t) given x_0, for t ≥ 2  [ddpm.posterior.eqGaussianConditional]', () =>
    fc.assert(
      fc.property(
        scheduleAndT({ lo: 2 }),
        fc.integer({ min: 1, max: 3 }).chain((D) => fc.tuple(vec(D, 1), vec(D, 3))),
        ({ s, t }, [x0, xt]) => {
          const D = x0.length;
          const prev = forwardMarginal(s, t - 1, x0); // q(x_{t−1} | x_0)
          const model = {
            prior: { mean: prev.mean, cov: scaleMat(identity(D), prev.variance) },
            A: scaleMat(identity(D), Math.sqrt(s.alpha(t))), // q(x_t | x_{t−1}) = N(√α_t x_{t−1}, β_t I)
            b: new Array<number>(D).fill(0),
            noiseCov: scaleMat(identity(D), s.beta(t)),
          };
          const idxA = [...Array(D).keys()];
          const idxB = idxA.map((i) => i + D);
          const viaJoint = gaussianConditional(linearGaussianJoint(model), idxA, idxB, xt);
          const viaPrecision = linearGaussianPosterior(model, xt);
          const post = forwardPosterior(s, t, x0, xt);
          // The Schur complement (1 − ᾱ_{t−1}) − α(1 − ᾱ_{t−1})²/(1 − ᾱ_t) cancels: relative error ≈ ε·(1 − ᾱ_t)/β_t.
          const amp = 1 + s.oneMinusAlphaBar(t) / s.beta(t);
          const covTol = override({ rtol: 16 * EPS * amp, atol: 1e-300 }, 'cancellation in the Schur complement, relative ε·(1 − ᾱ_t)/β_t');
          const terms = Math.max(...prev.mean.map(Math.abs)) + Math.max(...xt.map(Math.abs));
          const meanTol = override({ rtol: 0, atol: 16 * EPS * amp * (1 + terms) }, 'the mean μ_a + K(x_b − μ_b) inherits the cancellation, relative to the size of its terms');
          for (const [route, g] of [['conditioning the joint', viaJoint], ['linear-Gaussian posterior', viaPrecision]] as const) {
            expect(g.mean).toBeCloseWithin(post.mean, meanTol, { what: `mean by ${route}` });
            expect(g.cov.flat()).toBeCloseWithin(scaleMat(identity(D), post.variance).flat(), covTol, { what: `covariance by ${route}`, shape: [D, D] });
          }
        },
      ),
    ));

  it('has 0 < β̃_t ≤ β_t for every t ≥ 2, and β̃_1 = 0  [ddpm.posterior.varianceBetweenZeroAndBeta]', () =>
    fc.assert(
      fc.property(fc.oneof(schedule(), userBetas({ lastOne: true }).map((b) => makeSchedule(b))), (s) => {
        expect(posteriorVariance(s, 1)).toBe(0);
        for (let t = 2; t <= s.T; t++) {
          const v = posteriorVariance(s, t);
          expect(v).toBeGreaterThan(0);
          expect(v).toBeLessThanOrEqual(s.beta(t));
        }
      }),
    ));

  it('at t = 1 is the point mass at x_0 (coefficients (1, 0), variance 0), the limit of the general formula  [ddpm.posterior.tEqualsOneIsPointMass]', () =>
    fc.assert(
      fc.property(schedule(), fc.integer({ min: 1, max: 4 }).chain((D) => fc.tuple(vec(D), vec(D))), (s, [x0, x1]) => {
        const p = forwardPosterior(s, 1, x0, x1);
        expect(p.mean).toEqual(x0);
        expect(p.variance).toBe(0);
        expect(posteriorMeanCoefficients(s, 1)).toEqual({ x0: 1, xt: 0 });
        // The general expressions evaluated at t = 1 (ᾱ_0 = 1) agree: c_0 = β_1/(1 − ᾱ_1) = 1, c_t = 0, β̃_1 = 0.
        const c0 = (Math.sqrt(s.alphaBar(0)) * s.beta(1)) / s.oneMinusAlphaBar(1);
        expect(c0).toBeCloseWithin(1, override({ rtol: 0, atol: 4 * EPS }, 'β_1/(−expm1(log1p(−β_1))): a few ulps'));
        expect((s.oneMinusAlphaBar(0) / s.oneMinusAlphaBar(1)) * s.beta(1)).toBe(0);
      }),
    ));

  it('log β̃ as the reference code clips it: log β̃_2 at t = 1, log β̃_t after, equal to improved-diffusion’s own buffers (with β̃, c_0, c_t); T = 1 is refused  [ddpm.posterior.clippedLogVariance]', () => {
    fc.assert(
      fc.property(schedule({ minT: 2 }), (s) => {
        expect(clippedLogPosteriorVariance(s, 1)).toBe(Math.log(posteriorVariance(s, 2)));
      }),
    );
    // Independent oracle: improved-diffusion's own buffers (golden/upstream), index t − 1 for paper step t.
    for (const { key, g, s, ts, tol } of improvedCases()) {
      expect(ts.map((t) => clippedLogPosteriorVariance(s, t))).toBeCloseWithin(g.posterior_log_variance_clipped.data, tol, { what: `${key} clipped log β̃` });
      expect(ts.map((t) => posteriorVariance(s, t))).toBeCloseWithin(g.posterior_variance.data, tol, { what: `${key} β̃` });
      expect(ts.map((t) => posteriorMeanCoefficients(s, t).x0)).toBeCloseWithin(g.posterior_mean_coef1.data, tol, { what: `${key} coef1 (c_0)` });
      expect(ts.map((t) => posteriorMeanCoefficients(s, t).xt)).toBeCloseWithin(g.posterior_mean_coef2.data, tol, { what: `${key} coef2 (c_t)` });
    }
    expect(() => clippedLogPosteriorVariance(makeSchedule([0.1]), 1)).toThrow(/needs a schedule with T ≥ 2 \(it uses β̃_2 at t = 1\), got T = 1/);
  });

  it('the Bayes step of eq. 5: q(x_{t−1} | x_t, x_0)·q(x_t | x_0)/q(x_{t−1} | x_0) is the forward step q(x_t | x_{t−1}) at every point, for t ≥ 2  [ddpm.posterior.bayesStepEqForwardStep]', () =>
    fc.assert(
      fc.property(scheduleAndT({ lo: 2 }), fc.integer({ min: 1, max: 3 }).chain((D) => fc.tuple(vec(D, 1), vec(D), vec(D))), ({ s, t }, [x0, xPrev, xt]) => {
        const step = forwardStep(s, t, xPrev);
        const direct = xt.reduce((a, x, i) => a + normalLogPdf(x, step.mean[i], step.variance), 0);
        const bayes = forwardStepLogDensityByBayes(s, t, x0, xPrev, xt);
        // Three log-densities of size up to |x|²/(2·variance) each, with variances down to β̃_t: their sum cancels.
        const scale = [posteriorVariance(s, t), s.oneMinusAlphaBar(t), s.oneMinusAlphaBar(t - 1)].reduce((a, v) => a + 9 / v, 0) * x0.length;
        expect(bayes).toBeCloseWithin(direct, override({ rtol: 1e-11, atol: 1e-13 * (1 + scale) }, 'a sum of three log-densities of size up to 9/variance cancels to the fourth'));
      }),
    ));

  it('the spec’s q_posterior_mean_variance is (coef1·x₀ + coef2·x_t, β̃, clipped log β̃) of its buffers  [ddpm.ops.posteriorEqCoefficients]', () => expectLawOnSpec(posteriorEqCoefficients));
  it('the spec’s buffers have posterior variance 0 at t = 0 and within (0, β] after (0-based)  [ddpm.ops.posteriorVarianceBetweenZeroAndBeta]', () => expectLawOnSpec(posteriorVarianceBetweenZeroAndBeta));
  it('the spec’s posterior at t = 0 (0-based) is the point mass at x₀  [ddpm.ops.posteriorAtFirstStepIsX0]', () => expectLawOnSpec(posteriorAtFirstStepIsX0));
  it('the spec’s predict_xstart_from_xprev inverts its posterior mean  [ddpm.ops.xprevInvertsPosteriorMean]', () => expectLawOnSpec(xprevInvertsPosteriorMean));
});
