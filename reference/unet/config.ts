/**
 * The configuration of the Ho et al. (2020) UNet, with the argument names of the original code
 * (`diffusion_tf/models/unet.py:model`) and of its PyTorch port (`pytorch_diffusion/model.py:Model`).
 *
 * The schema checks more than types: a configuration that the reference code would reject or
 * compute nonsense with (a GroupNorm whose channel count is not a multiple of 32, a resolution that
 * the strided downsampling cannot halve exactly, a timestep embedding of width < 4, which divides by
 * zero in the reference) is refused here with the offending layer named.
 *
 * @module
 */
import { z } from 'zod';

/** Number of groups of every GroupNorm in the model (fixed in the reference code). */
export const GROUPS = 32;
/** ε of every GroupNorm in the model (fixed in the reference code). */
export const NORM_EPS = 1e-6;

const positiveInt = z.number().int().positive();
/** Bounds that keep the configuration checks (which walk every block) finite; real models are far below them. */
const MAX_RES_BLOCKS = 64;
const MAX_LEVELS = 16;

/** The fields, before the cross-field checks. */
const UNetConfigFields = z
  .object({
    /** Base channel count; level i has `ch·ch_mult[i]` channels; the timestep embedding has width 4·ch. */
    ch: positiveInt,
    /** Output channels (3 for ε-prediction on RGB images). */
    out_ch: positiveInt,
    /** Channel multiplier per resolution level; the number of levels is its length. */
    ch_mult: z.array(positiveInt).min(1).max(MAX_LEVELS),
    /** Residual blocks per level on the way down (the way up has one more per level); at most 64 (Ho et al. use 2). */
    num_res_blocks: positiveInt.max(MAX_RES_BLOCKS),
    /** Spatial sizes (height = width, in pixels) at which self-attention follows each residual block. */
    attn_resolutions: z.array(positiveInt),
    /** Dropout rate before the second convolution of each residual block (training only). */
    dropout: z.number().min(0).lt(1),
    /** Strided 3×3 convolution / 3×3 convolution after nearest upsampling (true), or average pooling / no convolution. */
    resamp_with_conv: z.boolean().default(true),
    /** Input image channels. */
    in_channels: positiveInt,
    /** Input height = width in pixels. */
    resolution: positiveInt,
  })
  .strict();

/** Every GroupNorm of the model with its channel count, in execution order (for the GroupNorm check). */
function normChannels(c: z.infer<typeof UNetConfigFields>): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  const L = c.ch_mult.length;
  const inMult = [1, ...c.ch_mult];
  let blockIn = c.ch;
  for (let i = 0; i < L; i++) {
    const blockOut = c.ch * c.ch_mult[i];
    for (let b = 0; b < c.num_res_blocks; b++) {
      out.push([`down.${i}.block.${b}.norm1`, blockIn], [`down.${i}.block.${b}.norm2`, blockOut]);
      blockIn = blockOut;
    }
  }
  out.push(['mid.block_1.norm1', blockIn]);
  for (let i = L - 1; i >= 0; i--) {
    const blockOut = c.ch * c.ch_mult[i];
    for (let b = 0; b <= c.num_res_blocks; b++) {
      const skip = b === c.num_res_blocks ? c.ch * inMult[i] : c.ch * c.ch_mult[i];
      out.push([`up.${i}.block.${b}.norm1`, blockIn + skip], [`up.${i}.block.${b}.norm2`, blockOut]);
      blockIn = blockOut;
    }
  }
  out.push(['norm_out', blockIn]);
  return out;
}

/**
 * The UNet configuration. Parse with `UNetConfig.parse(json)`; the error names the field or the layer.
 *
 * Cross-field conditions: `resolution` divisible by 2^(levels−1) (each downsampling halves it exactly,
 * as the reference's (0,1,0,1) padding + stride-2 convolution does only for even sizes); every GroupNorm's
 * channel count a multiple of 32; `ch ≥ 4` (the embedding divides by ch/2 − 1); attention resolutions
 * among the resolutions the model visits (otherwise they are silently ignored by the reference — refused here).
 */
export const UNetConfig = UNetConfigFields.superRefine((c, ctx) => {
  // zod runs this even when a field failed its bounds (reported already): do not walk a model of 10¹⁵ blocks
  if (!(c.num_res_blocks <= MAX_RES_BLOCKS && c.ch_mult.length <= MAX_LEVELS)) return;
  const L = c.ch_mult.length;
  const factor = 2 ** (L - 1);
  if (c.resolution % factor !== 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['resolution'],
      message: `must be divisible by 2^(levels−1) = ${factor} (${L} levels), got ${c.resolution}`,
    });
  }
  if (c.ch < 4 || c.ch % 2 !== 0) {
    ctx.addIssue({ code: 'custom', path: ['ch'], message: `must be even and ≥ 4 (the timestep embedding divides by ch/2 − 1), got ${c.ch}` });
  }
  for (const [name, n] of normChannels(c)) {
    if (n % GROUPS !== 0) {
      ctx.addIssue({ code: 'custom', path: ['ch'], message: `GroupNorm ${name} would have ${n} channels, not a multiple of ${GROUPS} groups` });
      break;
    }
  }
  const visited = Array.from({ length: L }, (_, i) => c.resolution / 2 ** i);
  for (const r of c.attn_resolutions) {
    if (!visited.includes(r)) {
      ctx.addIssue({
        code: 'custom',
        path: ['attn_resolutions'],
        message: `${r} is not one of the resolutions the model visits (${visited.join(', ')})`,
      });
    }
  }
});
export type UNetConfig = z.infer<typeof UNetConfig>;

/** Ho et al.'s CIFAR-10 model (35,746,307 parameters). */
export const CIFAR10_CONFIG: UNetConfig = Object.freeze({
  ch: 128,
  out_ch: 3,
  ch_mult: [1, 2, 2, 2],
  num_res_blocks: 2,
  attn_resolutions: [16],
  dropout: 0.1,
  resamp_with_conv: true,
  in_channels: 3,
  resolution: 32,
}) as UNetConfig;

/** Ho et al.'s LSUN 256×256 model (113,673,219 parameters). */
export const LSUN256_CONFIG: UNetConfig = Object.freeze({
  ch: 128,
  out_ch: 3,
  ch_mult: [1, 1, 2, 2, 4, 4],
  num_res_blocks: 2,
  attn_resolutions: [16],
  dropout: 0,
  resamp_with_conv: true,
  in_channels: 3,
  resolution: 256,
}) as UNetConfig;

/** The small model of the golden data (`ho_unet_small*`, 1,105,665 parameters). */
export const SMALL_CONFIG: UNetConfig = Object.freeze({
  ch: 32,
  out_ch: 1,
  ch_mult: [1, 1, 2],
  num_res_blocks: 2,
  attn_resolutions: [8],
  dropout: 0.1,
  resamp_with_conv: true,
  in_channels: 1,
  resolution: 16,
}) as UNetConfig;

/** A tiny model for fast tests (two levels, one block each, attention at 4×4). */
export const TINY_CONFIG: UNetConfig = Object.freeze({
  ch: 32,
  out_ch: 1,
  ch_mult: [1, 2],
  num_res_blocks: 1,
  attn_resolutions: [4],
  dropout: 0,
  resamp_with_conv: true,
  in_channels: 1,
  resolution: 8,
}) as UNetConfig;
