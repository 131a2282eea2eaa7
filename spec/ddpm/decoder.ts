/**
 * # 3.6 The discrete decoder L_0
 *
 * Images are integers k ∈ {0, …, 255} scaled linearly to x = k/127.5 − 1 ∈ [−1, 1]. The last reverse step is
 * made a distribution on that grid by integrating the Gaussian p_θ(x_0 | x_1) = N(μ, σ²) over each pixel's bin
 * (Ho et al. 2020, eq. 13), independently per dimension:
 *
 * $$p_\theta(x_0\mid x_1) = \prod_{i=1}^{D}\int_{\delta_-(x_0^i)}^{\delta_+(x_0^i)}\mathcal N(x;\ \mu^i,\ \sigma^2)\,dx,\qquad
 *   \delta_+(x) = \begin{cases}\infty & x = 1\\ x + \tfrac1{255} & x < 1\end{cases},\quad
 *   \delta_-(x) = \begin{cases}-\infty & x = -1\\ x - \tfrac1{255} & x > -1\end{cases}$$
 *
 * The bins are 2/255 wide (the grid spacing), centred on the levels, and the two outer bins are open, so the
 * 256 probabilities sum to 1. The edge test is the reference code's: x < −0.999 is the lowest level, x > 0.999
 * the highest. Log-probabilities are in **nats**; divide by D·ln 2 for bits per dimension.
 *
 * Probabilities are evaluated in float64 without the reference code's float32 clamp at 10⁻¹²: where a bin lies
 * far in a tail, the log-probability is computed from the tails' logarithms (no underflow to −∞ for σ > 0).
 *
 * @module
 */
import { erfc } from '../gaussian/normal1d.ts';
import { checkSameLength, checkScalar, type Vec } from './internal.ts';

/**
 * The number of pixel levels.
 *
 * @see property `ddpm.decoder.binsSumToOne`
 */
export const PIXEL_LEVELS = 256;

/**
 * The data value of pixel level k ∈ {0, …, 255}.
 *
 * $$x = \frac{k}{127.5} - 1$$
 *
 * @see property `ddpm.decoder.binsSumToOne`
 */
export function pixelLevel(k: number): number {
  if (!Number.isInteger(k) || k < 0 || k > 255) throw new RangeError(`pixelLevel: k must be an integer in 0…255, got ${String(k)}`);
  return k / 127.5 - 1;
}

const HALF_BIN = 1 / 255;
const EDGE = 0.999;
const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/**
 * log Q(z) = log P(Z > z) for a standard normal Z, accurate in both tails: erfc where it does not underflow,
 * the asymptotic (Mills-ratio) series beyond z = 35 (relative truncation error < 1e−12 there).
 */
function logUpperTail(z: number): number {
  if (z === Infinity) return -Infinity;
  if (z === -Infinity) return 0;
  if (z < 0) return Math.log1p(-upperTail(-z));
  if (z <= 35) return Math.log(0.5 * erfc(z / Math.SQRT2));
  const r = 1 / (z * z);
  return -0.5 * z * z - Math.log(z) - LOG_SQRT_2PI + Math.log1p(r * (-1 + r * (3 + r * (-15 + r * 105))));
}

/** log(Φ(b) − Φ(a)) for standardised a < b (either may be ±∞), without cancellation in either tail. */
function logProbBetween(a: number, b: number): number {
  // Work on the side of 0 where the CDF values are small: for a ≥ 0 use Q(a) − Q(b); for b ≤ 0 mirror.
  if (a >= 0) {
    const la = logUpperTail(a);
    const lb = logUpperTail(b);
    return la + Math.log1p(-Math.exp(lb - la));
  }
  if (b <= 0) return logProbBetween(-b, -a);
  // The interval contains 0: the probability is not small; 1 − Q(b) − Q(−a) has no harmful cancellation.
  return Math.log1p(-(upperTail(b) + upperTail(-a)));
}

/** Q(z) = P(Z > z) for z ≥ 0 (0 at +∞). */
function upperTail(z: number): number {
  return z === Infinity ? 0 : 0.5 * erfc(z / Math.SQRT2);
}

