/**
 * Gradients of elementwise sums, differences and products with broadcasting, cheaper than tfjs 4.22's.
 *
 * For c = a ± b (broadcast to the shape of c) and δ = ∂L/∂c,
 *
 * $$\frac{\partial L}{\partial a} = \sum_{\text{axes broadcast for } a} \delta,\qquad
 *   \frac{\partial L}{\partial b} = \pm\sum_{\text{axes broadcast for } b} \delta.$$
 *
 * When the broadcast axes are the leading ones (a bias [C] added to [N, H, W, C]), the sum is the product
 * $\mathbf 1^\top \delta$ of a row of ±1 with δ seen as an [M, C] matrix. Why: tfjs-backend-wasm's `Sum` over
 * leading axes first transposes the tensor; at [4, 32, 32, 256] it takes 12.5 ms where the product takes 0.8
 * (0.34 vs 2.5 ms at [4, 32, 32, 128]; equal below ~6·10⁴ elements), and a CIFAR-10 step has about 100 bias adds.
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

/** Below this many elements tfjs's `Sum` is as fast as the product (and one kernel instead of three). */
export const PRODUCT_SUM_MIN_SIZE = 1 << 16;

/**
 * s·Σ δ over the axes along which `shape` was broadcast to δ's shape, reshaped to `shape` (s = ±1). Leading
 * broadcast axes of a tensor of at least `minProductSize` elements are summed by the product of a row of ones
 * with s·δ seen as an [M, R] matrix; others by tfjs's `sum`.
 *
 * The product's right operand is always a fresh buffer (s·δ, not a reshape of δ): tfjs-backend-wasm 4.22 caches
 * a matMul's packed right operand by its buffer, so two products whose right operands are views of one buffer
 * under different shapes return wrong numbers or trap: `matMul(ones([1, 8]), d.reshape([8, 3]))` then
 * `matMul(ones([1, 24]), d.reshape([24, 1]))` for d = 0…23 gave [84, 92, 100] and then 84, not 276 (no property
 * witnesses it: the second product reads out of bounds and can trap, which would take the test worker down).
 */
export function sumToShape(dy: tf.Tensor, shape: readonly number[], sign: 1 | -1, minProductSize = PRODUCT_SUM_MIN_SIZE): tf.Tensor {
  return tf.tidy(() => {
    const axes = tf.backend_util.getReductionAxes(shape as number[], dy.shape);
    if (axes.length === 0) return sign === 1 ? tf.reshape(dy, shape as number[]) : tf.neg(dy).reshape(shape as number[]);
    const k = Math.max(...axes) + 1;
    const leading = dy.dtype === 'float32' && dy.size >= minProductSize && dy.shape.slice(0, k).every((d, i) => d === 1 || axes.includes(i));
    if (!leading) {
      const summed = tf.reshape(tf.sum(dy, axes), shape as number[]);
      return sign === 1 ? summed : tf.neg(summed);
    }
    const m = dy.shape.slice(0, k).reduce((p, q) => p * q, 1);
    const fresh = tf.mul(tf.reshape(dy, [m, dy.size / m]), tf.scalar(sign)); // a new buffer: see above
    return tf.matMul(tf.ones([1, m]), fresh).reshape(shape as number[]);
  });
}

/** The Add gradient: sums over broadcast axes as products with a row of ones where they lead. */
export const addGradConfig: tf.GradConfig = {
  kernelName: tf.Add,
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved) => {
    const [a, b] = saved;
    const d = dy as tf.Tensor;
    return { a: () => sumToShape(d, a.shape, 1), b: () => sumToShape(d, b.shape, 1) };
  },
};

/** The Sub gradient: as {@link addGradConfig}, negated for the subtrahend. */
export const subGradConfig: tf.GradConfig = {
  kernelName: tf.Sub,
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved) => {
    const [a, b] = saved;
    const d = dy as tf.Tensor;
    return { a: () => sumToShape(d, a.shape, 1), b: () => sumToShape(d, b.shape, -1) };
  },
};

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
