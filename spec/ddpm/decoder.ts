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
 * **Two conventions.** The definition above (eq. 13, with the exact Φ) is {@link discretizedGaussianLogLikelihood}.
 * The public code (Ho et al.'s `diffusion_utils_2.py`, ported unchanged to improved-diffusion's
 * `discretized_gaussian_log_likelihood`) evaluates the same bins with a tanh approximation Φ̃ of Φ and floors
 * every probability at 10⁻¹² before the logarithm:
 *
 * $$\tilde\Phi(z) = \tfrac12\Big(1 + \tanh\big(\sqrt{2/\pi}\,(z + 0.044715\,z^3)\big)\Big),\qquad
 *   \log \tilde P(x) = \log\max\Big(\tilde\Phi\Big(\frac{\delta_+(x)-\mu}{\sigma}\Big) - \tilde\Phi\Big(\frac{\delta_-(x)-\mu}{\sigma}\Big),\ 10^{-12}\Big)$$
 *
 * ({@link discretizedGaussianLogLikelihoodTanh}). |Φ̃ − Φ| ≤ 1.79·10⁻⁴, but far in a tail Φ̃ is much smaller than Φ
 * (Φ̃(−6)/Φ(−6) ≈ 0.014), and the floor caps −log P̃ at 27.63 nats: the two conventions differ by up to 0.4 nats
 * per pixel on the golden grid and by tens of bits per dimension in a decoder term whose mean is far from x₀.
 * Golden data and any implementation that follows the public code use the tanh convention;
 * {@link DecoderConvention} names both.
 *
 * @module
 */
import { z } from 'zod';
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

// ---------------------------------------------------------------------------------------------------------------
// The public code's convention: the tanh approximation of Φ and a floor of 1e−12
// ---------------------------------------------------------------------------------------------------------------

const TANH_SCALE = Math.sqrt(2 / Math.PI);
const TANH_CUBIC = 0.044715;

/**
 * The floor under every bin probability in the public code's decoder, before the logarithm
 * (`clamp(min=1e-12)`); log 10⁻¹² = −27.631021 nats.
 *
 * @see property `ddpm.decoder.tanhFloorBoundsNll`
 */
export const DECODER_PROB_FLOOR = 1e-12;

/**
 * The float32 numbers nearest ±0.999: the public code compares float32 pixels with the threshold 0.999 in float32,
 * so x = float32(0.999) = 0.99900001287… is **not** above it and takes the middle branch.
 *
 * @see property `ddpm.decoder.tanhAgreesWithGolden`
 */
export const DECODER_EDGE_FLOAT32 = Math.fround(0.999);

/** Φ̃(z) = σ(2y) = 1/(1 + e^{−2y}) with y = √(2/π)(z + 0.044715 z³): equal to ½(1 + tanh y), without cancellation when Φ̃ is small. */
function tanhCdf(zv: number): number {
  const y = TANH_SCALE * (zv + TANH_CUBIC * zv * zv * zv);
  if (y >= 0) return 1 / (1 + Math.exp(-2 * y));
  const e = Math.exp(2 * y);
  return e / (1 + e);
}

/**
 * The public code's approximation of the standard normal CDF (`approx_standard_normal_cdf`; Page 1977), in float64.
 *
 * $$\tilde\Phi(x) = \tfrac12\Big(1 + \tanh\big(\sqrt{2/\pi}\,(x + 0.044715\,x^3)\big)\Big) = \frac{1}{1 + e^{-2\sqrt{2/\pi}(x + 0.044715x^3)}}$$
 *
 * Evaluated in the logistic form, so that in the lower tail it keeps its relative precision (½(1 + tanh y) cancels
 * to 0 once tanh y rounds to −1, near x = −6.5). It is odd about ½: Φ̃(−x) = 1 − Φ̃(x). Its largest error against
 * Φ is 1.789·10⁻⁴, at |x| ≈ 2.592.
 *
 * @param x - any number (±∞ give 0 and 1)
 * @see property `ddpm.decoder.tanhCdfEqTextbook`
 * @see property `ddpm.decoder.tanhCdfNearPhi`
 */
export function approxStandardNormalCdf(x: number): number {
  if (typeof x !== 'number' || Number.isNaN(x)) throw new RangeError(`approxStandardNormalCdf: x must be a number (±∞ allowed), got ${String(x)}`);
  if (x === Infinity) return 1;
  if (x === -Infinity) return 0;
  return tanhCdf(x);
}

/** Φ̃(b) − Φ̃(a) for standardised a < b (either may be ±∞), computed on the side of 0 where the CDF values are small. */
function tanhProbBetween(a: number, b: number): number {
  const cdf = (v: number): number => (v === Infinity ? 1 : v === -Infinity ? 0 : tanhCdf(v));
  if (a >= 0) return cdf(-a) - cdf(-b);
  if (b <= 0) return cdf(b) - cdf(a);
  return 1 - cdf(-b) - cdf(a);
}

