/**
 * The tfjs reference as a {@link DiffusionOps} implementation, for golden replay, the laws and
 * `ddpm-spec check`.
 *
 * At the boundary: operation tensors are float64 row-major and images NCHW; the reference is float32 NHWC.
 * Inputs are checked for finiteness here (the reference's tensor functions cannot read values back
 * synchronously), rounded to float32 and transposed NCHW → NHWC; outputs are read back with `await data()` and
 * transposed back. Every tensor an operation creates is disposed before it returns. Errors of the reference
 * (bad arguments) are re-thrown as {@link OpError} with the reference's message.
 *
 * @module
 */
import { diffusersReferenceOps } from './diffusersReference.ts';
import * as tf from '@tensorflow/tfjs';
import {
  GaussianDiffusion,
  ReferenceArgumentError,
  NonFiniteError,
  calcBpdLoop,
  computeBuffers,
  ddimReverseSample,
  ddimSample,
  discretizedGaussianLogLikelihood,
  fixedOutputModel,
  hoBetaSchedule,
  improvedBetaSchedule,
  normalKl,
  approxStandardNormalCdf,
  pMeanVarianceOfOutput,
  pMeanVariance,
  pSample,
  predictEpsFromXstart,
  predictXstartFromEps,
  predictXstartFromXprev,
  qMeanVariance,
  qPosteriorMeanVariance,
  qSample,
  respaceBetas,
  spaceTimesteps,
  timestepEmbedding,
  tinyModel,
  trainingLosses,
  type DenoiseModel,
  type TrainingTerms,
} from '../../../reference/index.ts';
import { BUFFER_NAMES, OpError, type BufferName, type DiffusionArgs, type DiffusionOps, type ModelSpec, type Tensor } from '../ops.ts';

/** Arguments an operation may carry beyond {@link DiffusionArgs}. */
type Args = DiffusionArgs & { original_num_timesteps?: number };

/** Tensors created during one operation, disposed at its end. */
class Scope {
  private readonly held: tf.Tensor[] = [];
  private readonly diffusions: GaussianDiffusion[] = [];
  add<T extends tf.Tensor>(t: T): T {
    this.held.push(t);
    return t;
  }
  addAll<T extends Record<string, tf.Tensor | undefined>>(o: T): T {
    for (const v of Object.values(o)) if (v) this.held.push(v);
    return o;
  }
  diffusion(d: GaussianDiffusion): GaussianDiffusion {
    this.diffusions.push(d);
    return d;
  }
  dispose(): void {
    tf.dispose(this.held);
    for (const d of this.diffusions) d.dispose();
  }
}

function checkFinite(op: string, arg: string, t: Tensor): void {
  for (let i = 0; i < t.data.length; i++) {
    if (!Number.isFinite(t.data[i])) throw new OpError(`${op}: ${arg} must be finite everywhere, but element ${i} is ${t.data[i]}`);
  }
}

function checkTensor(op: string, arg: string, t: Tensor | undefined): asserts t is Tensor {
  if (t === undefined || t === null || !Array.isArray(t.shape) || !(t.data instanceof Float64Array)) {
    throw new OpError(`${op}: ${arg} must be a tensor {shape, data: Float64Array}`);
  }
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (n !== t.data.length) throw new OpError(`${op}: ${arg} has shape [${t.shape.join(',')}] (${n} elements) but ${t.data.length} data values`);
}

/** A float32 tensor from an operation tensor; images (rank ≥ 3, NCHW) are transposed to NHWC. */
function toTf(op: string, arg: string, t: Tensor, s: Scope, image: boolean): tf.Tensor {
  checkTensor(op, arg, t);
  checkFinite(op, arg, t);
  const x = tf.tensor(Float32Array.from(t.data), t.shape, 'float32');
  if (!image || t.shape.length < 3) return s.add(x);
  const r = t.shape.length;
  const y = tf.transpose(x, [0, ...Array.from({ length: r - 2 }, (_, i) => i + 2), 1]);
  x.dispose();
  return s.add(y);
}

/** Read a tfjs tensor back; images (rank ≥ 3, NHWC) are transposed to NCHW. */
async function fromTf(x: tf.Tensor, image: boolean): Promise<Tensor> {
  if (!image || x.rank < 3) return { shape: [...x.shape], data: Float64Array.from(await x.data()) };
  const r = x.rank;
  const y = tf.transpose(x, [0, r - 1, ...Array.from({ length: r - 2 }, (_, i) => i + 1)]);
  const data = Float64Array.from(await y.data());
  const shape = [...y.shape];
  y.dispose();
  return { shape, data };
}

