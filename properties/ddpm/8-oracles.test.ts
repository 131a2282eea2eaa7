import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ancestralSample,
  ddimSample,
  lSimpleTerm,
  mixtureCdf1d,
  mixtureLogPdf,
  mixtureOracle,
  mixtureSample,
  namedSchedule,
  noisedMixture,
  optimalDenoiser,
  optimalEps,
  optimalScore,
  projectMixture,
  qSample,
  x0FromScore,
  type GaussianMixture,
  type Schedule,
} from '../../spec/ddpm/index.ts';
import { linearGaussianMarginal, type Gaussian } from '../../spec/gaussian/index.ts';
import { identity, scaleMat } from '../../spec/linalg.ts';
import { Rng } from '../../src/numeric/rng.ts';
import { ksTest, mcAgrees } from '../../src/numeric/stats.ts';
import { override } from '../../src/numeric/tolerance.ts';
import { spdMatrix } from '../gaussian/arbitraries.ts';
import { fcSeed } from '../support/seed.ts';
import { real, rngArb, scheduleAndT, vec } from './arbitraries.ts';

const EPS = Number.EPSILON;
const maxAbs = (...xs: (readonly number[])[]) => Math.max(0, ...xs.flat().map(Math.abs));

/**
 * A Gaussian mixture in D dimensions with 1–3 components: means in [−2, 2], covariances of scale 0.05–0.5 with
 * condition number ≤ 10 (separated, moderately sharp modes: the denoiser is far from linear), weights ≥ 0.1.
 */
function mixture(D: number): fc.Arbitrary<GaussianMixture> {
  return fc.integer({ min: 1, max: 3 }).chain((K) =>
    fc
      .record({
        w: fc.array(real(0.1, 1), { minLength: K, maxLength: K }),
        means: fc.array(vec(D, 2), { minLength: K, maxLength: K }),
        covs: fc.array(spdMatrix({ minDim: D, maxDim: D, minLogCond: 0, maxLogCond: 1, logScale: [-1.3, -0.3] }), { minLength: K, maxLength: K }),
      })
      .map(({ w, means, covs }) => {
        const total = w.reduce((a, b) => a + b, 0);
        return { weights: w.map((x) => x / total), components: means.map((mean, k): Gaussian => ({ mean, cov: covs[k].cov })) };
      }),
  );
}

const mixtureAnyD = fc.integer({ min: 1, max: 2 }).chain((D) => mixture(D));

