/**
 * Group normalisation (Wu & He 2018) in NHWC, as `torch.nn.GroupNorm(32, C, eps=1e-6, affine=True)`.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { swish } from './activation.ts';
import { fusedGroupNormAvailable, groupNormSwishFused, installGroupNormKernels } from './groupNormKernels.ts';

/**
 * Normalise each group of `C/G` consecutive channels of each example over its positions and channels,
 * then scale and shift per channel:
 *
 * $$\mu_{n,g} = \frac{1}{HW\,C/G}\sum_{h,w,c\in g} x_{n,h,w,c},\qquad
 *   \sigma^2_{n,g} = \frac{1}{HW\,C/G}\sum_{h,w,c\in g}(x_{n,h,w,c}-\mu_{n,g})^2,$$
 * $$y_{n,h,w,c} = \gamma_c\,\frac{x_{n,h,w,c}-\mu_{n,g(c)}}{\sqrt{\sigma^2_{n,g(c)}+\varepsilon}} + \beta_c$$
 *
 * (biased variance, as PyTorch; two passes, the variance of the centred values). Channel c belongs to group
 * ⌊c/(C/G)⌋.
 *
 * Formulation: the spatial means per channel are average poolings over the whole feature map, and the group
 * statistics are means over the C/G channel means (every channel has the same HW positions, so the mean of
 * the means is the mean). Every full-size operation is then an elementwise op whose broadcast operand varies
 * along the channel axis. On the wasm backend of tfjs 4.22 this is ~5× faster than `tf.moments` over
 * non-adjacent axes, which transposes the whole tensor for each reduction, and than a broadcast along a
 * trailing axis of size 1, which takes a slow path (≈ 7× a plain elementwise op).
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
    /** Per-channel spatial means [N,1,1,C] → per-group means broadcast back to the group's channels [N,1,1,C]. */
    const groupMean = (t: tf.Tensor4D): tf.Tensor4D => {
      const perChannel = tf.avgPool(t, [h, w], 1, 'valid'); // [N,1,1,C]
      const perGroup = perChannel.reshape([n, groups, cg]).mean(2, true); // [N,G,1]
      return tf.tile(perGroup, [1, 1, cg]).reshape([n, 1, 1, c]) as tf.Tensor4D;
    };
    const d = x.sub(groupMean(x)) as tf.Tensor4D;
    const variance = groupMean(d.mul(d) as tf.Tensor4D);
    return d.mul(tf.rsqrt(variance.add(eps)).mul(gamma)).add(beta) as tf.Tensor4D;
  });
}

/**
 * `swish(groupNorm(x))` (or `groupNorm(x)` with `swish: false`), the pair every residual block and the output
 * head apply. Where the fused kernels of `groupNormKernels.ts` are registered for the active backend (wasm,
 * cpu) this is one kernel forward and one backward; elsewhere it is the composite {@link groupNorm} followed by
 * {@link swish}, which stays the definition [training.grad.fusedNormEqComposite].
 */
export function groupNormSwish(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, groups: number, eps: number, withSwish = true): tf.Tensor4D {
  installGroupNormKernels();
  if (fusedGroupNormAvailable() && x.dtype === 'float32' && gamma.dtype === 'float32' && beta.dtype === 'float32') {
    return groupNormSwishFused(x, gamma, beta, { groups, eps, swish: withSwish });
  }
  return tf.tidy(() => {
    const y = groupNorm(x, gamma, beta, groups, eps);
    return withSwish ? swish(y) : y;
  });
}
