import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ancestralSample,
  ancestralStep,
  ddimReverseStep,
  ddimSample,
  ddimSigma,
  ddimStep,
  posteriorMeanCoefficients,
  posteriorVariance,
  reverseStep,
  type FixedReverseVariance,
  type Schedule,
} from '../../spec/ddpm/index.ts';
import { override, type Tolerance } from '../../src/numeric/tolerance.ts';
import { ancestralStepEqMeanPlusNoise, ddimEtaOneEqAncestral, ddimEtaZeroIgnoresNoise, ddimReverseInvertsDdim, finalStepAddsNoNoise } from '../../src/conformance/ddpmLaws.ts';
import { expectLawOnSpec, real, schedule, scheduleAndT, vec } from './arbitraries.ts';
import { linearGaussianPosterior } from '../../spec/gaussian/index.ts';

const EPS = Number.EPSILON;
const maxAbs = (...xs: (readonly number[])[]) => Math.max(0, ...xs.flat().map(Math.abs));
const variances: FixedReverseVariance[] = ['beta', 'betaTilde', 'fixedLarge', 'fixedSmall'];

/** Two routes through x̂_0 = x_t/√ᾱ − √((1−ᾱ)/ᾱ)·ε differ by ulps of its terms, amplified by 1/c_0 where inverted. */
function stepTol(s: Schedule, t: number, magnitude: number): Tolerance {
  const amp = (1 + 1 / Math.sqrt(s.alphaBar(t))) * (1 + 1 / Math.sqrt(s.oneMinusAlphaBar(t))) * (1 + 1 / posteriorMeanCoefficients(s, t).x0);
  return override({ rtol: 0, atol: 64 * EPS * amp * (1 + magnitude) }, `two formulas through x̂_0: ulps of their terms, amplification ${amp.toExponential(2)}`);
}

