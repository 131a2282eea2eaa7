/**
 * The benchmark's training-step table: from the measured steps (one thread, K worker threads, PyTorch), the rows
 * "one thread" and "as `ddpm-spec train` runs it by default" — the worker count `train`'s rule
 * (`fasterWorkers`, `reference/train/parallelism.ts`) picks from these same timings, with the micro-batch it
 * would take — beside PyTorch, with ratios and peak resident memory. Pure: no timing happens here.
 *
 * @module
 */
import { fasterWorkers } from '../../reference/train/parallelism.ts';

/** One timed training step of one engine (a tfjs backend with a worker count, or PyTorch), in its own process. */
export interface TrainMeasurement {
  /** `tfjs wasm`, `tfjs cpu`, …, or `PyTorch 2 threads`. */
  engine: string;
  model: string;
  batch: number;
  /** Worker threads (1: the engine's own thread; PyTorch: 1). */
  workers: number;
  /** Micro-batch per thread (undefined: one pass). */
  microBatch?: number;
  /** Median over the timed steps (absent: skipped or failed, see `skipped`). */
  medianMs?: number;
  /** Timed steps (1: the warm-up step was the measurement). */
  runs?: number;
  /** Peak resident memory of the engine's process after its steps (bytes; for tfjs it includes the worker threads). */
  maxRssBytes?: number;
  /** The wasm heap's size after the steps (bytes; wasm engines only): to measure `WASM_STEP_MEMORY` again. */
  wasmHeapBytes?: number;
  skipped?: string;
}

/** One measured cell of the table. */
export interface TrainCell {
  ms: number;
  workers: number;
  microBatch?: number;
  runs: number;
  maxRssBytes?: number;
  /** Time over PyTorch's (lower is better); null without a PyTorch time. */
  ratio: number | null;
}

/** One row: a model and batch on one tfjs backend. */
export interface TrainRow {
  model: string;
  batch: number;
  engine: string;
  single: TrainCell | { skipped: string } | null;
  /** As `train` runs it: the faster by `train`'s rule of the one-thread and the K-worker step. */
  asTrain: TrainCell | { skipped: string } | null;
  /** The K-worker step when it was timed and not chosen (shown so that the choice can be checked). */
  other: TrainCell | null;
  torch: TrainCell | { skipped: string } | null;
}

const REF = 'PyTorch 2 threads';

function cell(m: TrainMeasurement | undefined, refMs: number | undefined): TrainCell | { skipped: string } | null {
  if (m === undefined) return null;
  if (m.medianMs === undefined) return { skipped: m.skipped ?? 'not timed' };
  return {
    ms: m.medianMs,
    workers: m.workers,
    ...(m.microBatch !== undefined ? { microBatch: m.microBatch } : {}),
    runs: m.runs ?? 1,
    ...(m.maxRssBytes !== undefined ? { maxRssBytes: m.maxRssBytes } : {}),
    ratio: refMs !== undefined ? m.medianMs / refMs : null,
  };
}

const timed = (c: TrainCell | { skipped: string } | null): c is TrainCell => c !== null && 'ms' in c;

/** The rows, one per (model, batch, tfjs engine), in the order the workloads first appear. */
export function trainRows(ms: readonly TrainMeasurement[]): TrainRow[] {
  const rows: TrainRow[] = [];
  const keys: string[] = [];
  for (const m of ms) {
    const k = JSON.stringify([m.model, m.batch, m.engine]);
    if (m.engine !== REF && !keys.includes(k)) keys.push(k);
  }
  for (const k of keys) {
    const [model, batch, engine] = JSON.parse(k) as [string, number, string];
    const of = (e: string): TrainMeasurement[] => ms.filter((m) => m.model === model && m.batch === batch && m.engine === e);
    const t = of(REF)[0];
    const refMs = t?.medianMs;
    const ours = of(engine);
    const single = cell(ours.find((m) => m.workers === 1), refMs);
    const many = cell(ours.find((m) => m.workers > 1), refMs);
    let asTrain = single;
    let other: TrainCell | null = timed(many) ? many : null;
    if (timed(many)) {
      const w = fasterWorkers([...(timed(single) ? [{ workers: 1, ms: single.ms }] : []), { workers: many.workers, ms: many.ms }]);
      if (w > 1) {
        asTrain = many;
        other = null;
      }
    }
    rows.push({ model, batch, engine, single, asTrain, other, torch: cell(t, undefined) });
  }
  return rows;
}

/** A duration for the table: seconds from 10 s, whole milliseconds from 100 ms, tenths below. */
export function fmtMs(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`;
}

/** Bytes as GiB with two decimals. */
export function fmtGiB(b: number | undefined): string {
  return b === undefined ? '?' : `${(b / 2 ** 30).toFixed(2)} GiB`;
}

function fmtCell(c: TrainCell | { skipped: string } | null, withThreads: boolean): string {
  if (c === null) return '—';
  if (!timed(c)) return c.skipped.startsWith('failed') ? 'failed²' : 'skipped³';
  const how = [withThreads ? (c.workers > 1 ? `${c.workers} workers` : '1 thread') : '', c.microBatch !== undefined ? `micro-batches of ${c.microBatch}` : ''].filter(Boolean).join(', ');
  return `${fmtMs(c.ms)}${c.ratio !== null ? ` (×${c.ratio.toFixed(2)})` : ''}${c.runs === 1 ? '¹' : ''}${how ? `, ${how}` : ''}`;
}

/** The markdown table and its notes. */
export function formatTrainTable(rows: readonly TrainRow[]): string {
  const lines = [
    'training step (forward, backward, clipping, Adam, EMA): median per step; ×: ratio to PyTorch with 2 threads (lower is better); peak RSS of each engine\'s own process',
    '',
    '| training step | engine | 1 thread | as `train` runs it | PyTorch 2 threads | peak RSS: 1 thread / as `train` / PyTorch |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const rss = [r.single, r.asTrain, r.torch].map((c) => (timed(c) ? fmtGiB(c.maxRssBytes) : '—')).join(' / ');
    const asTrain = fmtCell(r.asTrain, true) + (r.other ? ` (${r.other.workers} workers: ${fmtMs(r.other.ms)})` : '');
    lines.push(`| ${r.model} b${r.batch} | ${r.engine} | ${fmtCell(r.single, false)} | ${asTrain} | ${fmtCell(r.torch, false)} | ${rss} |`);
  }
  lines.push('');
  lines.push('"as `train` runs it": the worker count `ddpm-spec train` picks by its rule (the faster of 1 and min(cores, batch) worker threads, more workers only when faster by more than 5 %) applied to this run\'s timings, with the micro-batch it would take; in parentheses the count it did not pick.');
  lines.push('¹ timed once (a step longer than the repetition policy allows): the warm-up step, or one step after it.');
  return lines.join('\n');
}

/** The notes for skipped (³) and failed (²) cells, one line each. */
export function trainNotes(ms: readonly TrainMeasurement[]): string[] {
  return ms
    .filter((m) => m.skipped !== undefined)
    .map((m) => `${m.skipped!.startsWith('failed') ? '²' : '³'} ${m.engine}${m.workers > 1 ? ` ×${m.workers} workers` : ''}, ${m.model} b${m.batch} training step: ${m.skipped}`);
}
