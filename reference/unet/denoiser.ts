/**
 * The UNet as the denoising model the diffusion code calls: `(x_t, t_model) → ε̂`, NHWC.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import type { DenoiseModel } from '../diffusion/model.ts';
import type { UNetConfig } from './config.ts';
import { unetForward } from './model.ts';
import type { UNetParams } from './params.ts';

/**
 * A {@link DenoiseModel} backed by the UNet (eval mode). The timesteps the diffusion hands over (the integer t,
 * or the original timestep of a respaced step, as float32) go to the timestep embedding unchanged.
 */
export function unetDenoiser(config: UNetConfig, params: UNetParams): DenoiseModel {
  return (x: tf.Tensor, tModel: tf.Tensor1D): tf.Tensor => {
    if (x.rank !== 4) throw new Error(`unetDenoiser: x must be [N,H,W,C] (NHWC), got [${x.shape.join(',')}]`);
    return unetForward(config, params, x as tf.Tensor4D, tModel);
  };
}
