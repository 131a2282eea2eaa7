/**
 * What the training loop trains: a model whose parameters are `tf.Variable`s, with a forward pass that takes
 * a batch, the timesteps the diffusion hands to the model, and (in training) a dropout seed. The loop knows
 * nothing else about the network, so any model fits — the UNet for images, the MLP for 2-D toy data.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../../src/numeric/rng.ts';
import { initMlpParams, mlpForward } from '../mlp/model.ts';
import { initParams } from '../unet/params.ts';
import { unetForward } from '../unet/model.ts';
import type { ModelConfig } from './config.ts';
import { ownedVariable } from './optim.ts';

/** A trainable ε-model. */
export interface TrainableModel {
  readonly config: ModelConfig;
  /** Parameter names in a fixed order (the order of checkpoints and of the global gradient norm). */
  readonly names: readonly string[];
  /** The parameters. */
  readonly variables: ReadonlyMap<string, tf.Variable>;
  /** Shape of one example ([in_dim] for the MLP, [H, W, C] for the UNet). */
  readonly exampleShape: readonly number[];
  /**
   * The model output for a batch x [B, …exampleShape] at model timesteps tModel [B] (float32).
   * `dropoutSeed` switches dropout on (training), with masks drawn from that seed; without it the model is in
   * evaluation mode. The caller owns the result.
   */
  apply(x: tf.Tensor, tModel: tf.Tensor1D, opts?: { dropoutSeed?: number; params?: ReadonlyMap<string, tf.Tensor> }): tf.Tensor;
  /** Dispose the variables. */
  dispose(): void;
}

function asRecord(names: readonly string[], vars: ReadonlyMap<string, tf.Tensor>): Record<string, tf.Tensor> {
  const r: Record<string, tf.Tensor> = {};
  for (const n of names) r[n] = vars.get(n)!;
  return r;
}

/**
 * Build a model with freshly initialised parameters drawn from `rng` (the UNet: the reference
 * initialisation of `reference/unet`; the MLP: see `reference/mlp`).
 */
export function createModel(config: ModelConfig, rng: Rng): TrainableModel {
  const init = config.kind === 'unet' ? initParams(config.unet, rng) : initMlpParams(config.mlp, rng);
  const names = Object.keys(init);
  const variables = new Map<string, tf.Variable>();
  for (const n of names) {
    variables.set(n, ownedVariable(init[n], true));
  }
  const exampleShape = config.kind === 'unet' ? [config.unet.resolution, config.unet.resolution, config.unet.in_channels] : [config.mlp.in_dim];
  return {
    config,
    names,
    variables,
    exampleShape,
    apply(x, tModel, opts = {}) {
      const p = asRecord(names, opts.params ?? variables);
      if (config.kind === 'unet') {
        return unetForward(config.unet, p, x as tf.Tensor4D, tModel, opts.dropoutSeed === undefined ? {} : { dropoutSeed: opts.dropoutSeed });
      }
      return mlpForward(config.mlp, p, x, tModel);
    },
    dispose() {
      for (const v of variables.values()) v.dispose();
    },
  };
}

/**
 * A lower bound on the bytes of float32 activations one example needs in a training step (forward values and
 * their gradients): the MLP keeps each hidden layer's pre-activation and activation; the UNet at least the two
 * convolution outputs of each residual block (with `num_res_blocks + 1` blocks per level on the way up) at that
 * level's resolution. The true figure is several times larger (normalisations, attention, temporaries), so a
 * batch refused by this bound cannot fit.
 */
export function activationBytesPerExample(c: ModelConfig): number {
  const f32 = 4;
  const forwardAndGradient = 2;
  if (c.kind === 'mlp') return c.mlp.hidden * c.mlp.layers * 2 * forwardAndGradient * f32;
  const u = c.unet;
  let floats = 0;
  u.ch_mult.forEach((m, i) => {
    const res = u.resolution / 2 ** i;
    floats += u.ch * m * res * res * 2 * (2 * u.num_res_blocks + 1);
  });
  return floats * forwardAndGradient * f32;
}
