/**
 * `ddpm-spec sample`: draw images from a UNet checkpoint and write them as a PNG grid.
 *
 * ```
 * ddpm-spec sample --checkpoint DIR [--steps N | --ddim N --eta E] --n 16 --seed S --out grid.png
 *                  [--workers K] [--batch B] [--frames DIR --frame-every K] [--no-ema] [--cols C]
 * ```
 *
 * Progress goes to stderr: a bar with steps/s and ETA on a terminal, plain lines every 10 % (or 30 s)
 * otherwise. Every argument and the checkpoint are checked before any sampling starts; a bad one is
 * reported with the option or the file named (exit code 2).
 *
 * @module
 */
import { accessSync, constants, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { FormatError } from '../formats/errors.ts';
import { readSafetensors } from '../formats/safetensors.ts';
import { refuseUnusableOutput } from '../io/paths.ts';
import { readCheckpointConfig } from '../../reference/unet/checkpoint.ts';
import { checkStateDict, describeProblem } from '../../reference/unet/weights.ts';
import { writeGridPng } from '../image/grid.ts';
import { sampleImages } from '../sample/pool.ts';
import type { SamplingMethod } from '../sample/sampler.ts';
import { UsageError, type ExitCode } from './common.ts';

interface RawOptions {
  checkpoint?: string;
  steps?: string;
  ddim?: string;
  eta?: string;
  n: string;
  seed: string;
  out?: string;
  workers?: string;
  batch?: string;
  frames?: string;
  frameEvery?: string;
  ema: boolean;
  cols?: string;
}

/** The checked options. */
export interface SampleArgs {
  checkpoint: string;
  method: SamplingMethod;
  n: number;
  seed: number;
  out: string;
  workers?: number;
  batch?: number;
  frames?: string;
  frameEvery?: number;
  ema: boolean | 'prefer';
  cols?: number;
}

function int(option: string, raw: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = Number(raw);
  if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new UsageError(`${option} must be an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? '∞' : max}], got ${JSON.stringify(raw)}`);
  }
  return v;
}

