/**
 * The conformance vocabulary: one zod schema per concept that the protocol, the golden readers, the adapters
 * (spec, reference, stdio) and the laws share, with the TypeScript type of the same name from `z.infer`.
 *
 * - the enums of the reference code's `GaussianDiffusion`: {@link ModelMeanType}, {@link ModelVarType},
 *   {@link LossType}, and the model kinds the operations accept ({@link ModelKind});
 * - the declared arithmetic of an implementation ({@link Precision});
 * - the arguments of a named schedule ({@link ScheduleArgs}) and of a diffusion ({@link DiffusionConfig});
 * - the configuration of diffusers' schedulers in diffusers' option names ({@link DiffusersArgs});
 * - every operation: its parameters, its argument schema, its output names and its place in the dependency order
 *   ({@link OP_SPECS}).
 *
 * **Adding an operation** is one entry in {@link OP_NAMES} and one in {@link OP_SPECS} here (the compiler then asks
 * for the method of `DiffusionOps` in `ops.ts`); the protocol, its JSON Schema and the report's ordering follow.
 *
 * This module imports only zod, so that every layer (the reference included) can take its names from here.
 *
 * @module
 */
import { z } from 'zod';

// ---------------------------------------------------------------------------------------------------------
// Enums (the reference code's spelling, everywhere)
// ---------------------------------------------------------------------------------------------------------

/** What the model predicts: ε, x₀ or x_{t−1}. */
export const ModelMeanType = z.enum(['EPSILON', 'START_X', 'PREVIOUS_X']).describe('what the model predicts: ε, x₀ or x_{t−1}');
export type ModelMeanType = z.infer<typeof ModelMeanType>;

/** The variance of p(x_{t−1} | x_t): fixed (β̃_t or β_t) or learned (log σ², or an interpolation v). */
export const ModelVarType = z
  .enum(['FIXED_SMALL', 'FIXED_LARGE', 'LEARNED', 'LEARNED_RANGE'])
  .describe(
    'FIXED_SMALL: posterior variance β̃_t (log clipped at t = 0); FIXED_LARGE: β_t (β̃_1 at t = 0); LEARNED: log σ² from the model; LEARNED_RANGE: interpolation v between log β̃_t and log β_t',
  );
export type ModelVarType = z.infer<typeof ModelVarType>;

/** The training loss: the ε/x₀/x_{t−1} MSE (plus the vb term for learned variances) or the bound itself. */
export const LossType = z.enum(['MSE', 'RESCALED_MSE', 'KL', 'RESCALED_KL']).describe('RESCALED_MSE multiplies the vb term by T/1000; RESCALED_KL multiplies the KL by T');
export type LossType = z.infer<typeof LossType>;

/** The models an operation can be driven with. */
export const ModelKind = z
  .enum(['tiny', 'output'])
  .describe(
    'tiny: out[b,o,h,w] = Σ_i W[o,i]·x[b,i,h,w] + bias[o] + tw[o]·t_model[b]/1000 with inputs model.W, model.bias, model.tw; output: the model returns inputs model.output whatever x and t are',
  );
export type ModelKind = z.infer<typeof ModelKind>;

/**
 * The arithmetic an implementation declares in its handshake; golden tolerances and laws use the matching table.
 * The built-in reference is float32 (tfjs), the built-in spec float64; an implementation that says nothing is float32.
 */
export const Precision = z.enum(['float32', 'float64']).describe('the arithmetic of the implementation (default float32): tolerances and laws use the matching table');
export type Precision = z.infer<typeof Precision>;
export const DEFAULT_PRECISION: Precision = 'float32';

/** The schedule families: Ho et al.'s `get_beta_schedule` and improved-diffusion's `get_named_beta_schedule`. */
export const ScheduleFamily = z.enum(['ho', 'improved']).describe("ho: Ho et al.'s get_beta_schedule; improved: improved-diffusion's get_named_beta_schedule");
export type ScheduleFamily = z.infer<typeof ScheduleFamily>;

/**
 * A named β schedule. `ho`: `get_beta_schedule(name, beta_start, beta_end, T)` with names quad, linear, warmup10,
 * warmup50, const, jsd (Ho et al.'s defaults: linear, 1e−4 → 0.02, T = 1000). `improved`:
 * `get_named_beta_schedule(name, T)` with names linear (endpoints 1e−4·1000/T → 0.02·1000/T) and cosine (s = 0.008,
 * β clipped at `max_beta`, default 0.999).
 */
export const ScheduleArgs = z.object({
  family: ScheduleFamily,
  name: z.string().min(1),
  T: z.number().int().positive(),
  beta_start: z.number().optional(),
  beta_end: z.number().optional(),
  max_beta: z.number().optional(),
});
export type ScheduleArgs = z.infer<typeof ScheduleArgs>;