/**
 * Log-probability (nats) of one pixel value x under the discretised Gaussian with mean μ and log standard
 * deviation `logScale` = log σ (the reference code's `log_scales` = ½·log σ²).
 *
 * $$\log P(x) = \log\Big(\Phi\Big(\frac{\delta_+(x)-\mu}{\sigma}\Big) - \Phi\Big(\frac{\delta_-(x)-\mu}{\sigma}\Big)\Big)$$
 *
 * @param x - a data value in [−1, 1] (a pixel level; the outer bins are chosen by x < −0.999 and x > 0.999)
 * @param mean - μ, finite
 * @param logScale - log σ, finite
 * @see property `ddpm.decoder.binsSumToOne`
 * @see property `ddpm.decoder.eqIntegralOfDensity`
 * @see property `ddpm.decoder.tailsFinite`
 */
export function discretizedGaussianLogLikelihood(x: number, mean: number, logScale: number): number {
  checkScalar('discretizedGaussianLogLikelihood', 'x', x, { lo: -1, hi: 1 });
  checkScalar('discretizedGaussianLogLikelihood', 'mean', mean);
  checkScalar('discretizedGaussianLogLikelihood', 'logScale', logScale);
  const invSd = Math.exp(-logScale);
  // On the grid (x exactly k/127.5 − 1) the edges are computed from k, so that neighbouring bins share their
  // edge bit for bit and the 256 probabilities sum to 1 even for tiny σ; elsewhere x ± 1/255 (the reference rule).
  const k = Math.round((x + 1) * 127.5);
  const onGrid = k / 127.5 - 1 === x;
  const loEdge = onGrid ? (2 * k - 1) / 255 - 1 : x - HALF_BIN;
  const hiEdge = onGrid ? (2 * k + 1) / 255 - 1 : x + HALF_BIN;
  const lo = x < -EDGE ? -Infinity : (loEdge - mean) * invSd;
  const hi = x > EDGE ? Infinity : (hiEdge - mean) * invSd;
  return logProbBetween(lo, hi);
}

/**
 * The probabilities of all 256 pixel levels under N(μ, σ²) discretised as above; they sum to 1.
 *
 * $$P_k = \Phi\Big(\frac{\delta_+(x_k)-\mu}{\sigma}\Big) - \Phi\Big(\frac{\delta_-(x_k)-\mu}{\sigma}\Big),\qquad k = 0,\dots,255$$
 *
 * @see property `ddpm.decoder.binsSumToOne`
 */
export function discretizedGaussianBinProbabilities(mean: number, logScale: number): number[] {
  const out = new Array<number>(PIXEL_LEVELS);
  for (let k = 0; k < PIXEL_LEVELS; k++) out[k] = Math.exp(discretizedGaussianLogLikelihood(pixelLevel(k), mean, logScale));
  return out;
}

/**
 * The decoder term L_0 = −log p_θ(x_0 | x_1) for one image, in nats, summed over its D dimensions, with a
 * per-dimension mean and one variance σ² (or one per dimension).
 *
 * $$L_0 = -\sum_{i=1}^{D}\log P(x_0^i;\ \mu^i, \sigma^i)$$
 *
 * @param x0 - the image on the pixel grid, D values in [−1, 1]
 * @param mean - μ_θ(x_1, 1), D entries
 * @param variance - σ² > 0, a number or D entries
 * @see property `ddpm.decoder.bitsPerDimConsistent`
 */
export function discreteDecoderNll(x0: Vec, mean: Vec, variance: number | Vec): number {
  const D = checkSameLength('discreteDecoderNll', { x0, mean });
  const varAt = typeof variance === 'number' ? () => variance : (i: number) => variance[i];
  if (typeof variance !== 'number') checkSameLength('discreteDecoderNll', { x0, variance });
  let s = 0;
  for (let i = 0; i < D; i++) {
    const v = varAt(i);
    checkScalar('discreteDecoderNll', typeof variance === 'number' ? 'variance' : `variance[${i}]`, v, { lo: 0, loOpen: true });
    s -= discretizedGaussianLogLikelihood(x0[i], mean[i], 0.5 * Math.log(v));
  }
  return s;
}
