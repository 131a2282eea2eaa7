/**
 * The recorded Fashion-MNIST run: train the same small UNet with the same recipe for the same wall-clock budget
 * in TypeScript (this package, default backend, gradients on 2 worker threads so both use the machine's 2 cores)
 * and in PyTorch (`src/python/train_torch.py`, 2 threads), one
 * after the other, evaluate both checkpoints with the same code (test bits/dim through the diffusion core's
 * bound, ancestral samples through `ddpm-spec sample`'s sampler), and write the record into `docs/`:
 *
 * - `docs/figures/fashion-mnist-loss.svg`: the loss curves (vega-lite, rendered headless), against steps and
 *   against wall-clock minutes;
 * - `docs/figures/fashion-mnist-samples-tfjs.png`, `…-torch.png`: sample grids (EMA weights);
 * - `docs/figures/fashion-mnist-run.json`: steps, wall time, backend, versions, test bits/dim ± standard error;
 * - the section between `<!-- run:begin -->` and `<!-- run:end -->` of `docs/training.md`.
 *
 * ```
 * node --import tsx reference/train/recordRun.ts --minutes 60 [--config reference/train/configs/fashion-mnist.json]
 *      [--out out/fashion-mnist-run] [--docs docs] [--bpd-n 16] [--samples 16] [--sample-steps 1000] [--workers 2] [--no-torch]
 * node --import tsx reference/train/recordRun.ts --render-only [--docs docs]   # the section again, from the record
 * ```
 *
 * Run it on an otherwise idle machine: both frameworks share its cores, so any other load changes the result.
 *
 * @module
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { writeFileAtomic } from '../../src/io/atomic.ts';
import { latestCheckpointDir, readTrainCheckpoint } from './checkpoint.ts';
import { readTrainConfig } from './config.ts';
import { LOG_FILE, type LogRecord } from './loop.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');

interface Args {
  minutes: number;
  config: string;
  out: string;
  docs: string;
  bpdN: number;
  samples: number;
  sampleSteps: number;
  torch: boolean;
  workers: number;
}

function parseArgs(argv: string[]): Args {
  const get = (name: string, dflt: string): string => {
    const i = argv.indexOf(name);
    return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : dflt;
  };
  const num = (name: string, dflt: string, min: number): number => {
    const v = Number(get(name, dflt));
    if (!(v >= min) || !Number.isFinite(v)) throw new Error(`recordRun: ${name} must be a number ≥ ${min}, got ${JSON.stringify(get(name, dflt))}`);
    return v;
  };
  if (!argv.includes('--minutes')) throw new Error('recordRun: --minutes M is required (the training budget of each framework)');
  return {
    minutes: num('--minutes', '60', 0.1),
    config: get('--config', join(ROOT, 'reference/train/configs/fashion-mnist.json')),
    out: resolve(get('--out', join(ROOT, 'out/fashion-mnist-run'))),
    docs: resolve(get('--docs', join(ROOT, 'docs'))),
    bpdN: num('--bpd-n', '16', 1),
    samples: num('--samples', '16', 1),
    sampleSteps: num('--sample-steps', '1000', 1),
    torch: !argv.includes('--no-torch'),
    workers: num('--workers', '2', 1),
  };
}

const say = (s: string): void => void process.stderr.write(`[record] ${s}\n`);

function readLog(dir: string): LogRecord[] {
  const p = join(dir, LOG_FILE);
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as LogRecord);
}

/** The two loss curves as one SVG: loss against steps and against wall-clock minutes (log scale). */
export async function lossCurveSvg(runs: Array<{ name: string; log: LogRecord[] }>): Promise<string> {
  const values = runs.flatMap((r) => r.log.map((l) => ({ run: r.name, step: l.step, minutes: l.elapsed_s / 60, loss: l.loss })));
  const panel = (x: 'step' | 'minutes', title: string): vl.TopLevelSpec =>
    ({
      width: 360,
      height: 240,
      mark: { type: 'line', strokeWidth: 1.2 },
      encoding: {
        x: { field: x, type: 'quantitative', title },
        y: { field: 'loss', type: 'quantitative', scale: { type: 'log' }, title: 'L_simple (mean over log interval)' },
        color: { field: 'run', type: 'nominal', title: null },
      },
    }) as unknown as vl.TopLevelSpec;
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Fashion-MNIST, same model and recipe, same wall-clock budget',
    data: { values },
    hconcat: [panel('step', 'training step'), panel('minutes', 'wall-clock minutes')],
  } as unknown as vl.TopLevelSpec;
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

