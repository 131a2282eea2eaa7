/**
 * The forward process q(x_t | x_0), its posterior q(x_{t−1} | x_t, x_0), and the conversions between the
 * model's parameterisations (ε, x₀, x_{t−1}).
 *
 * Tensors are float32, batch first, any rank ≥ 1 (images NHWC); `t` holds one 0-based timestep per batch
 * element (host integers, need not be equal or sorted). Coefficients are float64 buffers gathered per example
 * and rounded to float32, then broadcast over the non-batch axes. Every function runs inside `tf.tidy`.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import type { GaussianDiffusion } from './buffers.ts';
import { floatTensor, sameShape, type Timesteps } from './errors.ts';

/** Validate one batched float32 tensor and its timesteps; returns the batch size. */
function batchOf(d: GaussianDiffusion, fn: string, name: string, x: unknown, t: Timesteps): number {
  floatTensor(fn, name, x, 1);
  const B = (x as tf.Tensor).shape[0];
  d.checkT(fn, t, B);
  return B;
}

/** x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε (internal: index tensor, no validation). */
export function qSampleIdx(d: GaussianDiffusion, x0: tf.Tensor, idx: tf.Tensor1D, noise: tf.Tensor): tf.Tensor {
  return d.extract('sqrt_alphas_cumprod', idx, x0.rank).mul(x0).add(d.extract('sqrt_one_minus_alphas_cumprod', idx, x0.rank).mul(noise));
}

/**
 * Sample x_t ~ q(x_t | x_0) with the given noise (Ho et al. eq. 4).
 *
 * $$x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$$
 */
export function qSample(d: GaussianDiffusion, xStart: tf.Tensor, t: Timesteps, noise: tf.Tensor): tf.Tensor {
  const fn = 'qSample';
  batchOf(d, fn, 'x_start', xStart, t);
  floatTensor(fn, 'noise', noise);
  sameShape(fn, 'x_start', xStart, 'noise', noise);
  return tf.tidy(() => qSampleIdx(d, xStart, d.indexTensor(t), noise));
}

/** q(x_t | x_0) (internal): mean, and variance/log-variance broadcast to x₀'s shape. */
export function qMeanVarianceIdx(d: GaussianDiffusion, x0: tf.Tensor, idx: tf.Tensor1D): { mean: tf.Tensor; variance: tf.Tensor; logVariance: tf.Tensor } {
  const r = x0.rank;
  return {
    mean: d.extract('sqrt_alphas_cumprod', idx, r).mul(x0),
    variance: tf.broadcastTo(d.extract('one_minus_alphas_cumprod', idx, r), x0.shape),
    logVariance: tf.broadcastTo(d.extract('log_one_minus_alphas_cumprod', idx, r), x0.shape),
  };
}

/**
 * Mean, variance and log-variance of q(x_t | x_0), variances broadcast to x₀'s shape.
 *
 * $$q(x_t|x_0) = \mathcal N\big(\sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t) I\big)$$
 */
export function qMeanVariance(d: GaussianDiffusion, xStart: tf.Tensor, t: Timesteps): { mean: tf.Tensor; variance: tf.Tensor; logVariance: tf.Tensor } {
  batchOf(d, 'qMeanVariance', 'x_start', xStart, t);
  return tf.tidy(() => qMeanVarianceIdx(d, xStart, d.indexTensor(t)));
}

/** Posterior mean μ̃_t(x_t, x₀) (internal). */
export function qPosteriorMeanIdx(d: GaussianDiffusion, x0: tf.Tensor, xt: tf.Tensor, idx: tf.Tensor1D): tf.Tensor {
  return d.extract('posterior_mean_coef1', idx, x0.rank).mul(x0).add(d.extract('posterior_mean_coef2', idx, x0.rank).mul(xt));
}

/** The posterior q(x_{t−1} | x_t, x_0) (internal): mean, variance and clipped log-variance, x₀'s shape. */
export function qPosteriorIdx(d: GaussianDiffusion, x0: tf.Tensor, xt: tf.Tensor, idx: tf.Tensor1D): { mean: tf.Tensor; variance: tf.Tensor; logVarianceClipped: tf.Tensor } {
  const r = x0.rank;
  return {
    mean: qPosteriorMeanIdx(d, x0, xt, idx),
    variance: tf.broadcastTo(d.extract('posterior_variance', idx, r), x0.shape),
    logVarianceClipped: tf.broadcastTo(d.extract('posterior_log_variance_clipped', idx, r), x0.shape),
  };
}

/**
 * Mean, variance and clipped log-variance of the posterior q(x_{t−1} | x_t, x_0) (Ho et al. eqs. 6–7); at
 * t = 0 the variance is 0 and the log-variance is that of t = 1 (the clipped buffer).
 *
 * $$\tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\beta_t}{1-\bar\alpha_t}x_0 + \frac{\sqrt{\alpha_t}(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}x_t,
 *   \qquad \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\beta_t$$
 */
