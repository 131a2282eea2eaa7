/**
 * # 3.1 Noise schedules
 *
 * A schedule is the sequence of forward-process variances β_1, …, β_T. Everything else is derived from it:
 *
 * $$\alpha_t = 1-\beta_t,\qquad \bar\alpha_t = \prod_{s=1}^{t}\alpha_s,\qquad \bar\alpha_0 = 1,\qquad
 *   \mathrm{SNR}(t) = \frac{\bar\alpha_t}{1-\bar\alpha_t}$$
 *
 * **Index convention (used by the whole of `spec/ddpm`).** Timesteps are the paper's: t ∈ {1, …, T}, 1-based,
 * with ᾱ_0 = 1 (x_0 is the data). The public reference code (Ho's `diffusion_utils_2.py`, improved-diffusion,
 * pesser's port) stores buffers as arrays of length T indexed by a **0-based** `t_code ∈ {0, …, T−1}`, and its
 * `t_code` is our `t = t_code + 1`: `betas[t_code] = β_{t_code+1}`, `alphas_cumprod[t_code] = ᾱ_{t_code+1}`,
 * `alphas_cumprod_prev[t_code] = ᾱ_{t_code}` (so `alphas_cumprod_prev[0] = ᾱ_0 = 1`). The accessors below take
 * the paper's t, so 1-based maths never meets 0-based storage; only `src/conformance/impl/spec.ts` translates.
 *
 * @module
 */
import { z } from 'zod';
import { checkTimestep } from './internal.ts';

/**
 * A user-given β schedule: β_1 … β_T as an array (`betas[i] = β_{i+1}`), every entry finite with 0 < β ≤ 1,
 * length T ≥ 1. β = 1 is allowed only as the last entry: it makes ᾱ_T = 0, so q(x_T | x_0) is exactly
 * N(0, I), and it makes 1/ᾱ_T, SNR⁻¹(T) and x̂_0 at t = T infinite. Such a schedule is flagged
 * (`Schedule.lastBetaIsOne`). A 1 earlier would make ᾱ zero for several steps (nothing of x_0 left, ᾱ no
 * longer strictly decreasing) and is rejected.
 *
 * @see property `ddpm.schedule.userArrayValidated`
 */
export const Betas = z
  .array(
    z
      .number({ error: 'must be a finite number with 0 < β ≤ 1' })
      .gt(0, { error: 'must be > 0 (valid range 0 < β ≤ 1)' })
      .lte(1, { error: 'must be ≤ 1 (valid range 0 < β ≤ 1)' }),
  )
  .min(1, { error: 'must have at least one entry (T ≥ 1)' })
  .superRefine((b, ctx) => {
    for (let i = 0; i < b.length - 1; i++) {
      if (b[i] === 1) {
        ctx.addIssue({
          code: 'custom',
          path: [i],
          message: `is 1 before the last step (t = ${i + 1} < T = ${b.length}); β = 1 is allowed only at t = T`,
        });
      }
    }
  });
/** @see property `ddpm.schedule.userArrayValidated` */
export type Betas = z.infer<typeof Betas>;

/**
 * A validated schedule with accessors in the paper's 1-based convention. Build one with {@link makeSchedule}
 * or {@link namedSchedule}.
 *
 * @see property `ddpm.schedule.alphaBarDecreasing`
 * @see property `ddpm.schedule.snrDecreasing`
 */