const CLI = join(ROOT, 'bin/ddpm-spec.mjs');

/** Run a command with stderr shown; resolves to its stdout, rejects on a non-zero exit. */
function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    say(`$ ${[cmd === process.execPath ? 'node' : cmd, ...args].join(' ')}`);
    const p = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolvePromise(stdout) : reject(new Error(`${cmd} ${args[0]} ${args[1] ?? ''} exited with code ${code}`))));
  });
}

interface BpdJson {
  bits_per_dim: number;
  standard_error: number;
  n: number;
  seconds: number;
  backend: string;
}

interface Evaluation {
  bits_per_dim: number;
  standard_error: number;
  n: number;
  bpd_seconds: number;
  samples_png: string;
  sample_seconds: number;
}

/** Test bits/dim (`ddpm-spec bpd`) and a sample grid (`ddpm-spec sample`) of one checkpoint: the same code for both runs. */
async function evaluate(checkpoint: string, png: string, a: Args): Promise<Evaluation> {
  const bpd = JSON.parse(
    await run(process.execPath, [CLI, 'bpd', '--checkpoint', checkpoint, '--data', 'fashion-mnist', '--split', 'test', '--n', String(a.bpdN), '--batch', '16', '--steps-per-batch', '4', '--seed', '0', '--json']),
  ) as BpdJson;
  const t0 = performance.now();
  await run(process.execPath, [CLI, 'sample', '--checkpoint', checkpoint, '--steps', String(a.sampleSteps), '--n', String(a.samples), '--seed', '0', '--out', png]);
  return { bits_per_dim: bpd.bits_per_dim, standard_error: bpd.standard_error, n: bpd.n, bpd_seconds: bpd.seconds, samples_png: png, sample_seconds: (performance.now() - t0) / 1000 };
}

function replaceSection(doc: string, body: string): string {
  const begin = '<!-- run:begin -->';
  const end = '<!-- run:end -->';
  const i = doc.indexOf(begin);
  const j = doc.indexOf(end);
  if (i < 0 || j < i) return `${doc.trimEnd()}\n\n${begin}\n${body}\n${end}\n`;
  return `${doc.slice(0, i + begin.length)}\n${body}\n${doc.slice(j)}`;
}

/** One framework's line of the record (`docs/figures/fashion-mnist-run.json`). */
interface RunLine extends Evaluation {
  backend: string;
  steps: number;
  wall_s?: number;
  train_s: number;
  images_per_s: number;
}

/** The record a run writes to `docs/figures/fashion-mnist-run.json`, from which the section of `docs/training.md` is rendered. */
interface RunRecord {
  date: string;
  commit: string;
  budget_minutes: number;
  config: string;
  machine: { cpus: number; cpu_model: string; loadavg_at_start: number[]; busy: boolean };
  tfjs: RunLine;
  torch: RunLine | null;
  evaluation: { bpd_images: number; bpd_seed: number; samples: number; sample_steps: number; weights: string };
}

