/**
 * `npm run bench`: the UNet forward pass and one ancestral sampling step, for Ho et al.'s CIFAR-10 model and the
 * small golden model, at batch 1 and 8, on every available tfjs backend and in PyTorch on the CPU (2 threads,
 * and 1 thread for reference), in one run; a table of medians with the ratio to PyTorch, GFLOP/s against the
 * machine's measured matrix-multiply peak, a per-layer-kind profile of the wasm forward pass, and a JSON file.
 *
 * Then one training step (forward, backward, clipping, Adam, EMA) of both models at batch 8 and 32
 * (`--no-train` leaves it out): on one thread (micro-batches only where the wasm heap needs them), and as
 * `ddpm-spec train` runs it by default on this machine — its rule for the worker count (the faster of 1 and
 * min(cores, batch) worker threads, applied to the timings of this run) and its micro-batch — beside PyTorch with
 * 2 threads, with the peak resident memory of each (every training step runs in a fresh process: tfjs with its
 * worker threads, PyTorch on its own). Steps longer than the repetition policy allows are timed once; a step
 * whose estimate exceeds `--max-train-estimate-s` is skipped with the estimate printed.
 *
 * Engines run in their own processes and strictly one at a time, interleaved workload by workload, so that they
 * see the same (possibly busy) machine. A workload that would take too long on a slow engine (the cpu backend,
 * software WebGPU) is timed once, or skipped with the estimate that ruled it out.
 *
 * ```
 * npm run bench -- [--quick] [--backends wasm,cpu,webgpu] [--no-torch] [--no-train] [--only-profile] [--out FILE] [--max-estimate-s 30] [--max-train-estimate-s 240 (30 with --quick)]
 *               [--models small,cifar10] [--train-batches 8,32] [--only-train]
 * ```
 *
 * @module
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { writeFileAtomic } from '../io/atomic.ts';
import { probeAll } from '../backend.ts';
import { LAYER_KINDS, type LayerKind } from '../../reference/unet/model.ts';
import { countParams } from '../../reference/unet/params.ts';
import { forwardFlops, totalForwardFlops } from './flops.ts';
import { workerCandidates } from '../../reference/train/parallelism.ts';
import { formatTrainTable, fmtMs, trainNotes, trainRows, type TrainMeasurement } from './trainRows.ts';
import { BENCH_MODELS, median, trainMicroBatch, type TimingOptions, type Workload } from './workloads.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const flag = (name: string) => process.argv.includes(name);

const quick = flag('--quick');
/** Only the per-layer profile of the wasm forward pass (no timing table). */
const onlyProfile = flag('--only-profile');
const maxEstimateS = Number(arg('--max-estimate-s') ?? '30');
/** Forward and sampling steps: warm-up for `warmupS` (JIT tiering, see {@link TimingOptions}), then timed runs. */
const timing: TimingOptions = quick ? { minTimeS: 1, minReps: 2, maxReps: 3, singleRunAboveS: 5, warmupS: 1 } : { minTimeS: 2, minReps: 3, maxReps: 7, singleRunAboveS: 8, warmupS: 3 };
/**
 * Training steps: warm-up steps for `warmupS` (at least one), then at least one timed step (more until `minTimeS`); a warm-up longer than
 * `singleRunAboveS` is the only measurement (the CIFAR-10 model at batch 32 on one thread: a minute or more).
 */
const trainTiming: TimingOptions = quick ? { minTimeS: 1, minReps: 1, maxReps: 3, singleRunAboveS: 20, warmupS: 1 } : { minTimeS: 3, minReps: 1, maxReps: 5, singleRunAboveS: 45, warmupS: 3 };
const maxTrainEstimateS = Number(arg('--max-train-estimate-s') ?? (quick ? '30' : '240'));
/** `--train-batches 8,32`: the training step's batch sizes. */
const TRAIN_BATCHES = (arg('--train-batches') ?? '8,32').split(',').map((b) => {
  if (!/^[1-9]\d*$/.test(b.trim())) throw new Error(`bench: --train-batches must be positive integers separated by commas, got ${JSON.stringify(b)}`);
  return Number(b);
});
/** `--only-train`: the training-step table alone (no forward/sampling table, no profile). */
const onlyTrain = flag('--only-train');
/** A training step over a forward pass of the same batch, on wasm (measured: 470 / 57.5 ms small b8, 22.9 / 3.4 s CIFAR-10 b8), for estimates only. */
const TRAIN_OVER_FORWARD = 8;

