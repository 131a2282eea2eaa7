/**
 * Group normalisation followed (optionally) by the swish, as one kernel forward and one kernel backward, for
 * the backends whose memory is a plain typed array on this thread (wasm and cpu).
 *
 * For an example n and a group g of C/G channels, over its M = H·W·C/G values:
 *
 * $$\mu = \frac1M\sum x,\qquad \sigma^2 = \frac1M\sum (x-\mu)^2,\qquad \hat x = \frac{x-\mu}{\sqrt{\sigma^2+\epsilon}},
 * \qquad z = \gamma_c\,\hat x + \beta_c,\qquad y = z\,\mathrm{sigmoid}(z)\ \text{(or } y = z\text{)}.$$
 *
 * Backward, with r = 1/√(σ²+ε), s = sigmoid(z) and dz = dy·s·(1 + z(1−s)) (dz = dy without the swish):
 *
 * $$\frac{\partial L}{\partial\gamma_c} = \sum_{n,h,w} dz\,\hat x,\qquad \frac{\partial L}{\partial\beta_c} = \sum_{n,h,w} dz,
 * \qquad \frac{\partial L}{\partial x} = r\Big(d\hat x - \overline{d\hat x} - \hat x\,\overline{d\hat x\,\hat x}\Big),\quad d\hat x = \gamma_c\,dz,$$
 *
 * bars being means over the group. The composite version in `norm.ts` (about twenty tfjs kernels forward and
 * forty backward, each with its own overhead) stays the definition and the path of every other backend; these
 * kernels replace it where they are registered. Sums are accumulated in float64 (JavaScript numbers), values
 * stored in float32, so they are at least as accurate as the composite version.
 *
 * Kernels: `DdpmGroupNormSwish` (inputs x [N,H,W,C], gamma [C], beta [C]; attrs groups, eps, swish) and
 * `DdpmGroupNormSwishGrad` (inputs dy, x, gamma, beta; outputs dx, dgamma, dbeta). {@link installGroupNormKernels}
 * registers both for wasm and cpu, and the gradient of the first.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { memoryOf, offsetOf, simdModule, withScratch } from './kernelMemory.ts';

export const GROUP_NORM_SWISH = 'DdpmGroupNormSwish';
export const GROUP_NORM_SWISH_GRAD = 'DdpmGroupNormSwishGrad';

/** Attributes of both kernels. */
export interface GroupNormSwishAttrs {
  groups: number;
  eps: number;
  /** Apply the swish z·sigmoid(z) after the affine map. */
  swish: boolean;
}

/** The backends the kernels are registered for: their tensors are typed arrays readable on this thread. */
export const FUSED_NORM_BACKENDS = ['wasm', 'cpu'] as const;

function checkAttrs(shape: readonly number[], gammaShape: readonly number[], betaShape: readonly number[], a: GroupNormSwishAttrs): void {
  if (shape.length !== 4) throw new Error(`${GROUP_NORM_SWISH}: x must be [N,H,W,C], got [${shape.join(',')}]`);
  const c = shape[3];
  if (!Number.isInteger(a.groups) || a.groups <= 0 || c % a.groups !== 0) throw new Error(`${GROUP_NORM_SWISH}: ${c} channels cannot be split into ${a.groups} groups`);
  if (gammaShape.length !== 1 || gammaShape[0] !== c || betaShape.length !== 1 || betaShape[0] !== c) {
    throw new Error(`${GROUP_NORM_SWISH}: gamma and beta must be [${c}], got [${gammaShape.join(',')}] and [${betaShape.join(',')}]`);
  }
  if (!(a.eps > 0)) throw new Error(`${GROUP_NORM_SWISH}: eps must be positive, got ${a.eps}`);
}

/**
 * Per (example, group): mean and 1/√(σ²+ε), two passes (mean, then centred squares) so that large means do not
 * cancel. Sums run per channel over contiguous memory, then per group. `groupOf[c]` is channel c's group.
 */
function groupStats(x: Float32Array, n: number, p: number, c: number, groups: number, eps: number, groupOf: Int32Array): { mean: Float64Array; rstd: Float64Array } {
  const mean = new Float64Array(n * groups);
  const rstd = new Float64Array(n * groups);
  const m = (p * c) / groups;
  const perChannel = new Float64Array(c);
  const muC = new Float64Array(c);
  const acc = new Float64Array(groups);
  for (let e = 0; e < n; e++) {
    const base = e * p * c;
    const end = base + p * c;
    perChannel.fill(0);
    for (let o = base; o < end; o += c) for (let k = 0; k < c; k++) perChannel[k] += x[o + k];
    acc.fill(0);
    for (let k = 0; k < c; k++) acc[groupOf[k]] += perChannel[k];
    for (let g = 0; g < groups; g++) mean[e * groups + g] = acc[g] / m;
    for (let k = 0; k < c; k++) muC[k] = mean[e * groups + groupOf[k]];
    perChannel.fill(0);
    for (let o = base; o < end; o += c) {
      for (let k = 0; k < c; k++) {
        const d = x[o + k] - muC[k];
        perChannel[k] += d * d;
      }
    }
    acc.fill(0);
    for (let k = 0; k < c; k++) acc[groupOf[k]] += perChannel[k];
    for (let g = 0; g < groups; g++) rstd[e * groups + g] = 1 / Math.sqrt(acc[g] / m + eps);
  }
  return { mean, rstd };
}

