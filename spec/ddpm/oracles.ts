/**
 * # 3.8 Exact oracles
 *
 * Two families of data for which everything a diffusion model learns has a closed form, so that the laws of
 * the previous sections can be checked exactly rather than approximately.
 *
 * **Gaussian-mixture data.** If x_0 ~ Σ_k w_k N(m_k, Σ_k), then q(x_t) = Σ_k w_k N(√ᾱ_t m_k, ᾱ_t Σ_k + (1−ᾱ_t) I)
 * is again a mixture, and the Bayes-optimal denoiser, the optimal ε-predictor and the score are
 *
 * $$\mathbb E[x_0\mid x_t] = \sum_k r_k(x_t)\Big(m_k + \sqrt{\bar\alpha_t}\,\Sigma_k C_k^{-1}(x_t - \sqrt{\bar\alpha_t}m_k)\Big),\qquad
 *   C_k = \bar\alpha_t\Sigma_k + (1-\bar\alpha_t)I$$
 *
 * $$\varepsilon^*(x_t) = \frac{x_t - \sqrt{\bar\alpha_t}\,\mathbb E[x_0\mid x_t]}{\sqrt{1-\bar\alpha_t}},\qquad
 *   \nabla\log q(x_t) = -\sum_k r_k(x_t)\,C_k^{-1}(x_t-\sqrt{\bar\alpha_t}m_k)$$
 *
 * with responsibilities r_k(x_t) ∝ w_k N(x_t; √ᾱ_t m_k, C_k).
 *
 * **A linear-Gaussian reverse chain.** If every reverse step is p_θ(x_{t−1} | x_t) = N(A_t x_t + b_t, σ_t² I)
 * (and p(x_T) = N(0, I)), then p_θ(x_0) is Gaussian and log p_θ(x_0) is exact; and every term of the bound
 * has an exact expectation over q, so that "bound ≥ −log p_θ(x_0)" can be checked without Monte Carlo error.
 * For Gaussian data N(m, vI) the true reverse process q(x_{t−1} | x_t) is such a chain.
 *
 * @module
 */
import { z } from 'zod';
import type { Rng } from '../../src/numeric/rng.ts';
import { Gaussian, gaussianLogPdf, gaussianSample } from '../gaussian/gaussian.ts';
import { affineGaussian, gaussianConditional, linearGaussianMarginal, linearGaussianPosterior } from '../gaussian/closedForms.ts';
import { klGaussian } from '../gaussian/kl.ts';
import { forwardJoint } from './forward.ts';
import { klDiagGaussian } from '../gaussian/kl.ts';
import { normalCdf } from '../gaussian/normal1d.ts';
import { identity, inverseSpd, logDetSpd, matMul, scaleMat } from '../linalg.ts';
import type { Schedule } from './schedule.ts';
import { epsFromX0 } from './parameterisation.ts';
import { posteriorMeanCoefficients, posteriorVariance } from './posterior.ts';
import { priorTerm, type BoundTerms, type ReverseModel } from './bound.ts';
import { checkSameLength, checkScalar, checkTimestep, checkVector, type Vec } from './internal.ts';

const LOG_2PI = Math.log(2 * Math.PI);

/**
 * A Gaussian mixture Σ_k w_k N(m_k, Σ_k) on R^D: positive weights summing to 1 (within 1e−9), at least one
 * component, all of the same dimension.
 *
 * @see property `ddpm.oracle.noisedMixtureEqComposition`
 */
export const GaussianMixture = z
  .object({
    weights: z.array(z.number().positive()).min(1),
    components: z.array(Gaussian).min(1),
  })
  .superRefine((m, ctx) => {
    if (m.weights.length !== m.components.length) {
      ctx.addIssue({ code: 'custom', path: ['weights'], message: `must have one entry per component (${m.components.length}), got ${m.weights.length}` });
    }
    const sum = m.weights.reduce((a, b) => a + b, 0);
    if (!(Math.abs(sum - 1) <= 1e-9)) ctx.addIssue({ code: 'custom', path: ['weights'], message: `must sum to 1, got ${sum}` });
    const D = m.components[0].mean.length;
    m.components.forEach((c, k) => {
      if (c.mean.length !== D) ctx.addIssue({ code: 'custom', path: ['components', k], message: `must have dimension ${D} like component 0, got ${c.mean.length}` });
    });
  });
