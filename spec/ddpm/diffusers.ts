/**
 * # 3.9 diffusers' scheduler conventions
 *
 * huggingface/diffusers' `DDPMScheduler` and `DDIMScheduler` run the same maths as Ho et al. and Song et al. (3.1,
 * 3.4, 3.7) under conventions of their own. This module states them as named options, so that a diffusers-based
 * implementation can be checked step for step.
 *
 * **Index base.** diffusers' timestep is 0-based, `t_code ∈ {0, …, T−1}`, and `alphas_cumprod[t_code]` is the
 * paper's ᾱ_{t_code+1}; "the previous timestep" of the last step is −1, where ᾱ is 1 (DDPM) or
 * `final_alpha_cumprod` (DDIM). Every function here takes diffusers' 0-based t.
 *
 * **Configuration.** {@link DiffusersConfig} uses diffusers' own option names (`beta_schedule`,
 * `timestep_spacing`, …), so a scheduler's `config` dict parses as is; one option is ours: `buffers`.
 *
 * **Float32 buffers.** diffusers holds β, α, ᾱ and every scalar it derives from them in float32 torch tensors.
 * `buffers: 'float32'` rounds after every scalar operation (`Math.fround`), as torch does; the samples stay in
 * float64. At t = 1 (paper t = 2), 1 − ᾱ cancels in float32, which moves diffusers' own DDPM test loop by 0.02.
 *
 * @module
 */
import { z } from 'zod';
import { checkSameLength, checkScalar, type Vec } from './internal.ts';

/** diffusers' `beta_schedule` values (DDIM has no `sigmoid`). @see property `ddpm.diffusers.buffersEqUpstream` */
export const DiffusersBetaSchedule = z.enum(['linear', 'scaled_linear', 'squaredcos_cap_v2', 'sigmoid']);
/** @see property `ddpm.diffusers.buffersEqUpstream` */
export type DiffusersBetaSchedule = z.infer<typeof DiffusersBetaSchedule>;

/** diffusers' `timestep_spacing`. @see property `ddpm.diffusers.timestepsEqUpstream` */
export const TimestepSpacing = z.enum(['leading', 'trailing', 'linspace']);
/** @see property `ddpm.diffusers.timestepsEqUpstream` */
export type TimestepSpacing = z.infer<typeof TimestepSpacing>;

/** diffusers' DDPM `variance_type`. @see property `ddpm.diffusers.varianceEqUpstream` */
export const DiffusersVarianceType = z.enum(['fixed_small', 'fixed_small_log', 'fixed_large', 'fixed_large_log', 'learned', 'learned_range']);
/** @see property `ddpm.diffusers.varianceEqUpstream` */
export type DiffusersVarianceType = z.infer<typeof DiffusersVarianceType>;

/** diffusers' `prediction_type`: ε, x₀ (`sample`) or v. @see property `ddpm.diffusers.loopsEqUpstream` */
export const DiffusersPredictionType = z.enum(['epsilon', 'sample', 'v_prediction']);
/** @see property `ddpm.diffusers.loopsEqUpstream` */
export type DiffusersPredictionType = z.infer<typeof DiffusersPredictionType>;

/**
 * A DDPM or DDIM scheduler configuration, in diffusers' names and with its defaults (DDIM ignores
 * `variance_type`; DDPM ignores `set_alpha_to_one`). `buffers` is ours: `float64` (exact maths, the default) or
 * `float32` (diffusers' rounding).
 *
 * @see property `ddpm.diffusers.configParsesUpstream`
 */
export const DiffusersConfig = z
  .object({
    num_train_timesteps: z.number().int().min(1).max(1_000_000).default(1000),
    beta_start: z.number().positive().default(0.0001),
    beta_end: z.number().positive().default(0.02),
    beta_schedule: DiffusersBetaSchedule.default('linear'),
    trained_betas: z.array(z.number().gt(0).lte(1)).min(1).nullish(),
    variance_type: DiffusersVarianceType.default('fixed_small'),
    clip_sample: z.boolean().default(true),
    clip_sample_range: z.number().positive().default(1),
    prediction_type: DiffusersPredictionType.default('epsilon'),
    thresholding: z.boolean().default(false),
    dynamic_thresholding_ratio: z.number().gt(0).lte(1).default(0.995),
    sample_max_value: z.number().positive().default(1),
    timestep_spacing: TimestepSpacing.default('leading'),
    steps_offset: z.number().int().min(0).default(0),
    rescale_betas_zero_snr: z.boolean().default(false),
    set_alpha_to_one: z.boolean().default(true),
    buffers: z.enum(['float64', 'float32']).default('float64'),
  })
  .strip();
