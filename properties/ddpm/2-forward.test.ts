import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import normalCdf from '@stdlib/stats-base-dists-normal-cdf';
import { forwardJoint, forwardMarginal, forwardPathLogDensity, forwardStep, forwardStepSample, makeSchedule, namedSchedule, qSample, type IsoGaussian, type Schedule } from '../../spec/ddpm/index.ts';
import { gaussianLogPdf, linearGaussianMarginal, type Gaussian } from '../../spec/gaussian/index.ts';
import { Rng } from '../../src/numeric/rng.ts';
import { identity, scaleMat } from '../../spec/linalg.ts';
import { ksTest, mcAgrees } from '../../src/numeric/stats.ts';
import { TOL, override } from '../../src/numeric/tolerance.ts';
import { qMeanVarianceEqClosedForm, qSampleEqClosedForm } from '../../src/conformance/ddpmLaws.ts';
import { expectLawOnSpec, logReal, printable, real, rngArb, schedule, scheduleAndT, vec } from './arbitraries.ts';

const EPS = Number.EPSILON;

const asGaussian = (q: IsoGaussian): Gaussian => ({ mean: q.mean, cov: scaleMat(identity(q.mean.length), q.variance) });

/** Compose q(x_1 | x_0), then each single step q(x_t | x_{t−1}) with the linear-Gaussian marginal; compare at every t. */
function checkComposition(s: Schedule, x0: number[]): void {
  const D = x0.length;
  let q = asGaussian(forwardStep(s, 1, x0));
  for (let t = 1; t <= s.T; t++) {
    if (t > 1) {
      const step = forwardStep(s, t, new Array<number>(D).fill(1)); // the step's mean map is diag(mean of the unit vector)
      q = linearGaussianMarginal({ prior: q, A: step.mean.map((a, i) => step.mean.map((_, j) => (i === j ? a : 0))), b: new Array<number>(D).fill(0), noiseCov: scaleMat(identity(D), step.variance) });
    }
    const closed = asGaussian(forwardMarginal(s, t, x0));
    const tol = override({ rtol: 6 * t * EPS + 4 * EPS, atol: 1e-300 }, 'the recursion v ← α·v + β and the running product √α each add a few ulps per step');
    expect(q.mean).toBeCloseWithin(closed.mean, tol, { what: `mean at t = ${t} of ${s.name}` });
    expect(q.cov.flat()).toBeCloseWithin(closed.cov.flat(), tol, { what: `covariance at t = ${t} of ${s.name}`, shape: [D, D] });
  }
}