describe('3.8 Exact oracles: Gaussian-mixture data, its noised marginal, the Bayes-optimal denoiser, ε* and the score', () => {
  it('the noised marginal q(x_t) is the mixture of the components pushed through the t forward steps  [ddpm.oracle.noisedMixtureEqComposition]', () =>
    fc.assert(
      fc.property(scheduleAndT({ maxT: 60 }), mixtureAnyD, ({ s, t }, mix) => {
        const D = mix.components[0].mean.length;
        const noised = noisedMixture(s, t, mix);
        mix.components.forEach((c, k) => {
          let g = c;
          for (let u = 1; u <= t; u++) {
            g = linearGaussianMarginal({ prior: g, A: scaleMat(identity(D), Math.sqrt(s.alpha(u))), b: new Array<number>(D).fill(0), noiseCov: scaleMat(identity(D), s.beta(u)) });
          }
          const tol = override({ rtol: 8 * t * EPS + 1e-15, atol: 1e-16 }, 'a few ulps per step of the composition');
          expect(noised.components[k].mean).toBeCloseWithin(g.mean, tol, { what: `mean of component ${k}` });
          expect(noised.components[k].cov.flat()).toBeCloseWithin(g.cov.flat(), tol, { what: `covariance of component ${k}`, shape: [D, D] });
        });
        expect(noised.weights).toEqual(mix.weights);
      }),
      { numRuns: 50 },
    ));

  it('the closed-form score of q(x_t) equals the finite-difference gradient of log q(x_t)  [ddpm.oracle.scoreEqFiniteDifference]', () =>
    fc.assert(
      fc.property(scheduleAndT({ maxT: 60 }), mixtureAnyD, vec(2, 3), ({ s, t }, mix, z) => {
        const D = mix.components[0].mean.length;
        const q = noisedMixture(s, t, mix);
        const x = z.slice(0, D);
        const h = 1e-5;
        const fd = x.map((_, i) => {
          const up = [...x];
          const dn = [...x];
          up[i] += h;
          dn[i] -= h;
          return (mixtureLogPdf(q, up) - mixtureLogPdf(q, dn)) / (2 * h);
        });
        const tol = override({ rtol: 1e-6, atol: 1e-6 * (1 + Math.abs(mixtureLogPdf(q, x))) }, 'central difference, h = 1e−5: truncation h²·f‴/6 and rounding ε·|log q|/h');
        expect(optimalScore(s, t, mix, x)).toBeCloseWithin(fd, tol);
      }),
      { numRuns: 100 },
    ));

  it('Tweedie: the Bayes-optimal denoiser 𝔼[x_0 | x_t] equals (x_t + (1−ᾱ_t)∇log q(x_t))/√ᾱ_t  [ddpm.oracle.tweedie]', () =>
    fc.assert(
      fc.property(scheduleAndT({ maxT: 60 }), mixtureAnyD, vec(2, 3), ({ s, t }, mix, z) => {
        const D = mix.components[0].mean.length;
        const x = z.slice(0, D);
        const viaScore = x0FromScore(s, t, x, optimalScore(s, t, mix, x));
        const tol = override({ rtol: 0, atol: (1e-11 * (1 + maxAbs(x, ...mix.components.map((c) => c.mean)))) / Math.sqrt(s.alphaBar(t)) }, 'precision-form posterior vs score route, divided by √ᾱ_t');
        expect(optimalDenoiser(s, t, mix, x)).toBeCloseWithin(viaScore, tol);
      }),
      { numRuns: 100 },
    ));

  it('the precomputed oracle equals the direct closed forms of the denoiser, ε* and the score  [ddpm.oracle.oracleEqDirect]', () =>
    fc.assert(
      fc.property(scheduleAndT({ maxT: 60 }), mixtureAnyD, vec(2, 3), ({ s, t }, mix, z) => {
        const D = mix.components[0].mean.length;
        const x = z.slice(0, D);
        const o = mixtureOracle(s, mix);
        const amp = 1 / Math.sqrt(s.alphaBar(t)) + 1 / Math.sqrt(s.oneMinusAlphaBar(t));
        const tol = override({ rtol: 1e-10, atol: 1e-11 * amp * (1 + maxAbs(x)) }, 'inverse and gain vs the precision-form posterior; ε* divides by √(1 − ᾱ)');
        expect(o.denoiser(t, x)).toBeCloseWithin(optimalDenoiser(s, t, mix, x), tol, { what: 'denoiser' });
        expect(o.eps(t, x)).toBeCloseWithin(optimalEps(s, t, mix, x), tol, { what: 'ε*' });
        expect(o.score(t, x)).toBeCloseWithin(optimalScore(s, t, mix, x), tol, { what: 'score' });
      }),
      { numRuns: 100 },
    ));

  // False-failure rate: one check at α = 1e−6 per run, 10 runs: 1e−5 (the positivity check has a margin of ≥ 5 se: < 3e−7 per run).
  it('ε* minimises L_simple: for a perturbation δ·g, L_simple grows by δ²·𝔼‖g‖² because 𝔼[(ε* − ε)·g(x_t)] = 0 (Monte Carlo, α = 1e−5)  [ddpm.oracle.optimalEpsMinimisesLSimple]', () =>
    fc.assert(
      fc.property(
        scheduleAndT({ maxT: 60 }),
        mixtureAnyD,
        real(1, 2), // |δ| ≥ 1: the growth δ²𝔼‖g‖² ≥ 0.25δ² is ≥ 5 standard errors of its estimate
        fc.constantFrom(-1, 1),
        fc.tuple(vec(2, 1), real(-0.5, 0.5)),
        rngArb,
        ({ s, t }, mix, delta, sign, [a, b], rng) => {
          const D = mix.components[0].mean.length;
          const o = mixtureOracle(s, mix);
          // g(x) = a + b·x with |a_i| ≥ 0.5 in its first entry, so that 𝔼‖g‖² ≥ 0.25.
          const a0 = a.slice(0, D).map((v, i) => (i === 0 ? Math.sign(v || 1) * (0.5 + 0.5 * Math.abs(v)) : v));
          const g = (x: readonly number[]) => x.map((xi, i) => a0[i] + b * xi);
          const n = 4000;
          const cross: number[] = [];
          const gain: number[] = [];
          const dl = sign * delta;
          for (let k = 0; k < n; k++) {
            const x0 = mixtureSample(mix, rng);
            const eps = Array.from(rng.normals(D));
            const xt = qSample(s, t, x0, eps);
            const star = o.eps(t, xt);
            const gx = g(xt);
            cross.push(star.reduce((acc, e, i) => acc + (e - eps[i]) * gx[i], 0));
            gain.push(lSimpleTerm(eps, star.map((e, i) => e + dl * gx[i])) - lSimpleTerm(eps, star));
          }
          expect(mcAgrees(cross, 0, { alpha: 1e-6, floor: 1e-12 })).toPassMonteCarlo('𝔼[(ε* − ε)·g(x_t)]');
          const meanGain = gain.reduce((p, q) => p + q, 0) / n;
          expect(meanGain, 'L_simple(ε* + δg) − L_simple(ε*) must be > 0').toBeGreaterThan(0);
        },
      ),
      { numRuns: 10 },
    ));

  // The samplers driven by the exact ε*. Data: a 1-D mixture 0.3·N(−1, 0.3²) + 0.7·N(1.2, 0.5²) and a 2-D mixture of
  // three correlated components; chain: the cosine schedule with T = 200 (ᾱ_T ≈ 0, so x_T ~ N(0, I) matches q(x_T)).
  // False-failure rate: each KS test at α = 1e−6 (1-D) or 2.5e−7 per projection (2-D, four projections: 1e−6) if the
  // chain were exact. Its discretisation bias, measured with n = 40 000 samples (KS distance 0.005–0.006, the size of
  // the sampling noise at that n), shifts √n·D by at most 0.005·√1500 ≈ 0.19: P(K > 2.69 − 0.19) ≈ 7e−6 in 1-D and
  // 4·P(K > 2.82 − 0.16) ≈ 6e−6 in 2-D (n = 1000), so about 1.3e−5 per test.
  it('ancestral sampling driven by the optimal ε* reproduces the data distribution (KS in 1-D and on four 2-D projections, α ≈ 1.3e−5)  [ddpm.oracle.ancestralReproducesData]', () => {
    for (const [mix, n] of [[MIX_1D, 1500], [MIX_2D, 1000]] as const) {
      const rng = new Rng((fcSeed() ^ 0x51a7) | 0);
      const xs = sampleWithOracle(mix, n, rng, (s, xT, model) => ancestralSample(s, xT, model, Array.from({ length: s.T - 1 }, () => rng.normals(xT.length)), { variance: 'beta' }).x0);
      expectSameLaw(mix, xs, 'ancestral sampling (σ_t² = β_t)');
    }
  });

  it('DDIM (η = 0) driven by the optimal ε* reproduces the data distribution (KS in 1-D and on four 2-D projections, α ≈ 1.3e−5)  [ddpm.oracle.ddimReproducesData]', () => {
    for (const [mix, n] of [[MIX_1D, 1500], [MIX_2D, 1000]] as const) {
      const rng = new Rng((fcSeed() ^ 0xdd1) | 0);
      const xs = sampleWithOracle(mix, n, rng, (s, xT, model) => ddimSample(s, xT, model, Array.from({ length: s.T }, (_, k) => s.T - k), 0, []).x0);
      expectSameLaw(mix, xs, 'DDIM, η = 0');
    }
  });
});