/** @see property `ddpm.diffusers.configParsesUpstream` */
export type DiffusersConfig = z.infer<typeof DiffusersConfig>;
/** A configuration as given (every field optional). @see property `ddpm.diffusers.configParsesUpstream` */
export type DiffusersConfigInput = z.input<typeof DiffusersConfig>;

/**
 * Parse a configuration (diffusers' defaults for what is missing), naming the field on error.
 *
 * @see property `ddpm.diffusers.configParsesUpstream`
 */
export function diffusersConfig(input: DiffusersConfigInput = {}): DiffusersConfig {
  const p = DiffusersConfig.safeParse(input);
  if (!p.success) {
    const i = p.error.issues[0];
    throw new RangeError(`diffusersConfig: ${i.path.join('.') || 'config'} ${i.message}`);
  }
  return p.data;
}

type Round = (x: number) => number;
const exact: Round = (x) => x;
/** The rounding of the configuration's buffers: `Math.fround` after every operation, or none. */
function rounding(c: DiffusersConfig): Round {
  return c.buffers === 'float32' ? Math.fround : exact;
}

/** torch.linspace's formula (the first half counts up from `start`, the second half down from `end`). */
function torchLinspace(start: number, end: number, n: number, r: Round): number[] {
  if (n === 1) return [r(start)];
  const [a, b] = [r(start), r(end)];
  const step = r(r(b - a) / (n - 1));
  return Array.from({ length: n }, (_, i) => (i < n >> 1 ? r(a + r(step * i)) : r(b - r(step * (n - i - 1)))));
}

/**
 * β of a configuration, before zero-SNR rescaling: `trained_betas` if given, else
 *
 * $$\text{linear: } \beta_i = \text{lin}(\beta_s, \beta_e)_i,\quad
 *   \text{scaled\_linear: } \beta_i = \text{lin}(\sqrt{\beta_s}, \sqrt{\beta_e})_i^2,\quad
 *   \text{sigmoid: } \beta_i = \sigma(\text{lin}(-6, 6)_i)(\beta_e-\beta_s)+\beta_s$$
 *
 * and `squaredcos_cap_v2` is Nichol & Dhariwal's cosine schedule with s = 0.008, β_max = 0.999 (as 3.1's
 * `cosineBetas`, computed in float64 and then stored). 0-based storage: `betas[i] = β_{i+1}`.
 *
 * @see property `ddpm.diffusers.buffersEqUpstream`
 */
export function diffusersBaseBetas(c: DiffusersConfig): number[] {
  const r = rounding(c);
  const T = c.num_train_timesteps;
  if (c.trained_betas) return c.trained_betas.map(r);
  switch (c.beta_schedule) {
    case 'linear':
      return torchLinspace(c.beta_start, c.beta_end, T, r);
    case 'scaled_linear':
      return torchLinspace(Math.sqrt(c.beta_start), Math.sqrt(c.beta_end), T, r).map((x) => r(x * x));
    case 'squaredcos_cap_v2': {
      const f = (u: number): number => Math.cos(((u + 0.008) / 1.008) * Math.PI / 2) ** 2;
      return Array.from({ length: T }, (_, i) => r(Math.min(1 - f((i + 1) / T) / f(i / T), 0.999)));
    }
    case 'sigmoid':
      return torchLinspace(-6, 6, T, r).map((x) => r(r(r(1 / r(1 + r(Math.exp(-x)))) * r(c.beta_end - c.beta_start)) + r(c.beta_start)));
  }
}

/**
 * Zero-terminal-SNR rescaling (Lin et al. 2024, Algorithm 1): shift and scale √ᾱ so that √ᾱ_T = 0 and √ᾱ_1 is kept,
 * then recover β.
 *
 * $$\sqrt{\bar\alpha_t}' = \big(\sqrt{\bar\alpha_t}-\sqrt{\bar\alpha_T}\big)\frac{\sqrt{\bar\alpha_1}}{\sqrt{\bar\alpha_1}-\sqrt{\bar\alpha_T}},\qquad
 *   \beta_t' = 1-\frac{\bar\alpha_t'}{\bar\alpha_{t-1}'}$$
 *
 * β'_T = 1, so ᾱ'_T = 0 and a step at t_code = T − 1 divides by zero for ε-prediction (use v).
 *
 * @param round - rounding after each operation (`Math.fround` for float32 buffers)
 * @see property `ddpm.diffusers.zeroSnrEndpoints`
 */
