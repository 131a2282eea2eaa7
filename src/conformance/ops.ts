/**
 * The operation vocabulary shared by golden replay, the reusable laws and `ddpm-spec check`.
 *
 * An implementation under test (our float64 spec, our tfjs reference, or anyone else's code behind the
 * `--impl` protocol) is an object with these asynchronous operations. The conventions are those of the
 * public reference code, which the golden data records, so that any implementation can be driven without
 * translation:
 *
 * - **Timesteps are 0-based**: `t ∈ {0, …, T−1}`; buffer arrays have length T and are indexed by t. The paper's
 *   1-based step t_paper corresponds to `t = t_paper − 1`.
 * - **Tensors are row-major `{shape, data}` with data as float64**; images are **NCHW** (PyTorch), even though the
 *   tfjs reference computes in NHWC internally.
 * - Per-example timesteps: `t` has shape `[B]` and its entries need not be equal or sorted.
 * - The noise schedule is passed as explicit `betas` (float64, length T); named schedules are their own operation.
 * - Units: KL and likelihood terms in nats unless the name says bits (`*_bpd`, training `vb`: bits, as the
 *   reference code returns them).
 *
 * Operations an implementation does not support may be left undefined; the checker lists them as skipped, as a
 * whole. The argument and result schemas are in `vocabulary.ts`.
 *
 * @module
 */

import type { DiffusersOps } from './diffusersOps.ts';
import { OP_NAMES, type BufferName, type DiffusionConfig, type LossType, type OpName, type Precision, type ScheduleArgs } from './vocabulary.ts';

export { BUFFER_NAMES, OP_NAMES, type BufferName, type LossType, type ModelMeanType, type ModelVarType, type OpName, type Precision, type ScheduleArgs } from './vocabulary.ts';

/** A dense row-major tensor of doubles. */
export interface Tensor {
  shape: number[];
  data: Float64Array;
}

/**
 * The model that drives a loop: either the golden data's TinyModel (a fixed linear map,
 * `out[b,o,h,w] = Σ_i W[o,i]·x[b,i,h,w] + bias[o] + tw[o]·t_model[b]/1000`, where t_model is the timestep the
 * diffusion code hands to the model) or a fixed output tensor.
 */
export type ModelSpec =
  | { kind: 'tiny'; W: Tensor; bias: Tensor; tw: Tensor }
  | { kind: 'output'; output: Tensor };

/** Common arguments of the GaussianDiffusion operations: the betas and the {@link DiffusionConfig}. */
export type DiffusionArgs = DiffusionConfig & { betas: Tensor };

/** The operations. Every one is optional; all take and return tensors as described above. */
export interface DiffusionOps extends DiffusersOps {
  /** A short name for reports (e.g. `reference (tfjs, wasm)`). */
  readonly name: string;
  /** The arithmetic it computes in (default float32): golden tolerances and laws use the bounds of that precision. */
  readonly precision?: Precision;
  /**
   * The CDF its discretised likelihood integrates: the reference code's tanh approximation (default) or the exact Φ
   * of Ho et al. eq. 13; the likelihood bounds then add the approximation's largest error (`TANH_CDF_MAX_ERR`).
   */
  readonly cdf?: 'tanh' | 'exact';

  schedule?(a: ScheduleArgs): Promise<{ betas: Tensor }>;
  buffers?(a: { betas: Tensor }): Promise<Record<BufferName, Tensor>>;

  q_sample?(a: DiffusionArgs, x_start: Tensor, t: Tensor, noise: Tensor): Promise<{ x_t: Tensor }>;
  q_mean_variance?(a: DiffusionArgs, x_start: Tensor, t: Tensor): Promise<{ mean: Tensor; variance: Tensor; log_variance: Tensor }>;
  q_posterior_mean_variance?(
    a: DiffusionArgs,
    x_start: Tensor,
    x_t: Tensor,
    t: Tensor,
  ): Promise<{ mean: Tensor; variance: Tensor; log_variance_clipped: Tensor }>;
  predict_xstart_from_eps?(a: DiffusionArgs, x_t: Tensor, t: Tensor, eps: Tensor): Promise<{ pred_xstart: Tensor }>;
  predict_xstart_from_xprev?(a: DiffusionArgs, x_t: Tensor, t: Tensor, xprev: Tensor): Promise<{ pred_xstart: Tensor }>;
  predict_eps_from_xstart?(a: DiffusionArgs, x_t: Tensor, t: Tensor, pred_xstart: Tensor): Promise<{ eps: Tensor }>;

