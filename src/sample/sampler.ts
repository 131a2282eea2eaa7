/**
 * Sampling images from a UNet checkpoint on the current thread's tfjs backend.
 *
 * Randomness: image k of a run (0-based, k < n) draws x_T and then every step's noise from its own stream,
 * the k-th `split()` of `new Rng(seed)`, in NHWC order. The images therefore do not depend on how the
 * batch is divided into chunks or spread over worker threads: the same seed gives the same grid.
 *
 * Schedules: `steps` (ancestral) or `ddim.steps` below the checkpoint's T respace the process as
 * improved-diffusion does (`space_timesteps(T, [steps])`; DDIM prefers the `ddimN` integer stride and falls
 * back to evenly spaced sections when no integer stride gives N); the model is shown the original timesteps.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { Rng } from '../numeric/rng.ts';
import { GaussianDiffusion } from '../../reference/diffusion/buffers.ts';
import { ddimSampleLoopProgressive, pSampleLoopProgressive, type LoopStep } from '../../reference/diffusion/sampling.ts';
import { hoBetaSchedule, respaceBetas, spaceTimesteps } from '../../reference/diffusion/schedules.ts';
import type { DiffusionSettings } from '../../reference/unet/checkpoint.ts';
import type { UNetConfig } from '../../reference/unet/config.ts';
import { unetDenoiser } from '../../reference/unet/denoiser.ts';
import type { UNetParams } from '../../reference/unet/params.ts';

/** How to sample: ancestral (Ho et al.) with `steps` steps, or DDIM with `steps` steps and stochasticity η. */
export const SamplingMethod = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('ancestral'), steps: z.number().int().positive() }).strict(),
  z.object({ kind: z.literal('ddim'), steps: z.number().int().positive(), eta: z.number().finite().min(0) }).strict(),
]);
export type SamplingMethod = z.infer<typeof SamplingMethod>;

/** The respaced diffusion a method runs on (the caller disposes it). */
export function diffusionFor(settings: DiffusionSettings, method: SamplingMethod): GaussianDiffusion {
  const T = settings.num_diffusion_timesteps;
  if (method.steps > T) throw new Error(`sample: ${method.steps} steps asked for, but the checkpoint's diffusion has only T = ${T}`);
  const betas = hoBetaSchedule(settings.beta_schedule, settings.beta_start, settings.beta_end, T);
  const modelVarType = settings.model_var_type === 'fixedlarge' ? 'FIXED_LARGE' : 'FIXED_SMALL';
  if (method.steps === T) return new GaussianDiffusion({ betas, modelMeanType: 'EPSILON', modelVarType });
  let keep: number[];
  if (method.kind === 'ddim') {
    try {
      keep = spaceTimesteps(T, `ddim${method.steps}`);
    } catch {
      keep = spaceTimesteps(T, [method.steps]);
    }
  } else keep = spaceTimesteps(T, [method.steps]);
  const r = respaceBetas(betas, keep);
  return new GaussianDiffusion({ betas: r.betas, timestepMap: r.timestepMap, modelMeanType: 'EPSILON', modelVarType });
}

/** The per-image random streams of a run: stream k is the k-th split of `new Rng(seed)`. */
export function imageStreams(seed: number, indices: readonly number[]): Rng[] {
  const root = new Rng(seed);
  const max = Math.max(-1, ...indices);
  const all: Rng[] = [];
  for (let k = 0; k <= max; k++) all.push(root.split());
  return indices.map((k) => all[k]);
}

/** Standard normal draws for a batch, one stream per image, as an NHWC tensor. */
function drawBatch(streams: Rng[], per: number, shape: number[]): tf.Tensor {
  const data = new Float32Array(streams.length * per);
  streams.forEach((s, i) => {
    for (let j = 0; j < per; j++) data[i * per + j] = s.normal();
  });
  return tf.tensor(data, shape, 'float32');
}

/** A progress report: how many loop steps this chunk has finished. */
export interface StepReport {
  /** Images in the chunk. */
  images: number;
  /** 0-based loop step just finished. */
  step: number;
  /** Loop steps in total. */
  steps: number;
  /** Its timestep (0-based, respaced index). */
  t: number;
}

/** Options of {@link sampleChunk}. */
export interface ChunkOptions {
  unet: UNetConfig;
  params: UNetParams;
  diffusion: DiffusionSettings;
  method: SamplingMethod;
  seed: number;
  /** Which images of the run (0-based) this chunk makes. */
  indices: readonly number[];
  onStep?: (r: StepReport) => void;
  /** Called with x̂₀ (NHWC data of the chunk's images) after loop steps where `frameEvery` divides step + 1, and after the last. */
  frameEvery?: number;
  onFrame?: (step: number, predXstart: Float32Array) => void;
  /** Clip x̂₀ to [−1, 1] (default true, as Ho et al.). */
  clipDenoised?: boolean;
}

/**
 * Sample the images `indices` of a run in one batch on the current backend; returns their NHWC data in [−1, 1]
 * (approximately: the final mean is not clipped). Leaves no tensors behind.
 */
export async function sampleChunk(o: ChunkOptions): Promise<Float32Array> {
  const method = SamplingMethod.parse(o.method);
  const { resolution: r, in_channels: c, out_ch } = o.unet;
  if (out_ch !== c) throw new Error(`sample: the model predicts ε with ${out_ch} channels but images have ${c}; only ε-prediction models with out_ch = in_channels can be sampled`);
  const per = r * r * c;
  const shape = [o.indices.length, r, r, c];
  const streams = imageStreams(o.seed, o.indices);
  const d = diffusionFor(o.diffusion, method);
  const model = unetDenoiser(o.unet, o.params);
  const xT = drawBatch(streams, per, shape);
  const clipDenoised = o.clipDenoised ?? true;
  const needNoise = method.kind === 'ancestral' || method.eta > 0;
  const noise = (): tf.Tensor => drawBatch(streams, per, shape);
  try {
    const loop: AsyncGenerator<LoopStep, void, void> =
      method.kind === 'ancestral'
        ? pSampleLoopProgressive(d, model, xT, { clipDenoised, noise })
        : ddimSampleLoopProgressive(d, model, xT, { clipDenoised, eta: method.eta, ...(needNoise ? { noise } : {}) });
    let out: Float32Array | null = null;
    for await (const s of loop) {
      o.onStep?.({ images: o.indices.length, step: s.step, steps: d.T, t: s.t });
      const last = s.step === d.T - 1;
      if (o.onFrame && o.frameEvery && ((s.step + 1) % o.frameEvery === 0 || last)) o.onFrame(s.step, (await s.predXstart.data()) as Float32Array);
      if (last) out = (await s.sample.data()) as Float32Array;
    }
    if (out === null) throw new Error('sample: the loop ended without a final sample');
    return out;
  } finally {
    xT.dispose();
    d.dispose();
  }
}