/** Write the run section of `<docs>/training.md` from a record; the paths in the record are relative to the package root. */
function writeRunSection(record: RunRecord, docs: string): void {
  const figures = join(docs, 'figures');
  // the sample grids are written next to the record, in <docs>/figures
  const rel = (p: string): string => relative(docs, join(figures, basename(p)));
  const row = (name: string, r: RunLine): string =>
    `| ${name} | ${r.backend} | ${r.steps} | ${(r.train_s / 60).toFixed(1)} min | ${r.images_per_s.toFixed(1)} | ${r.bits_per_dim.toFixed(3)} ± ${r.standard_error.toFixed(3)} (n = ${r.n}) |`;
  const { machine, tfjs, torch } = record;
  const body = [
    ...(machine.busy ? ['**The machine was busy during this run: its timings are not representative.**', ''] : []),
    `Recorded ${record.date.slice(0, 10)} at commit \`${record.commit}\` on ${machine.cpus} × ${machine.cpu_model} (load average at start ${machine.loadavg_at_start.map((x) => x.toFixed(2)).join(', ')}), budget ${record.budget_minutes} min per framework, configuration \`${record.config}\`.`,
    '',
    '| run | backend | steps | training time | images/s | test bits/dim ± s.e. |',
    '|---|---|---|---|---|---|',
    row('TypeScript (this package)', tfjs),
    ...(torch ? [row('PyTorch (same model and recipe)', torch)] : []),
    '',
    ...(torch
      ? [
          `Steps in the same budget: TypeScript ${tfjs.steps}, PyTorch ${torch.steps}, i.e. ${((100 * tfjs.steps) / torch.steps).toFixed(0)} % of PyTorch's count ` +
            `(${((1000 * tfjs.train_s) / tfjs.steps).toFixed(0)} against ${((1000 * torch.train_s) / torch.steps).toFixed(0)} ms per step); ` +
            `test bits/dim ${tfjs.bits_per_dim.toFixed(3)} ± ${tfjs.standard_error.toFixed(3)} against ${torch.bits_per_dim.toFixed(3)} ± ${torch.standard_error.toFixed(3)}.`,
          '',
        ]
      : []),
    `![loss curves](${relative(docs, join(figures, 'fashion-mnist-loss.svg'))})`,
    '',
    `Samples (${record.evaluation.weights} weights, ${record.evaluation.sample_steps} ancestral steps, seed 0), TypeScript then PyTorch:`,
    '',
    `![TypeScript samples](${rel(tfjs.samples_png)})${torch ? ` ![PyTorch samples](${rel(torch.samples_png)})` : ''}`,
    '',
    `Full record: [${relative(docs, join(figures, 'fashion-mnist-run.json'))}](${relative(docs, join(figures, 'fashion-mnist-run.json'))}).`,
  ].join('\n');
  const doc = join(docs, 'training.md');
  writeFileAtomic(doc, replaceSection(existsSync(doc) ? readFileSync(doc, 'utf8') : '# Training\n', body));
}

/** `--render-only [--docs D]`: rewrite the section of `D/training.md` from the record `D/figures/fashion-mnist-run.json` alone. */
function renderOnly(argv: string[]): void {
  const i = argv.indexOf('--docs');
  const docs = resolve(i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : join(ROOT, 'docs'));
  const file = join(docs, 'figures', 'fashion-mnist-run.json');
  if (!existsSync(file)) throw new Error(`recordRun --render-only: no record at ${file} (a run writes it)`);
  const record = JSON.parse(readFileSync(file, 'utf8')) as RunRecord;
  for (const key of ['date', 'commit', 'budget_minutes', 'config', 'machine', 'tfjs', 'evaluation'] as const) {
    if (record[key] === undefined) throw new Error(`recordRun --render-only: ${file} has no field "${key}"`);
  }
  writeRunSection({ ...record, torch: record.torch ?? null }, docs);
  say(`rewrote the run section of ${join(docs, 'training.md')} from ${file}`);
}

