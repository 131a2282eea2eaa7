/**
 * The training loop (Ho et al. 2020, Algorithm 1), for any {@link TrainableModel}:
 *
 * repeat: x₀ ~ data; t ~ Uniform{0, …, T−1}; ε ~ N(0, I);
 * take a gradient step on ‖ε − ε_θ(√ᾱ_t x₀ + √(1−ᾱ_t) ε, t)‖² (the diffusion core's `trainingLosses`, averaged
 * over the batch; the hybrid loss adds the rescaled bound term), with clipping, Adam, warm-up and EMA
 * (`optim.ts`).
 *
 * Randomness: one seed makes three independent streams (`Rng.split`): initialisation, data order, and the
 * per-step draws — in this order every step: the batch (data stream), B timesteps, B·D normals for ε, one
 * dropout seed. The same seed on the same backend gives the same run; a resumed run restores every stream and
 * continues bit for bit.
 *
 * Divergence: a NaN or infinite loss or gradient norm stops the run at that step with a
 * {@link TrainingDivergedError}; no checkpoint is written after it, so the last good one stays the newest.
 *
 * @module
 */
import { appendFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { FormatError } from '../../src/formats/errors.ts';
import { writeFileAtomic } from '../../src/io/atomic.ts';
import { acquireLock } from '../../src/io/lock.ts';
import { SystemError } from '../../src/io/errors.ts';
import { Rng } from '../../src/numeric/rng.ts';
import { GaussianDiffusion, type LossType, type ModelVarType } from '../diffusion/buffers.ts';
import { hoBetaSchedule } from '../diffusion/schedules.ts';
import { installGradients } from '../grad/index.ts';
import {
  checkCheckpointFits,
  latestCheckpointDir,
  listCheckpoints,
  prepareOutDir,
  readTrainCheckpoint,
  removeStaleTemporaries,
  restoreTensors,
  saveTrainCheckpoint,
  type CheckpointFaultPoint,
} from './checkpoint.ts';
import type { DiffusionTrainConfig, TrainConfig } from './config.ts';
import type { BatchSource } from './data.ts';
import { activationBytesPerExample, createModel, type TrainableModel } from './model.ts';
import { batchLossAndGradients } from './microbatch.ts';
import { GradientWorkers } from './parallel.ts';
import { disposeOptimState, globalNorm, initOptimState, optimStep, optimStepFlat, sumOfSquares, type OptimState } from './optim.ts';
import { describeParallelism, resolveParallelism, type ParallelismChoice } from './parallelism.ts';

/** One line of `log.jsonl`: means over the log interval ending at `step`. */
export const LogRecord = z
  .object({
    step: z.number().int().positive(),
    loss: z.number(),
    grad_norm: z.number(),
    lr: z.number(),
    steps_per_s: z.number(),
    elapsed_s: z.number(),
    /**
     * Present (true) on a record of an interval cut short by the end of a session (`--steps` or the time
     * budget). A resumed run drops it and writes the whole interval's record instead, so the log of a resumed
     * run equals an uninterrupted one's.
     */
    partial: z.literal(true).optional(),
  })
  .strict();
export type LogRecord = z.infer<typeof LogRecord>;

/** Points where a test can stop a run as a crash would (`TrainOptions.fault`): after an update, after a log line, inside a checkpoint write. */
export type FaultPoint = 'step:updated' | 'log:written' | CheckpointFaultPoint;

export const LOG_FILE = 'log.jsonl';

/** The run stopped because the loss or the gradient norm stopped being finite. */
export class TrainingDivergedError extends Error {
  override name = 'TrainingDivergedError';
  constructor(
    readonly step: number,
    readonly what: string,
    readonly value: number,
    readonly lastCheckpoint: string | null,
  ) {
    super(
      `training stopped at step ${step}: the ${what} is ${value}; ` +
        (lastCheckpoint ? `the last good checkpoint is ${lastCheckpoint}` : 'no checkpoint had been written yet'),
    );
  }
}

/** The diffusion a training configuration describes (the caller disposes it). */
export function diffusionFor(c: DiffusionTrainConfig): GaussianDiffusion {
  const betas = hoBetaSchedule(c.beta_schedule, c.beta_start, c.beta_end, c.num_diffusion_timesteps);
  const modelVarType: ModelVarType = c.model_var_type === 'fixedlarge' ? 'FIXED_LARGE' : c.model_var_type === 'fixedsmall' ? 'FIXED_SMALL' : 'LEARNED_RANGE';
  const lossType: LossType = c.loss === 'hybrid' ? 'RESCALED_MSE' : 'MSE';
  return new GaussianDiffusion({ betas, modelMeanType: 'EPSILON', modelVarType, lossType });
}

/** Shape of one example of the model a configuration describes ([H, W, C] for the UNet, [in_dim] for the MLP). */
export function exampleShapeOf(c: TrainConfig): number[] {
  return c.model.kind === 'unet' ? [c.model.unet.resolution, c.model.unet.resolution, c.model.unet.in_channels] : [c.model.mlp.in_dim];
}

/** Progress after each step, for a progress bar. */
export interface Progress {
  step: number;
  target: number;
  loss: number;
  /** Steps per second over the recent steps (this session). */
  stepsPerSec: number;
  elapsedS: number;
}

/** What {@link train} needs. */
export interface TrainOptions {
  /** Configuration of a new run; on resume, the checkpoint's configuration is used and this one (if given) must agree on the model. */
  config?: TrainConfig;
  /** Data set name, recorded in checkpoints. */
  dataName: string;
  /** Opens the batch source on the data stream for the run's configuration (called once; on resume its state is restored). */
  openData: (rng: Rng, config: TrainConfig) => BatchSource;
  outDir: string;
  /** Train until this many steps have been done in total. */
  steps: number;
  /** Continue from the newest checkpoint in `outDir` (an error if there is none). */
  resume?: boolean;
  /** Stop (with a checkpoint) once this much wall-clock time has passed in this session. */
  maxSeconds?: number;
  /** Called after every step. */
  onProgress?: (p: Progress) => void;
  /** Called with every log record (also appended to `log.jsonl`). */
  onLog?: (r: LogRecord) => void;
  /** Called after each checkpoint is written, with its directory. */
  onCheckpoint?: (dir: string, step: number) => void;
  /** Called with a warning (a stale lock of a killed run taken over). */
  onWarning?: (line: string) => void;
  /**
   * Fault injection for tests: called at each {@link FaultPoint}; a test throws (or kills the process) there to
   * stop the run as a crash would.
   */
  fault?: (point: FaultPoint, step: number) => void;
  /**
   * Compute the gradients on worker threads (data parallel, `parallel.ts`): a count (1: the calling thread);
   * 'auto': the faster of 1 and min(cores, batch) for this model and batch, timed before the first step on
   * throwaway draws (`parallelism.ts`); undefined: 1. A resumed run uses the count its checkpoint recorded unless
   * a count is given. Results are deterministic for a given number of workers.
   */
  workers?: number | 'auto';
  /**
   * Accumulate each step's gradient over micro-batches of at most this many examples (per worker when
   * `workers` > 1; `microbatch.ts`), so that only that many examples' activations are held at once. The result
   * equals the one-pass step to float32 rounding; dropout masks differ. 'auto': the largest that fits the
   * backend's memory per thread (`parallelism.ts`); undefined: the whole batch (or shard) at once. A resumed run
   * uses its checkpoint's unless a number is given.
   */
  microBatch?: number | 'auto';
  /** Cores to plan the worker count for (default: `os.availableParallelism()`). */
  cores?: number;
  /** Called once before the first step with the worker count and micro-batch chosen and the one-line reason. */
  onParallelism?: (choice: ParallelismChoice, line: string) => void;
  /** Keep the model and the optimiser state (return them instead of disposing): for tests and evaluation. */
  keepModel?: boolean;
}

/** What {@link train} did. */
export interface TrainResult {
  config: TrainConfig;
  /** Steps done in total (all sessions). */
  step: number;
  /** The step this session started from (0 for a new run). */
  startStep: number;
  lastCheckpoint: string | null;
  elapsedS: number;
  backend: string;
  /** Worker threads used (1: the calling thread) and the micro-batch (undefined: one pass). */
  workers: number;
  microBatch?: number;
  /** Present with `keepModel`: the caller disposes them. */
  model?: TrainableModel;
  optim?: OptimState;
}

function sameModel(a: TrainConfig, b: TrainConfig): string | null {
  const ja = JSON.stringify(a.model);
  const jb = JSON.stringify(b.model);
  if (ja !== jb) return `model: the checkpoint has ${ja}, the configuration given has ${jb}`;
  const da = JSON.stringify(a.diffusion);
  const db = JSON.stringify(b.diffusion);
  if (da !== db) return `diffusion: the checkpoint has ${da}, the configuration given has ${db}`;
  return null;
}

/**
 * Drop log lines after `step` (they belong to a session that was killed before its next checkpoint) and partial
 * records (the resumed run writes the whole interval).
 */
function truncateLog(outDir: string, step: number): void {
  const path = join(outDir, LOG_FILE);
  if (!existsSync(path)) return;
  const keep = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .filter((l) => {
      try {
        const r = JSON.parse(l) as { step: number; partial?: boolean };
        return r.step <= step && r.partial !== true;
      } catch {
        return false;
      }
    });
  writeFileAtomic(path, keep.length > 0 ? `${keep.join('\n')}\n` : '');
}

/** The random draws of one step, in the loop's order: the batch, B timesteps, B·D normals, a dropout seed. */
export interface StepDraws {
  x0: Float32Array;
  t: number[];
  noise: Float32Array;
  dropoutSeed: number;
}

/** Draw one step's randomness (see {@link StepDraws}); the order is part of the run's definition. */
export function drawStep(data: BatchSource, rng: Rng, batch: number, dim: number, T: number): StepDraws {
  const x0 = data.next(batch);
  const t = Array.from({ length: batch }, () => rng.int(T));
  const noise = Float32Array.from(rng.normals(batch * dim));
  const dropoutSeed = rng.int(2 ** 30);
  return { x0, t, noise, dropoutSeed };
}

/** What one {@link trainingStep} did. */
export interface StepResult {
  /** Mean loss of the batch (before the update). */
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Learning rate used (NaN when the step was refused). */
  lr: number;
}

/**
 * One training step: the batch loss (the diffusion core's `trainingLosses`, averaged), its gradient with
 * respect to every parameter, then clipping, Adam and the EMA (`optim.ts`). When the loss or the gradient norm is
 * not finite, nothing is updated and the non-finite values are returned for the caller to act on.
 */
export async function trainingStep(
  model: TrainableModel,
  diffusion: GaussianDiffusion,
  optimConfig: TrainConfig['optim'],
  optim: OptimState,
  d: StepDraws & { shape: number[] },
  workers?: GradientWorkers,
  microBatch?: number,
): Promise<StepResult> {
  if (workers) {
    // The workers' summed gradient is flat already: its norm and the update run on it directly.
    const { loss, grad } = await workers.lossAndGradients(model, d);
    const gn = Math.fround(Math.sqrt(sumOfSquares(grad)));
    if (!Number.isFinite(loss) || !Number.isFinite(gn)) return { loss, gradNorm: gn, lr: Number.NaN };
    const { lr } = await optimStepFlat(optimConfig, model.variables, workers.sharedParams, grad, gn, optim);
    return { loss, gradNorm: gn, lr };
  }
  const { loss: value, grads } = batchLossAndGradients(model, diffusion, d, microBatch);
  const gradNorm = globalNorm(model.names.map((n) => grads.get(n)!));
  try {
    const loss = (await value.data())[0];
    const gn = (await gradNorm.data())[0];
    if (!Number.isFinite(loss) || !Number.isFinite(gn)) return { loss, gradNorm: gn, lr: Number.NaN };
    const { lr } = optimStep(optimConfig, model.variables, grads, gn, optim);
    return { loss, gradNorm: gn, lr };
  } finally {
    tf.dispose([gradNorm, value, ...grads.values()]);
  }
}

/**
 * Memory a backend can give one thread's activations: wasm's heap is 32-bit (4 GiB); other backends share the
 * machine's memory with the host-side copies, the optimiser state and a second thread, and the activation bound
 * below is a lower bound several times under the true figure, so they get a quarter of it (a batch refused on the
 * cpu backend at 24 GiB would otherwise be started and end in the out-of-memory killer).
 */
export function backendMemoryBytes(backend: string): number {
  return backend === 'wasm' ? 4 * 2 ** 30 : totalmem() / 4;
}

/**
 * Refuse, before anything is computed, a batch whose activations cannot fit the backend's memory (a lower bound,
 * {@link activationBytesPerExample}, for the examples one thread holds at once: the micro-batch, or the batch's
 * share of each worker), and a batch whose host-side draws (data, noise, float64 before conversion) cannot fit
 * half the machine's memory.
 *
 * @throws {@link SystemError} naming `batch_size` and what would fit
 */
export function checkBatchFits(config: TrainConfig, backend: string, workers: number, microBatch?: number): void {
  const B = config.batch_size;
  const perThread = microBatch ?? Math.ceil(B / workers);
  const perExample = activationBytesPerExample(config.model);
  const limit = backendMemoryBytes(backend);
  const gib = (b: number): string => `${(b / 2 ** 30).toFixed(1)} GiB`;
  if (perThread * perExample > limit) {
    throw new SystemError(
      'batch_size',
      `${B} (${perThread} examples at once per thread) needs at least ${gib(perThread * perExample)} of activations, more than the ${backend} backend's ${gib(limit)}; at most ${Math.floor(limit / perExample)} examples fit at once: lower batch_size or pass --micro-batch`,
    );
  }
  const D = exampleShapeOf(config).reduce((a, b) => a * b, 1);
  const hostBytes = B * D * (8 + 8 + 4 + 4);
  if (hostBytes > totalmem() / 2) {
    throw new SystemError('batch_size', `${B} needs ${gib(hostBytes)} of host memory for each step's data and noise, more than half of this machine's ${gib(totalmem())}`);
  }
}

/**
 * Train (or resume training) until `opts.steps` steps are done, writing checkpoints and the log into
 * `opts.outDir`.
 *
 * @throws {@link TrainingDivergedError} on a non-finite loss or gradient norm
 * @throws `FormatError` (`src/formats/errors.ts`) for an unusable output directory or a checkpoint that does not fit
 */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  installGradients();
  if (!Number.isInteger(opts.steps) || opts.steps < 0) throw new RangeError(`train: steps must be a non-negative integer, got ${opts.steps}`);
  prepareOutDir(opts.outDir);
  const lock = acquireLock(opts.outDir, `train --data ${opts.dataName}`, opts.onWarning);
  try {
    return await trainLocked(opts);
  } finally {
    lock.release();
  }
}