export function rescaleZeroTerminalSnr(betas: readonly number[], round: Round = exact): number[] {
  const r = round;
  let ab = 1; // torch's CPU cumprod accumulates in double and rounds each output
  const s = betas.map((b) => r(Math.sqrt(r((ab *= r(1 - b))))));
  const [s0, sT] = [s[0], s[s.length - 1]];
  const scale = r(s0 / r(s0 - sT));
  const abNew = s.map((v) => r(r(v - sT) * scale) ** 2).map(r);
  return abNew.map((a, i) => r(1 - (i === 0 ? a : r(a / abNew[i - 1]))));
}

/**
 * A scheduler's buffers in diffusers' 0-based storage: `betas[i] = β_{i+1}`, `alphasCumprod[i] = ᾱ_{i+1}`, and
 * DDIM's `finalAlphaCumprod` (1 with `set_alpha_to_one`, else ᾱ_1), the ᾱ of "timestep −1".
 *
 * @see property `ddpm.diffusers.buffersEqUpstream`
 */
export interface DiffusersBuffers {
  readonly config: DiffusersConfig;
  readonly betas: readonly number[];
  readonly alphas: readonly number[];
  readonly alphasCumprod: readonly number[];
  readonly finalAlphaCumprod: number;
}

/**
 * The buffers of a configuration: β (rescaled to zero terminal SNR when asked), α = 1 − β, ᾱ = cumprod(α).
 *
 * $$\alpha_t = 1-\beta_t,\qquad \bar\alpha_t = \prod_{s\le t}\alpha_s$$
 *
 * @see property `ddpm.diffusers.buffersEqUpstream`
 * @see property `ddpm.diffusers.zeroSnrEndpoints`
 */
export function diffusersBuffers(input: DiffusersConfigInput | DiffusersConfig = {}): DiffusersBuffers {
  const c = diffusersConfig(input);
  const r = rounding(c);
  let betas = diffusersBaseBetas(c);
  if (c.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas, r);
  const alphas = betas.map((b) => r(1 - b));
  let ab = 1; // torch's CPU cumprod accumulates in double and rounds each output
  const alphasCumprod = alphas.map((a) => r((ab *= a)));
  return Object.freeze({ config: c, betas, alphas, alphasCumprod, finalAlphaCumprod: c.set_alpha_to_one ? 1 : alphasCumprod[0] });
}

/** NumPy's round (half to even). */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
}

/**
 * `set_timesteps(n)`: the n inference timesteps (0-based, decreasing) of a spacing, for 1 ≤ n ≤ T.
 *
 * $$\text{leading: } t_i = (n-1-i)\lfloor T/n\rfloor + \text{offset},\quad
 *   \text{trailing: } t_i = \operatorname{round}(T - iT/n) - 1,\quad
 *   \text{linspace: } t_i = \operatorname{round}\big((n-1-i)\tfrac{T-1}{n-1}\big)$$
 *
 * with NumPy's rounding (half to even) and operation order. `steps_offset` applies to `leading` only; with an
 * offset the first timestep can reach T (which the step then cannot index).
 *
 * @see property `ddpm.diffusers.timestepsEqUpstream`
 * @see property `ddpm.diffusers.timestepsEveryN`
 */
export function diffusersTimesteps(input: DiffusersConfigInput | DiffusersConfig, n: number): number[] {
  const c = diffusersConfig(input);
  const T = c.num_train_timesteps;
  if (!Number.isInteger(n) || n < 1 || n > T) throw new RangeError(`diffusersTimesteps: n must be an integer in 1…${T} (num_train_timesteps), got ${String(n)}`);
  switch (c.timestep_spacing) {
    case 'leading': {
      const ratio = Math.floor(T / n);
      return Array.from({ length: n }, (_, i) => (n - 1 - i) * ratio + c.steps_offset);
    }
    case 'trailing': {
      // np.arange(T, 0, −T/n): length ⌈T/(T/n)⌉, entries start + i·(first difference), as NumPy fills them.
      const step = -T / n;
      const len = Math.ceil(-T / step);
      const delta = T + step - T;
      return Array.from({ length: len }, (_, i) => roundHalfEven(T + i * delta) - 1);
    }
    case 'linspace': {
      const step = n === 1 ? 0 : (T - 1) / (n - 1);
      const up = Array.from({ length: n }, (_, i) => (n > 1 && i === n - 1 ? T - 1 : i * step));
      return up.map(roundHalfEven).reverse();
    }
  }
}