async function main(): Promise<void> {
  if (process.argv.includes('--render-only')) return renderOnly(process.argv.slice(2));
  const a = parseArgs(process.argv.slice(2));
  const config = readTrainConfig(a.config);
  if (config.model.kind !== 'unet') throw new Error(`recordRun: ${a.config} must describe a UNet`);
  const backend = (JSON.parse(await run(process.execPath, [CLI, 'backend', '--json'])) as { chosen: string }).chosen;
  const figures = join(a.docs, 'figures');
  mkdirSync(figures, { recursive: true });
  const tfjsOut = join(a.out, 'tfjs');
  const torchOut = join(a.out, 'torch');
  rmSync(a.out, { recursive: true, force: true });
  mkdirSync(a.out, { recursive: true });
  const machine = { cpus: cpus().length, cpu_model: cpus()[0]?.model ?? 'unknown', loadavg_at_start: loadavg(), busy: loadavg()[0] > 0.5 * cpus().length };
  if (machine.busy) {
    say(`WARNING: load average ${loadavg()[0].toFixed(2)} on ${cpus().length} cores: the machine is busy, and the timings will be wrong (PyTorch with 2 threads slows down ~10× when its cores are shared); the record says so`);
  }

  say(`training with tfjs (${backend}) for ${a.minutes} min`);
  const t0 = performance.now();
  await run(process.execPath, [CLI, 'train', '--data', 'fashion-mnist', '--config', a.config, '--steps', '1000000000', '--out', tfjsOut, '--max-minutes', String(a.minutes), '--workers', String(a.workers)]);
  const tfjsWall = (performance.now() - t0) / 1000;
  const tfjsState = readTrainCheckpoint(latestCheckpointDir(tfjsOut)!).state;

  let torchRun: { steps: number; elapsed_s: number; checkpoint: string; torch: string; threads: number } | null = null;
  if (a.torch) {
    say(`training with PyTorch for ${a.minutes} min`);
    const out = await run('/usr/bin/python3', [join(ROOT, 'src/python/train_torch.py'), '--config', a.config, '--out', torchOut, '--minutes', String(a.minutes), '--threads', '2']);
    torchRun = JSON.parse(out.trim().split('\n').pop()!);
  }

  say('evaluating both checkpoints with the same commands');
  const tfjsEval = await evaluate(join(tfjsOut, 'checkpoint'), join(figures, 'fashion-mnist-samples-tfjs.png'), a);
  const torchEval = torchRun ? await evaluate(join(torchOut, 'checkpoint'), join(figures, 'fashion-mnist-samples-torch.png'), a) : null;
  const svg = await lossCurveSvg([
    { name: `TypeScript, tfjs ${backend}`, log: readLog(tfjsOut) },
    ...(torchRun ? [{ name: `PyTorch ${torchRun.torch}, ${torchRun.threads} threads`, log: readLog(torchOut) }] : []),
  ]);
  writeFileAtomic(join(figures, 'fashion-mnist-loss.svg'), svg);
  const { stdout: gitRev } = await promisify(execFile)('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).catch(() => ({ stdout: 'unknown' }));
  const record: RunRecord = {
    date: new Date().toISOString(),
    commit: gitRev.trim(),
    budget_minutes: a.minutes,
    config: relative(ROOT, resolve(a.config)),
    machine,
    tfjs: {
      backend: `tfjs ${backend}${a.workers > 1 ? `, ${a.workers} worker threads` : ''}`,
      steps: tfjsState.step,
      wall_s: tfjsWall,
      train_s: tfjsState.elapsed_s,
      images_per_s: (tfjsState.step * config.batch_size) / tfjsState.elapsed_s,
      ...tfjsEval,
      samples_png: relative(ROOT, tfjsEval.samples_png),
    },
    torch:
      torchRun && torchEval
        ? {
            backend: `PyTorch ${torchRun.torch} CPU, ${torchRun.threads} threads`,
            steps: torchRun.steps,
            train_s: torchRun.elapsed_s,
            images_per_s: (torchRun.steps * config.batch_size) / torchRun.elapsed_s,
            ...torchEval,
            samples_png: relative(ROOT, torchEval.samples_png),
          }
        : null,
    evaluation: { bpd_images: a.bpdN, bpd_seed: 0, samples: a.samples, sample_steps: a.sampleSteps, weights: 'EMA' },
  };
  writeFileAtomic(join(figures, 'fashion-mnist-run.json'), `${JSON.stringify(record, null, 2)}\n`);
  writeRunSection(record, a.docs);
  say(`done: ${JSON.stringify({ tfjs: { steps: record.tfjs.steps, bpd: record.tfjs.bits_per_dim }, torch: record.torch ? { steps: record.torch.steps, bpd: record.torch.bits_per_dim } : null })}`);
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  await main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(2);
  });
}