/** @see property `ddpm.oracle.noisedMixtureEqComposition` */
export type GaussianMixture = z.infer<typeof GaussianMixture>;

function parseMixture(fn: string, mix: GaussianMixture): GaussianMixture {
  const r = GaussianMixture.safeParse(mix);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new RangeError(`${fn}: mix${i.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('')}: ${i.message}`);
  }
  return r.data;
}

function logSumExp(xs: readonly number[]): number {
  const m = Math.max(...xs);
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (const x of xs) s += Math.exp(x - m);
  return m + Math.log(s);
}

/**
 * Log-density of a Gaussian mixture, in nats.
 *
 * $$\log q(x) = \log\sum_k w_k\,\mathcal N(x; m_k, \Sigma_k)$$
 *
 * @see property `ddpm.oracle.scoreEqFiniteDifference`
 */
export function mixtureLogPdf(mix: GaussianMixture, x: Vec): number {
  const m = parseMixture('mixtureLogPdf', mix);
  checkVector('mixtureLogPdf', 'x', x);
  return logSumExp(m.components.map((c, k) => Math.log(m.weights[k]) + gaussianLogPdf(c, Array.from(x))));
}

/**
 * One draw from a Gaussian mixture: a component k with probability w_k (one uniform from `rng`), then
 * N(m_k, Σ_k) (D normals from `rng`).
 *
 * $$k\sim\operatorname{Cat}(w),\quad x\sim\mathcal N(m_k,\Sigma_k)$$
 *
 * @see property `ddpm.oracle.ancestralReproducesData`
 */
export function mixtureSample(mix: GaussianMixture, rng: Rng): number[] {
  const m = parseMixture('mixtureSample', mix);
  const u = rng.uniform();
  let k = 0;
  let acc = m.weights[0];
  while (u >= acc && k < m.weights.length - 1) acc += m.weights[++k];
  return gaussianSample(m.components[k], rng);
}

/**
 * The CDF of a one-dimensional Gaussian mixture.
 *
 * $$F(x) = \sum_k w_k\,\Phi\Big(\frac{x-m_k}{\sigma_k}\Big)$$
 *
 * @see property `ddpm.oracle.ancestralReproducesData`
 */
export function mixtureCdf1d(mix: GaussianMixture, x: number): number {
  const m = parseMixture('mixtureCdf1d', mix);
  if (m.components[0].mean.length !== 1) throw new RangeError(`mixtureCdf1d: mix must be one-dimensional, got dimension ${m.components[0].mean.length}`);
  let s = 0;
  m.components.forEach((c, k) => (s += m.weights[k] * normalCdf(x, c.mean[0], Math.sqrt(c.cov[0][0]))));
  return s;
}

/**
 * The law of the projection uᵀx of mixture data onto a direction u: a one-dimensional mixture with the same
 * weights and components N(uᵀm_k, uᵀΣ_k u).
 *
 * $$u^\top x \sim \sum_k w_k\,\mathcal N(u^\top m_k,\ u^\top\Sigma_k u)$$
 *
 * @see property `ddpm.oracle.ancestralReproducesData`
 */
export function projectMixture(mix: GaussianMixture, u: Vec): GaussianMixture {
  const m = parseMixture('projectMixture', mix);
  checkSameLength('projectMixture', { 'mix.components[0].mean': m.components[0].mean, u });
  return { weights: [...m.weights], components: m.components.map((c) => affineGaussian(c, [Array.from(u)], [0])) };
}

