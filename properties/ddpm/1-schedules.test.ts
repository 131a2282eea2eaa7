import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  constBetas,
  cosineAlphaBarFunction,
  cosineBetas,
  ddimSigma,
  discretizedGaussianLogLikelihood,
  forwardMarginal,
  forwardPosterior,
  gaussianDataReverseChain,
  hoSchedule,
  improvedLinearBetas,
  jsdBetas,
  linearBetas,
  makeSchedule,
  namedSchedule,
  posteriorVariance,
  qSample,
  quadBetas,
  transitionTerm,
  warmupBetas,
  x0FromEps,
} from '../../spec/ddpm/index.ts';
import { TOL, override } from '../../src/numeric/tolerance.ts';
import { buffersConsistentWithBetas } from '../../src/conformance/ddpmLaws.ts';
import { specOps } from '../../src/conformance/impl/spec.ts';
import { expectLawOnSpec, logReal, schedule, userBetas } from './arbitraries.ts';
import { show } from '../support/show.ts';
import { goldenOutputs, improvedBuffers, type GoldenArray } from './upstream.ts';

const EPS = Number.EPSILON;

describe('3.1 Noise schedules: β_t, α_t = 1 − β_t, ᾱ_t = ∏ α_s (paper t ∈ 1…T, ᾱ_0 = 1), SNR = ᾱ/(1 − ᾱ)', () => {
  it('named schedules equal their closed forms  [ddpm.schedule.namedEqClosedForm]', () =>
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), (T) => {
        const frac = (t: number) => (T === 1 ? 0 : (t - 1) / (T - 1));
        const ts = Array.from({ length: T }, (_, i) => i + 1);
        const tol = override({ rtol: 4 * EPS, atol: 0 }, 'a handful of roundings (NumPy linspace order vs the textbook formula)');
        expect(linearBetas(T)).toBeCloseWithin(ts.map((t) => 1e-4 + frac(t) * (0.02 - 1e-4)), tol, { what: 'linear' });
        expect(quadBetas(T)).toBeCloseWithin(ts.map((t) => (Math.sqrt(1e-4) + frac(t) * (Math.sqrt(0.02) - Math.sqrt(1e-4))) ** 2), scaledTol(tol, 3), { what: 'quad' });
        expect(constBetas(T, 0.02)).toBeCloseWithin(ts.map(() => 0.02), TOL.exact, { what: 'const' });
        expect(jsdBetas(T)).toBeCloseWithin(ts.map((t) => 1 / (T - t + 1)), tol, { what: 'jsd' });
        const warm = Math.floor(T * 0.1);
        expect(warmupBetas(T, 1e-4, 0.02, 0.1)).toBeCloseWithin(
          ts.map((t) => (t <= warm ? 1e-4 + (warm === 1 ? 0 : (t - 1) / (warm - 1)) * (0.02 - 1e-4) : 0.02)),
          tol,
          { what: 'warmup10' },
        );
        expect(improvedLinearBetas(T)).toBeCloseWithin(ts.map((t) => (1000 / T) * (1e-4 + frac(t) * (0.02 - 1e-4))), scaledTol(tol, 2), { what: 'improved linear' });
        // cosine: checked against the upstream code's numbers in [ddpm.schedule.namedEqUpstreamGolden], not against its own formula.
      }),
      { numRuns: 30 },
    ));

  it('every named schedule equals the upstream code’s own float64 arrays (Ho’s get_beta_schedule; improved-diffusion’s linear and cosine with their ᾱ)  [ddpm.schedule.namedEqUpstreamGolden]', () => {
    // Independent oracle: numbers produced by the authors' code (golden/upstream, producer and commit in each
    // file's meta), not by a restatement of the formulas. β: a few roundings apart (linspace order, cos of a
    // rounded argument); ᾱ: NumPy's cumprod against the spec's log-sum, t roundings each.
    const ho = goldenOutputs('ho_beta_schedules_and_buffers.json').get_beta_schedule as Record<string, GoldenArray>;
    const named: Record<string, (T: number) => number[]> = {
      quad: (T) => quadBetas(T),
      linear: (T) => linearBetas(T),
      warmup10: (T) => warmupBetas(T, 1e-4, 0.02, 0.1),
      warmup50: (T) => warmupBetas(T, 1e-4, 0.02, 0.5),
      const: (T) => constBetas(T, 0.02),
      jsd: (T) => jsdBetas(T),
    };
    const betaTol = override({ rtol: 64 * EPS, atol: 0 }, 'the same formula in a different evaluation order: a few roundings');
    for (const [key, g] of Object.entries(ho)) {
      const [, kind, T] = /^(\w+?)_T(\d+)$/.exec(key) ?? [];
      expect(named[kind], `golden key ${key}`).toBeDefined();
      expect(named[kind](Number(T))).toBeCloseWithin(g.data, betaTol, { what: `Ho ${key}` });
    }
    const improved = { linear_T100: (T: number) => improvedLinearBetas(T), linear_T1000: (T: number) => improvedLinearBetas(T), cosine_T20: (T: number) => cosineBetas(T), cosine_T1000: (T: number) => cosineBetas(T) };
    for (const [key, make] of Object.entries(improved)) {
      const out = improvedBuffers(key as 'linear_T100');
      const T = Number(key.split('_T')[1]);
      const s = makeSchedule(make(T));
      expect([...s.betas]).toBeCloseWithin(out.betas.data, override({ rtol: 8 * EPS, atol: 8 * EPS }, 'β = 1 − f(t)/f(t − 1): the ratio near 1 is rounded, an absolute error of a few ulps of 1'), { what: `improved ${key} β` });
      const abar = Array.from({ length: T }, (_, i) => s.alphaBar(i + 1));
      expect(abar).toBeCloseWithin(out.alphas_cumprod.data, override({ rtol: 4 * T * EPS, atol: 0 }, 'NumPy cumprod vs a sum of log1p: t roundings each'), { what: `improved ${key} ᾱ` });
    }
    show('ᾱ_T (Ho linear, T = 1000)', hoSchedule().alphaBar(1000));
    show('ᾱ_T (cosine, T = 1000)', makeSchedule(cosineBetas(1000)).alphaBar(1000));
  });

  it('user arrays with 0 < β ≤ 1 are accepted; β_T = 1 is flagged, with ᾱ_T = 0 and x̂₀ at T refused  [ddpm.schedule.userArrayValidated]', () => {
    fc.assert(
      fc.property(userBetas(), fc.boolean(), (b, lastOne) => {
        const betas = lastOne ? [...b, 1] : b;
        const s = makeSchedule(betas);
        expect(s.T).toBe(betas.length);
        expect([...s.betas]).toEqual(betas);
        expect(s.lastBetaIsOne).toBe(lastOne);
        if (lastOne) {
          expect(s.alphaBar(s.T)).toBe(0);
          expect(s.snr(s.T)).toBe(0);
          expect(s.oneMinusAlphaBar(s.T)).toBe(1);
          expect(() => x0FromEps(s, s.T, [0.5], [0.1])).toThrow(/x0FromEps: ᾱ_t = 0 at t = \d+ \(the schedule's last β is 1\)/);
        }
      }),
    );
    // Rejected: each message names the entry and the valid range.
    const bad: [number[], RegExp][] = [
      [[0.1, 0], /betas\[1\] must be > 0 \(valid range 0 < β ≤ 1\), got 0/],
      [[-0.1], /betas\[0\] must be > 0 \(valid range 0 < β ≤ 1\), got -0.1/],
      [[0.1, 0.2, 1.5], /betas\[2\] must be ≤ 1 \(valid range 0 < β ≤ 1\), got 1.5/],
      [[0.1, Number.NaN], /betas\[1\] must be a finite number with 0 < β ≤ 1, got NaN/],
      [[Number.POSITIVE_INFINITY], /betas\[0\] must be a finite number with 0 < β ≤ 1, got Infinity/],
      [[], /betas must have at least one entry \(T ≥ 1\)/],
      [[0.1, 1, 0.2], /betas\[1\] is 1 before the last step \(t = 2 < T = 3\); β = 1 is allowed only at t = T/],
    ];
    for (const [b, re] of bad) expect(() => makeSchedule(b), JSON.stringify(b)).toThrow(re);
    expect(() => namedSchedule({ kind: 'improvedLinear', T: 8 })).toThrow(/makeSchedule\(improvedLinear\(T=8\)\): betas\[3\] must be ≤ 1 \(valid range 0 < β ≤ 1\), got 1.07857/);
    expect(() => linearBetas(0)).toThrow(/linearBetas: T must be an integer in 1…1000000, got 0/);
    expect(() => linearBetas(10, 0)).toThrow(/linearBetas: betaStart must be a finite number with 0 < betaStart ≤ 1, got 0/);
    fc.assert(
      fc.property(userBetas({ minT: 2 }), fc.nat(), fc.constantFrom(0, -1e-3, 1.0001, Number.NaN, Number.NEGATIVE_INFINITY), (b, k, v) => {
        const i = k % (b.length - 1); // not the last entry, where β = 1 would be allowed
        const broken = b.map((x, j) => (j === i ? v : x));
        expect(() => makeSchedule(broken)).toThrow(new RegExp(`betas\\[${i}\\] .*(0 < β ≤ 1)`));
      }),
    );
  });

  it('ᾱ_0 = 1 and ᾱ_t = ᾱ_{t−1}(1 − β_t) decreases strictly within (0, 1] (to 0 at T when β_T = 1)  [ddpm.schedule.alphaBarDecreasing]', () =>
    fc.assert(
      fc.property(fc.oneof(schedule(), userBetas({ lastOne: true }).map((b) => makeSchedule(b))), (s) => {
        expect(s.alphaBar(0)).toBe(1);
        for (let t = 1; t <= s.T; t++) {
          expect(s.alphaBar(t)).toBe(s.alphaBar(t - 1) * (1 - s.beta(t)));
          expect(s.alpha(t)).toBe(1 - s.beta(t));
          expect(s.alphaBar(t)).toBeLessThan(s.alphaBar(t - 1));
          if (t < s.T || !s.lastBetaIsOne) expect(s.alphaBar(t)).toBeGreaterThan(0);
        }
      }),
    ));

  it('SNR(t) = ᾱ_t/(1 − ᾱ_t) decreases strictly from SNR(0) = ∞, and log SNR is its logarithm  [ddpm.schedule.snrDecreasing]', () =>
    fc.assert(
      fc.property(schedule(), (s) => {
        expect(s.snr(0)).toBe(Number.POSITIVE_INFINITY);
        for (let t = 1; t <= s.T; t++) {
          expect(s.snr(t)).toBeLessThan(s.snr(t - 1));
          expect(s.logSnr(t)).toBeCloseWithin(Math.log(s.snr(t)), override({ rtol: 1e-13, atol: 1e-13 }, 'log of a quotient vs difference of logs: a few ulps of the logarithms'));
        }
      }),
    ));

  it('1 − ᾱ_t by −expm1(Σ log1p(−β)) equals 1 − ᾱ_t where that is safe, and keeps β_1 to full precision at t = 1  [ddpm.schedule.oneMinusAlphaBarStable]', () => {
    fc.assert(
      fc.property(schedule(), (s) => {
        for (let t = 1; t <= s.T; t++) {
          const textbook = 1 - s.alphaBar(t);
          if (textbook < 1e-3) continue; // the subtraction loses log10(1/(1 − ᾱ)) digits: compare only where it keeps 12
          const rtol = (2 * EPS) / textbook + 8 * t * EPS;
          expect(s.oneMinusAlphaBar(t)).toBeCloseWithin(textbook, override({ rtol, atol: 0 }, '1 − ᾱ by subtraction (relative error 2ε/(1 − ᾱ)) and t rounded log1p terms'));
        }
      }),
    );
    fc.assert(
      fc.property(logReal(1e-12, 0.5), (b) => {
        // At t = 1, 1 − ᾱ_1 = β_1 exactly; the textbook 1 − (1 − β_1) has relative error up to ε/β_1 (1e−4 at β = 1e−12).
        expect(makeSchedule([b]).oneMinusAlphaBar(1)).toBeCloseWithin(b, override({ rtol: 3 * EPS, atol: 0 }, 'log1p and expm1 are each accurate to about one ulp'));
      }),
    );
  });

  it('the cosine schedule’s ᾱ_t telescopes to f(t/T)/f(0) wherever the clip at β_max is inactive; its last β is clipped  [ddpm.schedule.cosineTelescopes]', () =>
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.constantFrom(0.999, 0.99, 1), (T, maxBeta) => {
        const s = makeSchedule(cosineBetas(T, 0.008, maxBeta));
        const f = cosineAlphaBarFunction(0.008);
        for (let t = 1; t <= T; t++) {
          if (s.beta(t) >= maxBeta) break; // clip active from here on
          expect(s.alphaBar(t)).toBeCloseWithin(
            f(t / T) / f(0),
            override({ rtol: 8 * t * EPS + 1e-15, atol: 1e-300 }, 'each of the t factors 1 − β = f(t)/f(t−1) carries a few ulps'),
            { what: `ᾱ_${t} of cosine(T=${T})` },
          );
        }
        expect(s.beta(T)).toBe(maxBeta); // f(1) ≈ 4e−33: 1 − f(1)/f(1 − 1/T) rounds to 1, always clipped
        expect(s.lastBetaIsOne).toBe(maxBeta === 1);
      }),
      { numRuns: 40 },
    ));

  it('rejects a timestep outside its range, naming the function, t and the range  [ddpm.input.badTimestepRejected]', () =>
    fc.assert(
      fc.property(schedule({ maxT: 50 }), fc.constantFrom(-1, 0.5, Number.NaN, Number.POSITIVE_INFINITY, 'T+1', 0), (s, bad) => {
        const t = bad === 'T+1' ? s.T + 1 : (bad as number);
        const range1 = new RegExp(`t must be an integer in 1…${s.T} \\(paper timesteps, 1-based\\), got ${String(t)}`);
        expect(() => s.beta(t)).toThrow(range1);
        expect(() => forwardMarginal(s, t, [0.1])).toThrow(new RegExp(`forwardMarginal: ${range1.source}`));
        expect(() => forwardPosterior(s, t, [0.1], [0.2])).toThrow(new RegExp(`forwardPosterior: ${range1.source}`));
        expect(() => posteriorVariance(s, t)).toThrow(range1);
        expect(() => qSample(s, t, [0.1], [0.2])).toThrow(range1);
        if (t !== 0) expect(() => s.alphaBar(t)).toThrow(new RegExp(`t must be an integer in 0…${s.T}`));
        else expect(s.alphaBar(0)).toBe(1);
      }),
      { numRuns: 40 },
    ));

  it('rejects vectors of different lengths or with non-finite entries, naming both arguments and their shapes  [ddpm.input.shapeMismatchRejected]', () => {
    const s = hoSchedule();
    expect(() => qSample(s, 10, [1, 2, 3], [1, 2, 3, 4])).toThrow('qSample: x0 and eps must have the same length, got [3] and [4]');
    expect(() => forwardPosterior(s, 10, [1, 2], [1])).toThrow('forwardPosterior: x0 and xt must have the same length, got [2] and [1]');
    expect(() => x0FromEps(s, 10, [1, 2], [1, 2, 3])).toThrow('x0FromEps: xt and eps must have the same length, got [2] and [3]');
    expect(() => qSample(s, 10, [1, Number.NaN], [1, 2])).toThrow('qSample: x0[1] must be a finite number, got NaN');
    expect(() => qSample(s, 10, [], [])).toThrow('qSample: x0 must have at least one element, got an empty array');
  });

  it('rejects scalars outside their range, naming the argument and the range  [ddpm.input.badScalarRejected]', () => {
    const s = hoSchedule();
    expect(() => ddimSigma(s, 10, 9, -0.5)).toThrow('ddimSigma: eta must be a finite number in [0, ∞), got -0.5');
    expect(() => ddimSigma(s, 10, 9, Number.NaN)).toThrow('ddimSigma: eta must be a finite number in [0, ∞), got NaN');
    expect(() => ddimSigma(s, 10, 10, 1)).toThrow('ddimSigma: tPrev must be an integer in 0…9');
    expect(() => discretizedGaussianLogLikelihood(1.5, 0, 0)).toThrow('discretizedGaussianLogLikelihood: x must be a finite number in [-1, 1], got 1.5');
    expect(() => transitionTerm(s, 10, [0], [0], [0], 0)).toThrow('transitionTerm: pVariance must be a finite number in (0, ∞), got 0');
    expect(() => transitionTerm(s, 1, [0], [0], [0], 1)).toThrow(/transitionTerm: t must be an integer in 2…T; at t = 1 the bound has the decoder term/);
    expect(() => gaussianDataReverseChain(s, [0], -1)).toThrow('gaussianDataReverseChain: v must be a finite number in (0, ∞), got -1');
  });

  it('the spec’s operations (0-based t, NCHW) reject a t outside 0…T−1, a bad β and mismatched shapes, naming the argument and the range  [ddpm.ops.badInputRejected]', async () => {
    const betas = { shape: [1000], data: Float64Array.from(linearBetas(1000)) };
    const x = { shape: [2, 1, 2, 2], data: new Float64Array(8).fill(0.5) };
    const t = (v: number[]) => ({ shape: [v.length], data: Float64Array.from(v) });
    await expect(specOps.q_sample!({ betas }, x, t([3, 1000]), x)).rejects.toThrow('q_sample: t[1] must be an integer in 0…T−1 = 0…999 (0-based, as the reference code), got 1000');
    await expect(specOps.q_sample!({ betas }, x, t([-1, 0]), x)).rejects.toThrow(/t\[0\] must be an integer in 0…T−1 = 0…999/);
    await expect(specOps.q_sample!({ betas }, x, t([0]), x)).rejects.toThrow('q_sample: t must have shape [2] (one timestep per example), got [1]');
    await expect(specOps.q_sample!({ betas }, x, t([0, 1]), { shape: [2, 1, 4], data: new Float64Array(8) })).rejects.toThrow('q_sample: x_start and noise must have the same shape, got [2,1,2,2] and [2,1,4]');
    await expect(specOps.buffers!({ betas: { shape: [3], data: Float64Array.from([0.1, 1.5, 0.2]) } })).rejects.toThrow(/buffers: makeSchedule\(betas\): betas\[1\] must be ≤ 1 \(valid range 0 < β ≤ 1\), got 1.5/);
    await expect(specOps.schedule!({ family: 'ho', name: 'cubic', T: 10 })).rejects.toThrow(/unknown ho schedule "cubic"/);
  });

  it('the spec’s buffers (0-based, as the reference code) are consistent with β  [ddpm.ops.buffersConsistentWithBetas]', () => expectLawOnSpec(buffersConsistentWithBetas));
});

function scaledTol(t: { rtol: number; atol: number; reason?: string }, k: number) {
  return override({ rtol: t.rtol * k, atol: t.atol * k }, `${t.reason ?? ''} (×${k}: more operations)`);
}
