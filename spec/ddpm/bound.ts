/**
 * # 3.5 The variational bound and its ε-form
 *
 * Training minimises the negative evidence lower bound (Ho et al. 2020, eq. 3), for one data point x_0:
 *
 * $$L = \mathbb E_{q(x_{1:T}\mid x_0)}\Big[-\log p(x_T) - \sum_{t\ge1}\log\frac{p_\theta(x_{t-1}\mid x_t)}{q(x_t\mid x_{t-1})}\Big]
 *   \;\ge\; -\log p_\theta(x_0)$$
 *
 * which rewrites (eq. 5) as a sum of KL divergences between Gaussians, each with a closed form:
 *
 * $$L = \underbrace{D_{\mathrm{KL}}\big(q(x_T\mid x_0)\,\|\,p(x_T)\big)}_{L_T}
 *   + \sum_{t=2}^{T}\underbrace{\mathbb E\,D_{\mathrm{KL}}\big(q(x_{t-1}\mid x_t,x_0)\,\|\,p_\theta(x_{t-1}\mid x_t)\big)}_{L_{t-1}}
 *   \underbrace{-\ \mathbb E\log p_\theta(x_0\mid x_1)}_{L_0}$$
 *
 * With μ_θ from an ε prediction (eq. 11) and fixed σ_t², each L_{t−1} is a weighted squared error in ε plus a
 * constant (eq. 12):
 *
 * $$L_{t-1} = \frac{\beta_t^2}{2\sigma_t^2\,\alpha_t\,(1-\bar\alpha_t)}\,\big\|\varepsilon - \varepsilon_\theta(x_t,t)\big\|^2 + C_t$$
 *
 * and L_simple (eq. 14) drops the weights. All quantities are in **nats**, summed over the D dimensions of one
 * example; {@link natsToBitsPerDim} converts. Terms are "single-sample": they take the x_t (or the whole path)
 * at which they are evaluated; their expectation over q is the bound.
 *
 * @module
 */
import type { Schedule } from './schedule.ts';
import { forwardMarginal, forwardPathLogDensity } from './forward.ts';
import { forwardPosterior, posteriorVariance } from './posterior.ts';
import { klDiagGaussian } from '../gaussian/kl.ts';
import { normalLogPdf } from '../gaussian/normal1d.ts';
import { checkSameLength, checkScalar, checkTimestep, checkVector, squaredDistance, type Vec } from './internal.ts';

/**
 * A reverse model given as its step distributions: p_θ(x_{t−1} | x_t) = N(mean, variance·I) for t = 1…T.
 *
 * @see property `ddpm.bound.decompositionEqMonteCarlo`
 */
export type ReverseModel = (t: number, xt: readonly number[]) => { mean: readonly number[]; variance: number };

/**
 * The prior term L_T = KL(q(x_T | x_0) ‖ N(0, I)). It has no parameters; for Ho et al.'s schedule it is about
 * 10⁻⁵ bits per dimension (see {@link priorTermBoundPerDim}).
 *
 * $$L_T = D_{\mathrm{KL}}\big(\mathcal N(\sqrt{\bar\alpha_T}x_0, (1-\bar\alpha_T)I)\,\|\,\mathcal N(0,I)\big)
 *   = \tfrac12\sum_i\big(\bar\alpha_T(x_{0,i}^2 - 1) - \log(1-\bar\alpha_T)\big)$$
 *
 * @see property `ddpm.bound.priorTermHoSmall`
 * @see property `ddpm.bound.decompositionEqMonteCarlo`
 */
export function priorTerm(s: Schedule, x0: Vec): number {
  checkVector('priorTerm', 'x0', x0);
  const q = forwardMarginal(s, s.T, x0);
  const D = x0.length;
  return klDiagGaussian(q.mean, new Array<number>(D).fill(q.variance), new Array<number>(D).fill(0), new Array<number>(D).fill(1));
}

