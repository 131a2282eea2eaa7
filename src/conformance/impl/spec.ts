/**
 * The float64 specification (`spec/ddpm`) as an implementation of the operation vocabulary
 * ({@link DiffusionOps}), so that the reusable laws, golden replay and `ddpm-spec check` can run on it like on any
 * other implementation.
 *
 * This file only translates; every formula comes from `spec/`:
 *
 * - **Timesteps.** The operations take the public code's 0-based `t ∈ {0, …, T−1}`; the spec takes the paper's
 *   1-based t. Each entry is mapped as `t_paper = t + 1` (so buffer index t holds the spec's value at t + 1).
 * - **Tensors.** NCHW `{shape, data}`: the leading axis is the batch; each example (C·H·W numbers, contiguous) is
 *   handed to the spec as one flat vector, with its own timestep.
 * - **Models.** `tiny` is the golden data's fixed linear map, evaluated here in float64 with the timestep the
 *   diffusion code would hand to it: t, or `timestep_map[t]` for a respaced diffusion, times 1000/T₀ when
 *   `rescale_timesteps`, where T₀ is the number of steps of the diffusion the model was trained on (T, or
 *   `original_num_timesteps` for a respaced one, as improved-diffusion's `_WrappedModel` scales); `output` is a
 *   fixed tensor. For learned variances the model has 2C channels: the first C are the mean part.
 * - **Decoder.** The public code's convention (`tanhFloored`: the tanh-approximate CDF, probabilities floored at
 *   10⁻¹²), which the golden data records, for `discretized_gaussian_log_likelihood` and the t = 0 term of
 *   `training_losses` and `calc_bpd_loop`; `approx_standard_normal_cdf` is that CDF.
 *
 * - **Bits.** `training_losses` and `calc_bpd_loop` report the bound's terms as the reference code does: averaged over
 *   the non-batch dimensions and divided by ln 2; their gradients are not computed (`grads` is answered as
 *   unsupported).
 *
 * Operations the spec does not define (the UNet's `timestep_embedding`; respacing) are left undefined and reported
 * as skipped by the checker.
 *
 * @module
 */
import type { DiffusionArgs, DiffusionOps, BufferName, ModelSpec, ScheduleArgs, Tensor } from '../ops.ts';
import { OpError } from '../ops.ts';
import {
  clippedLogPosteriorVariance,
  constBetas,
  cosineBetas,
  ddimReverseStep,
  ddimStep,
  discretizedGaussianLogLikelihoodTanh,
  epsFromX0,
  forwardMarginal,
  forwardPosterior,
  improvedLinearBetas,
  jsdBetas,
  linearBetas,
  makeSchedule,
  posteriorMeanCoefficients,
  posteriorVariance,
  ancestralStep,
  approxStandardNormalCdf,
  natsToBitsPerDim,
  posteriorMean,
  priorTerm,
  qSample,
  quadBetas,
  reverseStep,
  warmupBetas,
  x0FromEps,
  x0FromMu,
  type Prediction,
  type ReverseVarianceSpec,
  type Schedule,
} from '../../../spec/ddpm/index.ts';
import { klDiagGaussian } from '../../../spec/gaussian/kl.ts';
import { OpUnsupported } from './stdio.ts';
import { diffusersSpecOps } from './diffusersSpec.ts';

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);
const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

function fail(op: string, message: string): never {
  throw new OpError(`${op}: ${message}`);
}

/** Run a spec call and turn its RangeError/TypeError into an OpError naming the operation. */
function guard<T>(op: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof OpError) throw e;
    throw new OpError(`${op}: ${(e as Error).message}`);
  }
}

const scheduleCache = new WeakMap<Float64Array, Schedule>();

function scheduleOf(op: string, betas: Tensor): Schedule {
  if (betas.shape.length !== 1) fail(op, `betas must have shape [T], got [${betas.shape.join(',')}]`);
  let s = scheduleCache.get(betas.data);
  if (s === undefined) {
    s = guard(op, () => makeSchedule(Array.from(betas.data), 'betas'));
    scheduleCache.set(betas.data, s);
  }
  return s;
}

/** The batch size B and per-example size of an NCHW (or any [B, …]) tensor. */
function batchOf(op: string, name: string, x: Tensor): { B: number; n: number } {
  if (x.shape.length < 1) fail(op, `${name} must have a leading batch axis, got shape []`);
  const B = x.shape[0];
  return { B, n: B === 0 ? 0 : x.data.length / B };
}

