/**
 * Single-head scaled dot-product attention as one kernel forward and one backward, for the backends whose
 * memory is a typed array on this thread (wasm: a SIMD WebAssembly module built from `kernels/attention.c`, on
 * the backend's heap; cpu: the same algorithm as JavaScript loops). For each example and query i:
 *
 * $$s_{ij} = \alpha\,\langle q_i, k_j\rangle,\qquad w_{ij} = \operatorname{softmax}_j(s_{ij}),\qquad o_i = \sum_j w_{ij}\,v_j,$$
 *
 * and backward, with w recomputed row by row:
 *
 * $$dw_{ij} = \langle do_i, v_j\rangle,\quad ds_{ij} = w_{ij}\Big(dw_{ij} - \sum_{j'} w_{ij'}\,dw_{ij'}\Big),\quad
 * dq_i = \alpha\sum_j ds_{ij}\,k_j,\quad dk_j = \alpha\sum_i ds_{ij}\,q_i,\quad dv_j = \sum_i w_{ij}\,do_i.$$
 *
 * The composite version in `attention.ts` (matrix products, a transpose, a softmax, and per-example products for
 * large maps) stays the definition and the path of every other backend.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { memoryOf, offsetOf, simdModule, withScratch } from './kernelMemory.ts';

export const ATTENTION = 'DdpmAttention';
export const ATTENTION_GRAD = 'DdpmAttentionGrad';

/** The backends the kernels are registered for. */
export const FUSED_ATTENTION_BACKENDS = ['wasm', 'cpu'] as const;

interface AttentionExports {
  attn_scratch_floats(p: number, c: number): number;
  attn_forward(q: number, k: number, v: number, n: number, p: number, c: number, scale: number, o: number, scratch: number): void;
  attn_backward(dy: number, q: number, k: number, v: number, n: number, p: number, c: number, scale: number, dq: number, dk: number, dv: number, scratch: number): void;
}

const simdOn = simdModule<AttentionExports>(new URL('./kernels/attention.wasm', import.meta.url));

function softmaxRow(q: Float32Array, qi: number, k: Float32Array, ke: number, p: number, c: number, scale: number, w: Float64Array): void {
  let m = -Infinity;
  for (let j = 0; j < p; j++) {
    let s = 0;
    for (let ch = 0; ch < c; ch++) s += q[qi + ch] * k[ke + j * c + ch];
    w[j] = s * scale;
    if (w[j] > m) m = w[j];
  }
  let sum = 0;
  for (let j = 0; j < p; j++) {
    w[j] = Math.exp(w[j] - m);
    sum += w[j];
  }
  for (let j = 0; j < p; j++) w[j] /= sum;
}

/** Forward in JavaScript (the cpu kernel): o = softmax(α q kᵀ) v per example; shapes [N, P, C]. */
export function attentionForward(q: Float32Array, k: Float32Array, v: Float32Array, n: number, p: number, c: number, scale: number, o: Float32Array): void {
  const w = new Float64Array(p);
  const acc = new Float64Array(c);
  for (let e = 0; e < n; e++) {
    const base = e * p * c;
    for (let i = 0; i < p; i++) {
      softmaxRow(q, base + i * c, k, base, p, c, scale, w);
      acc.fill(0);
      for (let j = 0; j < p; j++) for (let ch = 0; ch < c; ch++) acc[ch] += w[j] * v[base + j * c + ch];
      for (let ch = 0; ch < c; ch++) o[base + i * c + ch] = acc[ch];
    }
  }
}

/** Backward in JavaScript (the cpu kernel): dq, dk, dv from dy (see the module doc). */
export function attentionBackward(
  dy: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, n: number, p: number, c: number, scale: number,
  dq: Float32Array, dk: Float32Array, dv: Float32Array,
): void {
  const w = new Float64Array(p);
  const dw = new Float64Array(p);
  const dkAcc = new Float64Array(p * c);
  const dvAcc = new Float64Array(p * c);
  const dqAcc = new Float64Array(c);
  for (let e = 0; e < n; e++) {
    const base = e * p * c;
    dkAcc.fill(0);
    dvAcc.fill(0);
    for (let i = 0; i < p; i++) {
      const qi = base + i * c;
      softmaxRow(q, qi, k, base, p, c, scale, w);
      let dot = 0;
      for (let j = 0; j < p; j++) {
        let s = 0;
        for (let ch = 0; ch < c; ch++) s += dy[qi + ch] * v[base + j * c + ch];
        dw[j] = s;
        dot += w[j] * s;
      }
      dqAcc.fill(0);
      for (let j = 0; j < p; j++) {
        const ds = w[j] * (dw[j] - dot) * scale;
        for (let ch = 0; ch < c; ch++) {
          dqAcc[ch] += ds * k[base + j * c + ch];
          dkAcc[j * c + ch] += ds * q[qi + ch];
          dvAcc[j * c + ch] += w[j] * dy[qi + ch];
        }
      }
      for (let ch = 0; ch < c; ch++) dq[qi + ch] = dqAcc[ch];
    }
    for (let x = 0; x < p * c; x++) {
      dk[base + x] = dkAcc[x];
      dv[base + x] = dvAcc[x];
    }
  }
}

