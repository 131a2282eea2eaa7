/**
 * diffusers' `DDPMScheduler` and `DDIMScheduler` conventions on TensorFlow.js (re-implemented, not imported from
 * the spec): buffers computed by tfjs float32 ops, as torch computes diffusers' buffers; timestep spacings;
 * DDPM steps for every variance type and DDIM steps with η, `set_alpha_to_one` and `use_clipped_model_output`;
 * ε / x₀ / v predictions; clipping and dynamic thresholding; zero-terminal-SNR rescaling.
 *
 * 0-based timesteps as diffusers (`alphasCumprod[t]` is the paper's ᾱ_{t+1}); one timestep for the whole batch,
 * as diffusers' `step`; tensors batch first, any rank. Build a scheduler with {@link DiffusersScheduler.create}
 * (asynchronous: the buffers are read back once, so that the steps need no read-back on any backend).
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { ReferenceArgumentError, floatTensor, sameShape } from './errors.ts';

/** A scheduler configuration in diffusers' own option names (every field optional, diffusers' defaults). */
export interface DiffusersSchedulerConfig {
  num_train_timesteps?: number;
  beta_start?: number;
  beta_end?: number;
  beta_schedule?: 'linear' | 'scaled_linear' | 'squaredcos_cap_v2' | 'sigmoid';
  trained_betas?: number[] | null;
  variance_type?: 'fixed_small' | 'fixed_small_log' | 'fixed_large' | 'fixed_large_log' | 'learned' | 'learned_range';
  clip_sample?: boolean;
  clip_sample_range?: number;
  prediction_type?: 'epsilon' | 'sample' | 'v_prediction';
  thresholding?: boolean;
  dynamic_thresholding_ratio?: number;
  sample_max_value?: number;
  timestep_spacing?: 'leading' | 'trailing' | 'linspace';
  steps_offset?: number;
  rescale_betas_zero_snr?: boolean;
  set_alpha_to_one?: boolean;
}

const DEFAULTS: Required<DiffusersSchedulerConfig> = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  variance_type: 'fixed_small',
  clip_sample: true,
  clip_sample_range: 1,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1,
  timestep_spacing: 'leading',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
  set_alpha_to_one: true,
};

const CHOICES: Partial<Record<keyof DiffusersSchedulerConfig, readonly string[]>> = {
  beta_schedule: ['linear', 'scaled_linear', 'squaredcos_cap_v2', 'sigmoid'],
  variance_type: ['fixed_small', 'fixed_small_log', 'fixed_large', 'fixed_large_log', 'learned', 'learned_range'],
  prediction_type: ['epsilon', 'sample', 'v_prediction'],
  timestep_spacing: ['leading', 'trailing', 'linspace'],
};

function checkConfig(c: Required<DiffusersSchedulerConfig>): void {
  const fn = 'DiffusersScheduler.create';
  for (const [k, allowed] of Object.entries(CHOICES)) {
    const v = c[k as keyof DiffusersSchedulerConfig];
    if (!allowed!.includes(v as string)) throw new ReferenceArgumentError(fn, k, `${k} must be one of ${allowed!.join(', ')}, got ${String(v)}`);
  }
  const T = c.num_train_timesteps;
  if (!Number.isInteger(T) || T < 1) throw new ReferenceArgumentError(fn, 'num_train_timesteps', `num_train_timesteps must be a positive integer, got ${String(T)}`);
  if (!Number.isInteger(c.steps_offset) || c.steps_offset < 0) throw new ReferenceArgumentError(fn, 'steps_offset', `steps_offset must be a non-negative integer, got ${String(c.steps_offset)}`);
}

/** torch's CPU cumprod of a float32 vector: the running product in double, each output rounded to float32. */
function cumprodF32(a: ArrayLike<number>): Float32Array {
  const out = new Float32Array(a.length);
  let p = 1;
  for (let i = 0; i < a.length; i++) out[i] = p *= a[i];
  return out;
}

/** Zero-terminal-SNR (Lin et al. Algorithm 1) on float32 tensors: √ᾱ shifted to end at 0, scaled to keep √ᾱ_1. */
function rescaleZeroSnr(betas: Float32Array): tf.Tensor1D {
  const T = betas.length;
  return tf.tidy(() => {
    const sqrtAb = tf.sqrt(tf.tensor1d(cumprodF32(betas.map((b) => 1 - b)), 'float32')); // 1 − β rounded to float32 by the Float32Array
    const first = sqrtAb.slice(0, 1);
    const last = sqrtAb.slice(T - 1, 1);
    const shifted = sqrtAb.sub(last).mul(first.div(first.sub(last)));
    const ab = shifted.square();
    const ratios = ab.slice(1).div(ab.slice(0, T - 1));
    return tf.sub(1, tf.concat([ab.slice(0, 1), ratios])) as tf.Tensor1D;
  });
}

