import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  clippedLogPosteriorVariance,
  clipToDataRange,
  convertPrediction,
  epsFromX0,
  fixedReverseVariance,
  forwardMarginal,
  forwardStep,
  gaussianDataReverseChain,
  hoSchedule,
  learnedRangeLogVariance,
  makeSchedule,
  muFromEps,
  muFromX0,
  posteriorMean,
  posteriorMeanCoefficients,
  posteriorVariance,
  PredictionKind,
  qSample,
  reverseStep,
  scoreFromEps,
  trueReverseVarianceDiscrete,
  vFromEps,
  x0FromEps,
  x0FromScore,
  type Schedule,
} from '../../spec/ddpm/index.ts';
import { gaussianConditional, linearGaussianJoint, linearGaussianMarginal, normalLogPdf } from '../../spec/gaussian/index.ts';
import { identity, scaleMat, solve } from '../../spec/linalg.ts';
import { TOL, override, type Tolerance } from '../../src/numeric/tolerance.ts';
import { epsMeanEqPosteriorOfPredictedXstart, epsXstartRoundTrip, fixedVariancesAreBetaOrPosterior } from '../../src/conformance/ddpmLaws.ts';
import { gaussianCase, WELL } from '../gaussian/arbitraries.ts';
import { expectLawOnSpec, real, schedule, scheduleAndT, vec } from './arbitraries.ts';
import { integrate1d } from '../../spec/probability/index.ts';
import { improvedCases } from './upstream.ts';
import { show } from '../support/show.ts';

/**
 * Mean and variance of q(x_{t−1} | x_t) for discrete 1-D data by quadrature of the unnormalised joint
 * Σ_i w_i q(x_{t−1} | x_0 = a_i) q(x_t | x_{t−1}) over x_{t−1}: an independent route (the forward densities only,
 * no posterior formula). The grid covers every posterior component: each lies between √ᾱ_{t−1}·a_i and
 * x_t/√α_t, with a standard deviation of at most √(1 − ᾱ_{t−1}); panels are a quarter of the smallest one wide.
 */
function reverseMomentsByQuadrature(s: Schedule, t: number, points: readonly number[], weights: readonly number[], xt: number): { mean: number; variance: number } {
  const step = forwardStep(s, t, [0]).variance;
  const logTerms = (u: number): number[] =>
    points.map((a, i) => Math.log(weights[i]) + normalLogPdf(u, forwardMarginal(s, t - 1, [a]).mean[0], s.oneMinusAlphaBar(t - 1)) + normalLogPdf(xt, forwardStep(s, t, [u]).mean[0], step));
  const ends = [...points.map((a) => Math.sqrt(s.alphaBar(t - 1)) * a), xt / Math.sqrt(s.alpha(t))];
  const sdMax = Math.sqrt(s.oneMinusAlphaBar(t - 1));
  const sdMin = Math.sqrt(posteriorVariance(s, t));
  const lo = Math.min(...ends) - 12 * sdMax;
  const hi = Math.max(...ends) + 12 * sdMax;
  const opts = { panels: Math.min(20_000, Math.ceil((hi - lo) / (sdMin / 4))), order: 8 };
  // The joint can underflow (x_t far from every √ᾱ_t·a_i): scale by its largest value on a grid of step ≤ sdMin.
  const n = Math.min(200_000, Math.ceil((hi - lo) / sdMin) + 1);
  let shift = -Infinity;
  for (let k = 0; k <= n; k++) shift = Math.max(shift, ...logTerms(lo + ((hi - lo) * k) / n));
  const f = (u: number): number => logTerms(u).reduce((acc, l) => acc + Math.exp(l - shift), 0);
  const z = integrate1d(f, lo, hi, opts);
  const mean = integrate1d((u) => u * f(u), lo, hi, opts) / z;
  return { mean, variance: integrate1d((u) => (u - mean) ** 2 * f(u), lo, hi, opts) / z };
}

const EPS = Number.EPSILON;
const maxAbs = (...xs: (readonly number[])[]) => Math.max(0, ...xs.flat().map(Math.abs));

/**
 * The conversions divide by √ᾱ_t, √(1 − ᾱ_t) and the posterior coefficient c_0; a round trip's absolute error is
 * a few ulps of its terms times the product of those amplifications.
 */