/**
 * Log-probability (nats) of one pixel value x under the public code's discretised Gaussian: the bins of eq. 13
 * integrated with the tanh CDF {@link approxStandardNormalCdf}, floored at {@link DECODER_PROB_FLOOR}
 * (improved-diffusion's `discretized_gaussian_log_likelihood`, evaluated in float64).
 *
 * $$\log \tilde P(x) = \log\max\Big(\tilde\Phi\big((x - \mu + \tfrac1{255})/\sigma\big) - \tilde\Phi\big((x - \mu - \tfrac1{255})/\sigma\big),\ 10^{-12}\Big)$$
 *
 * with Φ̃(+∞) = 1 for x > float32(0.999) and Φ̃(−∞) = 0 for x < −float32(0.999) (the code's float32 thresholds,
 * {@link DECODER_EDGE_FLOAT32}). Always ≥ log 10⁻¹² = −27.631021; the 256 levels' probabilities sum to 1 up to the
 * floor's extra mass (at most 256·10⁻¹²).
 *
 * @param x - a data value in [−1, 1] (a pixel level, possibly rounded to float32 as the code's data is)
 * @param mean - μ, finite
 * @param logScale - log σ, finite
 * @see property `ddpm.decoder.tanhFloorBoundsNll`
 * @see property `ddpm.decoder.tanhBinsSumToOne`
 * @see property `ddpm.decoder.tanhAgreesWithGolden`
 */
export function discretizedGaussianLogLikelihoodTanh(x: number, mean: number, logScale: number): number {
  checkScalar('discretizedGaussianLogLikelihoodTanh', 'x', x, { lo: -1, hi: 1 });
  checkScalar('discretizedGaussianLogLikelihoodTanh', 'mean', mean);
  checkScalar('discretizedGaussianLogLikelihoodTanh', 'logScale', logScale);
  const invSd = Math.exp(-logScale);
  const centered = x - mean;
  const lo = x < -DECODER_EDGE_FLOAT32 ? -Infinity : (centered - HALF_BIN) * invSd;
  const hi = x > DECODER_EDGE_FLOAT32 ? Infinity : (centered + HALF_BIN) * invSd;
  return Math.log(Math.max(tanhProbBetween(lo, hi), DECODER_PROB_FLOOR));
}

/**
 * The two conventions for the decoder's bin probabilities: `exactPhi`, the integral of eq. 13 with the exact
 * normal CDF ({@link discretizedGaussianLogLikelihood}), and `tanhFloored`, the public code's tanh-approximate CDF
 * with its floor of 10⁻¹² ({@link discretizedGaussianLogLikelihoodTanh}).
 *
 * @see property `ddpm.decoder.conventionsNamed`
 */
export const DecoderConvention = z.enum(['exactPhi', 'tanhFloored']);
export type DecoderConvention = z.infer<typeof DecoderConvention>;

/**
 * The per-pixel log-likelihood (nats) of a decoder convention.
 *
 * @see property `ddpm.decoder.conventionsNamed`
 */
export function decoderLogLikelihood(convention: DecoderConvention): (x: number, mean: number, logScale: number) => number {
  const c = DecoderConvention.safeParse(convention);
  if (!c.success) throw new RangeError(`decoderLogLikelihood: convention must be one of ${DecoderConvention.options.join(', ')}, got ${JSON.stringify(convention)}`);
  return c.data === 'exactPhi' ? discretizedGaussianLogLikelihood : discretizedGaussianLogLikelihoodTanh;
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
 * @param convention - the bins' CDF: `exactPhi` (eq. 13, the default) or `tanhFloored` (the public code)
 * @see property `ddpm.decoder.bitsPerDimConsistent`
 * @see property `ddpm.decoder.conventionsNamed`
 */
export function discreteDecoderNll(x0: Vec, mean: Vec, variance: number | Vec, convention: DecoderConvention = 'exactPhi'): number {
  const logLik = decoderLogLikelihood(convention);
  const D = checkSameLength('discreteDecoderNll', { x0, mean });
  const varAt = typeof variance === 'number' ? () => variance : (i: number) => variance[i];
  if (typeof variance !== 'number') checkSameLength('discreteDecoderNll', { x0, variance });
  let s = 0;
  for (let i = 0; i < D; i++) {
    const v = varAt(i);
    checkScalar('discreteDecoderNll', typeof variance === 'number' ? 'variance' : `variance[${i}]`, v, { lo: 0, loOpen: true });
    s -= logLik(x0[i], mean[i], 0.5 * Math.log(v));
  }
  return s;
}
