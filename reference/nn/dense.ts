/**
 * Fully connected layer.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';

/**
 * $$y = x W + b$$
 *
 * @param x - `[N, in]`
 * @param w - `[in, out]` (the transpose of PyTorch's `Linear.weight`)
 * @param b - `[out]`
 * @returns `[N, out]`
 */
export function dense(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  if (x.rank !== 2 || w.rank !== 2 || b.rank !== 1) {
    throw new Error(`dense: expected x [N,in], w [in,out], b [out], got [${x.shape.join(',')}], [${w.shape.join(',')}], [${b.shape.join(',')}]`);
  }
  if (x.shape[1] !== w.shape[0]) throw new Error(`dense: x has ${x.shape[1]} features, w [in,out] = [${w.shape.join(',')}] expects ${w.shape[0]}`);
  if (b.shape[0] !== w.shape[1]) throw new Error(`dense: bias has ${b.shape[0]} entries, w has ${w.shape[1]} outputs`);
  return tf.tidy(() => tf.matMul(x, w).add(b) as tf.Tensor2D);
}
