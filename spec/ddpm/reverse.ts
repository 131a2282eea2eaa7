/**
 * # 3.4 The reverse process
 *
 * The generative model is a Markov chain run backwards from a standard normal (Ho et al. 2020, eq. 1):
 *
 * $$p(x_T) = \mathcal N(0, I),\qquad p_\theta(x_{t-1}\mid x_t) = \mathcal N\big(\mu_\theta(x_t,t),\ \sigma_t^2 I\big)$$
 *
 * with fixed variances σ_t² = β_t or σ_t² = β̃_t (the paper's two choices). Only β̃_t is a pointwise bound: by
 * the law of total variance the true reverse variance is Var[x_{t−1} | x_t] = β̃_t + c_0² Var[x_0 | x_t] ≥ β̃_t
 * (see {@link trueReverseVarianceDiscrete}), which can exceed β_t: for data ±1 at x_t = 0 it is β̃_t + c_0² > β_t
 * at every t. Ho et al.'s "upper bound" β_t is the right variance when x_0 ~ N(0, I), a statement about
 * unit-variance data, not a bound for every x_t. The mean comes from a network's prediction of ε, x_0 or μ (see the
 * parameterisations in `parameterisation.ts`): with x̂_0 the predicted data, μ_θ = μ̃_t(x_t, x̂_0).
 *
 * The public reference code adds conventions that are documented here so that an adapter can reproduce it:
 * `fixedLarge` uses β̃_2 instead of β_1 at t = 1 (for a better decoder likelihood); `fixedSmall` keeps the
 * variance β̃_1 = 0 but a finite log-variance log β̃_2 at t = 1; `learned` predicts log σ² per element;
 * `learnedRange` (Nichol & Dhariwal) interpolates log σ² between log β̃_t (clipped) and log β_t with a
 * predicted v ∈ [−1, 1]; `clip` clamps x̂_0 to the data range [−1, 1] before forming the mean.
 *
 * @module
 */
import { z } from 'zod';
import type { Schedule } from './schedule.ts';
import { clippedLogPosteriorVariance, posteriorMeanCoefficients, posteriorVariance } from './posterior.ts';
import { convertPrediction, isPredictionKind, muFromX0, type Prediction, PredictionKind } from './parameterisation.ts';
import { checkSameLength, checkTimestep, checkVector, type Vec } from './internal.ts';

/**
 * The fixed reverse variances: the paper's `beta` (σ_t² = β_t) and `betaTilde` (σ_t² = β̃_t, 0 at t = 1),
 * and the reference code's `fixedLarge` (β_t, but β̃_2 at t = 1) and `fixedSmall` (β̃_t with the clipped
 * log-variance log β̃_2 at t = 1).
 *
 * @see property `ddpm.reverse.fixedVariances`
 */
export const FixedReverseVariance = z.enum(['beta', 'betaTilde', 'fixedLarge', 'fixedSmall']);
/** @see property `ddpm.reverse.fixedVariances` */
export type FixedReverseVariance = z.infer<typeof FixedReverseVariance>;

/**
 * How σ_t² is chosen: a fixed choice, a predicted log-variance per element (`learned`), or a predicted
 * interpolation weight v per element (`learnedRange`).
 *
 * @see property `ddpm.reverse.fixedVariances`
 * @see property `ddpm.reverse.learnedRangeInterpolates`
 */
export type ReverseVarianceSpec =
  | FixedReverseVariance
  | { kind: 'learned'; logVariance: ArrayLike<number> }
  | { kind: 'learnedRange'; v: ArrayLike<number> };

/**
 * The variance σ_t² and its logarithm for a fixed choice.
 *
 * $$\sigma_t^2 \in \{\beta_t,\ \tilde\beta_t\}$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T (`fixedLarge` and `fixedSmall` need T ≥ 2)
 * @see property `ddpm.reverse.fixedVariances`
 */