/**
 * The noised marginal q(x_t) of mixture data: each component pushed through q(x_t | x_0) with the
 * linear-Gaussian marginal.
 *
 * $$q(x_t) = \sum_k w_k\,\mathcal N\big(\sqrt{\bar\alpha_t}m_k,\ \bar\alpha_t\Sigma_k + (1-\bar\alpha_t)I\big)$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @see property `ddpm.oracle.noisedMixtureEqComposition`
 */
export function noisedMixture(s: Schedule, t: number, mix: GaussianMixture): GaussianMixture {
  const m = parseMixture('noisedMixture', mix);
  checkTimestep('noisedMixture', t, 1, s.T);
  const D = m.components[0].mean.length;
  const A = scaleMat(identity(D), Math.sqrt(s.alphaBar(t)));
  const noiseCov = scaleMat(identity(D), s.oneMinusAlphaBar(t));
  const b = new Array<number>(D).fill(0);
  return { weights: [...m.weights], components: m.components.map((prior) => linearGaussianMarginal({ prior, A, b, noiseCov })) };
}

/**
 * The score of a Gaussian mixture, ∇_x log q(x).
 *
 * $$\nabla\log q(x) = -\sum_k r_k(x)\,\Sigma_k^{-1}(x - m_k),\qquad r_k(x) = \frac{w_k\mathcal N(x;m_k,\Sigma_k)}{q(x)}$$
 *
 * @see property `ddpm.oracle.scoreEqFiniteDifference`
 */
export function mixtureScore(mix: GaussianMixture, x: Vec): number[] {
  const m = parseMixture('mixtureScore', mix);
  checkSameLength('mixtureScore', { x, 'mix.components[0].mean': m.components[0].mean });
  const xs = Array.from(x);
  const logr = m.components.map((c, k) => Math.log(m.weights[k]) + gaussianLogPdf(c, xs));
  const lse = logSumExp(logr);
  const out = new Array<number>(xs.length).fill(0);
  m.components.forEach((c, k) => {
    const r = Math.exp(logr[k] - lse);
    const P = inverseSpd(c.cov);
    for (let i = 0; i < xs.length; i++) {
      let g = 0;
      for (let j = 0; j < xs.length; j++) g -= P[i][j] * (xs[j] - c.mean[j]);
      out[i] += r * g;
    }
  });
  return out;
}

/**
 * The Bayes-optimal denoiser 𝔼[x_0 | x_t] for mixture data: the responsibility-weighted posterior means of the
 * components, each the linear-Gaussian posterior of x_0 given x_t.
 *
 * $$\mathbb E[x_0\mid x_t] = \sum_k r_k(x_t)\,\mathbb E_k[x_0\mid x_t]$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @see property `ddpm.oracle.tweedie`
 * @see property `ddpm.oracle.oracleEqDirect`
 */
export function optimalDenoiser(s: Schedule, t: number, mix: GaussianMixture, xt: Vec): number[] {
  const m = parseMixture('optimalDenoiser', mix);
  checkTimestep('optimalDenoiser', t, 1, s.T);
  const D = m.components[0].mean.length;
  checkSameLength('optimalDenoiser', { xt, 'mix.components[0].mean': m.components[0].mean });
  const noised = noisedMixture(s, t, m);
  const xs = Array.from(xt);
  const logr = noised.components.map((c, k) => Math.log(m.weights[k]) + gaussianLogPdf(c, xs));
  const lse = logSumExp(logr);
  const A = scaleMat(identity(D), Math.sqrt(s.alphaBar(t)));
  const noiseCov = scaleMat(identity(D), s.oneMinusAlphaBar(t));
  const b = new Array<number>(D).fill(0);
  const out = new Array<number>(D).fill(0);
  m.components.forEach((prior, k) => {
    const post = linearGaussianPosterior({ prior, A, b, noiseCov }, xs);
    const r = Math.exp(logr[k] - lse);
    for (let i = 0; i < D; i++) out[i] += r * post.mean[i];
  });
  return out;
}

