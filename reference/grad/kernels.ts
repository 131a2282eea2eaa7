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
 * - **`SplitLastAxis`** (wasm and cpu): x of shape [..., C] cut along its last axis into pieces of C₀, C₁, …
 *   channels (ΣCᵢ = C),
 *
 *   $$y^{(i)}_{r,\,j} = x_{r,\;o_i + j},\qquad o_i = \textstyle\sum_{k<i} C_k,\quad 0 \le j < C_i,$$
 *
 *   over the rows r of x viewed as [R, C]: the gradient of the UNet's channel concatenations
 *   ({@link splitLastAxis}). tfjs-backend-wasm's `SplitV` slices along the innermost axis one element at a time
 *   (84.7 ms for one [32, 32, 32, 96] split in a Fashion-MNIST step at batch 32); copying row segments takes a few.
 * - **`SumLeadingAxes`** (wasm and cpu): a bias's gradient, δ of shape [..., C] summed over every leading axis,
 *
 *   $$s_c = \operatorname{fl}_{32}\Big(\sum_{r} \delta_{r,c}\Big),$$
 *
 *   accumulated per channel in float64 (a Float64Array; rows four at a time, added pairwise) and rounded to
 *   float32 once, so the result is the correctly rounded sum up to a relative 10⁻¹¹ of Σ|δ| ({@link sumLeadingAxes}).
 *   tfjs-backend-wasm's `Sum` over a non-innermost axis transposes δ first.
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

/** The kernel name of {@link splitLastAxis}. */
export const SPLIT_LAST_AXIS = 'SplitLastAxis';

/** The kernel name of {@link sumLeadingAxes}. */
export const SUM_LEADING_AXES = 'SumLeadingAxes';

/** Row segments of x viewed as [rows, C] copied into pieces of `sizes[i]` channels each. */
function splitRowsInto(x: Float32Array, outs: Float32Array[], sizes: readonly number[], rows: number, c: number): void {
  let offset = 0;
  for (let i = 0; i < sizes.length; i++) {
    const s = sizes[i];
    const out = outs[i];
    if (s >= 128) {
      // long segments: a memcpy each (below ~128 values the subarray views cost about what they save, and they
      // are garbage: a [32, 32, 32, 96] split would make 65 536 of them)
      for (let r = 0, src = offset, dst = 0; r < rows; r++, src += c, dst += s) out.set(x.subarray(src, src + s), dst);
    } else {
      for (let r = 0, src = offset, dst = 0; r < rows; r++, src += c, dst += s) {
        for (let j = 0; j < s; j++) out[dst + j] = x[src + j];
      }
    }
    offset += s;
  }
}

/**
 * Per-channel sums of x viewed as [rows, C] in float64: rows taken four at a time, added pairwise, then to the
 * channel's accumulator (2.5× fewer accumulator loads and stores than one row at a time), rounded once at the end.
 */
function sumRowsInto(x: Float32Array, out: Float32Array, rows: number, c: number): void {
  const acc = new Float64Array(c);
  let r = 0;
  let base = 0;
  for (const c2 = 2 * c, c3 = 3 * c, c4 = 4 * c; r + 4 <= rows; r += 4, base += c4) {
    for (let j = 0; j < c; j++) {
      const i = base + j;
      acc[j] += x[i] + x[i + c] + (x[i + c2] + x[i + c3]);
    }
  }
  for (; r < rows; r++, base += c) {
    for (let j = 0; j < c; j++) acc[j] += x[base + j];
  }
  out.set(acc);
}

function splitSizes(fn: string, x: tf.TensorInfo, attrs: unknown): number[] {
  const sizes = (attrs as { sizes?: unknown }).sizes;
  const c = x.shape[x.shape.length - 1];
  if (
    !Array.isArray(sizes) ||
    sizes.length === 0 ||
    !sizes.every((s) => Number.isInteger(s) && s >= 1) ||
    sizes.reduce((a: number, b: number) => a + b, 0) !== c
  ) {
    throw new Error(`${fn}: attrs.sizes must be positive integers summing to the last axis of x (${c}), got ${JSON.stringify(sizes)}`);
  }
  return sizes as number[];
}

function lastAxisInput(fn: string, x: tf.TensorInfo): [number, number] {
  if (x.shape.length === 0 || x.dtype !== 'float32') throw new Error(`${fn}: x must be a float32 tensor of rank ≥ 1, got ${x.dtype} [${x.shape}]`);
  const c = x.shape[x.shape.length - 1];
  const rows = x.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  return [rows, c];
}