/**
 * torch.linspace(start, end, n) in float32 by its per-element formula: the first half counts up from start, the
 * second half down from end. (tf.linspace adds the step cumulatively in float32, which moves ᾱ_T by 2e−5 relative.)
 */
function torchLinspace(start: number, end: number, n: number): tf.Tensor1D {
  const f = Math.fround;
  const [a, b] = [f(start), f(end)];
  const step = n > 1 ? f(f(b - a) / (n - 1)) : 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = i < n >> 1 || n === 1 ? a + f(step * i) : b - f(step * (n - 1 - i));
  return tf.tensor1d(out, 'float32');
}

function baseBetas(c: Required<DiffusersSchedulerConfig>): tf.Tensor1D {
  const T = c.num_train_timesteps;
  if (c.trained_betas) return tf.tensor1d(c.trained_betas, 'float32');
  switch (c.beta_schedule) {
    case 'linear':
      return torchLinspace(c.beta_start, c.beta_end, T);
    case 'scaled_linear':
      return tf.tidy(() => torchLinspace(Math.sqrt(c.beta_start), Math.sqrt(c.beta_end), T).square());
    case 'squaredcos_cap_v2': {
      // Nichol & Dhariwal's cosine ᾱ, discretised in float64 on the host and stored as float32 (as diffusers).
      const abar = (u: number): number => Math.cos(((u + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
      const b = new Float32Array(T);
      for (let i = 0; i < T; i++) b[i] = Math.min(1 - abar((i + 1) / T) / abar(i / T), 0.999);
      return tf.tensor1d(b, 'float32');
    }
    case 'sigmoid':
      return tf.tidy(() => tf.sigmoid(torchLinspace(-6, 6, T)).mul(c.beta_end - c.beta_start).add(c.beta_start));
  }
}

/** numpy's round: half to even. */
function npRound(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** One step's result: the sample at the previous timestep and x̂₀ (after thresholding or clipping). */
export type DiffusersStepOutput = {
  prevSample: tf.Tensor;
  predOriginalSample: tf.Tensor;
};

/**
 * A diffusers scheduler: its configuration, its float32 buffers (host copies), and the inference timesteps once
 * {@link DiffusersScheduler.setTimesteps} has run.
 */
export class DiffusersScheduler {
  /** Inference timesteps (0-based, decreasing), or undefined: the full chain T−1, …, 0. */
  timesteps?: number[];
  /** n of the last `setTimesteps(n)`. */
  numInferenceSteps?: number;

  private constructor(
    readonly config: Required<DiffusersSchedulerConfig>,
    readonly betas: Float32Array,
    readonly alphasCumprod: Float32Array,
  ) {}

  /** Build the buffers: β (rescaled when asked), α = 1 − β, ᾱ = cumprod α, all tfjs float32. */
  static async create(config: DiffusersSchedulerConfig = {}): Promise<DiffusersScheduler> {
    const c = { ...DEFAULTS, ...Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)) } as Required<DiffusersSchedulerConfig>;
    checkConfig(c);
    const base = baseBetas(c);
    let betas = (await base.data()) as Float32Array;
    base.dispose();
    if (c.rescale_betas_zero_snr) {
      const r = rescaleZeroSnr(betas);
      betas = (await r.data()) as Float32Array;
      r.dispose();
    }
    const alphas = tf.tidy(() => tf.sub(1, tf.tensor1d(betas, 'float32')));
    const ab = cumprodF32((await alphas.data()) as Float32Array);
    alphas.dispose();
    return new DiffusersScheduler(c, betas, ab);
  }

  /** DDIM's ᾱ of "timestep −1": 1 with `set_alpha_to_one`, else ᾱ_1. */
  get finalAlphaCumprod(): number {
    return this.config.set_alpha_to_one ? 1 : this.alphasCumprod[0];
  }

  /** diffusers' `set_timesteps(n)` for the configured spacing (1 ≤ n ≤ T). */
  setTimesteps(n: number): number[] {
    const T = this.config.num_train_timesteps;
    if (!Number.isInteger(n) || n < 1 || n > T) throw new ReferenceArgumentError('DiffusersScheduler.setTimesteps', 'n', `n must be an integer in 1…${T}, got ${String(n)}`);
    const out: number[] = [];
    if (this.config.timestep_spacing === 'leading') {
      const ratio = Math.floor(T / n);
      for (let i = n - 1; i >= 0; i--) out.push(i * ratio + this.config.steps_offset);
    } else if (this.config.timestep_spacing === 'trailing') {
      // np.arange(T, 0, −T/n): ⌈n⌉ entries T + i·d, d the first difference as float64 computes it.
      const d = T - T / n - T;
      for (let i = 0; i < Math.ceil(-T / (-T / n)); i++) out.push(npRound(T + i * d) - 1);
    } else {
      const step = n > 1 ? (T - 1) / (n - 1) : 0;
      for (let i = n - 1; i >= 0; i--) out.push(npRound(n > 1 && i === n - 1 ? T - 1 : i * step));
    }
    this.timesteps = out;
    this.numInferenceSteps = n;
    return [...out];
  }

  /** DDPM's previous timestep: the next inference timestep (−1 after the last), or t − 1 for the full chain. */
  previousTimestep(t: number): number {
    if (!this.timesteps) return t - 1;
    const i = this.timesteps.indexOf(t);
    if (i < 0) throw new ReferenceArgumentError('DiffusersScheduler.previousTimestep', 't', `t = ${t} is not one of the inference timesteps`);
    return i + 1 < this.timesteps.length ? this.timesteps[i + 1] : -1;
  }

  private ab(fn: string, t: number, below: number): number {
    if (!Number.isInteger(t) || t >= this.alphasCumprod.length) throw new ReferenceArgumentError(fn, 't', `timestep must be an integer < ${this.alphasCumprod.length}, got ${String(t)}`);
    return t < 0 ? below : this.alphasCumprod[t];
  }

  /** x̂₀ and the model's ε̂ from its output, as float32 tensors. */
  private predict(x: tf.Tensor, out: tf.Tensor, ab: number): { x0: tf.Tensor; eps: tf.Tensor } {
    const sa = Math.fround(Math.sqrt(ab));
    const sb = Math.fround(Math.sqrt(Math.fround(1 - ab)));
    switch (this.config.prediction_type) {
      case 'epsilon':
        return { x0: x.sub(out.mul(sb)).div(sa), eps: out };
      case 'sample':
        return { x0: out, eps: x.sub(out.mul(sa)).div(sb) };
      case 'v_prediction':
        return { x0: x.mul(sa).sub(out.mul(sb)), eps: out.mul(sa).add(x.mul(sb)) };
    }
  }

  /** Dynamic thresholding per example (torch.quantile's linear interpolation), else clipping, else nothing. */
  private limit(x0: tf.Tensor): tf.Tensor {
    const c = this.config;
    if (c.thresholding) {
      const B = x0.shape[0];
      const flat = x0.reshape([B, -1]);
      const N = flat.shape[1]!;
      const sorted = tf.topk(flat.abs(), N).values.reverse(1); // ascending
      const pos = c.dynamic_thresholding_ratio * (N - 1);
      const lo = Math.floor(pos);
      const hi = Math.min(lo + 1, N - 1);
      const w = pos - lo;
      const a = sorted.slice([0, lo], [B, 1]);
      const b = sorted.slice([0, hi], [B, 1]);
      const q = w < 0.5 ? a.add(b.sub(a).mul(w)) : b.sub(b.sub(a).mul(1 - w));
      const s = q.clipByValue(1, c.sample_max_value);
      return tf.minimum(tf.maximum(flat, s.neg()), s).div(s).reshape(x0.shape);
    }
    if (c.clip_sample) return x0.clipByValue(-c.clip_sample_range, c.clip_sample_range);
    return x0;
  }

  /**
   * DDPM's `_get_variance(t)` (float32): β̃ clamped at 1e−20 (`fixed_small`), its square root (`fixed_small_log`),
   * β′ (`fixed_large`), log β′ (`fixed_large_log`), the prediction (`learned`), or the interpolation of log β̃ and
   * log β′ with f = (v+1)/2 (`learned_range`). A scalar tensor for the fixed types.
   */
  ddpmVariance(t: number, predictedVariance?: tf.Tensor): tf.Tensor {
    const fn = 'DiffusersScheduler.ddpmVariance';
    const f = Math.fround;
    const ab = this.ab(fn, t, 1);
    const abPrev = this.ab(fn, this.previousTimestep(t), 1);
    const betaT = f(1 - f(ab / abPrev));
    const small = Math.max(f(f(f(1 - abPrev) / f(1 - ab)) * betaT), 1e-20);
    const type = this.config.variance_type;
    if ((type === 'learned' || type === 'learned_range') && !predictedVariance) {
      throw new ReferenceArgumentError(fn, 'predictedVariance', `variance_type '${type}' needs the predicted variance`);
    }
    return tf.tidy(() => {
      switch (type) {
        case 'fixed_small':
          return tf.scalar(small);
        case 'fixed_small_log':
          return tf.exp(tf.log(tf.scalar(small)).mul(0.5));
        case 'fixed_large':
          return tf.scalar(betaT);
        case 'fixed_large_log':
          return tf.log(tf.scalar(betaT));
        case 'learned':
          return predictedVariance!.clone();
        case 'learned_range': {
          const frac = predictedVariance!.add(1).div(2);
          return frac.mul(f(Math.log(betaT))).add(tf.sub(1, frac).mul(f(Math.log(small))));
        }
      }
    });
  }

  /**
   * `DDPMScheduler.step` at timestep t (0-based) for the whole batch: the posterior mean around x̂₀ towards the
   * previous timestep, plus σ·noise for t > 0 (σ per variance type; `fixed_large_log` gives NaN, as diffusers).
   *
   * @param predictedVariance - the variance half of the model output (`learned`, `learned_range`)
   */
  ddpmStep(modelOutput: tf.Tensor, t: number, sample: tf.Tensor, noise: tf.Tensor, predictedVariance?: tf.Tensor): DiffusersStepOutput {
    const fn = 'DiffusersScheduler.ddpmStep';
    floatTensor(fn, 'sample', sample, 1);
    sameShape(fn, 'sample', sample, 'modelOutput', modelOutput);
    sameShape(fn, 'sample', sample, 'noise', noise);
    const f = Math.fround;
    const prevT = this.previousTimestep(t);
    const ab = this.ab(fn, t, 1);
    const abPrev = this.ab(fn, prevT, 1);
    const [bp, bpPrev] = [f(1 - ab), f(1 - abPrev)];
    const alphaT = f(ab / abPrev);
    const betaT = f(1 - alphaT);
    const type = this.config.variance_type;
    if ((type === 'learned' || type === 'learned_range') && t > 0 && !predictedVariance) {
      throw new ReferenceArgumentError(fn, 'predictedVariance', `variance_type '${type}' needs the predicted variance`);
    }
    return tf.tidy(() => {
      const x0 = this.limit(this.predict(sample, modelOutput, ab).x0);
      let prev = x0.mul(f(f(f(Math.sqrt(abPrev)) * betaT) / bp)).add(sample.mul(f(f(f(Math.sqrt(alphaT)) * bpPrev) / bp)));
      if (t > 0) {
        // σ from _get_variance: its square root, except fixed_small_log (already σ) and learned_range (exp ½·log σ²).
        const v = this.ddpmVariance(t, predictedVariance);
        const sd = type === 'fixed_small_log' ? v : type === 'learned_range' ? tf.exp(v.mul(0.5)) : tf.sqrt(v);
        prev = prev.add(noise.mul(sd));
      }
      return { prevSample: prev, predOriginalSample: x0 };
    });
  }

  /**
   * `DDIMScheduler.step` at timestep t, to t − ⌊T/n⌋ (the final ᾱ below 0), with η; ε̂ re-derived from the clipped
   * x̂₀ only with `useClippedModelOutput`; noise added only when η > 0.
   */
  ddimStep(modelOutput: tf.Tensor, t: number, sample: tf.Tensor, eta: number, noise: tf.Tensor, useClippedModelOutput = false): DiffusersStepOutput {
    const fn = 'DiffusersScheduler.ddimStep';
    floatTensor(fn, 'sample', sample, 1);
    sameShape(fn, 'sample', sample, 'modelOutput', modelOutput);
    sameShape(fn, 'sample', sample, 'noise', noise);
    if (!this.numInferenceSteps) throw new ReferenceArgumentError(fn, 'numInferenceSteps', 'call setTimesteps(n) before ddimStep, as diffusers requires');
    if (!(typeof eta === 'number' && eta >= 0 && Number.isFinite(eta))) throw new ReferenceArgumentError(fn, 'eta', `eta must be a finite number ≥ 0, got ${String(eta)}`);
    const f = Math.fround;
    const prevT = t - Math.floor(this.config.num_train_timesteps / this.numInferenceSteps);
    const ab = this.ab(fn, t, this.finalAlphaCumprod);
    const abPrev = this.ab(fn, prevT, this.finalAlphaCumprod);
    const bp = f(1 - ab);
    const variance = f(f(f(1 - abPrev) / bp) * f(1 - f(ab / abPrev)));
    const sd = f(eta * f(Math.sqrt(variance)));
    return tf.tidy(() => {
      const p = this.predict(sample, modelOutput, ab);
      const x0 = this.limit(p.x0);
      const eps = useClippedModelOutput ? sample.sub(x0.mul(f(Math.sqrt(ab)))).div(f(Math.sqrt(bp))) : p.eps;
      let prev = x0.mul(f(Math.sqrt(abPrev))).add(eps.mul(f(Math.sqrt(f(f(1 - abPrev) - f(sd * sd))))));
      if (eta > 0) prev = prev.add(noise.mul(sd));
      return { prevSample: prev, predOriginalSample: x0 };
    });
  }
}