function example(x: Tensor, b: number, n: number): Float64Array {
  return x.data.subarray(b * n, (b + 1) * n);
}

/** Paper timesteps (1-based) from the operation's 0-based `t` of shape [B]. */
function paperTimesteps(op: string, t: Tensor, B: number, T: number): number[] {
  if (t.shape.length !== 1 || t.shape[0] !== B) fail(op, `t must have shape [${B}] (one timestep per example), got [${t.shape.join(',')}]`);
  return Array.from(t.data, (v, i) => {
    if (!Number.isInteger(v) || v < 0 || v > T - 1) fail(op, `t[${i}] must be an integer in 0…T−1 = 0…${T - 1} (0-based, as the reference code), got ${v}`);
    return v + 1;
  });
}

function requireSameShape(op: string, named: Record<string, Tensor>): void {
  const names = Object.keys(named);
  const first = named[names[0]];
  for (const k of names.slice(1)) {
    if (!sameShape(first.shape, named[k].shape)) fail(op, `${names[0]} and ${k} must have the same shape, got [${first.shape.join(',')}] and [${named[k].shape.join(',')}]`);
  }
}

/** Apply `f` to each example and assemble the per-example outputs into tensors of `shape`. */
function perExample<K extends string>(
  shape: readonly number[],
  B: number,
  keys: readonly K[],
  f: (b: number) => Record<K, ArrayLike<number> | number>,
): Record<K, Tensor> {
  const n = B === 0 ? 0 : size(shape) / B;
  const out = Object.fromEntries(keys.map((k) => [k, { shape: [...shape], data: new Float64Array(size(shape)) }])) as Record<K, Tensor>;
  for (let b = 0; b < B; b++) {
    const r = f(b);
    for (const k of keys) {
      const v = r[k];
      if (typeof v === 'number') out[k].data.fill(v, b * n, (b + 1) * n);
      else out[k].data.set(v, b * n);
    }
  }
  return out;
}

/**
 * The timestep the diffusion code hands to the model, for 0-based t: the respaced index mapped to its original
 * timestep, then ×1000/T₀ when rescaled, T₀ the original number of steps (improved-diffusion's `_WrappedModel`).
 */
function modelTimestep(op: string, a: DiffusionArgs, tCode: number, T: number): number {
  if (!a.timestep_map) return a.rescale_timesteps ? (tCode * 1000) / T : tCode;
  if (a.timestep_map.length !== T) fail(op, `timestep_map must list T = ${T} original timesteps (one per respaced step), got ${a.timestep_map.length}`);
  const t = a.timestep_map[tCode];
  if (!a.rescale_timesteps) return t;
  const T0 = a.original_num_timesteps;
  if (T0 === undefined || !Number.isSafeInteger(T0) || T0 < 1) {
    fail(op, `original_num_timesteps must be a positive integer when a respaced diffusion (timestep_map) rescales timesteps (the model sees timestep_map[t]·1000/original_num_timesteps), got ${String(T0)}`);
  }
  return (t * 1000) / T0;
}

/** The model's output for the batch x (NCHW) at 0-based timesteps tCode. */
function modelOutput(op: string, a: DiffusionArgs, model: ModelSpec, x: Tensor, tCode: number[], T: number): Tensor {
  if (model.kind === 'output') {
    if (model.output.shape[0] !== x.shape[0] || !sameShape(model.output.shape.slice(2), x.shape.slice(2))) {
      fail(op, `model.output must have shape [${x.shape[0]}, C or 2C, ${x.shape.slice(2).join(', ')}], got [${model.output.shape.join(',')}]`);
    }
    return model.output;
  }
  if (model.kind !== 'tiny') fail(op, `model.kind must be 'tiny' or 'output', got ${String((model as { kind: unknown }).kind)}`);
  const [B, C, ...rest] = x.shape;
  const HW = size(rest);
  const [O, I] = model.W.shape;
  if (I !== C) fail(op, `model.W must have shape [out, ${C}] (C = ${C} input channels), got [${model.W.shape.join(',')}]`);
  const out = { shape: [B, O, ...rest], data: new Float64Array(B * O * HW) };
  for (let b = 0; b < B; b++) {
    const tm = modelTimestep(op, a, tCode[b], T);
    for (let o = 0; o < O; o++) {
      const base = model.bias.data[o] + (model.tw.data[o] * tm) / 1000;
      for (let p = 0; p < HW; p++) {
        let v = base;
        for (let i = 0; i < C; i++) v += model.W.data[o * I + i] * x.data[(b * C + i) * HW + p];
        out.data[(b * O + o) * HW + p] = v;
      }
    }
  }
  return out;
}

