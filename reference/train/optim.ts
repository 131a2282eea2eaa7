/**
 * One optimiser update of the training recipe: global-norm gradient clipping, Adam with a linear warm-up of
 * the learning rate, and an exponential moving average (EMA) of the weights.
 *
 * For update k = 1, 2, … with gradients g (all parameters together):
 *
 * $$\|g\| = \sqrt{\textstyle\sum_i \|g_i\|^2},\qquad \hat g = g\cdot\frac{c}{\max(\|g\|, c)}\quad\text{(clipping at } c\text{)}$$
 * $$m \leftarrow \beta_1 m + (1-\beta_1)\hat g,\qquad v \leftarrow \beta_2 v + (1-\beta_2)\hat g^2$$
 * $$\eta_k = \eta\,\min(1, k/W),\qquad
 *   \theta \leftarrow \theta - \eta_k\,\frac{m/(1-\beta_1^k)}{\sqrt{v/(1-\beta_2^k)} + \epsilon}$$
 * $$\bar\theta \leftarrow d\,\bar\theta + (1-d)\,\theta$$
 *
 * This is PyTorch's `Adam` (ε added to the bias-corrected √v̂) and TensorFlow's `clip_by_global_norm`; Ho et al.
 * warm up with lr·min(1, step/W) on the 0-based global step, which makes their first update a no-op; here the
 * k-th update uses k/W. The EMA starts at the initial weights and is updated after every step, as
 * `tf.train.ExponentialMovingAverage(0.9999)` without `num_updates`.
 *
 * **Flat buffers.** m, v and the EMA are three flat float32 `tf.Variable`s, every parameter's values
 * concatenated in the model's name order (row-major; a {@link FlatLayout} says where each name lives), so one
 * update is one pass over flat memory instead of ~17 small kernels per parameter tensor. On the wasm and cpu
 * backends the whole update is one kernel of our own ({@link FLAT_ADAM_KERNEL}: a JavaScript loop over the
 * backend's memory), and the global norm another ({@link GLOBAL_NORM_KERNEL}); other backends (webgpu) run the
 * same formulas as a dozen tfjs ops over the flat buffer ({@link OptimImpl} `'ops'`).
 *
 * **Rounding.** Every stored number (θ, m, v, EMA, ‖g‖) is float32, as before. The fused kernel evaluates each
 * line of the formulas above in float64 from the float32 operands and rounds once when it stores m, v, θ and the
 * EMA (θ's update uses the stored, rounded m and v; the EMA uses the stored θ); ‖g‖ is a float64 sum of squares
 * rounded once; the clipping factor and the learning rate are float64. The per-tensor tfjs version this replaced
 * rounded after every operation, so the two differ by float32 rounding (a few ulp of θ per step), never by
 * formula. The `'ops'` version rounds after every operation, like the old one. Either way a run is a
 * deterministic function of its seed and backend, and the state is exactly what a checkpoint stores, so a
 * resumed run continues bit for bit.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { memoryOf } from '../nn/kernelMemory.ts';
import type { OptimConfig } from './config.ts';

/** Where each named parameter lives in the flat buffers: concatenated in name order, row-major. */
export interface FlatLayout {
  readonly names: readonly string[];
  readonly shapes: ReadonlyArray<readonly number[]>;
  /** Start of names[i] in the flat buffer. */
  readonly offsets: readonly number[];
  readonly sizes: readonly number[];
  /** Number of values in all parameters together. */
  readonly total: number;
}

/** The layout of `names` (in this order) with the shapes of `params`. */
export function flatLayout(names: readonly string[], params: ReadonlyMap<string, { shape: number[] }>): FlatLayout {
  const shapes: number[][] = [];
  const offsets: number[] = [];
  const sizes: number[] = [];
  let total = 0;
  for (const n of names) {
    const p = params.get(n);
    if (p === undefined) throw new Error(`flatLayout: no parameter named ${n}`);
    const size = p.shape.reduce((a, b) => a * b, 1);
    shapes.push([...p.shape]);
    offsets.push(total);
    sizes.push(size);
    total += size;
  }
  return { names: [...names], shapes, offsets, sizes, total };
}