function amplifiedTol(s: Schedule, t: number, magnitude: number, why: string): Tolerance {
  const amp = (1 + 1 / Math.sqrt(s.alphaBar(t))) * (1 + 1 / Math.sqrt(s.oneMinusAlphaBar(t))) * (1 + 1 / posteriorMeanCoefficients(s, t).x0);
  return override({ rtol: 0, atol: 64 * EPS * amp * (1 + magnitude) }, `${why}: amplification ${amp.toExponential(2)} by 1/√ᾱ, 1/√(1 − ᾱ), 1/c_0`);
}

describe('3.4 The reverse process p_θ(x_{t−1} | x_t) = N(μ_θ, σ_t² I) and the parameterisations ε ↔ x_0 ↔ μ ↔ score ↔ v', () => {
  it('the conversions between ε, x_0, μ, score and v are mutual inverses  [ddpm.param.conversionsInverse]', () =>
    fc.assert(
      fc.property(
        scheduleAndT(),
        fc.integer({ min: 1, max: 3 }).chain((D) => fc.tuple(vec(D), vec(D))),
        fc.constantFrom(...PredictionKind.options),
        fc.constantFrom(...PredictionKind.options),
        ({ s, t }, [xt, value], from, to) => {
          const there = convertPrediction(s, t, xt, { kind: from, value }, to);
          const back = convertPrediction(s, t, xt, { kind: to, value: there }, from);
          expect(back).toBeCloseWithin(value, amplifiedTol(s, t, maxAbs(xt, value, there), `${from} → ${to} → ${from}`), { what: `${from} → ${to} → ${from} at t = ${t}` });
        },
      ),
      { numRuns: 300 },
    ));

  it('x̂_0 from ε recovers x_0 from x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε  [ddpm.param.recoversX0]', () =>
    fc.assert(
      fc.property(scheduleAndT(), fc.integer({ min: 1, max: 3 }).chain((D) => fc.tuple(vec(D, 1), vec(D))), ({ s, t }, [x0, eps]) => {
        const xt = qSample(s, t, x0, eps);
        const tol = override({ rtol: 0, atol: 8 * EPS * (1 / Math.sqrt(s.alphaBar(t))) * (maxAbs(xt) + maxAbs(eps)) + 1e-300 }, 'x_t/√ᾱ − √((1 − ᾱ)/ᾱ)·ε cancels: a few ulps of its terms');
        expect(x0FromEps(s, t, xt, eps)).toBeCloseWithin(x0, tol);
      }),
    ));

  it('μ_θ from ε (Ho eq. 11) equals the posterior mean μ̃_t(x_t, x̂_0(ε))  [ddpm.param.muFromEpsEqPosteriorMean]', () =>
    fc.assert(
      fc.property(scheduleAndT(), fc.integer({ min: 1, max: 3 }).chain((D) => fc.tuple(vec(D), vec(D))), ({ s, t }, [xt, eps]) => {
        const c = posteriorMeanCoefficients(s, t);
        const ab = s.alphaBar(t);
        const scale =
          c.x0 * (maxAbs(xt) / Math.sqrt(ab) + Math.sqrt(s.oneMinusAlphaBar(t) / ab) * maxAbs(eps)) +
          c.xt * maxAbs(xt) +
          (maxAbs(xt) + (s.beta(t) / Math.sqrt(s.oneMinusAlphaBar(t))) * maxAbs(eps)) / Math.sqrt(s.alpha(t));
        // Below 2⁻¹⁰²² (fc.double draws subnormals) rounding is absolute, up to Number.MIN_VALUE/2 per operation,
        // not relative: hence the floor of a few MIN_VALUE (4.9e−324 each), which no normal result notices.
        const tol = override({ rtol: 0, atol: 16 * EPS * scale + 16 * Number.MIN_VALUE }, 'two different formulas: a few ulps of the size of their terms, subnormal rounding below 2⁻¹⁰²²');
        expect(muFromEps(s, t, xt, eps)).toBeCloseWithin(posteriorMean(s, t, x0FromEps(s, t, xt, eps), xt), tol);
      }),
    ));

  it('the score −ε/√(1−ᾱ_t) is the gradient of log q(x_t | x_0) (central differences)  [ddpm.param.scoreEqGradLogMarginal]', () =>
    fc.assert(
      fc.property(scheduleAndT(), fc.integer({ min: 1, max: 3 }).chain((D) => fc.tuple(vec(D, 1), vec(D))), ({ s, t }, [x0, eps]) => {
        const q = forwardMarginal(s, t, x0);
        const xt = qSample(s, t, x0, eps);
        const logq = (x: number[]) => x.reduce((a, xi, i) => a + normalLogPdf(xi, q.mean[i], q.variance), 0);
        const sd = Math.sqrt(q.variance);
        const h = 1e-3 * sd; // log q is quadratic: the central difference has no truncation error, only rounding ≈ ε·|log q|/h
        const fd = xt.map((_, i) => {
          const up = [...xt];
          const dn = [...xt];
          up[i] += h;
          dn[i] -= h;
          return (logq(up) - logq(dn)) / (2 * h);
        });
        const tol = override({ rtol: 1e-6, atol: (1e-9 * (1 + Math.abs(logq(xt)))) / sd }, 'central difference of a quadratic: rounding ε·|log q|/h with h = 1e−3·σ');
        expect(scoreFromEps(s, t, eps)).toBeCloseWithin(fd, tol);
      }),
    ));

  it('Tweedie: (x_t + (1−ᾱ_t)∇log q(x_t))/√ᾱ_t equals 𝔼[x_0 | x_t] for Gaussian data N(m, S)  [ddpm.param.tweedieEqPosteriorMean]', () =>
    fc.assert(
      fc.property(scheduleAndT(), gaussianCase({ ...WELL, maxDim: 3 }), fc.array(real(-3, 3), { minLength: 3, maxLength: 3 }), ({ s, t }, data, z) => {
        const D = data.dim;
        const model = { prior: data.g, A: scaleMat(identity(D), Math.sqrt(s.alphaBar(t))), b: new Array<number>(D).fill(0), noiseCov: scaleMat(identity(D), s.oneMinusAlphaBar(t)) };
        const qt = linearGaussianMarginal(model); // q(x_t)
        const xt = qt.mean.map((m, i) => m + z[i]);
        const score = solve(qt.cov, xt.map((x, i) => qt.mean[i] - x)); // ∇log q(x_t) = −C⁻¹(x_t − μ_t)
        const idx = [...Array(D).keys()];
        const posteriorMeanX0 = gaussianConditional(linearGaussianJoint(model), idx, idx.map((i) => i + D), xt).mean;
        const amp = data.cond / Math.sqrt(s.alphaBar(t));
        const tol = override({ rtol: 0, atol: 256 * EPS * amp * (1 + maxAbs(xt, data.g.mean)) }, 'a solve with condition number κ ≤ 100, then division by √ᾱ_t');
        expect(x0FromScore(s, t, xt, score)).toBeCloseWithin(posteriorMeanX0, tol);
      }),
    ));

  it('v = √ᾱ_t ε − √(1−ᾱ_t) x_0 (its definition) when x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε  [ddpm.param.vEqDefinition]', () =>
    fc.assert(
      fc.property(scheduleAndT(), fc.integer({ min: 1, max: 3 }).chain((D) => fc.tuple(vec(D, 1), vec(D))), ({ s, t }, [x0, eps]) => {
        const xt = qSample(s, t, x0, eps);
        const a = Math.sqrt(s.alphaBar(t));
        const b = Math.sqrt(s.oneMinusAlphaBar(t));
        const tol = override({ rtol: 0, atol: (8 * EPS * (maxAbs(eps) + maxAbs(xt))) / a + 1e-300 }, '(ε − √(1 − ᾱ) x_t)/√ᾱ cancels: ulps of its terms over √ᾱ');
        expect(vFromEps(s, t, xt, eps)).toBeCloseWithin(eps.map((e, i) => a * e - b * x0[i]), tol);
      }),
    ));

  it('the fixed variances are σ_t² = β_t or β̃_t; the reference code’s fixedLarge uses β̃_2 at t = 1 and fixedSmall a clipped log  [ddpm.reverse.fixedVariances]', () => {
    fc.assert(
      fc.property(scheduleAndT({ minT: 2 }), ({ s, t }) => {
        // β̃_t from its definition as the variance of the Gaussian conditional (a different formula: 1/(α_t/β_t + 1/(1 − ᾱ_{t−1})))
        const tilde = t === 1 ? 0 : 1 / (s.alpha(t) / s.beta(t) + 1 / s.oneMinusAlphaBar(t - 1));
        const rel = override({ rtol: 1e-12, atol: 0 }, 'two algebraically equal forms of β̃_t');
        expect(fixedReverseVariance(s, t, 'beta').variance).toBe(s.beta(t));
        expect(fixedReverseVariance(s, t, 'betaTilde').variance).toBeCloseWithin(tilde, rel);
        expect(fixedReverseVariance(s, t, 'fixedSmall').variance).toBeCloseWithin(tilde, rel);
        for (const c of ['beta', 'betaTilde', 'fixedLarge'] as const) {
          const f = fixedReverseVariance(s, t, c);
          expect(f.logVariance).toBeCloseWithin(Math.log(f.variance), TOL.exact);
        }
      }),
    );
    // Independent oracle: improved-diffusion's own arrays (golden/upstream; index t − 1 for paper step t):
    // FIXED_LARGE = (fixedlarge_variance, fixedlarge_log_variance), FIXED_SMALL = (posterior_variance, posterior_log_variance_clipped).
    for (const { key, g, s, ts, tol } of improvedCases()) {
      const at = (c: 'fixedLarge' | 'fixedSmall', k: 'variance' | 'logVariance') => ts.map((t) => fixedReverseVariance(s, t, c)[k]);
      expect(at('fixedLarge', 'variance')).toBeCloseWithin(g.fixedlarge_variance.data, tol, { what: `${key} fixedLarge σ²` });
      expect(at('fixedLarge', 'logVariance')).toBeCloseWithin(g.fixedlarge_log_variance.data, tol, { what: `${key} fixedLarge log σ²` });
      expect(at('fixedSmall', 'variance')).toBeCloseWithin(g.posterior_variance.data, tol, { what: `${key} fixedSmall σ²` });
      expect(at('fixedSmall', 'logVariance')).toBeCloseWithin(g.posterior_log_variance_clipped.data, tol, { what: `${key} fixedSmall log σ²` });
      expect(ts.map((t) => fixedReverseVariance(s, t, 'beta').logVariance)).toBeCloseWithin(g.log_betas.data, tol, { what: `${key} log β` });
    }
    const s1 = makeSchedule([0.1]);
    expect(fixedReverseVariance(s1, 1, 'betaTilde')).toEqual({ variance: 0, logVariance: Number.NEGATIVE_INFINITY });
    expect(() => fixedReverseVariance(s1, 1, 'fixedLarge')).toThrow(/'fixedLarge' needs T ≥ 2/);
    expect(() => fixedReverseVariance(s1, 1, 'huge' as 'beta')).toThrow(/choice must be one of beta, betaTilde, fixedLarge, fixedSmall, got huge/);
  });

  it('the learned-range log-variance interpolates linearly from log β̃_t (v = −1) to log β_t (v = 1)  [ddpm.reverse.learnedRangeInterpolates]', () =>
    fc.assert(
      fc.property(scheduleAndT({ minT: 2 }), vec(4, 2), ({ s, t }, v) => {
        const [lo, hi] = [learnedRangeLogVariance(s, t, [-1])[0], learnedRangeLogVariance(s, t, [1])[0]];
        expect(lo).toBeCloseWithin(clippedLogPosteriorVariance(s, t), TOL.float64);
        expect(hi).toBeCloseWithin(Math.log(s.beta(t)), TOL.float64);
        const tol = override({ rtol: 1e-14, atol: 1e-14 * (Math.abs(lo) + Math.abs(hi)) }, 'f·a + (1 − f)·b vs a + f·(b − a): ulps of the logs');
        expect(learnedRangeLogVariance(s, t, v)).toBeCloseWithin(v.map((vi) => lo + ((vi + 1) / 2) * (hi - lo)), tol);
        const r = reverseStep(s, t, [0, 0, 0, 0], { kind: 'eps', value: [0, 0, 0, 0] }, { kind: 'learnedRange', v });
        expect(r.variance).toBeCloseWithin(r.logVariance.map(Math.exp), TOL.float64);
      }),
    ));

  it('clipping x̂_0 to [−1, 1] leaves values inside unchanged and maps values outside to ±1  [ddpm.reverse.clipOnlyActsOutsideRange]', () =>
    fc.assert(
      fc.property(fc.array(real(-5, 5), { minLength: 1, maxLength: 8 }), (x) => {
        expect(clipToDataRange(x)).toEqual(x.map((v) => (v > 1 ? 1 : v < -1 ? -1 : v)));
      }),
    ));

  it('predictions of ε, x_0, μ, score and v that encode the same x̂_0 give the same reverse-step mean μ̃_t(x_t, x̂_0)  [ddpm.reverse.meanFromEachParameterisationAgrees]', () =>
    fc.assert(
      fc.property(scheduleAndT(), fc.integer({ min: 1, max: 3 }).chain((D) => fc.tuple(vec(D), vec(D, 1))), ({ s, t }, [xt, x0]) => {
        const eps = epsFromX0(s, t, xt, x0);
        const preds = [
          { kind: 'x0', value: x0 },
          { kind: 'eps', value: eps },
          { kind: 'mu', value: muFromX0(s, t, xt, x0) },
          { kind: 'score', value: scoreFromEps(s, t, eps) },
          { kind: 'v', value: vFromEps(s, t, xt, eps) },
        ] as const;
        const expected = muFromX0(s, t, xt, x0);
        for (const p of preds) {
          const r = reverseStep(s, t, xt, p, 'beta');
          const tol = amplifiedTol(s, t, maxAbs(xt, x0, eps), `mean from a ${p.kind} prediction`);
          expect(r.mean).toBeCloseWithin(expected, tol, { what: `mean from ${p.kind}` });
          expect(r.x0).toBeCloseWithin(x0, tol, { what: `x̂_0 from ${p.kind}` });
          expect(r.variance).toEqual(xt.map(() => s.beta(t)));
        }
      }),
    ));

  it('the true reverse variance Var[x_{t−1} | x_t] of discrete data is β̃_t + c_0²·Var[x_0 | x_t] (quadrature of the forward joint), and never below β̃_t  [ddpm.reverse.trueVarianceEqQuadrature]', () =>
    fc.assert(
      fc.property(
        scheduleAndT({ lo: 2, maxT: 100 }),
        fc.integer({ min: 1, max: 4 }).chain((n) => fc.tuple(fc.array(real(-1, 1), { minLength: n, maxLength: n }), fc.array(real(0.05, 1), { minLength: n, maxLength: n }))),
        real(-3, 3),
        ({ s, t }, [points, weights], xt) => {
          const v = trueReverseVarianceDiscrete(s, t, points, weights, xt);
          const q = reverseMomentsByQuadrature(s, t, points, weights, xt);
          expect(v).toBeCloseWithin(q.variance, override({ rtol: 1e-8, atol: 1e-14 }, 'composite Gauss–Legendre, panels a quarter of the narrowest posterior component; variance as a central moment'));
          expect(q.variance).toBeGreaterThanOrEqual(posteriorVariance(s, t) * (1 - 1e-8));
        },
      ),
      { numRuns: 60 },
    ));

  it('β_t is not an upper bound: for data ±1 at x_t = 0 the true reverse variance β̃_t + c_0² exceeds β_t at every t  [ddpm.reverse.trueVarianceExceedsBetaForBinaryData]', () => {
    const ho = hoSchedule();
    show('Var[x_{t−1} | x_t = 0]/β_t at t = 2 (Ho linear)', trueReverseVarianceDiscrete(ho, 2, [-1, 1], [0.5, 0.5], 0) / ho.beta(2));
    fc.assert(
      fc.property(scheduleAndT({ lo: 2, maxT: 100 }), ({ s, t }) => {
        const q = reverseMomentsByQuadrature(s, t, [-1, 1], [0.5, 0.5], 0);
        expect(q.variance, `t = ${t}: quadrature variance ${q.variance} vs β_t = ${s.beta(t)}`).toBeGreaterThan(s.beta(t));
        expect(trueReverseVarianceDiscrete(s, t, [-1, 1], [0.5, 0.5], 0)).toBeGreaterThan(s.beta(t));
      }),
      { numRuns: 60 },
    );
  });

  it('for data N(0, I) the true reverse variance is exactly β_t (Ho et al.’s choice σ_t² = β_t is right for unit-variance data)  [ddpm.reverse.trueVarianceIsBetaForUnitGaussianData]', () =>
    fc.assert(
      fc.property(schedule({ maxT: 100 }), (s) => {
        const chain = gaussianDataReverseChain(s, [0], 1);
        for (let t = 1; t <= s.T; t++) expect(chain.variance[t - 1]).toBeCloseWithin(s.beta(t), TOL.float64, { what: `σ_t² at t = ${t}` });
      }),
    ));

  it('the spec’s predict_xstart_from_eps and predict_eps_from_xstart are mutual inverses  [ddpm.ops.epsXstartRoundTrip]', () => expectLawOnSpec(epsXstartRoundTrip));
  it('the spec’s p_mean_variance mean from ε is Ho eq. 11  [ddpm.ops.epsMeanEqPosteriorOfPredictedXstart]', () => expectLawOnSpec(epsMeanEqPosteriorOfPredictedXstart));
  it('the spec’s FIXED_LARGE and FIXED_SMALL variances are β and β̃ as the reference code defines them  [ddpm.ops.fixedVariancesAreBetaOrPosterior]', () => expectLawOnSpec(fixedVariancesAreBetaOrPosterior));
});