/** A benchmark engine process speaking the `@@bench` line protocol. */
class Engine {
  private lines: AsyncIterator<string>;
  info: Record<string, unknown> = {};
  constructor(
    readonly name: string,
    readonly kind: 'tfjs' | 'torch',
    private proc: ChildProcessWithoutNullStreams,
  ) {
    const rl = createInterface({ input: proc.stdout });
    this.lines = rl[Symbol.asyncIterator]();
    proc.stderr.on('data', (d: Buffer) => {
      const text = d.toString().replace(/^Warning: max\w+ artificially reduced.*\n?/gm, '');
      if (text.trim()) process.stderr.write(text.replace(/^/gm, `  [${this.name}] `).replace(/ +$/, ''));
    });
  }
  async next(): Promise<Record<string, unknown>> {
    for (;;) {
      const r = await this.lines.next();
      if (r.done) throw new Error(`${this.name}: the engine process ended unexpectedly`);
      if (r.value.startsWith('@@bench ')) return JSON.parse(r.value.slice(8)) as Record<string, unknown>;
    }
  }
  async ready(): Promise<void> {
    this.info = await this.next();
  }
  async request<T>(req: Record<string, unknown>): Promise<T> {
    this.proc.stdin.write(`${JSON.stringify(req)}\n`);
    const r = await this.next();
    if (!r.ok) throw new Error(`${this.name}: ${String(r.error)}`);
    return r.result as T;
  }
  async quit(): Promise<void> {
    try {
      await this.request({ op: 'quit' });
    } catch {
      /* already gone */
    }
    this.proc.kill();
  }
}

function tfjsEngine(name: string, backend: string, workers = 0): Engine {
  const p = spawn(process.execPath, ['--import', 'tsx', 'src/bench/engine.ts', '--backend', backend, '--workers', String(workers)], {
    env: { ...process.env, IS_TEST: 'true' },
  });
  return new Engine(name, 'tfjs', p);
}
function torchEngine(name: string, threads: number): Engine {
  return new Engine(name, 'torch', spawn('/usr/bin/python3', ['src/python/bench_torch.py', '--threads', String(threads)]));
}

interface Result {
  engine: string;
  workload: Workload;
  times?: number[];
  medianMs?: number;
  skipped?: string;
  note?: string;
}


