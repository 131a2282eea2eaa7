/**
 * A benchmark worker thread: its own tfjs backend and its own copy of the parameters; runs its share of a
 * workload's batch each time it is asked. Started by `engine.ts` (`--workers K`).
 *
 * @module
 */
import { parentPort } from 'node:worker_threads';
import { initBackend } from '../backend.ts';
import type { UNetParams } from '../../reference/unet/params.ts';
import { benchParams, BENCH_MODELS, prepare, type Prepared, type Workload } from './workloads.ts';

const port = parentPort!;
const params = new Map<string, UNetParams>();
const prepared = new Map<string, Prepared>();
let ready: Promise<unknown> | null = null;

port.on('message', async (m: { op: 'prepare' | 'run'; id: number; workload: Workload; backend: string }) => {
  try {
    ready ??= initBackend({ name: m.backend });
    await ready;
    const key = JSON.stringify(m.workload);
    if (!params.has(m.workload.model)) params.set(m.workload.model, benchParams(BENCH_MODELS[m.workload.model]));
    if (!prepared.has(key)) prepared.set(key, prepare(m.workload, params.get(m.workload.model)!));
    if (m.op === 'run') await prepared.get(key)!.run();
    port.postMessage({ id: m.id, ok: true });
  } catch (e) {
    port.postMessage({ id: m.id, ok: false, error: e instanceof Error ? e.message : String(e) });
  }
});
