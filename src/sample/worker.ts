/**
 * A sampling worker thread: its own tfjs backend (`initBackend()`, so `DDPM_BACKEND` applies), its own copy of
 * the checkpoint, and a share of the images. Started by `pool.ts` through `worker-entry.mjs`.
 *
 * @module
 */
import { parentPort } from 'node:worker_threads';
import { initBackend } from '../backend.ts';
import { loadCheckpoint } from '../../reference/unet/checkpoint.ts';
import { disposeParams } from '../../reference/unet/params.ts';
import type { WorkerJob, WorkerMessage } from './protocol.ts';
import { sampleChunk } from './sampler.ts';

const port = parentPort;
if (port === null) throw new Error('src/sample/worker.ts must run in a worker thread');

function post(m: WorkerMessage): void {
  const transfer = 'data' in m ? [m.data.buffer as ArrayBuffer] : [];
  port!.postMessage(m, transfer);
}

port.once('message', async (job: WorkerJob) => {
  try {
    const report = await initBackend();
    post({ type: 'ready', backend: report.chosen });
    const { checkpoint, params } = loadCheckpoint(job.checkpointDir, { ema: job.ema });
    try {
      for (let i = 0; i < job.indices.length; i += job.batch) {
        const indices = job.indices.slice(i, i + job.batch);
        const data = await sampleChunk({
          unet: checkpoint.unet,
          params,
          diffusion: checkpoint.diffusion,
          method: job.method,
          seed: job.seed,
          indices,
          onStep: (r) => post({ type: 'step', images: r.images }),
          frameEvery: job.frameEvery,
          onFrame: (step, d) => post({ type: 'frame', step, indices, data: d.slice() }),
        });
        post({ type: 'result', indices, data: data.slice() });
      }
    } finally {
      disposeParams(params);
    }
    post({ type: 'done' });
  } catch (e) {
    post({ type: 'error', message: e instanceof Error ? e.message : String(e) });
  }
});
