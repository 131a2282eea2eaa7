import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { latestCheckpointDir, readTrainCheckpoint } from '../../reference/train/checkpoint.ts';
import { train } from '../../reference/train/loop.ts';
import {
  autoMicroBatch,
  describeParallelism,
  fasterWorkers,
  largestFittingMicroBatch,
  singleThreadReason,
  stepBytesEstimate,
  threadMemoryBytes,
  workerCandidates,
  WORKER_TIE_MARGIN,
  type ParallelismChoice,
} from '../../reference/train/parallelism.ts';
import { CIFAR10_CONFIG, SMALL_CONFIG, UNetConfig } from '../../reference/unet/config.ts';
import { countParams } from '../../reference/unet/params.ts';
import { differing, moons, runCli, tensorBytes, tinyMoonsConfig as config } from './support/runs.ts';

const BACKENDS = ['wasm', 'cpu', 'webgpu', 'tensorflow'];
const GiB = 2 ** 30;
/** Cores 1–256 and batches 1–4096: every machine and batch the CLI accepts in practice. */
const cores = fc.integer({ min: 1, max: 256 });
const batch = fc.integer({ min: 1, max: 4096 });

const unet = (c: unknown) => ({ kind: 'unet' as const, unet: UNetConfig.parse(c) });
const CIFAR = unet(CIFAR10_CONFIG);
const SMALL = unet(SMALL_CONFIG);
const P_CIFAR = countParams(CIFAR.unet);
const P_SMALL = countParams(SMALL.unet);

