/**
 * The operations of diffusers' `DDPMScheduler` / `DDIMScheduler`, so that `ddpm-spec check` (and `--impl`) can
 * drive a diffusers-based implementation step by step under a scheduler configuration.
 *
 * Conventions are diffusers' own: the configuration travels in diffusers' option names (`beta_schedule`,
 * `timestep_spacing`, `set_alpha_to_one`, …, see `spec/ddpm/diffusers.ts`), timesteps are 0-based, one timestep
 * `t` for the whole batch (as `scheduler.step`), tensors are NCHW with the batch first, and for the learned variance
 * types the model output has 2C channels (`[:C]` the prediction, `[C:]` the variance part), as diffusers splits it.
 * `num_inference_steps` (when given) is what `set_timesteps` was called with before the step. `buffers` is the
 * spec's convention (`float32` rounds the buffers as torch does); an implementation may ignore it.
 *
 * Their names, argument schemas and outputs are entries of the vocabulary (`OP_NAMES`, `OP_SPECS` and
 * `DiffusersArgs` in `vocabulary.ts`); this module holds the methods' signatures.
 *
 * @module
 */
import type { Tensor } from './ops.ts';
import type { DiffusersArgs } from './vocabulary.ts';

export type { DiffusersArgs } from './vocabulary.ts';

/** The diffusers operations (each optional, as every operation of the vocabulary). */
export interface DiffusersOps {
  /** The scheduler's buffers after `__init__`: `betas`, `alphas`, `alphas_cumprod` [T] and DDIM's `final_alpha_cumprod` []. */
  diffusers_buffers?(a: DiffusersArgs): Promise<{ betas: Tensor; alphas: Tensor; alphas_cumprod: Tensor; final_alpha_cumprod: Tensor }>;
  /** `set_timesteps(num_inference_steps)`: the timesteps (int64, decreasing). */
  diffusers_set_timesteps?(a: DiffusersArgs & { num_inference_steps: number }): Promise<{ timesteps: Tensor }>;
  /** DDPM `_get_variance(t, predicted_variance)` (predicted_variance is ignored by the fixed types). */
  diffusers_ddpm_variance?(a: DiffusersArgs & { t: number }, predicted_variance: Tensor): Promise<{ variance: Tensor }>;
  /** `DDPMScheduler.step(model_output, t, sample)` with the noise it would draw given (unused at t = 0). */
  diffusers_ddpm_step?(a: DiffusersArgs & { t: number }, model_output: Tensor, sample: Tensor, noise: Tensor): Promise<{ prev_sample: Tensor; pred_original_sample: Tensor }>;
  /** `DDIMScheduler.step(model_output, t, sample, eta, use_clipped_model_output, variance_noise=noise)`. */
  diffusers_ddim_step?(
    a: DiffusersArgs & { t: number; eta: number; use_clipped_model_output: boolean; num_inference_steps: number },
    model_output: Tensor,
    sample: Tensor,
    noise: Tensor,
  ): Promise<{ prev_sample: Tensor; pred_original_sample: Tensor }>;
}
