/**
 * Sampling: one ancestral step, one DDIM step (η), one reverse-DDIM step, and the loops over them.
 *
 * Loop conventions (as in the public code): an ancestral or DDIM loop over T steps visits t = T−1, …, 0;
 * loop step i has t = T−1−i, its input is x_T (i = 0) or the previous step's sample, and it returns x_{t−1}.
 * The step at t = 0 returns the mean: its noise is drawn but masked. Noise is always an argument: a tensor
 * `[T, …x.shape]` whose entry i is the draw of loop step i, or a function `(step, t) → tensor` (the loop
 * disposes what it returns).
 *
 * The loops are async generators that yield each step's sample and x̂₀; the yielded tensors belong to the
 * loop and stay valid until the consumer asks for the next step (clone them to keep them). After every step
 * the loop reads back one boolean: a non-finite sample stops the loop with a {@link NonFiniteError} naming
 * the step. Every step runs in `tf.tidy`; the loop disposes each state once the next one exists, so a loop
 * of any length leaves no tensors behind.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import type { GaussianDiffusion } from './buffers.ts';
import { NonFiniteError, ReferenceArgumentError, assertFinite, finiteNumber, floatTensor, sameShape, shapeStr, type Timesteps } from './errors.ts';
import { predictEpsFromXstartIdx } from './forward.ts';
import type { DenoiseModel } from './model.ts';
import { checkModelOutput, pMeanVarianceFromOutput } from './reverse.ts';

/** A step's result: the new sample and the model's x̂₀. */
export type StepOutput = {
  sample: tf.Tensor;
  predXstart: tf.Tensor;
};

/** Per-step noise: a tensor [T, …shape] in loop order, or a function of (loop step, t) returning a new tensor. */
export type NoiseSource = tf.Tensor | ((step: number, t: number) => tf.Tensor);

/** `[B, 1, …, 1]` float mask that is 0 where t = 0 (no noise at the final step). */
function nonzeroMask(t: Timesteps, rank: number): tf.Tensor {
  const B = t.length;
  return tf.tensor(Float32Array.from(t, (s) => (s !== 0 ? 1 : 0)), [B, ...new Array<number>(rank - 1).fill(1)], 'float32');
}

function modelPMV(d: GaussianDiffusion, fn: string, model: DenoiseModel, x: tf.Tensor, t: Timesteps, idx: tf.Tensor1D, clip: boolean) {
  const out = model(x, tf.tensor1d(d.modelTimesteps(t), 'float32'));
  checkModelOutput(d, fn, x, out);
  return pMeanVarianceFromOutput(d, out, x, idx, clip);
}

function checkStep(d: GaussianDiffusion, fn: string, x: tf.Tensor, t: Timesteps, clip: unknown): void {
  floatTensor(fn, 'x', x, 2);
  d.checkT(fn, t, x.shape[0]);
  if (typeof clip !== 'boolean') throw new ReferenceArgumentError(fn, 'clipDenoised', `clipDenoised must be a boolean, got ${String(clip)}`);
}

/**
 * One ancestral step x_t → x_{t−1} (improved's `p_sample`):
 *
 * $$x_{t-1} = \mu_\theta(x_t, t) + \mathbb 1[t \ne 0]\; e^{\frac12 \log\sigma_t^2}\, z$$
 */
export function pSample(d: GaussianDiffusion, model: DenoiseModel, x: tf.Tensor, t: Timesteps, noise: tf.Tensor, opts: { clipDenoised: boolean }): StepOutput {
  const fn = 'pSample';
  checkStep(d, fn, x, t, opts?.clipDenoised);
  floatTensor(fn, 'noise', noise);
  sameShape(fn, 'x', x, 'noise', noise);
  return tf.tidy(() => {
    const out = modelPMV(d, fn, model, x, t, d.indexTensor(t), opts.clipDenoised);
    const sample = out.mean.add(nonzeroMask(t, x.rank).mul(tf.exp(out.logVariance.mul(0.5))).mul(noise));
    return { sample, predXstart: out.predXstart };
  });
}

/**
 * One DDIM step x_t → x_{t−1} with stochasticity η (Song et al. 2021, improved's `ddim_sample`); ε is
 * re-derived from the (clipped) x̂₀, and ᾱ_{−1} = 1:
 *
 * $$\sigma = \eta\sqrt{\tfrac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}}\sqrt{1-\tfrac{\bar\alpha_t}{\bar\alpha_{t-1}}},\quad
 *   x_{t-1} = \sqrt{\bar\alpha_{t-1}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t-1}-\sigma^2}\,\hat\epsilon + \mathbb 1[t\ne0]\,\sigma z$$
 *
 * @param noise - z (x's shape); may be omitted when η = 0
 */
