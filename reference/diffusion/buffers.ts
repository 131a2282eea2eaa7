/**
 * The buffers a Gaussian diffusion precomputes from its betas, and the diffusion object that holds them as
 * float32 tensors.
 *
 * As in the public code, every buffer is computed on the host in float64 (numpy there, `Float64Array` here)
 * and rounded to float32 exactly once, when it is gathered for a batch and multiplies a float32 tensor.
 * Index base: 0-based t ∈ {0, …, T−1}; every buffer has length T.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { ReferenceArgumentError, finiteArray, oneOf, positiveInt, timesteps, type Timesteps } from './errors.ts';

// The enums' one declaration is the conformance vocabulary (a zod-only module), in the reference code's spelling.
import { LossType, ModelMeanType, ModelVarType } from '../../src/conformance/vocabulary.ts';
export { LossType, ModelMeanType, ModelVarType };

/** The float64 buffers (improved-diffusion's `GaussianDiffusion.__init__` plus the arrays its methods build inline). */
export interface Buffers64 {
  betas: Float64Array;
  /** ᾱ_t = Π_{s ≤ t} (1 − β_s) */
  alphas_cumprod: Float64Array;
  /** ᾱ_{t−1}, with ᾱ_{−1} = 1 */
  alphas_cumprod_prev: Float64Array;
  /** ᾱ_{t+1}, with ᾱ_T = 0 */
  alphas_cumprod_next: Float64Array;
  sqrt_alphas_cumprod: Float64Array;
  sqrt_one_minus_alphas_cumprod: Float64Array;
  log_one_minus_alphas_cumprod: Float64Array;
  sqrt_recip_alphas_cumprod: Float64Array;
  sqrt_recipm1_alphas_cumprod: Float64Array;
  /** β̃_t = β_t (1 − ᾱ_{t−1})/(1 − ᾱ_t); β̃_0 = 0 */
  posterior_variance: Float64Array;
  /** log β̃_t with the t = 0 entry replaced by log β̃_1 (β̃_0 = 0 has no logarithm) */
  posterior_log_variance_clipped: Float64Array;
  posterior_mean_coef1: Float64Array;
  posterior_mean_coef2: Float64Array;
  /** 1 − ᾱ_t (the variance of q(x_t | x_0)) */
  one_minus_alphas_cumprod: Float64Array;
  /** FIXED_LARGE variance: β̃_1 at t = 0, β_t otherwise */
  fixedlarge_variance: Float64Array;
  fixedlarge_log_variance: Float64Array;
  log_betas: Float64Array;
  /** 1 / posterior_mean_coef1 (for x₀ from x_{t−1}) */
  recip_posterior_mean_coef1: Float64Array;
  /** posterior_mean_coef2 / posterior_mean_coef1 */
  posterior_mean_coef2_over_coef1: Float64Array;
}
export type BufferKey = keyof Buffers64;

/**
 * Compute every buffer in float64 from the betas, with the expressions (and their order) of the public code.
 *
 * @param betas - β_t for t = 0 … T−1; each in (0, 1], T ≥ 2 (the clipped log-variance needs β̃_1)
 * @throws {@link ReferenceArgumentError} naming `betas` and the offending entry
 */