describe('3.2 The forward process: q(x_t | x_{t−1}) = N(√(1−β_t) x_{t−1}, β_t I) and q(x_t | x_0) = N(√ᾱ_t x_0, (1−ᾱ_t) I)', () => {
  it('composing the t single steps with the linear-Gaussian marginal gives the closed form, for every t  [ddpm.forward.marginalMatchesComposition]', () =>
    fc.assert(
      fc.property(
        schedule({ maxT: 120 }),
        fc.integer({ min: 1, max: 3 }).chain((D) => vec(D)),
        (s, x0) => checkComposition(s, x0),
      ),
      { numRuns: 40 },
    ));

  it('composition equals the closed form at every t of every named schedule at T = 1000 (β_T = 1 of jsd included)  [ddpm.forward.compositionEveryNamedSchedule]', () => {
    for (const spec of [
      { kind: 'linear', T: 1000 },
      { kind: 'quad', T: 1000 },
      { kind: 'const', T: 1000, beta: 0.02 },
      { kind: 'warmup', T: 1000, fraction: 0.1 },
      { kind: 'jsd', T: 1000 },
      { kind: 'cosine', T: 1000 },
      { kind: 'improvedLinear', T: 1000 },
    ] as const) {
      checkComposition(printable(namedSchedule(spec)), [0.7]);
    }
  });

  it('is variance preserving: data with covariance I stays N(√ᾱ_t m, I) at every t  [ddpm.forward.variancePreserving]', () =>
    fc.assert(
      fc.property(scheduleAndT(), fc.integer({ min: 1, max: 4 }).chain((D) => vec(D)), ({ s, t }, m) => {
        const D = m.length;
        const q1 = forwardMarginal(s, t, new Array<number>(D).fill(1)); // x_t = √ᾱ x_0 + noise: the mean map and noise variance
        const pushed = linearGaussianMarginal({
          prior: { mean: m, cov: identity(D) },
          A: scaleMat(identity(D), q1.mean[0]),
          b: new Array<number>(D).fill(0),
          noiseCov: scaleMat(identity(D), q1.variance),
        });
        expect(pushed.cov.flat()).toBeCloseWithin(identity(D).flat(), override({ rtol: 4 * EPS, atol: 4 * EPS }, 'ᾱ + (1 − ᾱ) with 1 − ᾱ from the log-sum: two ulps each'), { shape: [D, D] });
        expect(pushed.mean).toBeCloseWithin(forwardMarginal(s, t, m).mean, TOL.float64);
      }),
    ));

  it('qSample(x_0, ε) is the mean of q(x_t | x_0) plus √(1−ᾱ_t)·ε  [ddpm.forward.qSampleEqClosedForm]', () =>
    fc.assert(
      fc.property(scheduleAndT(), fc.integer({ min: 1, max: 4 }).chain((D) => fc.tuple(vec(D), vec(D))), ({ s, t }, [x0, eps]) => {
        const q = forwardMarginal(s, t, x0);
        expect(qSample(s, t, x0, eps)).toBeCloseWithin(q.mean.map((m, i) => m + Math.sqrt(q.variance) * eps[i]), TOL.float64);
      }),
    ));

  // False-failure rate: per property run 2·D mean/variance checks at α = 1e−6 and D KS tests at α = 1e−6, D = 2: 6e−6;
  // 10 runs: 6e−5.
  it('the reparameterised sample √ᾱ_t x_0 + √(1−ᾱ_t) ε with ε ~ N(0, I) has the law q(x_t | x_0) (Monte Carlo, α = 6e−5)  [ddpm.forward.qSampleEqMonteCarlo]', () =>
    fc.assert(
      fc.property(scheduleAndT(), vec(2, 1), rngArb, ({ s, t }, x0, rng) => {
        const n = 4000;
        const q = forwardMarginal(s, t, x0);
        const xs = Array.from({ length: n }, () => qSample(s, t, x0, rng.normals(2)));
        for (let i = 0; i < 2; i++) {
          const col = xs.map((x) => x[i]);
          const sd = Math.sqrt(q.variance);
          expect(mcAgrees(col, q.mean[i], { alpha: 1e-6, floor: 1e-12 })).toPassMonteCarlo(`mean of dimension ${i} at t = ${t}`);
          expect(mcAgrees(col.map((x) => (x - q.mean[i]) ** 2), q.variance, { alpha: 1e-6, floor: 1e-15 })).toPassMonteCarlo(`variance of dimension ${i} at t = ${t}`);
          expect(ksTest(col, (x) => normalCdf(x, q.mean[i], sd)).pValue, `KS of dimension ${i} against N(√ᾱ x_0, 1 − ᾱ)`).toBeGreaterThan(1e-6);
        }
      }),
      { numRuns: 10 },
    ));

  // False-failure rate: 3 checks at α = 1e−6 per run, 8 runs: 2.4e−5.
  it('running the single steps x_t = √(1−β_t) x_{t−1} + √β_t z reaches the law q(x_T | x_0) (Monte Carlo, α = 2.4e−5)  [ddpm.forward.stepwiseSamplingEqMarginal]', () =>
    fc.assert(
      fc.property(schedule({ maxT: 30 }), real(-1, 1), rngArb, (s, x0, rng) => {
        const n = 3000;
        const xs = Array.from({ length: n }, () => {
          let x = [x0];
          for (let t = 1; t <= s.T; t++) x = forwardStepSample(s, t, x, [rng.normal()]);
          return x[0];
        });
        const q = forwardMarginal(s, s.T, [x0]);
        expect(mcAgrees(xs, q.mean[0], { alpha: 1e-6, floor: 1e-12 })).toPassMonteCarlo('mean of x_T');
        expect(mcAgrees(xs.map((x) => (x - q.mean[0]) ** 2), q.variance, { alpha: 1e-6, floor: 1e-15 })).toPassMonteCarlo('variance of x_T');
        expect(ksTest(xs, (x) => normalCdf(x, q.mean[0], Math.sqrt(q.variance))).pValue).toBeGreaterThan(1e-6);
      }),
      { numRuns: 8 },
    ));

  it('the forward process is a Markov chain: Σ_t log q(x_t | x_{t−1}) is the log-density of the joint Gaussian of x_{1:T} given x_0 (Cov(x_s, x_t) = √(ᾱ_t/ᾱ_s)(1 − ᾱ_s))  [ddpm.forward.markovFactorisationEqJoint]', () =>
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }).chain((T) => fc.array(logReal(1e-2, 0.5), { minLength: T, maxLength: T })),
        fc.integer({ min: 1, max: 2 }),
        fc.integer({ min: 0, max: 2 ** 30 }),
        (betas, D, k) => {
          const s = printable(makeSchedule(betas));
          const rng = new Rng(k);
          const x0 = Array.from(rng.normals(D));
          const path: number[][] = [];
          for (let t = 1, x = x0; t <= s.T; t++) path.push((x = forwardStepSample(s, t, x, rng.normals(D))));
          const factorised = forwardPathLogDensity(s, x0, path);
          const joint = gaussianLogPdf(forwardJoint(s, x0), path.flat());
          expect(factorised).toBeCloseWithin(joint, override({ rtol: 1e-10, atol: 1e-10 }, 'the joint covariance is inverted by Cholesky; κ ≤ ~1e3 for β ≥ 1e−2, T ≤ 6'));
        },
      ),
    ));

  it('the spec’s q_sample (0-based t, NCHW) equals √ᾱ·x₀ + √(1−ᾱ)·ε with its own buffers  [ddpm.ops.qSampleEqClosedForm]', () => expectLawOnSpec(qSampleEqClosedForm));

  it('the spec’s q_mean_variance is (√ᾱ·x₀, 1 − ᾱ, log(1 − ᾱ))  [ddpm.ops.qMeanVarianceEqClosedForm]', () => expectLawOnSpec(qMeanVarianceEqClosedForm));
});
