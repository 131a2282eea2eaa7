/**
 * The gradient of a global average pooling (`tf.avgPool(x, [H, W], 1, 'valid')`, which `groupNorm` uses for its
 * per-channel means): each input position receives the output's gradient divided by H·W,
 *
 * $$\frac{\partial L}{\partial x_{n,h,w,c}} = \frac{1}{HW}\,\frac{\partial L}{\partial y_{n,0,0,c}},$$
 *
 * computed as one broadcasting multiply instead of tfjs's `AvgPoolGrad` kernel, which on the wasm backend cost a quarter of a
 * whole training step of the small UNet (117 ms of 458 at batch 8). Any other pooling keeps tfjs's own gradient.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';

/** Whether an `AvgPool` call with these attributes on an input of this shape averages the whole feature map. */
export function isGlobalAvgPool(xShape: readonly number[], attrs: { filterSize: number | [number, number]; strides: number | [number, number]; pad: unknown }): boolean {
  const [fh, fw] = typeof attrs.filterSize === 'number' ? [attrs.filterSize, attrs.filterSize] : attrs.filterSize;
  return xShape.length === 4 && fh === xShape[1] && fw === xShape[2] && attrs.pad === 'valid';
}

/**
 * The `AvgPool` gradient: a broadcast for global pooling, otherwise `fallback` (tfjs's own, taken from the
 * registry when this is built).
 */
export function avgPoolGradConfig(fallback: tf.GradConfig | undefined = tf.getGradient(tf.AvgPool)): tf.GradConfig {
  return {
    kernelName: tf.AvgPool,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved as [tf.Tensor4D];
      const a = attrs as unknown as tf.AvgPoolAttrs;
      if (isGlobalAvgPool(x.shape, a)) {
        const [, h, w] = x.shape;
        // A broadcasting multiply (the operand varies along the channel axis: wasm's fast path), not
        // tf.broadcastTo, whose Tile kernel is slower on wasm than the AvgPoolGrad it replaces.
        return { x: () => tf.mul(tf.onesLike(x), tf.mul(dy as tf.Tensor, 1 / (h * w))) };
      }
      if (fallback?.gradFunc === undefined) throw new Error('AvgPool gradient: only global pooling is implemented here, and tfjs has none registered');
      return fallback.gradFunc(dy, saved, attrs);
    },
  };
}
