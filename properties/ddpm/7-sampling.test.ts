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
import { expectLawOnSpec, schedule, scheduleAndT, vec } from './arbitraries.ts';

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
          expect(step.sample).toBeCloseWithin(r.mean.map((m, i) => m + Math.sqrt(r.variance[i]) * z[i]), override({ rtol: 4 * EPS, atol: 4 * EPS * maxAbs(z) }, 'exp(½ log σ²) vs √σ²'));
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

  it('the spec’s ancestral step (0-based) is mean + exp(½·log σ²)·noise for t ≥ 1  [ddpm.ops.ancestralStepEqMeanPlusNoise]', () => expectLawOnSpec(ancestralStepEqMeanPlusNoise));
  it('the spec’s last ancestral step (t = 0) adds no noise  [ddpm.ops.finalStepAddsNoNoise]', () => expectLawOnSpec(finalStepAddsNoNoise));
  it('the spec’s DDIM step with η = 0 ignores the noise  [ddpm.ops.ddimEtaZeroIgnoresNoise]', () => expectLawOnSpec(ddimEtaZeroIgnoresNoise));
  it('the spec’s DDIM step with η = 1 equals its FIXED_SMALL ancestral step  [ddpm.ops.ddimEtaOneEqAncestral]', () => expectLawOnSpec(ddimEtaOneEqAncestral));
  it('the spec’s reverse DDIM step is undone by its DDIM step (η = 0) for a fixed ε  [ddpm.ops.ddimReverseInvertsDdim]', () => expectLawOnSpec(ddimReverseInvertsDdim));
});



