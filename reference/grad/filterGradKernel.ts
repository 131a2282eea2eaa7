/**
 * The filter gradient of a 2-D convolution as one kernel of our own (`DdpmConv2DFilterGrad`) on the wasm and cpu
 * backends. With the input read as zero outside the image, strides (s_h, s_w) and padding (top, left) before it,
 *
 * $$\frac{\partial L}{\partial w_{a,b,c,o}} = \sum_{n,i,j} x_{n,\,s_h i + a - \mathrm{top},\,s_w j + b - \mathrm{left},\,c}\;\delta_{n,i,j,o},$$
 *
 * for each kernel position (a, b) the product X_abᵀ·Δ over the N·H_out·W_out output pixels, read in place from the
 * NHWC tensors. The same kernel with a 1×1 filter is the gradient Aᵀ·Δ of the weight of a matrix product A·B
 * (A of shape [P, K]), which the UNet's 1×1 convolutions and dense layers are.
 *
 * Why: tfjs-backend-wasm has no filter-gradient kernel; {@link conv2dFilterGrad}'s composite (transpose x and δ, a
 * forward convolution with the batch as the channel axis, transpose back) runs at about 16 GFLOP/s where the
 * forward convolution runs at 37, and its transposes cost as much again; a matrix product's Aᵀ is an explicit
 * transpose of P × K values. On wasm the kernel is C compiled to 128-bit SIMD (`nn/kernels/convgrad.c`: tiles of
 * whole output rows, 4 × 8 channel blocks accumulated in registers); on cpu it is JavaScript loops that accumulate
 * in float64. Every other backend keeps the composite.
 *
 * Attributes: `kh, kw` (filter size), `sh, sw` (strides), `top, left` (padding before the image); the output
 * size is dy's. Inputs `x` [N, H, W, C_in] and `dy` [N, H_out, W_out, C_out], float32; output [k_h, k_w, C_in, C_out].
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { memoryOf, offsetOf, simdModule } from '../nn/kernelMemory.ts';

/** The kernel's name. */
export const CONV2D_FILTER_GRAD = 'DdpmConv2DFilterGrad';

/** The backends it is registered for. */
export const FILTER_GRAD_BACKENDS = ['wasm', 'cpu'] as const;

/** The kernel's attributes: filter size, strides, padding before the image. */
export interface FilterGradAttrs {
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  top: number;
  left: number;
}

interface ConvGradExports {
  conv2d_filter_grad(...args: number[]): void;
}

const simdOn = simdModule<ConvGradExports>(new URL('../nn/kernels/convgrad.wasm', import.meta.url));

function attrsOf(attrs: unknown): FilterGradAttrs {
  const a = attrs as Record<string, unknown>;
  const out = {} as Record<keyof FilterGradAttrs, number>;
  for (const k of ['kh', 'kw', 'sh', 'sw', 'top', 'left'] as const) {
    const v = a[k];
    const min = k === 'top' || k === 'left' ? 0 : 1;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new Error(`${CONV2D_FILTER_GRAD}: attribute ${k} must be an integer ≥ ${min}, got ${String(v)}`);
    out[k] = v;
  }
  return out;
}

function shapesOf(x: tf.TensorInfo, dy: tf.TensorInfo): { x: number[]; dy: number[] } {
  if (x.shape.length !== 4 || dy.shape.length !== 4 || x.dtype !== 'float32' || dy.dtype !== 'float32' || x.shape[0] !== dy.shape[0]) {
    throw new Error(`${CONV2D_FILTER_GRAD}: x and dy must be float32 [N,H,W,C] and [N,H_out,W_out,C_out] with the same N, got ${x.dtype} [${x.shape}] and ${dy.dtype} [${dy.shape}]`);
  }
  return { x: x.shape, dy: dy.shape };
}

/**
 * The JavaScript loops of the cpu backend (and the oracle of the SIMD module's property): every sum in float64,
 * rounded to float32 once.
 */