export interface Schedule {
  /** A short description (`linear(T=1000, 1e-4→0.02)`, `user array`). */
  readonly name: string;
  /** Number of diffusion steps. */
  readonly T: number;
  /** A copy of β_1 … β_T, 0-based storage: `betas[i] = β_{i+1}`. */
  readonly betas: readonly number[];
  /** True when β_T = 1: then ᾱ_T = 0 and SNR(T) = 0; quantities that divide by ᾱ_T are infinite at t = T. */
  readonly lastBetaIsOne: boolean;
  /** β_t, t ∈ 1…T. */
  beta(t: number): number;
  /** α_t = 1 − β_t, t ∈ 1…T. */
  alpha(t: number): number;
  /** ᾱ_t = ∏_{s≤t} α_s, t ∈ 0…T (ᾱ_0 = 1), as the running product in order s = 1, 2, … (as the reference code). */
  alphaBar(t: number): number;
  /** log ᾱ_t = Σ_{s≤t} log1p(−β_s), t ∈ 0…T (−∞ at t = T when β_T = 1). */
  logAlphaBar(t: number): number;
  /** 1 − ᾱ_t = −expm1(log ᾱ_t), t ∈ 0…T: accurate where ᾱ_t is close to 1 (small t). */
  oneMinusAlphaBar(t: number): number;
  /** SNR(t) = ᾱ_t / (1 − ᾱ_t), t ∈ 0…T (SNR(0) = +∞; SNR(T) = 0 when β_T = 1). */
  snr(t: number): number;
  /** log SNR(t) = log ᾱ_t − log(1 − ᾱ_t), t ∈ 0…T. */
  logSnr(t: number): number;
}

function formatIssues(fn: string, arg: string, error: z.ZodError, input: unknown): string {
  const first = error.issues[0];
  const where = first.path.length > 0 ? `${arg}${first.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('')}` : arg;
  let value: unknown = input;
  for (const k of first.path) value = value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[k as PropertyKey] : undefined;
  const got = first.path.length > 0 ? `, got ${describeInput(value)}` : '';
  return `${fn}: ${where} ${first.message}${got}`;
}

function describeInput(v: unknown): string {
  return typeof v === 'number' ? String(v) : v === undefined ? 'undefined' : JSON.stringify(v);
}

/**
 * Validate a β array and derive α, ᾱ, 1 − ᾱ and SNR.
 *
 * $$\bar\alpha_t = \prod_{s=1}^{t}(1-\beta_s),\qquad 1-\bar\alpha_t = -\operatorname{expm1}\Big(\sum_{s=1}^{t}\operatorname{log1p}(-\beta_s)\Big)$$
 *
 * ᾱ_t is the running product in the reference code's order (so it reproduces `alphas_cumprod` bit for bit);
 * 1 − ᾱ_t uses the log-sum so that it keeps full relative precision at small t, where 1 − ᾱ_t ≈ β_1 is tiny.
 *
 * @param betas - β_1 … β_T (`betas[i] = β_{i+1}`), validated by {@link Betas}
 * @param name - a description for messages
 * @throws RangeError naming the offending entry and the valid range 0 < β ≤ 1
 * @see property `ddpm.schedule.userArrayValidated`
 * @see property `ddpm.schedule.oneMinusAlphaBarStable`
 * @see property `ddpm.schedule.alphaBarDecreasing`
 */
