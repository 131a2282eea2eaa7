/**
 * The nonlinearity of Ho et al.'s UNet.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';

/**
 * Swish (SiLU): $$\mathrm{swish}(x) = x\,\sigma(x) = \frac{x}{1 + e^{-x}}$$ elementwise, any shape.
 */
export function swish<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x)) as T);
}