/** The split kernel (several outputs) for a backend whose tensors are typed arrays on this thread. */
function splitKernel(backendName: 'wasm' | 'cpu'): tf.KernelConfig {
  return {
    kernelName: SPLIT_LAST_AXIS,
    backendName,
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { x } = inputs as { x: tf.TensorInfo };
      const fn = `${SPLIT_LAST_AXIS} (${backendName})`;
      const [rows, c] = lastAxisInput(fn, x);
      const sizes = splitSizes(fn, x, attrs);
      const lead = x.shape.slice(0, -1);
      const mem = memoryOf(backend, fn);
      const outs = mem.alloc(sizes.map((s) => [...lead, s])); // before the input is viewed: the heap may grow
      splitRowsInto(mem.read(x), outs.map((o) => o.data), sizes, rows, c);
      return outs.map((o) => o.info);
    },
  };
}

/** The bias-sum kernel for a backend whose tensors are typed arrays on this thread. */
function sumKernel(backendName: 'wasm' | 'cpu'): tf.KernelConfig {
  return {
    kernelName: SUM_LEADING_AXES,
    backendName,
    kernelFunc: ({ inputs, backend }) => {
      const { x } = inputs as { x: tf.TensorInfo };
      const fn = `${SUM_LEADING_AXES} (${backendName})`;
      const [rows, c] = lastAxisInput(fn, x);
      const mem = memoryOf(backend, fn);
      const [out] = mem.alloc([[c]]);
      sumRowsInto(mem.read(x), out.data, rows, c);
      return out.info;
    },
  };
}

/** Whether the current backend has the kernel `name` (registered by {@link installKernels}). */
export function hasKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

/**
 * x cut along its last axis into pieces of `sizes[i]` channels (Σ sizes = the last axis, each ≥ 1): one kernel on
 * wasm and cpu (after {@link installKernels}), `tf.split` elsewhere. Not differentiable itself (it is the
 * gradient of a concatenation).
 */
export function splitLastAxis(x: tf.Tensor, sizes: readonly number[]): tf.Tensor[] {
  if (x.rank === 0) throw new Error('splitLastAxis: x must have rank ≥ 1, got a scalar');
  const c = x.shape[x.rank - 1];
  if (sizes.length === 0 || !sizes.every((s) => Number.isInteger(s) && s >= 1) || sizes.reduce((a, b) => a + b, 0) !== c) {
    throw new Error(`splitLastAxis: sizes must be positive integers summing to the last axis of x (${c}), got [${sizes.join(', ')}]`);
  }
  if (x.dtype === 'float32' && hasKernel(SPLIT_LAST_AXIS)) {
    const out = tf.engine().runKernel(SPLIT_LAST_AXIS, { x }, { sizes: [...sizes] } as unknown as tf.NamedAttrMap);
    return Array.isArray(out) ? (out as tf.Tensor[]) : [out as tf.Tensor];
  }
  return tf.split(x, [...sizes], x.rank - 1);
}

/**
 * δ of shape [..., C] summed over every leading axis to [C]: one kernel on wasm and cpu (after
 * {@link installKernels}, float64 accumulation), tfjs's `sum` over [R, C] elsewhere.
 */
export function sumLeadingAxes(x: tf.Tensor): tf.Tensor1D {
  if (x.rank === 0) throw new Error('sumLeadingAxes: x must have rank ≥ 1, got a scalar');
  const c = x.shape[x.rank - 1];
  if (x.dtype === 'float32' && hasKernel(SUM_LEADING_AXES)) return tf.engine().runKernel(SUM_LEADING_AXES, { x }) as tf.Tensor1D;
  return tf.tidy(() => tf.sum(tf.reshape(x, [-1, c]), 0) as tf.Tensor1D);
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
  for (const k of [flipKernel('wasm'), flipKernel('cpu'), splitKernel('wasm'), splitKernel('cpu'), sumKernel('wasm'), sumKernel('cpu')]) {
    if (tf.getKernel(k.kernelName, k.backendName) === undefined) {
      tf.registerKernel(k);
      done.push([k.backendName, k.kernelName]);
    }
  }
  if (replace(tf.Identity, 'wasm', sharingIdentity)) done.push(['wasm', tf.Identity]);
  if (replace(tf.Cast, 'wasm', sharingCast)) done.push(['wasm', tf.Cast]);
  return done;
}
