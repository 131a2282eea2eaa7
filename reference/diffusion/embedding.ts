/**
 * Sinusoidal timestep embeddings, [N] timesteps → [N, dim] float32.
 *
 * - `ho` (Ho et al. `nn.py`, pesser's port, diffusers' default): half = ⌊dim/2⌋, freq_i = exp(−i·ln(10000)/(half−1)),
 *   output [sin | cos]; a zero column is appended for odd dim. dim = 2 and 3 divide by half − 1 = 0 and are
 *   rejected; dim = 1 gives a single zero column.
 * - `improved` (improved-diffusion `nn.py`): freq_i = exp(−ln(max_period)·i/half), output [cos | sin], a zero column
 *   for odd dim, except at dim = 1, where the public code returns an empty [N, 0] (its zero column is cut from
 *   an empty tensor); this reproduces that.
 *
 * The argument t·freq is formed in float32, as in the public code (its error grows with t).
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { ReferenceArgumentError, oneOf, positiveInt } from './errors.ts';

/**
 * The frequencies ω_i, i = 0 … half−1, as the public code forms them in float32 (each operation rounded to
 * float32), computed on the host so that they do not depend on a backend's `exp` (WGSL allows several ulps,
 * and the error of ω_i is multiplied by t in the argument).
 */
function frequencies(flavor: EmbeddingFlavor, half: number, maxPeriod: number): Float32Array {
  const f = Math.fround;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    // ho: exp(arange(half) · −(ln 10000/(half−1))); improved: exp((−ln(max_period) · arange(half)) / half)
    const e = flavor === 'ho' ? f(i * f(-(Math.log(10000) / (half - 1)))) : f(f(f(-Math.log(maxPeriod)) * i) / half);
    out[i] = f(Math.exp(e));
  }
  return out;
}

// 2π split Cody–Waite style: C1 has 8 significant bits, so k·C1 is exact in float32 for |k| < 2^16,
// and C1 + C2 + C3 carries 2π to well beyond float32 precision.
const TWO_PI_C1 = 6.28125;
const TWO_PI_C2 = Math.fround(2 * Math.PI - TWO_PI_C1);
const TWO_PI_C3 = Math.fround(2 * Math.PI - TWO_PI_C1 - TWO_PI_C2);

/**
 * sin and cos of float32 arguments after reducing them to about [−π, π]: r = x − k·2π with k = round(x/2π),
 * subtracting 2π in three parts so that r is accurate to a few float32 ulps of r (exact first step for
 * |x| < 4·10⁵). WGSL specifies sin/cos only on [−π, π] (absolute error 2⁻¹¹) and GPU sine units lose accuracy
 * with |x|; on IEEE backends this changes nothing beyond the last bits.
 */
function sinCos(x: tf.Tensor): [tf.Tensor, tf.Tensor] {
  const k = tf.round(x.mul(1 / (2 * Math.PI)));
  const r = x.sub(k.mul(TWO_PI_C1)).sub(k.mul(TWO_PI_C2)).sub(k.mul(TWO_PI_C3));
  return [tf.sin(r), tf.cos(r)];
}

/** The two conventions. */
export const EMBEDDING_FLAVORS = ['ho', 'improved'] as const;
export type EmbeddingFlavor = (typeof EMBEDDING_FLAVORS)[number];

/**
 * Sinusoidal embedding of timesteps (Vaswani et al. 2017, as used by DDPM's UNet).
 *
 * Ho: $$e(t) = \big[\sin(t\,\omega_0), …, \sin(t\,\omega_{h-1}),\ \cos(t\,\omega_0), …, \cos(t\,\omega_{h-1})\big],\quad
 *   \omega_i = e^{-i\ln(10000)/(h-1)},\ h = \lfloor \mathrm{dim}/2 \rfloor$$
 *
 * @param t - timesteps [N] (a float32 or int32 tensor, or host numbers); fractional values allowed
 * @param dim - embedding width ≥ 1 (not 2 or 3 for `ho`)
 */
export function timestepEmbedding(t: tf.Tensor1D | ArrayLike<number>, dim: number, flavor: EmbeddingFlavor = 'ho', maxPeriod = 10000): tf.Tensor2D {
  const fn = 'timestepEmbedding';
  positiveInt(fn, 'dim', dim);
  oneOf(fn, 'flavor', flavor, EMBEDDING_FLAVORS);
  if (!(maxPeriod > 1) || !Number.isFinite(maxPeriod)) throw new ReferenceArgumentError(fn, 'maxPeriod', `maxPeriod must be a finite number > 1, got ${maxPeriod}`);
  if (t instanceof tf.Tensor) {
    if (t.rank !== 1) throw new ReferenceArgumentError(fn, 't', `t must be a 1-D tensor of timesteps [N], got rank ${t.rank}`);
  } else if (t === null || typeof t !== 'object' || typeof t.length !== 'number') {
    throw new ReferenceArgumentError(fn, 't', `t must be a tensor or an array of timesteps, got ${typeof t}`);
  }
  const half = Math.floor(dim / 2);
  if (flavor === 'ho' && half === 1) {
    throw new ReferenceArgumentError(fn, 'dim', `dim must be 1 or ≥ 4 for Ho's embedding (it divides ln(10000) by ⌊dim/2⌋ − 1, which is 0 for dim = ${dim})`);
  }
  return tf.tidy(() => {
    const tt = (t instanceof tf.Tensor ? t : tf.tensor1d(Float32Array.from(t), 'float32')).toFloat();
    const N = tt.shape[0];
    if (half === 0) return tf.zeros([N, flavor === 'ho' ? 1 : 0]) as tf.Tensor2D;
    const freqs = tf.tensor2d(frequencies(flavor, half, maxPeriod), [1, half], 'float32');
    const args = tt.reshape([N, 1]).mul(freqs);
    const [sin, cos] = sinCos(args);
    const parts = flavor === 'ho' ? [sin, cos] : [cos, sin];
    if (dim % 2 === 1) parts.push(tf.zeros([N, 1]));
    return tf.concat(parts, 1) as tf.Tensor2D;
  });
}
