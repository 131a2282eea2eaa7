/**
 * The gradient of nearest-neighbour resizing.
 *
 * For an integer up-scaling by (f_h, f_w) without corner alignment, output pixel (i, j) copies input pixel
 * (⌊i/f_h⌋, ⌊j/f_w⌋) (with or without half-pixel centres: ⌊(i + ½)/f⌋ = ⌊i/f⌋ for integer f), so
 *
 * $$\frac{\partial L}{\partial x_{n,p,q,c}} = \sum_{a<f_h,\,b<f_w} \delta_{n,\,f_h p + a,\,f_w q + b,\,c},$$
 *
 * a block sum: reshape δ to [N, H, f_h, W, f_w, C] and sum axes 2 and 4.
 *
 * Why: tfjs 4.22's `ResizeNearestNeighborGrad` is wrong twice: on the cpu backend for batch > 1 (every
 * image after the first gets the wrong sums), and on every backend with `halfPixelCenters` (it sends the
 * gradient to the rows the forward pass would have read without half-pixel centres). Other resizings
 * (corner alignment, non-integer factors, down-scaling) multiply δ by one-hot matrices that record which
 * input row and column each output pixel copied, read off the backend's own forward resize.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';

/** Block-sum the gradient of an integer nearest-neighbour up-scaling. */
export function nearestUpsampleGrad(dy: tf.Tensor4D, fh: number, fw: number): tf.Tensor4D {
  const [n, h, w, c] = dy.shape;
  if (h % fh !== 0 || w % fw !== 0) {
    throw new Error(`nearestUpsampleGrad: dy's ${h}×${w} is not a multiple of the factors ${fh}×${fw}`);
  }
  return tf.tidy(() => tf.sum(dy.reshape([n, h / fh, fh, w / fw, fw, c]), [2, 4]) as tf.Tensor4D);
}

/**
 * Which input row feeds each output row (and likewise for columns), read off the backend's own forward
 * resize of an index ramp, so that the gradient follows exactly the rule the forward pass used. Returned
 * as a one-hot [out, in] matrix.
 */
function sourceMatrix(inSize: number, outSize: number, axis: 'rows' | 'cols', attrs: tf.NamedAttrMap): tf.Tensor2D {
  return tf.tidy(() => {
    const ramp = tf.range(0, inSize, 1, 'float32');
    const image = (axis === 'rows' ? ramp.reshape([1, inSize, 1, 1]) : ramp.reshape([1, 1, inSize, 1])) as tf.Tensor4D;
    const size = (axis === 'rows' ? [outSize, 1] : [1, outSize]) as [number, number];
    const a = attrs as unknown as tf.ResizeNearestNeighborAttrs;
    const src = tf.image.resizeNearestNeighbor(image, size, a.alignCorners, a.halfPixelCenters).reshape([outSize]);
    // one-hot by comparison (tf.oneHot refuses depth 1)
    return tf.cast(tf.equal(src.reshape([outSize, 1]), ramp.reshape([1, inSize])), 'float32') as tf.Tensor2D;
  });
}

/**
 * The gradient of any nearest-neighbour resize as two products with one-hot source matrices:
 * ∂L/∂x[n,p,q,c] = Σ_{i,j} R[i,p] δ[n,i,j,c] K[j,q].
 */
export function nearestResizeGrad(dy: tf.Tensor4D, inHeight: number, inWidth: number, attrs: tf.NamedAttrMap): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, oh, ow, c] = dy.shape;
    const rowsT = tf.transpose(sourceMatrix(inHeight, oh, 'rows', attrs)); // [H, oh]
    const colsT = tf.transpose(sourceMatrix(inWidth, ow, 'cols', attrs)); // [W, ow]
    // rows: [oh, N·ow·C] → [H, N·ow·C]
    const byRow = tf.matMul(rowsT, tf.transpose(dy, [1, 0, 2, 3]).reshape([oh, n * ow * c]));
    const r4 = byRow.reshape([inHeight, n, ow, c]);
    // cols: [ow, H·N·C] → [W, H·N·C]
    const byCol = tf.matMul(colsT, tf.transpose(r4, [2, 0, 1, 3]).reshape([ow, inHeight * n * c]));
    return tf.transpose(byCol.reshape([inWidth, inHeight, n, c]), [2, 1, 0, 3]) as tf.Tensor4D;
  });
}

/** The ResizeNearestNeighbor gradient (see the module documentation). */
export const resizeNearestNeighborGradConfig: tf.GradConfig = {
  kernelName: tf.ResizeNearestNeighbor,
  inputsToSave: ['images'],
  gradFunc: (dy, saved, attrs) => {
    const [images] = saved as [tf.Tensor4D];
    const { alignCorners } = attrs as unknown as tf.ResizeNearestNeighborAttrs;
    const d = dy as tf.Tensor4D;
    const [, h, w] = images.shape;
    const [, oh, ow] = d.shape;
    const integer = !alignCorners && oh % h === 0 && ow % w === 0;
    return {
      images: () => (integer ? nearestUpsampleGrad(d, oh / h, ow / w) : nearestResizeGrad(d, h, w, attrs)),
    };
  },
};