const LEARNED = new Set(['LEARNED', 'LEARNED_RANGE']);

/** The prediction and the variance choice of example b from the model output (C or 2C channels). */
function splitOutput(op: string, a: DiffusionArgs, out: Tensor, b: number, n: number): { pred: Prediction; variance: ReverseVarianceSpec } {
  const mt = a.model_mean_type ?? 'EPSILON';
  const vt = a.model_var_type ?? 'FIXED_SMALL';
  const learned = LEARNED.has(vt);
  const per = out.data.length / out.shape[0];
  if (per !== (learned ? 2 * n : n)) {
    fail(op, `the model output has ${per} numbers per example; ${vt} needs ${learned ? `2C·H·W = ${2 * n}` : `C·H·W = ${n}`} (C channels${learned ? ' for the mean, C for the variance' : ''})`);
  }
  const base = b * per;
  const meanPart = out.data.subarray(base, base + n);
  const varPart = out.data.subarray(base + n, base + 2 * n);
  const kind = mt === 'EPSILON' ? 'eps' : mt === 'START_X' ? 'x0' : mt === 'PREVIOUS_X' ? 'mu' : fail(op, `model_mean_type must be EPSILON, START_X or PREVIOUS_X, got ${mt}`);
  let variance: ReverseVarianceSpec;
  switch (vt) {
    case 'FIXED_SMALL':
      variance = 'fixedSmall';
      break;
    case 'FIXED_LARGE':
      variance = 'fixedLarge';
      break;
    case 'LEARNED':
      variance = { kind: 'learned', logVariance: varPart };
      break;
    case 'LEARNED_RANGE':
      variance = { kind: 'learnedRange', v: varPart };
      break;
    default:
      fail(op, `model_var_type must be FIXED_SMALL, FIXED_LARGE, LEARNED or LEARNED_RANGE, got ${String(vt)}`);
  }
  return { pred: { kind, value: meanPart }, variance };
}

function tensor1d(values: ArrayLike<number>): Tensor {
  return { shape: [values.length], data: Float64Array.from(values) };
}

/** Element-wise over tensors of equal shape, or a scalar (size-1) tensor broadcast against the others. */
function elementwise(op: string, named: Record<string, Tensor>, f: (...v: number[]) => number): Tensor {
  const ts = Object.values(named);
  const big = ts.reduce((a, t) => (t.data.length > a.data.length ? t : a), ts[0]);
  for (const [k, t] of Object.entries(named)) {
    if (t.data.length !== 1 && !sameShape(t.shape, big.shape)) fail(op, `${k} must have shape [${big.shape.join(',')}] or be a scalar, got [${t.shape.join(',')}]`);
  }
  const out = new Float64Array(big.data.length);
  const args = new Array<number>(ts.length);
  for (let i = 0; i < out.length; i++) {
    for (let j = 0; j < ts.length; j++) args[j] = ts[j].data.length === 1 ? ts[j].data[0] : ts[j].data[i];
    out[i] = f(...args);
  }
  return { shape: [...big.shape], data: out };
}

/**
 * Named schedules of the public code: `ho` (`get_beta_schedule`) and `improved` (`get_named_beta_schedule`).
 * Returns the β array as those functions do, without validating it (validation happens where a schedule is
 * used, as in the reference's `GaussianDiffusion.__init__`).
 */