/** Adam moments and EMA weights as flat float32 buffers in {@link FlatLayout} order, and the number of updates done. */
export interface OptimState {
  layout: FlatLayout;
  m: tf.Variable<tf.Rank.R1>;
  v: tf.Variable<tf.Rank.R1>;
  ema: tf.Variable<tf.Rank.R1>;
  /** Updates done so far (k of the last update). */
  updates: number;
}

/** The three flat buffers of an {@link OptimState}, named as in checkpoints (`adam_m`, `adam_v`, `ema`). */
export type OptimBuffer = 'm' | 'v' | 'ema';

/** A non-trainable variable holding `t`'s values; `t` is disposed (the variable keeps the data). */
export function ownedVariable(t: tf.Tensor, trainable = false): tf.Variable {
  const v = tf.variable(t, trainable);
  t.dispose();
  return v;
}

/** The values of `params` concatenated in `layout` order into a host array (each tensor read once, asynchronously: webgpu under Node has no synchronous read). */
export async function readFlat(layout: FlatLayout, params: ReadonlyMap<string, tf.Tensor>, out = new Float32Array(layout.total)): Promise<Float32Array> {
  if (out.length !== layout.total) throw new RangeError(`readFlat: out holds ${out.length} values, the layout ${layout.total}`);
  for (let i = 0; i < layout.names.length; i++) out.set((await params.get(layout.names[i])!.data()) as Float32Array, layout.offsets[i]);
  return out;
}

/** The flat 1-D tensors of `ts`, in order (reshape and concatenate on the backend). */
function flatten(ts: readonly tf.Tensor[]): tf.Tensor1D {
  return tf.tidy(() => concatFlat(ts));
}

/** A flat tensor cut into `layout`'s named pieces, in their shapes (new tensors on the backend). */
function unflatten(layout: FlatLayout, flat: tf.Tensor1D): tf.Tensor[] {
  return tf.tidy(() => (layout.names.length === 1 ? [flat.reshape([...layout.shapes[0]])] : tf.split(flat, [...layout.sizes]).map((t, i) => t.reshape([...layout.shapes[i]]))));
}

/** Zero moments, EMA = the current weights, no updates done. */
export function initOptimState(names: readonly string[], params: ReadonlyMap<string, tf.Variable>): OptimState {
  const layout = flatLayout(names, params);
  const flat1 = (t: tf.Tensor1D): tf.Variable<tf.Rank.R1> => ownedVariable(t) as tf.Variable<tf.Rank.R1>;
  return { layout, m: flat1(tf.zeros([layout.total])), v: flat1(tf.zeros([layout.total])), ema: flat1(flatten(names.map((n) => params.get(n)!))), updates: 0 };
}

export function disposeOptimState(s: OptimState): void {
  tf.dispose([s.m, s.v, s.ema]);
}

/** One flat buffer of the state split by parameter name: subarrays of one host copy, with the parameters' shapes. */
export async function optimBufferByName(s: OptimState, which: OptimBuffer): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const flat = (await s[which].data()) as Float32Array;
  const { names, shapes, offsets, sizes } = s.layout;
  return new Map(names.map((n, i) => [n, { shape: [...shapes[i]], data: flat.subarray(offsets[i], offsets[i] + sizes[i]) }]));
}