/**
 * One transition term L_{t−1} = KL(q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t)) at a given x_t, for 2 ≤ t ≤ T
 * (at t = 1 the term is the decoder {@link decoderTermGaussian}).
 *
 * $$L_{t-1} = D_{\mathrm{KL}}\big(\mathcal N(\tilde\mu_t,\tilde\beta_t I)\,\|\,\mathcal N(\mu_\theta,\sigma_t^2 I)\big)
 *   = \frac{\|\tilde\mu_t-\mu_\theta\|^2}{2\sigma_t^2} + \frac D2\Big(\frac{\tilde\beta_t}{\sigma_t^2} - 1 - \log\frac{\tilde\beta_t}{\sigma_t^2}\Big)$$
 *
 * @param t - paper timestep, 2 ≤ t ≤ T
 * @param pMean - μ_θ(x_t, t), D entries
 * @param pVariance - σ_t² > 0
 * @see property `ddpm.bound.epsFormEqKl`
 * @see property `ddpm.bound.decompositionEqMonteCarlo`
 */
export function transitionTerm(s: Schedule, t: number, x0: Vec, xt: Vec, pMean: Vec, pVariance: number): number {
  if (t === 1) throw new RangeError('transitionTerm: t must be an integer in 2…T; at t = 1 the bound has the decoder term L_0 instead (decoderTermGaussian)');
  checkTimestep('transitionTerm', t, 2, s.T);
  const D = checkSameLength('transitionTerm', { x0, xt, pMean });
  checkScalar('transitionTerm', 'pVariance', pVariance, { lo: 0, loOpen: true });
  const q = forwardPosterior(s, t, x0, xt);
  return klDiagGaussian(q.mean, new Array<number>(D).fill(q.variance), Array.from(pMean), new Array<number>(D).fill(pVariance));
}

/**
 * The decoder term for continuous data, L_0 = −log N(x_0; μ_θ(x_1, 1), σ_1² I) (the discretised decoder for
 * images is in `decoder.ts`).
 *
 * $$L_0 = -\sum_i \log\mathcal N(x_{0,i};\ \mu_{\theta,i},\ \sigma_1^2)$$
 *
 * @param pVariance - σ_1² > 0
 * @see property `ddpm.bound.tightAtTrueReverse`
 */
export function decoderTermGaussian(x0: Vec, pMean: Vec, pVariance: number): number {
  checkSameLength('decoderTermGaussian', { x0, pMean });
  checkScalar('decoderTermGaussian', 'pVariance', pVariance, { lo: 0, loOpen: true });
  let s = 0;
  for (let i = 0; i < x0.length; i++) s -= normalLogPdf(x0[i], pMean[i], pVariance);
  return s;
}

/**
 * The weight of the ε-form of L_{t−1} (Ho et al. eq. 12).
 *
 * $$w_t = \frac{\beta_t^2}{2\sigma_t^2\,\alpha_t\,(1-\bar\alpha_t)}$$
 *
 * @param t - paper timestep, 2 ≤ t ≤ T
 * @param sigma2 - σ_t² > 0
 * @see property `ddpm.bound.epsFormEqKl`
 */
export function epsFormWeight(s: Schedule, t: number, sigma2: number): number {
  checkTimestep('epsFormWeight', t, 2, s.T);
  checkScalar('epsFormWeight', 'sigma2', sigma2, { lo: 0, loOpen: true });
  const b = s.beta(t);
  return (b * b) / (2 * sigma2 * s.alpha(t) * s.oneMinusAlphaBar(t));
}

/**
 * The constant of the ε-form: the KL between the posterior and the reverse step when their means agree.
 *
 * $$C_t = \frac D2\Big(\frac{\tilde\beta_t}{\sigma_t^2} - 1 - \log\frac{\tilde\beta_t}{\sigma_t^2}\Big)$$
 *
 * (0 when σ_t² = β̃_t).
 *
 * @param t - paper timestep, 2 ≤ t ≤ T
 * @param D - number of dimensions
 * @see property `ddpm.bound.epsFormEqKl`
 */