/**
 * DDPM's `previous_timestep`: the next entry of the inference timesteps, −1 after the last one; t − 1 when no
 * inference timesteps are set (the full chain).
 *
 * @param timesteps - the inference timesteps, or undefined for the full chain
 * @see property `ddpm.diffusers.timestepsEqUpstream`
 */
export function diffusersPreviousTimestep(t: number, timesteps?: readonly number[]): number {
  if (!timesteps) return t - 1;
  const i = timesteps.indexOf(t);
  if (i < 0) throw new RangeError(`diffusersPreviousTimestep: t = ${t} is not one of the inference timesteps`);
  return i === timesteps.length - 1 ? -1 : timesteps[i + 1];
}

/**
 * DDIM's previous timestep: t − ⌊T/n⌋ whatever the spacing (so `trailing` and `linspace` can jump by other
 * amounts than their own spacing). Negative means the final ᾱ.
 *
 * @see property `ddpm.diffusers.timestepsEqUpstream`
 */
export function diffusersDdimPreviousTimestep(c: DiffusersConfig, t: number, n: number): number {
  return t - Math.floor(c.num_train_timesteps / n);
}

function alphaBarAt(b: DiffusersBuffers, t: number, fallback: number): number {
  if (!Number.isInteger(t) || t >= b.alphasCumprod.length) {
    throw new RangeError(`diffusers: timestep must be an integer in 0…${b.alphasCumprod.length - 1} (0-based), got ${String(t)}`);
  }
  return t >= 0 ? b.alphasCumprod[t] : fallback;
}

/**
 * DDPM's `_get_variance(t)`: with ᾱ' the ᾱ of the previous timestep (1 after the last),
 *
 * $$\beta_t' = 1-\frac{\bar\alpha_t}{\bar\alpha'},\qquad \tilde\beta_t = \max\Big(\frac{1-\bar\alpha'}{1-\bar\alpha_t}\beta'_t,\ 10^{-20}\Big)$$
 *
 * `fixed_small` is β̃, `fixed_small_log` is the standard deviation √β̃ (through exp ½ log), `fixed_large` is β'
 * (so β_1 at t = 0, where improved-diffusion uses β̃_2), `fixed_large_log` is log β', `learned` returns the
 * prediction, `learned_range` interpolates log β̃ and log β' with f = (v+1)/2. Unlike improved-diffusion, β̃ is
 * clamped at 10⁻²⁰ (so log β̃_1 = −46 at t = 0, not log β̃_2).
 *
 * @param predicted - the model's variance output (learned types), one vector
 * @see property `ddpm.diffusers.varianceEqUpstream`
 * @see property `ddpm.diffusers.varianceAtZero`
 */
export function diffusersDdpmVariance(b: DiffusersBuffers, t: number, prevT: number, type: DiffusersVarianceType, predicted?: Vec): number[] {
  const r = rounding(b.config);
  const ab = alphaBarAt(b, t, 1);
  const abPrev = alphaBarAt(b, prevT, 1);
  const betaT = r(1 - r(ab / abPrev));
  const small = Math.max(r(r(r(1 - abPrev) / r(1 - ab)) * betaT), 1e-20);
  const need = (): Vec => {
    if (!predicted) throw new RangeError(`diffusersDdpmVariance: variance_type '${type}' needs the predicted variance`);
    return predicted;
  };
  switch (type) {
    case 'fixed_small':
      return [small];
    case 'fixed_small_log':
      return [r(Math.exp(r(0.5 * r(Math.log(small)))))];
    case 'fixed_large':
      return [betaT];
    case 'fixed_large_log':
      return [r(Math.log(betaT))];
    case 'learned':
      return Array.from(need());
    case 'learned_range': {
      const [lo, hi] = [r(Math.log(small)), r(Math.log(betaT))];
      return Array.from(need(), (v) => {
        const f = (v + 1) / 2;
        return f * hi + (1 - f) * lo;
      });
    }
  }
}

/**
 * torch.quantile's linear interpolation of the q-quantile of `x` (q ∈ (0, 1]).
 *
 * @see property `ddpm.diffusers.thresholdEqClipWhenSmall`
 */