export function computeBuffers(betas: ArrayLike<number>): Buffers64 {
  const fn = 'computeBuffers';
  if (betas === null || typeof betas !== 'object' || typeof betas.length !== 'number') {
    throw new ReferenceArgumentError(fn, 'betas', `betas must be an array of numbers, got ${typeof betas}`);
  }
  const T = betas.length;
  if (T < 2) throw new ReferenceArgumentError(fn, 'betas', `betas must have length T ≥ 2 (the clipped posterior log-variance uses β̃_1), got ${T}`);
  finiteArray(fn, 'betas', betas);
  for (let i = 0; i < T; i++) {
    if (!(betas[i] > 0 && betas[i] <= 1)) throw new ReferenceArgumentError(fn, 'betas', `betas[${i}] must be in (0, 1], got ${betas[i]}`);
  }
  const b = Float64Array.from(betas);
  const map = (f: (i: number) => number): Float64Array => {
    const out = new Float64Array(T);
    for (let i = 0; i < T; i++) out[i] = f(i);
    return out;
  };
  const alphas = map((i) => 1.0 - b[i]);
  const ac = new Float64Array(T);
  let prod = 1;
  for (let i = 0; i < T; i++) {
    prod = i === 0 ? alphas[0] : prod * alphas[i];
    ac[i] = prod;
  }
  const acPrev = map((i) => (i === 0 ? 1.0 : ac[i - 1]));
  const acNext = map((i) => (i === T - 1 ? 0.0 : ac[i + 1]));
  const postVar = map((i) => (b[i] * (1.0 - acPrev[i])) / (1.0 - ac[i]));
  const coef1 = map((i) => (b[i] * Math.sqrt(acPrev[i])) / (1.0 - ac[i]));
  const coef2 = map((i) => ((1.0 - acPrev[i]) * Math.sqrt(alphas[i])) / (1.0 - ac[i]));
  const fixedLarge = map((i) => (i === 0 ? postVar[1] : b[i]));
  return {
    betas: b,
    alphas_cumprod: ac,
    alphas_cumprod_prev: acPrev,
    alphas_cumprod_next: acNext,
    sqrt_alphas_cumprod: map((i) => Math.sqrt(ac[i])),
    sqrt_one_minus_alphas_cumprod: map((i) => Math.sqrt(1.0 - ac[i])),
    log_one_minus_alphas_cumprod: map((i) => Math.log(1.0 - ac[i])),
    sqrt_recip_alphas_cumprod: map((i) => Math.sqrt(1.0 / ac[i])),
    sqrt_recipm1_alphas_cumprod: map((i) => Math.sqrt(1.0 / ac[i] - 1)),
    posterior_variance: postVar,
    posterior_log_variance_clipped: map((i) => Math.log(i === 0 ? postVar[1] : postVar[i])),
    posterior_mean_coef1: coef1,
    posterior_mean_coef2: coef2,
    one_minus_alphas_cumprod: map((i) => 1.0 - ac[i]),
    fixedlarge_variance: fixedLarge,
    fixedlarge_log_variance: map((i) => Math.log(fixedLarge[i])),
    log_betas: map((i) => Math.log(b[i])),
    recip_posterior_mean_coef1: map((i) => 1.0 / coef1[i]),
    posterior_mean_coef2_over_coef1: map((i) => coef2[i] / coef1[i]),
  };
}

/** How a diffusion is configured. */
export interface DiffusionOptions {
  /** β_t, t = 0 … T−1, float64. */
  betas: ArrayLike<number>;
  /** What the model predicts (default `EPSILON`). */
  modelMeanType?: ModelMeanType;
  /** The variance of p(x_{t−1}|x_t) (default `FIXED_SMALL`). */
  modelVarType?: ModelVarType;
  /** The training loss (default `MSE`). */
  lossType?: LossType;
  /** Hand the model t·1000/T (float32) instead of the integer t (improved's `rescale_timesteps`). */
  rescaleTimesteps?: boolean;
  /** For a respaced diffusion: the original timestep of each respaced index, handed to the model. */
  timestepMap?: readonly number[];
  /** For a respaced diffusion with `rescaleTimesteps`: the original number of steps (the scale is 1000/that). */
  originalNumTimesteps?: number;
}

/**
 * A Gaussian diffusion: its configuration and its buffers as float32 tensors (kept alive until
 * {@link GaussianDiffusion.dispose}).
 */
export class GaussianDiffusion {
  readonly T: number;
  readonly buffers64: Buffers64;
  readonly modelMeanType: ModelMeanType;
  readonly modelVarType: ModelVarType;
  readonly lossType: LossType;
  readonly rescaleTimesteps: boolean;
  readonly timestepMap: readonly number[] | undefined;
  readonly originalNumTimesteps: number | undefined;
  private readonly f32 = new Map<BufferKey, tf.Tensor1D>();
  private disposed = false;