/** Set one flat buffer of the state from per-name values (a checkpoint being restored); `get` returns `layout.sizes[i]` values for `names[i]`. */
export function setOptimBuffer(s: OptimState, which: OptimBuffer, get: (name: string) => Float32Array): void {
  const flat = new Float32Array(s.layout.total);
  s.layout.names.forEach((n, i) => {
    const d = get(n);
    if (d.length !== s.layout.sizes[i]) throw new RangeError(`setOptimBuffer: ${which}/${n} has ${d.length} values, the parameter ${s.layout.sizes[i]}`);
    flat.set(d, s.layout.offsets[i]);
  });
  tf.tidy(() => s[which].assign(tf.tensor1d(flat, 'float32')));
}

/** The EMA weights as tensors by parameter name, in the parameters' shapes (new tensors: the caller disposes them). */
export function emaWeights(s: OptimState): Map<string, tf.Tensor> {
  const pieces = unflatten(s.layout, s.ema);
  return new Map(s.layout.names.map((n, i) => [n, pieces[i]]));
}

/** The learning rate of update k (1-based). */
export function learningRate(cfg: OptimConfig, k: number): number {
  return cfg.warmup > 0 ? cfg.lr * Math.min(1, k / cfg.warmup) : cfg.lr;
}

/** Σ x² over float32 values, accumulated in float64. */
export function sumOfSquares(xs: Float32Array): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i] * xs[i];
  return s;
}

// ---------------------------------------------------------------------------------------------------------
// Kernels of our own for the wasm and cpu backends: JavaScript loops over the backend's memory.

/** Name of the fused clip + Adam + EMA kernel (wasm and cpu). */
export const FLAT_ADAM_KERNEL = 'DdpmFlatAdamEma';
/** Name of the one-pass global-norm kernel (wasm and cpu). */
export const GLOBAL_NORM_KERNEL = 'DdpmGlobalNorm';

/** Hyper-parameters of one update, as the kernel's attributes. */
interface AdamAttrs {
  /** Number of parameter tensors (and of gradient tensors, unless `grad` is given). */
  n: number;
  /** The gradient as one flat host array instead of tensors (the worker threads' sum). */
  grad?: Float32Array;
  /** A flat host array that also receives the new parameters (the buffer the worker threads read). */
  paramsOut?: Float32Array;
  /** Clipping factor c / max(‖g‖, c), or 1. */
  scale: number;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** 1 − β₁^k and 1 − β₂^k. */
  bc1: number;
  bc2: number;
  decay: number;
}

/**
 * The update of one parameter's values `p` (gradient `g`, new values into `p1`), which sit at `off` in the flat
 * buffers m, v, e (new values into m1, v1, e1). Each stored value is rounded to float32 once; θ uses the stored
 * m and v, the EMA the stored θ.
 */
function adamEmaSpan(
  a: AdamAttrs,
  off: number,
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  e: Float32Array,
  p1: Float32Array,
  m1: Float32Array,
  v1: Float32Array,
  e1: Float32Array,
): void {
  const { scale, beta1: b1, beta2: b2, bc2, eps, decay: d } = a;
  const c1 = 1 - b1;
  const c2 = 1 - b2;
  const cd = 1 - d;
  const step = a.lr / a.bc1;
  for (let i = 0, f = off; i < p.length; i++, f++) {
    const gi = g[i] * scale;
    const mi = (m1[f] = Math.fround(b1 * m[f] + c1 * gi));
    const vi = (v1[f] = Math.fround(b2 * v[f] + c2 * gi * gi));
    const pi = (p1[i] = Math.fround(p[i] - (step * mi) / (Math.sqrt(vi / bc2) + eps)));
    e1[f] = d * e[f] + cd * pi;
  }
}

/**
 * The update over flat memory; parameters and gradients come as `n` pieces each (the same partition), which
 * together cover the flat buffers in order. Inputs m, v, ema, p0…p(n−1), g0…g(n−1) (no g inputs when the
 * attribute `grad` holds the gradient as a flat host array); outputs m, v, ema and the new p0…p(n−1) (also
 * copied into the host array `paramsOut` when given).
 */
