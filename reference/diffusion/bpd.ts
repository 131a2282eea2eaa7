/**
 * The full variational bound in bits per dimension (improved's `calc_bpd_loop`): for every t, draw x_t from
 * q(x_t | x₀) with the given noise, and record the vb term L_t (bits), the MSE of x̂₀ against x₀ and the MSE of
 * the re-derived ε against the noise; the total is Σ_t L_t + L_T (prior).
 *
 * $$\mathrm{bpd}(x_0) = \frac{1}{D\ln 2}\Big(\mathrm{KL}(q(x_{T}|x_0)\|p(x_T)) + \sum_{t>0} \mathrm{KL}(q(x_{t-1}|x_t,x_0)\|p_\theta(x_{t-1}|x_t)) - \log p_\theta(x_0|x_1)\Big)$$
 *
 * Index conventions: the loop visits t = T−1, …, 0 and the noise source is in that loop order (entry i at
 * t = T−1−i); the returned `[B, T]` tables have column j ↔ t = j.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import type { GaussianDiffusion } from './buffers.ts';
import { NonFiniteError, ReferenceArgumentError, assertFinite, floatTensor, positiveInt, shapeStr } from './errors.ts';
import { predictEpsFromXstartIdx, qSampleIdx } from './forward.ts';
import { meanFlat } from './likelihood.ts';
import { priorBpd, vbTermsBpdFromOutput } from './losses.ts';
import type { DenoiseModel } from './model.ts';
import { checkModelOutput } from './reverse.ts';
import type { NoiseSource } from './sampling.ts';

/** The output of {@link calcBpdLoop}; the caller disposes it. */
export type BpdResult = {
  /** Σ_t vb + prior, [B] bits/dim. */
  totalBpd: tf.Tensor1D;
  /** L_T, [B] bits/dim. */
  priorBpd: tf.Tensor1D;
  /** L_t, [B, T] bits/dim, column j ↔ t = j. */
  vb: tf.Tensor2D;
  /** mean (x̂₀ − x₀)², [B, T]. */
  xstartMse: tf.Tensor2D;
  /** mean (ε̂ − ε)², [B, T]. */
  mse: tf.Tensor2D;
};

/**
 * The bits/dim loop. Each step is independent given its noise, so `stepsPerBatch` timesteps can be evaluated
 * as one batch (identical results, fewer kernel launches); the default 1 is the public code's loop.
 *
 * @param xStart - x₀ [B, …, C] on the pixel grid of [−1, 1]
 * @param opts.noise - per-step noise in loop order (t = T−1, …, 0)
 * @throws {@link NonFiniteError} at the first step (in loop order) whose vb term is not finite
 */
export async function calcBpdLoop(
  d: GaussianDiffusion,
  model: DenoiseModel,
  xStart: tf.Tensor,
  opts: { clipDenoised: boolean; noise: NoiseSource; stepsPerBatch?: number },
): Promise<BpdResult> {
  const fn = 'calcBpdLoop';
  floatTensor(fn, 'x_start', xStart, 2);
  if (typeof opts?.clipDenoised !== 'boolean') throw new ReferenceArgumentError(fn, 'clipDenoised', `clipDenoised must be a boolean, got ${String(opts?.clipDenoised)}`);
  const K = opts.stepsPerBatch ?? 1;
  positiveInt(fn, 'stepsPerBatch', K);
  const noise = opts.noise;
  if (noise === undefined) throw new ReferenceArgumentError(fn, 'noise', 'noise must be given: a tensor [T, …x_start.shape] in loop order or a function (step, t) → tensor');
  const shape = xStart.shape;
  if (typeof noise !== 'function') {
    floatTensor(fn, 'noise', noise);
    const want = [d.T, ...shape];
    if (noise.rank !== want.length || noise.shape.some((s, k) => s !== want[k])) {
      throw new ReferenceArgumentError(fn, 'noise', `noise must have shape ${shapeStr(want)} (one draw per step, loop order t = T−1 … 0), got ${shapeStr(noise.shape)}`);
    }
  }
  await assertFinite(fn, 'x_start', xStart);
  const B = shape[0];
  const T = d.T;
  const cols: Array<{ vb: tf.Tensor; xm: tf.Tensor; mse: tf.Tensor } | undefined> = new Array(T);
  try {
    for (let first = 0; first < T; first += K) {
      const steps = Array.from({ length: Math.min(K, T - first) }, (_, k) => first + k);
      const ts = steps.map((i) => T - 1 - i);
      const draws = steps.map((i) => {
        if (typeof noise === 'function') {
          const n = noise(i, T - 1 - i);
          floatTensor(fn, `noise(${i}, ${T - 1 - i})`, n);
          if (n.shape.length !== shape.length || n.shape.some((s, k) => s !== shape[k])) {
            n.dispose();
            throw new ReferenceArgumentError(fn, 'noise', `noise(${i}, ${T - 1 - i}) must have x_start's shape ${shapeStr(shape)}, got ${shapeStr(n.shape)}`);
          }
          return n;
        }
        return tf.tidy(() => tf.gather(noise, i).reshape(shape));
      });
      let res: { vb: tf.Tensor; xm: tf.Tensor; mse: tf.Tensor };
      try {
        res = tf.tidy(() => {
        const k = steps.length;
        const tBatch = ts.flatMap((t) => new Array<number>(B).fill(t));
        const idx = d.indexTensor(tBatch);
        const x0 = k === 1 ? xStart : tf.tile(xStart, [k, ...new Array<number>(shape.length - 1).fill(1)]);
        const eps = k === 1 ? draws[0] : tf.concat(draws, 0);
        const xt = qSampleIdx(d, x0, idx, eps);
        const out = model(xt, tf.tensor1d(d.modelTimesteps(tBatch), 'float32'));
        checkModelOutput(d, fn, xt, out);
        const vbt = vbTermsBpdFromOutput(d, out, x0, xt, tBatch, idx, opts.clipDenoised);
        const xm = meanFlat(tf.square(vbt.predXstart.sub(x0)));
        const epsHat = predictEpsFromXstartIdx(d, xt, idx, vbt.predXstart);
        const mse = meanFlat(tf.square(epsHat.sub(eps)));
        return { vb: vbt.output.reshape([k, B]), xm: xm.reshape([k, B]), mse: mse.reshape([k, B]) };
        });
      } finally {
        tf.dispose(draws);
      }
      const vals = await res.vb.data();
      for (let j = 0; j < vals.length; j++) {
        if (!Number.isFinite(vals[j])) {
          tf.dispose([res.vb, res.xm, res.mse]);
          const step = first + Math.floor(j / B);
          throw new NonFiniteError(fn, step, T - 1 - step, 'the vb term');
        }
      }
      steps.forEach((i, k) => {
        cols[T - 1 - i] = tf.tidy(() => ({ vb: res.vb.gather(k), xm: res.xm.gather(k), mse: res.mse.gather(k) }));
      });
      tf.dispose([res.vb, res.xm, res.mse]);
    }
    return tf.tidy(() => {
      const stack = (key: 'vb' | 'xm' | 'mse') => tf.stack(cols.map((c) => c![key]), 1) as tf.Tensor2D;
      const vb = stack('vb');
      const prior = priorBpd(d, xStart) as tf.Tensor1D;
      return { totalBpd: vb.sum(1).add(prior) as tf.Tensor1D, priorBpd: prior, vb, xstartMse: stack('xm'), mse: stack('mse') };
    });
  } finally {
    for (const c of cols) if (c !== undefined) tf.dispose([c.vb, c.xm, c.mse]);
  }
}