function checkShapes(kernel: string, ...ts: tf.TensorInfo[]): [number, number, number] {
  const s = ts[0].shape;
  if (s.length !== 3 || !ts.every((t) => t.shape.length === 3 && t.shape.every((d, i) => d === s[i]))) {
    throw new Error(`${kernel}: every input must be [N,P,C] with the same shape, got ${ts.map((t) => `[${t.shape.join(',')}]`).join(', ')}`);
  }
  return [s[0], s[1], s[2]];
}

function scaleOf(attrs: unknown): number {
  const scale = Number((attrs as { scale?: unknown }).scale);
  if (!Number.isFinite(scale)) throw new Error(`${ATTENTION}: attribute scale must be a finite number`);
  return scale;
}

function forwardKernel(backendName: string): tf.KernelConfig {
  return {
    kernelName: ATTENTION,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { q, k, v } = inputs as unknown as Record<'q' | 'k' | 'v', tf.TensorInfo>;
      const [n, p, c] = checkShapes(ATTENTION, q, k, v);
      const scale = scaleOf(attrs);
      const simd = simdOn(backend);
      if (simd !== null) {
        const { b, k: m } = simd;
        const o = b.makeOutput([n, p, c], 'float32');
        withScratch(b, m.attn_scratch_floats(p, c), (s) => m.attn_forward(offsetOf(b, q), offsetOf(b, k), offsetOf(b, v), n, p, c, scale, offsetOf(b, o), s));
        return o;
      }
      const mem = memoryOf(backend, ATTENTION);
      const [o] = mem.alloc([[n, p, c]]);
      attentionForward(mem.read(q), mem.read(k), mem.read(v), n, p, c, scale, o.data);
      return o.info;
    },
  };
}

function backwardKernel(backendName: string): tf.KernelConfig {
  return {
    kernelName: ATTENTION_GRAD,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { dy, q, k, v } = inputs as unknown as Record<'dy' | 'q' | 'k' | 'v', tf.TensorInfo>;
      const [n, p, c] = checkShapes(ATTENTION_GRAD, dy, q, k, v);
      const scale = scaleOf(attrs);
      const simd = simdOn(backend);
      if (simd !== null) {
        const { b, k: m } = simd;
        const outs = [0, 1, 2].map(() => b.makeOutput([n, p, c], 'float32'));
        const [dq, dk, dv] = outs.map((o) => offsetOf(b, o));
        withScratch(b, m.attn_scratch_floats(p, c), (s) => m.attn_backward(offsetOf(b, dy), offsetOf(b, q), offsetOf(b, k), offsetOf(b, v), n, p, c, scale, dq, dk, dv, s));
        return outs;
      }
      const mem = memoryOf(backend, ATTENTION_GRAD);
      const [dq, dk, dv] = mem.alloc([[n, p, c], [n, p, c], [n, p, c]]);
      attentionBackward(mem.read(dy), mem.read(q), mem.read(k), mem.read(v), n, p, c, scale, dq.data, dk.data, dv.data);
      return [dq.info, dk.info, dv.info];
    },
  };
}

const gradConfig: tf.GradConfig = {
  kernelName: ATTENTION,
  inputsToSave: ['q', 'k', 'v'],
  gradFunc: (dy, saved, attrs) => {
    const [q, k, v] = saved;
    const [dq, dk, dv] = tf.engine().runKernel(ATTENTION_GRAD, { dy: dy as tf.Tensor, q, k, v }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
    return { q: () => dq, k: () => dk, v: () => dv };
  },
};

let installed = false;

/** Register both kernels for wasm and cpu, and the gradient of the forward one (once per process). */
export function installAttentionKernels(): void {
  if (installed) return;
  for (const b of FUSED_ATTENTION_BACKENDS) {
    if (tf.getKernel(ATTENTION, b) === undefined) tf.registerKernel(forwardKernel(b));
    if (tf.getKernel(ATTENTION_GRAD, b) === undefined) tf.registerKernel(backwardKernel(b));
  }
  tf.registerGradient(gradConfig);
  installed = true;
}

/** Whether the fused attention kernel runs on the active backend. */
export function fusedAttentionAvailable(): boolean {
  installAttentionKernels();
  return tf.getKernel(ATTENTION, tf.getBackend()) !== undefined;
}

/** The fused op, o = softmax(scale · q kᵀ) v per example (the caller checks {@link fusedAttentionAvailable}). */
export function attentionFused(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, scale: number): tf.Tensor3D {
  installAttentionKernels();
  return tf.engine().runKernel(ATTENTION, { q, k, v }, { scale } as unknown as tf.NamedAttrMap) as tf.Tensor3D;
}
