/**
 * The reverse process p(x_{t−1} | x_t): mean, variance and x̂₀ for every model parameterisation.
 *
 * Mean types: `EPSILON` (the model predicts ε; x̂₀ from ε; mean = posterior mean of x̂₀), `START_X` (x̂₀
 * directly), `PREVIOUS_X` (the mean itself; x̂₀ derived from it). Variance types: `FIXED_SMALL` (β̃_t, clipped
 * log), `FIXED_LARGE` (β_t, with β̃_1 at t = 0), `LEARNED` (the model's log σ²), `LEARNED_RANGE` (log σ² =
 * f·log β_t + (1−f)·log β̃_t with f = (v+1)/2, not clamped). With `clipDenoised`, x̂₀ is clipped to [−1, 1]
 * before the posterior mean is taken (for `PREVIOUS_X` the mean is the model's output, unclipped).
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import type { GaussianDiffusion } from './buffers.ts';
import { ReferenceArgumentError, floatTensor, shapeStr, type Timesteps } from './errors.ts';
import { predictXstartFromEpsIdx, predictXstartFromXprevIdx, qPosteriorMeanIdx } from './forward.ts';
import type { DenoiseModel } from './model.ts';

/** The output of {@link pMeanVariance}. All have x's shape. */
export type PMeanVariance = {
  mean: tf.Tensor;
  variance: tf.Tensor;
  logVariance: tf.Tensor;
  predXstart: tf.Tensor;
};

/** Channels the model must output for x with C channels (NHWC: the last axis). */
function expectedChannels(d: GaussianDiffusion, C: number): number {
  return d.modelVarType === 'LEARNED' || d.modelVarType === 'LEARNED_RANGE' ? 2 * C : C;
}

/** Check a model output against x (shape, learned-variance channels). */
export function checkModelOutput(d: GaussianDiffusion, fn: string, x: tf.Tensor, out: tf.Tensor): void {
  const C = x.shape[x.rank - 1];
  const want = [...x.shape.slice(0, -1), expectedChannels(d, C)];
  if (out.rank !== want.length || out.shape.some((s, i) => s !== want[i])) {
    throw new ReferenceArgumentError(
      fn,
      'model output',
      `the model output must have shape ${shapeStr(want)} (${d.modelVarType}: ${want[want.length - 1]} channels last for x with ${C}), got ${shapeStr(out.shape)}`,
    );
  }
}

/**
 * p_mean_variance from a given model output (internal: index tensor, no validation of t).
 * `modelOutput` has x's shape, with 2C channels for learned variances.
 */
export function pMeanVarianceFromOutput(d: GaussianDiffusion, modelOutput: tf.Tensor, x: tf.Tensor, idx: tf.Tensor1D, clipDenoised: boolean): PMeanVariance {
  const r = x.rank;
  let out = modelOutput;
  let variance: tf.Tensor;
  let logVariance: tf.Tensor;
  if (d.modelVarType === 'LEARNED' || d.modelVarType === 'LEARNED_RANGE') {
    const [m, v] = tf.split(modelOutput, 2, r - 1);
    out = m;
    if (d.modelVarType === 'LEARNED') {
      logVariance = v;
    } else {
      const minLog = d.extract('posterior_log_variance_clipped', idx, r);
      const maxLog = d.extract('log_betas', idx, r);
      const frac = v.add(1).div(2);
      logVariance = frac.mul(maxLog).add(tf.scalar(1).sub(frac).mul(minLog));
    }
    variance = tf.exp(logVariance);
  } else {
    const large = d.modelVarType === 'FIXED_LARGE';
    variance = tf.broadcastTo(d.extract(large ? 'fixedlarge_variance' : 'posterior_variance', idx, r), x.shape);
    logVariance = tf.broadcastTo(d.extract(large ? 'fixedlarge_log_variance' : 'posterior_log_variance_clipped', idx, r), x.shape);
  }
  const process = (x0: tf.Tensor): tf.Tensor => (clipDenoised ? tf.clipByValue(x0, -1, 1) : x0);
  let predXstart: tf.Tensor;
  let mean: tf.Tensor;
  if (d.modelMeanType === 'PREVIOUS_X') {
    predXstart = process(predictXstartFromXprevIdx(d, x, idx, out));
    mean = out;
  } else {
    predXstart = process(d.modelMeanType === 'START_X' ? out : predictXstartFromEpsIdx(d, x, idx, out));
    mean = qPosteriorMeanIdx(d, predXstart, x, idx);
  }
  return { mean, variance, logVariance, predXstart };
}

/**
 * Mean and variance of p(x_{t−1} | x_t) and the model's x̂₀, calling the model once with the timesteps
 * the diffusion hands to it (see {@link GaussianDiffusion.modelTimesteps}).
 *
 * For `EPSILON`: $$\hat x_0 = \operatorname{clip}\big(\sqrt{1/\bar\alpha_t}\,x_t - \sqrt{1/\bar\alpha_t-1}\,\epsilon_\theta\big),\quad
 * \mu_\theta = \tilde\mu_t(x_t, \hat x_0)$$
 *
 * @param x - x_t, float32, batch first, channels last (NHWC), rank ≥ 2
 * @param t - one 0-based timestep per batch element
 */
export function pMeanVariance(d: GaussianDiffusion, model: DenoiseModel, x: tf.Tensor, t: Timesteps, opts: { clipDenoised: boolean }): PMeanVariance {
  const fn = 'pMeanVariance';
  floatTensor(fn, 'x', x, 2);
  d.checkT(fn, t, x.shape[0]);
  if (typeof model !== 'function') throw new ReferenceArgumentError(fn, 'model', `model must be a function (x, tModel) → output, got ${typeof model}`);
  if (typeof opts?.clipDenoised !== 'boolean') throw new ReferenceArgumentError(fn, 'clipDenoised', `clipDenoised must be a boolean, got ${String(opts?.clipDenoised)}`);
  return tf.tidy(() => {
    const tModel = tf.tensor1d(d.modelTimesteps(t), 'float32');
    const out = model(x, tModel);
    checkModelOutput(d, fn, x, out);
    return pMeanVarianceFromOutput(d, out, x, d.indexTensor(t), opts.clipDenoised);
  });
}

/** {@link pMeanVariance} for a recorded model output (the model's output given instead of the model). */
export function pMeanVarianceOfOutput(d: GaussianDiffusion, modelOutput: tf.Tensor, x: tf.Tensor, t: Timesteps, opts: { clipDenoised: boolean }): PMeanVariance {
  const fn = 'pMeanVarianceOfOutput';
  floatTensor(fn, 'x', x, 2);
  floatTensor(fn, 'model output', modelOutput, 2);
  d.checkT(fn, t, x.shape[0]);
  if (typeof opts?.clipDenoised !== 'boolean') throw new ReferenceArgumentError(fn, 'clipDenoised', `clipDenoised must be a boolean, got ${String(opts?.clipDenoised)}`);
  checkModelOutput(d, fn, x, modelOutput);
  return tf.tidy(() => pMeanVarianceFromOutput(d, modelOutput, x, d.indexTensor(t), opts.clipDenoised));
}