export function fixedReverseVariance(s: Schedule, t: number, choice: FixedReverseVariance): { variance: number; logVariance: number } {
  checkTimestep('fixedReverseVariance', t, 1, s.T);
  switch (choice) {
    case 'beta':
      return { variance: s.beta(t), logVariance: Math.log(s.beta(t)) };
    case 'betaTilde': {
      const v = posteriorVariance(s, t);
      return { variance: v, logVariance: Math.log(v) };
    }
    case 'fixedLarge': {
      if (s.T < 2) throw new RangeError(`fixedReverseVariance: 'fixedLarge' needs T ≥ 2 (it uses β̃_2 at t = 1), got T = ${s.T}`);
      const v = t === 1 ? posteriorVariance(s, 2) : s.beta(t);
      return { variance: v, logVariance: Math.log(v) };
    }
    case 'fixedSmall':
      return { variance: posteriorVariance(s, t), logVariance: clippedLogPosteriorVariance(s, t) };
    default:
      throw new RangeError(`fixedReverseVariance: choice must be one of ${FixedReverseVariance.options.join(', ')}, got ${String(choice)}`);
  }
}

/**
 * The learned-range log-variance of Nichol & Dhariwal (improved-diffusion's `LEARNED_RANGE`): with f = (v+1)/2
 * (not clamped),
 *
 * $$\log\sigma_t^2 = f\log\beta_t + (1-f)\log\tilde\beta^{\text{clip}}_t$$
 *
 * @param t - paper timestep, 1 ≤ t ≤ T (needs T ≥ 2)
 * @see property `ddpm.reverse.learnedRangeInterpolates`
 */
export function learnedRangeLogVariance(s: Schedule, t: number, v: Vec): number[] {
  checkTimestep('learnedRangeLogVariance', t, 1, s.T);
  checkSameLength('learnedRangeLogVariance', { v });
  const hi = Math.log(s.beta(t));
  const lo = clippedLogPosteriorVariance(s, t);
  return Array.from(v, (vi) => {
    const f = (vi + 1) / 2;
    return f * hi + (1 - f) * lo;
  });
}

/**
 * Clamp x̂_0 to the data range [−1, 1] (the reference code's `clip_denoised`).
 *
 * $$\operatorname{clip}(x) = \min(1, \max(-1, x))$$
 *
 * @see property `ddpm.reverse.clipOnlyActsOutsideRange`
 */
export function clipToDataRange(x: Vec): number[] {
  return Array.from(x, (v) => Math.min(1, Math.max(-1, v)));
}

/**
 * A Gaussian with diagonal covariance and its log-variances: the reverse step p_θ(x_{t−1} | x_t), and the
 * x̂_0 that produced its mean. For fixed variances every entry of `variance` is the same σ_t².
 *
 * @see property `ddpm.reverse.meanFromEachParameterisationAgrees`
 */
export interface ReverseStep {
  mean: number[];
  variance: number[];
  logVariance: number[];
  /** The predicted x̂_0 (after clipping when `clip` was asked for). */
  x0: number[];
}

/**
 * The reverse step p_θ(x_{t−1} | x_t) from a prediction (Ho et al. eq. 1 with the mean of eq. 11):
 *
 * $$p_\theta(x_{t-1}\mid x_t) = \mathcal N\big(\mu_\theta,\ \sigma_t^2 I\big),\qquad \mu_\theta = \tilde\mu_t(x_t, \hat x_0)$$
 *
 * For an ε, x_0, score or v prediction, x̂_0 is derived from it (and clipped to [−1, 1] when `clip`), then the
 * mean is μ̃_t(x_t, x̂_0). For a μ prediction the mean is the prediction itself and x̂_0 is derived from it
 * (clipped when asked, which does not change the mean), as in the reference code's `PREVIOUS_X`.
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @param xt - x_t, D entries
 * @param pred - the network's prediction, D entries
 * @param variance - how σ_t² is chosen
 * @param opts.clip - clamp x̂_0 to [−1, 1] (default false)
 * @see property `ddpm.reverse.meanFromEachParameterisationAgrees`
 * @see property `ddpm.param.muFromEpsEqPosteriorMean`
 */
