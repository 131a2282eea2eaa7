/**
 * Kernels of our own for the wasm (and cpu) backend, where tfjs 4.22's own move memory a training step does not
 * need to move.
 *
 * - **`Identity` and same-dtype `Cast` on wasm share the input's buffer.** tfjs's engine clones every tensor it
 *   saves for the backward pass (the inputs of `Add`, `Multiply`, `Reshape`, …), and tfjs-backend-wasm's
 *   `Identity` and `Cast` copy the whole buffer; the small UNet's training step at batch 8 made about 2 400 such
 *   copies (≈ 35 ms of 470). Tensors are immutable, so a clone may share the buffer with a reference count, as
 *   the cpu and webgl backends' `Identity` and wasm's own `Reshape` already do. A `Cast` to another dtype still
 *   converts (tfjs's kernel).
 * - **`FlipSpatialSwapChannels`** (wasm and cpu): the filter of a convolution's input gradient,
 *
 *   $$\hat w_{a,b,o,c} = w_{k_h-1-a,\;k_w-1-b,\;c,\;o},$$
 *
 *   in one pass instead of 9 slices, a concat, reshapes and a transpose per 3×3 layer (about 470 of the small
 *   UNet's backward kernels). Backends without it (webgpu) keep the composite ({@link flipSpatialSwapChannels}).
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { memoryOf } from '../nn/kernelMemory.ts';

/** The kernel name of {@link flipSpatialSwapChannels}. */
export const FLIP_SPATIAL_SWAP_CHANNELS = 'FlipSpatialSwapChannels';

/** The one method of tfjs-backend-wasm's backend object the sharing kernels use. */
interface RefCounting {
  incRef(dataId: tf.DataId): void;
}

/** out[a, b, o, c] = w[k_h−1−a, k_w−1−b, c, o] over flat row-major arrays. */
function flipSwapInto(w: Float32Array, out: Float32Array, kh: number, kw: number, cin: number, cout: number): void {
  const plane = cin * cout;
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const src = ((kh - 1 - a) * kw + (kw - 1 - b)) * plane;
      const dst = (a * kw + b) * plane;
      for (let c = 0; c < cin; c++) {
        const row = src + c * cout;
        for (let o = 0; o < cout; o++) out[dst + o * cin + c] = w[row + o];
      }
    }
  }
}

function filterShape(fn: string, x: tf.TensorInfo): [number, number, number, number] {
  if (x.shape.length !== 4 || x.dtype !== 'float32') {
    throw new Error(`${fn}: filter must be a float32 [k_h, k_w, C_in, C_out] tensor, got ${x.dtype} [${x.shape}]`);
  }
  return x.shape as [number, number, number, number];
}

/** The flip kernel for a backend whose tensors are typed arrays on this thread (wasm, cpu). */
function flipKernel(backendName: 'wasm' | 'cpu'): tf.KernelConfig {
  return {
    kernelName: FLIP_SPATIAL_SWAP_CHANNELS,
    backendName,
    kernelFunc: ({ inputs, backend }) => {
      const { x } = inputs as { x: tf.TensorInfo };
      const fn = `${FLIP_SPATIAL_SWAP_CHANNELS} (${backendName})`;
      const [kh, kw, cin, cout] = filterShape(fn, x);
      const mem = memoryOf(backend, fn);
      const [out] = mem.alloc([[kh, kw, cout, cin]]); // allocated before the input is viewed: the heap may grow
      flipSwapInto(mem.read(x), out.data, kh, kw, cin, cout);
      return out.info;
    },
  };
}

/**
 * ŵ[a, b, o, c] = w[k_h−1−a, k_w−1−b, c, o]: both spatial axes reversed and the channel axes swapped,
 * [k_h, k_w, C_in, C_out] → [k_h, k_w, C_out, C_in]. One kernel on wasm and cpu (after
 * {@link installKernels}); elsewhere reversed row blocks and a transpose.
 */
export function flipSpatialSwapChannels(filter: tf.Tensor4D): tf.Tensor4D {
  if (filter.rank !== 4) throw new Error(`flipSpatialSwapChannels: filter must be [k_h, k_w, C_in, C_out], got [${filter.shape}]`);
  if (filter.dtype === 'float32' && tf.getKernel(FLIP_SPATIAL_SWAP_CHANNELS, tf.getBackend()) !== undefined) {
    return tf.engine().runKernel(FLIP_SPATIAL_SWAP_CHANNELS, { x: filter }) as tf.Tensor4D;
  }
  const [kh, kw, cin, cout] = filter.shape;
  const k = kh * kw;
  return tf.tidy(() => {
    // Reversing both axes reverses the flattened index a·k_w + b, whose rows of C_in·C_out values are
    // contiguous: slicing the rows and concatenating them in reverse copies memory in blocks (tfjs's `Reverse`
    // and a `gather` of the rows move one element at a time).
    const rows = filter.reshape([k, cin * cout]);
    const flipped = k === 1 ? rows : tf.concat(Array.from({ length: k }, (_, i) => tf.slice(rows, [k - 1 - i, 0], [1, cin * cout])), 0);
    return tf.transpose(flipped.reshape([kh, kw, cin, cout]), [0, 1, 3, 2]) as tf.Tensor4D;
  });
}

/** An `Identity` for wasm that shares the input's buffer (reference-counted, as wasm's own `Reshape`). */
function sharingIdentity(fallback: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype === 'string' || x.dtype === 'complex64') return fallback(args);
    (args.backend as unknown as RefCounting).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}

/** A `Cast` for wasm that shares the buffer when the dtype does not change and converts (tfjs's kernel) otherwise. */
function sharingCast(fallback: tf.KernelFunc): tf.KernelFunc {
  const identity = sharingIdentity(fallback);
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { dtype } = args.attrs as unknown as tf.CastAttrs;
    return dtype === x.dtype ? identity(args) : fallback(args);
  };
}

/** The kernels this module replaced, so that a second call does not wrap them twice. */
const ours = new WeakSet<tf.KernelFunc>();

function replace(kernelName: string, backendName: string, make: (fallback: tf.KernelFunc) => tf.KernelFunc): boolean {
  const current = tf.getKernel(kernelName, backendName);
  if (current === undefined || ours.has(current.kernelFunc)) return false;
  const kernelFunc = make(current.kernelFunc);
  ours.add(kernelFunc);
  tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel({ ...current, kernelFunc });
  return true;
}

/**
 * Register the kernels above; returns the [backend, kernel] pairs registered by this call. Idempotent. The wasm
 * replacements apply only once tfjs-backend-wasm has registered its own kernels (it is imported by
 * `initBackend`), so call this after choosing the backend; calling it again later is harmless.
 */
export function installKernels(): Array<[string, string]> {
  const done: Array<[string, string]> = [];
  for (const k of [flipKernel('wasm'), flipKernel('cpu')]) {
    if (tf.getKernel(k.kernelName, k.backendName) === undefined) {
      tf.registerKernel(k);
      done.push([k.backendName, k.kernelName]);
    }
  }
  if (replace(tf.Identity, 'wasm', sharingIdentity)) done.push(['wasm', tf.Identity]);
  if (replace(tf.Cast, 'wasm', sharingCast)) done.push(['wasm', tf.Cast]);
  return done;
}
