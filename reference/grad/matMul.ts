/**
 * The gradient of a (batched) matrix product with explicit transposes.
 *
 * For C = op_A(A)·op_B(B) (op = identity or transpose of the last two axes) and δ = ∂L/∂C,
 *
 * $$\frac{\partial L}{\partial\, \mathrm{op}_A(A)} = \delta\, \mathrm{op}_B(B)^\top,\qquad
 *   \frac{\partial L}{\partial\, \mathrm{op}_B(B)} = \mathrm{op}_A(A)^\top \delta,$$
 *
 * transposed back when the forward product read A or B transposed, and summed over the batch axes that the
 * product broadcast (tfjs broadcasts batch axes of different sizes, e.g. [B, M, K]·[1, K, N]).
 *
 * Why: tfjs's own gradient calls `matMul` with its transpose flags set, and on the wasm backend a product
 * with a transpose flag is 14–55× slower than transposing first and multiplying plainly. Where our
 * `DdpmConv2DFilterGrad` kernel is registered (wasm, cpu), Aᵀδ of a plain product of matrices (the UNet's 1×1
 * convolutions and dense layers) is that kernel with a 1×1 filter, which reads A in place instead of transposing it.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { filterGradFused, filterGradKernelAvailable } from './filterGradKernel.ts';

/** Swap the last two axes (an explicit, materialised transpose). */
export function transposeLast2(x: tf.Tensor): tf.Tensor {
  const r = x.rank;
  if (r < 2) throw new Error(`transposeLast2: need rank ≥ 2, got shape [${x.shape}]`);
  const perm = [...Array(r - 2).keys(), r - 1, r - 2];
  return tf.transpose(x, perm);
}

/** Plain product of two tensors of rank ≥ 2 with no transpose flags. */
function mm(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.matMul(a, b, false, false);
}

/**
 * Sum a gradient computed with the broadcast batch shape back to the shape of the input it belongs to.
 */
export function unbroadcastBatch(g: tf.Tensor, shape: readonly number[]): tf.Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  return tf.tidy(() => {
    const lead = g.rank - shape.length;
    const axes: number[] = [];
    for (let i = 0; i < g.rank - 2; i++) {
      const own = i - lead;
      if (own < 0 || (shape[own] === 1 && g.shape[i] !== 1)) axes.push(i);
    }
    const summed = axes.length > 0 ? tf.sum(g, axes, true) : g;
    return summed.reshape(shape as number[]);
  });
}

/** The BatchMatMul gradient with explicit transposes (see the module documentation). */
export const batchMatMulGradConfig: tf.GradConfig = {
  kernelName: tf.BatchMatMul,
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved, attrs) => {
    const [a, b] = saved;
    const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
    const opA = (): tf.Tensor => (transposeA ? transposeLast2(a) : a);
    const opB = (): tf.Tensor => (transposeB ? transposeLast2(b) : b);
    const d = dy as tf.Tensor;
    return {
      a: () =>
        tf.tidy(() => {
          const gOpA = mm(d, transposeLast2(opB())); // ∂L/∂op_A(A)
          return unbroadcastBatch(transposeA ? transposeLast2(gOpA) : gOpA, a.shape);
        }),
      b: () =>
        tf.tidy(() => {
          if (!transposeA && !transposeB && a.rank === 2 && d.rank === 2 && b.rank === 2 && filterGradKernelAvailable()) {
            // Aᵀ·δ straight from A [P, K] and δ [P, N]: the filter gradient of a 1×1 convolution over P pixels.
            const [p, k] = a.shape as [number, number];
            const n = d.shape[1] as number;
            const x = a.reshape([1, 1, p, k]) as tf.Tensor4D;
            return filterGradFused(x, d.reshape([1, 1, p, n]) as tf.Tensor4D, { kh: 1, kw: 1, sh: 1, sw: 1, top: 0, left: 0 }).reshape([k, n]);
          }
          const gOpB = mm(transposeLast2(opA()), d); // ∂L/∂op_B(B)
          return unbroadcastBatch(transposeB ? transposeLast2(gOpB) : gOpB, b.shape);
        }),
    };
  },
};
