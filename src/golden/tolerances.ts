/**
 * The tolerances of the golden replay, each with its reason, taken from `golden/upstream/README.md`. They must
 * admit both a float64 implementation (our spec) and a float32 one (the tfjs reference, on any backend), since
 * the same replay validates both; where the README measured a float64 implementation against the float32
 * reference, that measurement sets the bound.
 *
 * @module
 */
import { createSpecOps } from '../conformance/impl/spec.ts';
import type { BufferName, DiffusionArgs, ModelSpec } from '../conformance/ops.ts';
import { bufferErrors, decoderBitsBound, dgllBound, UNIT_ROUNDOFF, type Precision } from '../numeric/bounds.ts';
import { fmt } from '../numeric/close.ts';
import { override, type Tolerance } from '../numeric/tolerance.ts';
import type { DiffusionOps, ElementAtol, Tensor } from './types.ts';

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
    'a·x − b·y with large a, b (√(1/ᾱ) = 20291 at cosine T=1000, t=999) errs in proportion to its terms, not its result (docs/numerics.md, "Differences of large terms"): atol = 4(u₃₂ + u_impl)·(|a·x|+|b·y|) + 1e−6 (the README measured 1.5e−7·(|a·x|+|b·y|) for float64 code)',
  ),
  /** p_mean_variance outputs. */
  pMeanVariance: override({ rtol: 1e-4, atol: 1e-5 }, 'README: rtol 1e−4 + atol 1e−5 for p_mean_variance outputs (x̂₀ amplifies float32 rounding by up to √(1/ᾱ_t))'),
  normalKl: override({ rtol: 1e-5, atol: 1e-5 }, 'README: normal_kl rtol 1e−5, with atol 1e−5 for near-zero KLs (float32 cancellation)'),
  cdf: override({ rtol: 0, atol: 1e-7 }, 'README: the approximate CDF within atol 1e−7 (a float32 ulp near 1 is 6e−8)'),
  /** Discretised log-likelihood: a per-element bound from src/numeric/bounds.ts (dgllBound). */
  dgll: override(
    { rtol: 0, atol: 0 },
    'derived per element (docs/numerics.md, "Bin probabilities"): the bin probability Φ₊ − Φ₋ is a difference of two CDFs, each with an absolute error of about 2u in the precision that computed it, so log P errs by −log(1 − e/P) with e the two sides\' errors (condition number (|Φ₊| + |Φ₋|)/(Φ₊ − Φ₋)), plus u·|log P| and a floor of 2u₃₂',
  ),
  dgllMask:
    'saturated: the bin probability minus its error bound is ≤ 1e−12, so the float32 reference may have returned the clamp log(1e−12) (or a few-ulp ladder value) whatever the exact probability; its value is unrelated to the formula there',
  /** Buffers: a per-element bound from src/numeric/bounds.ts (bufferErrors). */
  buffersDerived: override(
    { rtol: 0, atol: 0 },
    'derived per element (docs/numerics.md, "Cumulative products"): ᾱ_t errs by r_t = 2u(t + 1)(1 + |log ᾱ_t|) + u relative (a running product or exp Σ log α), propagated through each buffer\'s formula (1 − ᾱ amplifies it by ᾱ/(1 − ᾱ), up to 1e4 at t = 0), summed over the reference\'s float64 and the implementation\'s precision',
  ),
  /** Where the t = 0 decoder term is this large (bits/dim), its gradient is set by the float32 CDF ladder. */
  decoderTrapBits: 16,
  /** The clamp log(1e−12) = 27.63 nats = 39.86 bits/dim; within 1 bit of it nearly every pixel is clamped (gradient exactly 0). */
  decoderClampBits: 27.631021 / Math.LN2,
  decoderTrapGradMask:
    'README tail trap: the t = 0 decoder term lies between 16 bits/dim (11 nats per dimension on average) and 1 bit below the clamp log(1e−12) (39.86 bits/dim, where the clamp zeroes every gradient), so many pixels lie where float32 quantises the CDFs (the ladder starts near 15.9 nats); there the gradient is 1 − tanh² at saturated arguments over a quantised bin probability, set by the last ulp of each tanh implementation (O(1) apart between implementations, and from the exact gradient): not compared',
  /** Training losses. */
  mse: override({ rtol: 1e-5, atol: 1e-6 }, 'README: MSE terms rtol 1e−5 (observed ≤ 2e−7 relative)'),
  vbBits: override({ rtol: 1e-5, atol: 1e-6 }, 'README: KL/vb terms rtol 1e−5 with atol 1e−6 bits (terms of order 1e−6 bits at t = T−1 are float32 noise)'),
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

/** The precision an implementation declares (float32 when it does not say). */
export function precisionOf(impl: Pick<DiffusionOps, 'precision'>): Precision {
  return impl.precision ?? 'float32';
}

/** Its CDF convention as the bounds take it. */
function cdfOf(impl: Pick<DiffusionOps, 'cdf'>): { implCdf: 'tanh' | 'exact' } {
  return { implCdf: impl.cdf ?? 'tanh' };
}

