import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../src/numeric/rng.ts';
import { sampleChunk } from '../../src/sample/sampler.ts';
import { UNetConfig } from '../../reference/unet/config.ts';
import { disposeParams, initParams } from '../../reference/unet/params.ts';

/** The smallest model the reference can build: one level of one residual block at 4×4, 32 channels (≈ 40 kernels per step). */
const MINIMAL = UNetConfig.parse({ ch: 32, out_ch: 1, ch_mult: [1], num_res_blocks: 1, attn_resolutions: [4], dropout: 0, resamp_with_conv: true, in_channels: 1, resolution: 4 });

/**
 * 1000 steps on the default backend (wasm, ≈ 8 s). The re-runs on the slow backends (cpu, software webgpu: 30–120 s
 * for 1000 steps) walk the same loop for 50 steps of the same T = 1000 process: the count is checked after every
 * step, so a leak shows from the third step on.
 */
const STEPS = tf.getBackend() === 'wasm' || tf.getBackend() === 'tensorflow' ? 1000 : 50;

describe('6.8 Sampling leaks no memory', () => {
  it('1000 ancestral steps (50 on the slow backends) keep the tensor count constant from step to step and leave it unchanged  [unet.sampling.noTensorLeak]', async () => {
    const params = initParams(MINIMAL, new Rng(1));
    const before = tf.memory().numTensors;
    const counts: number[] = [];
    const out = await sampleChunk({
      unet: MINIMAL,
      params,
      diffusion: { beta_schedule: 'linear', beta_start: 1e-4, beta_end: 0.02, num_diffusion_timesteps: 1000, model_var_type: 'fixedlarge' },
      method: { kind: 'ancestral', steps: STEPS },
      seed: 1,
      indices: [0, 1],
      onStep: () => counts.push(tf.memory().numTensors),
    });
    expect(counts.length).toBe(STEPS);
    expect(out.length).toBe(2 * 4 * 4);
    // During the loop only the current state and the diffusion's cached buffers are alive: no growth after step 2.
    expect(Math.max(...counts.slice(2)) - Math.min(...counts.slice(2))).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
    disposeParams(params);
  });
});
