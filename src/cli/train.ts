/**
 * `ddpm-spec train`: train an ε-model on Fashion-MNIST (a UNet) or on a 2-D toy set (an MLP).
 *
 * ```
 * ddpm-spec train --data fashion-mnist|moons|swissroll|8gaussians --steps N --out DIR
 *                 [--config FILE] [--resume] [--max-minutes M] [--seed S] [--workers K] [--micro-batch N]
 * ```
 *
 * Without `--config` a built-in configuration is used (`fashion-mnist`: a small UNet at 32×32; the toy sets:
 * an MLP). `--steps` is the total number of steps: with `--resume` the run continues from the newest checkpoint
 * in DIR up to N. Progress goes to stderr: a bar with the loss, steps/s and the ETA on a terminal, plain lines
 * at every log interval otherwise. Without `--workers` the run times one gradient on 1 and on min(cores, batch)
 * worker threads and keeps the faster; without `--micro-batch` it takes the largest micro-batch that fits the backend's
 * memory (`reference/train/parallelism.ts`); one line on stderr says what was chosen and why, and a resumed run
 * keeps what its checkpoint recorded unless told otherwise. Exit codes: 0 done, 1 the loss or gradient became NaN/∞ (the last good
 * checkpoint is kept and named), 2 bad arguments, configuration, data or checkpoint (the file and field named),
 * 3 the system refused (a batch too large for the backend, a full disk, --out locked by another run), 4 a bug
 * (the table is in `common.ts`).
 *
 * @module
 */
import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { initBackend } from '../backend.ts';
import { hoBetaSchedule, scheduleWarning } from '../../reference/diffusion/schedules.ts';
import { DATASETS, openDataset, type DatasetName } from '../../reference/train/data.ts';
import { PRESETS, readTrainConfig, TrainConfig } from '../../reference/train/config.ts';
import { exampleShapeOf, train, TrainingDivergedError, type LogRecord, type Progress } from '../../reference/train/loop.ts';
import { UsageError, type ExitCode } from './common.ts';

interface RawOptions {
  data?: string;
  config?: string;
  steps?: string;
  out?: string;
  resume?: boolean;
  maxMinutes?: string;
  seed?: string;
  workers?: string;
  microBatch?: string;
}

/** The checked options. */
export interface TrainArgs {
  data: DatasetName;
  config?: TrainConfig;
  configSource: string;
  steps: number;
  out: string;
  resume: boolean;
  maxMinutes?: number;
  /** 'auto' (no --workers): the faster of 1 and min(cores, batch), or the resumed run's recorded count. */
  workers: number | 'auto';
  /** 'auto' (no --micro-batch): the largest that fits the backend's memory, or the resumed run's recorded one. */
  microBatch: number | 'auto';
}

function int(option: string, raw: string | undefined, min: number): number {
  if (raw === undefined) throw new UsageError(`${option} is required`);
  const v = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(v) || v < min) throw new UsageError(`${option} must be an integer ≥ ${min}, got ${JSON.stringify(raw)}`);
  return v;
}

/** Check the options before any work starts (errors name the option). */
export function parseTrainArgs(o: RawOptions): TrainArgs {
  if (o.data === undefined) throw new UsageError(`--data is required: one of ${DATASETS.join(', ')}`);
  if (!(DATASETS as readonly string[]).includes(o.data)) throw new UsageError(`--data must be one of ${DATASETS.join(', ')}, got ${JSON.stringify(o.data)}`);
  const data = o.data as DatasetName;
  const steps = int('--steps', o.steps, 0);
  if (o.out === undefined || o.out.trim() === '') throw new UsageError('--out DIR is required (checkpoints and the log go there)');
  let maxMinutes: number | undefined;
  if (o.maxMinutes !== undefined) {
    maxMinutes = Number(o.maxMinutes);
    if (!(maxMinutes > 0) || !Number.isFinite(maxMinutes)) throw new UsageError(`--max-minutes must be a positive number, got ${JSON.stringify(o.maxMinutes)}`);
  }
  let config: TrainConfig | undefined;
  let configSource: string;
  if (o.config !== undefined) {
    config = readTrainConfig(o.config);
    configSource = o.config;
  } else if (o.resume) {
    configSource = 'the checkpoint';
  } else {
    config = data === 'fashion-mnist' ? PRESETS['fashion-mnist'] : PRESETS.toy;
    configSource = `built-in '${data === 'fashion-mnist' ? 'fashion-mnist' : 'toy'}' configuration`;
  }
  if (o.seed !== undefined) {
    const seed = int('--seed', o.seed, 0);
    if (config === undefined) throw new UsageError('--seed cannot change the seed of a resumed run (it is in the checkpoint)');
    config = TrainConfig.parse({ ...config, seed });
  }
  if (config !== undefined) {
    const isImage = data === 'fashion-mnist';
    if (isImage && config.model.kind !== 'unet') throw new UsageError(`--data fashion-mnist needs a UNet, but ${configSource} has model.kind '${config.model.kind}'`);
    if (!isImage && config.model.kind !== 'mlp') throw new UsageError(`--data ${data} (2-D points) needs an MLP, but ${configSource} has model.kind '${config.model.kind}'`);
    if (isImage && config.model.kind === 'unet' && config.model.unet.in_channels !== 1) {
      throw new UsageError(`fashion-mnist is grayscale: model.unet.in_channels must be 1 in ${configSource}, got ${config.model.unet.in_channels}`);
    }
    if (!isImage && config.model.kind === 'mlp' && config.model.mlp.in_dim !== 2) {
      throw new UsageError(`${data} is 2-D: model.mlp.in_dim must be 2 in ${configSource}, got ${config.model.mlp.in_dim}`);
    }
  }
  const workers = o.workers === undefined || o.workers === 'auto' ? 'auto' : int('--workers', o.workers, 1);
  if (workers !== 'auto' && workers > availableParallelism()) {
    throw new UsageError(`--workers must be at most ${availableParallelism()}, the cores of this machine (each worker holds a copy of the model and a backend), got ${workers}`);
  }
  const microBatch = o.microBatch === undefined || o.microBatch === 'auto' ? 'auto' : int('--micro-batch', o.microBatch, 1);
  return { data, config, configSource, steps, out: o.out, resume: Boolean(o.resume), maxMinutes, workers, microBatch };
}

function fmtDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/** Run the command; resolves to the exit code. */
export async function trainCommand(args: TrainArgs, stream: NodeJS.WriteStream = process.stderr): Promise<number> {
  const report = await initBackend();
  const tty = Boolean(stream.isTTY);
  let bar: cliProgress.SingleBar | null = null;
  const target = args.steps;
  const started = performance.now();
  /** Seconds left: by the step count, or by the --max-minutes budget when that ends the session sooner. */
  const etaS = (step: number, rate: number): number => {
    const bySteps = (target - step) / Math.max(rate, 1e-9);
    if (args.maxMinutes === undefined) return bySteps;
    return Math.min(bySteps, Math.max(0, args.maxMinutes * 60 - (performance.now() - started) / 1000));
  };
  const say = (line: string): void => {
    if (bar) bar.stop();
    stream.write(`${line}\n`);
    bar = null;
  };
  const onProgress = (p: Progress): void => {
    if (!tty) return;
    if (bar === null) {
      bar = new cliProgress.SingleBar(
        { format: 'train {bar} {value}/{total} steps | loss {loss} | {rate} steps/s | ETA {eta2}', hideCursor: true, stream, etaBuffer: 50 },
        cliProgress.Presets.shades_classic,
      );
      bar.start(target, p.step - 1, { loss: '-', rate: '-', eta2: '?' });
    }
    const eta = etaS(p.step, p.stepsPerSec);
    bar.update(p.step, { loss: p.loss.toFixed(4), rate: p.stepsPerSec.toFixed(2), eta2: fmtDuration(eta) });
  };
  const onLog = (r: LogRecord): void => {
    if (tty) return;
    const eta = etaS(r.step, r.steps_per_s);
    stream.write(
      `step ${r.step}/${target}  loss ${r.loss.toFixed(5)}  grad_norm ${r.grad_norm.toFixed(4)}  lr ${r.lr.toExponential(2)}  ${r.steps_per_s.toFixed(2)} steps/s  ETA ${fmtDuration(eta)}\n`,
    );
  };
  if (args.config !== undefined) {
    const d = args.config.diffusion;
    const warning = scheduleWarning(hoBetaSchedule(d.beta_schedule, d.beta_start, d.beta_end, d.num_diffusion_timesteps));
    if (warning !== null) say(`ddpm-spec train: warning: ${args.configSource}: diffusion: ${warning}`);
  }
  say(`ddpm-spec train: ${args.data}, ${args.resume ? 'resuming' : 'new run'} in ${args.out}, configuration: ${args.configSource}, backend: ${report.chosen}`);
  try {
    const res = await train({
      config: args.config,
      dataName: args.data,
      openData: (rng, config) => openDataset(args.data, exampleShapeOf(config), rng),
      outDir: args.out,
      steps: args.steps,
      resume: args.resume,
      maxSeconds: args.maxMinutes === undefined ? undefined : args.maxMinutes * 60,
      workers: args.workers,
      microBatch: args.microBatch,
      onParallelism: (_, line) => say(`ddpm-spec train: ${line}`),
      onProgress,
      onLog,
      onWarning: (line) => say(`ddpm-spec train: warning: ${line}`),
      onCheckpoint: (dir, step) => {
        if (!tty) stream.write(`checkpoint: step ${step} → ${dir}\n`);
      },
    });
    say(`done: ${res.step} steps (${res.step - res.startStep} this session, ${fmtDuration(res.elapsedS)} in all) on ${res.backend}; checkpoint ${res.lastCheckpoint}`);
    return 0;
  } catch (e) {
    if (e instanceof TrainingDivergedError) {
      say(`ddpm-spec train: ${e.message}`);
      return 1;
    }
    if (bar) (bar as cliProgress.SingleBar).stop();
    throw e;
  }
}

export function registerTrain(program: Command, code: ExitCode): void {
  program
    .command('train')
    .description('train a DDPM ε-model: a UNet on Fashion-MNIST or an MLP on a 2-D toy set (checkpoints and log in --out)')
    .option('--data <name>', `data set: ${DATASETS.join(', ')}`)
    .option('--config <file>', 'training configuration (JSON; default: a built-in one for the data set)')
    .option('--steps <n>', 'train until this many steps are done in total')
    .option('--out <dir>', 'output directory: checkpoints, log.jsonl')
    .option('--resume', 'continue from the newest checkpoint in --out')
    .option('--max-minutes <m>', 'stop (with a checkpoint) after this many minutes of this session')
    .option('--seed <s>', 'override the configuration\'s seed (new runs only)')
    .option('--workers <k>', 'compute gradients on k worker threads (data parallel; uses k cores with wasm); default: the faster of 1 and min(cores, batch), timed at the start (a resumed run: the recorded count)')
    .option('--micro-batch <n>', 'accumulate each gradient over micro-batches of at most n examples (per worker): less memory, same step up to rounding; default: the largest that fits the backend\'s memory')
    .action(async (opts: RawOptions) => {
      code.value = await trainCommand(parseTrainArgs(opts));
    });
}
