/**
 * The training configuration: model, diffusion, optimiser and loop, validated by zod. Unknown fields and
 * wrong types are errors that name the field (`optim.lr: expected number, received string`).
 *
 * Defaults are the recipe of Ho et al. (2020) for CIFAR-10: Adam with learning rate 2·10⁻⁴ and a linear
 * warm-up over 5000 steps, gradient-norm clipping at 1, dropout 0.1 (a model field), an exponential moving
 * average of the weights with decay 0.9999, batch 128, timesteps drawn uniformly, the simple loss
 * L_simple = ‖ε − ε_θ(x_t, t)‖² (averaged over dimensions), linear β from 10⁻⁴ to 0.02 over T = 1000.
 * The hybrid loss of Nichol & Dhariwal (L_simple + λ L_vlb with learned-range variances, λ = 0.001 through
 * the T/1000 rescaling of improved-diffusion's `RESCALED_MSE`) is an option.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { FormatError, jsonErrorWithoutInput } from '../../src/formats/errors.ts';
import { degenerateHoSchedule } from '../diffusion/schedules.ts';
import { MlpConfig } from '../mlp/model.ts';
import { UNetConfig } from '../unet/config.ts';

/** Adam, warm-up, clipping and EMA. */
export const OptimConfig = z
  .object({
    /** Peak learning rate. */
    lr: z.number().positive().finite().default(2e-4),
    /** Steps of linear warm-up: the learning rate of update k (1-based) is lr·min(1, k/warmup); 0 = none. */
    warmup: z.number().int().nonnegative().default(5000),
    /** Clip the global gradient norm to this value (null: no clipping). */
    grad_clip: z.number().positive().finite().nullable().default(1),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.999),
    eps: z.number().positive().finite().default(1e-8),
    /** EMA decay d: ema ← d·ema + (1 − d)·θ after every update. */
    ema_decay: z.number().min(0).max(1).default(0.9999),
  })
  .strict();
export type OptimConfig = z.infer<typeof OptimConfig>;

/** The diffusion being trained: Ho et al.'s schedule names and the loss. */
export const DiffusionTrainConfig = z
  .object({
    beta_schedule: z.enum(['quad', 'linear', 'warmup10', 'warmup50', 'const', 'jsd']).default('linear'),
    beta_start: z.number().positive().max(1).default(1e-4),
    beta_end: z.number().positive().max(1).default(0.02),
    /**
     * T; timesteps t ∈ {0, …, T−1} are drawn uniformly. At least 2 (T = 1 leaves no reverse step to learn), at
     * most 10⁶ (the schedule's buffers are held per timestep).
     */
    num_diffusion_timesteps: z.number().int().min(2).max(1_000_000).default(1000),
    /** `simple`: L_simple (ε-MSE); `hybrid`: L_simple + λ·L_vlb with learned-range variances. */
    loss: z.enum(['simple', 'hybrid']).default('simple'),
    /**
     * Reverse-process variance used for the bound (bits/dim) and sampling: β_t (`fixedlarge`), β̃_t
     * (`fixedsmall`), or learned (`learned_range`, required by and only with the hybrid loss).
     */
    model_var_type: z.enum(['fixedlarge', 'fixedsmall', 'learned_range']).default('fixedlarge'),
  })
  .strict();
export type DiffusionTrainConfig = z.infer<typeof DiffusionTrainConfig>;

/** The model: Ho et al.'s UNet (images) or a small MLP (2-D toy data). */
export const ModelConfig = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('unet'), unet: UNetConfig }).strict(),
  z.object({ kind: z.literal('mlp'), mlp: MlpConfig }).strict(),
]);
export type ModelConfig = z.infer<typeof ModelConfig>;

