/**
 * Test implementations that differ from the reference only in how they round, for the precision properties
 * (5.8): each is a correct DDPM in its declared precision and must pass the golden replay under the bounds of
 * `src/numeric/bounds.ts`.
 *
 * - `float64LogOps`: the float64 spec, with ᾱ computed as exp(Σ log(1 − β)) and the reference code's tanh-approximate
 *   likelihood evaluated in float64 (declares float64, tanh CDF).
 * - `exactPhiOps`: the float64 spec integrating the exact Φ (Ho et al. eq. 13) with the reference code's branch
 *   thresholds (x against ±float32(0.999)) and clamp (declares float64, exact CDF).
 * - `float32TanhOps`: the tanh-approximate likelihood with every operation rounded to float32 by `Math.fround`, whose
 *   tanh is the correctly rounded one (torch's float32 tanh saturates to ±1 earlier): a float32 implementation
 *   with other last bits than the reference (declares float32).
 */
import type { BufferName, DiffusionOps, Tensor } from '../../src/conformance/ops.ts';
import { createSpecOps } from '../../src/conformance/impl/spec.ts';
import { normalCdf } from '../../spec/gaussian/normal1d.ts';

const EDGE32 = Math.fround(0.999);

/** improved-diffusion's discretized_gaussian_log_likelihood for one element, each operation rounded by `r`, with the given tanh. */
export function tanhLogLikelihood(x: number, mean: number, logScale: number, r: (v: number) => number = (v) => v, tanh: (y: number) => number = Math.tanh): number {
  const cdf = (z: number) => r(0.5 * r(1 + r(tanh(r(r(Math.sqrt(2 / Math.PI)) * r(z + r(0.044715 * r(r(z * z) * z))))))));
  const c = r(x - mean);
  const s = r(Math.exp(-logScale));
  const plus = cdf(r(s * r(c + r(1 / 255))));
  const min = cdf(r(s * r(c - r(1 / 255))));
  const logc = (p: number) => r(Math.log(Math.max(p, r(1e-12))));
  if (x < -EDGE32) return logc(plus);
  if (x > EDGE32) return logc(r(1 - min));
  return logc(r(plus - min));
}

function mapTensor(ts: Tensor[], f: (...v: number[]) => number): Tensor {
  const [a] = ts;
  for (const t of ts) if (t.data.length !== a.data.length) throw new Error('discretized_gaussian_log_likelihood: x, means and log_scales must have the same shape');
  return { shape: [...a.shape], data: Float64Array.from(a.data, (_, i) => f(...ts.map((t) => t.data[i]))) };
}

/** The 13 buffers from betas with ᾱ_t = exp(Σ_{s ≤ t} log α_s), α = 1 − β (float64, as `np.exp(np.cumsum(np.log(alphas)))`). */
export function buffersThroughLogs(betas: Float64Array): Record<BufferName, Tensor> {
  const T = betas.length;
  let S = 0;
  const ab = Float64Array.from(betas, (b) => Math.exp((S += Math.log(1 - b))));
  const prev = Float64Array.from({ length: T }, (_, t) => (t === 0 ? 1 : ab[t - 1]));
  const next = Float64Array.from({ length: T }, (_, t) => (t === T - 1 ? 0 : ab[t + 1]));
  const pv = Float64Array.from(betas, (b, t) => (b * (1 - prev[t])) / (1 - ab[t]));
  const v = (f: (t: number) => number): Tensor => ({ shape: [T], data: Float64Array.from({ length: T }, (_, t) => f(t)) });
  return {
    betas: v((t) => betas[t]),
    alphas_cumprod: v((t) => ab[t]),
    alphas_cumprod_prev: v((t) => prev[t]),
    alphas_cumprod_next: v((t) => next[t]),
    sqrt_alphas_cumprod: v((t) => Math.sqrt(ab[t])),
    sqrt_one_minus_alphas_cumprod: v((t) => Math.sqrt(1 - ab[t])),
    log_one_minus_alphas_cumprod: v((t) => Math.log(1 - ab[t])),
    sqrt_recip_alphas_cumprod: v((t) => Math.sqrt(1 / ab[t])),
    sqrt_recipm1_alphas_cumprod: v((t) => Math.sqrt(1 / ab[t] - 1)),
    posterior_variance: v((t) => pv[t]),
    posterior_log_variance_clipped: v((t) => Math.log(t === 0 && T > 1 ? pv[1] : pv[t])),
    posterior_mean_coef1: v((t) => (betas[t] * Math.sqrt(prev[t])) / (1 - ab[t])),
    posterior_mean_coef2: v((t) => ((1 - prev[t]) * Math.sqrt(1 - betas[t])) / (1 - ab[t])),
  };
}

/** A float64 implementation: ᾱ through logs, the tanh-approximate likelihood in float64. */
export function float64LogOps(): DiffusionOps {
  const spec = createSpecOps({ logLikelihood: (x, m, s) => tanhLogLikelihood(x, m, s) });
  return {
    ...spec,
    name: 'float64, ᾱ = exp Σ log α, tanh CDF',
    precision: 'float64',
    cdf: 'tanh',
    async buffers(a) {
      await spec.buffers!(a); // the spec's argument checks (it refuses a β outside (0, 1])
      return buffersThroughLogs(a.betas.data);
    },
  };
}

/** The discretised likelihood with the exact Φ, the reference's float32 branch thresholds and its clamp (float64). */
export function exactPhiLogLikelihood(x: number, mean: number, logScale: number): number {
  const sd = Math.exp(logScale);
  const logc = (p: number) => Math.log(Math.max(p, 1e-12));
  if (x < -EDGE32) return logc(normalCdf(x + 1 / 255, mean, sd));
  if (x > EDGE32) return logc(normalCdf(-(x - 1 / 255), -mean, sd));
  // Φ₊ − Φ₋ from the side where both are far from 1.
  return logc(x - mean > 0 ? normalCdf(-(x - 1 / 255), -mean, sd) - normalCdf(-(x + 1 / 255), -mean, sd) : normalCdf(x + 1 / 255, mean, sd) - normalCdf(x - 1 / 255, mean, sd));
}

/** The float64 spec with the exact-Φ likelihood, declared as such. */
export function exactPhiOps(): DiffusionOps {
  return { ...createSpecOps({ logLikelihood: exactPhiLogLikelihood, cdf: 'exact' }), name: 'float64 spec, exact Φ', precision: 'float64' };
}

/** A float32 likelihood with the correctly rounded tanh (other last bits than torch's). */
export function float32TanhOps(): DiffusionOps {
  return {
    name: 'float32 emulation (Math.fround), correctly rounded tanh',
    precision: 'float32',
    async discretized_gaussian_log_likelihood(x, means, log_scales) {
      return { log_probs: mapTensor([x, means, log_scales], (xi, m, s) => tanhLogLikelihood(xi, m, s, Math.fround)) };
    },
  };
}