export function makeSchedule(betas: readonly number[], name = 'user array'): Schedule {
  const parsed = Betas.safeParse(Array.isArray(betas) ? [...betas] : betas);
  if (!parsed.success) throw new RangeError(formatIssues(`makeSchedule(${name})`, 'betas', parsed.error, betas));
  const b = parsed.data;
  const T = b.length;
  const alphaBar = new Float64Array(T + 1);
  const logAlphaBar = new Float64Array(T + 1);
  alphaBar[0] = 1;
  logAlphaBar[0] = 0;
  for (let t = 1; t <= T; t++) {
    alphaBar[t] = alphaBar[t - 1] * (1 - b[t - 1]);
    logAlphaBar[t] = logAlphaBar[t - 1] + Math.log1p(-b[t - 1]);
  }
  const frozen = Object.freeze([...b]);
  // +0 at t = 0 (−expm1(0) would be −0, and SNR(0) = 1/−0 = −∞).
  const oneMinus = (t: number): number => (t === 0 ? 0 : -Math.expm1(logAlphaBar[t]));
  // Function names for messages, built once (the accessors run inside sampling loops).
  const fn = Object.fromEntries(['beta', 'alpha', 'alphaBar', 'logAlphaBar', 'oneMinusAlphaBar', 'snr', 'logSnr'].map((m) => [m, `${name}.${m}`]));
  const s: Schedule = {
    name,
    T,
    betas: frozen,
    lastBetaIsOne: b[T - 1] === 1,
    beta(t) {
      checkTimestep(fn.beta, t, 1, T);
      return b[t - 1];
    },
    alpha(t) {
      checkTimestep(fn.alpha, t, 1, T);
      return 1 - b[t - 1];
    },
    alphaBar(t) {
      checkTimestep(fn.alphaBar, t, 0, T);
      return alphaBar[t];
    },
    logAlphaBar(t) {
      checkTimestep(fn.logAlphaBar, t, 0, T);
      return logAlphaBar[t];
    },
    oneMinusAlphaBar(t) {
      checkTimestep(fn.oneMinusAlphaBar, t, 0, T);
      return oneMinus(t);
    },
    snr(t) {
      checkTimestep(fn.snr, t, 0, T);
      return alphaBar[t] / oneMinus(t);
    },
    logSnr(t) {
      checkTimestep(fn.logSnr, t, 0, T);
      return logAlphaBar[t] - Math.log(oneMinus(t));
    },
  };
  return Object.freeze(s);
}

function checkT(fn: string, T: number): void {
  if (!Number.isInteger(T) || T < 1 || T > 1_000_000) {
    throw new RangeError(`${fn}: T must be an integer in 1…1000000, got ${String(T)}`);
  }
}

function checkBetaArg(fn: string, name: string, v: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || !(v > 0) || !(v <= 1)) {
    throw new RangeError(`${fn}: ${name} must be a finite number with 0 < ${name} ≤ 1, got ${String(v)}`);
  }
}

/**
 * NumPy's `linspace(start, stop, n)` with its operation order (`i·step + start`, last entry set to `stop`;
 * `[start]` for n = 1), so that named schedules reproduce the reference code's arrays.
 */
function linspace(start: number, stop: number, n: number): number[] {
  if (n === 1) return [start];
  const step = (stop - start) / (n - 1);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = i * step + start;
  out[n - 1] = stop;
  return out;
}

/**
 * Ho et al.'s linear schedule: β_t evenly spaced from `betaStart` to `betaEnd` (the paper: 1e−4 → 0.02, T = 1000).
 *
 * $$\beta_t = \beta_{\text{start}} + \frac{t-1}{T-1}(\beta_{\text{end}}-\beta_{\text{start}})$$
 *
 * @see property `ddpm.schedule.namedEqClosedForm`
 */
export function linearBetas(T: number, betaStart = 1e-4, betaEnd = 0.02): number[] {
  checkT('linearBetas', T);
  checkBetaArg('linearBetas', 'betaStart', betaStart);
  checkBetaArg('linearBetas', 'betaEnd', betaEnd);
  return linspace(betaStart, betaEnd, T);
}

/**
 * Ho et al.'s quadratic schedule: √β evenly spaced.
 *
 * $$\beta_t = \Big(\sqrt{\beta_{\text{start}}} + \frac{t-1}{T-1}\big(\sqrt{\beta_{\text{end}}}-\sqrt{\beta_{\text{start}}}\big)\Big)^2$$
 *
 * @see property `ddpm.schedule.namedEqClosedForm`
 */
export function quadBetas(T: number, betaStart = 1e-4, betaEnd = 0.02): number[] {
  checkT('quadBetas', T);
  checkBetaArg('quadBetas', 'betaStart', betaStart);
  checkBetaArg('quadBetas', 'betaEnd', betaEnd);
  return linspace(Math.sqrt(betaStart), Math.sqrt(betaEnd), T).map((r) => r * r);
}

/**
 * A constant schedule β_t = β.
 *
 * @see property `ddpm.schedule.namedEqClosedForm`
 */
