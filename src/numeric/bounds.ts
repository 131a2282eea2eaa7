/**
 * Per-element error bounds derived from how a quantity is computed: the condition number of each operation times
 * the unit roundoff of the precision that computed it, plus a stated floor. The derivations are in
 * `docs/numerics.md` ("Derived bounds"); each function names the section.
 *
 * A golden value e was computed by the reference code in precision P_ref, the value a under test by an
 * implementation in precision P_impl; both approximate the same exact value v of the same formula, so
 *
 * $$|a - e| \le |a - v| + |v - e| \le B(P_\mathrm{impl}) + B(P_\mathrm{ref}),$$
 *
 * where B(P) is the forward error bound of the computation in precision P (unit roundoff u₃₂ = 2⁻²⁴, u₆₄ = 2⁻⁵³).
 * Where a bound is unbounded (the float32 bin probability can round to or below the clamp 10⁻¹², so the reference
 * may return log 10⁻¹² whatever the exact value), the element is *saturated*: the element-wise checks mask it and
 * the averaged ones (the t = 0 decoder term) count its whole possible range.
 *
 * @module
 */
import type { Dtype } from './tolerance.ts';

/** The arithmetic an implementation computes in (declared in the conformance handshake; float32 by default). */
export type Precision = Dtype;

/** Unit roundoff u = 2^(−p) of each precision (half an ulp of 1): every rounded operation has relative error ≤ u. */
export const UNIT_ROUNDOFF: Readonly<Record<Precision, number>> = { float32: 2 ** -24, float64: 2 ** -53 };

/** The clamp of the reference's discretised likelihood: log(max(p, 1e−12)). */
export const LOG_CLAMP_P = 1e-12;

// ---------------------------------------------------------------------------------------------------------------
// The tanh-approximate CDF and the discretised Gaussian log-likelihood (docs/numerics.md, "Bin probabilities")

const K0 = Math.sqrt(2 / Math.PI);
const K1 = 0.044715;

/** The tanh argument y(z) = √(2/π)(z + 0.044715 z³) of the approximate CDF 0.5(1 + tanh y). */
function tanhArg(z: number): number {
  return K0 * (z + K1 * z * z * z);
}

/** 0.5(1 + tanh y) and 0.5(1 − tanh y), each computed without cancellation (1/(1 + e^(∓2y))). */
function cdfPair(z: number): { cdf: number; sf: number } {
  const y = tanhArg(z);
  return { cdf: 1 / (1 + Math.exp(-2 * y)), sf: 1 / (1 + Math.exp(2 * y)) };
}

/**
 * Absolute error bound of one approximate CDF value 0.5(1 + tanh y(z)) computed in unit roundoff u, when its
 * argument z carries an absolute error dz (already in units of z, including the input rounding):
 *
 * e_Φ = u·(C_T/2 + 1) + ½(1 − tanh² y)·(y′(z)·dz + 4u|y|), with C_T = 2 (an absolute tanh error of two u, which
 * covers torch's float32 tanh returning ±1 from |y| ≈ 8.66 and a tanh computed from exp) and the 1 for rounding
 * 1 + tanh (at most 2u, halved).
 */
function cdfAbsError(z: number, dz: number, u: number): number {
  const y = tanhArg(z);
  const dy = K0 * (1 + 3 * K1 * z * z) * dz + 4 * u * Math.abs(y);
  const th = Math.tanh(y);
  return 2 * u + 0.5 * (1 - th * th) * dy;
}

/** The inputs of one likelihood element, with optional absolute errors of the mean and log-scale (when they were computed). */
export interface DgllElement {
  x: number;
  mean: number;
  logScale: number;
  /** Absolute error of `mean` in the precision under consideration (0 when the mean is an exact input). */
  meanErr?: number;
  /** Absolute error of `logScale` (0 when exact). */
  logScaleErr?: number;
}

/** One side's (one precision's) forward error of the log-likelihood of one element. */
export interface DgllSide {
  /** The branch the reference code takes (decided on float32 x against ±float32(0.999)). */
  branch: 'left edge' | 'middle' | 'right edge';
  /** The bin probability of the approximate-CDF formula, evaluated accurately. */
  p: number;
  /** The absolute error bound of the computed bin probability. */
  pErr: number;
}

