import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatTrainTable, trainNotes, trainRows, type TrainCell, type TrainMeasurement } from '../../src/bench/trainRows.ts';
import { WORKER_TIE_MARGIN } from '../../reference/train/parallelism.ts';

const GiB = 2 ** 30;
/** Step times 1 ms – 10 min and peak memory 0.1–64 GiB: any training step the benchmark times. */
const ms = fc.double({ min: 1, max: 6e5, noNaN: true });
const rss = fc.double({ min: 0.1 * GiB, max: 64 * GiB, noNaN: true });

/** Synthetic measurements of one workload: PyTorch, one thread, and k workers. */
const workload = fc.record({
  model: fc.constantFrom('small', 'cifar10'),
  batch: fc.constantFrom(8, 32),
  k: fc.integer({ min: 2, max: 16 }),
  micro: fc.option(fc.integer({ min: 1, max: 7 }), { nil: undefined }),
  torch: ms,
  one: ms,
  many: ms,
  rssOne: rss,
  rssMany: rss,
  rssTorch: rss,
  runs: fc.integer({ min: 1, max: 7 }),
});

type W = typeof workload extends fc.Arbitrary<infer T> ? T : never;

function measurements(w: W): TrainMeasurement[] {
  const base = { model: w.model, batch: w.batch, runs: w.runs };
  return [
    { ...base, engine: 'PyTorch 2 threads', workers: 1, medianMs: w.torch, maxRssBytes: w.rssTorch },
    { ...base, engine: 'tfjs wasm', workers: 1, medianMs: w.one, maxRssBytes: w.rssOne, ...(w.micro !== undefined ? { microBatch: w.micro } : {}) },
    { ...base, engine: 'tfjs wasm', workers: w.k, medianMs: w.many, maxRssBytes: w.rssMany },
  ];
}

describe('6.11 The benchmark\'s training-step table (synthetic timings)', () => {
  it(`the row "as train runs it" is the K-worker step exactly when it beats one thread by more than ${WORKER_TIE_MARGIN * 100} % (train's rule), and every ratio is the time over PyTorch's  [unet.bench.asTrainRow]`, () =>
    fc.assert(
      fc.property(workload, (w) => {
        const rows = trainRows(measurements(w));
        expect(rows).toHaveLength(1);
        const r = rows[0];
        const asTrain = r.asTrain as TrainCell;
        const single = r.single as TrainCell;
        const wantMany = w.many < w.one * (1 - WORKER_TIE_MARGIN);
        expect(asTrain.workers).toBe(wantMany ? w.k : 1);
        expect(asTrain.ms).toBe(wantMany ? w.many : w.one);
        expect(asTrain.maxRssBytes).toBe(wantMany ? w.rssMany : w.rssOne);
        // The count not chosen is shown beside it; the chosen one is not repeated.
        expect(r.other?.workers).toBe(wantMany ? undefined : w.k);
        expect(single.ratio).toBe(w.one / w.torch);
        expect(asTrain.ratio).toBe(asTrain.ms / w.torch);
        expect(single.microBatch).toBe(w.micro);
        expect((r.torch as TrainCell).ms).toBe(w.torch);
      }),
    ));

  it('the table has one row per model, batch and engine, in the order measured, with the ratios, the worker count, the micro-batch, the peak RSS and a mark on steps timed once; skipped and failed steps are marked and explained  [unet.bench.tableRows]', () => {
    const m: TrainMeasurement[] = [
      { engine: 'PyTorch 2 threads', model: 'small', batch: 8, workers: 1, medianMs: 70, runs: 5, maxRssBytes: 0.3 * GiB },
      { engine: 'tfjs wasm', model: 'small', batch: 8, workers: 1, medianMs: 470, runs: 5, maxRssBytes: 0.4 * GiB },
      { engine: 'tfjs wasm', model: 'small', batch: 8, workers: 2, medianMs: 280, runs: 5, maxRssBytes: 0.6 * GiB },
      { engine: 'PyTorch 2 threads', model: 'cifar10', batch: 32, workers: 1, medianMs: 15_000, runs: 2, maxRssBytes: 2 * GiB },
      { engine: 'tfjs wasm', model: 'cifar10', batch: 32, workers: 1, microBatch: 4, medianMs: 90_000, runs: 1, maxRssBytes: 3.3 * GiB },
      { engine: 'tfjs wasm', model: 'cifar10', batch: 32, workers: 2, microBatch: 4, medianMs: 88_000, runs: 1, maxRssBytes: 6.5 * GiB },
      { engine: 'tfjs cpu', model: 'cifar10', batch: 32, workers: 1, skipped: 'estimated 20.0 min per step > --max-train-estimate-s 240' },
      { engine: 'tfjs cpu', model: 'cifar10', batch: 32, workers: 2, skipped: 'failed: out of memory' },
    ];
    const rows = trainRows(m);
    expect(rows.map((r) => `${r.model} b${r.batch} ${r.engine}`)).toEqual(['small b8 tfjs wasm', 'cifar10 b32 tfjs wasm', 'cifar10 b32 tfjs cpu']);
    const table = formatTrainTable(rows).split('\n');
    const row = (prefix: string): string => table.find((l) => l.startsWith(prefix)) ?? `no row ${prefix}`;
    expect(row('| small b8 | tfjs wasm |')).toBe('| small b8 | tfjs wasm | 470 ms (×6.71) | 280 ms (×4.00), 2 workers | 70.0 ms | 0.40 GiB / 0.60 GiB / 0.30 GiB |');
    // 88 s is not 5 % faster than 90 s: train keeps one thread, and the table says what 2 workers took.
    expect(row('| cifar10 b32 | tfjs wasm |')).toBe(
      '| cifar10 b32 | tfjs wasm | 90.0 s (×6.00)¹, micro-batches of 4 | 90.0 s (×6.00)¹, 1 thread, micro-batches of 4 (2 workers: 88.0 s) | 15.0 s | 3.30 GiB / 3.30 GiB / 2.00 GiB |',
    );
    expect(row('| cifar10 b32 | tfjs cpu |')).toBe('| cifar10 b32 | tfjs cpu | skipped³ | skipped³ | 15.0 s | — / — / 2.00 GiB |');
    expect(trainNotes(m)).toEqual([
      '³ tfjs cpu, cifar10 b32 training step: estimated 20.0 min per step > --max-train-estimate-s 240',
      '² tfjs cpu ×2 workers, cifar10 b32 training step: failed: out of memory',
    ]);
  });

  it('without PyTorch the ratios are absent, not invented  [unet.bench.noTorchNoRatio]', () => {
    const rows = trainRows([{ engine: 'tfjs wasm', model: 'small', batch: 8, workers: 1, medianMs: 470, runs: 3 }]);
    expect((rows[0].single as TrainCell).ratio).toBeNull();
    expect(rows[0].torch).toBeNull();
    expect(formatTrainTable(rows)).toContain('| small b8 | tfjs wasm | 470 ms | 470 ms, 1 thread | — | ? / ? / — |');
  });
});
