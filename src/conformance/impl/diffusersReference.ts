/**
 * The reference's diffusers schedulers (`reference/diffusion/diffusers.ts`, tfjs float32) as the diffusers
 * operations of the vocabulary. Translation only: the schedulers are rank-agnostic, so NCHW tensors go in as they
 * are; for the learned variance types the model output is split on the channel axis (axis 1), as diffusers does.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { DiffusersScheduler, type DiffusersSchedulerConfig } from '../../../reference/index.ts';
import type { DiffusersArgs, DiffusersOps } from '../diffusersOps.ts';
import type { Tensor } from '../ops.ts';

async function scheduler(a: DiffusersArgs): Promise<DiffusersScheduler> {
  const { num_inference_steps: n, buffers: _b, t: _t, eta: _e, use_clipped_model_output: _u, ...config } = a as DiffusersArgs & Record<string, unknown>;
  const s = await DiffusersScheduler.create(config as DiffusersSchedulerConfig);
  if (n) s.setTimesteps(n);
  return s;
}

const host = (v: ArrayLike<number>, shape = [v.length]): Tensor => ({ shape, data: Float64Array.from(v) });
const toTf = (t: Tensor): tf.Tensor => tf.tensor(Float32Array.from(t.data), t.shape, 'float32');

async function read(r: { prevSample: tf.Tensor; predOriginalSample: tf.Tensor }) {
  const [p, o] = await Promise.all([r.prevSample.data(), r.predOriginalSample.data()]);
  const shape = [...r.prevSample.shape];
  tf.dispose([r.prevSample, r.predOriginalSample]);
  return { prev_sample: host(p, shape), pred_original_sample: host(o, shape) };
}

/** The diffusers operations on the reference (the active tfjs backend). */
export function diffusersReferenceOps(): DiffusersOps {
  return {
    async diffusers_buffers(a) {
      const s = await scheduler(a);
      const alphas = Float32Array.from(s.betas, (b) => 1 - b);
      return { betas: host(s.betas), alphas: host(alphas), alphas_cumprod: host(s.alphasCumprod), final_alpha_cumprod: { shape: [], data: Float64Array.of(s.finalAlphaCumprod) } };
    },
    async diffusers_set_timesteps(a) {
      return { timesteps: host((await scheduler(a)).setTimesteps(a.num_inference_steps)) };
    },
    async diffusers_ddpm_variance(a, pv) {
      const s = await scheduler(a);
      const input = toTf(pv);
      const v = s.ddpmVariance(a.t, input);
      const out = host(await v.data(), [...v.shape]);
      tf.dispose([input, v]);
      return { variance: out };
    },
    async diffusers_ddpm_step(a, modelOutput, sample, noise) {
      const s = await scheduler(a);
      const learned = s.config.variance_type === 'learned' || s.config.variance_type === 'learned_range';
      const inputs = [toTf(modelOutput), toTf(sample), toTf(noise)];
      try {
        const r = tf.tidy(() => {
          const [m, pv] = learned ? tf.split(inputs[0], 2, 1) : [inputs[0], undefined];
          return s.ddpmStep(m, a.t, inputs[1], inputs[2], pv);
        });
        return await read(r);
      } finally {
        tf.dispose(inputs);
      }
    },
    async diffusers_ddim_step(a, modelOutput, sample, noise) {
      const s = await scheduler(a);
      const inputs = [toTf(modelOutput), toTf(sample), toTf(noise)];
      try {
        return await read(s.ddimStep(inputs[0], a.t, inputs[1], a.eta, inputs[2], a.use_clipped_model_output));
      } finally {
        tf.dispose(inputs);
      }
    },
  };
}
