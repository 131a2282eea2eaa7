/**
 * The tolerances of the golden replay, each with its reason, taken from `golden/upstream/README.md`. They must
 * admit both a float64 implementation (our spec) and a float32 one (the tfjs reference, on any backend), since
 * the same replay validates both; where the README measured a float64 implementation against the float32
 * reference, that measurement sets the bound.
 *
 * @module
 */
import { override, type Tolerance } from '../numeric/tolerance.ts';

export const GOLDEN_TOL = {
  /** float64 schedules and buffers. */
  buffers64: override(
    { rtol: 1e-12, atol: 1e-14 },
    'README: a float64 implementation with the same expression order is within 1e−15 relative; rtol 1e−12 allows cumulative-product and Math.cos/Math.log ulp differences',
  ),
  /** float32 buffers (Ho v1, alphas_cumprod_as_float32) against Math.fround of the float64 buffer. */
  buffers32: override(
    { rtol: 1.2e-7, atol: 1e-30 },
    'README: float32 buffers are the float64 values rounded once; compared with Math.fround(ours), one float32 ulp (2⁻²³ relative) allows a float64 difference that crosses a rounding boundary',
  ),
  /** Integers (timestep lists, maps). */
  exact: override({ rtol: 0, atol: 0 }, 'integer outputs (timestep lists) must be identical'),
  /** q_sample, posterior mean, means and variances of the q functions. */
  qValues: override({ rtol: 0, atol: 1e-6 }, 'README: q_sample, posterior mean and variances of a float64 implementation are within atol 1e−6 of the float32 reference'),
  /** log-variances of the q functions. */
  qLogVariances: override({ rtol: 0, atol: 2e-6 }, 'README: log-variances of a float64 implementation are within atol 2e−6 of the float32 reference'),
  /** a·x − b·y with large coefficients: the bound scales with the size of the terms (see elementAtol). */
  qDifference: override(
    { rtol: 0, atol: 1e-6 },
    'README: a·x − b·y with large a, b (√(1/ᾱ) = 20291 at cosine T=1000, t=999) errs in proportion to its terms, not its result: atol = 5e−7·(|a·x|+|b·y|) + 1e−6',
  ),
  /** p_mean_variance outputs. */
  pMeanVariance: override({ rtol: 1e-4, atol: 1e-5 }, 'README: rtol 1e−4 + atol 1e−5 for p_mean_variance outputs (x̂₀ amplifies float32 rounding by up to √(1/ᾱ_t))'),
  normalKl: override({ rtol: 1e-5, atol: 1e-5 }, 'README: normal_kl rtol 1e−5, with atol 1e−5 for near-zero KLs (float32 cancellation)'),
  cdf: override({ rtol: 0, atol: 1e-7 }, 'README: the approximate CDF within atol 1e−7 (a float32 ulp near 1 is 6e−8)'),
  /** Discretised log-likelihood, by z = |x − mean|·e^(−log_scale). */
  dgllCore: override({ rtol: 0, atol: 2e-3 }, 'README: where z ≤ 3 a float64 re-computation is within 1e−3 nats of the float32 reference (bin probability is a float32 difference of CDFs); atol 2e−3'),
  dgllShoulder: override(
    { rtol: 0, atol: 8e-3 },
    'README: where 3 < z ≤ 4 the float32 CDF difference loses more digits: a float64 implementation is within 4e−3 nats; a float32 one quantises its own CDFs too, so |ours − reference| ≤ |ours − exact| + |exact − reference| ≤ 2·4e−3',
  ),
  /** Where the t = 0 decoder term is this large (bits/dim), its gradient is set by the float32 CDF ladder. */
  decoderTrapBits: 16,
  /** The clamp log(1e−12) = 27.63 nats = 39.86 bits/dim; within 1 bit of it nearly every pixel is clamped (gradient exactly 0). */
  decoderClampBits: 27.631021 / Math.LN2,
  decoderTrapGradMask:
    'README tail trap: the t = 0 decoder term lies between 16 bits/dim (11 nats per dimension on average) and 1 bit below the clamp log(1e−12) (39.86 bits/dim, where the clamp zeroes every gradient), so many pixels lie where float32 quantises the CDFs (the ladder starts near 15.9 nats); there the gradient is 1 − tanh² at saturated arguments over a quantised bin probability, set by the last ulp of each tanh implementation (O(1) apart between implementations, and from the exact gradient): not compared',
  dgllTailMask: 'README: where z > 4 float32 quantises the CDFs to multiples of ≈3e−8, so the reference returns a ladder of log-probabilities (or the clamp −27.63) up to 11 nats from the resolved value, and torch\'s float32 tanh saturates earlier than others: masked',
  /** Training losses. */
  mse: override({ rtol: 1e-5, atol: 1e-6 }, 'README: MSE terms rtol 1e−5 (observed ≤ 2e−7 relative)'),
  vbBits: override({ rtol: 1e-5, atol: 1e-6 }, 'README: KL/vb terms rtol 1e−5 with atol 1e−6 bits (terms of order 1e−6 bits at t = T−1 are float32 noise)'),
  decoderTrap: override(
    { rtol: 1e-5, atol: 1.1 },
    'README: the t = 0 decoder term inherits the likelihood tail trap: for a model mean far from x₀ the float32 reference gives 25.39 bits where float64 gives 24.64; measured with the float64 spec (tanh convention) at calc_bpd_loop cosine T=20 PREVIOUS_X: 30.25 against 31.26 bits (3 of 32 pixels at 5 < z < 6, where float32 tanh rounds to −1 and the 1e−12 floor gives −27.63 nats, while float64 resolves −18.8 … −22.5); atol 1.1 bits at t = 0 only, until that term masks saturated pixels as the element-wise check does',
  ),
  /** Embeddings, by t. */
  embeddingSmallT: override({ rtol: 0, atol: 5e-6 }, 'README: the float32 argument t·freq errs in proportion to t: atol 5e−6 for t ≤ 100'),
  embeddingLargeT: override({ rtol: 0, atol: 5e-4 }, 'README: the float32 argument t·freq errs in proportion to t: atol 5e−4 for t > 100 (Ho vs diffusers differ by 1.2e−4 there)'),
  /** One sampling step from the reference's own previous state, TinyModel. */
  samplingStep: override({ rtol: 0, atol: 1e-5 }, 'README: fed the reference\'s previous state, a float64 step is within 1.5e−6 of every TinyModel step; atol 1e−5'),
} as const satisfies Record<string, Tolerance | string | number>;