function flatAdamKernel(backendName: 'wasm' | 'cpu'): tf.KernelConfig {
  return {
    kernelName: FLAT_ADAM_KERNEL,
    backendName,
    kernelFunc: ({ inputs, attrs, backend }) => {
      const a = attrs as unknown as AdamAttrs;
      const ins = inputs as unknown as Record<string, tf.TensorInfo>;
      const mem = memoryOf(backend, FLAT_ADAM_KERNEL);
      const total = ins.m.shape[0];
      const ps = Array.from({ length: a.n }, (_, i) => ins[`p${i}`]);
      const gs = a.grad ? [] : Array.from({ length: a.n }, (_, i) => ins[`g${i}`]);
      const sizeOf = (t: tf.TensorInfo): number => t.shape.reduce((x, y) => x * y, 1);
      gs.forEach((g, j) => {
        if (sizeOf(g) !== sizeOf(ps[j])) throw new Error(`${FLAT_ADAM_KERNEL}: gradient ${j} has ${sizeOf(g)} values, its parameter ${sizeOf(ps[j])}`);
      });
      const covered = ps.reduce((s, p) => s + sizeOf(p), 0);
      if (covered !== total) throw new Error(`${FLAT_ADAM_KERNEL}: the parameters hold ${covered} values, the flat buffers ${total}`);
      for (const [what, host] of [['grad', a.grad], ['paramsOut', a.paramsOut]] as const) {
        if (host !== undefined && host.length !== total) throw new Error(`${FLAT_ADAM_KERNEL}: ${what} holds ${host.length} values, the flat buffers ${total}`);
      }
      const out = mem.alloc([[total], [total], [total], ...ps.map((p) => [...p.shape])]);
      const [m, v, e] = [ins.m, ins.v, ins.ema].map((t) => mem.read(t));
      const [m1, v1, e1] = out.slice(0, 3).map((o) => o.data);
      let off = 0;
      for (let j = 0; j < a.n; j++) {
        const p = mem.read(ps[j]);
        const p1 = out[3 + j].data;
        adamEmaSpan(a, off, p, a.grad ? a.grad.subarray(off, off + p.length) : mem.read(gs[j]), m, v, e, p1, m1, v1, e1);
        a.paramsOut?.set(p1, off);
        off += p.length;
      }
      return out.map((o) => o.info);
    },
  };
}

/** √(Σ over all inputs of Σ x²), a float32 scalar (float64 accumulation, one rounding). Inputs g0…g(n−1). */
function globalNormKernel(backendName: 'wasm' | 'cpu'): tf.KernelConfig {
  return {
    kernelName: GLOBAL_NORM_KERNEL,
    backendName,
    kernelFunc: ({ inputs, backend }) => {
      const mem = memoryOf(backend, GLOBAL_NORM_KERNEL);
      const [out] = mem.alloc([[]]);
      let s = 0;
      for (const t of Object.values(inputs as unknown as Record<string, tf.TensorInfo>)) s += sumOfSquares(mem.read(t));
      out.data[0] = Math.sqrt(s);
      return out.info;
    },
  };
}

for (const b of ['wasm', 'cpu'] as const) {
  if (tf.getKernel(FLAT_ADAM_KERNEL, b) === undefined) tf.registerKernel(flatAdamKernel(b));
  if (tf.getKernel(GLOBAL_NORM_KERNEL, b) === undefined) tf.registerKernel(globalNormKernel(b));
}

/**
 * How an update runs: `'fused'`, one kernel of our own (wasm and cpu only), or `'ops'`, a dozen tfjs ops over
 * the flat buffers (every backend; the choice on webgpu). Undefined: fused where the backend has the kernel.
 */
export type OptimImpl = 'fused' | 'ops';

function implFor(impl: OptimImpl | undefined): OptimImpl {
  const fused = tf.getKernel(FLAT_ADAM_KERNEL, tf.getBackend()) !== undefined;
  if (impl === 'fused' && !fused) throw new Error(`optimStep: the fused update has no kernel for the ${tf.getBackend()} backend (use 'ops')`);
  return impl ?? (fused ? 'fused' : 'ops');
}