describe('7.13 Using every core: the worker count and micro-batch train chooses', () => {
  it('the counts tried are 1 and min(cores, batch), the second only on a single-threaded backend with something to split, and a reason is given exactly when only 1 is tried  [training.parallelism.candidates]', () =>
    fc.assert(
      fc.property(fc.constantFrom(...BACKENDS), cores, batch, (backend, c, b) => {
        const ks = workerCandidates(backend, c, b);
        const single = backend === 'wasm' || backend === 'cpu';
        expect(ks[0]).toBe(1);
        expect(ks).toEqual(single && Math.min(c, b) > 1 ? [1, Math.min(c, b)] : [1]);
        expect(singleThreadReason(backend, c, b) === null).toBe(ks.length === 2);
      }),
    ));

  it(`more workers are chosen exactly when faster than one thread by more than ${WORKER_TIE_MARGIN * 100} %, whatever the order of the timings; unusable timings are ignored  [training.parallelism.fasterWins]`, () =>
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 64 }),
        // Times 0.01 ms – 10 min: any gradient a run can take.
        fc.double({ min: 0.01, max: 6e5, noNaN: true }),
        fc.double({ min: 0.01, max: 6e5, noNaN: true }),
        fc.boolean(),
        fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, 0, -1),
        (k, t1, tk, swap, bad) => {
          const ts = [
            { workers: 1, ms: t1 },
            { workers: k, ms: tk },
          ];
          const want = tk < t1 * (1 - WORKER_TIE_MARGIN) ? k : 1;
          expect(fasterWorkers(swap ? ts.reverse() : ts)).toBe(want);
          expect(fasterWorkers([...ts, { workers: k + 1, ms: bad }])).toBe(want);
          expect(fasterWorkers([{ workers: k, ms: bad }])).toBe(1);
        },
      ),
    ));

  it('the micro-batch is none when the share fits, else the fewest even chunks that fit (1 when even one example does not)  [training.parallelism.microFits]', () =>
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 512 }),
        // bytes(n) = fixed + n · perExample; the limit admits `fit` examples (0: not one; ≥ perThread: all) plus a
        // fraction of one more, so that every case — none, some, all fit — is drawn often.
        fc.integer({ min: 0, max: 1e9 }),
        fc.integer({ min: 1, max: 1e7 }),
        fc.integer({ min: 0, max: 600 }),
        fc.double({ min: 0, max: 0.999, noNaN: true }),
        (perThread, fixed, per, fit, frac) => {
          const limit = fixed + per * (fit + frac);
          const bytes = (n: number): number => fixed + per * n;
          const m = largestFittingMicroBatch(perThread, bytes, limit);
          if (bytes(perThread) <= limit) {
            expect(m).toBeUndefined();
            return;
          }
          expect(m).toBeDefined();
          expect(m!).toBeGreaterThanOrEqual(1);
          expect(m!).toBeLessThanOrEqual(Math.max(1, perThread - 1));
          if (bytes(1) > limit) {
            expect(m).toBe(1);
            return;
          }
          expect(bytes(m!)).toBeLessThanOrEqual(limit);
          const chunks = Math.ceil(perThread / m!);
          // One chunk fewer would need a chunk that does not fit.
          expect(bytes(Math.ceil(perThread / (chunks - 1)))).toBeGreaterThan(limit);
          // Even chunks: no smaller micro-batch gives as few chunks.
          if (m! > 1) expect(Math.ceil(perThread / (m! - 1))).toBeGreaterThan(chunks);
        },
      ),
    ));

  it('the memory estimate covers the measured wasm peaks (CIFAR-10: 1.83 GB at 4 examples, 2.40 at 8, 3.40 at 16; small UNet: 51 MB at 2, 73 at 4, 260 at 32) by at most 25 %, fits 16 CIFAR-10 examples per thread and refuses 18, so train takes the CIFAR-10 batch of 8 in one pass and 32 on one thread in micro-batches of 16  [training.parallelism.memoryMatchesMeasured]', () => {
    const measured: Array<[typeof CIFAR, number, number, number]> = [
      // the wasm heap after two steps in a fresh process, tfjs 4.22, rounded up (see WASM_STEP_MEMORY)
      [CIFAR, P_CIFAR, 4, 1_828_000_000],
      [CIFAR, P_CIFAR, 8, 2_401_000_000],
      [CIFAR, P_CIFAR, 16, 3_405_000_000],
      [SMALL, P_SMALL, 2, 51_000_000],
      [SMALL, P_SMALL, 4, 73_500_000],
      [SMALL, P_SMALL, 32, 260_400_000],
    ];
    for (const [m, p, n, bytes] of measured) {
      const est = stepBytesEstimate(m, p, n);
      expect(est, `${n} examples: estimate ${est} under the measured ${bytes}`).toBeGreaterThanOrEqual(bytes);
      expect(est, `${n} examples: estimate ${est} more than 25 % over the measured ${bytes}`).toBeLessThanOrEqual(1.25 * bytes);
    }
    const wasm = threadMemoryBytes('wasm', 64 * GiB);
    expect(stepBytesEstimate(CIFAR, P_CIFAR, 16)).toBeLessThanOrEqual(wasm);
    expect(stepBytesEstimate(CIFAR, P_CIFAR, 18)).toBeGreaterThan(wasm);
    expect(autoMicroBatch(CIFAR, P_CIFAR, 'wasm', 8, 64 * GiB)).toBeUndefined();
    expect(autoMicroBatch(CIFAR, P_CIFAR, 'wasm', 32, 64 * GiB)).toBe(16);
    expect(autoMicroBatch(SMALL, P_SMALL, 'wasm', 32, 64 * GiB)).toBeUndefined();
  });

  it('the line names the count, the micro-batch and why: the timings compared, the option, the checkpoint (and what an option overrides), the memory estimate  [training.parallelism.lineSaysWhy]', () => {
    const base = { batch: 32, microFrom: 'whole' as const };
    const lines: Array<[ParallelismChoice, RegExp]> = [
      [
        { ...base, workers: 2, workersFrom: 'calibration', timings: [{ workers: 1, ms: 410 }, { workers: 2, ms: 260 }] },
        /^parallelism: 2 worker threads \(the faster for a gradient of batch 32: 1 thread 410 ms, 2 worker threads 260 ms\); the whole share in one pass$/,
      ],
      [{ ...base, workers: 1, workersFrom: 'single', singleReason: 'this machine has one core' }, /^parallelism: 1 thread \(this machine has one core\); the whole batch in one pass$/],
      [{ ...base, workers: 1, workersFrom: 'option', recordedWorkers: 2 }, /^parallelism: 1 thread \(--workers, overriding the 2 the checkpoint recorded\)/],
      [{ ...base, workers: 2, workersFrom: 'option', recordedWorkers: 2 }, /^parallelism: 2 worker threads \(--workers\);/],
      [{ ...base, workers: 2, workersFrom: 'checkpoint', microBatch: 4, microFrom: 'checkpoint' }, /^parallelism: 2 worker threads \(as the checkpoint recorded\); micro-batches of 4 \(as the checkpoint recorded\)$/],
      [{ ...base, workers: 1, workersFrom: 'option', microBatch: 2, microFrom: 'option', recordedMicroBatch: null }, /micro-batches of 2 \(--micro-batch, overriding the checkpoint's whole batch\)$/],
      [
        { ...base, batch: 8, workers: 1, workersFrom: 'option', microBatch: 4, microFrom: 'memory', memory: { perThread: 8, bytes: 5.1 * GiB, limitBytes: 3.75 * GiB, backend: 'wasm' } },
        /; micro-batches of 4 \(8 examples at once need ~5\.1 GiB, the wasm backend allows 3\.8 GiB per thread\)$/,
      ],
    ];
    for (const [c, re] of lines) {
      const line = describeParallelism(c);
      expect(line).not.toContain('\n');
      expect(line).toMatch(re);
    }
  });
});

