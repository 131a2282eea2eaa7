/**
 * The wasm backend's 2-D convolution (`Conv2D`, NHWC, dilation 1, any stride and padding) as a kernel of our own:
 * C compiled to 128-bit SIMD (`kernels/conv.c`), working in place on the tfjs heap like the GroupNorm, attention
 * and filter-gradient kernels. With the input read as zero outside the image, strides (s_h, s_w) and padding
 * (top, left) before it,
 *
 * $$y_{n,i,j,o} = \sum_{a,b,c} x_{n,\,s_h i + a - \mathrm{top},\,s_w j + b - \mathrm{left},\,c}\; w_{a,b,c,o}.$$
 *
 * The filter is packed into blocks of 8 output channels; for every run of 4 neighbouring output pixels the 4 × 8
 * sums are accumulated in registers over all taps and input channels (a tap outside the image reads a row of zeros).
 *
 * Why: tfjs-backend-wasm's convolution (XNNPACK) runs at 27–35 GFLOP/s at the UNets' shapes; this kernel at about
 * the speed of our filter-gradient kernel (same register blocking). {@link installConvKernel} replaces the wasm
 * backend's `Conv2D` with it; a convolution it does not handle (dilation > 1, NCHW, other dtypes) goes to tfjs's.
 * The gradients are unchanged: both parts are convolutions or our filter-gradient kernel (`reference/grad`).
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { offsetOf, simdModule, withScratch } from './kernelMemory.ts';

interface ConvExports {
  conv2d_forward(...args: number[]): void;
  conv2d_scratch_floats(cin: number, cout: number, kh: number, kw: number): number;
}

const simdOn = simdModule<ConvExports>(new URL('./kernels/conv.wasm', import.meta.url));

/** Marks the kernel function installed here, so that a second install does not wrap it twice. */
const ours = new WeakSet<tf.KernelFunc>();

/** Set while {@link withTfjsConv} runs: calls go to tfjs's own kernel. */
let bypass = false;

/**
 * Run `f` with tfjs-backend-wasm's own `Conv2D` (XNNPACK) in place of ours: the oracle of the properties and the
 * other arm of an A/B timing. Returns what `f` returns; a promise keeps tfjs's kernel until it settles.
 */
export function withTfjsConv<T>(f: () => T): T {
  const before = bypass;
  bypass = true;
  let r: T;
  try {
    r = f();
  } catch (e) {
    bypass = before;
    throw e;
  }
  if (r instanceof Promise) {
    return r.finally(() => {
      bypass = before;
    }) as T;
  }
  bypass = before;
  return r;
}

/**
 * Whether our convolution handles a call with these attributes and inputs. An empty input (a zero-size axis, as the
 * input gradient of a strided convolution can produce after cropping) is handled: the output is the padding's
 * zeros. tfjs-backend-wasm's XNNPACK refuses it ("xnn_setup_convolution2d_nhwc_f32 … status 2") and returns the
 * output buffer unwritten.
 */
function handles(x: tf.TensorInfo, filter: tf.TensorInfo, attrs: tf.Conv2DAttrs): boolean {
  const d = attrs.dilations;
  const dil = typeof d === 'number' ? [d, d] : (d ?? [1, 1]);
  return (
    x.dtype === 'float32' &&
    filter.dtype === 'float32' &&
    x.shape.length === 4 &&
    filter.shape.length === 4 &&
    dil[0] === 1 &&
    dil[1] === 1 &&
    (attrs.dataFormat === undefined || attrs.dataFormat === 'NHWC') &&
    x.shape[3] === filter.shape[2]
  );
}

/** The kernel function: ours where it {@link handles} the call, `fallback` (tfjs's) otherwise. */
function simdConv(fallback: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { x, filter } = args.inputs as unknown as { x: tf.TensorInfo; filter: tf.TensorInfo };
    const attrs = args.attrs as unknown as tf.Conv2DAttrs;
    const simd = simdOn(args.backend);
    if (bypass || simd === null || !handles(x, filter, attrs)) return fallback(args);
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      filter.shape as [number, number, number, number],
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
      false,
      'channelsLast',
    );
    const { b, k } = simd;
    const [n, h, w, cin] = x.shape;
    const [kh, kw, , cout] = filter.shape;
    const y = b.makeOutput([n, info.outHeight, info.outWidth, cout], 'float32');
    if (y.shape.every((s) => s > 0)) {
      withScratch(b, k.conv2d_scratch_floats(cin, cout, kh, kw), (s) =>
        k.conv2d_forward(offsetOf(b, x), offsetOf(b, filter), offsetOf(b, y), n, h, w, cin, info.outHeight, info.outWidth, cout, kh, kw, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left, s),
      );
    }
    return y;
  };
}

/** Whether `tf.conv2d` on the active backend runs our kernel (wasm, after {@link installConvKernel}). */
export function ownConvActive(): boolean {
  if (bypass || tf.getBackend() !== 'wasm') return false;
  const k = tf.getKernel(tf.Conv2D, 'wasm');
  return k !== undefined && ours.has(k.kernelFunc);
}

/**
 * Replace the wasm backend's `Conv2D` by {@link simdConv} (idempotent; a no-op until tfjs-backend-wasm has registered
 * its kernels). Returns the [backend, kernel] pairs replaced by this call.
 */
export function installConvKernel(): Array<[string, string]> {
  const current = tf.getKernel(tf.Conv2D, 'wasm');
  if (current === undefined || ours.has(current.kernelFunc)) return [];
  const kernelFunc = simdConv(current.kernelFunc);
  ours.add(kernelFunc);
  tf.unregisterKernel(tf.Conv2D, 'wasm');
  tf.registerKernel({ ...current, kernelFunc });
  return [['wasm', tf.Conv2D]];
}