export function quantileLinear(x: Vec, q: number): number {
  const s = Float64Array.from(x).sort();
  const pos = q * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, s.length - 1);
  const w = pos - lo;
  return w < 0.5 ? s[lo] + w * (s[hi] - s[lo]) : s[hi] - (s[hi] - s[lo]) * (1 - w);
}

/**
 * Dynamic thresholding (Saharia et al. 2022) of one example's x̂_0 (all its channels and pixels):
 *
 * $$s = \operatorname{clamp}\big(\text{quantile}_p(|\hat x_0|),\ 1,\ s_{\max}\big),\qquad \hat x_0 \leftarrow \operatorname{clamp}(\hat x_0, -s, s)/s$$
 *
 * When the quantile is ≤ 1 this is clipping to [−1, 1].
 *
 * @param ratio - p, `dynamic_thresholding_ratio`
 * @param maxValue - s_max, `sample_max_value`
 * @see property `ddpm.diffusers.thresholdEqClipWhenSmall`
 */
export function dynamicThreshold(x0: Vec, ratio: number, maxValue: number): number[] {
  checkScalar('dynamicThreshold', 'ratio', ratio, { lo: 0, hi: 1, loOpen: true });
  const s = Math.min(Math.max(quantileLinear(Array.from(x0, Math.abs), ratio), 1), maxValue);
  return Array.from(x0, (v) => Math.min(Math.max(v, -s), s) / s);
}

/** x̂_0 after diffusers' thresholding or clipping (thresholding wins when both are on). */
function limitX0(c: DiffusersConfig, x0: number[]): number[] {
  if (c.thresholding) return dynamicThreshold(x0, c.dynamic_thresholding_ratio, c.sample_max_value);
  if (c.clip_sample) return x0.map((v) => Math.min(Math.max(v, -c.clip_sample_range), c.clip_sample_range));
  return x0;
}

/** x̂_0 and ε̂ from a model output (ε, x₀ or v) at ᾱ_t, with √ᾱ and √(1 − ᾱ) rounded as buffers. */
function predict(c: DiffusersConfig, ab: number, x: Vec, out: Vec): { x0: number[]; eps: number[] } {
  const r = rounding(c);
  const [sa, sb] = [r(Math.sqrt(ab)), r(Math.sqrt(r(1 - ab)))];
  const n = x.length;
  const x0 = new Array<number>(n);
  const eps = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    if (c.prediction_type === 'epsilon') {
      x0[i] = (x[i] - sb * out[i]) / sa;
      eps[i] = out[i];
    } else if (c.prediction_type === 'sample') {
      x0[i] = out[i];
      eps[i] = (x[i] - sa * out[i]) / sb;
    } else {
      x0[i] = sa * x[i] - sb * out[i];
      eps[i] = sa * out[i] + sb * x[i];
    }
  }
  return { x0, eps };
}

/**
 * One step's output: `prevSample` (x at the previous timestep) and `predOriginalSample` (x̂_0 after
 * thresholding or clipping), as diffusers' `SchedulerOutput`.
 *
 * @see property `ddpm.diffusers.loopsEqUpstream`
 */
export interface DiffusersStep {
  prevSample: number[];
  predOriginalSample: number[];
}

/**
 * `DDPMScheduler.step` on one example: x̂_0 from the prediction, thresholded or clipped, the posterior mean
 * between t and the previous timestep t' (ᾱ' = 1 after the last), plus noise for t > 0:
 *
 * $$x_{t'} = \frac{\sqrt{\bar\alpha'}\,\beta'_t}{1-\bar\alpha_t}\hat x_0 + \frac{\sqrt{\alpha'_t}(1-\bar\alpha')}{1-\bar\alpha_t}x_t + \mathbb 1[t>0]\,\sigma z$$
 *
 * σ is √variance, except `fixed_small_log` (the variance already is σ), `learned_range` (exp ½ log σ²) and
 * `fixed_large_log`, whose σ = √(log β') is NaN: a defect of diffusers, reproduced.
 *
 * @param t - diffusers' 0-based timestep; `prevT` its previous timestep ({@link diffusersPreviousTimestep})
 * @param modelOutput - the model's prediction (its first half for learned variance types)
 * @param z - standard-normal noise (ignored at t = 0)
 * @param predictedVariance - the second half of the model output, for `learned` / `learned_range`
 * @see property `ddpm.diffusers.loopsEqUpstream`
 * @see property `ddpm.diffusers.ddpmStepEqAncestral`
 */
