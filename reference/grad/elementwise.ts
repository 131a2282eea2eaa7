/**
 * Gradients of elementwise sums, differences and products with broadcasting, cheaper than tfjs 4.22's.
 *
 * For c = a ± b (broadcast to the shape of c) and δ = ∂L/∂c,
 *
 * $$\frac{\partial L}{\partial a} = \sum_{\text{axes broadcast for } a} \delta,\qquad
 *   \frac{\partial L}{\partial b} = \pm\sum_{\text{axes broadcast for } b} \delta.$$
 *
 * When the broadcast axes are the leading ones (a bias [C] added to [N, H, W, C]), δ is summed in two steps,
 * over W as [N·H, W, C] and then over N·H. Why: tfjs-backend-wasm's `Sum` over the leading axes [0, 1, 2] takes
 * 14.4 ms of CPU at [4, 32, 32, 256] where the two steps take 4.0 (4.7 vs 2.0 ms at [4, 32, 32, 128], 0.40 vs 0.28
 * at [8, 16, 16, 32]), and a CIFAR-10 step has about 100 bias adds. (A product with a row of ones is slower:
 * tfjs-backend-wasm packs a matMul's right operand on every call.) Where the current backend has the
 * `SumLeadingAxes` kernel (wasm and cpu, {@link sumLeadingAxes}) and the sum is exactly a bias's, every leading
 * axis summed and the last kept (a target shape [C] or [1, …, 1, C] for δ of shape [..., C]), that one kernel
 * runs instead (float64 accumulation; the Fashion-MNIST step at batch 32 spent 154 ms in the two-step `Sum`s of its biases, 21 ms in this kernel).
 *
 * For c = a ⊙ b (broadcast to the shape of c) and δ = ∂L/∂c,
 *
 * $$\frac{\partial L}{\partial a} = \sum_{\text{axes broadcast for } a} \delta \odot b,\qquad
 *   \frac{\partial L}{\partial b} = \sum_{\text{axes broadcast for } b} \delta \odot a.$$
 *
 * Why: tfjs 4.22's gradient casts the other factor to float32 before multiplying even when it already is
 * float32, and on the wasm backend a cast is a copy: about 350 copies in the small UNet's backward pass.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { hasKernel, SUM_LEADING_AXES, sumLeadingAxes } from './kernels.ts';

/** Whether summing `dy` to `shape` is a bias's gradient: every leading axis summed, the last one kept. */
function isBiasSum(dy: tf.Tensor, shape: readonly number[]): boolean {
  const c = dy.shape[dy.rank - 1];
  return dy.rank >= 2 && shape.length >= 1 && shape.length <= dy.rank && shape[shape.length - 1] === c && shape.slice(0, -1).every((d) => d === 1);
}

/**
 * s·Σ δ over the axes along which `shape` was broadcast to δ's shape, reshaped to `shape` (s = ±1). A bias's
 * sum (all leading axes, the last kept) is one `SumLeadingAxes` kernel where the backend has it. When the
 * broadcast axes lead (a bias [C] added to [N, H, W, C]), δ is summed as [L, ℓ, R] (ℓ the last broadcast axis,
 * L the ones before it, R the rest) over ℓ and then over L; otherwise by tfjs's `sum`.
 */
export function sumToShape(dy: tf.Tensor, shape: readonly number[], sign: 1 | -1): tf.Tensor {
  return tf.tidy(() => {
    const axes = tf.backend_util.getReductionAxes(shape as number[], dy.shape);
    let summed: tf.Tensor;
    if (axes.length === 0) {
      summed = tf.reshape(dy, shape as number[]);
    } else if (dy.dtype === 'float32' && isBiasSum(dy, shape) && hasKernel(SUM_LEADING_AXES)) {
      summed = tf.reshape(sumLeadingAxes(dy), shape as number[]);
    } else {
      const k = Math.max(...axes) + 1;
      const lead = dy.shape.slice(0, k);
      if (lead.every((d, i) => d === 1 || axes.includes(i))) {
        const outer = lead.slice(0, -1).reduce((p, q) => p * q, 1);
        const inner = dy.size / (outer * lead[k - 1]);
        summed = tf.sum(tf.sum(tf.reshape(dy, [outer, lead[k - 1], inner]), 1), 0).reshape(shape as number[]);
      } else {
        summed = tf.reshape(tf.sum(dy, axes), shape as number[]);
      }
    }
    return sign === 1 ? summed : tf.neg(summed);
  });
}

/** The gradient of a ± b: δ summed to each input's shape, negated for b when `signB` is −1. */
function sumGradConfig(kernelName: string, signB: 1 | -1): tf.GradConfig {
  return {
    kernelName,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved) => {
      const [a, b] = saved;
      const d = dy as tf.Tensor;
      return { a: () => sumToShape(d, a.shape, 1), b: () => sumToShape(d, b.shape, signB) };
    },
  };
}

/** The Add gradient: sums over broadcast axes, in two steps where they lead. */
export const addGradConfig: tf.GradConfig = sumGradConfig(tf.Add, 1);

/** The Sub gradient: as {@link addGradConfig}, negated for the subtrahend. */
export const subGradConfig: tf.GradConfig = sumGradConfig(tf.Sub, -1);

/** δ ⊙ other, summed over the axes along which `shape` was broadcast, reshaped to `shape`. */
function productGrad(dy: tf.Tensor, other: tf.Tensor, shape: readonly number[]): tf.Tensor {
  return tf.tidy(() => sumToShape(tf.mul(dy, other.dtype === 'float32' ? other : tf.cast(other, 'float32')), shape, 1));
}

/** The Multiply gradient without same-dtype casts (see the module documentation). */
export const multiplyGradConfig: tf.GradConfig = {
  kernelName: tf.Multiply,
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved) => {
    const [a, b] = saved;
    const d = dy as tf.Tensor;
    return { a: () => productGrad(d, b, a.shape), b: () => productGrad(d, a, b.shape) };
  },
};
