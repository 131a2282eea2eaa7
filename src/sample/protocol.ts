/**
 * Messages between the sampling coordinator and its worker threads.
 *
 * @module
 */
import type { SamplingMethod } from './sampler.ts';

/** What a worker is asked to do: make the images `indices` of a run from a checkpoint. */
export interface WorkerJob {
  checkpointDir: string;
  ema: boolean | 'prefer';
  method: SamplingMethod;
  seed: number;
  indices: number[];
  /** Images per forward pass (the worker's indices are processed in chunks of this size). */
  batch: number;
  frameEvery?: number;
}

export type WorkerMessage =
  | { type: 'ready'; backend: string }
  /** `images` more images have finished one loop step. */
  | { type: 'step'; images: number }
  | { type: 'frame'; step: number; indices: number[]; data: Float32Array }
  | { type: 'result'; indices: number[]; data: Float32Array }
  | { type: 'done' }
  | { type: 'error'; message: string };