/**
 * Gradients of the training losses w.r.t. the TinyModel parameters: the README states no bound. A gradient is
 * a sum over the batch and pixels of products with the loss's float32 terms, so it carries the loss's relative
 * error (1e−5) plus cancellation between examples, measured against the scale of the gradient itself.
 * Where the term contains the t = 0 decoder NLL, its gradient passes through 1 − tanh² of saturated tanh
 * arguments divided by a quantised bin probability (the README's tail trap): torch's float32 tanh returns
 * exactly ±1 earlier than other implementations, so such elements contribute 0 there and not elsewhere;
 * measured 1.1e−5·max|∇| (W) and 3.3e−5·max|∇| (bias) on cpu and wasm.
 */
export function gradTol(maxAbsGrad: number, decoderAtT0 = false): Tolerance {
  const k = decoderAtT0 ? 1e-4 : 1e-5;
  return override(
    { rtol: 1e-4, atol: k * Math.max(maxAbsGrad, 1e-3) },
    decoderAtT0
      ? `gradient of a term with the t = 0 decoder NLL (no README bound): 1 − tanh² at saturated arguments over a quantised bin probability differs between float32 tanh implementations (the README's tail trap); rtol 1e−4, atol 1e−4·max|∇| (${maxAbsGrad.toExponential(2)})`
      : `gradients (no README bound): a sum of float32 products carries the loss's relative error plus cancellation between terms; rtol 1e−4, atol 1e−5·max|∇| (${maxAbsGrad.toExponential(2)})`,
  );
}
