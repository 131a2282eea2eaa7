/**
 * The spec's diffusers conventions (`spec/ddpm/diffusers.ts`) as the diffusers operations of the vocabulary.
 * Translation only: the batch (leading axis) is split into examples, each handed to the spec as one flat vector;
 * for the learned variance types each example's first half (its first C channels, NCHW) is the prediction and the
 * second half the variance part, as diffusers splits the model output.
 *
 * @module
 */
import {
  diffusersBuffers,
  diffusersDdimPreviousTimestep,
  diffusersDdimStep,
  diffusersDdpmStep,
  diffusersDdpmVariance,
  diffusersPreviousTimestep,
  diffusersTimesteps,
  type DiffusersBuffers,
  type DiffusersStep,
} from '../../../spec/ddpm/index.ts';
import type { DiffusersArgs, DiffusersOps } from '../diffusersOps.ts';
import { OpError, type Tensor } from '../ops.ts';

const vec = (v: ArrayLike<number>, shape = [v.length]): Tensor => ({ shape, data: Float64Array.from(v) });

function buffersOf(a: DiffusersArgs): DiffusersBuffers {
  const { num_inference_steps: _n, t: _t, eta: _e, use_clipped_model_output: _u, ...config } = a as DiffusersArgs & Record<string, unknown>;
  return diffusersBuffers(config as never);
}

/** Run a one-example step over the batch; returns NCHW prev_sample and pred_original_sample. */
function perExample(op: string, modelOutput: Tensor, sample: Tensor, noise: Tensor, learned: boolean, step: (x: Float64Array, out: Float64Array, z: Float64Array, pv?: Float64Array) => DiffusersStep) {
  const B = sample.shape[0];
  if (!(B > 0)) throw new OpError(`${op}: sample must have a leading batch axis, got shape [${sample.shape.join(',')}]`);
  const D = sample.data.length / B;
  const per = learned ? 2 * D : D;
  if (modelOutput.data.length !== B * per) throw new OpError(`${op}: model_output must have ${learned ? '2C' : 'C'} channels (${B * per} values), got shape [${modelOutput.shape.join(',')}]`);
  if (noise.data.length !== B * D) throw new OpError(`${op}: noise must have the shape of sample [${sample.shape.join(',')}], got [${noise.shape.join(',')}]`);
  const prev = new Float64Array(B * D);
  const x0 = new Float64Array(B * D);
  for (let b = 0; b < B; b++) {
    const out = modelOutput.data.subarray(b * per, b * per + D);
    const pv = learned ? modelOutput.data.subarray(b * per + D, (b + 1) * per) : undefined;
    const r = step(sample.data.subarray(b * D, (b + 1) * D), out, noise.data.subarray(b * D, (b + 1) * D), pv);
    prev.set(r.prevSample, b * D);
    x0.set(r.predOriginalSample, b * D);
  }
  return { prev_sample: vec(prev, [...sample.shape]), pred_original_sample: vec(x0, [...sample.shape]) };
}

/** The diffusers operations on the spec. */
export function diffusersSpecOps(): DiffusersOps {
  return {
    async diffusers_buffers(a) {
      const b = buffersOf(a);
      return { betas: vec(b.betas), alphas: vec(b.alphas), alphas_cumprod: vec(b.alphasCumprod), final_alpha_cumprod: { shape: [], data: Float64Array.of(b.finalAlphaCumprod) } };
    },
    async diffusers_set_timesteps(a) {
      return { timesteps: vec(diffusersTimesteps(buffersOf(a).config, a.num_inference_steps)) };
    },
    async diffusers_ddpm_variance(a, pv) {
      const b = buffersOf(a);
      const ts = a.num_inference_steps ? diffusersTimesteps(b.config, a.num_inference_steps) : undefined;
      const v = diffusersDdpmVariance(b, a.t, diffusersPreviousTimestep(a.t, ts), b.config.variance_type, pv.data);
      return { variance: v.length === 1 ? { shape: [], data: Float64Array.from(v) } : vec(v, [...pv.shape]) };
    },
    async diffusers_ddpm_step(a, modelOutput, sample, noise) {
      const b = buffersOf(a);
      const ts = a.num_inference_steps ? diffusersTimesteps(b.config, a.num_inference_steps) : undefined;
      const prevT = diffusersPreviousTimestep(a.t, ts);
      const learned = b.config.variance_type === 'learned' || b.config.variance_type === 'learned_range';
      return perExample('diffusers_ddpm_step', modelOutput, sample, noise, learned, (x, out, z, pv) => diffusersDdpmStep(b, a.t, prevT, x, out, z, pv));
    },
    async diffusers_ddim_step(a, modelOutput, sample, noise) {
      const b = buffersOf(a);
      const prevT = diffusersDdimPreviousTimestep(b.config, a.t, a.num_inference_steps);
      return perExample('diffusers_ddim_step', modelOutput, sample, noise, false, (x, out, z) => diffusersDdimStep(b, a.t, prevT, x, out, a.eta, z, a.use_clipped_model_output));
    },
  };
}