const EDGE = Math.fround(0.999);

/**
 * The bin probability and its absolute error bound, for one element computed in unit roundoff u: the
 * reference's `discretized_gaussian_log_likelihood` (improved-diffusion `losses.py`) with
 * z± = e^(−log σ)·(x − μ ± 1/255), P = Φ(z₊) − Φ(z₋) in the middle, Φ(z₊) at x < −0.999 and 1 − Φ(z₋) at x > 0.999.
 *
 * The error of z± is u·(s·(|x| + |μ| + 2/255) + 3|z±|) from rounding x − μ, the ±1/255, e^(−log σ) and the product,
 * plus s·meanErr + |z±|·logScaleErr from the inputs (s = e^(−log σ)).
 */
export function dgllSide(el: DgllElement, u: number): DgllSide {
  const s = Math.exp(-el.logScale);
  const c = el.x - el.mean;
  const zp = s * (c + 1 / 255);
  const zm = s * (c - 1 / 255);
  const dzOf = (z: number) => u * (s * (Math.abs(el.x) + Math.abs(el.mean) + 2 / 255) + 3 * Math.abs(z)) + s * (el.meanErr ?? 0) + Math.abs(z) * (el.logScaleErr ?? 0);
  const ep = cdfAbsError(zp, dzOf(zp), u);
  const em = cdfAbsError(zm, dzOf(zm), u);
  const P = cdfPair(zp);
  const M = cdfPair(zm);
  if (el.x < -EDGE) return { branch: 'left edge', p: P.cdf, pErr: ep };
  if (el.x > EDGE) return { branch: 'right edge', p: M.sf, pErr: em + u * M.sf };
  // Φ₊ − Φ₋ from the side where both are far from 1, so that p keeps its digits in float64.
  const p = zm >= 0 ? M.sf - P.sf : P.cdf - M.cdf;
  return { branch: 'middle', p, pErr: ep + em + u * Math.max(p, 0) };
}

/** The bound of one likelihood element (nats), or saturation. */
export interface DgllBound {
  /** |actual − expected| ≤ bound (nats) when not saturated. */
  bound: number;
  /** The float32 bin probability of either side may round to or below the clamp 1e−12: the values are not comparable. */
  saturated: boolean;
  /** Largest |Δ| possible when saturated: the distance between the sets of values each side may return. */
  range: number;
  p: number;
}

/**
 * The bound on |log P̂_impl − log P̂_ref| for one element (docs/numerics.md, "Bin probabilities"):
 * with e = pErr(u_ref) + pErr(u_impl), the relative error of the bin probability is r = e/P, condition number
 * (|Φ₊| + |Φ₋|)/(Φ₊ − Φ₋) in the middle branch, and
 *
 * bound = −log(1 − r) + (u_ref + u_impl)·|log P| + 2·u_ref   (the log's rounding, and a floor of 2 u_ref nats),
 *
 * saturated where P − e ≤ 1e−12 (the reference may have clamped: its value is then unrelated to P).
 */
export function dgllBound(el: DgllElement, ref: Precision, impl: Precision, opts: { implCdf?: 'tanh' | 'exact' } = {}): DgllBound {
  const uR = UNIT_ROUNDOFF[ref];
  const uI = UNIT_ROUNDOFF[impl];
  const r = dgllSide(el, uR);
  const i = dgllSide({ ...el, meanErr: 0, logScaleErr: 0 }, uI);
  // An implementation integrating the exact Φ differs from the tanh-approximate CDF by at most TANH_CDF_MAX_ERR
  // per CDF value: a modelling difference handled like an absolute rounding error of that size.
  const model = opts.implCdf === 'exact' ? (r.branch === 'middle' ? 2 : 1) * TANH_CDF_MAX_ERR : 0;
  const e = r.pErr + i.pErr + model;
  const p = r.p;
  const logP = Math.log(Math.max(p, LOG_CLAMP_P));
  // Saturated: the reference's value lies in [log 1e−12, log(P + e_ref)], the implementation's in
  // [log max(P − e_impl, 1e−12), log(P + e_impl)]; the range is the largest distance between the two sets.
  const eI = i.pErr + model;
  const lo = Math.log(Math.max(p - eI, LOG_CLAMP_P));
  const range = Math.max(Math.log(Math.max(p + eI, LOG_CLAMP_P)) - Math.log(LOG_CLAMP_P), Math.log(Math.max(p + r.pErr + eI, LOG_CLAMP_P)) - lo);
  if (!(p - e > LOG_CLAMP_P) || !(e < p)) return { bound: Infinity, saturated: true, range, p };
  const bound = -Math.log1p(-e / p) + (uR + uI) * Math.abs(logP) + 2 * uR;
  return { bound, saturated: false, range, p };
}

