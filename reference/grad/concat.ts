/**
 * The gradient of a concatenation. For y = concat(x₀, x₁, …) along axis a, each input's gradient is its own
 * block of δ = ∂L/∂y along that axis:
 *
 * $$\frac{\partial L}{\partial x_i} = \delta_{[\dots,\; o_i : o_i + n_i,\; \dots]},\qquad o_i = \sum_{k<i} n_k,$$
 *
 * with nᵢ the size of xᵢ along a. tfjs 4.22 computes it with `tf.split` (kernel `SplitV`), which on
 * tfjs-backend-wasm slices along the innermost axis one element at a time: the UNet's up path concatenates
 * along channels (`tf.concat([h, skip], 3)`), and in a Fashion-MNIST step at batch 32 its three largest splits took
 * 92, 32 and 23 ms. When the axis is the last one and the current backend has the `SplitLastAxis` kernel
 * ({@link splitLastAxis}, wasm and cpu), the blocks are copied as row segments instead; otherwise (another axis,
 * another backend, an empty input) tfjs's own `tf.split` runs.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { hasKernel, SPLIT_LAST_AXIS, splitLastAxis } from './kernels.ts';

/** The Concat gradient: δ's blocks along the concatenation axis, by {@link splitLastAxis} where it applies. */
export const concatGradConfig: tf.GradConfig = {
  kernelName: tf.Concat,
  saveAllInputs: true,
  gradFunc: (dy, saved, attrs) => {
    const d = dy as tf.Tensor;
    const { axis } = attrs as unknown as tf.ConcatAttrs;
    const a = tf.util.parseAxisParam(axis, saved[0].shape)[0];
    const sizes = saved.map((t) => t.shape[a]);
    const last = a === d.rank - 1;
    const pieces =
      last && d.dtype === 'float32' && sizes.every((s) => s >= 1) && hasKernel(SPLIT_LAST_AXIS) ? splitLastAxis(d, sizes) : tf.split(d, sizes, a);
    // inputs are keyed by their index ('0', '1', …), as tfjs's concat op passes the array
    return Object.fromEntries(pieces.map((p, i) => [String(i), () => p]));
  },
};