async function main(): Promise<void> {
  const started = new Date();
  const load0 = loadavg();
  process.stderr.write(`bench: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load average ${load0.map((l) => l.toFixed(2)).join(' ')}\n`);

  // Engines.
  let backends: string[];
  const forced = arg('--backends');
  if (onlyProfile) backends = ['wasm'];
  else if (forced) backends = forced.split(',').map((s) => s.trim());
  else {
    const probes = await probeAll();
    backends = probes.filter((p) => p.usable).map((p) => p.name);
    for (const p of probes.filter((q) => !q.usable)) process.stderr.write(`bench: backend ${p.name} not available: ${p.why.slice(0, 160)}\n`);
  }
  const engines: Engine[] = [];
  for (const b of backends) {
    engines.push(tfjsEngine(`tfjs ${b}`, b));
    if (b === 'wasm' && !onlyProfile) engines.push(tfjsEngine('tfjs wasm ×2 threads', 'wasm', 2));
  }
  if (!flag('--no-torch') && !onlyProfile) engines.push(torchEngine('PyTorch 2 threads', 2), torchEngine('PyTorch 1 thread', 1));
  await Promise.all(engines.map((e) => e.ready()));
  process.stderr.write(`bench: engines ${engines.map((e) => e.name).join(', ')}\n`);

  // Peaks.
  const peaks: Record<string, number> = {};
  const torch2 = engines.find((e) => e.name === 'PyTorch 2 threads');
  if (torch2) {
    const p = await torch2.request<{ numpy_gflops: number; torch_gflops: number; torch_conv_gflops: number; blas: string }>({ op: 'peak' });
    peaks['PyTorch conv 3×3 256→256 8×32×32 (oneDNN), 2 threads'] = p.torch_conv_gflops;
    peaks[`NumPy matmul 2048² (BLAS: ${p.blas}), 2 threads`] = p.numpy_gflops;
    peaks[`PyTorch matmul 2048² (BLAS: ${p.blas}), 2 threads`] = p.torch_gflops;
  }
  const wasm = engines.find((e) => e.name === 'tfjs wasm');
  if (wasm) peaks['tfjs wasm matMul 1024², 1 thread'] = (await wasm.request<{ gflops: number }>({ op: 'matmul' })).gflops;

  // Per-layer profile of the wasm forward pass (first, while the engine's heap is fresh).
  const profiles: Array<{ workload: Workload; totalMs: number; layers: Record<LayerKind, number> }> = [];
  if (wasm && !onlyTrain) {
    for (const w of (quick ? [{ model: 'small', batch: 8, kind: 'forward' }] : [
      { model: 'cifar10', batch: 1, kind: 'forward' },
      { model: 'cifar10', batch: 8, kind: 'forward' },
    ]) as Workload[]) {
      try {
        const p = await wasm.request<{ totalMs: number; layers: Record<LayerKind, number> }>({ op: 'profile', workload: w, reps: w.batch === 1 ? 3 : 1 });
        profiles.push({ workload: w, ...p });
        process.stderr.write(`bench: profiled tfjs wasm ${w.model} b${w.batch} forward\n`);
      } catch (err) {
        process.stderr.write(`bench: profile of ${w.model} b${w.batch} failed: ${(err as Error).message}\n`);
      }
    }
  }
  // Workloads, smallest first (their timings predict the larger ones).
  const models = arg('--models')?.split(',').map((m) => m.trim()) ?? (quick ? ['small'] : ['small', 'cifar10']);
  for (const m of models) if (!(m in BENCH_MODELS)) throw new Error(`bench: --models must name ${Object.keys(BENCH_MODELS).join(', ')}, got ${JSON.stringify(m)}`);
  const workloads: Workload[] = [];
  for (const model of onlyProfile || onlyTrain ? [] : models) {
    for (const batch of [1, 8]) for (const kind of ['forward', 'step'] as const) workloads.push({ model, batch, kind });
  }
  const results: Result[] = [];
  /** A lower estimate of a call: the same batch's forward pass for a step; else the engine's best rate so far. */
  const estimate = (e: Engine, w: Workload): number | null => {
    const prior = results.filter((r) => r.engine === e.name && r.medianMs !== undefined);
    const same = prior.find((r) => r.workload.model === w.model && r.workload.batch === w.batch && r.workload.kind === 'forward');
    if (same) return same.medianMs!; // a sampling step ≈ one forward pass
    if (prior.length === 0) return null;
    const msPerFlop = Math.min(...prior.map((r) => r.medianMs! / (totalForwardFlops(BENCH_MODELS[r.workload.model]) * r.workload.batch)));
    return msPerFlop * totalForwardFlops(BENCH_MODELS[w.model]) * w.batch;
  };
  for (const w of workloads) {
    for (const e of engines) {
      const label = `${w.model} b${w.batch} ${w.kind}`;
      if (e.name.includes('×2 threads') && w.batch < 2) continue;
      const est = estimate(e, w);
      if (est !== null && est > maxEstimateS * 1000) {
        results.push({ engine: e.name, workload: w, skipped: `estimated ${fmtMs(est)} per run > --max-estimate-s ${maxEstimateS}` });
        process.stderr.write(`bench: ${e.name}: ${label}: skipped (estimated ${fmtMs(est)})\n`);
        continue;
      }
      try {
        const r =
          e.kind === 'torch'
            ? await e.request<{ times: number[] }>({ op: 'time', workload: w, config: BENCH_MODELS[w.model], timing })
            : await e.request<{ times: number[] }>({ op: 'time', workload: w, timing });
        const m = median(r.times);
        results.push({ engine: e.name, workload: w, times: r.times, medianMs: m, ...(r.times.length === 1 ? { note: 'one run (slow)' } : {}) });
        process.stderr.write(`bench: ${e.name}: ${label}: ${fmtMs(m)} (${r.times.length} runs)\n`);
      } catch (err) {
        results.push({ engine: e.name, workload: w, skipped: `failed: ${(err as Error).message.slice(0, 200)}` });
        process.stderr.write(`bench: ${e.name}: ${label}: failed: ${(err as Error).message}\n`);
      }
    }
  }

  // Training steps, each in a fresh process (its peak memory is the step's; a failure leaves no engine broken),
  // interleaved workload by workload: PyTorch, then each tfjs backend on one thread and on `train`'s workers.
  const trainMs: TrainMeasurement[] = [];
  const tfjsBase = engines.filter((e) => e.kind === 'tfjs' && !e.name.includes('×'));
  const cores = availableParallelism();
  /**
   * A training step's estimate (null: nothing measured to base it on): the larger of the same engine's forward pass
   * at batch 8 times {@link TRAIN_OVER_FORWARD}, and the slowest rate (ms per forward FLOP) of its training steps
   * timed so far, scaled to this model and batch. The second matters where the backward pass is relatively much
   * slower than on wasm: the cpu backend's CIFAR-10 step ran 432 s when the first estimate said under 240.
   */
  const trainEstimate = (e: Engine, w: Workload, workers: number): number | null => {
    const f = results.find((r) => r.engine === e.name && r.workload.model === w.model && r.workload.batch === 8 && r.workload.kind === 'forward' && r.medianMs !== undefined);
    const fromForward = f ? ((f.medianMs! * w.batch) / 8) * TRAIN_OVER_FORWARD / workers : null;
    const flops = (model: string, batch: number): number => totalForwardFlops(BENCH_MODELS[model]) * batch;
    const rates = trainMs.filter((t) => t.engine === e.name && t.medianMs !== undefined).map((t) => (t.medianMs! * t.workers) / flops(t.model, t.batch));
    const fromTrain = rates.length > 0 ? (Math.max(...rates) * flops(w.model, w.batch)) / workers : null;
    if (fromForward === null) return fromTrain;
    return fromTrain === null ? fromForward : Math.max(fromForward, fromTrain);
  };
  const timeTrain = async (start: () => Engine, m: Omit<TrainMeasurement, 'medianMs'>, req: Record<string, unknown>): Promise<void> => {
    const label = `${m.engine}${m.workers > 1 ? ` ×${m.workers} workers` : ''}: ${m.model} b${m.batch} train${m.microBatch ? ` (micro-batches of ${m.microBatch})` : ''}`;
    const fresh = start();
    try {
      await fresh.ready();
      const r = await fresh.request<{ times: number[]; maxRssBytes?: number; wasmHeapBytes?: number }>({ op: 'time', workload: { model: m.model, batch: m.batch, kind: 'train' }, timing: trainTiming, ...req });
      const med = median(r.times);
      trainMs.push({ ...m, medianMs: med, runs: r.times.length, ...(r.maxRssBytes !== undefined ? { maxRssBytes: r.maxRssBytes } : {}), ...(r.wasmHeapBytes !== undefined ? { wasmHeapBytes: r.wasmHeapBytes } : {}) });
      process.stderr.write(`bench: ${label}: ${fmtMs(med)} (${r.times.length} runs), peak RSS ${((r.maxRssBytes ?? 0) / 2 ** 30).toFixed(2)} GiB\n`);
    } catch (err) {
      trainMs.push({ ...m, skipped: `failed: ${(err as Error).message.slice(0, 200)}` });
      process.stderr.write(`bench: ${label}: failed: ${(err as Error).message}\n`);
    } finally {
      await fresh.quit();
    }
  };
  for (const model of onlyProfile || flag('--no-train') ? [] : models) {
    for (const batch of TRAIN_BATCHES) {
      const w: Workload = { model, batch, kind: 'train' };
      if (!flag('--no-torch')) await timeTrain(() => torchEngine('PyTorch 2 threads (training)', 2), { engine: 'PyTorch 2 threads', model, batch, workers: 1 }, { config: BENCH_MODELS[model] });
      for (const e of tfjsBase) {
        const backend = String(e.info.backend ?? 'wasm');
        for (const k of workerCandidates(backend, cores, batch)) {
          const microBatch = trainMicroBatch(w, backend, k, totalmem());
          const m: TrainMeasurement = { engine: e.name, model, batch, workers: k, ...(microBatch !== undefined ? { microBatch } : {}) };
          const est = trainEstimate(e, w, k);
          if (est !== null && est > maxTrainEstimateS * 1000) {
            trainMs.push({ ...m, skipped: `estimated ${fmtMs(est)} per step > --max-train-estimate-s ${maxTrainEstimateS}` });
            process.stderr.write(`bench: ${e.name}${k > 1 ? ` ×${k} workers` : ''}: ${model} b${batch} train: skipped (estimated ${fmtMs(est)})\n`);
            continue;
          }
          await timeTrain(() => tfjsEngine(`${e.name} (training)`, backend), m, { train: { workers: k, ...(microBatch !== undefined ? { microBatch } : {}) } });
        }
      }
    }
  }
  const tRows = trainRows(trainMs);

  await Promise.all(engines.map((e) => e.quit()));
  const load1 = loadavg();

  // Report.
  const names = engines.map((e) => e.name);
  const ref = 'PyTorch 2 threads';
  const lines: string[] = [];
  lines.push(`UNet benchmark, ${started.toISOString()}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'})`);
  lines.push(`load average at start ${load0.map((l) => l.toFixed(2)).join(' ')}, at end ${load1.map((l) => l.toFixed(2)).join(' ')}${Math.max(load0[0], load1[0]) > cpus().length * 0.75 ? ' — the machine was busy: timings are inflated and noisy' : ''}`);
  lines.push(`matrix-multiply peaks: ${Object.entries(peaks).map(([k, v]) => `${k} ${v.toFixed(1)} GFLOP/s`).join('; ')}`);
  lines.push(
    `models: ${models.map((m) => `${m} (${countParams(BENCH_MODELS[m]).toLocaleString('en-US')} parameters, ${(totalForwardFlops(BENCH_MODELS[m]) / 1e9).toFixed(3)} GFLOP per image forward)`).join('; ')}`,
  );
  lines.push('');
  if (workloads.length > 0) {
    lines.push('median time per call; ×: ratio to PyTorch with 2 threads (lower is better); GF/s: forward-pass FLOPs per second');
    lines.push('');
    lines.push(`| workload | ${names.join(' | ')} |`);
    lines.push(`|---|${names.map(() => '---').join('|')}|`);
    for (const w of workloads) {
      const flops = totalForwardFlops(BENCH_MODELS[w.model]) * w.batch * (w.kind === 'train' ? 3 : 1);
      const refR = results.find((r) => r.engine === ref && r.workload === w);
      const cells = names.map((n) => {
        const r = results.find((q) => q.engine === n && q.workload === w);
        if (r === undefined) return '—';
        if (r.medianMs === undefined) return r.skipped?.startsWith('failed') ? 'failed²' : 'skipped';
        const ratio = refR?.medianMs ? ` (×${(r.medianMs / refR.medianMs).toFixed(2)})` : '';
        return `${fmtMs(r.medianMs)}${n === ref ? '' : ratio}, ${(flops / r.medianMs / 1e6).toFixed(1)} GF/s${r.note ? '¹' : ''}`;
      });
      lines.push(`| ${w.model} b${w.batch} ${w.kind} | ${cells.join(' | ')} |`);
    }
    lines.push('');
    lines.push(`¹ timed once (a slow engine); skipped: estimated above ${maxEstimateS} s per call.`);
    for (const r of results.filter((q) => q.skipped?.startsWith('failed'))) lines.push(`² ${r.engine}, ${r.workload.model} b${r.workload.batch} ${r.workload.kind}: ${r.skipped}`);
  }
  if (trainMs.length > 0) {
    if (workloads.length > 0) lines.push('');
    lines.push(formatTrainTable(tRows));
    lines.push(...trainNotes(trainMs));
    if (engines.some((e) => e.name === 'PyTorch 1 thread')) lines.push('PyTorch with 1 thread is not timed on training steps (the comparison is with 2 threads; it keeps the run short).');
  }
  for (const p of profiles) {
    const c = BENCH_MODELS[p.workload.model];
    const f = forwardFlops(c);
    const sum = Object.values(p.layers).reduce((a, b) => a + b, 0);
    lines.push('');
    lines.push(`per-layer profile, tfjs wasm, ${p.workload.model} batch ${p.workload.batch} forward: ${fmtMs(p.totalMs)} per call (${fmtMs(sum)} inside layers)`);
    lines.push('');
    lines.push('| layer kind | ms | share | GFLOP | GFLOP/s |');
    lines.push('|---|---|---|---|---|');
    for (const k of [...LAYER_KINDS].sort((a, b) => p.layers[b] - p.layers[a])) {
      const ms = p.layers[k];
      const gf = ((f.get(k) ?? 0) * p.workload.batch) / 1e9;
      lines.push(`| ${k} | ${ms.toFixed(1)} | ${((100 * ms) / p.totalMs).toFixed(1)} % | ${gf ? gf.toFixed(2) : '—'} | ${gf ? ((gf * 1000) / ms).toFixed(1) : '—'} |`);
    }
  }
  const text = lines.join('\n');
  process.stdout.write(`\n${text}\n`);
  const out = arg('--out') ?? join(tmpdir(), `ddpm-bench-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileAtomic(
    out,
    `${JSON.stringify(
      {
        started: started.toISOString(),
        machine: { cores: cpus().length, cpu: cpus()[0]?.model, loadavgStart: load0, loadavgEnd: load1, node: process.version },
        engines: engines.map((e) => ({ name: e.name, info: e.info })),
        peaksGflops: peaks,
        timing,
        models: Object.fromEntries(models.map((m) => [m, { config: BENCH_MODELS[m], parameters: countParams(BENCH_MODELS[m]), forwardFlopsPerImage: totalForwardFlops(BENCH_MODELS[m]) }])),
        results,
        training: { timing: trainTiming, cores, measurements: trainMs, rows: tRows },
        profiles,
        table: text,
      },
      null,
      2,
    )}\n`,
  );
  process.stdout.write(`\nresults: ${out}\n`);
}

await main();
process.exit(0);
