/**
 * The reference's diffusers schedulers (reference/diffusion/diffusers.ts, tfjs float32) against the data recorded
 * from diffusers itself, against the spec, and diffusers' own test constants; and its memory.
 */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { DiffusersScheduler } from '../../reference/index.ts';
import { diffusersBuffers, diffusersTimesteps } from '../../spec/ddpm/index.ts';
import { decodeTensor } from '../../src/formats/jsonTensor.ts';
import { override } from '../../src/numeric/tolerance.ts';
import { BASE, BUFFER_TOL, ZSNR_TOL, fixture, flat, load, loopTol, noiseOf, sumAbs } from '../ddpm/diffusers.ts';

const SHAPE = [4, 3, 8, 8];
/** tfjs's sigmoid on wasm and webgpu uses its own exp: measured ≤ 4.6e−7 relative from torch's (≤ 4 float32 ulps). */
const SIGMOID_TOL = override({ rtol: 1e-6, atol: 0 }, "tfjs sigmoid on wasm/webgpu: its own exp, ≤ 4 float32 ulps from torch's (measured 4.5e−7)");

/** diffusers' dummy_model on a tensor: sample·t/(t+1) in float32. */
const dummy = (x: tf.Tensor, t: number): tf.Tensor => tf.tidy(() => x.mul(t).div(t + 1));

async function ddpmLoop(cfg: object, steps: number[], x0: tf.Tensor, noise: (i: number) => tf.Tensor): Promise<number[]> {
  const s = await DiffusersScheduler.create({ ...BASE, ...cfg } as never);
  let x = x0.clone();
  for (const [i, t] of steps.entries()) {
    const z = noise(i);
    const out = dummy(x, t);
    const r = s.ddpmStep(out, t, x, z);
    tf.dispose([x, z, out, r.predOriginalSample]);
    x = r.prevSample;
  }
  const v = Array.from(await x.data());
  x.dispose();
  return v;
}