/** Concatenate 1-D tensors, at most 6 at a time (webgpu binds at most 8 storage buffers per shader). */
function concatFlat(ts: readonly tf.Tensor[]): tf.Tensor1D {
  let level = ts.map((t) => tf.reshape(t, [-1]) as tf.Tensor1D);
  while (level.length > 1) {
    const next: tf.Tensor1D[] = [];
    for (let i = 0; i < level.length; i += 6) next.push(level.length - i === 1 ? level[i] : tf.concat1d(level.slice(i, i + 6)));
    level = next;
  }
  return level[0];
}

/**
 * The global norm of a set of gradients, √Σ‖g_i‖² (a scalar tensor the caller owns): one kernel on wasm and cpu.
 * Elsewhere the per-tensor sums are added pairwise: tfjs's `addN` with more than 7 inputs exceeds the webgpu
 * backend's 8 storage buffers per shader stage, and the failed pipeline silently yields zeros.
 */
export function globalNorm(grads: readonly tf.Tensor[], impl?: OptimImpl): tf.Scalar {
  if (grads.length === 0) return tf.scalar(0);
  if (implFor(impl) === 'fused') {
    return tf.engine().runKernel(GLOBAL_NORM_KERNEL, Object.fromEntries(grads.map((g, i) => [`g${i}`, g]))) as tf.Scalar;
  }
  return tf.tidy(() => {
    let level: tf.Tensor[] = grads.map((g) => tf.sum(tf.square(g)));
    while (level.length > 1) {
      const next: tf.Tensor[] = [];
      for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? tf.add(level[i], level[i + 1]) : level[i]);
      level = next;
    }
    return tf.sqrt(level[0]) as tf.Scalar;
  });
}

/**
 * Update m, v and the EMA of `state` in place and return the new parameters, in `ps`'s pieces and shapes (tensors
 * of the current scope). `ps` and `gs` partition the flat buffers the same way: per parameter, or one flat piece.
 */
function updateFlat(impl: OptimImpl, a: AdamAttrs, ps: readonly tf.Tensor[], gs: readonly tf.Tensor[], state: OptimState): tf.Tensor[] {
  if (impl === 'fused') {
    const inputs: Record<string, tf.Tensor> = { m: state.m, v: state.v, ema: state.ema };
    ps.forEach((p, i) => (inputs[`p${i}`] = p));
    gs.forEach((g, i) => (inputs[`g${i}`] = g));
    const [m1, v1, e1, ...p1] = tf.engine().runKernel(FLAT_ADAM_KERNEL, inputs, a as unknown as tf.NamedAttrMap) as tf.Tensor[];
    state.m.assign(m1 as tf.Tensor1D);
    state.v.assign(v1 as tf.Tensor1D);
    state.ema.assign(e1 as tf.Tensor1D);
    return p1;
  }
  const g = tf.mul(concatFlat(gs), a.scale);
  const m1 = tf.add(tf.mul(state.m, a.beta1), tf.mul(g, 1 - a.beta1));
  const v1 = tf.add(tf.mul(state.v, a.beta2), tf.mul(tf.square(g), 1 - a.beta2));
  const denom = tf.add(tf.sqrt(tf.div(v1, a.bc2)), a.eps);
  const p1 = tf.sub(concatFlat(ps), tf.mul(tf.div(m1, denom), a.lr / a.bc1));
  const e1 = tf.add(tf.mul(state.ema, a.decay), tf.mul(p1, 1 - a.decay));
  state.m.assign(m1 as tf.Tensor1D);
  state.v.assign(v1 as tf.Tensor1D);
  state.ema.assign(e1 as tf.Tensor1D);
  if (ps.length === 1) return [tf.reshape(p1, ps[0].shape)];
  return tf.split(p1, ps.map((p) => p.size)).map((t, i) => tf.reshape(t, ps[i].shape));
}