  p_mean_variance?(
    a: DiffusionArgs & { clip_denoised: boolean },
    model: ModelSpec,
    x: Tensor,
    t: Tensor,
  ): Promise<{ mean: Tensor; variance: Tensor; log_variance: Tensor; pred_xstart: Tensor }>;

  normal_kl?(mean1: Tensor, logvar1: Tensor, mean2: Tensor, logvar2: Tensor): Promise<{ kl: Tensor }>;
  approx_standard_normal_cdf?(x: Tensor): Promise<{ cdf: Tensor }>;
  /** log-probabilities in nats of x on the 256-level grid of [−1, 1]; `log_scales` = ½·log σ². */
  discretized_gaussian_log_likelihood?(x: Tensor, means: Tensor, log_scales: Tensor): Promise<{ log_probs: Tensor }>;

  /**
   * improved's `training_losses` with explicit noise and the TinyModel: per-example terms ([B]); vb terms in bits.
   * With `grads`, also the gradient of Σ_batch of each returned term w.r.t. the TinyModel's W, bias and tw.
   */
  training_losses?(
    a: DiffusionArgs & { loss_type: LossType; grads?: boolean },
    model: ModelSpec & { kind: 'tiny' },
    x_start: Tensor,
    t: Tensor,
    noise: Tensor,
  ): Promise<{ terms: Record<string, Tensor>; grads?: Record<string, { W: Tensor; bias: Tensor; tw: Tensor }> }>;

  /** improved's `calc_bpd_loop` with the noise of each step given, in loop order t = T−1, …, 0. */
  calc_bpd_loop?(
    a: DiffusionArgs & { clip_denoised: boolean },
    model: ModelSpec,
    x_start: Tensor,
    noise_per_step_in_loop_order: Tensor,
  ): Promise<{ total_bpd: Tensor; prior_bpd: Tensor; vb: Tensor; xstart_mse: Tensor; mse: Tensor }>;

  /** `ho`: Ho/pesser (sin | cos, divide by half − 1); `improved`: (cos | sin, divide by half, max_period 10000). */
  timestep_embedding?(a: { flavor: 'ho' | 'improved'; dim: number }, t: Tensor): Promise<{ embedding: Tensor }>;

  /** One ancestral step x_t → x_{t−1} (no noise at t = 0). `t` is [B]. */
  p_sample_step?(
    a: DiffusionArgs & { clip_denoised: boolean },
    model: ModelSpec,
    x: Tensor,
    t: Tensor,
    noise: Tensor,
  ): Promise<{ sample: Tensor; pred_xstart: Tensor }>;
  /** One DDIM step x_t → x_{t−1} with η; ε re-derived from the (clipped) x̂₀, as improved does. */
  ddim_step?(
    a: DiffusionArgs & { clip_denoised: boolean; eta: number },
    model: ModelSpec,
    x: Tensor,
    t: Tensor,
    noise: Tensor,
  ): Promise<{ sample: Tensor; pred_xstart: Tensor }>;
  /** One deterministic reverse-DDIM step x_t → x_{t+1}. */
  ddim_reverse_step?(a: DiffusionArgs & { clip_denoised: boolean }, model: ModelSpec, x: Tensor, t: Tensor): Promise<{ sample: Tensor; pred_xstart: Tensor }>;

  /** improved's `space_timesteps(num_timesteps, section_counts)`; `section_counts` as a string ("ddim20", "10,15") or list. */
  space_timesteps?(a: { num_timesteps: number; section_counts: string | number[] }): Promise<{ timesteps: number[] }>;
  /** Respaced betas for kept timesteps: β'_i = 1 − ᾱ_{map[i]}/ᾱ_{map[i−1]}, with the timestep map. */
  respace?(a: { betas: Tensor; use_timesteps: number[] }): Promise<{ betas: Tensor; timestep_map: number[] }>;
}

/** An operation failed in the implementation with a message (e.g. `space_timesteps` refusing `ddim999`). */
export class OpError extends Error {
  override name = 'OpError';
}

/**
 * The implementation declines these arguments (protocol `error.type = "unsupported"`). For an operation it lists,
 * a declined case makes the verdict INCOMPLETE; only the optional parts (the gradients of `training_losses`) may be
 * declined freely.
 */
export class OpUnsupported extends OpError {
  override name = 'OpUnsupported';
}

/** Every operation of the vocabulary is a method here: adding a name to `OP_NAMES` without its method fails to compile. */
export const OPS_WITH_METHODS: ReadonlyArray<Exclude<keyof DiffusionOps, 'name' | 'precision' | 'cdf'>> = OP_NAMES;