export function constBetas(T: number, beta = 0.02): number[] {
  checkT('constBetas', T);
  checkBetaArg('constBetas', 'beta', beta);
  return new Array<number>(T).fill(beta);
}

/**
 * Ho et al.'s warm-up schedule: linear from `betaStart` to `betaEnd` over the first ⌊T·fraction⌋ steps, then
 * constant `betaEnd` (`warmup10`: fraction 0.1, `warmup50`: 0.5).
 *
 * @see property `ddpm.schedule.namedEqClosedForm`
 */
export function warmupBetas(T: number, betaStart = 1e-4, betaEnd = 0.02, fraction = 0.1): number[] {
  checkT('warmupBetas', T);
  checkBetaArg('warmupBetas', 'betaStart', betaStart);
  checkBetaArg('warmupBetas', 'betaEnd', betaEnd);
  if (typeof fraction !== 'number' || !(fraction >= 0 && fraction <= 1)) {
    throw new RangeError(`warmupBetas: fraction must be a number in [0, 1], got ${String(fraction)}`);
  }
  const out = new Array<number>(T).fill(betaEnd);
  const warm = Math.trunc(T * fraction);
  if (warm > 0) linspace(betaStart, betaEnd, warm).forEach((v, i) => (out[i] = v));
  return out;
}

/**
 * The "Jensen–Shannon" schedule of Ho et al.'s code: β_t = 1/(T − t + 1), i.e. 1/T, 1/(T−1), …, 1. Its last β
 * is 1 (flagged: ᾱ_T = 0).
 *
 * $$\beta_t = \frac{1}{T-t+1}$$
 *
 * @see property `ddpm.schedule.namedEqClosedForm`
 */
export function jsdBetas(T: number): number[] {
  checkT('jsdBetas', T);
  return linspace(T, 1, T).map((v) => 1 / v);
}

/**
 * The cosine schedule of Nichol & Dhariwal (2021), as improved-diffusion's `betas_for_alpha_bar`:
 *
 * $$f(u) = \cos^2\Big(\frac{u+s}{1+s}\cdot\frac{\pi}{2}\Big),\qquad
 *   \beta_t = \min\Big(1 - \frac{f(t/T)}{f((t-1)/T)},\ \beta_{\max}\Big)$$
 *
 * so that ᾱ_t = f(t/T)/f(0) wherever the clip is inactive (the product telescopes). With the default
 * β_max = 0.999 the last β is always clipped; β_max = 1 gives β_T = 1 (flagged).
 *
 * @param s - offset, default 0.008
 * @param maxBeta - clip, 0 < β_max ≤ 1, default 0.999
 * @see property `ddpm.schedule.cosineTelescopes`
 * @see property `ddpm.schedule.namedEqUpstreamGolden`
 */
export function cosineBetas(T: number, s = 0.008, maxBeta = 0.999): number[] {
  checkT('cosineBetas', T);
  if (typeof s !== 'number' || !(s >= 0 && s < 1)) throw new RangeError(`cosineBetas: s must be a number in [0, 1), got ${String(s)}`);
  checkBetaArg('cosineBetas', 'maxBeta', maxBeta);
  const f = cosineAlphaBarFunction(s);
  const out = new Array<number>(T);
  for (let i = 0; i < T; i++) out[i] = Math.min(1 - f((i + 1) / T) / f(i / T), maxBeta);
  return out;
}

/**
 * The unnormalised ᾱ of the cosine schedule, u ∈ [0, 1]:
 *
 * $$f(u) = \cos^2\Big(\frac{u+s}{1+s}\cdot\frac{\pi}{2}\Big)$$
 *
 * @see property `ddpm.schedule.cosineTelescopes`
 * @see property `ddpm.schedule.namedEqUpstreamGolden`
 */
export function cosineAlphaBarFunction(s = 0.008): (u: number) => number {
  return (u) => Math.cos(((u + s) / (1 + s)) * Math.PI / 2) ** 2;
}

