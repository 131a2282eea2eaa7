/**
 * Single-head self-attention over the positions of a feature map, as in Ho et al.'s `attn_block`.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { attentionFused, fusedAttentionAvailable } from './attentionKernels.ts';

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
  const [n, p, c] = q.shape;
  const scale = 1 / Math.sqrt(c);
  // Where the backend has the fused kernel (wasm: a SIMD module; cpu: JavaScript loops), one kernel forward and
  // one backward instead of the products below: faster at every size measured (docs/unet.md), and far fewer kernels.
  if (fusedAttentionAvailable() && q.dtype === 'float32' && k.dtype === 'float32' && v.dtype === 'float32') return attentionFused(q, k, v, scale);
  return tf.tidy(() => {
    // An explicit transpose: on the wasm backend matMul with transposeB is many times slower.
    if (n > 1 && p * p * c >= 1 << 18 && tf.getBackend() === 'wasm') {
      // tfjs-backend-wasm 4.22 runs a batched (rank-3, batch > 1) matMul in a plain loop at ~2 GFLOP/s, but a
      // single 2-D product through XNNPACK at ~25 GFLOP/s: one product pair per example is 4–10× faster for the
      // CIFAR-10 model's 16×16×256 attention. For small maps (P²·C below 2¹⁸) the extra ops cost more than that.
      const qs = tf.split(q.reshape([n * p, c]), n, 0) as tf.Tensor2D[];
      const kts = tf.split(k.transpose([0, 2, 1]).reshape([n * c, p]), n, 0) as tf.Tensor2D[];
      const vs = tf.split(v.reshape([n * p, c]), n, 0) as tf.Tensor2D[];
      const outs = qs.map((qi, i) => tf.matMul(tf.softmax(tf.matMul(qi, kts[i]).mul(scale)), vs[i]));
      return tf.concat(outs, 0).reshape([n, p, c]) as tf.Tensor3D;
    }
    const logits = tf.matMul(q, k.transpose([0, 2, 1])).mul(scale);
    return tf.matMul(tf.softmax(logits), v) as tf.Tensor3D;
  });
}