export function filterGradLoops(x: Float32Array, dy: Float32Array, xShape: readonly number[], dyShape: readonly number[], a: FilterGradAttrs, out: Float32Array): void {
  const [n, h, w, cin] = xShape;
  const [, ho, wo, cout] = dyShape;
  const acc = new Float64Array(a.kh * a.kw * cin * cout);
  for (let e = 0; e < n; e++) {
    for (let i = 0; i < ho; i++) {
      for (let p = 0; p < a.kh; p++) {
        const y = a.sh * i + p - a.top;
        if (y < 0 || y >= h) continue;
        for (let q = 0; q < a.kw; q++) {
          const base = (p * a.kw + q) * cin * cout;
          for (let j = 0; j < wo; j++) {
            const col = a.sw * j + q - a.left;
            if (col < 0 || col >= w) continue;
            const xo = ((e * h + y) * w + col) * cin;
            const dOff = ((e * ho + i) * wo + j) * cout;
            for (let c = 0; c < cin; c++) {
              const xv = x[xo + c];
              const row = base + c * cout;
              for (let o = 0; o < cout; o++) acc[row + o] += xv * dy[dOff + o];
            }
          }
        }
      }
    }
  }
  out.set(acc);
}

function kernel(backendName: (typeof FILTER_GRAD_BACKENDS)[number]): tf.KernelConfig {
  return {
    kernelName: CONV2D_FILTER_GRAD,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, dy } = inputs as unknown as { x: tf.TensorInfo; dy: tf.TensorInfo };
      const s = shapesOf(x, dy);
      const a = attrsOf(attrs);
      const outShape = [a.kh, a.kw, s.x[3], s.dy[3]];
      if (s.x.includes(0) || s.dy.includes(0)) {
        // An empty sum: zeros (a backend's new buffer is not necessarily zeroed).
        const [out] = memoryOf(backend, CONV2D_FILTER_GRAD).alloc([outShape]);
        out.data.fill(0);
        return out.info;
      }
      const simd = simdOn(backend);
      if (simd !== null) {
        const { b, k } = simd;
        const out = b.makeOutput(outShape, 'float32');
        const [n, h, w, cin] = s.x;
        const [, ho, wo, cout] = s.dy;
        k.conv2d_filter_grad(offsetOf(b, x), offsetOf(b, dy), offsetOf(b, out), n, h, w, cin, ho, wo, cout, a.kh, a.kw, a.sh, a.sw, a.top, a.left);
        return out;
      }
      const mem = memoryOf(backend, CONV2D_FILTER_GRAD);
      const [out] = mem.alloc([outShape]);
      filterGradLoops(mem.read(x), mem.read(dy), s.x, s.dy, a, out.data);
      return out.info;
    },
  };
}

let registered = false;

/** Register the kernel for wasm and cpu (once per process; a backend loaded later is picked up by a later call). */
export function installFilterGradKernel(): Array<[string, string]> {
  const done: Array<[string, string]> = [];
  for (const b of FILTER_GRAD_BACKENDS) {
    if (tf.getKernel(CONV2D_FILTER_GRAD, b) === undefined) {
      tf.registerKernel(kernel(b));
      done.push([b, CONV2D_FILTER_GRAD]);
    }
  }
  registered = true;
  return done;
}

/** Whether the kernel runs on the active backend. */
export function filterGradKernelAvailable(): boolean {
  if (!registered) installFilterGradKernel();
  return tf.getKernel(CONV2D_FILTER_GRAD, tf.getBackend()) !== undefined;
}

/**
 * The kernel as an op: ∂L/∂w [k_h, k_w, C_in, C_out] from x and δ (the caller checks
 * {@link filterGradKernelAvailable} and the geometry).
 */
export function filterGradFused(x: tf.Tensor4D, dy: tf.Tensor4D, a: FilterGradAttrs): tf.Tensor4D {
  return tf.engine().runKernel(CONV2D_FILTER_GRAD, { x, dy }, a as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}
