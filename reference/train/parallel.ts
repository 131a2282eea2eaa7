/**
 * Data-parallel gradients over worker threads, so that training uses every core even on the single-threaded
 * wasm backend.
 *
 * The calling thread keeps the model, the optimiser, the random streams and the checkpoints, exactly as in a
 * single-threaded run. The current parameters live in shared memory (copied from the model once, then written
 * by every update). Each step the calling thread splits the batch into K contiguous shards (sizes as equal as
 * possible), and each worker thread — its own backend, its own copy of the model — computes the mean loss of its
 * shard and its gradient into its own shared buffer. The calling thread combines them,
 *
 * $$L = \sum_k \frac{n_k}{B} L_k,\qquad g = \sum_k \frac{n_k}{B}\, g_k,$$
 *
 * (the mean over the whole batch, in the fixed order k = 0, 1, …), and applies the same clipping, Adam and EMA
 * as the single-threaded loop straight from the flat sum (`optimStepFlat`), writing the new parameters into the
 * shared buffer the workers read next step and into the model's variables. Shard k's dropout masks use the
 * seed `dropoutSeed + 7919·k`.
 *
 * A run is deterministic for a given seed, backend and number of workers; different numbers of workers agree to
 * float32 rounding (and differ in dropout masks).
 *
 * @module
 */
import { Worker } from 'node:worker_threads';
import type { DiffusionTrainConfig, ModelConfig } from './config.ts';
import type { WorkerInit, WorkerReply, WorkerStep } from './gradWorker.ts';
import type { TrainableModel } from './model.ts';

/** Split 0 … n−1 into k contiguous ranges of nearly equal size (empty ranges dropped). */
export function shardRanges(n: number, k: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < k; i++) {
    const a = Math.floor((i * n) / k);
    const b = Math.floor(((i + 1) * n) / k);
    if (b > a) out.push([a, b]);
  }
  return out;
}

/** Worker threads computing the gradients of batch shards. */
export class GradientWorkers {
  private constructor(
    private readonly workers: Worker[],
    private readonly params: Float32Array,
    private readonly grads: Float32Array[],
    readonly backends: string[],
  ) {
    this.sum = new Float32Array(params.length);
  }

  /** The weighted sum of the workers' gradients (reused every step). */
  private readonly sum: Float32Array;
  /** Whether {@link params} holds the model's current parameters. */
  private synced = false;

  /** Start `k` workers with their own backend (`backend`, normally the calling thread's) and model copy. */
  static async start(k: number, model: TrainableModel, config: { model: ModelConfig; diffusion: DiffusionTrainConfig }, backend: string, microBatch?: number): Promise<GradientWorkers> {
    if (!Number.isInteger(k) || k < 2) throw new RangeError(`GradientWorkers: need at least 2 workers, got ${k}`);
    const total = model.names.reduce((s, n) => s + model.variables.get(n)!.size, 0);
    const paramsSab = new SharedArrayBuffer(4 * total);
    const gradSabs = Array.from({ length: k }, () => new SharedArrayBuffer(4 * total));
    const module = new URL('./gradWorker.ts', import.meta.url).href;
    const workers = Array.from({ length: k }, () => new Worker(new URL('./worker-entry.mjs', import.meta.url), { workerData: { module } }));
    const pool = new GradientWorkers(workers, new Float32Array(paramsSab), gradSabs.map((s) => new Float32Array(s)), []);
    try {
      const ready = await Promise.all(
        workers.map((w, i) => pool.ask(w, { type: 'init', backend, model: config.model, diffusion: config.diffusion, params: paramsSab, grads: gradSabs[i], microBatch } satisfies WorkerInit)),
      );
      pool.backends.push(...ready.map((r) => (r as { backend: string }).backend));
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  get size(): number {
    return this.workers.length;
  }

  private ask(w: Worker, m: WorkerInit | WorkerStep): Promise<WorkerReply> {
    return new Promise((resolve, reject) => {
      const onMessage = (r: WorkerReply): void => {
        cleanup();
        if (r.type === 'error') reject(new Error(`gradient worker: ${r.message}`));
        else resolve(r);
      };
      const onError = (e: Error): void => {
        cleanup();
        reject(e);
      };
      const cleanup = (): void => {
        w.off('message', onMessage);
        w.off('error', onError);
      };
      w.on('message', onMessage);
      w.on('error', onError);
      w.postMessage(m);
    });
  }

  /**
   * The parameters the workers read, in the model's name order: {@link lossAndGradients} fills it from the
   * model's variables on its first call; after that whoever updates the model writes the new parameters here
   * (`optimStepFlat` does), so the variables are not read back every step. Call {@link paramsChanged} after
   * changing the variables any other way.
   */
  get sharedParams(): Float32Array {
    return this.params;
  }

  /** The model's variables changed behind the shared buffer's back: copy them again before the next step. */
  paramsChanged(): void {
    this.synced = false;
  }

  /**
   * The mean loss and gradient of a batch, computed by the workers at the model's current parameters. The
   * gradient is flat, in the model's name order, in a buffer the pool reuses: valid until the next call.
   */
  async lossAndGradients(
    model: TrainableModel,
    d: { x0: Float32Array; t: number[]; noise: Float32Array; dropoutSeed: number; shape: number[] },
  ): Promise<{ loss: number; grad: Float32Array }> {
    if (!this.synced) {
      let off = 0;
      for (const n of model.names) {
        const v = model.variables.get(n)!;
        this.params.set((await v.data()) as Float32Array, off);
        off += v.size;
      }
      this.synced = true;
    }
    const B = d.shape[0];
    const per = d.x0.length / B;
    const shards = shardRanges(B, this.workers.length);
    const replies = await Promise.all(
      shards.map(([a, b], k) =>
        this.ask(this.workers[k], {
          type: 'step',
          x0: d.x0.slice(a * per, b * per),
          t: d.t.slice(a, b),
          noise: d.noise.slice(a * per, b * per),
          dropoutSeed: d.dropoutSeed + 7919 * k,
          shape: [b - a, ...d.shape.slice(1)],
        }),
      ),
    );
    const w = shards.map(([a, b]) => (b - a) / B);
    let loss = 0;
    replies.forEach((r, k) => (loss += w[k] * (r as { loss: number }).loss));
    const sum = this.sum;
    sum.fill(0);
    for (let k = 0; k < shards.length; k++) {
      const g = this.grads[k];
      const wk = w[k];
      for (let i = 0; i < sum.length; i++) sum[i] += wk * g[i];
    }
    return { loss, grad: sum };
  }

  async close(): Promise<void> {
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            w.once('exit', () => resolve());
            w.postMessage({ type: 'close' });
            setTimeout(() => void w.terminate(), 2000).unref();
          }),
      ),
    );
  }
}