export function epsFormConstant(s: Schedule, t: number, sigma2: number, D: number): number {
  checkTimestep('epsFormConstant', t, 2, s.T);
  checkScalar('epsFormConstant', 'sigma2', sigma2, { lo: 0, loOpen: true });
  if (!Number.isInteger(D) || D < 1) throw new RangeError(`epsFormConstant: D must be a positive integer, got ${String(D)}`);
  return D * klDiagGaussian([0], [posteriorVariance(s, t)], [0], [sigma2]);
}

/**
 * L_{t−1} in ε-form (Ho et al. eq. 12), for x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε and μ_θ from the prediction ε_θ:
 *
 * $$L_{t-1} = w_t\,\|\varepsilon - \varepsilon_\theta\|^2 + C_t$$
 *
 * @param t - paper timestep, 2 ≤ t ≤ T
 * @param eps - the noise ε that made x_t
 * @param epsPred - the prediction ε_θ(x_t, t)
 * @param sigma2 - σ_t² > 0
 * @see property `ddpm.bound.epsFormEqKl`
 */
export function transitionTermEpsForm(s: Schedule, t: number, eps: Vec, epsPred: Vec, sigma2: number): number {
  const D = checkSameLength('transitionTermEpsForm', { eps, epsPred });
  return epsFormWeight(s, t, sigma2) * squaredDistance(eps, epsPred) + epsFormConstant(s, t, sigma2, D);
}

/**
 * The summand of L_simple (Ho et al. eq. 14): the ε-form without its weight and constant.
 *
 * $$L_{\text{simple}}(t) = \|\varepsilon - \varepsilon_\theta(\sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\varepsilon, t)\|^2$$
 *
 * (summed over dimensions; implementations usually average over them, a constant factor 1/D).
 *
 * @see property `ddpm.bound.lSimpleDropsWeights`
 * @see property `ddpm.oracle.optimalEpsMinimisesLSimple`
 */
export function lSimpleTerm(eps: Vec, epsPred: Vec): number {
  checkSameLength('lSimpleTerm', { eps, epsPred });
  return squaredDistance(eps, epsPred);
}

/**
 * The terms of the bound for one x_0: L_T, L_{t−1} for t = 2…T (`transitions[t − 2]`), L_0, and their sum.
 *
 * @see property `ddpm.bound.geNegLogLikelihood`
 */
export interface BoundTerms {
  prior: number;
  transitions: number[];
  decoder: number;
  total: number;
}

function checkPath(fn: string, s: Schedule, x0: Vec, path: readonly Vec[]): void {
  if (!Array.isArray(path) || path.length !== s.T) {
    throw new RangeError(`${fn}: path must hold x_1 … x_T (T = ${s.T} vectors, path[t − 1] = x_t), got ${Array.isArray(path) ? path.length : typeof path}`);
  }
  for (let t = 1; t <= s.T; t++) checkSameLength(fn, { x0, [`path[${t - 1}]`]: path[t - 1] });
}

/**
 * The decomposition of the bound (eq. 5) evaluated on one forward path x_1 … x_T ~ q(x_{1:T} | x_0): L_T, each
 * L_{t−1} at that path's x_t, and L_0 at its x_1. The expectation over paths is L.
 *
 * $$\hat L = L_T + \sum_{t=2}^T D_{\mathrm{KL}}\big(q(x_{t-1}\mid x_t,x_0)\,\|\,p_\theta(x_{t-1}\mid x_t)\big) - \log p_\theta(x_0\mid x_1)$$
 *
 * @param path - `path[t − 1]` = x_t, t = 1…T
 * @param model - the reverse steps p_θ(x_{t−1} | x_t), t = 1…T (t = 1 is the Gaussian decoder)
 * @see property `ddpm.bound.decompositionEqMonteCarlo`
 */
