/**
 * The variational bound in bits and the training losses of improved-diffusion's `training_losses`.
 *
 * - vb term at t > 0: KL(q(x_{t−1}|x_t,x₀) ‖ p(x_{t−1}|x_t)), averaged over the non-batch axes, ÷ ln 2 (bits);
 *   at t = 0: the decoder NLL −log p(x₀|x₁) with log_scale = ½·log σ², averaged, ÷ ln 2.
 * - prior term: KL(q(x_{T−1}|x₀) ‖ N(0, I)) averaged, ÷ ln 2.
 * - MSE losses: mean-squared error of the model's mean output against ε, x₀ or the posterior mean (for
 *   `EPSILON`, `START_X`, `PREVIOUS_X`); with learned variances the vb term is added with the model's mean
 *   output *detached* (the bound only trains the variance; λ = 1, or T/1000 for `RESCALED_MSE`).
 * - KL losses: the vb term itself (×T for `RESCALED_KL`), with x̂₀ not clipped.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import type { GaussianDiffusion } from './buffers.ts';
import { ReferenceArgumentError, floatTensor, sameShape, type Timesteps } from './errors.ts';
import { qMeanVarianceIdx, qPosteriorIdx, qSampleIdx } from './forward.ts';
import { dgll, meanFlat, normalKl } from './likelihood.ts';
import type { DenoiseModel } from './model.ts';
import { checkModelOutput, pMeanVarianceFromOutput } from './reverse.ts';

/** The identity in the forward pass, zero gradient (torch's `.detach()`). */
export const stopGradient: (x: tf.Tensor) => tf.Tensor = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => ({
  value: tf.clone(args[0] as tf.Tensor),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as (x: tf.Tensor) => tf.Tensor;

/**
 * The vb term of each example in bits (internal): KL for t > 0, decoder NLL at t = 0. Returns the term [B] and x̂₀.
 */
export function vbTermsBpdFromOutput(
  d: GaussianDiffusion,
  modelOutput: tf.Tensor,
  x0: tf.Tensor,
  xt: tf.Tensor,
  t: Timesteps,
  idx: tf.Tensor1D,
  clipDenoised: boolean,
): { output: tf.Tensor; predXstart: tf.Tensor } {
  const { mean: trueMean, logVarianceClipped: trueLogVar } = qPosteriorIdx(d, x0, xt, idx);
  const out = pMeanVarianceFromOutput(d, modelOutput, xt, idx, clipDenoised);
  const kl = meanFlat(normalKl(trueMean, trueLogVar, out.mean, out.logVariance)).div(Math.LN2);
  const decoderNll = meanFlat(tf.neg(dgll(x0, out.mean, out.logVariance.mul(0.5)))).div(Math.LN2);
  const isZero = tf.tensor1d(Array.from(t, (s) => (s === 0 ? 1 : 0)), 'bool');
  return { output: tf.where(isZero, decoderNll, kl), predXstart: out.predXstart };
}

/**
 * The variational-bound term L_t of each example, in bits: the KL of the posterior to the model for t > 0,
 * the decoder NLL at t = 0 (improved's `_vb_terms_bpd`).
 *
 * @returns `output` [B] (bits) and the model's x̂₀
 */
export function vbTermsBpd(
  d: GaussianDiffusion,
  model: DenoiseModel,
  xStart: tf.Tensor,
  xT: tf.Tensor,
  t: Timesteps,
  opts: { clipDenoised: boolean },
): { output: tf.Tensor; predXstart: tf.Tensor } {
  const fn = 'vbTermsBpd';
  floatTensor(fn, 'x_start', xStart, 2);
  floatTensor(fn, 'x_t', xT, 2);
  sameShape(fn, 'x_start', xStart, 'x_t', xT);
  d.checkT(fn, t, xStart.shape[0]);
  return tf.tidy(() => {
    const out = model(xT, tf.tensor1d(d.modelTimesteps(t), 'float32'));
    checkModelOutput(d, fn, xT, out);
    return vbTermsBpdFromOutput(d, out, xStart, xT, t, d.indexTensor(t), opts.clipDenoised);
  });
}

/**
 * The prior term KL(q(x_{T−1} | x₀) ‖ N(0, I)) of each example, in bits per dimension.
 *
 * $$L_T = \frac{1}{D\ln 2}\,\mathrm{KL}\big(\mathcal N(\sqrt{\bar\alpha_{T-1}}x_0, 1-\bar\alpha_{T-1}) \,\|\, \mathcal N(0, I)\big)$$
 */
export function priorBpd(d: GaussianDiffusion, xStart: tf.Tensor): tf.Tensor {
  floatTensor('priorBpd', 'x_start', xStart, 1);
  return tf.tidy(() => {
    const B = xStart.shape[0];
    const idx = tf.fill([B], d.T - 1, 'int32') as tf.Tensor1D;
    const { mean, logVariance } = qMeanVarianceIdx(d, xStart, idx);
    return meanFlat(normalKl(mean, logVariance, 0.0, 0.0)).div(Math.LN2);
  });
}

/** The terms improved's `training_losses` returns: `loss` always, `mse` and `vb` where they exist. [B] each. */
export type TrainingTerms = {
  loss: tf.Tensor;
  mse?: tf.Tensor;
  vb?: tf.Tensor;
};

/**
 * The training loss of each example at the given timesteps and noise (improved's `training_losses`).
 * Differentiable with `tf.grads` w.r.t. anything the model closes over.
 *
 * @param xStart - x₀, float32, batch first, channels last
 * @param t - one 0-based timestep per example
 * @param noise - ε, x₀'s shape
 */
export function trainingLosses(d: GaussianDiffusion, model: DenoiseModel, xStart: tf.Tensor, t: Timesteps, noise: tf.Tensor): TrainingTerms {
  const fn = 'trainingLosses';
  floatTensor(fn, 'x_start', xStart, 2);
  floatTensor(fn, 'noise', noise);
  sameShape(fn, 'x_start', xStart, 'noise', noise);
  d.checkT(fn, t, xStart.shape[0]);
  if (typeof model !== 'function') throw new ReferenceArgumentError(fn, 'model', `model must be a function (x, tModel) → output, got ${typeof model}`);
  return tf.tidy(() => {
    const idx = d.indexTensor(t);
    const xt = qSampleIdx(d, xStart, idx, noise);
    const tModel = tf.tensor1d(d.modelTimesteps(t), 'float32');
    const out = model(xt, tModel);
    checkModelOutput(d, fn, xt, out);
    if (d.lossType === 'KL' || d.lossType === 'RESCALED_KL') {
      let loss = vbTermsBpdFromOutput(d, out, xStart, xt, t, idx, false).output;
      if (d.lossType === 'RESCALED_KL') loss = loss.mul(d.T);
      return { loss };
    }
    let meanOut = out;
    let vb: tf.Tensor | undefined;
    if (d.modelVarType === 'LEARNED' || d.modelVarType === 'LEARNED_RANGE') {
      const [m, v] = tf.split(out, 2, out.rank - 1);
      meanOut = m;
      // The bound trains only the variance: the mean part enters it detached.
      const frozen = tf.concat([stopGradient(m), v], out.rank - 1);
      vb = vbTermsBpdFromOutput(d, frozen, xStart, xt, t, idx, false).output;
      if (d.lossType === 'RESCALED_MSE') vb = vb.mul(d.T / 1000.0);
    }
    const target =
      d.modelMeanType === 'PREVIOUS_X' ? qPosteriorIdx(d, xStart, xt, idx).mean : d.modelMeanType === 'START_X' ? xStart : noise;
    const mse = meanFlat(tf.square(target.sub(meanOut)));
    return vb === undefined ? { loss: mse.clone(), mse } : { loss: mse.add(vb), mse, vb };
  });
}