export function diffusersDdpmStep(b: DiffusersBuffers, t: number, prevT: number, sample: Vec, modelOutput: Vec, z: Vec, predictedVariance?: Vec): DiffusersStep {
  checkSameLength('diffusersDdpmStep', { sample, modelOutput, z });
  const c = b.config;
  const r = rounding(c);
  const ab = alphaBarAt(b, t, 1);
  const abPrev = alphaBarAt(b, prevT, 1);
  const [bp, bpPrev] = [r(1 - ab), r(1 - abPrev)];
  const alphaT = r(ab / abPrev);
  const betaT = r(1 - alphaT);
  const x0 = limitX0(c, predict(c, ab, sample, modelOutput).x0);
  const c0 = r(r(r(Math.sqrt(abPrev)) * betaT) / bp);
  const cx = r(r(r(Math.sqrt(alphaT)) * bpPrev) / bp);
  const prevSample = x0.map((x0i, i) => c0 * x0i + cx * sample[i]);
  if (t > 0) {
    const type = c.variance_type;
    const v = diffusersDdpmVariance(b, t, prevT, type, predictedVariance);
    const sd = (i: number): number => {
      const vi = v.length === 1 ? v[0] : v[i];
      return type === 'fixed_small_log' ? vi : type === 'learned_range' ? Math.exp(0.5 * vi) : Math.sqrt(vi);
    };
    for (let i = 0; i < prevSample.length; i++) prevSample[i] += sd(i) * z[i];
  }
  return { prevSample, predOriginalSample: x0 };
}

/**
 * `DDIMScheduler.step` on one example, from t to t' = t − ⌊T/n⌋ (ᾱ' = `finalAlphaCumprod` when t' < 0):
 *
 * $$\sigma = \eta\sqrt{\frac{1-\bar\alpha'}{1-\bar\alpha_t}\Big(1-\frac{\bar\alpha_t}{\bar\alpha'}\Big)},\qquad
 *   x_{t'} = \sqrt{\bar\alpha'}\,\hat x_0 + \sqrt{1-\bar\alpha'-\sigma^2}\,\hat\varepsilon + \mathbb 1[\eta>0]\,\sigma z$$
 *
 * ε̂ is the model's ε (or derived from the unclipped prediction) unless `useClippedModelOutput`, which re-derives it
 * from the clipped x̂_0: ε̂ = (x_t − √ᾱ_t x̂_0)/√(1 − ᾱ_t).
 *
 * @param t - diffusers' 0-based timestep; `prevT` = {@link diffusersDdimPreviousTimestep}
 * @see property `ddpm.diffusers.loopsEqUpstream`
 * @see property `ddpm.diffusers.ddimStepEqSpec`
 */
export function diffusersDdimStep(
  b: DiffusersBuffers,
  t: number,
  prevT: number,
  sample: Vec,
  modelOutput: Vec,
  eta: number,
  z: Vec,
  useClippedModelOutput = false,
): DiffusersStep {
  checkSameLength('diffusersDdimStep', { sample, modelOutput, z });
  checkScalar('diffusersDdimStep', 'eta', eta, { lo: 0 });
  const c = b.config;
  const r = rounding(c);
  const ab = alphaBarAt(b, t, b.finalAlphaCumprod);
  const abPrev = alphaBarAt(b, prevT, b.finalAlphaCumprod);
  const bp = r(1 - ab);
  const p = predict(c, ab, sample, modelOutput);
  const x0 = limitX0(c, p.x0);
  const variance = r(r(r(1 - abPrev) / bp) * r(1 - r(ab / abPrev)));
  const sd = r(eta * r(Math.sqrt(variance)));
  const [sa, sb] = [r(Math.sqrt(ab)), r(Math.sqrt(bp))];
  const eps = useClippedModelOutput ? x0.map((x0i, i) => (sample[i] - sa * x0i) / sb) : p.eps;
  const dir = r(Math.sqrt(r(r(1 - abPrev) - r(sd * sd))));
  const sPrev = r(Math.sqrt(abPrev));
  const prevSample = x0.map((x0i, i) => sPrev * x0i + dir * eps[i] + (eta > 0 ? sd * z[i] : 0));
  return { prevSample, predOriginalSample: x0 };
}
