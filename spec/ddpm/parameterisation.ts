/**
 * # 3.4 Parameterisations: ε, x_0, μ, score and v
 *
 * Given x_t, a network may predict any of five quantities; each determines the others. With
 * x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε (the reparameterised forward sample):
 *
 * $$\hat x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\hat\varepsilon}{\sqrt{\bar\alpha_t}},\qquad
 *   \hat\varepsilon = \frac{x_t - \sqrt{\bar\alpha_t}\,\hat x_0}{\sqrt{1-\bar\alpha_t}},\qquad
 *   \hat\mu = \tilde\mu_t(x_t, \hat x_0) = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\hat\varepsilon\Big)$$
 *
 * $$\hat s = \nabla_{x_t}\log q(x_t\mid x_0)\big|_{\varepsilon=\hat\varepsilon} = -\frac{\hat\varepsilon}{\sqrt{1-\bar\alpha_t}},\qquad
 *   \hat v = \sqrt{\bar\alpha_t}\,\hat\varepsilon - \sqrt{1-\bar\alpha_t}\,\hat x_0$$
 *
 * (v is Salimans & Ho's 2022 "velocity"). Tweedie's formula makes the score form exact for the true
 * posterior mean: 𝔼[x_0 | x_t] = (x_t + (1−ᾱ_t)∇log q(x_t))/√ᾱ_t.
 *
 * Quantities that divide by ᾱ_t (x̂_0 from ε, v or the score) or by α_t (μ from ε) do not exist at t = T when
 * β_T = 1; those conversions throw there instead of returning ∞ or NaN.
 *
 * @module
 */
import { z } from 'zod';
import type { Schedule } from './schedule.ts';
import { posteriorMeanCoefficients } from './posterior.ts';
import { axpby, checkSameLength, checkTimestep, type Vec } from './internal.ts';

/**
 * What a denoising network predicts: the noise ε, the data x_0, the previous-step mean μ (= x_{t−1} in the
 * reference code's `PREVIOUS_X`), the score ∇log q(x_t | x_0), or the velocity v.
 *
 * @see property `ddpm.param.conversionsInverse`
 */
export const PredictionKind = z.enum(['eps', 'x0', 'mu', 'score', 'v']);
/** @see property `ddpm.param.conversionsInverse` */
export type PredictionKind = z.infer<typeof PredictionKind>;

const KINDS: ReadonlySet<unknown> = new Set(PredictionKind.options);

/**
 * Whether a value is a {@link PredictionKind} (a set lookup: this runs inside sampling loops).
 *
 * @see property `ddpm.param.conversionsInverse`
 */
export function isPredictionKind(k: unknown): k is PredictionKind {
  return KINDS.has(k);
}

/**
 * A prediction: its kind and its value (one example, D entries).
 *
 * @see property `ddpm.param.conversionsInverse`
 */
export const Prediction = z.object({ kind: PredictionKind, value: z.array(z.number()) });
/** @see property `ddpm.param.conversionsInverse` */
export type Prediction = { kind: PredictionKind; value: ArrayLike<number> };

function needAlphaBar(fn: string, s: Schedule, t: number): number {
  const ab = s.alphaBar(t);
  if (!(ab > 0)) {
    throw new RangeError(`${fn}: ᾱ_t = 0 at t = ${t} (the schedule's last β is 1), so x_0 cannot be recovered from x_t; use t < ${s.T}`);
  }
  return ab;
}

/**
 * x̂_0 from a noise prediction (the reference code's `_predict_xstart_from_eps`).
 *
 * $$\hat x_0 = \frac{1}{\sqrt{\bar\alpha_t}}\,x_t - \sqrt{\frac{1-\bar\alpha_t}{\bar\alpha_t}}\,\hat\varepsilon$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T (ᾱ_t > 0 required)
 * @see property `ddpm.param.conversionsInverse`
 * @see property `ddpm.param.recoversX0`
 */
export function x0FromEps(s: Schedule, t: number, xt: Vec, eps: Vec): number[] {
  checkTimestep('x0FromEps', t, 1, s.T);
  checkSameLength('x0FromEps', { xt, eps });
  const ab = needAlphaBar('x0FromEps', s, t);
  return axpby(1 / Math.sqrt(ab), xt, -Math.sqrt(s.oneMinusAlphaBar(t) / ab), eps);
}

/**
 * ε̂ from an x_0 prediction (the reference code's `_predict_eps_from_xstart`).
 *
 * $$\hat\varepsilon = \frac{x_t - \sqrt{\bar\alpha_t}\,\hat x_0}{\sqrt{1-\bar\alpha_t}}$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @see property `ddpm.param.conversionsInverse`
 */
