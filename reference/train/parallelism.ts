/**
 * How `ddpm-spec train` uses the machine when it is not told: the number of gradient worker threads
 * (`parallel.ts`) and the micro-batch (`microbatch.ts`).
 *
 * **Worker count.** On a backend that computes on one thread (wasm, cpu) and a machine with K = min(cores, B) > 1,
 * the run times the gradient of one batch on the calling thread and on K workers — throwaway draws from a
 * stream of its own, the model's current parameters, nothing updated — interleaved, after one warm-up each, and
 * keeps the faster. K workers must beat one thread by more than {@link WORKER_TIE_MARGIN} (a tie keeps one thread:
 * less memory, one copy of the model). The calibration changes nothing in the run but the worker count: the
 * run's random streams are not touched. Backends that use several cores or a GPU by themselves (tensorflow,
 * webgpu) keep one thread.
 *
 * **Micro-batch.** The largest micro-batch whose step fits the backend's memory per thread
 * ({@link stepBytesEstimate}); the whole share of the batch when that fits (then the step is the one-pass step).
 *
 * **Resume.** The count and micro-batch are recorded in every checkpoint; a resumed run uses the recorded ones
 * unless told otherwise, so that it continues bit for bit.
 *
 * The decisions are pure functions of their inputs (timings, cores, memory); {@link resolveParallelism} takes the
 * measurements and applies them.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { SystemError } from '../../src/io/errors.ts';
import { Rng } from '../../src/numeric/rng.ts';
import type { GaussianDiffusion } from '../diffusion/buffers.ts';
import type { ModelConfig, TrainConfig } from './config.ts';
import { batchLossAndGradients } from './microbatch.ts';
import { activationBytesPerExample, type TrainableModel } from './model.ts';
import { GradientWorkers } from './parallel.ts';

/** Backends that compute on the calling thread only: worker threads are how a run uses more cores. */
export const SINGLE_THREADED_BACKENDS: readonly string[] = ['wasm', 'cpu'];

/** More workers must be faster than one thread by more than this fraction to be chosen. */
export const WORKER_TIE_MARGIN = 0.05;

/**
 * The worker counts worth trying: 1, and min(cores, batch) on a single-threaded backend with more than one core
 * and a batch that can be split.
 */
export function workerCandidates(backend: string, cores: number, batch: number): number[] {
  const k = Math.min(cores, batch);
  return SINGLE_THREADED_BACKENDS.includes(backend) && k > 1 ? [1, k] : [1];
}

/** Why only one thread is tried (null when several counts are). */
export function singleThreadReason(backend: string, cores: number, batch: number): string | null {
  if (!SINGLE_THREADED_BACKENDS.includes(backend)) return `the ${backend} backend uses the machine's cores by itself`;
  if (cores < 2) return 'this machine has one core';
  if (batch < 2) return 'a batch of 1 cannot be split';
  return null;
}

/** The measured time of one gradient of a batch with `workers` threads (1: the calling thread). */
export interface WorkerTiming {
  workers: number;
  ms: number;
}

/**
 * The worker count to use: the fastest of the timed counts, where a count above 1 must beat one thread by more
 * than {@link WORKER_TIE_MARGIN}. Timings that are not finite and positive are ignored; with none left, 1.
 */
export function fasterWorkers(timings: readonly WorkerTiming[]): number {
  const ok = timings.filter((t) => Number.isFinite(t.ms) && t.ms > 0 && Number.isInteger(t.workers) && t.workers >= 1);
  const one = ok.find((t) => t.workers === 1);
  let best: WorkerTiming | undefined;
  for (const t of ok) if (best === undefined || t.ms < best.ms) best = t;
  if (best === undefined) return 1;
  if (one !== undefined && best.workers !== 1 && best.ms >= one.ms * (1 - WORKER_TIE_MARGIN)) return 1;
  return best.workers;
}