/**
 * The optimal noise predictor for mixture data, ε*(x_t) = 𝔼[ε | x_t]: the minimiser of L_simple at t.
 *
 * $$\varepsilon^*(x_t) = \frac{x_t - \sqrt{\bar\alpha_t}\,\mathbb E[x_0\mid x_t]}{\sqrt{1-\bar\alpha_t}}$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @see property `ddpm.oracle.optimalEpsMinimisesLSimple`
 */
export function optimalEps(s: Schedule, t: number, mix: GaussianMixture, xt: Vec): number[] {
  return epsFromX0(s, t, xt, optimalDenoiser(s, t, mix, xt));
}

/**
 * The score of the noised marginal, ∇log q(x_t), for mixture data.
 *
 * $$\nabla\log q(x_t) = -\sum_k r_k(x_t)\,C_k^{-1}(x_t - \sqrt{\bar\alpha_t}m_k)$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @see property `ddpm.oracle.scoreEqFiniteDifference`
 * @see property `ddpm.oracle.tweedie`
 */
export function optimalScore(s: Schedule, t: number, mix: GaussianMixture, xt: Vec): number[] {
  return mixtureScore(noisedMixture(s, t, parseMixture('optimalScore', mix)), xt);
}

/**
 * The three oracles of a mixture with everything that depends only on t precomputed (the noised components'
 * precisions and log-determinants, and the gains √ᾱ_t Σ_k C_k⁻¹), for use inside sampling loops. Same values as
 * {@link optimalDenoiser}, {@link optimalEps} and {@link optimalScore}.
 *
 * @see property `ddpm.oracle.oracleEqDirect`
 */
export interface MixtureOracle {
  denoiser(t: number, xt: Vec): number[];
  eps(t: number, xt: Vec): number[];
  score(t: number, xt: Vec): number[];
}

/**
 * Build a {@link MixtureOracle} for a schedule and mixture data.
 *
 * $$\mathbb E_k[x_0\mid x_t] = m_k + G_k(x_t - \sqrt{\bar\alpha_t}m_k),\qquad G_k = \sqrt{\bar\alpha_t}\,\Sigma_k C_k^{-1}$$
 *
 * @see property `ddpm.oracle.oracleEqDirect`
 */