function writableDir(option: string, dir: string): void {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new UsageError(`${option}: directory ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new UsageError(`${option}: ${dir} is not a directory`);
  // Create and remove a probe file: access(W_OK) says yes to root everywhere, even where files cannot be created.
  const probe = join(dir, `.ddpm-spec-probe-${process.pid}`);
  try {
    accessSync(dir, constants.W_OK);
    writeFileSync(probe, '');
    rmSync(probe, { force: true });
  } catch (e) {
    throw new UsageError(`${option}: cannot write in directory ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** Write a grid, turning a file-system error into a usage error that names the file. */
function writeGrid(option: string, path: string, ...rest: Parameters<typeof writeGridPng> extends [string, ...infer R] ? R : never): void {
  try {
    writeGridPng(path, ...rest);
  } catch (e) {
    throw new UsageError(`${option}: cannot write ${path} (${(e as Error).message})`);
  }
}

/** Check the options and the checkpoint (config, weight names and shapes) without sampling. */
export function checkSampleArgs(o: RawOptions): SampleArgs {
  if (o.checkpoint === undefined) throw new UsageError('--checkpoint DIR is required');
  if (o.out === undefined) throw new UsageError('--out FILE is required (the PNG grid to write)');
  if (o.steps !== undefined && o.ddim !== undefined) throw new UsageError('--steps and --ddim cannot be used together (ancestral or DDIM sampling, not both)');
  if (o.eta !== undefined && o.ddim === undefined) throw new UsageError('--eta only applies to DDIM sampling: give --ddim N as well');

  const checkpoint = resolve(o.checkpoint);
  const cfg = readCheckpointConfig(checkpoint); // FormatError names the file and field
  const T = cfg.diffusion.num_diffusion_timesteps;
  let method: SamplingMethod;
  if (o.ddim !== undefined) {
    let eta = 0;
    if (o.eta !== undefined) {
      eta = Number(o.eta);
      if (o.eta.trim() === '' || !(eta >= 0 && eta <= 1)) throw new UsageError(`--eta must be a number in [0, 1] (0: deterministic DDIM, 1: DDPM-like variance), got ${JSON.stringify(o.eta)}`);
    }
    method = { kind: 'ddim', steps: int('--ddim', o.ddim, 1, T), eta };
  } else {
    method = { kind: 'ancestral', steps: o.steps === undefined ? T : int('--steps', o.steps, 1, T) };
  }
  const n = int('--n', o.n, 1, 4096);
  const seed = int('--seed', o.seed, 0, 2 ** 32 - 1);
  const out = resolve(o.out);
  refuseUnusableOutput('--out', out);
  writableDir('--out', dirname(out));
  try {
    if (statSync(out).isDirectory()) throw new UsageError(`--out: ${out} is a directory; give a file name such as grid.png`);
  } catch (e) {
    if (e instanceof UsageError) throw e;
  }
  if (cfg.unet.in_channels !== 1 && cfg.unet.in_channels !== 3) {
    throw new UsageError(`${join(checkpoint, 'config.json')}: unet.in_channels is ${cfg.unet.in_channels}; a PNG grid needs 1 (grey) or 3 (RGB) channels`);
  }

  const ema: boolean | 'prefer' = o.ema ? 'prefer' : false;
  const weights = join(checkpoint, ema === 'prefer' && cfg.ema_weights !== undefined ? cfg.ema_weights : cfg.weights);
  const problems = checkStateDict(cfg.unet, readSafetensors(weights).tensors);
  if (problems.length > 0) {
    throw new UsageError(`${weights}: the weights do not fit the configuration in config.json:\n${problems.map((p) => `  ${describeProblem(p)}`).join('\n')}`);
  }

  const args: SampleArgs = { checkpoint, method, n, seed, out, ema };
  if (o.workers !== undefined) args.workers = int('--workers', o.workers, 0, availableParallelism());
  if (o.batch !== undefined) args.batch = int('--batch', o.batch, 1, 4096);
  if (o.cols !== undefined) args.cols = int('--cols', o.cols, 1, 4096);
  if (o.frameEvery !== undefined && o.frames === undefined) throw new UsageError('--frame-every needs --frames DIR');
  if (o.frames !== undefined) {
    const dir = resolve(o.frames);
    refuseUnusableOutput('--frames', dir);
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new UsageError(`--frames: cannot create directory ${dir} (${(e as Error).message})`);
    }
    writableDir('--frames', dir);
    args.frames = dir;
    args.frameEvery = o.frameEvery === undefined ? Math.max(1, Math.round(method.steps / 10)) : int('--frame-every', o.frameEvery, 1);
  }
  return args;
}

function duration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.round(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${(s % 60).toFixed(1)}s`;
}

/** Progress to stderr: a bar on a terminal, plain lines every 10 % or 30 s otherwise. */
function progressReporter(steps: number, stream: NodeJS.WriteStream = process.stderr): { update: (done: number) => void; stop: () => void } {
  // Rates are measured from the first finished step (worker start-up and the first, slower step excluded) once a
  // second has passed since it; before that, over the whole time since sampling started.
  const created = performance.now();
  let first: { done: number; at: number } | null = null;
  const rate = (done: number): number => {
    const now = performance.now();
    first ??= { done, at: now };
    if (now - first.at >= 1000 && done > first.done) return (done - first.done) / ((now - first.at) / 1000);
    return done / Math.max(1e-3, (now - created) / 1000);
  };
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: 'sampling {bar} {percentage}% | step {value}/{total} | {rate} steps/s | ETA {remaining}', hideCursor: true, stream },
      cliProgress.Presets.shades_classic,
    );
    bar.start(steps, 0, { rate: '0.00', remaining: '?' });
    return {
      update: (done) => {
        const r = rate(done);
        bar.update(Math.floor(done), { rate: r.toFixed(2), remaining: duration((steps - done) / r) });
      },
      stop: () => bar.stop(),
    };
  }
  let lastPct = -1;
  let lastTime = created;
  return {
    update: (done) => {
      const r = rate(done);
      const whole = Math.floor(done + 1e-9);
      const pct = Math.floor((10 * whole) / steps);
      const now = performance.now();
      if (whole > 0 && (pct > lastPct || now - lastTime > 30_000)) {
        lastPct = pct;
        lastTime = now;
        stream.write(`sample: step ${whole}/${steps} (${Math.floor((100 * whole) / steps)}%), ${r.toFixed(2)} steps/s, ETA ${duration((steps - done) / r)}\n`);
      }
    },
    stop: () => {},
  };
}

/** Run `sample` with checked arguments; resolves to the exit code. */
export async function sampleCommand(a: SampleArgs): Promise<number> {
  const started = performance.now();
  const what = a.method.kind === 'ancestral' ? `ancestral, ${a.method.steps} steps` : `DDIM, ${a.method.steps} steps, η = ${a.method.eta}`;
  process.stderr.write(`sample: ${a.n} images from ${a.checkpoint} (${what}), seed ${a.seed}\n`);
  const progress = progressReporter(a.method.steps);
  let frameNo = 0;
  let shape: [number, number, number, number] | null = null;
  try {
    const res = await sampleImages({
      checkpointDir: a.checkpoint,
      ema: a.ema,
      method: a.method,
      n: a.n,
      seed: a.seed,
      workers: a.workers,
      batch: a.batch,
      frameEvery: a.frameEvery,
      onFrame: a.frames
        ? (step, data) => {
            const cfg = readCheckpointConfig(a.checkpoint).unet;
            shape ??= [a.n, cfg.resolution, cfg.resolution, cfg.in_channels];
            writeGrid('--frames', join(a.frames!, `x0-step-${String(step + 1).padStart(5, '0')}.png`), data, shape, { cols: a.cols });
            frameNo++;
          }
        : undefined,
      onProgress: (done) => progress.update(done),
    });
    progress.stop();
    writeGrid('--out', a.out, res.images, res.shape, { cols: a.cols });
    const secs = (performance.now() - started) / 1000;
    process.stderr.write(
      `sample: wrote ${a.out} (${a.n} images of ${res.shape[1]}×${res.shape[2]}) in ${duration(secs)}, ` +
        `${res.workers === 0 ? 'on the main thread' : `${res.workers} worker thread(s)`} on ${[...new Set(res.backends)].join(', ')}` +
        `${a.frames ? `; ${frameNo} x̂₀ frames in ${a.frames}` : ''}\n`,
    );
    return 0;
  } catch (e) {
    progress.stop();
    if (e instanceof UsageError || e instanceof FormatError) throw e;
    // A failure while sampling (a non-finite sample, a worker that died): one line, exit code 1.
    process.stderr.write(`ddpm-spec sample: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

export function registerSample(program: Command, code: ExitCode): void {
  program
    .command('sample')
    .description('sample images from a UNet checkpoint (ancestral or DDIM) and write a PNG grid')
    .option('--checkpoint <dir>', 'checkpoint directory (config.json + model.safetensors)')
    .option('--steps <n>', 'ancestral sampling with n steps (default: the checkpoint’s T; fewer respaces the schedule)')
    .option('--ddim <n>', 'DDIM sampling with n steps')
    .option('--eta <e>', 'DDIM stochasticity η (default 0: deterministic)')
    .option('--n <n>', 'number of images', '16')
    .option('--seed <s>', 'random seed (the same seed gives the same images whatever the worker count)', '0')
    .option('--out <file>', 'PNG grid to write')
    .option('--workers <k>', 'worker threads, each with its own backend (0: the main thread; default: one per core)')
    .option('--batch <b>', 'images per forward pass within a worker (default: all of its images)')
    .option('--frames <dir>', 'also write the predicted x̂₀ of every image as a grid every --frame-every steps')
    .option('--frame-every <k>', 'steps between x̂₀ frames (default: a tenth of the steps)')
    .option('--no-ema', 'use the plain weights even when the checkpoint has EMA weights')
    .option('--cols <c>', 'images per row of the grid (default ⌈√n⌉)')
    .action(async (opts: RawOptions) => {
      code.value = await sampleCommand(checkSampleArgs(opts));
    });
}
