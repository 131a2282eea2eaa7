/**
 * Sampling a batch of images, spread over worker threads (each with its own tfjs backend, so that the
 * single-threaded wasm backend can use every core) or run on the calling thread (`workers: 0`).
 *
 * @module
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { initBackend } from '../backend.ts';
import { loadCheckpoint, readCheckpointConfig } from '../../reference/unet/checkpoint.ts';
import { disposeParams } from '../../reference/unet/params.ts';
import type { WorkerJob, WorkerMessage } from './protocol.ts';
import { diffusionFor, sampleChunk, type SamplingMethod } from './sampler.ts';

/** Options of {@link sampleImages}. */
export interface SampleOptions {
  checkpointDir: string;
  /** Use the EMA weights: always, never, or when the checkpoint has them (default). */
  ema?: boolean | 'prefer';
  method: SamplingMethod;
  n: number;
  seed: number;
  /** Worker threads; 0 samples on the calling thread (default: min(cores, number of chunks)). */
  workers?: number;
  /** Images per forward pass (default: all of a worker's images at once). */
  batch?: number;
  /** Report x̂₀ of all n images every `frameEvery` loop steps (and after the last). */
  frameEvery?: number;
  onFrame?: (step: number, predXstart: Float32Array) => void;
  /** Progress: loop steps finished by the whole batch (fractional while chunks progress unevenly), out of `steps`. */
  onProgress?: (stepsDone: number, steps: number) => void;
  /** Told which backend each worker (or the calling thread) uses. */
  onBackend?: (name: string) => void;
}

/** The images, NHWC data in [−1, 1], with their shape. */
export interface SampleResult {
  images: Float32Array;
  shape: [number, number, number, number];
  steps: number;
  workers: number;
  backends: string[];
}

/** Split 0 … n−1 into `k` contiguous, nearly equal parts. */
export function splitIndices(n: number, k: number): number[][] {
  const parts: number[][] = [];
  for (let w = 0; w < k; w++) {
    const a = Math.floor((w * n) / k);
    const b = Math.floor(((w + 1) * n) / k);
    if (b > a) parts.push(Array.from({ length: b - a }, (_, i) => a + i));
  }
  return parts;
}

export async function sampleImages(o: SampleOptions): Promise<SampleResult> {
  const cfg = readCheckpointConfig(o.checkpointDir);
  const { resolution: r, in_channels: c } = cfg.unet;
  const per = r * r * c;
  const steps = (() => {
    const d = diffusionFor(cfg.diffusion, o.method);
    const T = d.T;
    d.dispose();
    return T;
  })();
  const images = new Float32Array(o.n * per);
  const shape: [number, number, number, number] = [o.n, r, r, c];
  const ema = o.ema ?? 'prefer';
  const batch = o.batch ?? o.n;
  const workers = o.workers ?? Math.min(availableParallelism(), o.n);
  let imageSteps = 0;
  const progress = (images: number): void => {
    imageSteps += images;
    o.onProgress?.(imageSteps / o.n, steps);
  };
  const frames = new Map<number, { data: Float32Array; count: number }>();
  const frame = (step: number, indices: number[], data: Float32Array): void => {
    if (!o.onFrame) return;
    let f = frames.get(step);
    if (f === undefined) frames.set(step, (f = { data: new Float32Array(o.n * per), count: 0 }));
    indices.forEach((k, i) => f!.data.set(data.subarray(i * per, (i + 1) * per), k * per));
    f.count += indices.length;
    if (f.count === o.n) {
      frames.delete(step);
      o.onFrame(step, f.data);
    }
  };

  if (workers === 0) {
    const report = await initBackend();
    o.onBackend?.(report.chosen);
    const { checkpoint, params } = loadCheckpoint(o.checkpointDir, { ema });
    try {
      for (let i = 0; i < o.n; i += batch) {
        const indices = Array.from({ length: Math.min(batch, o.n - i) }, (_, j) => i + j);
        const data = await sampleChunk({
          unet: checkpoint.unet,
          params,
          diffusion: checkpoint.diffusion,
          method: o.method,
          seed: o.seed,
          indices,
          onStep: (s) => progress(s.images),
          frameEvery: o.frameEvery,
          onFrame: (step, d) => frame(step, indices, d),
        });
        images.set(data, i * per);
      }
    } finally {
      disposeParams(params);
    }
    return { images, shape, steps, workers: 0, backends: [report.chosen] };
  }

  // Worker threads: contiguous shares of the images; each worker processes its share in chunks of `batch`.
  const shares = splitIndices(o.n, Math.min(workers, o.n));
  const backends: string[] = [];
  const entry = new URL('./worker-entry.mjs', import.meta.url);
  const pool = shares.map(() => new Worker(entry));
  try {
    await Promise.all(
      pool.map(
        (w, i) =>
          new Promise<void>((resolve, reject) => {
            w.on('message', (m: WorkerMessage) => {
              switch (m.type) {
                case 'ready':
                  backends.push(m.backend);
                  o.onBackend?.(m.backend);
                  break;
                case 'step':
                  progress(m.images);
                  break;
                case 'frame':
                  frame(m.step, m.indices, m.data);
                  break;
                case 'result':
                  m.indices.forEach((k, j) => images.set(m.data.subarray(j * per, (j + 1) * per), k * per));
                  break;
                case 'done':
                  resolve();
                  break;
                case 'error':
                  reject(new Error(m.message));
                  break;
              }
            });
            w.on('error', reject);
            w.on('exit', (code) => reject(new Error(`sampling worker ${i} exited with code ${code} before finishing`)));
            const job: WorkerJob = { checkpointDir: o.checkpointDir, ema, method: o.method, seed: o.seed, indices: shares[i], batch, frameEvery: o.frameEvery };
            w.postMessage(job);
          }),
      ),
    );
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
  return { images, shape, steps, workers: pool.length, backends };
}