export function boundTermsOnPath(s: Schedule, x0: Vec, path: readonly Vec[], model: ReverseModel): BoundTerms {
  checkPath('boundTermsOnPath', s, x0, path);
  const prior = priorTerm(s, x0);
  const transitions: number[] = [];
  for (let t = 2; t <= s.T; t++) {
    const p = model(t, Array.from(path[t - 1]));
    transitions.push(transitionTerm(s, t, x0, path[t - 1], p.mean, p.variance));
  }
  const p1 = model(1, Array.from(path[0]));
  const decoder = decoderTermGaussian(x0, p1.mean, p1.variance);
  return { prior, transitions, decoder, total: prior + transitions.reduce((a, b) => a + b, 0) + decoder };
}

/**
 * The bound's definition (eq. 3) evaluated on one forward path: the log-ratio of the forward chain to the
 * reverse chain. Its expectation over paths is L, the same as that of {@link boundTermsOnPath} (their values on
 * one path differ).
 *
 * $$\hat L = -\log p(x_T) - \sum_{t=1}^{T}\log p_\theta(x_{t-1}\mid x_t) + \sum_{t=1}^{T}\log q(x_t\mid x_{t-1})$$
 *
 * @param path - `path[t − 1]` = x_t, t = 1…T
 * @see property `ddpm.bound.decompositionEqMonteCarlo`
 */
export function negElboOnPath(s: Schedule, x0: Vec, path: readonly Vec[], model: ReverseModel): number {
  checkPath('negElboOnPath', s, x0, path);
  return forwardPathLogDensity(s, x0, path) - reversePathLogDensity(s, x0, path, model);
}

/**
 * The reverse process is a Markov chain too (Ho et al. eq. 1): the log-density of a whole trajectory x_0 … x_T
 * under the model, in nats.
 *
 * $$p_\theta(x_{0:T}) = p(x_T)\prod_{t=1}^{T} p_\theta(x_{t-1}\mid x_t),\qquad p(x_T) = \mathcal N(0, I)$$
 *
 * @param path - `path[t − 1]` = x_t, t = 1…T
 * @see property `ddpm.bound.reverseMarkovFactorisationEqJoint`
 */
export function reversePathLogDensity(s: Schedule, x0: Vec, path: readonly Vec[], model: ReverseModel): number {
  checkPath('reversePathLogDensity', s, x0, path);
  const at = (t: number): Vec => (t === 0 ? x0 : path[t - 1]);
  let L = 0;
  const xT = at(s.T);
  for (let i = 0; i < x0.length; i++) L += normalLogPdf(xT[i], 0, 1);
  for (let t = 1; t <= s.T; t++) {
    const p = model(t, Array.from(at(t)));
    checkSameLength('reversePathLogDensity', { x0, [`model(${t}).mean`]: p.mean });
    for (let i = 0; i < x0.length; i++) L += normalLogPdf(at(t - 1)[i], p.mean[i], p.variance);
  }
  return L;
}

/**
 * Convert a negative log-likelihood (or a bound on it) in nats for D dimensions to bits per dimension.
 *
 * $$\text{bpd} = \frac{\text{nats}}{D\,\ln 2}$$
 *
 * @see property `ddpm.decoder.bitsPerDimConsistent`
 */
export function natsToBitsPerDim(nats: number, D: number): number {
  if (!Number.isInteger(D) || D < 1) throw new RangeError(`natsToBitsPerDim: D must be a positive integer, got ${String(D)}`);
  return nats / (D * Math.LN2);
}

/**
 * An upper bound on the prior term per dimension for data in [−1, 1], attained at |x_0| = 1:
 *
 * $$\frac{L_T}{D} \le -\tfrac12\log(1-\bar\alpha_T)$$
 *
 * in nats. For Ho et al.'s schedule (linear 10⁻⁴ → 0.02, T = 1000), ᾱ_T ≈ 4.04·10⁻⁵ and this is ≈ 2.02·10⁻⁵ nats
 * ≈ 2.9·10⁻⁵ bits per dimension: the prior term is negligible.
 *
 * @see property `ddpm.bound.priorTermHoSmall`
 */
export function priorTermBoundPerDim(s: Schedule): number {
  return -0.5 * Math.log1p(-s.alphaBar(s.T));
}