function namedBetas(a: ScheduleArgs): number[] {
  const start = a.beta_start ?? 1e-4;
  const end = a.beta_end ?? 0.02;
  if (a.family === 'ho') {
    switch (a.name) {
      case 'quad':
        return quadBetas(a.T, start, end);
      case 'linear':
        return linearBetas(a.T, start, end);
      case 'warmup10':
        return warmupBetas(a.T, start, end, 0.1);
      case 'warmup50':
        return warmupBetas(a.T, start, end, 0.5);
      case 'const':
        return constBetas(a.T, end);
      case 'jsd':
        return jsdBetas(a.T);
    }
    fail('schedule', `unknown ho schedule ${JSON.stringify(a.name)} (quad, linear, warmup10, warmup50, const, jsd)`);
  }
  if (a.family === 'improved') {
    if (a.name === 'linear') return improvedLinearBetas(a.T);
    if (a.name === 'cosine') return cosineBetas(a.T, 0.008, a.max_beta ?? 0.999);
    fail('schedule', `unknown improved schedule ${JSON.stringify(a.name)} (linear, cosine)`);
  }
  fail('schedule', `family must be 'ho' or 'improved', got ${JSON.stringify((a as { family: unknown }).family)}`);
}

/**
 * The reference code's `_vb_terms_bpd` for one example: at paper t ≥ 2 the KL between the posterior (with its
 * clipped log-variance) and the reverse step, at t = 1 the discretised decoder's −log p; mean over dimensions, bits.
 */
type LogLikelihood = (x: number, mean: number, logScale: number) => number;

function vbBits(s: Schedule, t: number, x0: ArrayLike<number>, xt: ArrayLike<number>, step: { mean: number[]; logVariance: number[] }, dgll: LogLikelihood): number {
  const D = x0.length;
  let nats = 0;
  if (t === 1) {
    for (let i = 0; i < D; i++) nats -= dgll(x0[i], step.mean[i], 0.5 * step.logVariance[i]);
  } else {
    const q = forwardPosterior(s, t, x0, xt);
    const qVar = Math.exp(clippedLogPosteriorVariance(s, t));
    for (let i = 0; i < D; i++) nats += klDiagGaussian([q.mean[i]], [qVar], [step.mean[i]], [Math.exp(step.logVariance[i])]);
  }
  return natsToBitsPerDim(nats, D);
}

const meanSquared = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc += (a[i] - b[i]) ** 2;
  return acc / a.length;
};

/**
 * The float64 spec as a {@link DiffusionOps}.
 *
 * @param opts.logLikelihood - the discretised log-likelihood of one element for every operation that uses it (the
 *   decoder term too); default the public code's convention, `discretizedGaussianLogLikelihoodTanh`
 * @param opts.cdf - the CDF convention that likelihood follows, declared to the checker (default `tanh`)
 */
