/**
 * KL divergence between diagonal Gaussians, the approximate standard-normal CDF, and the discretised Gaussian
 * log-likelihood of 8-bit images scaled to [−1, 1] (the decoder p(x₀ | x₁)). Units: nats.
 *
 * The float32 behaviour of the public code is part of the contract: the edge thresholds ±0.999 are compared in
 * float32 (x = float32(0.999) is *not* > 0.999 there and takes the middle branch), probabilities are floored at
 * float32(1e−12) before the logarithm (so a saturated bin gives log(1e−12) = −27.631021), and the CDF uses the
 * tanh approximation.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { ReferenceArgumentError, floatTensor, sameShape, shapeStr } from './errors.ts';

/** A float32 tensor or a number (broadcast). */
export type TensorOrNumber = tf.Tensor | number;

function broadcastShape(fn: string, named: Array<[string, TensorOrNumber]>): void {
  let shape: number[] = [];
  let from = '';
  for (const [name, v] of named) {
    if (typeof v === 'number') {
      if (Number.isNaN(v)) throw new ReferenceArgumentError(fn, name, `${name} must be a number or a float32 tensor, got NaN`);
      continue;
    }
    floatTensor(fn, name, v);
    const s = v.shape;
    const n = Math.max(shape.length, s.length);
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const a = shape[shape.length - n + i] ?? 1;
      const b = s[s.length - n + i] ?? 1;
      if (a !== b && a !== 1 && b !== 1) {
        throw new ReferenceArgumentError(fn, name, `${name} of shape ${shapeStr(s)} does not broadcast with ${from} of shape ${shapeStr(shape)}`);
      }
      out.push(a === 1 ? b : a);
    }
    shape = out;
    from = from === '' ? name : `${from}, ${name}`;
  }
}

const asTensor = (v: TensorOrNumber): tf.Tensor => (typeof v === 'number' ? tf.scalar(v, 'float32') : v);

/**
 * KL(N(μ₁, e^{lv₁}) ‖ N(μ₂, e^{lv₂})) element-wise, in nats; arguments broadcast.
 *
 * $$\mathrm{KL} = \tfrac12\Big(-1 + \ell_2 - \ell_1 + e^{\ell_1-\ell_2} + (\mu_1-\mu_2)^2 e^{-\ell_2}\Big)$$
 */
export function normalKl(mean1: TensorOrNumber, logvar1: TensorOrNumber, mean2: TensorOrNumber, logvar2: TensorOrNumber): tf.Tensor {
  const fn = 'normalKl';
  broadcastShape(fn, [['mean1', mean1], ['logvar1', logvar1], ['mean2', mean2], ['logvar2', logvar2]]);
  if ([mean1, logvar1, mean2, logvar2].every((v) => typeof v === 'number')) {
    throw new ReferenceArgumentError(fn, 'mean1', 'at least one argument must be a tensor');
  }
  return tf.tidy(() => {
    const m1 = asTensor(mean1);
    const l1 = asTensor(logvar1);
    const m2 = asTensor(mean2);
    const l2 = asTensor(logvar2);
    return tf
      .scalar(-1)
      .add(l2)
      .sub(l1)
      .add(tf.exp(l1.sub(l2)))
      .add(tf.square(m1.sub(m2)).mul(tf.exp(tf.neg(l2))))
      .mul(0.5);
  });
}

/**
 * A fast approximation of the standard normal CDF (Page 1977, as in the public code).
 *
 * $$\Phi(x) \approx \tfrac12\Big(1 + \tanh\big(\sqrt{2/\pi}\,(x + 0.044715\,x^3)\big)\Big)$$
 */
export function approxStandardNormalCdf(x: tf.Tensor): tf.Tensor {
  floatTensor('approxStandardNormalCdf', 'x', x);
  return tf.tidy(() => cdfApprox(x));
}

function cdfApprox(x: tf.Tensor): tf.Tensor {
  const cube = x.mul(x).mul(x);
  return tf.tanh(x.add(cube.mul(0.044715)).mul(Math.sqrt(2.0 / Math.PI))).add(1).mul(0.5);
}

/**
 * Log-likelihood (nats) of x on the 256-level grid {k/127.5 − 1} under N(mean, e^{2·log_scale}) discretised to
 * bins of width 2/255, with open edge bins (Ho et al. eq. 13):
 *
 * $$\log p(x) = \begin{cases} \log \Phi(z_+) & x < -0.999\\ \log(1-\Phi(z_-)) & x > 0.999\\
 *   \log(\Phi(z_+) - \Phi(z_-)) & \text{otherwise}\end{cases},\quad z_\pm = e^{-s}(x - \mu \pm 1/255)$$
 *
 * each probability floored at 1e−12 before the logarithm. `x`, `means` and `logScales` have the same shape.
 */
export function discretizedGaussianLogLikelihood(x: tf.Tensor, means: tf.Tensor, logScales: tf.Tensor): tf.Tensor {
  const fn = 'discretizedGaussianLogLikelihood';
  floatTensor(fn, 'x', x);
  floatTensor(fn, 'means', means);
  floatTensor(fn, 'log_scales', logScales);
  sameShape(fn, 'x', x, 'means', means);
  sameShape(fn, 'x', x, 'log_scales', logScales);
  return tf.tidy(() => dgll(x, means, logScales));
}

/** The discretised log-likelihood without validation (internal). */
export function dgll(x: tf.Tensor, means: tf.Tensor, logScales: tf.Tensor): tf.Tensor {
  const centered = x.sub(means);
  const invStdv = tf.exp(tf.neg(logScales));
  const cdfPlus = cdfApprox(invStdv.mul(centered.add(1.0 / 255.0)));
  const cdfMin = cdfApprox(invStdv.mul(centered.sub(1.0 / 255.0)));
  const floor = 1e-12;
  const logCdfPlus = tf.log(tf.maximum(cdfPlus, floor));
  const logOneMinusCdfMin = tf.log(tf.maximum(tf.scalar(1).sub(cdfMin), floor));
  const logCdfDelta = tf.log(tf.maximum(cdfPlus.sub(cdfMin), floor));
  // The thresholds are float32 scalars: float32(0.999) is not > float32(0.999), as in the reference.
  return tf.where(tf.less(x, -0.999), logCdfPlus, tf.where(tf.greater(x, 0.999), logOneMinusCdfMin, logCdfDelta));
}

/** Mean over every axis but the first (batch). */
export function meanFlat(x: tf.Tensor): tf.Tensor {
  if (x.rank < 1) throw new ReferenceArgumentError('meanFlat', 'x', `x must have a batch axis, got shape ${shapeStr(x.shape)}`);
  if (x.rank === 1) return x.clone();
  return tf.mean(x, Array.from({ length: x.rank - 1 }, (_, i) => i + 1));
}