export function reverseStep(
  s: Schedule,
  t: number,
  xt: Vec,
  pred: Prediction,
  variance: ReverseVarianceSpec,
  opts: { clip?: boolean } = {},
): ReverseStep {
  checkTimestep('reverseStep', t, 1, s.T);
  const d = checkSameLength('reverseStep', { xt, 'pred.value': pred?.value });
  if (!isPredictionKind(pred.kind)) {
    throw new RangeError(`reverseStep: pred.kind must be one of ${PredictionKind.options.join(', ')}, got ${String(pred.kind)}`);
  }
  const clip = opts.clip === true;
  let mean: number[];
  let x0: number[];
  if (pred.kind === 'mu') {
    mean = Array.from(pred.value);
    x0 = convertPrediction(s, t, xt, pred, 'x0');
    if (clip) x0 = clipToDataRange(x0);
  } else {
    x0 = convertPrediction(s, t, xt, pred, 'x0');
    if (clip) x0 = clipToDataRange(x0);
    mean = muFromX0(s, t, xt, x0);
  }
  let v: number[];
  let lv: number[];
  if (typeof variance === 'string') {
    const f = fixedReverseVariance(s, t, variance);
    v = new Array<number>(d).fill(f.variance);
    lv = new Array<number>(d).fill(f.logVariance);
  } else if (variance?.kind === 'learned') {
    checkSameLength('reverseStep', { xt, 'variance.logVariance': variance.logVariance });
    lv = Array.from(variance.logVariance);
    v = lv.map(Math.exp);
  } else if (variance?.kind === 'learnedRange') {
    checkSameLength('reverseStep', { xt, 'variance.v': variance.v });
    lv = learnedRangeLogVariance(s, t, variance.v);
    v = lv.map(Math.exp);
  } else {
    throw new RangeError(
      `reverseStep: variance must be one of ${FixedReverseVariance.options.join(', ')}, {kind: 'learned'} or {kind: 'learnedRange'}, got ${JSON.stringify(variance)}`,
    );
  }
  return { mean, variance: v, logVariance: lv, x0 };
}

/**
 * The true reverse variance Var[x_{t−1} | x_t] when one-dimensional data x_0 takes the values `points` with
 * probabilities `weights`: by the law of total variance over x_0 given x_t,
 *
 * $$\operatorname{Var}[x_{t-1}\mid x_t] = \tilde\beta_t + c_0^2\,\operatorname{Var}[x_0\mid x_t],\qquad
 *   q(x_0 = a_i\mid x_t) \propto w_i\,\mathcal N(x_t;\ \sqrt{\bar\alpha_t}\,a_i,\ 1-\bar\alpha_t)$$
 *
 * with c_0 = √ᾱ_{t−1} β_t/(1 − ᾱ_t) the posterior coefficient of x_0. It is ≥ β̃_t everywhere, and exceeds β_t
 * for data ±1 at x_t = 0 (there Var[x_0 | x_t] = 1 and c_0² > β_t − β̃_t = c_0²(1 − ᾱ_t)).
 *
 * @param t - paper timestep, 1 ≤ t ≤ T
 * @param points - the support of x_0, finite values
 * @param weights - their probabilities, positive (normalised here)
 * @see property `ddpm.reverse.trueVarianceEqQuadrature`
 * @see property `ddpm.reverse.trueVarianceExceedsBetaForBinaryData`
 */
export function trueReverseVarianceDiscrete(s: Schedule, t: number, points: Vec, weights: Vec, xt: number): number {
  checkTimestep('trueReverseVarianceDiscrete', t, 1, s.T);
  checkSameLength('trueReverseVarianceDiscrete', { points, weights });
  checkVector('trueReverseVarianceDiscrete', 'xt', [xt]);
  if (!Array.from(weights).every((w) => w > 0)) throw new RangeError('trueReverseVarianceDiscrete: weights must be positive');
  const ab = s.alphaBar(t);
  const logr = Array.from(points, (a, i) => Math.log(weights[i]) - (xt - Math.sqrt(ab) * a) ** 2 / (2 * s.oneMinusAlphaBar(t)));
  const m = Math.max(...logr);
  const r = logr.map((l) => Math.exp(l - m));
  const z = r.reduce((u, v) => u + v, 0);
  const mean = r.reduce((u, ri, i) => u + ri * points[i], 0) / z;
  const varX0 = r.reduce((u, ri, i) => u + ri * (points[i] - mean) ** 2, 0) / z;
  return posteriorVariance(s, t) + posteriorMeanCoefficients(s, t).x0 ** 2 * varX0;
}