/** Host timesteps from a `[B]` tensor of integers. */
function timesteps(op: string, t: Tensor): number[] {
  checkTensor(op, 't', t);
  if (t.shape.length !== 1) throw new OpError(`${op}: t must have shape [B], got [${t.shape.join(',')}]`);
  const v = Array.from(t.data);
  v.forEach((x, i) => {
    if (!Number.isInteger(x)) throw new OpError(`${op}: t[${i}] must be an integer timestep, got ${x}`);
  });
  return v;
}

function diffusion(op: string, a: Args, s: Scope, extra: { loss_type?: string } = {}): GaussianDiffusion {
  checkTensor(op, 'betas', a?.betas);
  return s.diffusion(
    new GaussianDiffusion({
      betas: a.betas.data,
      modelMeanType: a.model_mean_type,
      modelVarType: a.model_var_type,
      lossType: extra.loss_type as never,
      rescaleTimesteps: a.rescale_timesteps,
      timestepMap: a.timestep_map,
      originalNumTimesteps: a.original_num_timesteps,
    }),
  );
}

function model(op: string, m: ModelSpec, s: Scope): DenoiseModel {
  if (m?.kind === 'tiny') {
    return tinyModel({
      W: toTf(op, 'model.W', m.W, s, false) as tf.Tensor2D,
      bias: toTf(op, 'model.bias', m.bias, s, false) as tf.Tensor1D,
      tw: toTf(op, 'model.tw', m.tw, s, false) as tf.Tensor1D,
    });
  }
  if (m?.kind === 'output') return fixedOutputModel(toTf(op, 'model.output', m.output, s, true));
  throw new OpError(`${op}: model must be {kind: 'tiny', W, bias, tw} or {kind: 'output', output}, got ${JSON.stringify((m as { kind?: unknown })?.kind)}`);
}

/** Run an operation body with a scope; reference argument errors become OpErrors. */
async function run<T>(op: string, body: (s: Scope) => Promise<T>): Promise<T> {
  const s = new Scope();
  try {
    return await body(s);
  } catch (e) {
    if (e instanceof ReferenceArgumentError || e instanceof NonFiniteError) throw new OpError(e.message, { cause: e });
    throw e;
  } finally {
    s.dispose();
  }
}

/** Read back every tensor of a record. */
async function readAll<K extends string>(o: Record<K, tf.Tensor>, image: boolean): Promise<Record<K, Tensor>> {
  const out = {} as Record<K, Tensor>;
  for (const k of Object.keys(o) as K[]) out[k] = await fromTf(o[k], image);
  return out;
}