/**
 * Measured memory of a training step on the wasm backend, in units the model configuration gives. With P the
 * parameter bytes and A = `activationBytesPerExample` (a lower bound on one example's activations), a step's
 * peak is the larger of its two phases:
 *
 * $$\text{bytes}(n) = \max\big(c_\text{opt} P,\; c_\text{bwd} P + c_\text{act} A\, n\big)$$
 *
 * (the optimiser's update, after the activations are freed; the backward pass, with the parameters, optimiser
 * state, gradients and n examples' activations). Measured with tfjs 4.22 on wasm as the size of the wasm heap after
 * two training steps in a fresh process (the heap only grows, so this is the step's peak, growth margin included),
 * on 2026-12-05 after the kernels of our own (fused GroupNorm and attention, flat optimiser buffers, convolution and
 * filter-gradient kernels): the CIFAR-10 UNet (P = 143 MB, A = 17.4 MB) 1.83 GB at 4 examples, 2.40 GB at 8,
 * 3.40 GB at 16; the small UNet (P = 4.4 MB, A = 0.9 MB) 51 MB at 2, 73 MB at 4, 260 MB at 32. Both phases fit
 * one line, c_bwd P + c_act A n with c_bwd ≈ 9, c_act ≈ 7.6; the constants below round them up, so the estimate is
 * 1–18 % above every measurement (a property checks it). (Before those kernels the same step needed 3.15 GB at 4
 * examples and aborted at 8.) The benchmark's JSON records the wasm heap after each training step
 * (`wasmHeapBytes`) to measure them again.
 */
export const WASM_STEP_MEMORY = { optimiserPerParamByte: 10, backwardPerParamByte: 10, perActivationByte: 8.5 } as const;

/** Bytes one thread may use for a training step on `backend` (wasm: its 32-bit heap of 4 GiB, less a margin for fragmentation; others: a quarter of the machine's memory). */
export function threadMemoryBytes(backend: string, totalMemBytes: number): number {
  return backend === 'wasm' ? 3.75 * 2 ** 30 : totalMemBytes / 4;
}

/**
 * Estimated peak memory of one thread's training step with `examples` examples at once ({@link WASM_STEP_MEMORY};
 * used for every backend: the cpu backend holds the same tensors).
 */
export function stepBytesEstimate(model: ModelConfig, parameterCount: number, examples: number): number {
  const P = 4 * parameterCount;
  const m = WASM_STEP_MEMORY;
  return Math.max(m.optimiserPerParamByte * P, m.backwardPerParamByte * P + m.perActivationByte * activationBytesPerExample(model) * examples);
}

/**
 * The micro-batch for a thread that computes `perThread` examples per step: undefined (one pass) when the whole
 * share fits `limitBytes` by `bytesFor`; else the smallest even split of the share into the fewest micro-batches
 * that fit (at least 1: a step that does not fit even one example is refused later by `checkBatchFits`).
 */
export function largestFittingMicroBatch(perThread: number, bytesFor: (examples: number) => number, limitBytes: number): number | undefined {
  if (bytesFor(perThread) <= limitBytes) return undefined;
  if (perThread <= 1 || bytesFor(1) > limitBytes) return 1;
  let m = perThread - 1;
  while (m > 1 && bytesFor(m) > limitBytes) m--;
  // microbatch.ts splits the share evenly: with ⌈perThread / m⌉ chunks, the largest holds ⌈perThread / chunks⌉.
  return Math.ceil(perThread / Math.ceil(perThread / m));
}

/**
 * The micro-batch `train` takes without `--micro-batch` for a thread computing `perThread` examples of `model`
 * (`parameterCount` parameters) on `backend` (undefined: one pass).
 */
export function autoMicroBatch(model: ModelConfig, parameterCount: number, backend: string, perThread: number, totalMemBytes: number): number | undefined {
  return largestFittingMicroBatch(perThread, (n) => stepBytesEstimate(model, parameterCount, n), threadMemoryBytes(backend, totalMemBytes));
}

