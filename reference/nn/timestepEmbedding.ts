/**
 * The sinusoidal timestep embedding of Ho et al.'s UNet (`diffusion_tf/nn.py:get_timestep_embedding`, identical
 * in the PyTorch port), computed in float32 the way the reference computes it.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';

/**
 * Frequencies f_i = exp(−i·ln(10000)/(half − 1)), i = 0 … half−1, half = ⌊dim/2⌋, rounded as the
 * reference rounds them: the exponent `i · (−ln(10000)/(half−1))` is a float32 product, `exp` a float32 result.
 */
export function timestepFrequencies(dim: number): Float32Array {
  const half = Math.floor(dim / 2);
  if (!Number.isInteger(dim) || half < 2) throw new Error(`timestepEmbedding: dim must be an integer ≥ 4 (the reference divides by ⌊dim/2⌋ − 1), got ${dim}`);
  const scale = Math.fround(-Math.log(10000) / (half - 1));
  const f = new Float32Array(half);
  for (let i = 0; i < half; i++) f[i] = Math.exp(Math.fround(i * scale));
  return f;
}

/**
 * $$e(t) = \big[\sin(t f_0),\dots,\sin(t f_{h-1}),\ \cos(t f_0),\dots,\cos(t f_{h-1})\big]$$
 * with a zero column appended when `dim` is odd.
 *
 * @param t - timesteps `[N]` (any real values; the model is called with the 0-based integer t or with t as a float)
 * @param dim - embedding width (the UNet uses `ch`)
 * @returns `[N, dim]` float32
 */
export function timestepEmbedding(t: tf.Tensor1D, dim: number): tf.Tensor2D {
  if (t.rank !== 1) throw new Error(`timestepEmbedding: t must be a vector [N], got shape [${t.shape.join(',')}]`);
  const f = timestepFrequencies(dim);
  return tf.tidy(() => {
    const arg = t.toFloat().reshape([-1, 1]).mul(tf.tensor2d(f, [1, f.length]));
    const parts = [tf.sin(arg), tf.cos(arg)];
    if (dim % 2 === 1) parts.push(tf.zeros([t.shape[0], 1]));
    return tf.concat(parts, 1) as tf.Tensor2D;
  });
}
