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
 * All state lives in `tf.Variable`s (float32), so a checkpoint holds it exactly and a resumed run continues
 * bit for bit.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import type { OptimConfig } from './config.ts';

/** Adam moments and EMA weights for a set of named parameters, and the number of updates done. */
export interface OptimState {
  m: Map<string, tf.Variable>;
  v: Map<string, tf.Variable>;
  ema: Map<string, tf.Variable>;
  /** Updates done so far (k of the last update). */
  updates: number;
}

/** A non-trainable variable holding `t`'s values; `t` is disposed (the variable keeps the data). */
export function ownedVariable(t: tf.Tensor, trainable = false): tf.Variable {
  const v = tf.variable(t, trainable);
  t.dispose();
  return v;
}

/** Zero moments, EMA = the current weights, no updates done. */
export function initOptimState(names: readonly string[], params: ReadonlyMap<string, tf.Variable>): OptimState {
  const m = new Map<string, tf.Variable>();
  const v = new Map<string, tf.Variable>();
  const ema = new Map<string, tf.Variable>();
  for (const n of names) {
    const p = params.get(n);
    if (p === undefined) throw new Error(`initOptimState: no parameter named ${n}`);
    m.set(n, ownedVariable(tf.zerosLike(p)));
    v.set(n, ownedVariable(tf.zerosLike(p)));
    ema.set(n, ownedVariable(p.clone()));
  }
  return { m, v, ema, updates: 0 };
}

export function disposeOptimState(s: OptimState): void {
  for (const map of [s.m, s.v, s.ema]) for (const t of map.values()) t.dispose();
}

/** The learning rate of update k (1-based). */
export function learningRate(cfg: OptimConfig, k: number): number {
  return cfg.warmup > 0 ? cfg.lr * Math.min(1, k / cfg.warmup) : cfg.lr;
}

/**
 * The global norm of a set of gradients, √Σ‖g_i‖² (a scalar tensor the caller owns). The per-tensor sums are
 * added pairwise: tfjs's `addN` with more than 7 inputs exceeds the webgpu backend's 8 storage buffers per
 * shader stage, and the failed pipeline silently yields zeros.
 */
export function globalNorm(grads: readonly tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => {
    let level: tf.Tensor[] = grads.map((g) => tf.sum(tf.square(g)));
    if (level.length === 0) return tf.scalar(0);
    while (level.length > 1) {
      const next: tf.Tensor[] = [];
      for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? tf.add(level[i], level[i + 1]) : level[i]);
      level = next;
    }
    return tf.sqrt(level[0]) as tf.Scalar;
  });
}

/**
 * Apply one update in place: clip, Adam, EMA. `grads` are keyed by parameter name (every parameter must have
 * one); `gradNorm` is their {@link globalNorm} (computed by the caller, who checks it is finite first).
 * Returns the learning rate used.
 */
export function optimStep(
  cfg: OptimConfig,
  names: readonly string[],
  params: ReadonlyMap<string, tf.Variable>,
  grads: ReadonlyMap<string, tf.Tensor>,
  gradNorm: tf.Scalar,
  state: OptimState,
): { lr: number } {
  const k = state.updates + 1;
  const lr = learningRate(cfg, k);
  const gs = names.map((n) => {
    const g = grads.get(n);
    if (g === undefined) throw new Error(`optimStep: no gradient for parameter ${n}`);
    return g;
  });
  tf.tidy(() => {
    const scale = cfg.grad_clip === null ? tf.scalar(1) : tf.div(cfg.grad_clip, tf.maximum(gradNorm, cfg.grad_clip));
    const bc1 = 1 - cfg.beta1 ** k;
    const bc2 = 1 - cfg.beta2 ** k;
    names.forEach((n, i) => {
      const p = params.get(n)!;
      const g = tf.mul(gs[i], scale);
      const m = state.m.get(n)!;
      const v = state.v.get(n)!;
      const m1 = tf.add(tf.mul(m, cfg.beta1), tf.mul(g, 1 - cfg.beta1));
      const v1 = tf.add(tf.mul(v, cfg.beta2), tf.mul(tf.square(g), 1 - cfg.beta2));
      m.assign(m1);
      v.assign(v1);
      const denom = tf.add(tf.sqrt(tf.div(v1, bc2)), cfg.eps);
      const p1 = tf.sub(p, tf.mul(tf.div(m1, denom), lr / bc1));
      p.assign(p1);
      const e = state.ema.get(n)!;
      e.assign(tf.add(tf.mul(e, cfg.ema_decay), tf.mul(p1, 1 - cfg.ema_decay)));
    });
  });
  state.updates = k;
  return { lr };
}