/** The tfjs reference as an implementation of the operation vocabulary. */
export function referenceOps(): DiffusionOps {
  return {
    name: `reference (tfjs, ${tf.getBackend()})`,
    precision: 'float32',
    ...diffusersReferenceOps(),

    schedule: (a) =>
      run('schedule', async () => {
        const betas =
          a.family === 'ho'
            ? hoBetaSchedule(a.name, a.beta_start as number, a.beta_end as number, a.T)
            : a.family === 'improved'
              ? improvedBetaSchedule(a.name, a.T, a.max_beta)
              : (() => {
                  throw new OpError(`schedule: family must be 'ho' or 'improved', got ${JSON.stringify(a.family)}`);
                })();
        return { betas: { shape: [betas.length], data: betas } };
      }),

    buffers: (a) =>
      run('buffers', async () => {
        checkTensor('buffers', 'betas', a?.betas);
        const b = computeBuffers(a.betas.data);
        return Object.fromEntries(BUFFER_NAMES.map((n) => [n, { shape: [b[n].length], data: Float64Array.from(b[n]) }])) as Record<BufferName, Tensor>;
      }),

    q_sample: (a, x0, t, noise) =>
      run('q_sample', async (s) => {
        const d = diffusion('q_sample', a, s);
        const y = s.add(qSample(d, toTf('q_sample', 'x_start', x0, s, true), timesteps('q_sample', t), toTf('q_sample', 'noise', noise, s, true)));
        return { x_t: await fromTf(y, true) };
      }),

    q_mean_variance: (a, x0, t) =>
      run('q_mean_variance', async (s) => {
        const d = diffusion('q_mean_variance', a, s);
        const r = s.addAll(qMeanVariance(d, toTf('q_mean_variance', 'x_start', x0, s, true), timesteps('q_mean_variance', t)));
        return readAll({ mean: r.mean, variance: r.variance, log_variance: r.logVariance }, true);
      }),

    q_posterior_mean_variance: (a, x0, xt, t) =>
      run('q_posterior_mean_variance', async (s) => {
        const op = 'q_posterior_mean_variance';
        const d = diffusion(op, a, s);
        const r = s.addAll(qPosteriorMeanVariance(d, toTf(op, 'x_start', x0, s, true), toTf(op, 'x_t', xt, s, true), timesteps(op, t)));
        return readAll({ mean: r.mean, variance: r.variance, log_variance_clipped: r.logVarianceClipped }, true);
      }),

    predict_xstart_from_eps: (a, xt, t, eps) =>
      run('predict_xstart_from_eps', async (s) => {
        const op = 'predict_xstart_from_eps';
        const d = diffusion(op, a, s);
        const y = s.add(predictXstartFromEps(d, toTf(op, 'x_t', xt, s, true), timesteps(op, t), toTf(op, 'eps', eps, s, true)));
        return { pred_xstart: await fromTf(y, true) };
      }),

    predict_xstart_from_xprev: (a, xt, t, xprev) =>
      run('predict_xstart_from_xprev', async (s) => {
        const op = 'predict_xstart_from_xprev';
        const d = diffusion(op, a, s);
        const y = s.add(predictXstartFromXprev(d, toTf(op, 'x_t', xt, s, true), timesteps(op, t), toTf(op, 'xprev', xprev, s, true)));
        return { pred_xstart: await fromTf(y, true) };
      }),

    predict_eps_from_xstart: (a, xt, t, x0) =>
      run('predict_eps_from_xstart', async (s) => {
        const op = 'predict_eps_from_xstart';
        const d = diffusion(op, a, s);
        const y = s.add(predictEpsFromXstart(d, toTf(op, 'x_t', xt, s, true), timesteps(op, t), toTf(op, 'pred_xstart', x0, s, true)));
        return { eps: await fromTf(y, true) };
      }),

    p_mean_variance: (a, m, x, t) =>
      run('p_mean_variance', async (s) => {
        const op = 'p_mean_variance';
        const d = diffusion(op, a, s);
        const xs = toTf(op, 'x', x, s, true);
        const tv = timesteps(op, t);
        const r = s.addAll(
          m?.kind === 'output'
            ? pMeanVarianceOfOutput(d, toTf(op, 'model.output', m.output, s, true), xs, tv, { clipDenoised: a.clip_denoised })
            : pMeanVariance(d, model(op, m, s), xs, tv, { clipDenoised: a.clip_denoised }),
        );
        return readAll({ mean: r.mean, variance: r.variance, log_variance: r.logVariance, pred_xstart: r.predXstart }, true);
      }),

    normal_kl: (m1, l1, m2, l2) =>
      run('normal_kl', async (s) => {
        const op = 'normal_kl';
        const kl = s.add(normalKl(toTf(op, 'mean1', m1, s, false), toTf(op, 'logvar1', l1, s, false), toTf(op, 'mean2', m2, s, false), toTf(op, 'logvar2', l2, s, false)));
        return { kl: await fromTf(kl, false) };
      }),

    approx_standard_normal_cdf: (x) =>
      run('approx_standard_normal_cdf', async (s) => {
        const y = s.add(approxStandardNormalCdf(toTf('approx_standard_normal_cdf', 'x', x, s, false)));
        return { cdf: await fromTf(y, false) };
      }),

    discretized_gaussian_log_likelihood: (x, means, ls) =>
      run('discretized_gaussian_log_likelihood', async (s) => {
        const op = 'discretized_gaussian_log_likelihood';
        const y = s.add(discretizedGaussianLogLikelihood(toTf(op, 'x', x, s, false), toTf(op, 'means', means, s, false), toTf(op, 'log_scales', ls, s, false)));
        return { log_probs: await fromTf(y, false) };
      }),

    training_losses: (a, m, x0, t, noise) =>
      run('training_losses', async (s) => {
        const op = 'training_losses';
        const d = diffusion(op, a, s, { loss_type: a.loss_type });
        if (m?.kind !== 'tiny') throw new OpError(`${op}: model must be the TinyModel {kind: 'tiny', W, bias, tw}`);
        const W = toTf(op, 'model.W', m.W, s, false) as tf.Tensor2D;
        const bias = toTf(op, 'model.bias', m.bias, s, false) as tf.Tensor1D;
        const tw = toTf(op, 'model.tw', m.tw, s, false) as tf.Tensor1D;
        const xs = toTf(op, 'x_start', x0, s, true);
        const ns = toTf(op, 'noise', noise, s, true);
        const tv = timesteps(op, t);
        const loss = (p: { W: tf.Tensor2D; bias: tf.Tensor1D; tw: tf.Tensor1D }): TrainingTerms => trainingLosses(d, tinyModel(p), xs, tv, ns);
        const terms = s.addAll(loss({ W, bias, tw }));
        const outTerms: Record<string, Tensor> = {};
        for (const [k, v] of Object.entries(terms)) if (v) outTerms[k] = await fromTf(v, false);
        if (!a.grads) return { terms: outTerms };
        const grads: Record<string, { W: Tensor; bias: Tensor; tw: Tensor }> = {};
        for (const k of Object.keys(outTerms)) {
          const g = tf.grads((w: tf.Tensor, b: tf.Tensor, v: tf.Tensor) => {
            const r = loss({ W: w as tf.Tensor2D, bias: b as tf.Tensor1D, tw: v as tf.Tensor1D }) as Record<string, tf.Tensor | undefined>;
            const term = r[k]!;
            const total = tf.sum(term);
            tf.dispose(Object.values(r).filter((x) => x !== undefined && x !== term) as tf.Tensor[]);
            return total;
          })([W, bias, tw]);
          s.addAll({ W: g[0], bias: g[1], tw: g[2] });
          grads[k] = { W: await fromTf(g[0], false), bias: await fromTf(g[1], false), tw: await fromTf(g[2], false) };
        }
        return { terms: outTerms, grads };
      }),

    calc_bpd_loop: (a, m, x0, noise) =>
      run('calc_bpd_loop', async (s) => {
        const op = 'calc_bpd_loop';
        const d = diffusion(op, a, s);
        const xs = toTf(op, 'x_start', x0, s, true);
        checkTensor(op, 'noise_per_step_in_loop_order', noise);
        // [T, B, C, H, W] → [T, B, H, W, C]
        const n = s.add(toTf(op, 'noise_per_step_in_loop_order', { shape: [noise.shape[0] * noise.shape[1], ...noise.shape.slice(2)], data: noise.data }, s, true).reshape([noise.shape[0], ...xs.shape]));
        // All timesteps in one batch (the steps are independent given their noise), except for a fixed model
        // output, which has the batch of x_start and so is evaluated one timestep at a time.
        const stepsPerBatch = m?.kind === 'output' ? 1 : d.T;
        const r = s.addAll(await calcBpdLoop(d, model(op, m, s), xs, { clipDenoised: a.clip_denoised, noise: n, stepsPerBatch }));
        return readAll({ total_bpd: r.totalBpd, prior_bpd: r.priorBpd, vb: r.vb, xstart_mse: r.xstartMse, mse: r.mse }, false);
      }),

    timestep_embedding: (a, t) =>
      run('timestep_embedding', async (s) => {
        checkTensor('timestep_embedding', 't', t);
        checkFinite('timestep_embedding', 't', t);
        const e = s.add(timestepEmbedding(Array.from(t.data), a.dim, a.flavor));
        return { embedding: await fromTf(e, false) };
      }),

    p_sample_step: (a, m, x, t, noise) =>
      run('p_sample_step', async (s) => {
        const op = 'p_sample_step';
        const d = diffusion(op, a, s);
        const r = s.addAll(pSample(d, model(op, m, s), toTf(op, 'x', x, s, true), timesteps(op, t), toTf(op, 'noise', noise, s, true), { clipDenoised: a.clip_denoised }));
        return readAll({ sample: r.sample, pred_xstart: r.predXstart }, true);
      }),

    ddim_step: (a, m, x, t, noise) =>
      run('ddim_step', async (s) => {
        const op = 'ddim_step';
        const d = diffusion(op, a, s);
        const r = s.addAll(
          ddimSample(d, model(op, m, s), toTf(op, 'x', x, s, true), timesteps(op, t), toTf(op, 'noise', noise, s, true), { clipDenoised: a.clip_denoised, eta: a.eta }),
        );
        return readAll({ sample: r.sample, pred_xstart: r.predXstart }, true);
      }),

    ddim_reverse_step: (a, m, x, t) =>
      run('ddim_reverse_step', async (s) => {
        const op = 'ddim_reverse_step';
        const d = diffusion(op, a, s);
        const r = s.addAll(ddimReverseSample(d, model(op, m, s), toTf(op, 'x', x, s, true), timesteps(op, t), { clipDenoised: a.clip_denoised }));
        return readAll({ sample: r.sample, pred_xstart: r.predXstart }, true);
      }),

    space_timesteps: (a) => run('space_timesteps', async () => ({ timesteps: spaceTimesteps(a.num_timesteps, a.section_counts) })),

    respace: (a) =>
      run('respace', async () => {
        checkTensor('respace', 'betas', a?.betas);
        const r = respaceBetas(a.betas.data, a.use_timesteps);
        return { betas: { shape: [r.betas.length], data: r.betas }, timestep_map: r.timestepMap };
      }),
  };
}
