/**
 * The benchmark's workloads and the tfjs side of running them: a UNet forward pass, one ancestral sampling
 * step (forward pass + posterior mean + noise, Ho et al.'s CIFAR-10 schedule at t = 500), and one training step
 * of Ho et al.'s recipe (the training code's `prepareTrainStep`: forward, L_simple, backward, clipping, Adam, EMA),
 * for a model and a batch size; a training step on one thread or on worker threads, with `train`'s micro-batch.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../numeric/rng.ts';
import { GaussianDiffusion } from '../../reference/diffusion/buffers.ts';
import { pSample } from '../../reference/diffusion/sampling.ts';
import { hoBetaSchedule } from '../../reference/diffusion/schedules.ts';
import { CIFAR10_CONFIG, SMALL_CONFIG, UNetConfig } from '../../reference/unet/config.ts';
import { unetDenoiser } from '../../reference/unet/denoiser.ts';
import { unetForward, type LayerKind } from '../../reference/unet/model.ts';
import { countParams, paramSpecs, type UNetParams } from '../../reference/unet/params.ts';
import { prepareTrainStep } from '../../reference/train/benchWorkload.ts';
import { autoMicroBatch, examplesPerThread } from '../../reference/train/parallelism.ts';

/** The models the benchmark times. */
export const BENCH_MODELS: Record<string, UNetConfig> = {
  cifar10: UNetConfig.parse(CIFAR10_CONFIG),
  small: UNetConfig.parse(SMALL_CONFIG),
};

export type WorkloadKind = 'forward' | 'step' | 'train';
export interface Workload {
  model: string;
  batch: number;
  kind: WorkloadKind;
}

/** Timing settings: at least `minReps` timed runs after one warm-up, more until `minTimeS` or `maxReps`. */
export interface TimingOptions {
  minTimeS: number;
  minReps: number;
  maxReps: number;
  /** A workload whose warm-up run takes longer than this is timed once (the warm-up is the measurement). */
  singleRunAboveS: number;
  /**
   * Keep warming up until this many seconds have passed (at least one run; absent: one run). JavaScript is
   * optimised by V8 only after many calls: the small UNet's forward pass at batch 8 takes ~52 ms for its first ~25
   * runs and ~30 ms from then on, so one warm-up run timed the engine's start-up, not the per-call cost of a long
   * sampling or training loop.
   */
  warmupS?: number;
}

/**
 * Parameters for timing: uniform on ±1/√fan_in everywhere (also where the reference initialises to zero, so
 * that no layer computes on zeros), norms γ = 1, β = 0.
 */
export function benchParams(c: UNetConfig, seed = 1): UNetParams {
  const rng = new Rng(seed);
  const p: UNetParams = {};
  for (const s of paramSpecs(c)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    if (s.kind === 'norm_scale') v.fill(1);
    else if (s.kind !== 'norm_shift') {
      const b = 1 / Math.sqrt(s.fanIn);
      for (let i = 0; i < n; i++) v[i] = (2 * rng.uniform() - 1) * b;
    }
    p[s.name] = tf.tensor(v, s.shape, 'float32');
  }
  return p;
}

/** A prepared workload on the current backend: `run()` executes it once and waits for the result. */
export interface Prepared {
  run: () => Promise<void>;
  dispose: () => void | Promise<void>;
}

let diffusion: GaussianDiffusion | null = null;
function cifarDiffusion(): GaussianDiffusion {
  diffusion ??= new GaussianDiffusion({ betas: hoBetaSchedule('linear', 1e-4, 0.02, 1000), modelMeanType: 'EPSILON', modelVarType: 'FIXED_LARGE' });
  return diffusion;
}

/** How a training step is run: worker threads (1: the engine's own thread) and the micro-batch per thread. */
export interface TrainVariant {
  workers: number;
  microBatch?: number;
}

/**
 * The micro-batch `ddpm-spec train` would take for a training step of `w` with `workers` threads on `backend`
 * (its memory rule, `autoMicroBatch`; undefined: one pass).
 */
export function trainMicroBatch(w: Workload, backend: string, workers: number, totalMemBytes: number): number | undefined {
  const c = BENCH_MODELS[w.model];
  return autoMicroBatch({ kind: 'unet', unet: c }, countParams(c), backend, examplesPerThread(w.batch, workers), totalMemBytes);
}

/** Prepare a training step of `w` run as `v` (a fresh model, optimiser state and, for several workers, worker threads). */
export function prepareTrain(w: Workload, v: TrainVariant): Promise<Prepared> {
  return prepareTrainStep(BENCH_MODELS[w.model], w.batch, v);
}

/** Prepare a workload with given parameters (inputs drawn once; the parameters are the caller's). */
export function prepare(w: Workload, params: UNetParams, timer?: (k: LayerKind, ms: number) => void): Prepared {
  const c = BENCH_MODELS[w.model];
  if (w.kind === 'train') throw new Error('prepare: a training step is prepared by prepareTrain');
  const rng = new Rng(2);
  const shape: [number, number, number, number] = [w.batch, c.resolution, c.resolution, c.in_channels];
  const n = shape.reduce((a, b) => a * b, 1);
  const x = tf.tensor4d(Float32Array.from(rng.normals(n)), shape);
  if (w.kind === 'forward') {
    const t = tf.tensor1d(new Array<number>(w.batch).fill(500), 'int32');
    return {
      run: async () => {
        const y = unetForward(c, params, x, t, timer ? { timer } : {});
        await y.data();
        y.dispose();
      },
      dispose: () => tf.dispose([x, t]),
    };
  }
  const noise = tf.tensor4d(Float32Array.from(rng.normals(n)), shape);
  const d = cifarDiffusion();
  const model = unetDenoiser(c, params);
  const ts = new Array<number>(w.batch).fill(500);
  return {
    run: async () => {
      const s = pSample(d, model, x, ts, noise, { clipDenoised: true });
      await s.sample.data();
      tf.dispose([s.sample, s.predXstart]);
    },
    dispose: () => tf.dispose([x, noise]),
  };
}

/** Time a prepared workload: warm-up (`o.warmupS`), then repetitions; milliseconds of each timed run (the first run's in `warmupMs`). */
export async function timeRuns(p: Prepared, o: TimingOptions): Promise<{ times: number[]; warmupMs: number; warmupRuns: number }> {
  let t0 = performance.now();
  await p.run();
  const warmupMs = performance.now() - t0;
  if (warmupMs > o.singleRunAboveS * 1000) return { times: [warmupMs], warmupMs, warmupRuns: 0 };
  let warmupRuns = 1;
  while (performance.now() - t0 < (o.warmupS ?? 0) * 1000) {
    await p.run();
    warmupRuns++;
  }
  const times: number[] = [];
  const start = performance.now();
  while (times.length < o.minReps || (times.length < o.maxReps && performance.now() - start < o.minTimeS * 1000)) {
    t0 = performance.now();
    await p.run();
    times.push(performance.now() - t0);
  }
  return { times, warmupMs, warmupRuns };
}

/** The median of a list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