/**
 * Largest |0.5(1 + tanh(√(2/π)(z + 0.044715z³))) − Φ(z)| over all z: 1.8e−4 (1.79e−4 at |z| ≈ 2.59; measured on a grid of
 * step 1e−3 against math.erfc, rounded up; property `numeric.bounds.tanhCdfMaxErr`).
 */
export const TANH_CDF_MAX_ERR = 1.8e-4;

// ---------------------------------------------------------------------------------------------------------------
// The t = 0 decoder term (docs/numerics.md, "The decoder term")

/**
 * The bound on the t = 0 decoder term in bits, −(1/N)·Σᵢ log P̂ᵢ / ln 2 over the N elements of one example:
 * the mean of the element bounds, where a saturated element counts its whole range (the reference's value lies
 * anywhere in [log 1e−12, log(P + e)]), plus the float32 summation error N·u_ref·mean|log P| of the mean.
 */
export function decoderBitsBound(els: readonly DgllElement[], ref: Precision, impl: Precision, opts: { implCdf?: 'tanh' | 'exact' } = {}): { bound: number; saturated: number } {
  let sum = 0;
  let abs = 0;
  let saturated = 0;
  for (const el of els) {
    const b = dgllBound(el, ref, impl, opts);
    if (b.saturated) saturated++;
    sum += b.saturated ? b.range : b.bound;
    abs += Math.abs(Math.log(Math.max(b.p, LOG_CLAMP_P)));
  }
  const n = els.length;
  const summation = n * (UNIT_ROUNDOFF[ref] + UNIT_ROUNDOFF[impl]) * (abs / n);
  return { bound: (sum / n + summation) / Math.LN2, saturated };
}

// ---------------------------------------------------------------------------------------------------------------
// Schedule buffers (docs/numerics.md, "Cumulative products")

/**
 * Relative error bound of ᾱ_t (0-based t) computed from t + 1 betas in unit roundoff u, by a running product
 * ((t + 1) roundings of 1 − β and of the product: 2(t + 1)u) or as exp(Σ log(1 − β)) (the sum's absolute error
 * (t + 1)u·(1 + |log ᾱ_t|) becomes a relative error through exp): r_t = 2u·(t + 1)·(1 + |log ᾱ_t|) + u.
 */
export function alphaBarRelErr(t: number, alphaBar: number, u: number): number {
  if (t < 0) return 0; // ᾱ_{−1} = 1 exactly
  return 2 * u * (t + 1) * (1 + Math.abs(Math.log(alphaBar))) + u;
}

/**
 * Per-element absolute error bounds of one buffer computed in unit roundoff u from float64 betas, by first-order
 * propagation of r_t ({@link alphaBarRelErr}) through each formula (condition numbers: ᾱ/(1 − ᾱ) for 1 − ᾱ, ½ for a
 * square root, 1/(1 − ᾱ) for 1/ᾱ − 1, 1/|log y| for log y, plus one u per rounded operation):
 *
 * | buffer | relative error |
 * |---|---|
 * | β (stored in the working precision) | u |
 * | ᾱ_t, ᾱ_{t−1}, ᾱ_{t+1} | r_t, r_{t−1}, r_{t+1} |
 * | √ᾱ, 1/√ᾱ | r/2 + 2u |
 * | √(1 − ᾱ) | r₁/2 + u, with r₁ = r·ᾱ/(1 − ᾱ) + u |
 * | √(1/ᾱ − 1) | (r/(1 − ᾱ) + 2u)/2 + u |
 * | β(1 − ᾱ_{t−1})/(1 − ᾱ) | r₁′ + r₁ + 3u (r₁′ the same for ᾱ_{t−1}) |
 * | β√ᾱ_{t−1}/(1 − ᾱ) | r_{t−1}/2 + r₁ + 4u |
 * | (1 − ᾱ_{t−1})√α/(1 − ᾱ) | r₁′ + r₁ + 4u |
 * | log(1 − ᾱ), log of the clipped posterior variance | absolute: the relative error of the argument + u·|log| |
 *
 * @param name - one of the buffer names of `GaussianDiffusion` (`BUFFER_NAMES` of the conformance vocabulary)
 * @param buffers - the float64 buffers (at least `betas` and `alphas_cumprod`), as the reference recorded them
 * @returns the bounds, or undefined for a name this table does not know
 */
