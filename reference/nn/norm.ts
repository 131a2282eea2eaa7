/**
 * Group normalisation (Wu & He 2018) in NHWC, as `torch.nn.GroupNorm(32, C, eps=1e-6, affine=True)`.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';

/**
 * Normalise each group of `C/G` consecutive channels of each example over its positions and channels,
 * then scale and shift per channel:
 *
 * $$\mu_{n,g} = \frac{1}{HW\,C/G}\sum_{h,w,c\in g} x_{n,h,w,c},\qquad
 *   \sigma^2_{n,g} = \frac{1}{HW\,C/G}\sum_{h,w,c\in g}(x_{n,h,w,c}-\mu_{n,g})^2,$$
 * $$y_{n,h,w,c} = \gamma_c\,\frac{x_{n,h,w,c}-\mu_{n,g(c)}}{\sqrt{\sigma^2_{n,g(c)}+\varepsilon}} + \beta_c$$
 *
 * (biased variance, as PyTorch). Channel c belongs to group ⌊c/(C/G)⌋.
 *
 * @param x - `[N, H, W, C]`, C divisible by `groups`
 * @param gamma - `[C]` scale
 * @param beta - `[C]` shift
 */
export function groupNorm(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, groups: number, eps: number): tf.Tensor4D {
  if (x.rank !== 4) throw new Error(`groupNorm: x must be [N,H,W,C], got [${x.shape.join(',')}]`);
  const [n, h, w, c] = x.shape;
  if (!Number.isInteger(groups) || groups <= 0 || c % groups !== 0) {
    throw new Error(`groupNorm: ${c} channels cannot be split into ${groups} groups`);
  }
  if (gamma.shape.length !== 1 || gamma.shape[0] !== c || beta.shape.length !== 1 || beta.shape[0] !== c) {
    throw new Error(`groupNorm: gamma and beta must be [${c}], got [${gamma.shape.join(',')}] and [${beta.shape.join(',')}]`);
  }
  const cg = c / groups;
  return tf.tidy(() => {
    const xg = x.reshape([n, h * w, groups, cg]);
    const { mean, variance } = tf.moments(xg, [1, 3], true); // [N,1,G,1]
    // y = x·s + (β − μ·s) with s = γ/√(σ²+ε): two passes over x after the statistics.
    const s = tf.rsqrt(variance.add(eps)).mul(gamma.reshape([1, 1, groups, cg])); // [N,1,G,C/G]
    const shift = beta.reshape([1, 1, groups, cg]).sub(mean.mul(s));
    return xg.mul(s).add(shift).reshape([n, h, w, c]) as tf.Tensor4D;
  });
}