export function qPosteriorMeanVariance(
  d: GaussianDiffusion,
  xStart: tf.Tensor,
  xT: tf.Tensor,
  t: Timesteps,
): { mean: tf.Tensor; variance: tf.Tensor; logVarianceClipped: tf.Tensor } {
  const fn = 'qPosteriorMeanVariance';
  batchOf(d, fn, 'x_start', xStart, t);
  floatTensor(fn, 'x_t', xT);
  sameShape(fn, 'x_start', xStart, 'x_t', xT);
  return tf.tidy(() => qPosteriorIdx(d, xStart, xT, d.indexTensor(t)));
}

/** x̂₀ = √(1/ᾱ_t)·x_t − √(1/ᾱ_t − 1)·ε (internal). */
export function predictXstartFromEpsIdx(d: GaussianDiffusion, xt: tf.Tensor, idx: tf.Tensor1D, eps: tf.Tensor): tf.Tensor {
  return d.extract('sqrt_recip_alphas_cumprod', idx, xt.rank).mul(xt).sub(d.extract('sqrt_recipm1_alphas_cumprod', idx, xt.rank).mul(eps));
}

/** x̂₀ = x_{t−1}/c₁ − (c₂/c₁)·x_t with c₁, c₂ the posterior-mean coefficients (internal). */
export function predictXstartFromXprevIdx(d: GaussianDiffusion, xt: tf.Tensor, idx: tf.Tensor1D, xprev: tf.Tensor): tf.Tensor {
  return d.extract('recip_posterior_mean_coef1', idx, xt.rank).mul(xprev).sub(d.extract('posterior_mean_coef2_over_coef1', idx, xt.rank).mul(xt));
}

/** ε = (√(1/ᾱ_t)·x_t − x̂₀)/√(1/ᾱ_t − 1) (internal). */
export function predictEpsFromXstartIdx(d: GaussianDiffusion, xt: tf.Tensor, idx: tf.Tensor1D, x0: tf.Tensor): tf.Tensor {
  return d.extract('sqrt_recip_alphas_cumprod', idx, xt.rank).mul(xt).sub(x0).div(d.extract('sqrt_recipm1_alphas_cumprod', idx, xt.rank));
}

/**
 * x₀ from x_t and the noise ε (the inverse of {@link qSample} in x₀).
 *
 * $$\hat x_0 = \sqrt{1/\bar\alpha_t}\,x_t - \sqrt{1/\bar\alpha_t - 1}\,\epsilon$$
 */
export function predictXstartFromEps(d: GaussianDiffusion, xT: tf.Tensor, t: Timesteps, eps: tf.Tensor): tf.Tensor {
  const fn = 'predictXstartFromEps';
  batchOf(d, fn, 'x_t', xT, t);
  floatTensor(fn, 'eps', eps);
  sameShape(fn, 'x_t', xT, 'eps', eps);
  return tf.tidy(() => predictXstartFromEpsIdx(d, xT, d.indexTensor(t), eps));
}

/**
 * x₀ from x_t and the posterior mean x_{t−1} (the inverse of the posterior mean in x₀).
 *
 * $$\hat x_0 = \frac{1}{c_1}x_{t-1} - \frac{c_2}{c_1}x_t$$
 */
export function predictXstartFromXprev(d: GaussianDiffusion, xT: tf.Tensor, t: Timesteps, xprev: tf.Tensor): tf.Tensor {
  const fn = 'predictXstartFromXprev';
  batchOf(d, fn, 'x_t', xT, t);
  floatTensor(fn, 'xprev', xprev);
  sameShape(fn, 'x_t', xT, 'xprev', xprev);
  return tf.tidy(() => predictXstartFromXprevIdx(d, xT, d.indexTensor(t), xprev));
}

/**
 * ε from x_t and x₀.
 *
 * $$\epsilon = \frac{\sqrt{1/\bar\alpha_t}\,x_t - \hat x_0}{\sqrt{1/\bar\alpha_t - 1}}$$
 */
export function predictEpsFromXstart(d: GaussianDiffusion, xT: tf.Tensor, t: Timesteps, predXstart: tf.Tensor): tf.Tensor {
  const fn = 'predictEpsFromXstart';
  batchOf(d, fn, 'x_t', xT, t);
  floatTensor(fn, 'pred_xstart', predXstart);
  sameShape(fn, 'x_t', xT, 'pred_xstart', predXstart);
  return tf.tidy(() => predictEpsFromXstartIdx(d, xT, d.indexTensor(t), predXstart));
}