export function createSpecOps(opts: { logLikelihood?: LogLikelihood; cdf?: 'tanh' | 'exact' } = {}): DiffusionOps {
  const dgll = opts.logLikelihood ?? discretizedGaussianLogLikelihoodTanh;
  const ops: DiffusionOps = {
    name: 'spec (float64)',
    precision: 'float64',
    cdf: opts.cdf ?? 'tanh',
    ...diffusersSpecOps(),

    async schedule(a) {
      return { betas: tensor1d(guard('schedule', () => namedBetas(a))) };
    },

    async buffers(a) {
      const s = scheduleOf('buffers', a.betas);
      const T = s.T;
      const at = (f: (t: number) => number) => tensor1d(Array.from({ length: T }, (_, i) => f(i + 1)));
      return guard('buffers', () => {
        const out: Record<BufferName, Tensor> = {
          betas: at((t) => s.beta(t)),
          alphas_cumprod: at((t) => s.alphaBar(t)),
          alphas_cumprod_prev: at((t) => s.alphaBar(t - 1)),
          alphas_cumprod_next: at((t) => (t === T ? 0 : s.alphaBar(t + 1))),
          sqrt_alphas_cumprod: at((t) => Math.sqrt(s.alphaBar(t))),
          sqrt_one_minus_alphas_cumprod: at((t) => Math.sqrt(s.oneMinusAlphaBar(t))),
          log_one_minus_alphas_cumprod: at((t) => Math.log(s.oneMinusAlphaBar(t))),
          sqrt_recip_alphas_cumprod: at((t) => Math.sqrt(1 / s.alphaBar(t))),
          sqrt_recipm1_alphas_cumprod: at((t) => Math.sqrt(s.oneMinusAlphaBar(t) / s.alphaBar(t))),
          posterior_variance: at((t) => posteriorVariance(s, t)),
          posterior_log_variance_clipped: at((t) => clippedLogPosteriorVariance(s, t)),
          posterior_mean_coef1: at((t) => posteriorMeanCoefficients(s, t).x0),
          posterior_mean_coef2: at((t) => posteriorMeanCoefficients(s, t).xt),
        };
        return out;
      });
    },

    async q_sample(a, x_start, t, noise) {
      const op = 'q_sample';
      const s = scheduleOf(op, a.betas);
      requireSameShape(op, { x_start, noise });
      const { B, n } = batchOf(op, 'x_start', x_start);
      const tp = paperTimesteps(op, t, B, s.T);
      const r = perExample(x_start.shape, B, ['x_t'], (b) => ({ x_t: guard(op, () => qSample(s, tp[b], example(x_start, b, n), example(noise, b, n))) }));
      return r;
    },

    async q_mean_variance(a, x_start, t) {
      const op = 'q_mean_variance';
      const s = scheduleOf(op, a.betas);
      const { B, n } = batchOf(op, 'x_start', x_start);
      const tp = paperTimesteps(op, t, B, s.T);
      return perExample(x_start.shape, B, ['mean', 'variance', 'log_variance'], (b) => {
        const q = guard(op, () => forwardMarginal(s, tp[b], example(x_start, b, n)));
        return { mean: q.mean, variance: q.variance, log_variance: Math.log(q.variance) };
      });
    },

    async q_posterior_mean_variance(a, x_start, x_t, t) {
      const op = 'q_posterior_mean_variance';
      const s = scheduleOf(op, a.betas);
      requireSameShape(op, { x_start, x_t });
      const { B, n } = batchOf(op, 'x_start', x_start);
      const tp = paperTimesteps(op, t, B, s.T);
      return perExample(x_start.shape, B, ['mean', 'variance', 'log_variance_clipped'], (b) =>
        guard(op, () => {
          const q = forwardPosterior(s, tp[b], example(x_start, b, n), example(x_t, b, n));
          return { mean: q.mean, variance: q.variance, log_variance_clipped: clippedLogPosteriorVariance(s, tp[b]) };
        }),
      );
    },

    async predict_xstart_from_eps(a, x_t, t, eps) {
      const op = 'predict_xstart_from_eps';
      const s = scheduleOf(op, a.betas);
      requireSameShape(op, { x_t, eps });
      const { B, n } = batchOf(op, 'x_t', x_t);
      const tp = paperTimesteps(op, t, B, s.T);
      return perExample(x_t.shape, B, ['pred_xstart'], (b) => ({ pred_xstart: guard(op, () => x0FromEps(s, tp[b], example(x_t, b, n), example(eps, b, n))) }));
    },

    async predict_xstart_from_xprev(a, x_t, t, xprev) {
      const op = 'predict_xstart_from_xprev';
      const s = scheduleOf(op, a.betas);
      requireSameShape(op, { x_t, xprev });
      const { B, n } = batchOf(op, 'x_t', x_t);
      const tp = paperTimesteps(op, t, B, s.T);
      return perExample(x_t.shape, B, ['pred_xstart'], (b) => ({ pred_xstart: guard(op, () => x0FromMu(s, tp[b], example(x_t, b, n), example(xprev, b, n))) }));
    },

    async predict_eps_from_xstart(a, x_t, t, pred_xstart) {
      const op = 'predict_eps_from_xstart';
      const s = scheduleOf(op, a.betas);
      requireSameShape(op, { x_t, pred_xstart });
      const { B, n } = batchOf(op, 'x_t', x_t);
      const tp = paperTimesteps(op, t, B, s.T);
      return perExample(x_t.shape, B, ['eps'], (b) => ({ eps: guard(op, () => epsFromX0(s, tp[b], example(x_t, b, n), example(pred_xstart, b, n))) }));
    },

    async p_mean_variance(a, model, x, t) {
      const op = 'p_mean_variance';
      const s = scheduleOf(op, a.betas);
      const { B, n } = batchOf(op, 'x', x);
      const tp = paperTimesteps(op, t, B, s.T);
      const out = modelOutput(op, a, model, x, tp.map((v) => v - 1), s.T);
      return perExample(x.shape, B, ['mean', 'variance', 'log_variance', 'pred_xstart'], (b) =>
        guard(op, () => {
          const { pred, variance } = splitOutput(op, a, out, b, n);
          const r = reverseStep(s, tp[b], example(x, b, n), pred, variance, { clip: a.clip_denoised });
          return { mean: r.mean, variance: r.variance, log_variance: r.logVariance, pred_xstart: r.x0 };
        }),
      );
    },

    async normal_kl(mean1, logvar1, mean2, logvar2) {
      const kl = elementwise('normal_kl', { mean1, logvar1, mean2, logvar2 }, (m1, lv1, m2, lv2) =>
        guard('normal_kl', () => klDiagGaussian([m1], [Math.exp(lv1)], [m2], [Math.exp(lv2)])),
      );
      return { kl };
    },

    async approx_standard_normal_cdf(x) {
      const op = 'approx_standard_normal_cdf';
      return { cdf: { shape: [...x.shape], data: Float64Array.from(x.data, (v) => guard(op, () => approxStandardNormalCdf(v))) } };
    },

    async discretized_gaussian_log_likelihood(x, means, log_scales) {
      const log_probs = elementwise('discretized_gaussian_log_likelihood', { x, means, log_scales }, (xi, m, ls) =>
        guard('discretized_gaussian_log_likelihood', () => dgll(xi, m, ls)),
      );
      return { log_probs };
    },

    async training_losses(a, model, x_start, t, noise) {
      const op = 'training_losses';
      if (a.grads) throw new OpUnsupported(`${op}: the float64 spec computes no gradients (ask without grads)`);
      const s = scheduleOf(op, a.betas);
      requireSameShape(op, { x_start, noise });
      const { B, n } = batchOf(op, 'x_start', x_start);
      const tp = paperTimesteps(op, t, B, s.T);
      const xt = (await ops.q_sample!(a, x_start, t, noise)).x_t;
      const out = modelOutput(op, a, model, xt, tp.map((v) => v - 1), s.T);
      const learned = LEARNED.has(a.model_var_type ?? 'FIXED_SMALL');
      const names = a.loss_type === 'KL' || a.loss_type === 'RESCALED_KL' ? ['loss'] : learned ? ['mse', 'vb', 'loss'] : ['mse', 'loss'];
      const terms: Record<string, Tensor> = Object.fromEntries(names.map((k) => [k, { shape: [B], data: new Float64Array(B) }]));
      for (let b = 0; b < B; b++) {
        guard(op, () => {
          const x0 = example(x_start, b, n);
          const x = example(xt, b, n);
          const { pred, variance } = splitOutput(op, a, out, b, n);
          const step = reverseStep(s, tp[b], x, pred, variance, { clip: false });
          if (a.loss_type === 'KL' || a.loss_type === 'RESCALED_KL') {
            terms.loss.data[b] = vbBits(s, tp[b], x0, x, step, dgll) * (a.loss_type === 'RESCALED_KL' ? s.T : 1);
            return;
          }
          if (a.loss_type !== 'MSE' && a.loss_type !== 'RESCALED_MSE') fail(op, `loss_type must be MSE, RESCALED_MSE, KL or RESCALED_KL, got ${String(a.loss_type)}`);
          const target = pred.kind === 'eps' ? example(noise, b, n) : pred.kind === 'x0' ? x0 : posteriorMean(s, tp[b], x0, x);
          const mse = meanSquared(target, pred.value);
          terms.mse.data[b] = mse;
          let loss = mse;
          if (learned) {
            const vb = vbBits(s, tp[b], x0, x, step, dgll) * (a.loss_type === 'RESCALED_MSE' ? s.T / 1000 : 1);
            terms.vb.data[b] = vb;
            loss += vb;
          }
          terms.loss.data[b] = loss;
        });
      }
      return { terms };
    },

    async calc_bpd_loop(a, model, x_start, noise_per_step_in_loop_order) {
      const op = 'calc_bpd_loop';
      const s = scheduleOf(op, a.betas);
      const T = s.T;
      const { B, n } = batchOf(op, 'x_start', x_start);
      const noise = noise_per_step_in_loop_order;
      if (noise.shape[0] !== T || !sameShape(noise.shape.slice(1), x_start.shape)) {
        fail(op, `noise_per_step_in_loop_order must have shape [${T}, ${x_start.shape.join(', ')}] (one q_sample noise per step, t = T−1 … 0), got [${noise.shape.join(',')}]`);
      }
      const vb = { shape: [B, T], data: new Float64Array(B * T) };
      const xstart_mse = { shape: [B, T], data: new Float64Array(B * T) };
      const mse = { shape: [B, T], data: new Float64Array(B * T) };
      for (let i = 0; i < T; i++) {
        const tCode = T - 1 - i;
        const eps = { shape: [...x_start.shape], data: noise.data.subarray(i * B * n, (i + 1) * B * n) };
        const tt = { shape: [B], data: new Float64Array(B).fill(tCode) };
        const xt = (await ops.q_sample!(a, x_start, tt, eps)).x_t;
        const out = modelOutput(op, a, model, xt, new Array<number>(B).fill(tCode), T);
        for (let b = 0; b < B; b++) {
          guard(op, () => {
            const x0 = example(x_start, b, n);
            const x = example(xt, b, n);
            const { pred, variance } = splitOutput(op, a, out, b, n);
            const step = reverseStep(s, tCode + 1, x, pred, variance, { clip: a.clip_denoised });
            vb.data[b * T + tCode] = vbBits(s, tCode + 1, x0, x, step, dgll);
            xstart_mse.data[b * T + tCode] = meanSquared(step.x0, x0);
            mse.data[b * T + tCode] = meanSquared(epsFromX0(s, tCode + 1, x, step.x0), example(eps, b, n));
          });
        }
      }
      const prior = Float64Array.from({ length: B }, (_, b) => guard(op, () => natsToBitsPerDim(priorTerm(s, example(x_start, b, n)), n)));
      const total = prior.map((p, b) => p + vb.data.subarray(b * T, (b + 1) * T).reduce((acc, v) => acc + v, 0));
      return { total_bpd: { shape: [B], data: total }, prior_bpd: { shape: [B], data: prior }, vb, xstart_mse, mse };
    },

    async p_sample_step(a, model, x, t, noise) {
      const op = 'p_sample_step';
      const s = scheduleOf(op, a.betas);
      requireSameShape(op, { x, noise });
      const { B, n } = batchOf(op, 'x', x);
      const tp = paperTimesteps(op, t, B, s.T);
      const out = modelOutput(op, a, model, x, tp.map((v) => v - 1), s.T);
      return perExample(x.shape, B, ['sample', 'pred_xstart'], (b) =>
        guard(op, () => {
          const { pred, variance } = splitOutput(op, a, out, b, n);
          const r = ancestralStep(s, tp[b], example(x, b, n), pred, example(noise, b, n), { variance, clip: a.clip_denoised });
          return { sample: r.sample, pred_xstart: r.x0 };
        }),
      );
    },

    async ddim_step(a, model, x, t, noise) {
      const op = 'ddim_step';
      const s = scheduleOf(op, a.betas);
      requireSameShape(op, { x, noise });
      const { B, n } = batchOf(op, 'x', x);
      const tp = paperTimesteps(op, t, B, s.T);
      const out = modelOutput(op, a, model, x, tp.map((v) => v - 1), s.T);
      return perExample(x.shape, B, ['sample', 'pred_xstart'], (b) =>
        guard(op, () => {
          const { pred } = splitOutput(op, a, out, b, n);
          const r = ddimStep(s, tp[b], tp[b] - 1, example(x, b, n), pred, a.eta, example(noise, b, n), { clip: a.clip_denoised });
          return { sample: r.sample, pred_xstart: r.x0 };
        }),
      );
    },

    async ddim_reverse_step(a, model, x, t) {
      const op = 'ddim_reverse_step';
      const s = scheduleOf(op, a.betas);
      const { B, n } = batchOf(op, 'x', x);
      const tp = paperTimesteps(op, t, B, s.T);
      const out = modelOutput(op, a, model, x, tp.map((v) => v - 1), s.T);
      return perExample(x.shape, B, ['sample', 'pred_xstart'], (b) =>
        guard(op, () => {
          const { pred } = splitOutput(op, a, out, b, n);
          const r = ddimReverseStep(s, tp[b], tp[b] + 1, example(x, b, n), pred, { clip: a.clip_denoised });
          return { sample: r.sample, pred_xstart: r.x0 };
        }),
      );
    },
  };
  return ops;
}

/** The spec as an implementation, ready to use. */
export const specOps: DiffusionOps = createSpecOps();
