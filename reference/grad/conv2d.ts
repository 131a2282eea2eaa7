/**
 * Gradients of a 2-D convolution (NHWC, any stride, `same`, `valid` or explicit padding, dilation 1),
 * written with the forward convolution only, so that every backend computes them with its fastest
 * kernel.
 *
 * Why: the wasm backend has no `Conv2DBackpropFilter` kernel at all, its `Conv2DBackpropInput` is about
 * 10× slower than its forward convolution, and the cpu backend's filter gradient takes tens of seconds
 * for one 128-channel layer. A forward convolution (XNNPACK on wasm) computes both gradients:
 *
 * With the input zero-padded by (top, left) into x̃ and y = conv(x, w) with strides (s_h, s_w),
 *
 * $$y_{n,i,j,o} = \sum_{a,b,c} \tilde x_{n,\,s_h i + a,\,s_w j + b,\,c}\; w_{a,b,c,o}.$$
 *
 * **Filter gradient.** $$\frac{\partial L}{\partial w_{a,b,c,o}} = \sum_{n,i,j} \tilde x_{n,\,s_h i+a,\,s_w j+b,\,c}\;
 * \delta_{n,i,j,o}$$ (δ = ∂L/∂y) is a convolution in which the batch axis plays the part of the input
 * channels: x̃ transposed to [C_in, H̃, W̃, N] is the "image", δ transposed to [H_out, W_out, N, C_out] is the
 * "filter", with dilation (s_h, s_w) and no padding; the first k_h × k_w outputs, transposed back to
 * [k_h, k_w, C_in, C_out], are the gradient. Where our `DdpmConv2DFilterGrad` kernel is registered (wasm, cpu:
 * `filterGradKernel.ts`) it computes the same sum directly from x and δ instead.
 *
 * **Input gradient.** $$\frac{\partial L}{\partial \tilde x_{n,p,q,c}} = \sum_{a,b,o}
 * \hat\delta_{n,\,p-a,\,q-b,\,o}\; w_{a,b,c,o}$$ where δ̂ is δ with s − 1 zeros inserted between
 * neighbours (δ̂_{s i} = δ_i). That is a stride-1 convolution of δ̂ with the spatially flipped kernel whose
 * channel axes are swapped, padded by k − 1 − top before; the rows of x̃ that are padding are dropped.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { flipSpatialSwapChannels } from './kernels.ts';
import { filterGradFused, filterGradKernelAvailable } from './filterGradKernel.ts';

/** Padding as tfjs accepts it for conv2d. */
export type ConvPad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];

/** The geometry of one convolution: output size and the padding actually applied. */
export interface ConvGeometry {
  outHeight: number;
  outWidth: number;
  top: number;
  bottom: number;
  left: number;
  right: number;
  strideHeight: number;
  strideWidth: number;
  filterHeight: number;
  filterWidth: number;
}

/** tfjs's own reading of (input shape, filter shape, strides, pad), so that gradient and forward agree. */
export function convGeometry(
  xShape: readonly number[],
  filterShape: readonly number[],
  strides: number | [number, number],
  pad: ConvPad,
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): ConvGeometry {
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    1,
    pad as 'same',
    dimRoundingMode,
    false,
    'channelsLast',
  );
  return {
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    top: info.padInfo.top,
    bottom: info.padInfo.bottom,
    left: info.padInfo.left,
    right: info.padInfo.right,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
  };
}

/** Explicit convolution padding, as tfjs's conv2d accepts it (NHWC: the middle two pairs are used). */
type ExplicitPad = [[number, number], [number, number], [number, number], [number, number]];

/**
 * Crop (negative amounts) the two spatial axes of an NHWC tensor and return the remaining (positive) amounts as
 * a convolution's explicit padding, so that no padded copy is made. `before`/`after` are [height, width].
 */