/** The examples one thread computes at once with `workers` threads on a batch of `batch` (the largest shard). */
export function examplesPerThread(batch: number, workers: number): number {
  return Math.ceil(batch / workers);
}

/** Where a run's worker count came from. */
export type WorkersSource = 'option' | 'checkpoint' | 'calibration' | 'single';
/** Where a run's micro-batch came from ('whole': not asked for, the whole batch). */
export type MicroBatchSource = 'option' | 'checkpoint' | 'memory' | 'whole';

/** A run's parallelism and the reasons for it, for the one line `train` prints. */
export interface ParallelismChoice {
  workers: number;
  workersFrom: WorkersSource;
  /** With `workersFrom: 'calibration'`: the timings compared. */
  timings?: WorkerTiming[];
  /** With `workersFrom: 'single'`: why only one thread was tried. */
  singleReason?: string;
  /** What the checkpoint recorded, when a resumed run is told otherwise. */
  recordedWorkers?: number;
  microBatch?: number;
  microFrom: MicroBatchSource;
  /** With `microFrom: 'memory'`: examples per thread, their estimated bytes, the backend's limit. */
  memory?: { perThread: number; bytes: number; limitBytes: number; backend: string };
  /** What the checkpoint recorded (null: the whole batch), when a resumed run is told otherwise. */
  recordedMicroBatch?: number | null;
  batch: number;
}

const gib = (b: number): string => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(1)} GiB` : `${Math.max(1, Math.round(b / 2 ** 20))} MiB`);
const threads = (k: number): string => (k === 1 ? '1 thread' : `${k} worker threads`);
const fmtMs = (ms: number): string => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`);

/** The one line `ddpm-spec train` prints about its parallelism: what was chosen and why. */
export function describeParallelism(c: ParallelismChoice): string {
  let w: string;
  switch (c.workersFrom) {
    case 'option':
      w = `${threads(c.workers)} (--workers${c.recordedWorkers !== undefined && c.recordedWorkers !== c.workers ? `, overriding the ${c.recordedWorkers} the checkpoint recorded` : ''})`;
      break;
    case 'checkpoint':
      w = `${threads(c.workers)} (as the checkpoint recorded)`;
      break;
    case 'calibration': {
      const ts = (c.timings ?? []).map((t) => `${threads(t.workers)} ${fmtMs(t.ms)}`).join(', ');
      w = `${threads(c.workers)} (the faster for a gradient of batch ${c.batch}: ${ts})`;
      break;
    }
    case 'single':
      w = `1 thread (${c.singleReason ?? 'one thread only'})`;
      break;
  }
  const pass = (m: number | undefined): string => (m === undefined ? `the whole ${c.workers > 1 ? 'share' : 'batch'} in one pass` : `micro-batches of ${m}`);
  let m: string;
  switch (c.microFrom) {
    case 'option': {
      const r = c.recordedMicroBatch;
      m = `${pass(c.microBatch)} (--micro-batch${r !== undefined && (r ?? undefined) !== c.microBatch ? `, overriding the checkpoint's ${r === null ? 'whole batch' : r}` : ''})`;
      break;
    }
    case 'checkpoint':
      m = `${pass(c.microBatch)} (as the checkpoint recorded)`;
      break;
    case 'whole':
      m = pass(undefined);
      break;
    case 'memory': {
      const mem = c.memory;
      const need = mem ? `${mem.perThread} examples at once need ~${gib(mem.bytes)}, the ${mem.backend} backend allows ${gib(mem.limitBytes)} per thread` : 'memory';
      m = `${pass(c.microBatch)} (${need})`;
      break;
    }
  }
  return `parallelism: ${w}; ${m}`;
}

/**
 * The most micro-batches per thread that 'auto' takes; a batch that needs more is refused (`--micro-batch` still
 * forces any split): a step of that many passes is almost certainly a mistaken batch size.
 */