/** Everything a run needs besides the data and the step count. */
export const TrainConfig = z
  .object({
    model: ModelConfig,
    diffusion: DiffusionTrainConfig.default(DiffusionTrainConfig.parse({})),
    optim: OptimConfig.default(OptimConfig.parse({})),
    batch_size: z.number().int().positive().default(128),
    /** Seed of every random draw of the run (initialisation, data order, timesteps, noise, dropout). */
    seed: z.number().int().min(0).max(2 ** 31 - 1).default(0),
    /** Write a checkpoint every this many steps (and at the end). */
    checkpoint_every: z.number().int().positive().default(1000),
    /** Log mean loss, gradient norm and speed every this many steps. */
    log_every: z.number().int().positive().default(100),
    /** Keep this many most recent checkpoints. */
    keep_checkpoints: z.number().int().positive().default(2),
  })
  .strict()
  .superRefine((c, ctx) => {
    const learned = c.diffusion.model_var_type === 'learned_range';
    if (c.diffusion.loss === 'hybrid' && !learned) {
      ctx.addIssue({ code: 'custom', path: ['diffusion', 'model_var_type'], message: `the hybrid loss learns the variances: must be 'learned_range', got '${c.diffusion.model_var_type}'` });
    }
    if (learned && c.diffusion.loss !== 'hybrid') {
      ctx.addIssue({ code: 'custom', path: ['diffusion', 'loss'], message: `'learned_range' variances are trained only by the hybrid loss: must be 'hybrid', got '${c.diffusion.loss}'` });
    }
    const factor = learned ? 2 : 1;
    if (c.model.kind === 'unet') {
      const u = c.model.unet;
      if (u.out_ch !== factor * u.in_channels) {
        ctx.addIssue({
          code: 'custom',
          path: ['model', 'unet', 'out_ch'],
          message: `must be ${factor === 2 ? '2·in_channels (mean and variance)' : 'in_channels (ε)'} = ${factor * u.in_channels} for model_var_type '${c.diffusion.model_var_type}', got ${u.out_ch}`,
        });
      }
    } else {
      const m = c.model.mlp;
      if (m.out_dim !== factor * m.in_dim) {
        ctx.addIssue({
          code: 'custom',
          path: ['model', 'mlp', 'out_dim'],
          message: `must be ${factor}·in_dim = ${factor * m.in_dim} for model_var_type '${c.diffusion.model_var_type}', got ${m.out_dim}`,
        });
      }
    }
    if (c.diffusion.beta_start > c.diffusion.beta_end && c.diffusion.beta_schedule !== 'jsd') {
      ctx.addIssue({ code: 'custom', path: ['diffusion', 'beta_start'], message: `must not exceed beta_end (${c.diffusion.beta_end}), got ${c.diffusion.beta_start}` });
    }
    const d = c.diffusion;
    const bad = degenerateHoSchedule(d.beta_schedule, d.beta_start, d.beta_end, d.num_diffusion_timesteps);
    if (bad !== null) ctx.addIssue({ code: 'custom', path: ['diffusion', bad.field], message: `${d.beta_schedule} schedule: ${bad.message}` });
  });
export type TrainConfig = z.infer<typeof TrainConfig>;

/** Validate a parsed JSON value; the error names the source and the first offending field. */
export function parseTrainConfig(json: unknown, source: string): TrainConfig {
  const r = TrainConfig.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    const more = r.error.issues.length > 1 ? ` (and ${r.error.issues.length - 1} more problem${r.error.issues.length > 2 ? 's' : ''})` : '';
    throw new FormatError(source, i.path.join('.') || '(root)', `${i.message}${more}`);
  }
  return r.data;
}

/** Read and validate a configuration file. */
export function readTrainConfig(path: string): TrainConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new FormatError(path, '', `cannot read the configuration (${(e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FormatError(path, '', `not valid JSON (${jsonErrorWithoutInput(e)})`);
  }
  return parseTrainConfig(json, path);
}

/** The MLP configuration the toy presets use. */
const TOY_MLP = { in_dim: 2, out_dim: 2, hidden: 128, layers: 3, temb_dim: 32 };

/**
 * Built-in configurations: `toy` for the 2-D sets (an MLP, T = 100 with β up to 0.2 so that x_T is pure
 * noise, a short warm-up and a faster EMA — 1000 steps are enough); `fashion-mnist` for a small UNet at 32×32
 * (the same as `reference/train/configs/fashion-mnist.json`, the recorded run's): the paper's diffusion and
 * clipping, with a learning rate, warm-up, EMA and batch size for hours rather than days of CPU training.
 */
export const PRESETS: Record<'toy' | 'fashion-mnist', TrainConfig> = {
  toy: TrainConfig.parse({
    model: { kind: 'mlp', mlp: TOY_MLP },
    diffusion: { beta_schedule: 'linear', beta_start: 1e-3, beta_end: 0.2, num_diffusion_timesteps: 100, loss: 'simple', model_var_type: 'fixedsmall' },
    optim: { lr: 2e-3, warmup: 100, grad_clip: 1, ema_decay: 0.995 },
    batch_size: 256,
    checkpoint_every: 1000,
    log_every: 100,
  }),
  'fashion-mnist': TrainConfig.parse({
    model: {
      kind: 'unet',
      unet: { ch: 32, out_ch: 1, ch_mult: [1, 2, 2], num_res_blocks: 1, attn_resolutions: [8], dropout: 0.1, resamp_with_conv: true, in_channels: 1, resolution: 32 },
    },
    diffusion: {},
    optim: { lr: 5e-4, warmup: 200, grad_clip: 1, ema_decay: 0.995 },
    batch_size: 32,
    seed: 0,
    checkpoint_every: 200,
    log_every: 10,
    keep_checkpoints: 2,
  }),
};