function cropForConv(x: tf.Tensor4D, before: [number, number], after: [number, number]): { x: tf.Tensor4D; pad: ExplicitPad } {
  const [n, h, w, c] = x.shape;
  const cropB = [Math.max(0, -before[0]), Math.max(0, -before[1])];
  const cropA = [Math.max(0, -after[0]), Math.max(0, -after[1])];
  const cropped = cropB[0] + cropB[1] + cropA[0] + cropA[1] > 0 ? tf.slice(x, [0, cropB[0], cropB[1], 0], [n, h - cropB[0] - cropA[0], w - cropB[1] - cropA[1], c]) : x;
  const pad: ExplicitPad = [[0, 0], [Math.max(0, before[0]), Math.max(0, after[0])], [Math.max(0, before[1]), Math.max(0, after[1])], [0, 0]];
  return { x: cropped, pad };
}

function checkNhwc(fn: string, name: string, t: tf.Tensor): asserts t is tf.Tensor4D {
  if (t.rank !== 4) throw new Error(`${fn}: ${name} must be a rank-4 NHWC tensor, got shape [${t.shape}]`);
}

/**
 * ∂L/∂w of `tf.conv2d(x, w, strides, pad)` given δ = ∂L/∂y, computed as a forward convolution.
 *
 * @param x - the convolution's input, [N, H, W, C_in]
 * @param dy - δ, [N, H_out, W_out, C_out]
 * @param filterShape - [k_h, k_w, C_in, C_out]
 * @returns [k_h, k_w, C_in, C_out]
 */