/** The non-tensor arguments of a diffusion (its `betas` travel as a tensor beside them). */
export const DiffusionConfig = z.object({
  model_mean_type: ModelMeanType.optional(),
  model_var_type: ModelVarType.optional(),
  rescale_timesteps: z.boolean().optional().describe('hand t·1000/T to the model instead of t'),
  timestep_map: z.array(z.number().int().nonnegative()).optional().describe('respaced diffusion: the original timestep handed to the model for each respaced index'),
  original_num_timesteps: z
    .number()
    .int()
    .positive()
    .optional()
    .describe("respaced diffusion with rescale_timesteps: the model sees timestep_map[t]·1000/original_num_timesteps (improved-diffusion's _WrappedModel)"),
});
export type DiffusionConfig = z.infer<typeof DiffusionConfig>;

/**
 * A diffusers scheduler configuration: diffusers' option names, every one optional (diffusers' defaults), see
 * `spec/ddpm/diffusers.ts`. Timesteps are diffusers' 0-based ones; `num_inference_steps` (when given) is what
 * `set_timesteps` was called with before a step; `buffers` is the spec's convention (`float32` rounds the buffers as
 * torch does), which an implementation may ignore.
 */
export const DiffusersArgs = z.object({
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
export type DiffusersArgs = z.infer<typeof DiffusersArgs>;

const DiffusersT = z.number().int().nonnegative().describe("diffusers' 0-based timestep");

const WithModel = DiffusionConfig.extend({ clip_denoised: z.boolean(), model: ModelKind });
const NoArgs = z.object({});

// ---------------------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------------------

/** The buffers GaussianDiffusion precomputes from betas (all float64, length T, indexed by 0-based t). */
export const BUFFER_NAMES = [
  'betas',
  'alphas_cumprod',
  'alphas_cumprod_prev',
  'alphas_cumprod_next',
  'sqrt_alphas_cumprod',
  'sqrt_one_minus_alphas_cumprod',
  'log_one_minus_alphas_cumprod',
  'sqrt_recip_alphas_cumprod',
  'sqrt_recipm1_alphas_cumprod',
  'posterior_variance',
  'posterior_log_variance_clipped',
  'posterior_mean_coef1',
  'posterior_mean_coef2',
] as const;
export type BufferName = (typeof BUFFER_NAMES)[number];

/** The names of the operations, in dependency order (what a failure of one can cause comes after it). */
export const OP_NAMES = [
  'schedule',
  'space_timesteps',
  'respace',
  'buffers',
  'q_sample',
  'q_mean_variance',
  'q_posterior_mean_variance',
  'predict_xstart_from_eps',
  'predict_xstart_from_xprev',
  'predict_eps_from_xstart',
  'normal_kl',
  'approx_standard_normal_cdf',
  'discretized_gaussian_log_likelihood',
  'timestep_embedding',
  'p_mean_variance',
  'p_sample_step',
  'ddim_step',
  'ddim_reverse_step',
  'training_losses',
  'calc_bpd_loop',
  // diffusers' DDPMScheduler / DDIMScheduler: configuration → buffers → variance → steps
  'diffusers_set_timesteps',
  'diffusers_buffers',
  'diffusers_ddpm_variance',
  'diffusers_ddpm_step',
  'diffusers_ddim_step',
] as const;
export const OpName = z.enum(OP_NAMES);
export type OpName = z.infer<typeof OpName>;

/**
 * The stages of the dependency order (schedule → buffers → q_* → p_* → steps and the loops replayed through them
 * → losses and bits/dim): a bug in an earlier stage shows in every later one, so the report lists failures stage by
 * stage and its first line is the likely root cause.
 */
export const STAGES = ['schedule', 'buffers', 'q', 'p', 'step', 'loss'] as const;
export type Stage = (typeof STAGES)[number];

/** How one operation is called and answered. */
export interface OpSpec {
  /** What the operation computes, in one line (for the docs and the JSON Schema). */
  readonly doc: string;
  /** Its place in the dependency order. */
  readonly stage: Stage;
  /**
   * The method's parameters in order: `'args'` (an object whose tensor-valued fields go to `inputs` under their
   * own names and whose other fields go to `args`), `'model'` (a model: its kind goes to `args.model`, its tensors
   * to `inputs["model.W"]` …) or the name of a tensor input.
   */
  readonly params: readonly string[];
  /** The tensor-valued fields of the `'args'` parameter (they travel in `inputs`). */
  readonly argTensors: readonly string[];
  readonly args: z.ZodObject;
  /** Output names that must be present. */
  readonly outputs: readonly string[];
  /** Further output names that may be present (patterns: `terms.*`, `grads.*.W` …). */
  readonly optionalOutputs?: readonly string[];
}

const op = (o: OpSpec): OpSpec => o;

/** Every operation's parameters, arguments and outputs. */
export const OP_SPECS: Record<OpName, OpSpec> = {
  schedule: op({ doc: 'named β schedule', stage: 'schedule', params: ['args'], argTensors: [], args: ScheduleArgs, outputs: ['betas'] }),
  space_timesteps: op({
    doc: "improved-diffusion's space_timesteps: the kept timesteps, sorted ascending, as an int64 tensor",
    stage: 'schedule',
    params: ['args'],
    argTensors: [],
    args: z.object({ num_timesteps: z.number().int().positive(), section_counts: z.union([z.string(), z.array(z.number().int().nonnegative())]) }),
    outputs: ['timesteps'],
  }),
  respace: op({
    doc: "respaced betas β'_i = 1 − ᾱ_{map[i]}/ᾱ_{map[i−1]} and the timestep map (int64) for the kept timesteps",
    stage: 'schedule',
    params: ['args'],
    argTensors: ['betas'],
    args: z.object({ use_timesteps: z.array(z.number().int().nonnegative()) }),
    outputs: ['betas', 'timestep_map'],
  }),
  buffers: op({ doc: "GaussianDiffusion's precomputed buffers (float64, length T)", stage: 'buffers', params: ['args'], argTensors: ['betas'], args: NoArgs, outputs: BUFFER_NAMES }),
  q_sample: op({ doc: 'x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε', stage: 'q', params: ['args', 'x_start', 't', 'noise'], argTensors: ['betas'], args: DiffusionConfig, outputs: ['x_t'] }),
  q_mean_variance: op({ doc: 'mean, variance and log-variance of q(x_t | x₀)', stage: 'q', params: ['args', 'x_start', 't'], argTensors: ['betas'], args: DiffusionConfig, outputs: ['mean', 'variance', 'log_variance'] }),
  q_posterior_mean_variance: op({
    doc: 'mean, variance and clipped log-variance of q(x_{t−1} | x_t, x₀)',
    stage: 'q',
    params: ['args', 'x_start', 'x_t', 't'],
    argTensors: ['betas'],
    args: DiffusionConfig,
    outputs: ['mean', 'variance', 'log_variance_clipped'],
  }),
  predict_xstart_from_eps: op({ doc: 'x̂₀ = √(1/ᾱ_t)·x_t − √(1/ᾱ_t − 1)·ε', stage: 'q', params: ['args', 'x_t', 't', 'eps'], argTensors: ['betas'], args: DiffusionConfig, outputs: ['pred_xstart'] }),
  predict_xstart_from_xprev: op({ doc: 'x̂₀ from a predicted x_{t−1} (inverting the posterior mean)', stage: 'q', params: ['args', 'x_t', 't', 'xprev'], argTensors: ['betas'], args: DiffusionConfig, outputs: ['pred_xstart'] }),
  predict_eps_from_xstart: op({ doc: 'ε̂ = (√(1/ᾱ_t)·x_t − x̂₀)/√(1/ᾱ_t − 1)', stage: 'q', params: ['args', 'x_t', 't', 'pred_xstart'], argTensors: ['betas'], args: DiffusionConfig, outputs: ['eps'] }),
  normal_kl: op({
    doc: 'KL(N(mean1, e^logvar1) ‖ N(mean2, e^logvar2)) in nats, element-wise (tensors of shape [] broadcast)',
    stage: 'p',
    params: ['mean1', 'logvar1', 'mean2', 'logvar2'],
    argTensors: [],
    args: NoArgs,
    outputs: ['kl'],
  }),
  approx_standard_normal_cdf: op({ doc: 'the tanh approximation of Φ used by the reference code', stage: 'p', params: ['x'], argTensors: [], args: NoArgs, outputs: ['cdf'] }),
  discretized_gaussian_log_likelihood: op({
    doc: 'log-probability (nats) of x on the 256-level grid of [−1, 1] under N(means, e^(2·log_scales))',
    stage: 'p',
    params: ['x', 'means', 'log_scales'],
    argTensors: [],
    args: NoArgs,
    outputs: ['log_probs'],
  }),
  timestep_embedding: op({
    doc: 'sinusoidal timestep embedding [N, dim]; ho: [sin | cos] with frequencies divided by half−1; improved: [cos | sin] divided by half',
    stage: 'p',
    params: ['args', 't'],
    argTensors: [],
    args: z.object({ flavor: z.enum(['ho', 'improved']), dim: z.number().int().positive() }),
    outputs: ['embedding'],
  }),
  p_mean_variance: op({
    doc: 'mean, variance, log-variance of p(x_{t−1} | x_t) and the (clipped) x̂₀',
    stage: 'p',
    params: ['args', 'model', 'x', 't'],
    argTensors: ['betas'],
    args: WithModel,
    outputs: ['mean', 'variance', 'log_variance', 'pred_xstart'],
  }),
  p_sample_step: op({
    doc: 'one ancestral step x_t → x_{t−1} = mean + e^(½·log_variance)·noise (no noise at t = 0)',
    stage: 'step',
    params: ['args', 'model', 'x', 't', 'noise'],
    argTensors: ['betas'],
    args: WithModel,
    outputs: ['sample', 'pred_xstart'],
  }),
  ddim_step: op({
    doc: 'one DDIM step x_t → x_{t−1} with η, ε re-derived from the (clipped) x̂₀',
    stage: 'step',
    params: ['args', 'model', 'x', 't', 'noise'],
    argTensors: ['betas'],
    args: WithModel.extend({ eta: z.number().nonnegative() }),
    outputs: ['sample', 'pred_xstart'],
  }),
  ddim_reverse_step: op({ doc: 'one deterministic reverse-DDIM step x_t → x_{t+1}', stage: 'step', params: ['args', 'model', 'x', 't'], argTensors: ['betas'], args: WithModel, outputs: ['sample', 'pred_xstart'] }),
  training_losses: op({
    doc: "improved-diffusion's training_losses with explicit noise: per-example terms [B] (vb in bits); with grads (asked separately, optional), d(Σ_batch term)/d(W, bias, tw) of the TinyModel",
    stage: 'loss',
    params: ['args', 'model', 'x_start', 't', 'noise'],
    argTensors: ['betas'],
    args: DiffusionConfig.extend({ model: z.literal('tiny'), loss_type: LossType, grads: z.boolean().optional() }),
    outputs: ['terms.loss'],
    optionalOutputs: ['terms.*', 'grads.*.W', 'grads.*.bias', 'grads.*.tw'],
  }),
  calc_bpd_loop: op({
    doc: "improved-diffusion's calc_bpd_loop with the q_sample noise of each step given in loop order t = T−1 … 0; vb, xstart_mse and mse are [B, T] with column t for timestep t (improved itself stacks them in loop order: reverse its columns)",
    stage: 'loss',
    params: ['args', 'model', 'x_start', 'noise_per_step_in_loop_order'],
    argTensors: ['betas'],
    args: WithModel,
    outputs: ['total_bpd', 'prior_bpd', 'vb', 'xstart_mse', 'mse'],
  }),
  diffusers_set_timesteps: op({
    doc: "diffusers' set_timesteps(num_inference_steps) for the configured timestep_spacing and steps_offset (int64, decreasing)",
    stage: 'schedule',
    params: ['args'],
    argTensors: [],
    args: DiffusersArgs.extend({ num_inference_steps: z.number().int().positive() }),
    outputs: ['timesteps'],
  }),
  diffusers_buffers: op({
    doc: 'diffusers scheduler buffers: betas, alphas, alphas_cumprod [T], final_alpha_cumprod []',
    stage: 'buffers',
    params: ['args'],
    argTensors: [],
    args: DiffusersArgs,
    outputs: ['betas', 'alphas', 'alphas_cumprod', 'final_alpha_cumprod'],
  }),
  diffusers_ddpm_variance: op({
    doc: 'DDPMScheduler._get_variance(t, predicted_variance)',
    stage: 'p',
    params: ['args', 'predicted_variance'],
    argTensors: [],
    args: DiffusersArgs.extend({ t: DiffusersT }),
    outputs: ['variance'],
  }),
  diffusers_ddpm_step: op({
    doc: 'DDPMScheduler.step at t (NCHW; 2C output channels for learned variance types) with the noise given',
    stage: 'step',
    params: ['args', 'model_output', 'sample', 'noise'],
    argTensors: [],
    args: DiffusersArgs.extend({ t: DiffusersT }),
    outputs: ['prev_sample', 'pred_original_sample'],
  }),
  diffusers_ddim_step: op({
    doc: 'DDIMScheduler.step at t with eta and use_clipped_model_output, the noise given as variance_noise',
    stage: 'step',
    params: ['args', 'model_output', 'sample', 'noise'],
    argTensors: [],
    args: DiffusersArgs.extend({ t: DiffusersT, eta: z.number().nonnegative(), use_clipped_model_output: z.boolean(), num_inference_steps: z.number().int().positive() }),
    outputs: ['prev_sample', 'pred_original_sample'],
  }),
};

/** Position of an operation in the dependency order (unknown names last). */
export function dependencyRank(name: string | undefined): number {
  const i = (OP_NAMES as readonly string[]).indexOf(name ?? '');
  if (i < 0) return STAGES.length * OP_NAMES.length;
  return STAGES.indexOf(OP_SPECS[name as OpName].stage) * OP_NAMES.length + i;
}
