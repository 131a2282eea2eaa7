/**
 * The training-step workload of the benchmark: one full step of the training loop (forward pass, backward
 * pass, gradient-norm clipping, Adam, EMA) for a UNet configuration and batch size, timed on the current tfjs
 * backend, and the same step in PyTorch (`src/python/train_step_bench.py`, the UNet of `src/python/unet_torch.py`,
 * 2 threads) in the same run, reported as ratios.
 *
 * Use it from the benchmark (`timeTrainSteps`, `torchTrainSteps`, `trainStepRows`) or on its own:
 *
 * ```
 * node --import tsx reference/train/benchWorkload.ts [--workloads cifar10:1,small:8,cifar10:8:2] [--min-time 10] [--json out.json] [--no-torch]
 * ```
 *
 * @module
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { writeFileAtomic } from '../../src/io/atomic.ts';
import { Rng } from '../../src/numeric/rng.ts';
import { installGradients } from '../grad/index.ts';
import { CIFAR10_CONFIG, SMALL_CONFIG, type UNetConfig } from '../unet/config.ts';
import { TrainConfig } from './config.ts';
import { diffusionFor, trainingStep } from './loop.ts';
import { createModel } from './model.ts';
import { GradientWorkers } from './parallel.ts';
import { disposeOptimState, initOptimState } from './optim.ts';

/** One benchmarked training step: a model configuration at a batch size. */
export interface TrainStepWorkload {
  /** `cifar10` (Ho et al.'s 35.7M-parameter model) or `small` (the golden data's 1.1M-parameter model). */
  model: 'cifar10' | 'small';
  batch: number;
  /** Accumulate the gradient over micro-batches of at most this many examples (`microbatch.ts`); undefined: one pass. */
  microBatch?: number;
  /** Compute the gradient on this many worker threads (`parallel.ts`, as `ddpm-spec train --workers`); undefined: this thread. */
  workers?: number;
}

export const TRAIN_STEP_MODELS: Record<TrainStepWorkload['model'], UNetConfig> = { cifar10: CIFAR10_CONFIG, small: SMALL_CONFIG };

/** The default workloads: the CIFAR-10 model at batch 1 (a step takes tens of seconds on a CPU) and the small one at 8. */
export const DEFAULT_TRAIN_STEP_WORKLOADS: TrainStepWorkload[] = [
  { model: 'cifar10', batch: 1 },
  { model: 'small', batch: 8 },
];

/** Repetition policy: at least `minReps`, then more until `minTimeS` has passed or `maxReps` is reached (after one warm-up step). */
export interface Reps {
  minTimeS: number;
  minReps: number;
  maxReps: number;
}
export const DEFAULT_REPS: Reps = { minTimeS: 10, minReps: 2, maxReps: 10 };