export function mixtureOracle(s: Schedule, mix: GaussianMixture): MixtureOracle {
  const m = parseMixture('mixtureOracle', mix);
  const D = m.components[0].mean.length;
  const K = m.weights.length;
  type AtT = { mu: number[][]; P: number[][][]; G: number[][][]; logc: number[]; sab: number; s1: number };
  const cache = new Map<number, AtT>();
  const at = (fn: string, t: number, xt: Vec): AtT => {
    checkTimestep(`mixtureOracle.${fn}`, t, 1, s.T);
    checkSameLength(`mixtureOracle.${fn}`, { xt, 'mix.components[0].mean': m.components[0].mean });
    let c = cache.get(t);
    if (c === undefined) {
      const ab = s.alphaBar(t);
      const sab = Math.sqrt(ab);
      const one = s.oneMinusAlphaBar(t);
      const mu: number[][] = [];
      const P: number[][][] = [];
      const G: number[][][] = [];
      const logc: number[] = [];
      for (let k = 0; k < K; k++) {
        const S = m.components[k].cov;
        const C = S.map((row, i) => row.map((v, j) => ab * v + (i === j ? one : 0)));
        const Pk = inverseSpd(C);
        mu.push(m.components[k].mean.map((v) => sab * v));
        P.push(Pk);
        G.push(scaleMat(matMul(S, Pk), sab));
        logc.push(Math.log(m.weights[k]) - 0.5 * (D * LOG_2PI + logDetSpd(C)));
      }
      c = { mu, P, G, logc, sab, s1: Math.sqrt(one) };
      cache.set(t, c);
    }
    return c;
  };
  const resp = (c: AtT, xt: Vec): { r: number[]; dev: number[][]; Pdev: number[][] } => {
    const dev: number[][] = [];
    const Pdev: number[][] = [];
    const lr: number[] = [];
    for (let k = 0; k < K; k++) {
      const d = new Array<number>(D);
      for (let i = 0; i < D; i++) d[i] = xt[i] - c.mu[k][i];
      const pd = new Array<number>(D).fill(0);
      let q = 0;
      for (let i = 0; i < D; i++) {
        let v = 0;
        for (let j = 0; j < D; j++) v += c.P[k][i][j] * d[j];
        pd[i] = v;
        q += d[i] * v;
      }
      dev.push(d);
      Pdev.push(pd);
      lr.push(c.logc[k] - 0.5 * q);
    }
    const lse = logSumExp(lr);
    return { r: lr.map((v) => Math.exp(v - lse)), dev, Pdev };
  };
  const denoiser = (t: number, xt: Vec): number[] => {
    const c = at('denoiser', t, xt);
    const { r, dev } = resp(c, xt);
    const out = new Array<number>(D).fill(0);
    for (let k = 0; k < K; k++) {
      for (let i = 0; i < D; i++) {
        let v = m.components[k].mean[i];
        for (let j = 0; j < D; j++) v += c.G[k][i][j] * dev[k][j];
        out[i] += r[k] * v;
      }
    }
    return out;
  };
  return {
    denoiser,
    eps(t, xt) {
      const x0 = denoiser(t, xt);
      const c = at('eps', t, xt);
      return Array.from(xt, (v, i) => (v - c.sab * x0[i]) / c.s1);
    },
    score(t, xt) {
      const c = at('score', t, xt);
      const { r, Pdev } = resp(c, xt);
      const out = new Array<number>(D).fill(0);
      for (let k = 0; k < K; k++) for (let i = 0; i < D; i++) out[i] -= r[k] * Pdev[k][i];
      return out;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// A linear-Gaussian reverse chain

/**
 * A reverse process whose every step is linear-Gaussian: p_θ(x_{t−1} | x_t) = N(A_t x_t + b_t, σ_t² I) for
 * t = 1…T, with p(x_T) = N(0, I). Stored 0-based: `A[t−1]` (D×D), `b[t−1]` (D), `variance[t−1]` = σ_t² > 0.
 *
 * @see property `ddpm.bound.geNegLogLikelihood`
 */
export const LinearGaussianChain = z
  .object({
    A: z.array(z.array(z.array(z.number()))).min(1),
    b: z.array(z.array(z.number())).min(1),
    variance: z.array(z.number().positive()).min(1),
  })
  .superRefine((c, ctx) => {
    const T = c.A.length;
    const D = c.b[0]?.length ?? 0;
    if (c.b.length !== T) ctx.addIssue({ code: 'custom', path: ['b'], message: `must have T = ${T} entries (one per step, like A), got ${c.b.length}` });
    if (c.variance.length !== T) ctx.addIssue({ code: 'custom', path: ['variance'], message: `must have T = ${T} entries, got ${c.variance.length}` });
    c.A.forEach((A, i) => {
      if (A.length !== D || A.some((r) => r.length !== D)) ctx.addIssue({ code: 'custom', path: ['A', i], message: `must be ${D}×${D}` });
    });
    c.b.forEach((b, i) => {
      if (b.length !== D) ctx.addIssue({ code: 'custom', path: ['b', i], message: `must have length ${D}` });
    });
  });
/** @see property `ddpm.bound.geNegLogLikelihood` */
export type LinearGaussianChain = z.infer<typeof LinearGaussianChain>;

function parseChain(fn: string, chain: LinearGaussianChain): LinearGaussianChain {
  const r = LinearGaussianChain.safeParse(chain);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new RangeError(`${fn}: chain${i.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('')}: ${i.message}`);
  }
  return r.data;
}

/**
 * The chain's steps as a reverse model (for the single-path terms of the bound and for sampling).
 *
 * $$p_\theta(x_{t-1}\mid x_t) = \mathcal N(A_t x_t + b_t,\ \sigma_t^2 I)$$
 *
 * @see property `ddpm.bound.decompositionEqMonteCarlo`
 */
export function chainReverseModel(chain: LinearGaussianChain): ReverseModel {
  const c = parseChain('chainReverseModel', chain);
  const T = c.A.length;
  return (t, xt) => {
    checkTimestep('chainReverseModel', t, 1, T);
    checkSameLength('chainReverseModel', { xt, b: c.b[t - 1] });
    const A = c.A[t - 1];
    const mean = c.b[t - 1].map((bi, i) => {
      let v = bi;
      for (let j = 0; j < xt.length; j++) v += A[i][j] * xt[j];
      return v;
    });
    return { mean, variance: c.variance[t - 1] };
  };
}

/**
 * The model's marginal p_θ(x_0): N(0, I) pushed through the T linear-Gaussian steps with the linear-Gaussian
 * marginal.
 *
 * $$p_\theta(x_{t-1}) = \mathcal N\big(A_t\mu_t + b_t,\ A_t\Sigma_t A_t^\top + \sigma_t^2 I\big),\qquad p(x_T) = \mathcal N(0,I)$$
 *
 * @see property `ddpm.bound.geNegLogLikelihood`
 */
export function chainMarginalX0(chain: LinearGaussianChain): Gaussian {
  const c = parseChain('chainMarginalX0', chain);
  const T = c.A.length;
  const D = c.b[0].length;
  let p: Gaussian = { mean: new Array<number>(D).fill(0), cov: identity(D) };
  for (let t = T; t >= 1; t--) {
    p = linearGaussianMarginal({ prior: p, A: c.A[t - 1], b: c.b[t - 1], noiseCov: scaleMat(identity(D), c.variance[t - 1]) });
  }
  return p;
}

/**
 * The exact log-likelihood log p_θ(x_0) of a linear-Gaussian chain, in nats.
 *
 * $$\log p_\theta(x_0) = \log\mathcal N(x_0;\ \mu_0,\ \Sigma_0)$$
 *
 * @see property `ddpm.bound.geNegLogLikelihood`
 * @see property `ddpm.bound.tightAtTrueReverse`
 */
export function chainLogLikelihood(chain: LinearGaussianChain, x0: Vec): number {
  const p = chainMarginalX0(chain);
  checkSameLength('chainLogLikelihood', { x0, 'chain.b[0]': chain.b[0] });
  return gaussianLogPdf(p, Array.from(x0));
}

function frobeniusSq(M: readonly (readonly number[])[]): number {
  let s = 0;
  for (const r of M) for (const v of r) s += v * v;
  return s;
}

/**
 * The exact bound L(x_0) = 𝔼_q[L̂] of a linear-Gaussian chain, term by term. Each term's expectation over
 * x_t ~ q(x_t | x_0) = N(√ᾱ_t x_0, (1−ᾱ_t)I) is closed-form because the mean mismatch is affine in x_t:
 * with M_t = c_t I − A_t (c_0, c_t the posterior-mean coefficients),
 *
 * $$L_{t-1} = \frac{\|c_0x_0 + M_t\sqrt{\bar\alpha_t}x_0 - b_t\|^2 + (1-\bar\alpha_t)\|M_t\|_F^2}{2\sigma_t^2}
 *   + \frac D2\Big(\frac{\tilde\beta_t}{\sigma_t^2} - 1 - \log\frac{\tilde\beta_t}{\sigma_t^2}\Big)$$
 *
 * $$L_0 = \frac D2\log(2\pi\sigma_1^2) + \frac{\|x_0 - A_1\sqrt{\bar\alpha_1}x_0 - b_1\|^2 + (1-\bar\alpha_1)\|A_1\|_F^2}{2\sigma_1^2}$$
 *
 * @param s - the forward schedule; its T must equal the chain's length
 * @see property `ddpm.bound.geNegLogLikelihood`
 * @see property `ddpm.bound.decompositionEqMonteCarlo`
 * @see property `ddpm.bound.tightAtTrueReverse`
 */
export function chainExpectedBound(s: Schedule, chain: LinearGaussianChain, x0: Vec): BoundTerms {
  const c = parseChain('chainExpectedBound', chain);
  if (c.A.length !== s.T) throw new RangeError(`chainExpectedBound: chain must have T = ${s.T} steps (the schedule's T), got ${c.A.length}`);
  const D = checkSameLength('chainExpectedBound', { x0, 'chain.b[0]': c.b[0] });
  const prior = priorTerm(s, x0);
  const transitions: number[] = [];
  for (let t = 2; t <= s.T; t++) {
    const co = posteriorMeanCoefficients(s, t);
    const sab = Math.sqrt(s.alphaBar(t));
    const M = c.A[t - 1].map((row, i) => row.map((v, j) => (i === j ? co.xt : 0) - v));
    let sq = 0;
    for (let i = 0; i < D; i++) {
      let v = co.x0 * x0[i] - c.b[t - 1][i];
      for (let j = 0; j < D; j++) v += M[i][j] * sab * x0[j];
      sq += v * v;
    }
    const s2 = c.variance[t - 1];
    const meanPart = (sq + s.oneMinusAlphaBar(t) * frobeniusSq(M)) / (2 * s2);
    transitions.push(meanPart + D * klDiagGaussian([0], [posteriorVariance(s, t)], [0], [s2]));
  }
  const sab1 = Math.sqrt(s.alphaBar(1));
  let sq = 0;
  for (let i = 0; i < D; i++) {
    let v = x0[i] - c.b[0][i];
    for (let j = 0; j < D; j++) v -= c.A[0][i][j] * sab1 * x0[j];
    sq += v * v;
  }
  const s1 = c.variance[0];
  const decoder = 0.5 * D * Math.log(2 * Math.PI * s1) + (sq + s.oneMinusAlphaBar(1) * frobeniusSq(c.A[0])) / (2 * s1);
  return { prior, transitions, decoder, total: prior + transitions.reduce((a, b) => a + b, 0) + decoder };
}

/**
 * The true reverse process q(x_{t−1} | x_t) of the forward process started from Gaussian data N(m, vI), as a
 * linear-Gaussian chain: with q(x_{t−1}) = N(√ᾱ_{t−1} m, v'_{t−1} I), v'_{t−1} = ᾱ_{t−1}v + 1 − ᾱ_{t−1},
 *
 * $$A_t = \frac{\sqrt{\alpha_t}\,v'_{t-1}}{\beta_t + \alpha_t v'_{t-1}}I,\quad
 *   b_t = \frac{\beta_t\sqrt{\bar\alpha_{t-1}}}{\beta_t + \alpha_t v'_{t-1}}m,\quad
 *   \sigma_t^2 = \frac{\beta_t v'_{t-1}}{\beta_t + \alpha_t v'_{t-1}}$$
 *
 * For m = 0, v = 1 (data N(0, I), which the forward process leaves invariant) this is A_t = √α_t I, b_t = 0,
 * σ_t² = β_t, and the model's joint equals q's exactly, so the bound is tight.
 *
 * @param m - the data mean, D entries
 * @param v - the data variance per dimension, v > 0
 * @see property `ddpm.bound.tightAtTrueReverse`
 * @see property `ddpm.bound.trueReverseEqGaussianPosterior`
 */
export function gaussianDataReverseChain(s: Schedule, m: Vec, v: number): LinearGaussianChain {
  checkVector('gaussianDataReverseChain', 'm', m);
  checkScalar('gaussianDataReverseChain', 'v', v, { lo: 0, loOpen: true });
  const D = m.length;
  const A: number[][][] = [];
  const b: number[][] = [];
  const variance: number[] = [];
  for (let t = 1; t <= s.T; t++) {
    const vPrev = t === 1 ? v : s.alphaBar(t - 1) * v + s.oneMinusAlphaBar(t - 1);
    const beta = s.beta(t);
    const alpha = s.alpha(t);
    const den = beta + alpha * vPrev;
    A.push(scaleMat(identity(D), (Math.sqrt(alpha) * vPrev) / den));
    b.push(Array.from(m, (mi) => ((beta * Math.sqrt(s.alphaBar(t - 1))) / den) * mi));
    variance.push((beta * vPrev) / den);
  }
  return { A, b, variance };
}

/**
 * The joint p_θ(x_0, …, x_T) of a linear-Gaussian reverse chain as one Gaussian over the stacked vector
 * (x_0, x_1, …, x_T) (block t holds x_t), built backwards from x_T ~ N(0, I) with x_{t−1} = A_t x_t + b_t + σ_t z:
 *
 * $$m_{t-1} = A_t m_t + b_t,\qquad \operatorname{Cov}(x_{t-1}, x_u) = A_t\operatorname{Cov}(x_t, x_u)\ (u\ge t),\qquad
 *   \operatorname{Var}(x_{t-1}) = A_t\operatorname{Var}(x_t)A_t^\top + \sigma_t^2 I$$
 *
 * @see property `ddpm.bound.reverseMarkovFactorisationEqJoint`
 * @see property `ddpm.bound.elboGapEqPathKl`
 */
export function chainJoint(chain: LinearGaussianChain): Gaussian {
  const c = parseChain('chainJoint', chain);
  const T = c.A.length;
  const D = c.b[0].length;
  const n = D * (T + 1);
  const mean = new Array<number>(n).fill(0);
  const cov = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < D; i++) cov[T * D + i][T * D + i] = 1;
  for (let t = T; t >= 1; t--) {
    const A = c.A[t - 1];
    const row = (t - 1) * D;
    for (let i = 0; i < D; i++) {
      mean[row + i] = c.b[t - 1][i];
      for (let j = 0; j < D; j++) mean[row + i] += A[i][j] * mean[t * D + j];
    }
    // Cov(x_{t−1}, x_u) for u ≥ t, then its transpose, then Var(x_{t−1}).
    for (let u = t; u <= T; u++) {
      for (let i = 0; i < D; i++) {
        for (let k = 0; k < D; k++) {
          let v = 0;
          for (let j = 0; j < D; j++) v += A[i][j] * cov[t * D + j][u * D + k];
          cov[row + i][u * D + k] = v;
          cov[u * D + k][row + i] = v;
        }
      }
    }
    for (let i = 0; i < D; i++) {
      for (let k = 0; k < D; k++) {
        let v = i === k ? c.variance[t - 1] : 0;
        for (let j = 0; j < D; j++) v += A[i][j] * cov[t * D + j][row + k];
        cov[row + i][row + k] = v;
      }
    }
  }
  return { mean, cov };
}

/**
 * The gap of the bound, exactly, for a linear-Gaussian reverse chain: the KL from the forward path distribution
 * to the model's posterior over paths (the ELBO identity of section 1.5 with z = x_{1:T}),
 *
 * $$L + \log p_\theta(x_0) = D_{\mathrm{KL}}\big(q(x_{1:T}\mid x_0)\ \|\ p_\theta(x_{1:T}\mid x_0)\big)$$
 *
 * computed here as the KL between two Gaussians over (x_1, …, x_T): {@link forwardJoint}, and the conditional
 * of {@link chainJoint} on x_0.
 *
 * @see property `ddpm.bound.elboGapEqPathKl`
 */
export function chainPathKl(s: Schedule, chain: LinearGaussianChain, x0: Vec): number {
  const c = parseChain('chainPathKl', chain);
  if (c.A.length !== s.T) throw new RangeError(`chainPathKl: chain must have T = ${s.T} steps (the schedule's T), got ${c.A.length}`);
  const D = checkSameLength('chainPathKl', { x0, 'chain.b[0]': c.b[0] });
  const idx0 = Array.from({ length: D }, (_, i) => i);
  const rest = Array.from({ length: D * s.T }, (_, i) => D + i);
  const posterior = gaussianConditional(chainJoint(c), rest, idx0, Array.from(x0));
  return klGaussian(forwardJoint(s, x0), posterior);
}