export function ddimSample(
  d: GaussianDiffusion,
  model: DenoiseModel,
  x: tf.Tensor,
  t: Timesteps,
  noise: tf.Tensor | null,
  opts: { clipDenoised: boolean; eta: number },
): StepOutput {
  const fn = 'ddimSample';
  checkStep(d, fn, x, t, opts?.clipDenoised);
  finiteNumber(fn, 'eta', opts.eta, { min: 0 });
  if (noise !== null) {
    floatTensor(fn, 'noise', noise);
    sameShape(fn, 'x', x, 'noise', noise);
  } else if (opts.eta !== 0) {
    throw new ReferenceArgumentError(fn, 'noise', `noise must be given when eta ≠ 0 (got eta = ${opts.eta})`);
  }
  return tf.tidy(() => {
    const idx = d.indexTensor(t);
    const r = x.rank;
    const out = modelPMV(d, fn, model, x, t, idx, opts.clipDenoised);
    const eps = predictEpsFromXstartIdx(d, x, idx, out.predXstart);
    const ab = d.extract('alphas_cumprod', idx, r);
    const abPrev = d.extract('alphas_cumprod_prev', idx, r);
    const one = tf.scalar(1);
    const sigma = tf
      .sqrt(one.sub(abPrev).div(one.sub(ab)))
      .mul(opts.eta)
      .mul(tf.sqrt(one.sub(ab.div(abPrev))));
    const meanPred = out.predXstart.mul(tf.sqrt(abPrev)).add(tf.sqrt(one.sub(abPrev).sub(tf.square(sigma))).mul(eps));
    const sample = noise === null ? meanPred : meanPred.add(nonzeroMask(t, r).mul(sigma).mul(noise));
    return { sample, predXstart: out.predXstart };
  });
}

/**
 * One deterministic reverse-DDIM step x_t → x_{t+1} (improved's `ddim_reverse_sample`, η = 0), with ᾱ_T = 0:
 *
 * $$x_{t+1} = \sqrt{\bar\alpha_{t+1}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t+1}}\,\hat\epsilon$$
 */
export function ddimReverseSample(d: GaussianDiffusion, model: DenoiseModel, x: tf.Tensor, t: Timesteps, opts: { clipDenoised: boolean }): StepOutput {
  const fn = 'ddimReverseSample';
  checkStep(d, fn, x, t, opts?.clipDenoised);
  return tf.tidy(() => {
    const idx = d.indexTensor(t);
    const out = modelPMV(d, fn, model, x, t, idx, opts.clipDenoised);
    const eps = predictEpsFromXstartIdx(d, x, idx, out.predXstart);
    const abNext = d.extract('alphas_cumprod_next', idx, x.rank);
    const sample = out.predXstart.mul(tf.sqrt(abNext)).add(tf.sqrt(tf.scalar(1).sub(abNext)).mul(eps));
    return { sample, predXstart: out.predXstart };
  });
}

/** One yielded loop step. The tensors belong to the loop: valid until the next step is requested. */
export type LoopStep = StepOutput & {
  /** 0-based index of the loop step. */
  step: number;
  /** The 0-based timestep of this step. */
  t: number;
};

/** The noise of loop step i (a new tensor the caller disposes). */
function noiseAt(fn: string, noise: NoiseSource, step: number, t: number, shape: number[]): tf.Tensor {
  if (typeof noise === 'function') {
    const n = noise(step, t);
    floatTensor(fn, `noise(${step}, ${t})`, n);
    if (n.shape.length !== shape.length || n.shape.some((s, k) => s !== shape[k])) {
      throw new ReferenceArgumentError(fn, 'noise', `noise(${step}, ${t}) must have the sample's shape ${shapeStr(shape)}, got ${shapeStr(n.shape)}`);
    }
    return n;
  }
  return tf.tidy(() => tf.gather(noise, step).reshape(shape));
}

function checkNoiseTensor(fn: string, noise: NoiseSource | undefined, steps: number, shape: number[]): void {
  if (noise === undefined || typeof noise === 'function') return;
  floatTensor(fn, 'noise', noise);
  const want = [steps, ...shape];
  if (noise.rank !== want.length || noise.shape.some((s, k) => s !== want[k])) {
    throw new ReferenceArgumentError(fn, 'noise', `noise must have shape ${shapeStr(want)} (one draw per loop step), got ${shapeStr(noise.shape)}`);
  }
}

async function isFinite(x: tf.Tensor): Promise<boolean> {
  const ok = tf.tidy(() => tf.all(tf.isFinite(x)));
  const v = (await ok.data())[0];
  ok.dispose();
  return v !== 0;
}

/**
 * Drive a chain of steps (shared by the loops): `step(x, t, i)` returns the next state; the previous state is
 * disposed once the next exists; the initial state is the caller's and is never disposed.
 */