export const MAX_AUTO_MICRO_BATCHES = 64;

/** The share of the machine's memory that a run's worker threads may use together. */
export const HOST_MEMORY_SHARE = 0.75;

/** Seed of the calibration's own stream of throwaway draws (the run's streams are never touched). */
export const CALIBRATION_SEED = 0x5eed16;
/** When one thread's warm-up gradient takes longer than this, the warm-ups are the measurements (no second round). */
export const CALIBRATION_SINGLE_ROUND_S = 20;

/** What {@link resolveParallelism} is asked. */
export interface ParallelismRequest {
  /** A count; 'auto': the faster of the candidates; undefined: the checkpoint's, else 1. */
  workers?: number | 'auto';
  /** A micro-batch; 'auto': the largest that fits; undefined: the checkpoint's, else the whole batch. */
  microBatch?: number | 'auto';
  /** What the checkpoint of a resumed run recorded (`null` micro-batch: the whole batch). */
  recorded?: { workers?: number; microBatch?: number | null };
  cores: number;
  totalMemBytes: number;
}

/**
 * Decide the run's worker count and micro-batch (see the module comment), calibrating when asked. Returns the
 * choice and, when it is more than one worker, the started pool (the caller closes it).
 */
export async function resolveParallelism(
  req: ParallelismRequest,
  model: TrainableModel,
  diffusion: GaussianDiffusion,
  config: TrainConfig,
  backend: string,
): Promise<{ choice: ParallelismChoice; pool: GradientWorkers | null }> {
  const B = config.batch_size;
  const params = model.names.reduce((s, n) => s + model.variables.get(n)!.size, 0);
  const limitBytes = threadMemoryBytes(backend, req.totalMemBytes);
  const rec = req.recorded ?? {};
  // Micro-batch for a worker count: given, recorded, or the largest that fits.
  const micro = (k: number): Pick<ParallelismChoice, 'microBatch' | 'microFrom' | 'memory' | 'recordedMicroBatch'> => {
    if (typeof req.microBatch === 'number') return { microBatch: req.microBatch, microFrom: 'option', ...(rec.microBatch !== undefined ? { recordedMicroBatch: rec.microBatch } : {}) };
    // The recorded micro-batch belongs to the recorded worker count (the same share per thread).
    if (rec.microBatch !== undefined && (rec.workers === undefined || rec.workers === k)) return { microBatch: rec.microBatch ?? undefined, microFrom: 'checkpoint' };
    if (req.microBatch === undefined) return { microBatch: undefined, microFrom: 'whole' };
    const perThread = examplesPerThread(B, k);
    const m = autoMicroBatch(config.model, params, backend, perThread, req.totalMemBytes);
    if (m !== undefined && Math.ceil(perThread / m) > MAX_AUTO_MICRO_BATCHES) {
      throw new SystemError(
        'batch_size',
        `${B} (${perThread} examples per thread) needs at least ${gib(stepBytesEstimate(config.model, params, perThread))} of activations and optimiser state by the measured estimate; more than ${MAX_AUTO_MICRO_BATCHES} micro-batches of ${m} would be needed to fit the ${backend} backend's ${gib(limitBytes)} per thread: lower batch_size or pass --micro-batch`,
      );
    }
    return { microBatch: m, microFrom: 'memory', memory: { perThread, bytes: stepBytesEstimate(config.model, params, perThread), limitBytes, backend } };
  };
  const base = { batch: B };
  if (typeof req.workers === 'number') {
    return { choice: { ...base, workers: req.workers, workersFrom: 'option', ...(rec.workers !== undefined ? { recordedWorkers: rec.workers } : {}), ...micro(req.workers) }, pool: null };
  }
  if (rec.workers !== undefined) return { choice: { ...base, workers: rec.workers, workersFrom: 'checkpoint', ...micro(rec.workers) }, pool: null };
  const why = singleThreadReason(backend, req.cores, B);
  if (req.workers === undefined || why !== null) {
    return { choice: { ...base, workers: 1, workersFrom: 'single', singleReason: why ?? 'the default without --workers auto', ...micro(1) }, pool: null };
  }
  const [, k] = workerCandidates(backend, req.cores, B);
  const one = micro(1);
  const many = micro(k);
  // k workers each hold a step's memory, and this thread the optimiser's: all of it must fit the machine.
  const hostBytes = k * stepBytesEstimate(config.model, params, many.microBatch ?? examplesPerThread(B, k)) + WASM_STEP_MEMORY.optimiserPerParamByte * 4 * params;
  if (hostBytes > HOST_MEMORY_SHARE * req.totalMemBytes) {
    const singleReason = `${k} workers would need ~${gib(hostBytes)}, more than ${HOST_MEMORY_SHARE * 100} % of this machine's ${gib(req.totalMemBytes)}`;
    return { choice: { ...base, workers: 1, workersFrom: 'single', singleReason, ...one }, pool: null };
  }
  const { timings, pool } = await calibrateWorkers(model, diffusion, config, backend, k, one.microBatch, many.microBatch);
  const workers = fasterWorkers(timings);
  if (workers === 1) await pool.close();
  return { choice: { ...base, workers, workersFrom: 'calibration', timings, ...(workers === 1 ? one : many) }, pool: workers === 1 ? null : pool };
}

