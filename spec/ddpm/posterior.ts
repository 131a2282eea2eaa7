/**
 * # 3.3 The forward-process posterior
 *
 * Conditioned on x_0, the forward step can be reversed in closed form (Ho et al. 2020, eqs. 6–7):
 *
 * $$q(x_{t-1}\mid x_t, x_0) = \mathcal N\big(x_{t-1};\ \tilde\mu_t(x_t, x_0),\ \tilde\beta_t I\big)$$
 *
 * $$\tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}\,x_0
 *   + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\,x_t,\qquad
 *   \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t$$
 *
 * **The case t = 1.** With ᾱ_0 = 1 the formulas give β̃_1 = 0 and μ̃_1 = x_0: the posterior of x_0 given
 * (x_1, x_0) is the point mass at x_0. The functions below return exactly that (coefficients 1 and 0,
 * variance 0) rather than evaluating the quotients. For t ≥ 2, 0 < β̃_t ≤ β_t. The public reference code
 * replaces the zero variance at t = 1 when it needs a logarithm; see {@link clippedLogPosteriorVariance}.
 *
 * @module
 */
import type { Schedule } from './schedule.ts';
import { forwardMarginal, type IsoGaussian } from './forward.ts';
import { normalLogPdf } from '../gaussian/normal1d.ts';
import { axpby, checkSameLength, checkTimestep } from './internal.ts';

/**
 * The posterior variance β̃_t; exactly 0 at t = 1.
 *
 * $$\tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @see property `ddpm.posterior.varianceBetweenZeroAndBeta`
 * @see property `ddpm.posterior.eqGaussianConditional`
 */
export function posteriorVariance(s: Schedule, t: number): number {
  checkTimestep('posteriorVariance', t, 1, s.T);
  if (t === 1) return 0;
  return (s.oneMinusAlphaBar(t - 1) / s.oneMinusAlphaBar(t)) * s.beta(t);
}

/**
 * The two coefficients of the posterior mean μ̃_t = c_0·x_0 + c_t·x_t; exactly (1, 0) at t = 1.
 *
 * $$c_0 = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t},\qquad c_t = \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @see property `ddpm.posterior.eqGaussianConditional`
 * @see property `ddpm.posterior.tEqualsOneIsPointMass`
 */
export function posteriorMeanCoefficients(s: Schedule, t: number): { x0: number; xt: number } {
  checkTimestep('posteriorMeanCoefficients', t, 1, s.T);
  if (t === 1) return { x0: 1, xt: 0 };
  const den = s.oneMinusAlphaBar(t);
  return {
    x0: (Math.sqrt(s.alphaBar(t - 1)) * s.beta(t)) / den,
    xt: (Math.sqrt(s.alpha(t)) * s.oneMinusAlphaBar(t - 1)) / den,
  };
}

/**
 * The posterior mean μ̃_t(x_t, x_0).
 *
 * $$\tilde\mu_t(x_t,x_0) = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}\,x_0 + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\,x_t$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T (μ̃_1 = x_0)
 * @see property `ddpm.posterior.eqGaussianConditional`
 */
export function posteriorMean(s: Schedule, t: number, x0: ArrayLike<number>, xt: ArrayLike<number>): number[] {
  checkTimestep('posteriorMean', t, 1, s.T);
  checkSameLength('posteriorMean', { x0, xt });
  if (t === 1) return Array.from(x0); // μ̃_1 = x_0 exactly (not 1·x_0 + 0·x_t, which turns −0 into +0)
  const c = posteriorMeanCoefficients(s, t);
  return axpby(c.x0, x0, c.xt, xt);
}

/**
 * The forward-process posterior q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I) (Ho et al. eqs. 6–7). At t = 1 it is the
 * point mass at x_0 (variance 0).
 *
 * $$q(x_{t-1}\mid x_t,x_0) = \mathcal N\big(\tilde\mu_t(x_t,x_0),\ \tilde\beta_t I\big)$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @param x0 - the data, D entries
 * @param xt - the noised x_t, D entries
 * @see property `ddpm.posterior.eqGaussianConditional`
 * @see property `ddpm.posterior.tEqualsOneIsPointMass`
 */
export function forwardPosterior(s: Schedule, t: number, x0: ArrayLike<number>, xt: ArrayLike<number>): IsoGaussian {
  checkTimestep('forwardPosterior', t, 1, s.T);
  checkSameLength('forwardPosterior', { x0, xt });
  return { mean: posteriorMean(s, t, x0, xt), variance: posteriorVariance(s, t) };
}

/**
 * log β̃_t as the public reference code stores it (`posterior_log_variance_clipped`): at t = 1, where β̃_1 = 0,
 * the value of t = 2 is used instead, so that the logarithm is finite.
 *
 * $$\log\tilde\beta^{\text{clip}}_t = \begin{cases}\log\tilde\beta_2 & t = 1\\ \log\tilde\beta_t & t\ge 2\end{cases}$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T; needs T ≥ 2
 * @see property `ddpm.posterior.clippedLogVariance`
 */
export function clippedLogPosteriorVariance(s: Schedule, t: number): number {
  checkTimestep('clippedLogPosteriorVariance', t, 1, s.T);
  if (s.T < 2) throw new RangeError(`clippedLogPosteriorVariance: needs a schedule with T ≥ 2 (it uses β̃_2 at t = 1), got T = ${s.T}`);
  return Math.log(posteriorVariance(s, t === 1 ? 2 : t));
}

/**
 * The Bayes step that turns the bound's definition (eq. 3) into its decomposition (eq. 5): given x_0, a forward
 * step can be written backwards,
 *
 * $$q(x_t\mid x_{t-1}) = q(x_t\mid x_{t-1}, x_0) = \frac{q(x_{t-1}\mid x_t, x_0)\,q(x_t\mid x_0)}{q(x_{t-1}\mid x_0)}$$
 *
 * (the first equality is the Markov property). This returns the right-hand side's logarithm, in nats, from the
 * posterior and the two marginals; property `ddpm.posterior.bayesStepEqForwardStep` checks it equals the left.
 *
 * @param t - paper timestep, 2 ≤ t ≤ T (at t = 1 the posterior is a point mass)
 * @see property `ddpm.posterior.bayesStepEqForwardStep`
 */
export function forwardStepLogDensityByBayes(s: Schedule, t: number, x0: ArrayLike<number>, xPrev: ArrayLike<number>, xt: ArrayLike<number>): number {
  checkTimestep('forwardStepLogDensityByBayes', t, 2, s.T);
  const post = forwardPosterior(s, t, x0, xt);
  const now = forwardMarginal(s, t, x0);
  const before = forwardMarginal(s, t - 1, x0);
  let L = 0;
  for (let i = 0; i < post.mean.length; i++) {
    L += normalLogPdf(xPrev[i], post.mean[i], post.variance) + normalLogPdf(xt[i], now.mean[i], now.variance) - normalLogPdf(xPrev[i], before.mean[i], before.variance);
  }
  return L;
}