async function* chain(
  fn: string,
  x0: tf.Tensor,
  x0Name: string,
  ts: number[],
  step: (x: tf.Tensor, t: number, i: number) => StepOutput,
): AsyncGenerator<LoopStep, void, void> {
  await assertFinite(fn, x0Name, x0);
  let prev: StepOutput | null = null;
  try {
    for (let i = 0; i < ts.length; i++) {
      const next = step(prev === null ? x0 : prev.sample, ts[i], i);
      if (prev !== null) tf.dispose([prev.sample, prev.predXstart]);
      prev = next;
      if (!(await isFinite(next.sample))) throw new NonFiniteError(fn, i, ts[i], 'the sample');
      yield { step: i, t: ts[i], sample: next.sample, predXstart: next.predXstart };
    }
  } finally {
    if (prev !== null) tf.dispose([prev.sample, prev.predXstart]);
  }
}

/**
 * Ancestral sampling x_T → x_0 (improved's `p_sample_loop_progressive`), yielding every step.
 *
 * @param xT - the starting noise x_T (not disposed)
 * @param opts.noise - the per-step noise z (entry i used at t = T−1−i; the t = 0 draw is masked)
 */
export function pSampleLoopProgressive(
  d: GaussianDiffusion,
  model: DenoiseModel,
  xT: tf.Tensor,
  opts: { clipDenoised: boolean; noise: NoiseSource },
): AsyncGenerator<LoopStep, void, void> {
  const fn = 'pSampleLoopProgressive';
  floatTensor(fn, 'x_T', xT, 2);
  if (opts?.noise === undefined) throw new ReferenceArgumentError(fn, 'noise', 'noise must be given: a tensor [T, …x_T.shape] or a function (step, t) → tensor');
  checkNoiseTensor(fn, opts.noise, d.T, xT.shape);
  const B = xT.shape[0];
  const ts = Array.from({ length: d.T }, (_, i) => d.T - 1 - i);
  return chain(fn, xT, 'x_T', ts, (x, t, i) => {
    const n = noiseAt(fn, opts.noise, i, t, xT.shape);
    try {
      return pSample(d, model, x, new Array<number>(B).fill(t), n, opts);
    } finally {
      n.dispose();
    }
  });
}

/**
 * DDIM sampling x_T → x_0 with stochasticity η (improved's `ddim_sample_loop_progressive`).
 *
 * @param opts.noise - per-step noise (required when η ≠ 0; when η = 0 it is multiplied by σ = 0 and may be omitted)
 */
export function ddimSampleLoopProgressive(
  d: GaussianDiffusion,
  model: DenoiseModel,
  xT: tf.Tensor,
  opts: { clipDenoised: boolean; eta: number; noise?: NoiseSource },
): AsyncGenerator<LoopStep, void, void> {
  const fn = 'ddimSampleLoopProgressive';
  floatTensor(fn, 'x_T', xT, 2);
  finiteNumber(fn, 'eta', opts?.eta, { min: 0 });
  if (opts.noise === undefined && opts.eta !== 0) throw new ReferenceArgumentError(fn, 'noise', `noise must be given when eta ≠ 0 (got eta = ${opts.eta})`);
  checkNoiseTensor(fn, opts.noise, d.T, xT.shape);
  const B = xT.shape[0];
  const ts = Array.from({ length: d.T }, (_, i) => d.T - 1 - i);
  return chain(fn, xT, 'x_T', ts, (x, t, i) => {
    const n = opts.noise === undefined ? null : noiseAt(fn, opts.noise, i, t, xT.shape);
    try {
      return ddimSample(d, model, x, new Array<number>(B).fill(t), n, opts);
    } finally {
      n?.dispose();
    }
  });
}

/**
 * The deterministic DDIM encoder x_0 → x_T: reverse steps at t = 0, …, T−1; step i yields x_{i+1}.
 */
export function ddimReverseLoopProgressive(d: GaussianDiffusion, model: DenoiseModel, x0: tf.Tensor, opts: { clipDenoised: boolean }): AsyncGenerator<LoopStep, void, void> {
  const fn = 'ddimReverseLoopProgressive';
  floatTensor(fn, 'x_0', x0, 2);
  const B = x0.shape[0];
  const ts = Array.from({ length: d.T }, (_, i) => i);
  return chain(fn, x0, 'x_0', ts, (x, t) => ddimReverseSample(d, model, x, new Array<number>(B).fill(t), opts));
}

/** Run a progressive loop to the end and return its final sample (a new tensor the caller owns). */
export async function finalSample(loop: AsyncGenerator<LoopStep, void, void>): Promise<tf.Tensor> {
  let last: tf.Tensor | null = null;
  try {
    for await (const s of loop) {
      last?.dispose();
      last = s.sample.clone();
    }
  } catch (e) {
    last?.dispose();
    throw e;
  }
  if (last === null) throw new ReferenceArgumentError('finalSample', 'loop', 'the loop yielded no step');
  return last;
}
