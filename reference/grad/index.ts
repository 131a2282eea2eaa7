/**
 * Correct and fast gradients for every operation the UNet uses, on every backend, installed once with
 * {@link installGradients}. Model code then uses plain tfjs ops (`tf.conv2d`, `tf.matMul`,
 * `tf.image.resizeNearestNeighbor`, …) and `tf.grads` / `tf.variableGrads` as usual.
 *
 * | kernel | what tfjs 4.22 does | what is installed |
 * |---|---|---|
 * | `Conv2D` gradient | `Conv2DBackpropFilter` is missing on wasm (throws); cpu's takes ~40 s for one 128-channel layer; wasm's `Conv2DBackpropInput` is ~10× slower than its forward conv | both parts as forward convolutions ({@link conv2dGradConfig}) |
 * | `BatchMatMul` gradient | products with transpose flags, 14–55× slower on wasm | explicit transposes, broadcast batch axes summed ({@link batchMatMulGradConfig}) |
 * | `ResizeNearestNeighbor` gradient | `ResizeNearestNeighborGrad` is wrong on cpu for batch > 1, and on every backend with `halfPixelCenters` | block sum for integer up-scaling, one-hot source matrices from the forward rule otherwise ({@link resizeNearestNeighborGradConfig}) |
 * | `AvgPool` gradient (global pooling, as in `groupNorm`) | `AvgPoolGrad` took a quarter of the small UNet's training step on wasm | a broadcast of dy/(H·W) ({@link avgPoolGradConfig}); other poolings keep tfjs's |
 * | `Conv2DBackpropFilter` kernel on wasm | missing, so `tf.fused.conv2d`'s gradient and direct calls throw | a kernel built from the forward convolution ({@link conv2dFilterGrad}) |
| `Conv2D` on wasm (forward, and the input gradient, which is a convolution) | XNNPACK at 27–35 GFLOP/s | a SIMD kernel of our own, same sums in the same order ({@link installConvKernel}, `reference/nn/convKernel.ts`) |
| the filter gradient itself (conv and `MatMul` Aᵀδ) | (the composite above) a forward convolution at ~16 GFLOP/s plus transposes; Aᵀ an explicit transpose | one kernel on wasm (C, SIMD) and cpu that reads x and δ in place ({@link installFilterGradKernel}) |
 * | `Identity`, same-dtype `Cast` kernels on wasm | copy the buffer; the engine clones every tensor it saves for the backward pass (≈ 2 400 copies in a small-UNet step) | kernels that share the buffer, reference-counted ({@link installKernels}) |
 * | `Add`, `Sub` gradients | a bias's gradient is a `Sum` over the leading axes [0, 1, 2], slow on wasm (14.4 ms at [4, 32, 32, 256]) | two sums, over W of [N·H, W, C] and then over N·H (4.0 ms) ({@link sumToShape}) |
 * | `Multiply` gradient | casts the other factor to float32 (a copy on wasm) even when it is float32 | the same products without the cast ({@link multiplyGradConfig}) |
 * | flipping a filter for the input gradient | 9 slices, a concat and a transpose per 3×3 layer | one kernel on wasm and cpu ({@link flipSpatialSwapChannels}) |
 * | `Concat` gradient along the last axis (the UNet's skip concatenations) | `tf.split`, whose wasm `SplitV` slices the innermost axis one element at a time (92 ms for one [32, 32, 32, 96] split at batch 32) | row segments copied by one kernel on wasm and cpu ({@link concatGradConfig}, {@link splitLastAxis}); other axes and backends keep `tf.split` |
 * | a bias's gradient (`Add`, `Sub`: δ summed over every leading axis) | the two-step `Sum` above, still slow on wasm (a `Sum` over a non-innermost axis transposes first) | one kernel on wasm and cpu, float64 accumulation ({@link sumLeadingAxes}); other backends keep the two steps |
 *
 * Every other op the UNet uses (add, mul, sigmoid, mean, rsqrt, softmax, pad, slice, reshape,
 * transpose, sum) has a correct built-in gradient on every backend; the properties in
 * `properties/training/` check the installed ones against float64 finite differences and against the cpu
 * backend's own kernels, and a whole network's gradient across backends.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { conv2dFilterGrad, conv2dGradConfig, type ConvPad } from './conv2d.ts';
import { avgPoolGradConfig } from './avgPool.ts';
import { batchMatMulGradConfig } from './matMul.ts';
import { resizeNearestNeighborGradConfig } from './resize.ts';
import { installKernels } from './kernels.ts';
import { installFilterGradKernel } from './filterGradKernel.ts';
import { installConvKernel } from '../nn/convKernel.ts';
import { concatGradConfig } from './concat.ts';
import { addGradConfig, multiplyGradConfig, subGradConfig } from './elementwise.ts';

export { conv2dFilterGrad, conv2dFilterGradComposite, conv2dInputGrad, conv2dGradConfig, convGeometry, dilateSpatial, type ConvPad } from './conv2d.ts';
export { avgPoolGradConfig, isGlobalAvgPool } from './avgPool.ts';
export { batchMatMulGradConfig, transposeLast2, unbroadcastBatch } from './matMul.ts';
export { CONV2D_FILTER_GRAD, filterGradFused, filterGradKernelAvailable, filterGradLoops, installFilterGradKernel, type FilterGradAttrs } from './filterGradKernel.ts';
export { FLIP_SPATIAL_SWAP_CHANNELS, flipSpatialSwapChannels, hasKernel, installKernels, SPLIT_LAST_AXIS, splitLastAxis, SUM_LEADING_AXES, sumLeadingAxes } from './kernels.ts';
export { concatGradConfig } from './concat.ts';
export { addGradConfig, multiplyGradConfig, subGradConfig, sumToShape } from './elementwise.ts';
export { nearestResizeGrad, nearestUpsampleGrad, resizeNearestNeighborGradConfig } from './resize.ts';

/** What {@link installGradients} registered. */
export interface InstalledGradients {
  /** Kernels whose gradient function was replaced. */
  gradients: string[];
  /** [backend, kernel] pairs that were missing and were registered. */
  kernels: Array<[string, string]>;
}

