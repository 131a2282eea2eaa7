/**
 * One tfjs engine of the benchmark, in its own process: `node --import tsx src/bench/engine.ts --backend NAME
 * [--workers K]`. It reads requests as JSON lines on stdin and answers each with one line `@@bench {json}` on
 * stdout, so that the coordinator (`main.ts`) can interleave engines and never run two at once.
 *
 * A training step (`kind: 'train'`) is run as the request's `train` variant asks — on this thread or on `train`'s
 * gradient worker threads — and its answer carries the process's peak resident memory (`maxRssBytes`) and the
 * wasm heap's size (`wasmHeapBytes`); the coordinator starts a fresh engine for each, so that the peak is the step's.
 *
 * With `--workers K`, a forward or sampling workload's batch is split over K worker threads, each with its own backend (how
 * `ddpm-spec sample` uses several cores with the single-threaded wasm backend); a timed run lasts until all
 * of them have finished.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { createInterface } from 'node:readline';
import { Worker } from 'node:worker_threads';
import { initBackend } from '../backend.ts';
import { LAYER_KINDS, type LayerKind } from '../../reference/unet/model.ts';
import type { UNetParams } from '../../reference/unet/params.ts';
import { splitIndices } from '../sample/pool.ts';
import { benchParams, BENCH_MODELS, prepare, prepareTrain, timeRuns, type Prepared, type TimingOptions, type TrainVariant, type Workload } from './workloads.ts';

type Request =
  | { op: 'time'; workload: Workload; timing: TimingOptions; train?: TrainVariant }
  | { op: 'profile'; workload: Workload; reps: number }
  | { op: 'matmul' }
  | { op: 'quit' };

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const backend = arg('--backend') ?? 'wasm';
const workers = Number(arg('--workers') ?? '0');
const report = await initBackend({ name: backend });
const params = new Map<string, UNetParams>();

function paramsFor(model: string): UNetParams {
  let p = params.get(model);
  if (p === undefined) params.set(model, (p = benchParams(BENCH_MODELS[model])));
  return p;
}

// ---- worker threads (--workers K) -----------------------------------------------------------------
let pool: Worker[] = [];
let nextId = 0;
const pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
function call(w: Worker, op: 'prepare' | 'run', workload: Workload): Promise<void> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.postMessage({ op, id, workload, backend });
  });
}
if (workers > 0) {
  const module = new URL('./thread.ts', import.meta.url).href;
  pool = Array.from({ length: workers }, () => new Worker(new URL('./thread-entry.mjs', import.meta.url), { workerData: { module } }));
  for (const w of pool) {
    w.on('message', (m: { id: number; ok: boolean; error?: string }) => {
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.ok) p?.resolve();
      else p?.reject(new Error(m.error));
    });
  }
}

async function prepared(w: Workload): Promise<Prepared> {
  if (workers === 0) return prepare(w, paramsFor(w.model));
  const shares = splitIndices(w.batch, workers).map((s) => ({ ...w, batch: s.length }));
  const used = pool.slice(0, shares.length);
  await Promise.all(used.map((t, i) => call(t, 'prepare', shares[i])));
  return { run: async () => void (await Promise.all(used.map((t, i) => call(t, 'run', shares[i])))), dispose: () => {} };
}

async function handle(r: Request): Promise<unknown> {
  switch (r.op) {
    case 'time': {
      // A training step runs its own worker threads (`train`'s), not this engine's --workers pool.
      const p = r.workload.kind === 'train' ? await prepareTrain(r.workload, r.train ?? { workers: 1 }) : await prepared(r.workload);
      try {
        const t = await timeRuns(p, r.timing);
        // Peak resident memory of this process so far (with its worker threads), and the wasm heap's size.
        const heap = (tf.backend() as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.buffer.byteLength;
        return { ...t, maxRssBytes: process.resourceUsage().maxRSS * 1024, ...(heap !== undefined ? { wasmHeapBytes: heap } : {}) };
      } finally {
        await p.dispose();
      }
    }
    case 'profile': {
      if (workers > 0) throw new Error('profile runs on one thread');
      const sums = new Map<LayerKind, number>(LAYER_KINDS.map((k) => [k, 0]));
      const p = prepare(r.workload, paramsFor(r.workload.model), (k, ms) => sums.set(k, sums.get(k)! + ms));
      await p.run(); // warm-up, not counted
      for (const k of LAYER_KINDS) sums.set(k, 0);
      const t0 = performance.now();
      for (let i = 0; i < r.reps; i++) await p.run();
      const totalMs = (performance.now() - t0) / r.reps;
      p.dispose();
      return { totalMs, layers: Object.fromEntries([...sums].map(([k, v]) => [k, v / r.reps])) };
    }
    case 'matmul': {
      const n = 1024;
      const a = tf.randomNormal([n, n], 0, 1, 'float32', 1);
      const b = tf.randomNormal([n, n], 0, 1, 'float32', 2);
      let best = Infinity;
      for (let i = 0; i < 4; i++) {
        const t0 = performance.now();
        const c = tf.matMul(a, b);
        await c.data();
        best = Math.min(best, performance.now() - t0);
        c.dispose();
      }
      tf.dispose([a, b]);
      return { n, gflops: (2 * n ** 3) / best / 1e6 };
    }
    case 'quit':
      return null;
  }
}

const rl = createInterface({ input: process.stdin });
process.stdout.write(`@@bench ${JSON.stringify({ ready: true, backend: report.chosen, adapter: report.adapter ?? null, workers })}\n`);
for await (const line of rl) {
  if (line.trim() === '') continue;
  const r = JSON.parse(line) as Request;
  let out: unknown;
  try {
    out = { ok: true, result: await handle(r) };
  } catch (e) {
    out = { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  process.stdout.write(`@@bench ${JSON.stringify(out)}\n`);
  if (r.op === 'quit') break;
}
await Promise.all(pool.map((w) => w.terminate()));
process.exit(0);
