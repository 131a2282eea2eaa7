/**
 * A gradient worker thread (see `parallel.ts`): its own tfjs backend and its own copy of the model. Each step it
 * copies the current parameters out of shared memory, computes the mean loss of its shard of the batch and the
 * gradient of every parameter, writes the gradients into its shared buffer, and answers with the loss.
 *
 * @module
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend.ts';
import { Rng } from '../../src/numeric/rng.ts';
import { installGradients } from '../grad/index.ts';
import type { DiffusionTrainConfig, ModelConfig } from './config.ts';
import { diffusionFor } from './loop.ts';
import { batchLossAndGradients } from './microbatch.ts';
import { createModel } from './model.ts';

/** The first message: what to build and where the shared buffers are. */
export interface WorkerInit {
  type: 'init';
  backend: string;
  model: ModelConfig;
  diffusion: DiffusionTrainConfig;
  /** Parameters, concatenated in the model's name order. */
  params: SharedArrayBuffer;
  /** This worker's gradients, same layout. */
  grads: SharedArrayBuffer;
  /** Accumulate the shard's gradient over micro-batches of at most this many examples (`microbatch.ts`). */
  microBatch?: number;
}

/** One shard of one step. */
export interface WorkerStep {
  type: 'step';
  x0: Float32Array;
  t: number[];
  noise: Float32Array;
  dropoutSeed: number;
  shape: number[];
}

export type WorkerReply = { type: 'ready'; backend: string } | { type: 'loss'; loss: number } | { type: 'error'; message: string };

const port = parentPort;
if (port === null) throw new Error('reference/train/gradWorker.ts must run in a worker thread');

let state: {
  model: ReturnType<typeof createModel>;
  diffusion: ReturnType<typeof diffusionFor>;
  params: Float32Array;
  grads: Float32Array;
  offsets: number[];
  microBatch?: number;
} | null = null;

async function init(m: WorkerInit): Promise<string> {
  const report = await initBackend({ name: m.backend });
  installGradients();
  const model = createModel(m.model, new Rng(0)); // values are overwritten from shared memory every step
  const offsets: number[] = [];
  let off = 0;
  for (const n of model.names) {
    offsets.push(off);
    off += model.variables.get(n)!.size;
  }
  const params = new Float32Array(m.params);
  const grads = new Float32Array(m.grads);
  if (params.length !== off || grads.length !== off) throw new Error(`gradWorker: shared buffers hold ${params.length} and ${grads.length} values, the model has ${off}`);
  state = { model, diffusion: diffusionFor(m.diffusion), params, grads, offsets, microBatch: m.microBatch };
  return report.chosen;
}

async function step(m: WorkerStep): Promise<number> {
  if (state === null) throw new Error('gradWorker: step before init');
  const { model, diffusion, params, grads, offsets } = state;
  const vars = model.names.map((n) => model.variables.get(n)!);
  vars.forEach((v, i) => tf.tidy(() => v.assign(tf.tensor(params.subarray(offsets[i], offsets[i] + v.size), v.shape, 'float32'))));
  const { loss: value, grads: g } = batchLossAndGradients(model, diffusion, m, state.microBatch);
  try {
    const loss = (await value.data())[0];
    for (let i = 0; i < vars.length; i++) grads.set((await g.get(model.names[i])!.data()) as Float32Array, offsets[i]);
    return loss;
  } finally {
    tf.dispose([value, ...g.values()]);
  }
}

port.on('message', (m: WorkerInit | WorkerStep | { type: 'close' }) => {
  const reply = (r: WorkerReply): void => port.postMessage(r);
  if (m.type === 'close') {
    state?.model.dispose();
    state?.diffusion.dispose();
    port.close();
    return;
  }
  (m.type === 'init' ? init(m).then((b) => reply({ type: 'ready', backend: b })) : step(m).then((loss) => reply({ type: 'loss', loss }))).catch((e: unknown) =>
    reply({ type: 'error', message: e instanceof Error ? e.message : String(e) }),
  );
});
