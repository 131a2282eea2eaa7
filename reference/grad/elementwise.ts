/**
 * The gradient of an elementwise product with broadcasting, without tfjs's casts.
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

/** δ ⊙ other, summed over the axes along which `shape` was broadcast, reshaped to `shape`. */
function productGrad(dy: tf.Tensor, other: tf.Tensor, shape: readonly number[], outShape: readonly number[]): tf.Tensor {
  return tf.tidy(() => {
    const res = tf.mul(dy, other.dtype === 'float32' ? other : tf.cast(other, 'float32'));
    const axes = tf.backend_util.getReductionAxes(shape as number[], outShape as number[]);
    return axes.length > 0 ? tf.reshape(tf.sum(res, axes), shape as number[]) : res;
  });
}

/** The Multiply gradient without same-dtype casts (see the module documentation). */
export const multiplyGradConfig: tf.GradConfig = {
  kernelName: tf.Multiply,
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved) => {
    const [a, b] = saved;
    const d = dy as tf.Tensor;
    const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    return { a: () => productGrad(d, b, a.shape, outShape), b: () => productGrad(d, a, b.shape, outShape) };
  },
};