/** {@link train} once the output directory is ready and locked. */
async function trainLocked(opts: TrainOptions): Promise<TrainResult> {
  removeStaleTemporaries(opts.outDir);
  const backend = tf.getBackend();

  let config: TrainConfig;
  let resumeFrom: ReturnType<typeof readTrainCheckpoint> | null = null;
  if (opts.resume) {
    const dir = latestCheckpointDir(opts.outDir);
    if (dir === null) throw new FormatError(opts.outDir, '', 'nothing to resume: no checkpoint in this directory (run without --resume to start)');
    resumeFrom = readTrainCheckpoint(dir);
    config = resumeFrom.state.config;
    if (opts.config) {
      const diff = sameModel(config, opts.config);
      if (diff !== null) throw new FormatError(resumeFrom.file, diff.split(':')[0], `does not match the configuration given: ${diff}`);
      config = { ...opts.config, model: config.model, diffusion: config.diffusion };
    }
    if (resumeFrom.state.data !== opts.dataName) {
      throw new FormatError(resumeFrom.file, `__metadata__.train_state.data`, `the run trained on ${resumeFrom.state.data}, not ${opts.dataName}`);
    }
  } else {
    if (!opts.config) throw new RangeError('train: a configuration is needed for a new run');
    config = opts.config;
    const existing = listCheckpoints(opts.outDir);
    if (existing.length > 0) {
      throw new FormatError(opts.outDir, '', `already holds checkpoints (newest ${existing[existing.length - 1].dir}); pass --resume to continue, or choose another --out`);
    }
  }

  const positive = (v: number | 'auto' | undefined): boolean => v === undefined || v === 'auto' || (Number.isInteger(v) && v >= 1);
  if (!positive(opts.workers)) throw new RangeError(`train: workers must be a positive integer, got ${opts.workers} (or 'auto')`);
  if (!positive(opts.microBatch)) throw new RangeError(`train: microBatch must be a positive integer, got ${opts.microBatch} (or 'auto')`);
  // Before anything is allocated: the lower bound for the least the options allow (one example for 'auto').
  checkBatchFits(config, backend, typeof opts.workers === 'number' ? opts.workers : 1, opts.microBatch === 'auto' ? 1 : opts.microBatch);

  const root = new Rng(config.seed);
  const initRng = root.split();
  const dataRng = root.split();
  let rng = root.split();
  const model = createModel(config.model, initRng);
  const optim = initOptimState(model.names, model.variables);
  const diffusion = diffusionFor(config.diffusion);
  let data: BatchSource;
  let step = 0;
  let elapsedBefore = 0;
  let lastCheckpoint: string | null = null;
  let kept = false;
  let pool: GradientWorkers | null = null;
  try {
    data = opts.openData(dataRng, config);
    if (resumeFrom) {
      checkCheckpointFits(resumeFrom, model);
      restoreTensors(resumeFrom, model, optim);
      rng = Rng.fromState(resumeFrom.state.rng);
      data.setState(resumeFrom.state.batches);
      step = resumeFrom.state.step;
      elapsedBefore = resumeFrom.state.elapsed_s;
      lastCheckpoint = resumeFrom.dir;
      truncateLog(opts.outDir, step);
      // Checkpoints newer than the one resumed from (a killed run that never moved the link) are superseded.
      for (const c of listCheckpoints(opts.outDir)) if (c.step > step) rmSync(c.dir, { recursive: true, force: true });
    } else {
      writeFileSync(join(opts.outDir, LOG_FILE), '');
    }
    const startStep = step;
    const B = config.batch_size;
    const shape = [B, ...model.exampleShape];
    const D = model.exampleShape.reduce((a, b) => a * b, 1);
    const T = diffusion.T;
    const recorded = resumeFrom ? { workers: resumeFrom.state.workers, microBatch: resumeFrom.state.micro_batch } : undefined;
    const resolved = await resolveParallelism(
      { workers: opts.workers, microBatch: opts.microBatch, recorded, cores: opts.cores ?? availableParallelism(), totalMemBytes: totalmem() },
      model,
      diffusion,
      config,
      backend,
    );
    pool = resolved.pool;
    const { workers: nWorkers, microBatch } = resolved.choice;
    opts.onParallelism?.(resolved.choice, describeParallelism(resolved.choice));
    checkBatchFits(config, backend, nWorkers, microBatch);
    if (nWorkers > 1 && pool === null) pool = await GradientWorkers.start(nWorkers, model, config, backend, microBatch);

    // The clock (time budget, elapsed_s, steps/s) starts when everything is ready.
    const t0 = performance.now();
    const elapsed = (): number => elapsedBefore + (performance.now() - t0) / 1000;
    const saved = resumeFrom?.state.log;
    let acc = saved
      ? { loss: saved.loss, gradNorm: saved.grad_norm, n: saved.n, since: t0 - saved.seconds * 1000, lr: saved.lr }
      : { loss: 0, gradNorm: 0, n: 0, since: t0, lr: 0 };
    const logRecord = (now: number, partial: boolean): LogRecord => {
      const rec: LogRecord = {
        step,
        loss: acc.loss / acc.n,
        grad_norm: acc.gradNorm / acc.n,
        lr: acc.lr,
        steps_per_s: acc.n / Math.max((now - acc.since) / 1000, 1e-9),
        elapsed_s: elapsed(),
        ...(partial ? { partial: true as const } : {}),
      };
      appendFileSync(join(opts.outDir, LOG_FILE), `${JSON.stringify(rec)}\n`);
      opts.onLog?.(rec);
      return rec;
    };
    let recentRate = 0;
    let lastStepAt = performance.now();

    const checkpoint = async (): Promise<void> => {
      const log = { loss: acc.loss, grad_norm: acc.gradNorm, n: acc.n, lr: acc.lr, seconds: Math.max(0, (performance.now() - acc.since) / 1000) };
      lastCheckpoint = await saveTrainCheckpoint(opts.outDir, {
        state: { step, data: opts.dataName, config, rng: rng.getState(), batches: data.getState(), elapsed_s: elapsed(), backend, workers: nWorkers, micro_batch: microBatch ?? null, log },
        model,
        optim,
        keep: config.keep_checkpoints,
        fault: opts.fault && ((p) => opts.fault!(p, step)),
      });
      opts.onCheckpoint?.(lastCheckpoint, step);
    };

    while (step < opts.steps) {
      const draws = drawStep(data, rng, B, D, T);
      const r = await trainingStep(model, diffusion, config.optim, optim, { ...draws, shape }, pool ?? undefined, microBatch);
      if (!Number.isFinite(r.loss) || !Number.isFinite(r.gradNorm)) {
        const bad = Number.isFinite(r.loss) ? 'gradient norm' : 'loss';
        throw new TrainingDivergedError(step + 1, bad, bad === 'loss' ? r.loss : r.gradNorm, lastCheckpoint);
      }
      const { loss, gradNorm: gn, lr } = r;
      step++;

      const now = performance.now();
      const dt = (now - lastStepAt) / 1000;
      lastStepAt = now;
      recentRate = recentRate === 0 ? 1 / dt : 0.9 * recentRate + 0.1 / dt;
      acc = { loss: acc.loss + loss, gradNorm: acc.gradNorm + gn, n: acc.n + 1, since: acc.since, lr };
      opts.fault?.('step:updated', step);
      opts.onProgress?.({ step, target: opts.steps, loss, stepsPerSec: recentRate, elapsedS: elapsed() });
      if (step % config.log_every === 0) {
        logRecord(now, false);
        acc = { loss: 0, gradNorm: 0, n: 0, since: now, lr };
        opts.fault?.('log:written', step);
      }
      const outOfTime = opts.maxSeconds !== undefined && (now - t0) / 1000 >= opts.maxSeconds;
      if (step % config.checkpoint_every === 0 || step === opts.steps || outOfTime) await checkpoint();
      if (outOfTime) break;
    }
    // The session ended inside a log interval (--steps or the time budget): log the partial interval too. A
    // resumed session writes it again even without a step (truncateLog dropped it; a kill may have come first).
    if (acc.n > 0) logRecord(performance.now(), true);
    if (step === startStep && lastCheckpoint === null) await checkpoint();
    const result: TrainResult = { config, step, startStep, lastCheckpoint, elapsedS: elapsed(), backend, workers: nWorkers, ...(microBatch !== undefined ? { microBatch } : {}) };
    if (opts.keepModel) {
      kept = true;
      return { ...result, model, optim };
    }
    return result;
  } finally {
    await pool?.close();
    diffusion.dispose();
    if (!kept) {
      model.dispose();
      disposeOptimState(optim);
    }
  }
}
