/**
 * A small MLP ε-model for low-dimensional data (the 2-D toy sets): the timestep enters through Ho et al.'s
 * sinusoidal embedding (the diffusion core's `timestepEmbedding`), added after the first layer.
 *
 * $$h_1 = \mathrm{swish}(x W_{\mathrm{in}} + b_{\mathrm{in}} + e(t) W_t + b_t),\quad
 *   h_{k+1} = \mathrm{swish}(h_k W_k + b_k),\quad \varepsilon_\theta(x, t) = h_L W_{\mathrm{out}} + b_{\mathrm{out}}$$
 *
 * Initialisation as PyTorch's `Linear` (uniform on ±1/√fan_in) from a seeded stream, except the output layer,
 * which starts at zero (as the last convolution of Ho et al.'s UNet), so the initial model predicts ε = 0.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { Rng } from '../../src/numeric/rng.ts';
import { timestepEmbedding } from '../diffusion/embedding.ts';
import { swish } from '../nn/activation.ts';
import { dense } from '../nn/dense.ts';

export const MlpConfig = z
  .object({
    /** Data dimension. */
    in_dim: z.number().int().positive(),
    /** Output dimension: in_dim for ε, 2·in_dim for ε and a learned variance. */
    out_dim: z.number().int().positive(),
    /** Width of the hidden layers. */
    hidden: z.number().int().positive(),
    /** Number of hidden layers (≥ 1). */
    layers: z.number().int().positive(),
    /** Width of the sinusoidal timestep embedding (even, ≥ 4). */
    temb_dim: z.number().int().min(4).refine((d) => d % 2 === 0, 'must be even'),
  })
  .strict();
export type MlpConfig = z.infer<typeof MlpConfig>;

/** One parameter: name, shape, fan-in, whether it starts at zero. */
export interface MlpParamSpec {
  name: string;
  shape: number[];
  fanIn: number;
  zeroInit: boolean;
}

/** The parameters in a fixed order. */
export function mlpParamSpecs(c: MlpConfig): MlpParamSpec[] {
  const out: MlpParamSpec[] = [];
  const lin = (name: string, i: number, o: number, zeroInit = false): void => {
    out.push({ name: `${name}.weight`, shape: [i, o], fanIn: i, zeroInit }, { name: `${name}.bias`, shape: [o], fanIn: i, zeroInit });
  };
  lin('in', c.in_dim, c.hidden);
  lin('temb', c.temb_dim, c.hidden);
  for (let k = 1; k < c.layers; k++) lin(`hidden.${k}`, c.hidden, c.hidden);
  lin('out', c.hidden, c.out_dim, true);
  return out;
}

/** Fresh parameters (float32 tensors the caller owns), drawn from `rng` in {@link mlpParamSpecs} order. */
export function initMlpParams(c: MlpConfig, rng: Rng): Record<string, tf.Tensor> {
  const p: Record<string, tf.Tensor> = {};
  for (const s of mlpParamSpecs(c)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    if (!s.zeroInit) {
      const bound = 1 / Math.sqrt(s.fanIn);
      for (let i = 0; i < n; i++) v[i] = (2 * rng.uniform() - 1) * bound;
    }
    p[s.name] = tf.tensor(v, s.shape, 'float32');
  }
  return p;
}

/**
 * The MLP's output for points x [N, in_dim] at model timesteps t [N] (float32).
 *
 * @returns [N, out_dim]
 */
export function mlpForward(c: MlpConfig, p: Record<string, tf.Tensor>, x: tf.Tensor, t: tf.Tensor1D): tf.Tensor2D {
  if (x.rank !== 2 || x.shape[1] !== c.in_dim) throw new Error(`mlpForward: x must be [N, ${c.in_dim}], got [${x.shape.join(',')}]`);
  if (t.rank !== 1 || t.shape[0] !== x.shape[0]) throw new Error(`mlpForward: t must be [${x.shape[0]}] (one timestep per point), got [${t.shape.join(',')}]`);
  const w = (n: string): tf.Tensor2D => {
    const v = p[`${n}.weight`];
    if (v === undefined) throw new Error(`mlpForward: parameter ${n}.weight is missing`);
    return v as tf.Tensor2D;
  };
  const b = (n: string): tf.Tensor1D => p[`${n}.bias`] as tf.Tensor1D;
  return tf.tidy(() => {
    const e = timestepEmbedding(t, c.temb_dim, 'ho');
    let h = swish(dense(x as tf.Tensor2D, w('in'), b('in')).add(dense(e, w('temb'), b('temb')))) as tf.Tensor2D;
    for (let k = 1; k < c.layers; k++) h = swish(dense(h, w(`hidden.${k}`), b(`hidden.${k}`)));
    return dense(h, w('out'), b('out'));
  });
}