  constructor(opts: DiffusionOptions) {
    const fn = 'GaussianDiffusion';
    if (opts === null || typeof opts !== 'object') throw new ReferenceArgumentError(fn, 'options', 'options must be an object with betas');
    this.buffers64 = computeBuffers(opts.betas);
    this.T = this.buffers64.betas.length;
    const mean = opts.modelMeanType ?? 'EPSILON';
    const v = opts.modelVarType ?? 'FIXED_SMALL';
    const loss = opts.lossType ?? 'MSE';
    oneOf(fn, 'modelMeanType', mean, ModelMeanType.options);
    oneOf(fn, 'modelVarType', v, ModelVarType.options);
    oneOf(fn, 'lossType', loss, LossType.options);
    this.modelMeanType = mean;
    this.modelVarType = v;
    this.lossType = loss;
    this.rescaleTimesteps = opts.rescaleTimesteps ?? false;
    if (typeof this.rescaleTimesteps !== 'boolean') throw new ReferenceArgumentError(fn, 'rescaleTimesteps', `rescaleTimesteps must be a boolean, got ${String(opts.rescaleTimesteps)}`);
    if (opts.timestepMap !== undefined) {
      const m = opts.timestepMap;
      if (!Array.isArray(m) || m.length !== this.T || m.some((s) => !Number.isSafeInteger(s) || s < 0)) {
        throw new ReferenceArgumentError(fn, 'timestepMap', `timestepMap must list ${this.T} non-negative integer original timesteps (one per respaced step), got ${JSON.stringify(m)?.slice(0, 80)}`);
      }
      this.timestepMap = [...m];
      if (this.rescaleTimesteps) {
        positiveInt(fn, 'originalNumTimesteps', opts.originalNumTimesteps);
        this.originalNumTimesteps = opts.originalNumTimesteps;
      }
    }
  }

  /** The float32 tensor of one buffer (created once, kept until dispose). */
  buffer(name: BufferKey): tf.Tensor1D {
    if (this.disposed) throw new ReferenceArgumentError('GaussianDiffusion', 'this', 'the diffusion has been disposed');
    let t = this.f32.get(name);
    if (t === undefined) {
      const src = this.buffers64[name];
      t = tf.keep(tf.tensor1d(Float32Array.from(src), 'float32'));
      this.f32.set(name, t);
    }
    return t;
  }

  /**
   * Gather a buffer at per-example timesteps, shaped `[B, 1, …, 1]` (rank `rank`) to broadcast over a batch
   * (improved's `_extract_into_tensor`: the float64 value rounded to float32).
   */
  extract(name: BufferKey, t: tf.Tensor1D, rank: number): tf.Tensor {
    const g = tf.gather(this.buffer(name), t);
    return rank <= 1 ? g : g.reshape([t.shape[0], ...new Array<number>(rank - 1).fill(1)]);
  }

  /** Check host timesteps for a batch of `batch` examples. */
  checkT(fn: string, t: Timesteps, batch: number, name = 't'): void {
    timesteps(fn, t, this.T, batch, name);
  }

  /** Timesteps as an int32 index tensor (after {@link checkT}). */
  indexTensor(t: Timesteps): tf.Tensor1D {
    return tf.tensor1d(Int32Array.from(t as ArrayLike<number>), 'int32');
  }

  /**
   * The timesteps handed to the model, as float32 (host): the respaced index mapped to its original timestep,
   * then ×1000/T_original when timesteps are rescaled (both in float32, as torch does).
   */
  modelTimesteps(t: Timesteps): Float32Array {
    const out = new Float32Array(t.length);
    const T0 = this.timestepMap !== undefined ? this.originalNumTimesteps : this.T;
    const scale = Math.fround(1000.0 / (T0 ?? this.T));
    for (let i = 0; i < t.length; i++) {
      const s = this.timestepMap !== undefined ? this.timestepMap[t[i]] : t[i];
      out[i] = this.rescaleTimesteps ? Math.fround(Math.fround(s) * scale) : s;
    }
    return out;
  }

  /** Release the float32 buffers. */
  dispose(): void {
    for (const t of this.f32.values()) t.dispose();
    this.f32.clear();
    this.disposed = true;
  }
}
