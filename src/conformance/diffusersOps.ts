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
 * @module
 */
import { z } from 'zod';
import type { Tensor } from './ops.ts';

/** A scheduler configuration on the wire: diffusers' option names, every one optional (diffusers' defaults). */
export const DiffusersArgsWire = z.object({
  num_train_timesteps: z.number().int().positive().optional(),
  beta_start: z.number().positive().optional(),
  beta_end: z.number().positive().optional(),
  beta_schedule: z.enum(['linear', 'scaled_linear', 'squaredcos_cap_v2', 'sigmoid']).optional(),
  trained_betas: z.array(z.number()).nullish(),
  variance_type: z.enum(['fixed_small', 'fixed_small_log', 'fixed_large', 'fixed_large_log', 'learned', 'learned_range']).optional(),
  clip_sample: z.boolean().optional(),
  clip_sample_range: z.number().positive().optional(),
  prediction_type: z.enum(['epsilon', 'sample', 'v_prediction']).optional(),
  thresholding: z.boolean().optional(),
  dynamic_thresholding_ratio: z.number().optional(),
  sample_max_value: z.number().optional(),
  timestep_spacing: z.enum(['leading', 'trailing', 'linspace']).optional(),
  steps_offset: z.number().int().nonnegative().optional(),
  rescale_betas_zero_snr: z.boolean().optional(),
  set_alpha_to_one: z.boolean().optional(),
  num_inference_steps: z.number().int().positive().nullish().describe('what set_timesteps was called with; absent or null: the full chain'),
  buffers: z.enum(['float64', 'float32']).optional().describe("the spec's buffer convention: float32 rounds as torch does (diffusers itself is float32)"),
});
export type DiffusersArgs = z.infer<typeof DiffusersArgsWire>;

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

/** The names of the diffusers operations. */
export const DIFFUSERS_OP_NAMES = ['diffusers_buffers', 'diffusers_set_timesteps', 'diffusers_ddpm_variance', 'diffusers_ddpm_step', 'diffusers_ddim_step'] as const satisfies ReadonlyArray<keyof DiffusersOps>;

const T = z.number().int().nonnegative().describe("diffusers' 0-based timestep");

/** Wire forms (see `OpWire` in protocol.ts), merged into the protocol's operation table. */
export const DIFFUSERS_OP_WIRE = {
  diffusers_buffers: { doc: "diffusers scheduler buffers: betas, alphas, alphas_cumprod [T], final_alpha_cumprod []", params: ['args'], argTensors: [], args: DiffusersArgsWire, outputs: ['betas', 'alphas', 'alphas_cumprod', 'final_alpha_cumprod'] },
  diffusers_set_timesteps: {
    doc: "diffusers' set_timesteps(num_inference_steps) for the configured timestep_spacing and steps_offset (int64, decreasing)",
    params: ['args'],
    argTensors: [],
    args: DiffusersArgsWire.extend({ num_inference_steps: z.number().int().positive() }),
    outputs: ['timesteps'],
  },
  diffusers_ddpm_variance: { doc: "DDPMScheduler._get_variance(t, predicted_variance)", params: ['args', 'predicted_variance'], argTensors: [], args: DiffusersArgsWire.extend({ t: T }), outputs: ['variance'] },
  diffusers_ddpm_step: {
    doc: 'DDPMScheduler.step at t (NCHW; 2C output channels for learned variance types) with the noise given',
    params: ['args', 'model_output', 'sample', 'noise'],
    argTensors: [],
    args: DiffusersArgsWire.extend({ t: T }),
    outputs: ['prev_sample', 'pred_original_sample'],
  },
  diffusers_ddim_step: {
    doc: 'DDIMScheduler.step at t with eta and use_clipped_model_output, the noise given as variance_noise',
    params: ['args', 'model_output', 'sample', 'noise'],
    argTensors: [],
    args: DiffusersArgsWire.extend({ t: T, eta: z.number().nonnegative(), use_clipped_model_output: z.boolean(), num_inference_steps: z.number().int().positive() }),
    outputs: ['prev_sample', 'pred_original_sample'],
  },
} as const;