export function conv2dFilterGrad(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: readonly [number, number, number, number],
  strides: number | [number, number],
  pad: ConvPad,
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.Tensor4D {
  checkNhwc('conv2dFilterGrad', 'x', x);
  checkNhwc('conv2dFilterGrad', 'dy', dy);
  const g = convGeometry(x.shape, filterShape, strides, pad, dimRoundingMode);
  const [kh, kw, , cout] = filterShape;
  const [n] = x.shape;
  if (dy.shape[0] !== n || dy.shape[1] !== g.outHeight || dy.shape[2] !== g.outWidth || dy.shape[3] !== cout) {
    throw new Error(`conv2dFilterGrad: dy must have shape [${n},${g.outHeight},${g.outWidth},${cout}], got [${dy.shape}]`);
  }
  if (filterGradKernelAvailable()) return filterGradFused(x, dy, { kh, kw, sh: g.strideHeight, sw: g.strideWidth, top: g.top, left: g.left });
  return conv2dFilterGradComposite(x, dy, g, filterShape);
}

/** {@link conv2dFilterGrad} as a forward convolution (the path of backends without the kernel; arguments checked). */
export function conv2dFilterGradComposite(x: tf.Tensor4D, dy: tf.Tensor4D, g: ConvGeometry, filterShape: readonly [number, number, number, number]): tf.Tensor4D {
  const [kh, kw, cin, cout] = filterShape;
  const [, h, w] = x.shape;
  return tf.tidy(() => {
    // Rows of x̃ the forward pass reads: 0 … s(H_out − 1) + k − 1; more padding than that is never read.
    const needH = g.strideHeight * (g.outHeight - 1) + kh;
    const needW = g.strideWidth * (g.outWidth - 1) + kw;
    const { x: xc, pad: xPad } = cropForConv(x, [g.top, g.left], [needH - h - g.top, needW - w - g.left]);
    const image = tf.transpose(xc, [3, 1, 2, 0]); // [C_in, H, W, N], padded to x̃ by the convolution
    const kernel = tf.transpose(dy, [1, 2, 0, 3]); // [H_out, W_out, N, C_out]
    const out = tf.conv2d(image, kernel, 1, xPad, 'NHWC', [g.strideHeight, g.strideWidth]); // [C_in, k_h, k_w, C_out]
    if (out.shape[1] !== kh || out.shape[2] !== kw) {
      throw new Error(`conv2dFilterGrad: internal geometry error, got [${out.shape}] for a ${kh}×${kw} kernel`);
    }
    return tf.transpose(out, [1, 2, 0, 3]).reshape([kh, kw, cin, cout]) as tf.Tensor4D;
  });
}

/**
 * Insert s − 1 zeros between neighbouring rows and columns of an NHWC tensor:
 * [N, H, W, C] → [N, s_h(H − 1) + 1, s_w(W − 1) + 1, C].
 */
export function dilateSpatial(x: tf.Tensor4D, sh: number, sw: number): tf.Tensor4D {
  if (sh === 1 && sw === 1) return x.clone();
  // Rank-4 reshapes and pads only: the webgpu backend's pad shader cannot index rank-6 tensors.
  return tf.tidy((): tf.Tensor4D => {
    const [n, h, w, c] = x.shape;
    let y: tf.Tensor4D = x;
    if (sh > 1) {
      const rows = tf.pad(y.reshape([n, h, 1, w * c]), [[0, 0], [0, 0], [0, sh - 1], [0, 0]]).reshape([n, h * sh, w, c]) as tf.Tensor4D;
      y = tf.slice(rows, [0, 0, 0, 0], [n, sh * (h - 1) + 1, w, c]);
    }
    if (sw > 1) {
      const hh = y.shape[1];
      const cols = tf.pad(y.reshape([n * hh, w, 1, c]), [[0, 0], [0, 0], [0, sw - 1], [0, 0]]).reshape([n, hh, w * sw, c]) as tf.Tensor4D;
      y = tf.slice(cols, [0, 0, 0, 0], [n, hh, sw * (w - 1) + 1, c]);
    }
    return y;
  });
}

/**
 * ∂L/∂x of `tf.conv2d(x, w, strides, pad)` given δ = ∂L/∂y, computed as a forward convolution.
 *
 * @param xShape - [N, H, W, C_in]
 * @param dy - δ, [N, H_out, W_out, C_out]
 * @param filter - w, [k_h, k_w, C_in, C_out]
 * @returns [N, H, W, C_in]
 */
export function conv2dInputGrad(
  xShape: readonly [number, number, number, number],
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  strides: number | [number, number],
  pad: ConvPad,
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.Tensor4D {
  checkNhwc('conv2dInputGrad', 'dy', dy);
  checkNhwc('conv2dInputGrad', 'filter', filter);
  const g = convGeometry(xShape, filter.shape, strides, pad, dimRoundingMode);
  const [n, h, w] = xShape;
  const [kh, kw, , cout] = filter.shape;
  if (dy.shape[0] !== n || dy.shape[1] !== g.outHeight || dy.shape[2] !== g.outWidth || dy.shape[3] !== cout) {
    throw new Error(`conv2dInputGrad: dy must have shape [${n},${g.outHeight},${g.outWidth},${cout}], got [${dy.shape}]`);
  }
  return tf.tidy(() => {
    const spread = g.strideHeight === 1 && g.strideWidth === 1 ? dy : dilateSpatial(dy, g.strideHeight, g.strideWidth); // δ̂, length L = s(H_out − 1) + 1
    const lh = spread.shape[1];
    const lw = spread.shape[2];
    // dx[h] = Σ_a' P[h + a'] · w_flip[a'] with P = δ̂ padded by k − 1 − top before and H + top − L after.
    const { x: p, pad } = cropForConv(spread, [kh - 1 - g.top, kw - 1 - g.left], [h + g.top - lh, w + g.left - lw]);
    return tf.conv2d(p, flipSpatialSwapChannels(filter), 1, pad); // filter [k_h, k_w, C_out, C_in]
  });
}

/**
 * The Conv2D gradient: both parts as forward convolutions (see the module documentation). Registered by
 * {@link installGradients}; dilated convolutions keep tfjs's own error.
 */
export const conv2dGradConfig: tf.GradConfig = {
  kernelName: tf.Conv2D,
  inputsToSave: ['x', 'filter'],
  gradFunc: (dy, saved, attrs) => {
    const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
    const { dilations, strides, pad, dataFormat, dimRoundingMode } = attrs as unknown as tf.Conv2DAttrs;
    const d = typeof dilations === 'number' ? [dilations, dilations] : (dilations ?? [1, 1]);
    if (d[0] !== 1 || d[1] !== 1) {
      throw new Error(`conv2d gradient: dilation rates greater than 1 are not supported, got [${d}]`);
    }
    if (dataFormat !== undefined && dataFormat !== 'NHWC') {
      throw new Error(`conv2d gradient: only NHWC is supported, got ${dataFormat}`);
    }
    const p = pad as ConvPad;
    return {
      x: () => conv2dInputGrad(x.shape, dy as tf.Tensor4D, filter, strides, p, dimRoundingMode),
      filter: () => conv2dFilterGrad(x, dy as tf.Tensor4D, filter.shape, strides, p, dimRoundingMode),
    };
  },
};