/** The attributes of update k = state.updates + 1 for a gradient of norm `gradNorm`. */
function attrsFor(cfg: OptimConfig, state: OptimState, n: number, gradNorm: number): AdamAttrs {
  const k = state.updates + 1;
  const scale = cfg.grad_clip === null ? 1 : cfg.grad_clip / Math.max(gradNorm, cfg.grad_clip);
  return { n, scale, lr: learningRate(cfg, k), beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps, bc1: 1 - cfg.beta1 ** k, bc2: 1 - cfg.beta2 ** k, decay: cfg.ema_decay };
}

/**
 * Apply one update in place: clip, Adam, EMA. `grads` are keyed by parameter name (every parameter in
 * `state.layout` must have one); `gradNorm` is their {@link globalNorm} (read by the caller, who checks it is
 * finite first). Returns the learning rate used.
 */
export function optimStep(
  cfg: OptimConfig,
  params: ReadonlyMap<string, tf.Variable>,
  grads: ReadonlyMap<string, tf.Tensor>,
  gradNorm: number,
  state: OptimState,
  impl?: OptimImpl,
): { lr: number } {
  const { names } = state.layout;
  const gs = names.map((n) => {
    const g = grads.get(n);
    if (g === undefined) throw new Error(`optimStep: no gradient for parameter ${n}`);
    return g;
  });
  const vars = names.map((n) => params.get(n)!);
  const a = attrsFor(cfg, state, names.length, gradNorm);
  const how = implFor(impl);
  tf.tidy(() => updateFlat(how, a, vars, gs, state).forEach((p, i) => vars[i].assign(p)));
  state.updates++;
  return { lr: a.lr };
}

/**
 * {@link optimStep} from a flat gradient (the worker threads' sum): `flatParams` holds the current parameters
 * in `state.layout` order (a copy of the variables of `params`) and receives the new ones, and the variables are
 * updated too. `gradNorm` is √Σg² of `grad` ({@link sumOfSquares}). The fused kernel reads the gradient and
 * writes `flatParams` directly, with no tensor of the flat gradient and no read-back; the `'ops'` version uploads
 * both flat arrays, cuts the new parameters into the variables on the backend and reads them back once.
 */
export async function optimStepFlat(
  cfg: OptimConfig,
  params: ReadonlyMap<string, tf.Variable>,
  flatParams: Float32Array,
  grad: Float32Array,
  gradNorm: number,
  state: OptimState,
  impl?: OptimImpl,
): Promise<{ lr: number }> {
  const { names, total } = state.layout;
  if (flatParams.length !== total || grad.length !== total) {
    throw new RangeError(`optimStepFlat: flatParams and grad must hold ${total} values (the layout), got ${flatParams.length} and ${grad.length}`);
  }
  const how = implFor(impl);
  if (how === 'fused') {
    const vars = names.map((n) => params.get(n)!);
    const a = { ...attrsFor(cfg, state, names.length, gradNorm), grad, paramsOut: flatParams };
    tf.tidy(() => updateFlat(how, a, vars, [], state).forEach((p, i) => vars[i].assign(p)));
    state.updates++;
    return { lr: a.lr };
  }
  const a = attrsFor(cfg, state, 1, gradNorm);
  const p1 = tf.tidy(() => updateFlat(how, a, [tf.tensor1d(flatParams, 'float32')], [tf.tensor1d(grad, 'float32')], state)[0]);
  try {
    const pieces = unflatten(state.layout, p1 as tf.Tensor1D);
    names.forEach((n, i) => params.get(n)!.assign(pieces[i]));
    tf.dispose(pieces);
    flatParams.set((await p1.data()) as Float32Array);
  } finally {
    p1.dispose();
  }
  state.updates++;
  return { lr: a.lr };
}
