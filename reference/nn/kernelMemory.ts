/**
 * What the reference's own kernels (`groupNormKernels.ts`, `attentionKernels.ts`) need from a backend: float32
 * views of its tensors, new outputs, and on wasm a WebAssembly module of ours instantiated on the backend's own
 * heap.
 *
 * A module built by `tools/build-kernels.sh` imports the tfjs-backend-wasm Memory, so it reads and writes tensors
 * in place, given their byte offsets; it owns no memory there (no static data, no stack: the build refuses a
 * module that would), so every buffer it uses is allocated by the caller through the backend.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import type * as tf from '@tensorflow/tfjs';

/** Float32 views of a backend's tensors and new outputs, without copies where the backend allows it. */
export interface Memory {
  /** A view of an input's values. */
  read(t: tf.TensorInfo): Float32Array;
  /** Allocate outputs, then return them with writable views (views are taken after all allocations). */
  alloc(shapes: number[][]): Array<{ info: tf.TensorInfo; data: Float32Array }>;
}

interface WasmLike {
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
}
interface CpuLike {
  data: { get(id: tf.DataId): { values: unknown } };
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): tf.TensorInfo;
}

/** {@link Memory} for the wasm and cpu backends; `kernel` names the caller in errors. */
export function memoryOf(backend: unknown, kernel: string): Memory {
  const b = backend as Partial<WasmLike & CpuLike>;
  if (typeof b.typedArrayFromHeap === 'function' && typeof b.makeOutput === 'function') {
    const w = b as WasmLike;
    return {
      read: (t) => w.typedArrayFromHeap(t),
      // The heap may grow on each allocation, which detaches earlier views: allocate all, then view.
      alloc: (shapes) => shapes.map((s) => w.makeOutput(s, 'float32')).map((info) => ({ info, data: w.typedArrayFromHeap(info) })),
    };
  }
  if (b.data !== undefined && typeof b.makeTensorInfo === 'function') {
    const c = b as CpuLike;
    return {
      read: (t) => {
        const v = c.data.get(t.dataId).values;
        if (!(v instanceof Float32Array)) throw new Error(`${kernel}: expected float32 values on the cpu backend`);
        return v;
      },
      alloc: (shapes) =>
        shapes.map((s) => {
          const data = new Float32Array(s.reduce((a, d) => a * d, 1));
          return { info: c.makeTensorInfo(s, 'float32', data), data };
        }),
    };
  }
  throw new Error(`${kernel}: this backend keeps no typed arrays on this thread`);
}

/** The wasm backend's internals a module of ours uses: its heap's Memory, tensor offsets, allocation. */
export interface WasmBackendLike {
  wasm: { asm: { memory: WebAssembly.Memory } };
  dataIdMap: { get(id: tf.DataId): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  disposeData(id: tf.DataId): boolean;
}

/**
 * A loader for the WebAssembly module at `url`: given a backend, the module's exports instantiated on that
 * backend's heap (one instance per heap), or null where the backend is not wasm (then the caller's JavaScript
 * loops run).
 */
export function simdModule<E>(url: URL): (backend: unknown) => { b: WasmBackendLike; k: E } | null {
  let module: WebAssembly.Module | null = null;
  const instances = new WeakMap<WebAssembly.Memory, E>();
  return (backend) => {
    const b = backend as Partial<WasmBackendLike>;
    const memory = b.wasm?.asm?.memory;
    if (!(memory instanceof WebAssembly.Memory) || b.dataIdMap === undefined || typeof b.makeOutput !== 'function') return null;
    let k = instances.get(memory);
    if (k === undefined) {
      module ??= new WebAssembly.Module(readFileSync(url));
      k = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as E;
      instances.set(memory, k);
    }
    return { b: b as WasmBackendLike, k };
  };
}

/** Byte offset of a tensor in the wasm heap. */
export function offsetOf(b: WasmBackendLike, t: tf.TensorInfo): number {
  const d = b.dataIdMap.get(t.dataId);
  if (d === undefined) throw new Error('a tensor given to a wasm kernel of the reference is not on the wasm backend');
  return d.memoryOffset;
}

/** Run `f` with the 8-byte-aligned offset of a scratch buffer of `floats` float32 values on the wasm heap, freed afterwards. */
export function withScratch<T>(b: WasmBackendLike, floats: number, f: (offset: number) => T): T {
  const s = b.makeOutput([floats + 2], 'float32');
  try {
    const off = offsetOf(b, s);
    return f(off % 8 === 0 ? off : off + 4);
  } finally {
    b.disposeData(s.dataId);
  }
}
