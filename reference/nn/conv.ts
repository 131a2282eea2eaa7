/**
 * Convolutions and resampling in NHWC, with the padding conventions of Ho et al.'s UNet.
 *
 * Kernels are `[kh, kw, in, out]`. A 3×3 convolution with stride 1 pads one pixel on every side
 * (PyTorch `padding=1`, TF `'SAME'`). The strided downsampling pads **only the right and the bottom** by one
 * pixel, then convolves 3×3 with stride 2 (PyTorch port: `F.pad(x, (0,1,0,1))` + `padding=0`; the original
 * TF code: `'SAME'` with stride 2, which pads the same way for even sizes).
 *
 * Upsampling is nearest-neighbour ×2 written as a reshape and a broadcast multiply,
 * `x.reshape([N,H,1,W,1,C]) · 1_{[1,1,2,1,2,1]}`, which is exact and whose gradient (a sum over the 2×2
 * copies) is correct on every backend — unlike `ResizeNearestNeighborGrad` of tfjs-backend-cpu 4.22,
 * which is wrong for batch > 1.
 *
 * On wasm the convolutions run our own SIMD kernel (`convKernel.ts`, installed on first use), which replaces
 * tfjs-backend-wasm's `Conv2D`.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { installConvKernel, ownConvActive } from './convKernel.ts';

function expectRank(fn: string, arg: string, t: tf.Tensor, rank: number): void {
  if (t.rank !== rank) throw new Error(`${fn}: ${arg} must have rank ${rank}, got shape [${t.shape.join(',')}]`);
}

function checkKernel(fn: string, x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D, k?: number): void {
  expectRank(fn, 'x', x, 4);
  expectRank(fn, 'w', w, 4);
  expectRank(fn, 'b', b, 1);
  if (w.shape[2] !== x.shape[3]) {
    throw new Error(`${fn}: kernel [kh,kw,in,out] = [${w.shape.join(',')}] expects ${w.shape[2]} input channels, x [N,H,W,C] = [${x.shape.join(',')}] has ${x.shape[3]}`);
  }
  if (b.shape[0] !== w.shape[3]) throw new Error(`${fn}: bias has ${b.shape[0]} entries, kernel has ${w.shape[3]} output channels`);
  if (k !== undefined && (w.shape[0] !== k || w.shape[1] !== k)) throw new Error(`${fn}: expected a ${k}×${k} kernel, got [${w.shape.join(',')}]`);
}

/**
 * 2-D convolution with a bias, stride 1, zero padding that keeps the size (`⌊k/2⌋` on each side for odd k).
 *
 * @param x - `[N, H, W, C_in]`
 * @param w - `[k, k, C_in, C_out]`, k odd
 * @param b - `[C_out]`
 * @returns `[N, H, W, C_out]`
 */
export function conv2dSame(x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D): tf.Tensor4D {
  checkKernel('conv2dSame', x, w, b);
  installConvKernel();
  if (w.shape[0] % 2 !== 1 || w.shape[0] !== w.shape[1]) throw new Error(`conv2dSame: kernel must be square with odd size, got [${w.shape.join(',')}]`);
  return tf.tidy(() => {
    if (w.shape[0] === 1 && !ownConvActive()) {
      // 1×1: a matrix product over the channel axis (no im2col, no padding). Where our wasm convolution runs, it
      // takes 1×1 filters too: 25–35 % faster than tfjs-backend-wasm's product at the UNets' sizes (46–49 against
      // 34–37 GFLOP/s, e.g. [8,32,32,256]→128 11.0 against 14.8 ms).
      const [n, h, wd, c] = x.shape;
      const y = tf.matMul(x.reshape([n * h * wd, c]), w.reshape([c, w.shape[3]]));
      return y.add(b).reshape([n, h, wd, w.shape[3]]) as tf.Tensor4D;
    }
    return tf.conv2d(x, w, 1, 'same').add(b) as tf.Tensor4D;
  });
}

/**
 * The reference's strided downsampling: pad (0 left, 1 right, 0 top, 1 bottom), then a 3×3 convolution
 * with stride 2. With `w = null`, 2×2 average pooling with stride 2 (`resamp_with_conv = false`).
 *
 * @param x - `[N, H, W, C]` with H and W even
 * @returns `[N, H/2, W/2, C]`
 */
export function downsample(x: tf.Tensor4D, w: tf.Tensor4D | null, b: tf.Tensor1D | null): tf.Tensor4D {
  expectRank('downsample', 'x', x, 4);
  if (x.shape[1] % 2 !== 0 || x.shape[2] % 2 !== 0) throw new Error(`downsample: height and width must be even, got x [${x.shape.join(',')}]`);
  if (w === null || b === null) return tf.tidy(() => tf.avgPool(x, 2, 2, 'valid'));
  checkKernel('downsample', x, w, b, 3);
  installConvKernel();
  return tf.tidy(
    () =>
      tf
        .conv2d(
          x,
          w,
          2,
          [
            [0, 0],
            [0, 1],
            [0, 1],
            [0, 0],
          ],
        )
        .add(b) as tf.Tensor4D,
  );
}

/**
 * Nearest-neighbour upsampling by 2: `y[n, i, j, c] = x[n, ⌊i/2⌋, ⌊j/2⌋, c]`.
 *
 * @param x - `[N, H, W, C]`
 * @returns `[N, 2H, 2W, C]`
 */
export function upsampleNearest2x(x: tf.Tensor4D): tf.Tensor4D {
  expectRank('upsampleNearest2x', 'x', x, 4);
  const [n, h, w, c] = x.shape;
  return tf.tidy(() => x.reshape([n, h, 1, w, 1, c]).mul(tf.ones([1, 1, 2, 1, 2, 1])).reshape([n, 2 * h, 2 * w, c]) as tf.Tensor4D);
}