describe('4.14 The reference runs diffusers\' schedulers (recorded from diffusers 58eb52c)', () => {
  it("float32 buffers of every beta schedule, with and without zero-SNR, equal diffusers' within the spec's bounds  [reference.diffusers.buffersEqUpstream]", async () => {
    const f = 'diffusers_buffers.json';
    for (const [i, c] of load(f).cases.entries()) {
      const s = await DiffusersScheduler.create(c.config);
      const where = `cases[${i}] ${c.scheduler} ${c.config.beta_schedule} zsnr=${c.config.rescale_betas_zero_snr}`;
      const tol = c.config.rescale_betas_zero_snr ? ZSNR_TOL : c.config.beta_schedule === 'sigmoid' ? SIGMOID_TOL : BUFFER_TOL;
      expect(Array.from(s.alphasCumprod), `${where} alphas_cumprod`).toBeCloseWithin(flat(c.alphas_cumprod, f, 'alphas_cumprod'), tol);
      expect(Array.from(s.betas), `${where} betas`).toBeCloseWithin(flat(c.betas, f, 'betas'), tol);
    }
  });

  it('set_timesteps agrees with the spec for every spacing, offset and n in 1…T (T = 1000)  [reference.diffusers.timestepsAgreesWithSpec]', async () => {
    for (const [spacing, off] of [['leading', 0], ['leading', 1], ['trailing', 0], ['linspace', 0]] as const) {
      const s = await DiffusersScheduler.create({ timestep_spacing: spacing, steps_offset: off });
      for (let n = 1; n <= 1000; n++) {
        const a = s.setTimesteps(n);
        const b = diffusersTimesteps({ timestep_spacing: spacing, steps_offset: off }, n);
        if (a.length !== b.length || a.some((v, i) => v !== b[i])) expect(a, `${spacing} offset ${off} n=${n}`).toEqual(b);
      }
    }
  });

  it('every recorded DDPM and DDIM loop is reproduced step by step (prev_sample, pred_original_sample) on the active backend  [reference.diffusers.loopsEqUpstream]', async () => {
    const f = 'diffusers_loops.json';
    const rec = load(f);
    const xT = decodeTensor(rec.x_T, f, 'x_T');
    const shape = xT.shape;
    const D = xT.data.length;
    for (const [ci, c] of rec.cases.entries()) {
      const s = await DiffusersScheduler.create(c.config);
      if (c.num_inference_steps) s.setTimesteps(c.num_inference_steps);
      const ts = flat(c.timesteps, f, 'timesteps');
      const field = (k: string) => flat(c[k], f, `cases[${ci}].${k}`);
      const [out, noise, prev, x0] = [field('model_output'), field('noise'), field('prev_sample'), field('pred_original_sample')];
      const learned = out.length === ts.length * 2 * D;
      for (let k = 0; k < ts.length; k++) {
        const xIn = k === 0 ? Array.from(xT.data) : prev.slice((k - 1) * D, k * D);
        if (!xIn.every(Number.isFinite)) continue; // fixed_large_log: diffusers' NaN (step 0 is compared below)
        const got = tf.tidy(() => {
          const x = tf.tensor(xIn, shape);
          const mo = tf.tensor(out.slice(k * D * (learned ? 2 : 1), (k + 1) * D * (learned ? 2 : 1)), learned ? [shape[0], 2 * shape[1], ...shape.slice(2)] : shape);
          const [m, pv] = learned ? tf.split(mo, 2, 1) : [mo, undefined];
          const z = tf.tensor(noise.slice(k * D, (k + 1) * D), shape);
          const r = c.scheduler === 'DDPMScheduler' ? s.ddpmStep(m, ts[k], x, z, pv) : s.ddimStep(m, ts[k], x, c.eta, z, c.use_clipped_model_output);
          return [r.prevSample, r.predOriginalSample];
        });
        const [p, o] = await Promise.all(got.map((g) => g.data()));
        tf.dispose(got);
        const tol = loopTol(s.alphasCumprod[ts[k]], xIn, out.slice(k * D, (k + 1) * D));
        const where = `cases[${ci}] ${c.scheduler} "${c.name}" step ${k} (t = ${ts[k]})`;
        expect(Array.from(o), `${where} pred_original_sample`).toBeCloseWithin(x0.slice(k * D, (k + 1) * D), tol);
        expect(Array.from(p), `${where} prev_sample`).toBeCloseWithin(prev.slice(k * D, (k + 1) * D), tol);
      }
    }
  });

  it('test_scheduler_ddpm.py test_full_loop_with_noise gives 387.9466 (tol 1e−2) and test_full_loop_no_noise 258.9606 on the reference  [reference.diffusers.upstreamDdpmLoops]', async () => {
    const x = tf.tensor(fixture(), SHAPE);
    const s = await DiffusersScheduler.create(BASE);
    const xt = tf.tidy(() => {
      const ab = s.alphasCumprod[1];
      return x.mul(Math.fround(Math.sqrt(ab))).add(tf.tensor(fixture(true), SHAPE).mul(Math.fround(Math.sqrt(Math.fround(1 - ab)))));
    });
    const z1 = noiseOf('ddpm.test_full_loop_with_noise');
    const withNoise = await ddpmLoop({}, [1, 0], xt, () => tf.tensor(z1, SHAPE));
    expect(Math.abs(sumAbs(withNoise) - 387.9466), `sum ${sumAbs(withNoise)}`).toBeLessThan(1e-2);
    const z = noiseOf('ddpm.test_full_loop_no_noise+with_v_prediction');
    const n = 768;
    const steps = Array.from({ length: 1000 }, (_, i) => 999 - i);
    const noNoise = await ddpmLoop({}, steps, x, (i) => (i < 999 ? tf.tensor(z.subarray(i * n, (i + 1) * n), SHAPE) : tf.zeros(SHAPE)));
    expect(Math.abs(sumAbs(noNoise) - 258.9606), `sum ${sumAbs(noNoise)}`).toBeLessThan(1e-2);
    tf.dispose([x, xt]);
  });

  it('test_scheduler_ddim.py: set_alpha_to_one either way gives 149.8295 / 149.0784 on the reference  [reference.diffusers.upstreamDdimLoops]', async () => {
    for (const [sta, want] of [[true, 149.8295], [false, 149.0784]] as const) {
      const s = await DiffusersScheduler.create({ ...BASE, set_alpha_to_one: sta, beta_start: 0.01 });
      let x = tf.tensor(fixture(), SHAPE);
      const zero = tf.zeros(SHAPE);
      for (const t of s.setTimesteps(10)) {
        const out = dummy(x, t);
        const r = s.ddimStep(out, t, x, 0, zero);
        tf.dispose([x, out, r.predOriginalSample]);
        x = r.prevSample;
      }
      const v = Array.from(await x.data());
      tf.dispose([x, zero]);
      expect(Math.abs(sumAbs(v) - want), `set_alpha_to_one=${sta}: sum ${sumAbs(v)}`).toBeLessThan(1e-2);
    }
  });

  it('DDPM and DDIM steps with thresholding, learned_range and zero-SNR leave tf.memory().numTensors unchanged  [reference.diffusers.noTensorLeak]', async () => {
    const n0 = tf.memory().numTensors;
    const s = await DiffusersScheduler.create({ variance_type: 'learned_range', thresholding: true, rescale_betas_zero_snr: true, prediction_type: 'v_prediction' });
    s.setTimesteps(5);
    const x = tf.randomNormal([2, 3, 2, 2], 0, 1, 'float32', 3);
    for (const t of s.timesteps!) {
      const pv = x.tanh();
      const r = s.ddpmStep(x, t, x, x, pv);
      const q = s.ddimStep(x, t, x, 0.5, x, true);
      tf.dispose([pv, r.prevSample, r.predOriginalSample, q.prevSample, q.predOriginalSample]);
    }
    x.dispose();
    expect(tf.memory().numTensors).toBe(n0);
  });

  it('float32 buffers agree with the spec\'s float32-buffer convention  [reference.diffusers.buffersAgreesWithSpec]', async () => {
    for (const beta_schedule of ['linear', 'scaled_linear', 'squaredcos_cap_v2', 'sigmoid'] as const) {
      const s = await DiffusersScheduler.create({ beta_schedule, num_train_timesteps: 200 });
      const b = diffusersBuffers({ beta_schedule, num_train_timesteps: 200, buffers: 'float32' });
      expect(Array.from(s.alphasCumprod), beta_schedule).toBeCloseWithin(b.alphasCumprod, BUFFER_TOL);
    }
  });
});