export function epsFromX0(s: Schedule, t: number, xt: Vec, x0: Vec): number[] {
  checkTimestep('epsFromX0', t, 1, s.T);
  checkSameLength('epsFromX0', { xt, x0 });
  const d = Math.sqrt(s.oneMinusAlphaBar(t));
  return axpby(1 / d, xt, -Math.sqrt(s.alphaBar(t)) / d, x0);
}

/**
 * The reverse-process mean from a noise prediction (Ho et al. eq. 11).
 *
 * $$\mu_\theta(x_t, t) = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\varepsilon_\theta(x_t, t)\Big)$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T (α_t > 0 required)
 * @see property `ddpm.param.muFromEpsEqPosteriorMean`
 */
export function muFromEps(s: Schedule, t: number, xt: Vec, eps: Vec): number[] {
  checkTimestep('muFromEps', t, 1, s.T);
  checkSameLength('muFromEps', { xt, eps });
  const a = s.alpha(t);
  if (!(a > 0)) throw new RangeError(`muFromEps: α_t = 0 at t = ${t} (β_t = 1), so μ_θ is undefined there; use t < ${s.T}`);
  const r = 1 / Math.sqrt(a);
  return axpby(r, xt, (-r * s.beta(t)) / Math.sqrt(s.oneMinusAlphaBar(t)), eps);
}

/**
 * The reverse-process mean from an x_0 prediction: the posterior mean μ̃_t(x_t, x̂_0).
 *
 * $$\hat\mu = \tilde\mu_t(x_t, \hat x_0)$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @see property `ddpm.param.conversionsInverse`
 */
export function muFromX0(s: Schedule, t: number, xt: Vec, x0: Vec): number[] {
  checkTimestep('muFromX0', t, 1, s.T);
  checkSameLength('muFromX0', { xt, x0 });
  const c = posteriorMeanCoefficients(s, t);
  return axpby(c.x0, x0, c.xt, xt);
}

/**
 * x̂_0 from a mean prediction, inverting μ̃ (the reference code's `_predict_xstart_from_xprev`).
 *
 * $$\hat x_0 = \frac{\hat\mu - c_t\,x_t}{c_0}$$ with c_0, c_t the posterior-mean coefficients.
 *
 * @param t - paper timestep, 1 ≤ t ≤ T (at t = 1, x̂_0 = μ̂)
 * @see property `ddpm.param.conversionsInverse`
 */
export function x0FromMu(s: Schedule, t: number, xt: Vec, mu: Vec): number[] {
  checkTimestep('x0FromMu', t, 1, s.T);
  checkSameLength('x0FromMu', { xt, mu });
  const c = posteriorMeanCoefficients(s, t);
  if (!(c.x0 > 0)) throw new RangeError(`x0FromMu: the posterior mean does not depend on x_0 at t = ${t} (ᾱ_{t−1} = 0)`);
  return axpby(1 / c.x0, mu, -c.xt / c.x0, xt);
}

/**
 * The score of q(x_t | x_0) at the predicted noise.
 *
 * $$\hat s = -\frac{\hat\varepsilon}{\sqrt{1-\bar\alpha_t}}$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @see property `ddpm.param.conversionsInverse`
 * @see property `ddpm.param.scoreEqGradLogMarginal`
 */
export function scoreFromEps(s: Schedule, t: number, eps: Vec): number[] {
  checkTimestep('scoreFromEps', t, 1, s.T);
  checkSameLength('scoreFromEps', { eps });
  const d = -1 / Math.sqrt(s.oneMinusAlphaBar(t));
  return Array.from(eps, (e) => d * e);
}

/**
 * ε̂ from a score prediction.
 *
 * $$\hat\varepsilon = -\sqrt{1-\bar\alpha_t}\,\hat s$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @see property `ddpm.param.conversionsInverse`
 */
export function epsFromScore(s: Schedule, t: number, score: Vec): number[] {
  checkTimestep('epsFromScore', t, 1, s.T);
  checkSameLength('epsFromScore', { score });
  const d = -Math.sqrt(s.oneMinusAlphaBar(t));
  return Array.from(score, (e) => d * e);
}

/**
 * Tweedie's formula: the posterior mean of x_0 from the score of the noised marginal. With the exact score
 * ∇log q(x_t) it gives 𝔼[x_0 | x_t] for any data distribution.
 *
 * $$\mathbb E[x_0\mid x_t] = \frac{x_t + (1-\bar\alpha_t)\nabla_{x_t}\log q(x_t)}{\sqrt{\bar\alpha_t}}$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T (ᾱ_t > 0 required)
 * @see property `ddpm.param.tweedieEqPosteriorMean`
 * @see property `ddpm.oracle.tweedie`
 */
export function x0FromScore(s: Schedule, t: number, xt: Vec, score: Vec): number[] {
  checkTimestep('x0FromScore', t, 1, s.T);
  checkSameLength('x0FromScore', { xt, score });
  const ab = needAlphaBar('x0FromScore', s, t);
  const r = 1 / Math.sqrt(ab);
  return axpby(r, xt, r * s.oneMinusAlphaBar(t), score);
}