/**
 * improved-diffusion's `linear`: Ho's linear schedule with both endpoints scaled by 1000/T, so that any T
 * covers the same total noise as T = 1000 (T = 100: 0.001 → 0.2). For T < 20 the last β exceeds 1 and the
 * schedule is rejected; T = 20 gives β_T = 1 (flagged).
 *
 * $$\beta_t = \frac{1000}{T}\Big(10^{-4} + \frac{t-1}{T-1}(0.02-10^{-4})\Big)$$
 *
 * @see property `ddpm.schedule.namedEqClosedForm`
 */
export function improvedLinearBetas(T: number): number[] {
  checkT('improvedLinearBetas', T);
  const scale = 1000 / T;
  return linspace(scale * 0.0001, scale * 0.02, T);
}

/**
 * A named schedule: one of the above with its arguments. `T` is the number of steps.
 *
 * @see property `ddpm.schedule.namedEqClosedForm`
 */
export const ScheduleSpec = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('linear'), T: z.number().int(), betaStart: z.number().optional(), betaEnd: z.number().optional() }),
  z.object({ kind: z.literal('quad'), T: z.number().int(), betaStart: z.number().optional(), betaEnd: z.number().optional() }),
  z.object({ kind: z.literal('const'), T: z.number().int(), beta: z.number().optional() }),
  z.object({
    kind: z.literal('warmup'),
    T: z.number().int(),
    betaStart: z.number().optional(),
    betaEnd: z.number().optional(),
    fraction: z.number(),
  }),
  z.object({ kind: z.literal('jsd'), T: z.number().int() }),
  z.object({ kind: z.literal('cosine'), T: z.number().int(), s: z.number().optional(), maxBeta: z.number().optional() }),
  z.object({ kind: z.literal('improvedLinear'), T: z.number().int() }),
  z.object({ kind: z.literal('array'), betas: z.array(z.number()) }),
]);
/** @see property `ddpm.schedule.namedEqClosedForm` */
export type ScheduleSpec = z.infer<typeof ScheduleSpec>;

/**
 * Build a validated {@link Schedule} from a {@link ScheduleSpec}.
 *
 * @throws RangeError for bad arguments, and when the resulting β leave (0, 1] (e.g. `improvedLinear` with T < 20)
 * @see property `ddpm.schedule.namedEqClosedForm`
 * @see property `ddpm.schedule.userArrayValidated`
 */
export function namedSchedule(spec: ScheduleSpec): Schedule {
  const p = ScheduleSpec.safeParse(spec);
  if (!p.success) throw new RangeError(formatIssues('namedSchedule', 'spec', p.error, spec));
  const a = p.data;
  switch (a.kind) {
    case 'linear':
      return makeSchedule(linearBetas(a.T, a.betaStart, a.betaEnd), `linear(T=${a.T})`);
    case 'quad':
      return makeSchedule(quadBetas(a.T, a.betaStart, a.betaEnd), `quad(T=${a.T})`);
    case 'const':
      return makeSchedule(constBetas(a.T, a.beta), `const(T=${a.T})`);
    case 'warmup':
      return makeSchedule(warmupBetas(a.T, a.betaStart, a.betaEnd, a.fraction), `warmup(T=${a.T}, ${a.fraction})`);
    case 'jsd':
      return makeSchedule(jsdBetas(a.T), `jsd(T=${a.T})`);
    case 'cosine':
      return makeSchedule(cosineBetas(a.T, a.s, a.maxBeta), `cosine(T=${a.T})`);
    case 'improvedLinear':
      return makeSchedule(improvedLinearBetas(a.T), `improvedLinear(T=${a.T})`);
    case 'array':
      return makeSchedule(a.betas);
  }
}

/**
 * Ho et al.'s schedule of the paper: linear, 1e−4 → 0.02, T = 1000.
 *
 * @see property `ddpm.bound.priorTermHoSmall`
 */
export function hoSchedule(): Schedule {
  return makeSchedule(linearBetas(1000, 1e-4, 0.02), 'linear(T=1000, 1e-4→0.02)');
}