/**
 * Time one batch's gradient on the calling thread and on `k` workers (started here; returned open), interleaved:
 * a warm-up each, then one timed round unless the warm-up took longer than {@link CALIBRATION_SINGLE_ROUND_S}.
 * The draws come from {@link CALIBRATION_SEED}'s stream, the parameters are the model's, nothing is updated.
 */
export async function calibrateWorkers(
  model: TrainableModel,
  diffusion: GaussianDiffusion,
  config: TrainConfig,
  backend: string,
  k: number,
  microOne: number | undefined,
  microK: number | undefined,
): Promise<{ timings: WorkerTiming[]; pool: GradientWorkers }> {
  const B = config.batch_size;
  const shape = [B, ...model.exampleShape];
  const D = model.exampleShape.reduce((a, b) => a * b, 1);
  const rng = new Rng(CALIBRATION_SEED);
  const draws = (): { x0: Float32Array; t: number[]; noise: Float32Array; dropoutSeed: number; shape: number[] } => ({
    x0: Float32Array.from(rng.uniforms(B * D), (u) => 2 * u - 1),
    t: Array.from({ length: B }, () => rng.int(diffusion.T)),
    noise: Float32Array.from(rng.normals(B * D)),
    dropoutSeed: rng.int(2 ** 30),
    shape,
  });
  const pool = await GradientWorkers.start(k, model, config, backend, microK);
  try {
    const onThread = async (): Promise<number> => {
      const d = draws();
      const t0 = performance.now();
      const r = batchLossAndGradients(model, diffusion, d, microOne);
      try {
        await r.loss.data();
        return performance.now() - t0;
      } finally {
        tf.dispose([r.loss, ...r.grads.values()]);
      }
    };
    const onWorkers = async (): Promise<number> => {
      const d = draws();
      const t0 = performance.now();
      await pool.lossAndGradients(model, d); // a flat sum in the pool's own buffer: nothing to free
      return performance.now() - t0;
    };
    let t1 = await onThread();
    let tk = await onWorkers();
    if (t1 <= CALIBRATION_SINGLE_ROUND_S * 1000) {
      t1 = await onThread();
      tk = await onWorkers();
    }
    return {
      timings: [
        { workers: 1, ms: t1 },
        { workers: k, ms: tk },
      ],
      pool,
    };
  } catch (e) {
    await pool.close();
    throw e;
  }
}