let installed: InstalledGradients | null = null;

/** The wasm backend's missing `Conv2DBackpropFilter`, built from its forward convolution. */
const wasmConv2dBackpropFilter: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: ({ inputs, attrs }) => {
    const { x, dy } = inputs as unknown as { x: tf.Tensor4D; dy: tf.Tensor4D };
    const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
    if (dataFormat !== undefined && dataFormat !== 'NHWC') {
      throw new Error(`Conv2DBackpropFilter (wasm): only NHWC is supported, got ${dataFormat}`);
    }
    // A kernel may return a Tensor: the engine passes it on as the output (tensors created inside are
    // freed by the tidy; the returned one is kept).
    return tf.tidy(() => conv2dFilterGrad(x, dy, filterShape, strides, pad as ConvPad, dimRoundingMode)) as unknown as tf.TensorInfo;
  },
};

/**
 * Install the gradients and kernels in the table above, once per process (later calls return the same
 * report, after registering any wasm kernel whose backend was loaded since). Call it before building a model's
 * forward pass with gradients; gradient functions are shared by all backends; the wasm kernels are registered
 * once tfjs-backend-wasm is loaded (`initBackend` loads it), whether or not wasm is the current backend.
 */
export function installGradients(): InstalledGradients {
  if (!installed) {
    const report: InstalledGradients = { gradients: [], kernels: [] };
    for (const g of [conv2dGradConfig, batchMatMulGradConfig, resizeNearestNeighborGradConfig, avgPoolGradConfig(), addGradConfig, subGradConfig, multiplyGradConfig, concatGradConfig]) {
      tf.registerGradient(g); // replaces tfjs's (it warns only in DEBUG mode)
      report.gradients.push(g.kernelName);
    }
    installed = report;
  }
  if (tf.getKernel(tf.Conv2DBackpropFilter, 'wasm') === undefined) {
    tf.registerKernel(wasmConv2dBackpropFilter);
    installed.kernels.push(['wasm', tf.Conv2DBackpropFilter]);
  }
  installed.kernels.push(...installKernels(), ...installFilterGradKernel(), ...installConvKernel());
  return installed;
}

/** Whether {@link installGradients} has run in this process. */
export function gradientsInstalled(): boolean {
  return installed !== null;
}
