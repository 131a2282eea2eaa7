/**
 * Our checkpoints: a directory with
 *
 * - `model.safetensors`: the UNet's parameters as a PyTorch state dict (pesser/pytorch_diffusion names and
 *   layouts, float32; loads with `Model.load_state_dict` unchanged), the configuration also in `__metadata__`;
 * - optionally `ema.safetensors`: the exponential moving average of the parameters, same form (Ho et al.
 *   sample with it);
 * - `config.json`: `{format, version, unet, diffusion, weights, ema_weights?, parameters, …}` — the UNet
 *   configuration, the diffusion settings needed to sample (Ho et al. / pesser names), and which file
 *   holds which weights. Other tools may add fields (training state, for example); they are kept.
 *
 * Every file is written atomically (temporary name, fsync, rename) and `config.json` last, so a directory
 * with a `config.json` always has complete weights beside it.
 *
 * @module
 */
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { degenerateHoSchedule } from '../diffusion/schedules.ts';
import { FormatError, jsonErrorWithoutInput } from '../../src/formats/errors.ts';
import { writeFileAtomic } from '../../src/io/atomic.ts';
import { UNetConfig } from './config.ts';
import { countParams, type UNetParams } from './params.ts';
import { readStateDict, writeStateDict } from './weights.ts';

/** How to sample from the model: Ho et al.'s schedule and fixed reverse variance, with the PyTorch port's names. */
export const DiffusionSettings = z
  .object({
    /** Ho et al.'s `get_beta_schedule` name. */
    beta_schedule: z.enum(['quad', 'linear', 'warmup10', 'warmup50', 'const', 'jsd']),
    beta_start: z.number().positive().max(1),
    beta_end: z.number().positive().max(1),
    /** T; the model is called with the 0-based t ∈ {0, …, T−1}. */
    num_diffusion_timesteps: z.number().int().min(2).max(1_000_000),
    /** Reverse-process variance: β_t (`fixedlarge`, Ho et al.'s CIFAR-10) or the posterior β̃_t (`fixedsmall`, LSUN). */
    model_var_type: z.enum(['fixedlarge', 'fixedsmall']),
  })
  .strict()
  .superRefine((d, ctx) => {
    const bad = degenerateHoSchedule(d.beta_schedule, d.beta_start, d.beta_end, d.num_diffusion_timesteps);
    if (bad !== null) ctx.addIssue({ code: 'custom', path: [bad.field], message: `${d.beta_schedule} schedule: ${bad.message}` });
  });
export type DiffusionSettings = z.infer<typeof DiffusionSettings>;

/** Ho et al.'s CIFAR-10 settings: linear β from 1e−4 to 0.02 over T = 1000, fixed large variance. */
export const HO_CIFAR10_DIFFUSION: DiffusionSettings = Object.freeze({
  beta_schedule: 'linear',
  beta_start: 0.0001,
  beta_end: 0.02,
  num_diffusion_timesteps: 1000,
  model_var_type: 'fixedlarge',
});

/** The `config.json` of a checkpoint directory. */
export const CheckpointConfig = z.looseObject({
  format: z.literal('ddpm-spec-checkpoint'),
  version: z.literal(1),
  unet: UNetConfig,
  diffusion: DiffusionSettings,
  /** File (in the same directory) with the parameters. */
  weights: z.string().min(1),
  /** File with the EMA parameters, if any. */
  ema_weights: z.string().min(1).optional(),
  /** Number of scalar parameters (a consistency check). */
  parameters: z.number().int().positive(),
});
export type CheckpointConfig = z.infer<typeof CheckpointConfig>;

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const EMA_FILE = 'ema.safetensors';

/** What {@link saveCheckpoint} writes. */
export interface CheckpointContents {
  unet: UNetConfig;
  diffusion: DiffusionSettings;
  params: UNetParams;
  ema?: UNetParams;
  /** Extra fields for config.json (must not collide with the standard ones). */
  extra?: Record<string, unknown>;
}

/**
 * Write a checkpoint directory (created if needed): the weights, the EMA weights if given, then config.json.
 * Returns the config written.
 */
export async function saveCheckpoint(dir: string, c: CheckpointContents): Promise<CheckpointConfig> {
  const unet = UNetConfig.parse(c.unet);
  const diffusion = DiffusionSettings.parse(c.diffusion);
  mkdirSync(dir, { recursive: true });
  await writeStateDict(join(dir, WEIGHTS_FILE), unet, c.params);
  if (c.ema) await writeStateDict(join(dir, EMA_FILE), unet, c.ema, { weights: 'ema' });
  const cfg: CheckpointConfig = CheckpointConfig.parse({
    ...(c.extra ?? {}),
    format: 'ddpm-spec-checkpoint',
    version: 1,
    unet,
    diffusion,
    weights: WEIGHTS_FILE,
    ...(c.ema ? { ema_weights: EMA_FILE } : {}),
    parameters: countParams(unet),
  });
  writeFileAtomic(join(dir, CONFIG_FILE), `${JSON.stringify(cfg, null, 2)}\n`);
  return cfg;
}

/** Read and validate a checkpoint's config.json; errors name the file and the field. */
export function readCheckpointConfig(dir: string): CheckpointConfig {
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new FormatError(dir, '', 'checkpoint directory does not exist');
  }
  if (!isDir) throw new FormatError(dir, '', 'is not a directory (a checkpoint is a directory with config.json and model.safetensors)');
  const file = join(dir, CONFIG_FILE);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new FormatError(file, '', `cannot read the checkpoint configuration (${jsonErrorWithoutInput(e)})`);
  }
  const r = CheckpointConfig.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new FormatError(file, i.path.join('.'), i.message);
  }
  const n = countParams(r.data.unet);
  if (n !== r.data.parameters) throw new FormatError(file, 'parameters', `says ${r.data.parameters}, but the unet configuration has ${n} parameters`);
  return r.data;
}

/**
 * Load a checkpoint directory. With `ema: true` the EMA weights are loaded (an error if there are none);
 * with `ema: 'prefer'` the EMA weights when present, else the plain ones.
 */
export function loadCheckpoint(
  dir: string,
  opts: { ema?: boolean | 'prefer' } = {},
): { checkpoint: CheckpointConfig; params: UNetParams; weightsFile: string } {
  const checkpoint = readCheckpointConfig(dir);
  let name = checkpoint.weights;
  if (opts.ema === true && checkpoint.ema_weights === undefined) {
    throw new FormatError(join(dir, CONFIG_FILE), 'ema_weights', 'EMA weights were asked for but the checkpoint has none');
  }
  if ((opts.ema === true || opts.ema === 'prefer') && checkpoint.ema_weights !== undefined) name = checkpoint.ema_weights;
  const weightsFile = join(dir, name);
  const { params } = readStateDict(weightsFile, checkpoint.unet);
  return { checkpoint, params, weightsFile };
}