/**
 * The per-element bound of discretised log-likelihoods computed by the float32 reference and compared with an
 * implementation of the declared precision (and CDF convention), with the saturated elements masked.
 */
export function dgllAtol(x: Tensor, means: Tensor, logScales: Tensor, impl: Pick<DiffusionOps, 'precision' | 'cdf'>): ElementAtol {
  const n = x.data.length;
  const values = new Float64Array(n);
  const keep = new Uint8Array(n);
  const prec = precisionOf(impl);
  for (let i = 0; i < n; i++) {
    const b = dgllBound({ x: x.data[i], mean: means.data[i], logScale: logScales.data[i] }, 'float32', prec, cdfOf(impl));
    keep[i] = b.saturated ? 0 : 1;
    values[i] = b.saturated ? 0 : b.bound;
  }
  const exact = impl.cdf === 'exact' ? ', + 1.8e−4 per CDF for the exact Φ against the tanh approximation' : '';
  return {
    values,
    formula: `−log(1 − e/P) + (u₃₂ + u_${prec === 'float32' ? '32' : '64'})·|log P| + 2u₃₂ (e: both sides' CDF errors${exact})`,
    mask: { keep, reason: GOLDEN_TOL.dgllMask },
  };
}

/**
 * The per-element bound of a float64 buffer recorded by the reference (numpy, float64) against an implementation of
 * the declared precision: {@link bufferErrors} of both precisions.
 */
export function bufferAtol(name: BufferName, buffers: { betas: ArrayLike<number>; alphas_cumprod: ArrayLike<number> }, impl: Pick<DiffusionOps, 'precision'>): ElementAtol {
  const prec = precisionOf(impl);
  const ref = bufferErrors(name, buffers, UNIT_ROUNDOFF.float64);
  const imp = bufferErrors(name, buffers, UNIT_ROUNDOFF[prec]);
  if (!ref || !imp) throw new Error(`bufferAtol: no derived bound for the buffer ${name}`);
  const values = ref.map((v, i) => v + imp[i]);
  return { values, formula: `Σ over float64 and ${prec} of the propagated error of ᾱ (r_t = 2u(t+1)(1+|log ᾱ_t|) + u); largest ${fmt(Math.max(...values))}` };
}

let specOps: DiffusionOps | undefined;

/**
 * The bound (bits) of the t = 0 decoder term −(1/N)·Σ log P̂ / ln 2 of each example of a batch (docs/numerics.md,
 * "The decoder term"), from the per-element likelihood bounds at the decoder's mean and log-scale. Those inputs
 * are recomputed by the float64 spec (x₁ = q_sample(x₀, 0, noise), then p_mean_variance with the case's model), so
 * that a wrong implementation cannot loosen its own bound; the float32 reference computed them with an error of
 * 8u·(|μ| + |x₁| + |x̂₀|) for the mean and 8u·|log σ| for the log-scale (a few products and sums of terms of these
 * sizes), which enter each element's z. Saturated elements count their whole range (see `decoderBitsBound`).
 *
 * @param noise - the q_sample noise of the t = 0 step, shaped like x0
 */
export async function decoderBitsAtol(
  args: DiffusionArgs & { clip_denoised: boolean },
  model: ModelSpec,
  x0: Tensor,
  noise: Tensor,
  impl: Pick<DiffusionOps, 'precision' | 'cdf'>,
): Promise<{ bits: Float64Array; saturated: Int32Array; elements: number }> {
  specOps ??= createSpecOps();
  const B = x0.shape[0];
  const n = x0.data.length / B;
  const t = { shape: [B], data: new Float64Array(B) };
  const xt = (await specOps.q_sample!(args, x0, t, noise)).x_t;
  const pm = await specOps.p_mean_variance!(args, model, xt, t);
  const u = UNIT_ROUNDOFF.float32 + UNIT_ROUNDOFF[precisionOf(impl)];
  const bits = new Float64Array(B);
  const saturated = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const els = Array.from({ length: n }, (_, j) => {
      const i = b * n + j;
      const mean = pm.mean.data[i];
      const logScale = 0.5 * pm.log_variance.data[i];
      return { x: x0.data[i], mean, logScale, meanErr: 8 * u * (Math.abs(mean) + Math.abs(xt.data[i]) + Math.abs(pm.pred_xstart.data[i])), logScaleErr: 8 * u * Math.abs(logScale) };
    });
    const r = decoderBitsBound(els, 'float32', precisionOf(impl), cdfOf(impl));
    bits[b] = r.bound;
    saturated[b] = r.saturated;
  }
  return { bits, saturated, elements: n };
}

/** The reason printed with a decoder-term bound. */
export function decoderReason(saturated: ArrayLike<number>, elements: number): string {
  const s = Array.from(saturated);
  return `at t = 0, the decoder term −(1/N)·Σ log P / ln 2: derived from the element bounds of the likelihood (docs/numerics.md, "The decoder term")${s.some((v) => v > 0) ? `; ${s.join('/')} of ${elements} elements per example saturated (counted with their whole range [log 1e−12, log(P + e)])` : ''}`;
}