const tmp = (): string => mkdtempSync(join(tmpdir(), 'ddpm-par-'));
/** Worker threads start a backend each: on the default backend only (as in 7.5). */
const onDefaultBackend = process.env.DDPM_TEST_SET !== 'backend';

describe('7.13 Using every core: the choice leaves the run unchanged', () => {
  it.runIf(onDefaultBackend)(
    'a run that times its worker count gives bit for bit the run with that count given, records the count and micro-batch in its checkpoints, and a resumed run keeps them  [training.parallelism.autoKeepsNumbers]',
    async () => {
      const [auto, given, single] = [tmp(), tmp(), tmp()];
      try {
        const lines: string[] = [];
        const a = await train({ config: config(), dataName: 'moons', openData: moons, outDir: auto, steps: 5, workers: 'auto', microBatch: 'auto', cores: 2, onParallelism: (_, l) => lines.push(l) });
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(/^parallelism: (1 thread|2 worker threads) \(the faster for a gradient of batch 16: 1 thread \d+ ms, 2 worker threads \d+ ms\); the whole (batch|share) in one pass/);
        await train({ config: config(), dataName: 'moons', openData: moons, outDir: given, steps: 5, workers: a.workers });
        expect(differing(tensorBytes(latestCheckpointDir(auto)!), tensorBytes(latestCheckpointDir(given)!))).toEqual([]);
        const state = readTrainCheckpoint(latestCheckpointDir(auto)!).state;
        expect([state.workers, state.micro_batch]).toEqual([a.workers, null]);
        // Resumed without options: the recorded count, no calibration.
        const resumed: string[] = [];
        const r = await train({ dataName: 'moons', openData: moons, outDir: auto, steps: 10, resume: true, workers: 'auto', microBatch: 'auto', onParallelism: (_, l) => resumed.push(l) });
        expect(r.workers).toBe(a.workers);
        expect(resumed[0]).toMatch(/\(as the checkpoint recorded\); the whole (batch|share) in one pass \(as the checkpoint recorded\)$/);
        // One core: one thread, said so.
        const one: string[] = [];
        await train({ config: config(), dataName: 'moons', openData: moons, outDir: single, steps: 1, workers: 'auto', cores: 1, onParallelism: (_, l) => one.push(l) });
        expect(one[0]).toMatch(/^parallelism: 1 thread \(this machine has one core\)/);
      } finally {
        for (const d of [auto, given, single]) rmSync(d, { recursive: true, force: true });
      }
    },
  );
});

describe('7.13 Using every core: the command line', () => {
  it.runIf(onDefaultBackend && availableParallelism() >= 2)(
    'train prints one parallelism line: what it chose and why without options, the recorded count on resume, and when --workers overrides it  [training.cli.parallelismLine]',
    async () => {
      const dir = tmp();
      try {
        const out = join(dir, 'run');
        const a = await runCli(['train', '--data', 'moons', '--steps', '2', '--out', out, '--workers', '2']);
        expect(a.code, a.err).toBe(0);
        expect(a.err).toMatch(/^ddpm-spec train: parallelism: 2 worker threads \(--workers\); the whole share in one pass \(128 examples at once need ~\d+ MiB, the \w+ backend allows [\d.]+ GiB per thread\)$/m);
        const b = await runCli(['train', '--data', 'moons', '--steps', '3', '--out', out, '--resume']);
        expect(b.code, b.err).toBe(0);
        expect(b.err).toMatch(/^ddpm-spec train: parallelism: 2 worker threads \(as the checkpoint recorded\); the whole share in one pass \(as the checkpoint recorded\)$/m);
        const c = await runCli(['train', '--data', 'moons', '--steps', '4', '--out', out, '--resume', '--workers', '1']);
        expect(c.code, c.err).toBe(0);
        expect(c.err).toMatch(/^ddpm-spec train: parallelism: 1 thread \(--workers, overriding the 2 the checkpoint recorded\);/m);
        expect(c.err.match(/parallelism:/g)).toHaveLength(1);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