function groupIndex(c: number, groups: number): Int32Array {
  const cg = c / groups;
  return Int32Array.from({ length: c }, (_, k) => Math.floor(k / cg));
}

/** Forward: y = [swish](γ·x̂ + β). */
export function groupNormSwishForward(x: Float32Array, shape: readonly number[], gamma: Float32Array, beta: Float32Array, a: GroupNormSwishAttrs, y: Float32Array): void {
  const [n, h, w, c] = shape;
  const p = h * w;
  const groupOf = groupIndex(c, a.groups);
  const { mean, rstd } = groupStats(x, n, p, c, a.groups, a.eps, groupOf);
  const scale = new Float64Array(c);
  const shift = new Float64Array(c);
  for (let e = 0; e < n; e++) {
    for (let k = 0; k < c; k++) {
      const g = e * a.groups + groupOf[k];
      scale[k] = rstd[g] * gamma[k];
      shift[k] = beta[k] - mean[g] * scale[k];
    }
    const base = e * p * c;
    if (a.swish) {
      for (let q = 0; q < p; q++) {
        const o = base + q * c;
        for (let k = 0; k < c; k++) {
          const z = x[o + k] * scale[k] + shift[k];
          y[o + k] = z / (1 + Math.exp(-z));
        }
      }
    } else {
      for (let q = 0; q < p; q++) {
        const o = base + q * c;
        for (let k = 0; k < c; k++) y[o + k] = x[o + k] * scale[k] + shift[k];
      }
    }
  }
}

/** Backward: dx, dγ, dβ from dy (see the module doc). */
export function groupNormSwishBackward(
  dy: Float32Array,
  x: Float32Array,
  shape: readonly number[],
  gamma: Float32Array,
  beta: Float32Array,
  a: GroupNormSwishAttrs,
  dx: Float32Array,
  dgamma: Float32Array,
  dbeta: Float32Array,
): void {
  const [n, h, w, c] = shape;
  const p = h * w;
  const groups = a.groups;
  const m = (p * c) / groups;
  const groupOf = groupIndex(c, groups);
  const { mean, rstd } = groupStats(x, n, p, c, groups, a.eps, groupOf);
  const dg = new Float64Array(c);
  const db = new Float64Array(c);
  const sumD = new Float64Array(groups);
  const sumDX = new Float64Array(groups);
  const mu = new Float64Array(c);
  const r = new Float64Array(c);
  for (let e = 0; e < n; e++) {
    for (let k = 0; k < c; k++) {
      mu[k] = mean[e * groups + groupOf[k]];
      r[k] = rstd[e * groups + groupOf[k]];
    }
    sumD.fill(0);
    sumDX.fill(0);
    const base = e * p * c;
    // Pass 1: dz, the parameter gradients, dx̂ (kept in dx) and its two group sums.
    for (let q = 0; q < p; q++) {
      const o = base + q * c;
      for (let k = 0; k < c; k++) {
        const xh = (x[o + k] - mu[k]) * r[k];
        let dz = dy[o + k];
        if (a.swish) {
          const z = gamma[k] * xh + beta[k];
          const s = 1 / (1 + Math.exp(-z));
          dz *= s * (1 + z * (1 - s));
        }
        dg[k] += dz * xh;
        db[k] += dz;
        const dxh = dz * gamma[k];
        dx[o + k] = dxh;
        const g = groupOf[k];
        sumD[g] += dxh;
        sumDX[g] += dxh * xh;
      }
    }
    for (let g = 0; g < groups; g++) {
      sumD[g] /= m;
      sumDX[g] /= m;
    }
    // Pass 2: dx = r·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)).
    for (let q = 0; q < p; q++) {
      const o = base + q * c;
      for (let k = 0; k < c; k++) {
        const xh = (x[o + k] - mu[k]) * r[k];
        const g = groupOf[k];
        dx[o + k] = r[k] * (dx[o + k] - sumD[g] - xh * sumDX[g]);
      }
    }
  }
  for (let k = 0; k < c; k++) {
    dgamma[k] = dg[k];
    dbeta[k] = db[k];
  }
}

function attrsOf(attrs: unknown): GroupNormSwishAttrs {
  const a = attrs as Partial<GroupNormSwishAttrs>;
  return { groups: Number(a.groups), eps: Number(a.eps), swish: a.swish === true };
}

