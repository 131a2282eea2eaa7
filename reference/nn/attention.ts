/**
 * Single-head self-attention over the positions of a feature map, as in Ho et al.'s `attn_block`.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';

/**
 * Scaled dot-product attention over the P = H·W positions of each example:
 *
 * $$w_{n,i,j} = \operatorname{softmax}_j\Big(\frac{1}{\sqrt C}\sum_c q_{n,i,c}\,k_{n,j,c}\Big),\qquad
 *   h_{n,i,c} = \sum_j w_{n,i,j}\,v_{n,j,c}$$
 *
 * (softmax over the keys j; the scale uses the full channel count C — one head).
 *
 * @param q - queries `[N, P, C]`
 * @param k - keys `[N, P, C]`
 * @param v - values `[N, P, C]`
 * @returns `[N, P, C]`
 */
export function dotProductAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D): tf.Tensor3D {
  if (q.rank !== 3 || k.rank !== 3 || v.rank !== 3 || !q.shape.every((d, i) => d === k.shape[i] && d === v.shape[i])) {
    throw new Error(`dotProductAttention: q, k, v must all be [N,P,C] with the same shape, got [${q.shape.join(',')}], [${k.shape.join(',')}], [${v.shape.join(',')}]`);
  }
  const c = q.shape[2];
  return tf.tidy(() => {
    // An explicit transpose: on the wasm backend matMul with transposeB is many times slower.
    const logits = tf.matMul(q, k.transpose([0, 2, 1])).mul(1 / Math.sqrt(c));
    return tf.matMul(tf.softmax(logits), v) as tf.Tensor3D;
  });
}