const MIX_1D: GaussianMixture = { weights: [0.3, 0.7], components: [{ mean: [-1], cov: [[0.09]] }, { mean: [1.2], cov: [[0.25]] }] };
const MIX_2D: GaussianMixture = {
  weights: [0.5, 0.3, 0.2],
  components: [
    { mean: [-1, 0.5], cov: [[0.2, 0.05], [0.05, 0.1]] },
    { mean: [1, 1], cov: [[0.1, 0], [0, 0.3]] },
    { mean: [0.5, -1.2], cov: [[0.15, -0.06], [-0.06, 0.1]] },
  ],
};
const ORACLE_SCHEDULE = namedSchedule({ kind: 'cosine', T: 200 });

type Sampler = (s: Schedule, xT: number[], model: (t: number, x: readonly number[]) => { kind: 'eps'; value: number[] }) => number[];

function sampleWithOracle(mix: GaussianMixture, n: number, rng: Rng, sampler: Sampler): number[][] {
  const s = ORACLE_SCHEDULE;
  const o = mixtureOracle(s, mix);
  const model = (t: number, x: readonly number[]) => ({ kind: 'eps' as const, value: o.eps(t, x) });
  const D = mix.components[0].mean.length;
  return Array.from({ length: n }, () => sampler(s, Array.from(rng.normals(D)), model));
}

/** KS of the samples against the mixture's CDF: in 1-D directly, in 2-D along the axes and the two diagonals. */
function expectSameLaw(mix: GaussianMixture, xs: number[][], what: string): void {
  const D = mix.components[0].mean.length;
  const dirs = D === 1 ? [[1]] : [[1, 0], [0, 1], [Math.SQRT1_2, Math.SQRT1_2], [Math.SQRT1_2, -Math.SQRT1_2]];
  const alpha = 1e-6 / dirs.length;
  for (const u of dirs) {
    const pm = projectMixture(mix, u);
    const r = ksTest(xs.map((x) => x.reduce((a, v, i) => a + v * u[i], 0)), (z) => mixtureCdf1d(pm, z));
    expect(r.pValue, `${what}, ${D}-D data, projection on [${u.map((v) => v.toFixed(3))}]: KS distance ${r.statistic.toFixed(4)}, n = ${xs.length}`).toBeGreaterThan(alpha);
  }
}