/** Exports of `kernels/groupnorm.wasm` (built from `kernels/groupnorm.c` by `tools/build-kernels.sh`). */
interface GroupNormExports {
  gn_scratch_doubles(n: number, c: number, groups: number): number;
  gn_forward(x: number, gamma: number, beta: number, n: number, p: number, c: number, groups: number, eps: number, swish: number, y: number, scratch: number): void;
  gn_backward(
    dy: number, x: number, gamma: number, beta: number, n: number, p: number, c: number, groups: number, eps: number, swish: number,
    dx: number, dgamma: number, dbeta: number, scratch: number,
  ): void;
}

const simdOn = simdModule<GroupNormExports>(new URL('./kernels/groupnorm.wasm', import.meta.url));

function forwardKernel(backendName: string): tf.KernelConfig {
  return {
    kernelName: GROUP_NORM_SWISH,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, gamma, beta } = inputs as unknown as { x: tf.TensorInfo; gamma: tf.TensorInfo; beta: tf.TensorInfo };
      const a = attrsOf(attrs);
      checkAttrs(x.shape, gamma.shape, beta.shape, a);
      const simd = simdOn(backend);
      if (simd !== null) {
        const { b, k } = simd;
        const [n, h, w, c] = x.shape;
        const y = b.makeOutput(x.shape.slice(), 'float32');
        withScratch(b, 2 * k.gn_scratch_doubles(n, c, a.groups), (s) =>
          k.gn_forward(offsetOf(b, x), offsetOf(b, gamma), offsetOf(b, beta), n, h * w, c, a.groups, a.eps, a.swish ? 1 : 0, offsetOf(b, y), s),
        );
        return y;
      }
      const mem = memoryOf(backend, GROUP_NORM_SWISH);
      const [y] = mem.alloc([x.shape.slice()]);
      groupNormSwishForward(mem.read(x), x.shape, mem.read(gamma), mem.read(beta), a, y.data);
      return y.info;
    },
  };
}

function backwardKernel(backendName: string): tf.KernelConfig {
  return {
    kernelName: GROUP_NORM_SWISH_GRAD,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { dy, x, gamma, beta } = inputs as unknown as Record<'dy' | 'x' | 'gamma' | 'beta', tf.TensorInfo>;
      const a = attrsOf(attrs);
      checkAttrs(x.shape, gamma.shape, beta.shape, a);
      const simd = simdOn(backend);
      if (simd !== null) {
        const { b, k } = simd;
        const [n, h, w, c] = x.shape;
        const outs = [x.shape.slice(), gamma.shape.slice(), beta.shape.slice()].map((s) => b.makeOutput(s, 'float32'));
        const [dx, dgamma, dbeta] = outs.map((o) => offsetOf(b, o));
        withScratch(b, 2 * k.gn_scratch_doubles(n, c, a.groups), (s) =>
          k.gn_backward(offsetOf(b, dy), offsetOf(b, x), offsetOf(b, gamma), offsetOf(b, beta), n, h * w, c, a.groups, a.eps, a.swish ? 1 : 0, dx, dgamma, dbeta, s),
        );
        return outs;
      }
      const mem = memoryOf(backend, GROUP_NORM_SWISH);
      const [dx, dgamma, dbeta] = mem.alloc([x.shape.slice(), gamma.shape.slice(), beta.shape.slice()]);
      groupNormSwishBackward(mem.read(dy), mem.read(x), x.shape, mem.read(gamma), mem.read(beta), a, dx.data, dgamma.data, dbeta.data);
      return [dx.info, dgamma.info, dbeta.info];
    },
  };
}

const gradConfig: tf.GradConfig = {
  kernelName: GROUP_NORM_SWISH,
  inputsToSave: ['x', 'gamma', 'beta'],
  gradFunc: (dy, saved, attrs) => {
    const [x, gamma, beta] = saved;
    const [dx, dgamma, dbeta] = tf.engine().runKernel(GROUP_NORM_SWISH_GRAD, { dy: dy as tf.Tensor, x, gamma, beta }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
    return { x: () => dx, gamma: () => dgamma, beta: () => dbeta };
  },
};

let installed = false;

/** Register both kernels for wasm and cpu, and the gradient of the forward one (once per process). */
export function installGroupNormKernels(): void {
  if (installed) return;
  for (const b of FUSED_NORM_BACKENDS) {
    if (tf.getKernel(GROUP_NORM_SWISH, b) === undefined) tf.registerKernel(forwardKernel(b));
    if (tf.getKernel(GROUP_NORM_SWISH_GRAD, b) === undefined) tf.registerKernel(backwardKernel(b));
  }
  tf.registerGradient(gradConfig);
  installed = true;
}

/** Whether the fused kernel runs on the active backend. */
export function fusedGroupNormAvailable(): boolean {
  return tf.getKernel(GROUP_NORM_SWISH, tf.getBackend()) !== undefined;
}

/** The fused op (the caller checks {@link fusedGroupNormAvailable}); the caller owns the result. */
export function groupNormSwishFused(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, attrs: GroupNormSwishAttrs): tf.Tensor4D {
  installGroupNormKernels();
  return tf.engine().runKernel(GROUP_NORM_SWISH, { x, gamma, beta }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}
