/**
 * Using a trained model: ancestral samples and test bits/dim, through the diffusion core's loops
 * (`pSampleLoopProgressive`, `calcBpdLoop`), with the noise drawn from a seeded stream.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FormatError } from '../../src/formats/errors.ts';
import { Rng } from '../../src/numeric/rng.ts';
import { calcBpdLoop } from '../diffusion/bpd.ts';
import type { GaussianDiffusion } from '../diffusion/buffers.ts';
import type { DenoiseModel } from '../diffusion/model.ts';
import { finalSample, pSampleLoopProgressive } from '../diffusion/sampling.ts';
import { CONFIG_FILE, loadCheckpoint } from '../unet/checkpoint.ts';
import { disposeParams } from '../unet/params.ts';
import { checkCheckpointFits, latestCheckpointDir, readTrainCheckpoint, restoreTensors } from './checkpoint.ts';
import { TrainConfig } from './config.ts';
import { createModel, type TrainableModel } from './model.ts';
import { disposeOptimState, emaWeights, initOptimState } from './optim.ts';

/** The model as the diffusion core calls it, in evaluation mode, with the given weights (default: its own). */
export function denoiser(model: TrainableModel, params?: ReadonlyMap<string, tf.Tensor>): DenoiseModel {
  return (x, tModel) => model.apply(x, tModel, params ? { params } : {});
}

/**
 * n ancestral samples x_T → x_0 (clipped x̂₀, as Ho et al. sample), returned as a [n, …exampleShape] tensor the
 * caller owns. x_T and the per-step noise come from `rng` (x_T first, then one draw per step).
 *
 * @param opts.clip - clip x̂₀ to [−1, 1] (images: true; 2-D toy data: false, it is not bounded)
 */
export async function sampleModel(
  model: TrainableModel,
  diffusion: GaussianDiffusion,
  n: number,
  rng: Rng,
  opts: { params?: ReadonlyMap<string, tf.Tensor>; clip: boolean; onStep?: (step: number, total: number) => void },
): Promise<tf.Tensor> {
  const shape = [n, ...model.exampleShape];
  const size = shape.reduce((a, b) => a * b, 1);
  const xT = tf.tensor(Float32Array.from(rng.normals(size)), shape, 'float32');
  try {
    const loop = pSampleLoopProgressive(diffusion, denoiser(model, opts.params), xT, {
      clipDenoised: opts.clip,
      noise: (step) => {
        opts.onStep?.(step, diffusion.T);
        return tf.tensor(Float32Array.from(rng.normals(size)), shape, 'float32');
      },
    });
    return await finalSample(loop);
  } finally {
    xT.dispose();
  }
}

/** Bits/dim of a set of examples: per-example totals and their mean with its standard error. */
export interface BpdSummary {
  /** Per-example total bits/dim. */
  perExample: Float64Array;
  mean: number;
  /** Standard error of the mean, s/√n (0 for n = 1). */
  standardError: number;
  /** Mean prior term L_T (bits/dim). */
  priorMean: number;
}

/**
 * The variational bound in bits/dim (`calcBpdLoop`, all T terms) on examples given as a flat float32 array
 * [count, …exampleShape] in [−1, 1] on the pixel grid, in batches; the noise of every term comes from `rng`.
 *
 * @param opts.stepsPerBatch - timesteps evaluated together (identical results, fewer launches)
 */
export async function bitsPerDim(
  model: TrainableModel,
  diffusion: GaussianDiffusion,
  examples: Float32Array,
  count: number,
  rng: Rng,
  opts: { params?: ReadonlyMap<string, tf.Tensor>; batchSize: number; stepsPerBatch?: number; onBatch?: (done: number, total: number) => void },
): Promise<BpdSummary> {
  const d = model.exampleShape.reduce((a, b) => a * b, 1);
  if (examples.length !== count * d) throw new RangeError(`bitsPerDim: ${examples.length} values are not ${count} examples of ${d}`);
  const per = new Float64Array(count);
  let prior = 0;
  for (let start = 0; start < count; start += opts.batchSize) {
    const b = Math.min(opts.batchSize, count - start);
    const shape = [b, ...model.exampleShape];
    const x0 = tf.tensor(examples.subarray(start * d, (start + b) * d), shape, 'float32');
    try {
      const res = await calcBpdLoop(diffusion, denoiser(model, opts.params), x0, {
        clipDenoised: true,
        noise: () => tf.tensor(Float32Array.from(rng.normals(b * d)), shape, 'float32'),
        stepsPerBatch: opts.stepsPerBatch,
      });
      const total = await res.totalBpd.data();
      const pr = await res.priorBpd.data();
      tf.dispose([res.totalBpd, res.priorBpd, res.vb, res.xstartMse, res.mse]);
      for (let i = 0; i < b; i++) {
        per[start + i] = total[i];
        prior += pr[i];
      }
    } finally {
      x0.dispose();
    }
    opts.onBatch?.(start + b, count);
  }
  let mean = 0;
  for (const v of per) mean += v;
  mean /= count;
  let ss = 0;
  for (const v of per) ss += (v - mean) ** 2;
  const standardError = count > 1 ? Math.sqrt(ss / (count - 1) / count) : 0;
  return { perExample: per, mean, standardError, priorMean: prior / count };
}

/**
 * A model (in evaluation mode, EMA weights when `ema`) and its training configuration from a checkpoint
 * directory: a training output directory (its newest checkpoint), a `ckpt-*` directory, or a sampling checkpoint
 * of `reference/unet` (config.json + safetensors, e.g. written by the PyTorch comparison run). The caller disposes
 * the model.
 */
export function loadForEvaluation(path: string, ema: boolean): { model: TrainableModel; config: TrainConfig; source: string; step: number | null } {
  if (!existsSync(path)) throw new FormatError(path, '', 'checkpoint directory does not exist');
  const trainDir = latestCheckpointDir(path);
  if (trainDir !== null) {
    const ck = readTrainCheckpoint(trainDir);
    const model = createModel(ck.state.config.model, new Rng(0));
    const optim = initOptimState(model.names, model.variables);
    try {
      checkCheckpointFits(ck, model);
      restoreTensors(ck, model, optim);
      if (ema) {
        const weights = emaWeights(optim);
        for (const n of model.names) model.variables.get(n)!.assign(weights.get(n)!);
        tf.dispose([...weights.values()]);
      }
    } catch (e) {
      model.dispose();
      throw e;
    } finally {
      disposeOptimState(optim);
    }
    return { model, config: ck.state.config, source: ck.file, step: ck.state.step };
  }
  if (existsSync(join(path, CONFIG_FILE))) {
    const loaded = loadCheckpoint(path, { ema: ema ? 'prefer' : false });
    const c = loaded.checkpoint;
    const config = TrainConfig.parse({
      model: { kind: 'unet', unet: c.unet },
      diffusion: {
        beta_schedule: c.diffusion.beta_schedule,
        beta_start: c.diffusion.beta_start,
        beta_end: c.diffusion.beta_end,
        num_diffusion_timesteps: c.diffusion.num_diffusion_timesteps,
        model_var_type: c.diffusion.model_var_type,
      },
    });
    const model = createModel(config.model, new Rng(0));
    for (const n of model.names) model.variables.get(n)!.assign(loaded.params[n]);
    disposeParams(loaded.params);
    return { model, config, source: loaded.weightsFile, step: null };
  }
  throw new FormatError(path, '', `no checkpoint here: expected a training output directory (with ckpt-* directories), a ckpt-* directory, or a directory with ${CONFIG_FILE}`);
}