/**
 * v from a noise prediction (v = √ᾱ ε − √(1−ᾱ) x_0, rewritten with x_0 = x̂_0(ε)).
 *
 * $$\hat v = \frac{\hat\varepsilon - \sqrt{1-\bar\alpha_t}\,x_t}{\sqrt{\bar\alpha_t}}$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T (ᾱ_t > 0 required)
 * @see property `ddpm.param.conversionsInverse`
 * @see property `ddpm.param.vEqDefinition`
 */
export function vFromEps(s: Schedule, t: number, xt: Vec, eps: Vec): number[] {
  checkTimestep('vFromEps', t, 1, s.T);
  checkSameLength('vFromEps', { xt, eps });
  const r = 1 / Math.sqrt(needAlphaBar('vFromEps', s, t));
  return axpby(r, eps, -r * Math.sqrt(s.oneMinusAlphaBar(t)), xt);
}

/**
 * ε̂ from a v prediction.
 *
 * $$\hat\varepsilon = \sqrt{\bar\alpha_t}\,\hat v + \sqrt{1-\bar\alpha_t}\,x_t$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @see property `ddpm.param.conversionsInverse`
 */
export function epsFromV(s: Schedule, t: number, xt: Vec, v: Vec): number[] {
  checkTimestep('epsFromV', t, 1, s.T);
  checkSameLength('epsFromV', { xt, v });
  return axpby(Math.sqrt(s.alphaBar(t)), v, Math.sqrt(s.oneMinusAlphaBar(t)), xt);
}

/**
 * x̂_0 from a v prediction.
 *
 * $$\hat x_0 = \sqrt{\bar\alpha_t}\,x_t - \sqrt{1-\bar\alpha_t}\,\hat v$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @see property `ddpm.param.conversionsInverse`
 */
export function x0FromV(s: Schedule, t: number, xt: Vec, v: Vec): number[] {
  checkTimestep('x0FromV', t, 1, s.T);
  checkSameLength('x0FromV', { xt, v });
  return axpby(Math.sqrt(s.alphaBar(t)), xt, -Math.sqrt(s.oneMinusAlphaBar(t)), v);
}

/**
 * Convert a prediction of one kind into another at the same (x_t, t): through ε (to ε first, then from ε),
 * except that x_0 ↔ μ and x_0 ↔ v go directly. Converting a kind to itself returns a copy.
 *
 * $$\varepsilon \leftrightarrow x_0 \leftrightarrow \mu,\qquad \varepsilon\leftrightarrow s,\qquad \varepsilon\leftrightarrow v$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @see property `ddpm.param.conversionsInverse`
 */
export function convertPrediction(s: Schedule, t: number, xt: Vec, from: Prediction, to: PredictionKind): number[] {
  checkTimestep('convertPrediction', t, 1, s.T);
  if (!isPredictionKind(from?.kind)) throw new RangeError(`convertPrediction: from.kind must be one of ${PredictionKind.options.join(', ')}, got ${String(from?.kind)}`);
  if (!isPredictionKind(to)) throw new RangeError(`convertPrediction: to must be one of ${PredictionKind.options.join(', ')}, got ${String(to)}`);
  checkSameLength('convertPrediction', { xt, 'from.value': from.value });
  if (from.kind === to) return Array.from(from.value);
  const v = from.value;
  // x_0 ↔ μ and x_0 ↔ v go directly; everything else goes through ε.
  if (to === 'x0') {
    if (from.kind === 'mu') return x0FromMu(s, t, xt, v);
    if (from.kind === 'v') return x0FromV(s, t, xt, v);
    return x0FromEps(s, t, xt, from.kind === 'eps' ? v : epsFromScore(s, t, v));
  }
  if (to === 'mu') return muFromX0(s, t, xt, convertPrediction(s, t, xt, from, 'x0'));
  if (to === 'v' && from.kind === 'x0') return axpby(Math.sqrt(s.alphaBar(t)), epsFromX0(s, t, xt, v), -Math.sqrt(s.oneMinusAlphaBar(t)), v);
  let eps: number[];
  switch (from.kind) {
    case 'eps':
      eps = Array.from(v);
      break;
    case 'score':
      eps = epsFromScore(s, t, v);
      break;
    case 'v':
      eps = epsFromV(s, t, xt, v);
      break;
    case 'x0':
      eps = epsFromX0(s, t, xt, v);
      break;
    default:
      eps = epsFromX0(s, t, xt, x0FromMu(s, t, xt, v));
  }
  if (to === 'eps') return eps;
  if (to === 'score') return scoreFromEps(s, t, eps);
  return vFromEps(s, t, xt, eps);
}