export function bufferErrors(name: string, buffers: { betas: ArrayLike<number>; alphas_cumprod: ArrayLike<number> }, u: number): Float64Array | undefined {
  const ab = buffers.alphas_cumprod;
  const T = ab.length;
  const a = (t: number) => (t < 0 ? 1 : t >= T ? 0 : ab[t]);
  const r = (t: number) => (t < 0 || t >= T ? 0 : alphaBarRelErr(t, ab[t], u));
  const r1 = (t: number) => (t < 0 ? 0 : (r(t) * a(t)) / (1 - a(t)) + u);
  const pv = (t: number) => (buffers.betas[t] * (1 - a(t - 1))) / (1 - a(t));
  const pvRel = (t: number) => r1(t - 1) + r1(t) + 3 * u;
  const out = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    let rel: number;
    let abs = 0;
    let v: number;
    switch (name) {
      case 'betas': (v = buffers.betas[t]), (rel = u); break;
      case 'alphas_cumprod': (v = a(t)), (rel = r(t)); break;
      case 'alphas_cumprod_prev': (v = a(t - 1)), (rel = r(t - 1)); break;
      case 'alphas_cumprod_next': (v = a(t + 1)), (rel = r(t + 1)); break;
      case 'sqrt_alphas_cumprod': (v = Math.sqrt(a(t))), (rel = r(t) / 2 + 2 * u); break;
      case 'sqrt_recip_alphas_cumprod': (v = 1 / Math.sqrt(a(t))), (rel = r(t) / 2 + 2 * u); break;
      case 'sqrt_one_minus_alphas_cumprod': (v = Math.sqrt(1 - a(t))), (rel = r1(t) / 2 + u); break;
      case 'sqrt_recipm1_alphas_cumprod': (v = Math.sqrt(1 / a(t) - 1)), (rel = (r(t) / (1 - a(t)) + 2 * u) / 2 + u); break;
      case 'log_one_minus_alphas_cumprod': (v = 0), (rel = 0), (abs = r1(t) + u * Math.abs(Math.log(1 - a(t)))); break;
      case 'posterior_variance': (v = pv(t)), (rel = pvRel(t)); break;
      case 'posterior_log_variance_clipped': {
        const s = t === 0 && T > 1 ? 1 : t; // improved's clip: the t = 0 entry takes posterior_variance[1]
        (v = 0), (rel = 0), (abs = pvRel(s) + u * Math.abs(Math.log(pv(s))));
        break;
      }
      case 'posterior_mean_coef1': (v = (buffers.betas[t] * Math.sqrt(a(t - 1))) / (1 - a(t))), (rel = r(t - 1) / 2 + r1(t) + 4 * u); break;
      case 'posterior_mean_coef2': (v = ((1 - a(t - 1)) * Math.sqrt(1 - buffers.betas[t])) / (1 - a(t))), (rel = r1(t - 1) + r1(t) + 4 * u); break;
      default: return undefined;
    }
    out[t] = rel * Math.abs(v) + abs;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Differences of products (docs/numerics.md, "Differences of large terms")

/**
 * Roundings per side of a·x − b·y with float64 coefficients cast to the working precision (a, b cast; two products;
 * one difference): |computed − exact| ≤ DIFF_ROUNDINGS·u·(|a·x| + |b·y|).
 */
export const DIFF_ROUNDINGS = 4;

/** |computed − exact| ≤ 4u·(|a·x| + |b·y|) for a·x − b·y, summed over the reference's and the implementation's precision. */
export function differenceBound(terms: number, ref: Precision, impl: Precision): number {
  return DIFF_ROUNDINGS * (UNIT_ROUNDOFF[ref] + UNIT_ROUNDOFF[impl]) * terms;
}
