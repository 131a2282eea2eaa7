import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { override } from '../../src/numeric/tolerance.ts';
import { GaussianDiffusion } from '../../reference/diffusion/buffers.ts';
import { ddimSample, pSample } from '../../reference/diffusion/sampling.ts';
import { hoBetaSchedule } from '../../reference/diffusion/schedules.ts';
import { unetDenoiser } from '../../reference/unet/denoiser.ts';
import type { UNetConfig } from '../../reference/unet/config.ts';
import { disposeParams, type UNetParams } from '../../reference/unet/params.ts';
import { loadGoldenModel, nchwData, nhwc, readJson, SAMPLING_FILE, tensorAt, valueAt } from './golden.ts';

/** Golden README: UNet sampling runs compared step by step from the reference's own previous state, rtol/atol 1e−4. */
const STEP = override({ rtol: 1e-4, atol: 1e-4 }, 'one UNet step in float32 vs PyTorch: convolution summation order (golden README)');

const root = readJson(SAMPLING_FILE);
type Run = { impl: string; model_var_type?: string; eta?: number };
const runs = valueAt(root, 'runs', SAMPLING_FILE) as Run[];
const args = valueAt(root, 'meta.args', SAMPLING_FILE) as { beta_schedule: string; beta_start: number; beta_end: number; num_diffusion_timesteps: number; model_cfg: unknown };

let config: UNetConfig;
let params: UNetParams;
beforeAll(() => {
  const m = loadGoldenModel();
  config = m.config;
  params = m.params;
  for (const p of Object.values(params)) tf.keep(p);
  expect(config).toEqual(m.ioConfig);
});
afterAll(() => disposeParams(params));

/** Index of the run whose noise a run uses: the improved ancestral runs replay the preceding pesser run's noise. */
function noiseRun(i: number): number {
  return runs[i].impl.includes('noise replayed from the pesser run') ? i - 1 : i;
}

/**
 * Replay run `r` step by step: step i gets the reference's own x_t (x_T for i = 0, trajectory[i−1] after) and
 * its noise[i], at t = T−1−i, and must return trajectory[i] and pred_xstart[i]. The steps do not depend on each
 * other's results, so all T steps of both images run as one batch of T·2 examples with per-example timesteps
 * (one UNet call per run: cheap enough for the slow backends).
 */
async function replay(
  r: number,
  step: (d: GaussianDiffusion, x: tf.Tensor, t: number[], noise: tf.Tensor) => { sample: tf.Tensor; predXstart: tf.Tensor },
  varType: 'FIXED_LARGE' | 'FIXED_SMALL',
): Promise<number> {
  const T = args.num_diffusion_timesteps;
  const betas = hoBetaSchedule(args.beta_schedule, args.beta_start, args.beta_end, T);
  const d = new GaussianDiffusion({ betas, modelMeanType: 'EPSILON', modelVarType: varType });
  const traj = tensorAt(root, `runs.${r}.trajectory`, SAMPLING_FILE);
  const pred = tensorAt(root, `runs.${r}.pred_xstart`, SAMPLING_FILE);
  const noise = tensorAt(root, `runs.${noiseRun(r)}.noise`, SAMPLING_FILE);
  const xT = tensorAt(root, 'x_T', SAMPLING_FILE);
  const [B, ...img] = xT.shape;
  const per = xT.shape.reduce((a, b) => a * b, 1);
  // Inputs of steps 0 … T−1 stacked: [x_T, trajectory[0], …, trajectory[T−2]] → [T·B, C, H, W].
  const inputs = new Float64Array(T * per);
  inputs.set(xT.data, 0);
  inputs.set(traj.data.subarray(0, (T - 1) * per), per);
  const ts = Array.from({ length: T * B }, (_, k) => T - 1 - Math.floor(k / B));
  const x = nhwc({ shape: [T * B, ...img], data: inputs });
  const z = nhwc({ shape: [T * B, ...img], data: noise.data });
  try {
    const out = step(d, x, ts, z);
    const [sample, predX] = [await nchwData(out.sample), await nchwData(out.predXstart)];
    tf.dispose([out.sample, out.predXstart]);
    for (let i = 0; i < T; i++) {
      const what = `run ${r} (${runs[r].impl}), loop step ${i}, t = ${T - 1 - i}`;
      const part = (a: ArrayLike<number> & { subarray(a: number, b: number): ArrayLike<number> }) => a.subarray(i * per, (i + 1) * per);
      expect(part(sample)).toBeCloseWithin(part(traj.data), STEP, { shape: xT.shape, what: `${what}: sample` });
      expect(part(predX)).toBeCloseWithin(part(pred.data), STEP, { shape: xT.shape, what: `${what}: pred_xstart` });
    }
  } finally {
    tf.dispose([x, z]);
    d.dispose();
  }
  return T;
}

describe('6.7 Sampling with the UNet against the reference loops (golden sampling_T10_ho_unet_small)', () => {
  it('the recorded improved-diffusion ancestral runs equal the pesser runs they replay (so one replay covers both)  [unet.sampling.goldenRunsAgree]', () => {
    for (const r of [1, 3]) {
      expect(noiseRun(r)).toBe(r - 1);
      expect(valueAt(root, `runs.${r}.max_abs_diff_vs_pesser_final`, SAMPLING_FILE)).toBe(0);
      expect(tensorAt(root, `runs.${r}.trajectory`, SAMPLING_FILE).data).toEqual(tensorAt(root, `runs.${r - 1}.trajectory`, SAMPLING_FILE).data);
    }
  });

  const ancestral = async (r: number, varType: 'FIXED_LARGE' | 'FIXED_SMALL') => {
    expect(runs[r].model_var_type).toBe(varType === 'FIXED_LARGE' ? 'fixedlarge' : 'fixedsmall');
    const model = unetDenoiser(config, params);
    expect(await replay(r, (d, x, t, z) => pSample(d, model, x, t, z, { clipDenoised: true }), varType)).toBe(10);
  };
  const ddim = async (r: number, eta: number) => {
    expect(runs[r].eta).toBe(eta);
    const model = unetDenoiser(config, params);
    expect(await replay(r, (d, x, t, z) => ddimSample(d, model, x, t, z, { clipDenoised: true, eta }), 'FIXED_LARGE')).toBe(10);
  };

  it('reproduces every ancestral step with β_t (fixedlarge) as the reverse variance  [unet.sampling.ancestralLargeGolden]', () => ancestral(0, 'FIXED_LARGE'));
  it('reproduces every ancestral step with β̃_t (fixedsmall) as the reverse variance  [unet.sampling.ancestralSmallGolden]', () => ancestral(2, 'FIXED_SMALL'));
  it('reproduces every deterministic DDIM step (η = 0)  [unet.sampling.ddimDeterministicGolden]', () => ddim(4, 0));
  it('reproduces every DDIM step with η = 1  [unet.sampling.ddimEtaOneGolden]', () => ddim(5, 1));
});
