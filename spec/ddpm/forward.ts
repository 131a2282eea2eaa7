/**
 * # 3.2 The forward process
 *
 * The forward (noising) process is a Markov chain that adds Gaussian noise (Ho et al. 2020, eq. 2):
 *
 * $$q(x_t \mid x_{t-1}) = \mathcal N\big(x_t;\ \sqrt{1-\beta_t}\,x_{t-1},\ \beta_t I\big),\qquad t = 1,\dots,T$$
 *
 * and composing the steps gives the closed-form marginal (eq. 4):
 *
 * $$q(x_t \mid x_0) = \mathcal N\big(x_t;\ \sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t) I\big)$$
 *
 * Vectors are one example, flattened (D entries), no batch axis; t is the paper's 1-based timestep.
 *
 * @module
 */
import { z } from 'zod';
import type { Schedule } from './schedule.ts';
import { axpby, checkSameLength, checkTimestep, checkVector, type Vec } from './internal.ts';
import { normalLogPdf } from '../gaussian/normal1d.ts';
import type { Gaussian } from '../gaussian/gaussian.ts';

/**
 * An isotropic Gaussian N(mean, variance·I) on R^D: the forward process, its marginals and its posterior
 * are all of this form. `variance` may be 0 (a point mass, e.g. the posterior at t = 1).
 *
 * @see property `ddpm.forward.marginalMatchesComposition`
 * @see property `ddpm.posterior.eqGaussianConditional`
 */
export const IsoGaussian = z.object({
  mean: z.array(z.number()),
  variance: z.number().nonnegative(),
});
/** @see property `ddpm.forward.marginalMatchesComposition` */
export type IsoGaussian = z.infer<typeof IsoGaussian>;

/**
 * One forward step, q(x_t | x_{t−1}) = N(√(1−β_t) x_{t−1}, β_t I).
 *
 * $$q(x_t\mid x_{t-1}) = \mathcal N\big(\sqrt{1-\beta_t}\,x_{t-1},\ \beta_t I\big)$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T (x_0 is the data)
 * @param xPrev - x_{t−1}, one example, D entries
 * @see property `ddpm.forward.marginalMatchesComposition`
 */
export function forwardStep(s: Schedule, t: number, xPrev: Vec): IsoGaussian {
  checkTimestep('forwardStep', t, 1, s.T);
  checkVector('forwardStep', 'xPrev', xPrev);
  const a = Math.sqrt(s.alpha(t));
  return { mean: Array.from(xPrev, (v) => a * v), variance: s.beta(t) };
}

/**
 * The closed-form marginal q(x_t | x_0) (Ho et al. eq. 4).
 *
 * $$q(x_t\mid x_0) = \mathcal N\big(\sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t) I\big)$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @param x0 - the data x_0, one example, D entries
 * @see property `ddpm.forward.marginalMatchesComposition`
 * @see property `ddpm.forward.variancePreserving`
 */
export function forwardMarginal(s: Schedule, t: number, x0: Vec): IsoGaussian {
  checkTimestep('forwardMarginal', t, 1, s.T);
  checkVector('forwardMarginal', 'x0', x0);
  const a = Math.sqrt(s.alphaBar(t));
  return { mean: Array.from(x0, (v) => a * v), variance: s.oneMinusAlphaBar(t) };
}

/**
 * The reparameterised sample of q(x_t | x_0): given standard-normal noise ε (passed in),
 *
 * $$x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon,\qquad \varepsilon\sim\mathcal N(0, I)$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @param x0 - the data, D entries
 * @param eps - the noise ε, D entries (same length as x0)
 * @see property `ddpm.forward.qSampleEqMonteCarlo`
 * @see property `ddpm.forward.qSampleEqClosedForm`
 */
export function qSample(s: Schedule, t: number, x0: Vec, eps: Vec): number[] {
  checkTimestep('qSample', t, 1, s.T);
  checkSameLength('qSample', { x0, eps });
  return axpby(Math.sqrt(s.alphaBar(t)), x0, Math.sqrt(s.oneMinusAlphaBar(t)), eps);
}

/**
 * A sample of one forward step given noise z: x_t = √(1−β_t) x_{t−1} + √β_t z.
 *
 * $$x_t = \sqrt{1-\beta_t}\,x_{t-1} + \sqrt{\beta_t}\,z$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @see property `ddpm.forward.stepwiseSamplingEqMarginal`
 */
export function forwardStepSample(s: Schedule, t: number, xPrev: Vec, z: Vec): number[] {
  checkTimestep('forwardStepSample', t, 1, s.T);
  checkSameLength('forwardStepSample', { xPrev, z });
  return axpby(Math.sqrt(s.alpha(t)), xPrev, Math.sqrt(s.beta(t)), z);
}

/**
 * The forward process is a Markov chain (Ho et al. eq. 2): the log-density of a whole path x_1 … x_T given x_0
 * is the sum of its steps' log-densities, in nats.
 *
 * $$q(x_{1:T}\mid x_0) = \prod_{t=1}^{T} q(x_t\mid x_{t-1})$$
 *
 * @param path - `path[t − 1]` = x_t, t = 1…T, each of x_0's length
 * @see property `ddpm.forward.markovFactorisationEqJoint`
 */
export function forwardPathLogDensity(s: Schedule, x0: Vec, path: readonly Vec[]): number {
  if (!Array.isArray(path) || path.length !== s.T) throw new RangeError(`forwardPathLogDensity: path must hold x_1 … x_T (T = ${s.T} vectors), got ${Array.isArray(path) ? path.length : typeof path}`);
  let L = 0;
  for (let t = 1; t <= s.T; t++) {
    const xPrev = t === 1 ? x0 : path[t - 2];
    checkSameLength('forwardPathLogDensity', { x0, [`path[${t - 1}]`]: path[t - 1] });
    const q = forwardStep(s, t, xPrev);
    for (let i = 0; i < q.mean.length; i++) L += normalLogPdf(path[t - 1][i], q.mean[i], q.variance);
  }
  return L;
}

/**
 * The joint q(x_{1:T} | x_0) as one Gaussian over the stacked vector (x_1, …, x_T) (block t − 1 holds x_t):
 * each x_t = √ᾱ_t x_0 + noise, and the noise of x_t is the noise of x_s carried forward by √(ᾱ_t/ᾱ_s) plus
 * fresh noise, so that
 *
 * $$\mathbb E[x_t] = \sqrt{\bar\alpha_t}\,x_0,\qquad \operatorname{Cov}(x_s, x_t) = \sqrt{\bar\alpha_t/\bar\alpha_s}\,(1-\bar\alpha_s)\,I\quad(s\le t)$$
 *
 * @see property `ddpm.forward.markovFactorisationEqJoint`
 */
export function forwardJoint(s: Schedule, x0: Vec): Gaussian {
  checkVector('forwardJoint', 'x0', x0);
  const D = x0.length;
  const n = D * s.T;
  const mean = new Array<number>(n);
  const cov = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let t = 1; t <= s.T; t++) {
    for (let i = 0; i < D; i++) mean[(t - 1) * D + i] = Math.sqrt(s.alphaBar(t)) * x0[i];
    for (let u = 1; u <= s.T; u++) {
      const [lo, hi] = t <= u ? [t, u] : [u, t];
      const c = Math.sqrt(s.alphaBar(hi) / s.alphaBar(lo)) * s.oneMinusAlphaBar(lo);
      for (let i = 0; i < D; i++) cov[(t - 1) * D + i][(u - 1) * D + i] = c;
    }
  }
  return { mean, cov };
}