describe('3.7 Sampling: ancestral (Algorithm 2; no noise at t = 1) and DDIM with η (noise passed in)', () => {
  it('the final ancestral step (t = 1) adds no noise: it returns the mean whatever the noise  [ddpm.sampling.finalStepAddsNoNoise]', () =>
    fc.assert(
      fc.property(
        schedule({ minT: 2, maxT: 30 }),
        fc.integer({ min: 1, max: 3 }).chain((D) => fc.tuple(vec(D), vec(D), vec(D), vec(D))),
        fc.constantFrom(...variances),
        (s, [x1, eps, z1, z2], variance) => {
          const a = ancestralStep(s, 1, x1, { kind: 'eps', value: eps }, z1, { variance });
          const b = ancestralStep(s, 1, x1, { kind: 'eps', value: eps }, z2, { variance });
          expect(a.sample).toEqual(b.sample);
          expect(a.sample).toEqual(reverseStep(s, 1, x1, { kind: 'eps', value: eps }, variance).mean);
          // The whole chain: changing the noise entry of t = 1 (the last, in loop order) or leaving it out changes nothing.
          const D = x1.length;
          const model = (t: number, x: readonly number[]) => ({ kind: 'eps' as const, value: x.map((v, i) => 0.3 * v + 0.1 * eps[i] + 0.01 * t) });
          const noise = Array.from({ length: s.T }, (_, i) => Array.from({ length: D }, (_, j) => Math.sin(1 + i * D + j)));
          const r1 = ancestralSample(s, x1, model, noise, { variance });
          const r2 = ancestralSample(s, x1, model, [...noise.slice(0, -1), z2], { variance });
          const r3 = ancestralSample(s, x1, model, noise.slice(0, -1), { variance });
          expect(r1.x0).toEqual(r2.x0);
          expect(r1.x0).toEqual(r3.x0);
        },
      ),
    ));

  it('for t ≥ 2 an ancestral step is the mean plus σ_t·z with σ_t² the chosen variance  [ddpm.sampling.ancestralStepEqMeanPlusNoise]', () =>
    fc.assert(
      fc.property(
        scheduleAndT({ lo: 2 }),
        fc.integer({ min: 1, max: 3 }).chain((D) => fc.tuple(vec(D), vec(D), vec(D))),
        fc.constantFrom(...variances),
        fc.boolean(),
        ({ s, t }, [xt, eps, z], variance, clip) => {
          const r = reverseStep(s, t, xt, { kind: 'eps', value: eps }, variance, { clip });
          const step = ancestralStep(s, t, xt, { kind: 'eps', value: eps }, z, { variance, clip });
          expect(step.mean).toEqual(r.mean);
          // Independent of reverseStep: Ho et al.'s Algorithm 2, line 4, with σ_t² written out from β and ᾱ.
          const tilde = (u: number) => (s.beta(u) * (1 - (u === 1 ? 1 : s.alphaBar(u - 1)))) / (1 - s.alphaBar(u));
          const sigma2 = { beta: s.beta(t), betaTilde: tilde(t), fixedLarge: s.beta(t), fixedSmall: tilde(t) }[variance];
          expect(sigma2).toBeCloseWithin(r.variance[0], override({ rtol: 1e-11, atol: 0 }, '1 − ᾱ by subtraction here, by expm1 in the spec'));
          if (!clip) {
            const alg2 = xt.map((x, i) => (x - (s.beta(t) / Math.sqrt(1 - s.alphaBar(t))) * eps[i]) / Math.sqrt(s.alpha(t)) + Math.sqrt(sigma2) * z[i]);
            expect(step.sample).toBeCloseWithin(alg2, stepTol(s, t, maxAbs(xt, eps, z)));
          }
        },
      ),
    ));

  it('DDIM with η = 0 is deterministic: σ = 0 and the noise is ignored, step by step and over a whole chain  [ddpm.sampling.ddimEtaZeroIgnoresNoise]', () =>
    fc.assert(
      fc.property(scheduleAndT({ minT: 2, maxT: 40 }), fc.integer({ min: 1, max: 3 }).chain((D) => fc.tuple(vec(D), vec(D), vec(D), vec(D))), ({ s, t }, [xt, eps, z1, z2]) => {
        expect(ddimSigma(s, t, t - 1, 0)).toBe(0);
        const p = { kind: 'eps' as const, value: eps };
        expect(ddimStep(s, t, t - 1, xt, p, 0, z1).sample).toEqual(ddimStep(s, t, t - 1, xt, p, 0, z2).sample);
        const model = (tt: number, x: readonly number[]) => ({ kind: 'eps' as const, value: x.map((v) => Math.tanh(v) * 0.5 + 0.01 * tt) });
        const steps = Array.from({ length: s.T }, (_, i) => s.T - i).filter((_, i) => i % 2 === 0); // every other timestep
        const n1 = steps.map((_, i) => xt.map((_, j) => Math.cos(i + j)));
        const n2 = steps.map((_, i) => xt.map((_, j) => Math.sin(3 * i - j)));
        expect(ddimSample(s, xt, model, steps, 0, n1).x0).toEqual(ddimSample(s, xt, model, steps, 0, n2).x0);
      }),
    ));

  it('DDIM with η = 1 is ancestral sampling with σ_t² = β̃_t: the same σ², and the same step for the same ε and noise  [ddpm.sampling.ddimEtaOneEqAncestral]', () =>
    fc.assert(
      fc.property(
        scheduleAndT({ minT: 1 }),
        fc.integer({ min: 1, max: 3 }).chain((D) => fc.tuple(vec(D), vec(D), vec(D))),
        fc.boolean(),
        ({ s, t }, [xt, eps, z], clip) => {
          expect(ddimSigma(s, t, t - 1, 1) ** 2).toBeCloseWithin(posteriorVariance(s, t), override({ rtol: 1e-13, atol: 1e-300 }, 'products and square roots of ᾱ ratios'));
          const p = { kind: 'eps' as const, value: eps };
          const d = ddimStep(s, t, t - 1, xt, p, 1, z, { clip });
          const a = ancestralStep(s, t, xt, p, z, { variance: 'betaTilde', clip });
          expect(d.sample).toBeCloseWithin(a.sample, stepTol(s, t, maxAbs(xt, eps, z)), { what: `t = ${t}, clip ${clip}` });
          expect(d.x0).toEqual(a.x0);
        },
      ),
    ));

  it('with a model whose ε does not change, reverse DDIM t → t′ then DDIM (η = 0) t′ → t returns x_t  [ddpm.sampling.ddimReverseInvertsDdim]', () =>
    fc.assert(
      fc.property(
        schedule({ minT: 2, maxT: 60 }).chain((s) => fc.integer({ min: 1, max: s.T - 1 }).chain((t) => fc.integer({ min: t + 1, max: s.T }).map((t2) => ({ s, t, t2 })))),
        fc.integer({ min: 1, max: 3 }).chain((D) => fc.tuple(vec(D), vec(D))),
        ({ s, t, t2 }, [xt, eps]) => {
          const p = { kind: 'eps' as const, value: eps };
          const up = ddimReverseStep(s, t, t2, xt, p).sample;
          const back = ddimStep(s, t2, t, up, p, 0, eps).sample;
          expect(back).toBeCloseWithin(xt, override({ rtol: 0, atol: 64 * EPS * (1 + 1 / Math.sqrt(s.alphaBar(t2))) * (1 + maxAbs(xt, up, eps)) }, 'x̂_0 at t′ divides by √ᾱ_{t′}'));
        },
      ),
    ));

  it('DDIM, any η ∈ [0, 1] and any stride t′ < t: with x̂_0 = x_0 the update maps q(x_t | x_0) onto q(x_{t′} | x_0) exactly (Song et al., Lemma 1)  [ddpm.sampling.ddimPreservesForwardMarginal]', () =>
    fc.assert(
      fc.property(scheduleAndT({ lo: 2, maxT: 100 }), real(0, 1), real(-1, 1), fc.integer({ min: 0, max: 2 ** 30 }), ({ s, t }, eta, x0, k) => {
        const tPrev = k % t; // 0 … t − 1: every stride, down to x_0
        // The step is affine in (x_t, z) for fixed x̂_0: read its coefficients off, then push x_t ~ N(√ᾱ_t x_0, 1 − ᾱ_t), z ~ N(0, 1) through it.
        const at = (xt: number, z: number) => ddimStep(s, t, tPrev, [xt], { kind: 'x0', value: [x0] }, eta, [z]).sample[0];
        const m = Math.sqrt(s.alphaBar(t)) * x0;
        const base = at(m, 0);
        const kx = at(m + 1, 0) - base;
        const kz = at(m, 1) - base;
        const tol = override({ rtol: 1e-12, atol: 1e-13 }, 'coefficients read off by differences of O(1) values');
        expect(base, 'mean of x_{t′}').toBeCloseWithin(Math.sqrt(s.alphaBar(tPrev)) * x0, tol);
        expect(kx * kx * s.oneMinusAlphaBar(t) + kz * kz, 'variance of x_{t′}').toBeCloseWithin(s.oneMinusAlphaBar(tPrev), tol);
      }),
      { numRuns: 200 },
    ));

  it('DDIM with η = 1 and any stride t′ < t is the forward posterior q(x_{t′} | x_t, x_0) of the strided chain: same mean, σ² its variance  [ddpm.sampling.ddimEtaOneEqStridedPosterior]', () =>
    fc.assert(
      fc.property(scheduleAndT({ lo: 2, maxT: 100 }), real(-1, 1), real(-3, 3), fc.integer({ min: 0, max: 2 ** 30 }), ({ s, t }, x0, xt, k) => {
        const tPrev = 1 + (k % (t - 1)); // 1 … t − 1
        // The strided forward step x_t = a·x_{t′} + √(1 − a²)·ε, a² = ∏_{u=t′+1}^{t} α_u, and the prior q(x_{t′} | x_0):
        // the posterior is the linear-Gaussian one (PRML 2.116), a route that shares nothing with ddimSigma.
        let a2 = 1;
        for (let u = tPrev + 1; u <= t; u++) a2 *= s.alpha(u);
        const prior = { mean: [Math.sqrt(s.alphaBar(tPrev)) * x0], cov: [[s.oneMinusAlphaBar(tPrev)]] };
        const post = linearGaussianPosterior({ prior, A: [[Math.sqrt(a2)]], b: [0], noiseCov: [[1 - a2]] }, [xt]);
        const step = ddimStep(s, t, tPrev, [xt], { kind: 'x0', value: [x0] }, 1, [0]);
        const sigma = ddimSigma(s, t, tPrev, 1);
        const tol = override({ rtol: 1e-9, atol: 1e-12 }, 'the product ∏α and 1 − ∏α by subtraction here, log1p/expm1 in the spec: relative 1e−16/(1 − a²)');
        expect(sigma * sigma, `σ² at t = ${t}, t′ = ${tPrev}`).toBeCloseWithin(post.cov[0][0], tol);
        expect(step.mean[0]).toBeCloseWithin(post.mean[0], tol);
        for (const eta of [0, 0.25, 0.5]) expect(ddimSigma(s, t, tPrev, eta)).toBeCloseWithin(eta * sigma, override({ rtol: 2 * EPS, atol: 0 }, 'σ(η) = η·σ(1)'));
      }),
      { numRuns: 200 },
    ));

  it('the spec’s ancestral step (0-based) is mean + exp(½·log σ²)·noise for t ≥ 1  [ddpm.ops.ancestralStepEqMeanPlusNoise]', () => expectLawOnSpec(ancestralStepEqMeanPlusNoise));
  it('the spec’s last ancestral step (t = 0) adds no noise  [ddpm.ops.finalStepAddsNoNoise]', () => expectLawOnSpec(finalStepAddsNoNoise));
  it('the spec’s DDIM step with η = 0 ignores the noise  [ddpm.ops.ddimEtaZeroIgnoresNoise]', () => expectLawOnSpec(ddimEtaZeroIgnoresNoise));
  it('the spec’s DDIM step with η = 1 equals its FIXED_SMALL ancestral step  [ddpm.ops.ddimEtaOneEqAncestral]', () => expectLawOnSpec(ddimEtaOneEqAncestral));
  it('the spec’s reverse DDIM step is undone by its DDIM step (η = 0) for a fixed ε  [ddpm.ops.ddimReverseInvertsDdim]', () => expectLawOnSpec(ddimReverseInvertsDdim));
});