/** Timings of one workload. */
export interface TrainStepTiming extends TrainStepWorkload {
  times_ms: number[];
  median_ms: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Time training steps on the current backend (the recipe's optimiser settings, dropout as configured, random
 * images in [−1, 1], uniform timesteps, T = 1000), with the gradients of `reference/grad` installed: one
 * warm-up step, then {@link Reps}. A step's time includes its random draws (negligible) and ends when its loss
 * has been read back and the update applied.
 */
export async function timeTrainSteps(workloads: readonly TrainStepWorkload[], reps: Reps = DEFAULT_REPS, log?: (line: string) => void): Promise<TrainStepTiming[]> {
  const out: TrainStepTiming[] = [];
  for (const w of workloads) {
    const step = await prepareTrainStep(TRAIN_STEP_MODELS[w.model], w.batch, w);
    try {
      await step.run();
      const times: number[] = [];
      const start = performance.now();
      while (times.length < reps.minReps || (times.length < reps.maxReps && (performance.now() - start) / 1000 < reps.minTimeS)) {
        const t0 = performance.now();
        await step.run();
        times.push(performance.now() - t0);
      }
      out.push({ ...w, times_ms: times, median_ms: median(times) });
      log?.(`tfjs ${tf.getBackend()} train step ${w.model} b${w.batch}${w.microBatch ? ` (micro-batches of ${w.microBatch})` : ''}${w.workers && w.workers > 1 ? ` on ${w.workers} worker threads` : ''}: ${median(times).toFixed(0)} ms`);
    } finally {
      await step.dispose();
    }
  }
  return out;
}

/**
 * A training step prepared for timing (`timeTrainSteps`, `npm run bench`'s engines): `run()` performs one full
 * step (`trainingStep`, as `ddpm-spec train` runs it) on a fresh model of configuration `unet` at batch `batch`,
 * its gradient accumulated over micro-batches of at most `o.microBatch` examples when given, and computed on
 * `o.workers` worker threads when more than 1; `dispose()` frees it and closes the workers.
 */
export async function prepareTrainStep(
  unet: UNetConfig,
  batch: number,
  o: { microBatch?: number; workers?: number } = {},
): Promise<{ run: () => Promise<void>; dispose: () => Promise<void> }> {
  installGradients();
  const config = TrainConfig.parse({ model: { kind: 'unet', unet }, batch_size: batch });
  const rng = new Rng(0);
  const model = createModel(config.model, rng);
  const optim = initOptimState(model.names, model.variables);
  const diffusion = diffusionFor(config.diffusion);
  const free = (): void => {
    diffusion.dispose();
    disposeOptimState(optim);
    model.dispose();
  };
  let pool: GradientWorkers | undefined;
  try {
    if (o.workers !== undefined && o.workers > 1) pool = await GradientWorkers.start(o.workers, model, config, tf.getBackend(), o.microBatch);
  } catch (e) {
    free();
    throw e;
  }
  const shape = [batch, unet.resolution, unet.resolution, unet.in_channels];
  const size = shape.reduce((a, b) => a * b, 1);
  return {
    run: async () => {
      const x0 = Float32Array.from(rng.uniforms(size), (u) => 2 * u - 1);
      const t = Array.from({ length: batch }, () => rng.int(diffusion.T));
      const r = await trainingStep(model, diffusion, config.optim, optim, { x0, t, noise: Float32Array.from(rng.normals(size)), dropoutSeed: rng.int(2 ** 30), shape }, pool, o.microBatch);
      if (!Number.isFinite(r.loss)) throw new Error(`benchmark step: the loss is ${r.loss}`);
    },
    dispose: async () => {
      await pool?.close();
      free();
    },
  };
}

/** The PyTorch script's result. */
export interface TorchTrainSteps {
  torch: string;
  threads: number;
  results: TrainStepTiming[];
}

/**
 * Time the same steps in PyTorch (`/usr/bin/python3 src/python/train_step_bench.py`), `threads` threads.
 *
 * @param opts - `root`: the repository root (where `src/python` is)
 */
export async function torchTrainSteps(workloads: readonly TrainStepWorkload[], reps: Reps = DEFAULT_REPS, opts: { root: string; threads?: number; python?: string }): Promise<TorchTrainSteps> {
  const dir = mkdtempSync(join(tmpdir(), 'train-bench-'));
  try {
    const spec = join(dir, 'spec.json');
    writeFileSync(
      spec,
      JSON.stringify({
        models: Object.fromEntries(workloads.map((w) => [w.model, TRAIN_STEP_MODELS[w.model]])),
        workloads,
        min_time_s: reps.minTimeS,
        min_reps: reps.minReps,
        max_reps: reps.maxReps,
      }),
    );
    const { stdout } = await promisify(execFile)(opts.python ?? '/usr/bin/python3', [join(opts.root, 'src/python/train_step_bench.py'), '--spec', spec, '--threads', String(opts.threads ?? 2)], {
      maxBuffer: 1 << 24,
    });
    const r = JSON.parse(stdout) as TorchTrainSteps;
    for (const x of r.results) x.median_ms = median(x.times_ms);
    return r;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One row of the comparison table. */
export interface TrainStepRow {
  workload: string;
  backend: string;
  tfjs_ms: number;
  torch_ms: number | null;
  /** tfjs time / PyTorch time (goal ≤ 2). */
  ratio: number | null;
  images_per_s: number;
}

export function trainStepRows(backend: string, ours: readonly TrainStepTiming[], torch: TorchTrainSteps | null): TrainStepRow[] {
  return ours.map((o) => {
    const p = torch?.results.find((r) => r.model === o.model && r.batch === o.batch);
    return {
      workload: `train step ${o.model} b${o.batch}${o.microBatch ? `/${o.microBatch}` : ''}${o.workers ? ` ×${o.workers} workers` : ''}`,
      backend,
      tfjs_ms: o.median_ms,
      torch_ms: p ? p.median_ms : null,
      ratio: p ? o.median_ms / p.median_ms : null,
      images_per_s: (1000 * o.batch) / o.median_ms,
    };
  });
}

export function formatRows(rows: readonly TrainStepRow[]): string {
  const head = `${'workload'.padEnd(26)} ${'backend'.padEnd(8)} ${'tfjs ms'.padStart(10)} ${'torch ms'.padStart(10)} ${'ratio'.padStart(7)} ${'img/s'.padStart(8)}`;
  return [
    head,
    ...rows.map(
      (r) =>
        `${r.workload.padEnd(26)} ${r.backend.padEnd(8)} ${r.tfjs_ms.toFixed(0).padStart(10)} ${(r.torch_ms === null ? '-' : r.torch_ms.toFixed(0)).padStart(10)} ${(r.ratio === null ? '-' : `${r.ratio.toFixed(2)}×`).padStart(7)} ${r.images_per_s.toFixed(2).padStart(8)}`,
    ),
  ].join('\n');
}

function parseWorkloads(s: string): TrainStepWorkload[] {
  return s.split(',').map((p) => {
    const [model, batch, micro, workers] = p.split(':');
    const posInt = (v: string | undefined): boolean => v === undefined || v === '' || /^[1-9]\d*$/.test(v);
    if (!(model in TRAIN_STEP_MODELS) || !/^[1-9]\d*$/.test(batch ?? '') || !posInt(micro) || !posInt(workers)) {
      throw new Error(`--workloads: expected model:batch[:micro-batch[:workers]] with model cifar10 or small and positive integers (micro-batch may be empty), got ${JSON.stringify(p)}`);
    }
    return {
      model: model as TrainStepWorkload['model'],
      batch: Number(batch),
      ...(micro ? { microBatch: Number(micro) } : {}),
      ...(workers ? { workers: Number(workers) } : {}),
    };
  });
}

async function main(argv: string[]): Promise<void> {
  const arg = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const { initBackend } = await import('../../src/backend.ts');
  const report = await initBackend();
  const workloads = arg('--workloads') ? parseWorkloads(arg('--workloads')!) : DEFAULT_TRAIN_STEP_WORKLOADS;
  const reps: Reps = { ...DEFAULT_REPS, ...(arg('--min-time') ? { minTimeS: Number(arg('--min-time')) } : {}) };
  const log = (l: string): void => void process.stderr.write(`${l}\n`);
  const ours = await timeTrainSteps(workloads, reps, log);
  const root = join(import.meta.dirname, '..', '..');
  const torch = argv.includes('--no-torch') ? null : await torchTrainSteps(workloads, reps, { root });
  const rows = trainStepRows(report.chosen, ours, torch);
  process.stdout.write(`${formatRows(rows)}\n`);
  const json = arg('--json');
  if (json) writeFileAtomic(json, `${JSON.stringify({ backend: report.chosen, tfjs: ours, torch, rows }, null, 2)}\n`);
}

if (process.argv[1] && import.meta.filename === process.argv[1]) await main(process.argv.slice(2));
