/**
 * `ddpm-spec bpd`: the test negative log-likelihood bound of a trained model in bits per dimension, with its
 * standard error over the images.
 *
 * ```
 * ddpm-spec bpd --checkpoint DIR --data fashion-mnist [--split test] [--n N] [--batch B] [--seed S]
 *               [--no-ema] [--steps-per-batch K] [--json]
 * ```
 *
 * DIR is a training output directory (its newest checkpoint is used), one `ckpt-*` directory, or a sampling
 * checkpoint of `reference/unet` (config.json + safetensors). The bound is the diffusion core's `calcBpdLoop`:
 * all T terms, L_T + Σ_{t>1} L_{t−1} + L_0 with the discretised decoder, each term's x_t drawn with noise from
 * the seed; images are the first N of the split at the model's resolution. Standard error: s/√N over images
 * (it does not include the Monte Carlo noise of the single x_t draw per term, which is part of each image's
 * estimate).
 *
 * @module
 */
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { initBackend } from '../backend.ts';
import { levelsToUnit, loadFashionMnist, resizeLevels, type Split } from '../data/fashionMnist.ts';
import { Rng } from '../numeric/rng.ts';
import { bitsPerDim, loadForEvaluation, type BpdSummary } from '../../reference/train/evaluate.ts';
import { diffusionFor } from '../../reference/train/loop.ts';
import { UsageError, type ExitCode } from './common.ts';

interface RawOptions {
  checkpoint?: string;
  data?: string;
  split: string;
  n: string;
  batch: string;
  seed: string;
  ema: boolean;
  stepsPerBatch: string;
  json?: boolean;
}

export interface BpdArgs {
  checkpoint: string;
  split: Split;
  n: number;
  batch: number;
  seed: number;
  ema: boolean;
  stepsPerBatch: number;
  json: boolean;
}

function int(option: string, raw: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = Number(raw);
  if (!/^\d+$/.test(String(raw).trim()) || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new UsageError(`${option} must be an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? '∞' : max}], got ${JSON.stringify(raw)}`);
  }
  return v;
}

export function parseBpdArgs(o: RawOptions): BpdArgs {
  if (o.checkpoint === undefined) throw new UsageError('--checkpoint DIR is required');
  if (o.data === undefined) throw new UsageError('--data is required (fashion-mnist)');
  if (o.data !== 'fashion-mnist') throw new UsageError(`--data must be fashion-mnist (bits/dim needs data on the 256-level pixel grid; the 2-D toy sets are continuous), got ${JSON.stringify(o.data)}`);
  if (o.split !== 'test' && o.split !== 'train') throw new UsageError(`--split must be test or train, got ${JSON.stringify(o.split)}`);
  return {
    checkpoint: o.checkpoint,
    split: o.split,
    n: int('--n', o.n, 1, 60000),
    batch: int('--batch', o.batch, 1),
    seed: int('--seed', o.seed, 0, 2 ** 31 - 1),
    ema: o.ema,
    stepsPerBatch: int('--steps-per-batch', o.stepsPerBatch, 1),
    json: Boolean(o.json),
  };
}

/** Run the command; resolves to the exit code. */
export async function bpdCommand(args: BpdArgs, stream: NodeJS.WriteStream = process.stderr): Promise<{ code: number; summary: BpdSummary }> {
  const report = await initBackend();
  const { model, config, source, step } = loadForEvaluation(args.checkpoint, args.ema);
  if (config.model.kind !== 'unet' || config.model.unet.in_channels !== 1) {
    model.dispose();
    throw new UsageError(`${source}: bits/dim on fashion-mnist needs a 1-channel UNet, the checkpoint holds ${config.model.kind === 'unet' ? `a ${config.model.unet.in_channels}-channel UNet` : 'an MLP'}`);
  }
  const diffusion = diffusionFor(config.diffusion);
  try {
    const set = loadFashionMnist(args.split);
    const r = config.model.unet.resolution;
    const n = Math.min(args.n, set.count);
    const levels = resizeLevels({ ...set, count: n, pixels: set.pixels.subarray(0, n * set.height * set.width) }, r);
    const x = levelsToUnit(levels);
    const tty = Boolean(stream.isTTY) && !args.json;
    const bar = tty ? new cliProgress.SingleBar({ format: 'bpd {bar} {value}/{total} images | ETA {eta_formatted}', hideCursor: true, stream }, cliProgress.Presets.shades_classic) : null;
    bar?.start(n, 0);
    stream.write(`ddpm-spec bpd: ${n} ${args.split} images, ${source}${step !== null ? ` (step ${step})` : ''}, ${args.ema ? 'EMA' : 'raw'} weights, T = ${diffusion.T}, backend ${report.chosen}\n`);
    const t0 = performance.now();
    const summary = await bitsPerDim(model, diffusion, x, n, new Rng(args.seed), {
      batchSize: args.batch,
      stepsPerBatch: args.stepsPerBatch,
      onBatch: (done, total) => {
        if (bar) bar.update(done);
        else stream.write(`bpd: ${done}/${total} images\n`);
      },
    });
    bar?.stop();
    const seconds = (performance.now() - t0) / 1000;
    const out = {
      checkpoint: source,
      step,
      split: args.split,
      n,
      weights: args.ema ? 'ema' : 'raw',
      bits_per_dim: summary.mean,
      standard_error: summary.standardError,
      prior_bits_per_dim: summary.priorMean,
      T: diffusion.T,
      model_var_type: config.diffusion.model_var_type,
      backend: report.chosen,
      seconds,
    };
    if (args.json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    else process.stdout.write(`${args.split} bits/dim: ${summary.mean.toFixed(4)} ± ${summary.standardError.toFixed(4)} (standard error over ${n} images; prior term ${summary.priorMean.toExponential(2)}; ${seconds.toFixed(1)} s on ${report.chosen})\n`);
    return { code: 0, summary };
  } finally {
    diffusion.dispose();
    model.dispose();
  }
}

export function registerBpd(program: Command, code: ExitCode): void {
  program
    .command('bpd')
    .description('test bits/dim (the variational bound) of a trained checkpoint, with its standard error')
    .option('--checkpoint <dir>', 'training output directory, ckpt-* directory, or sampling checkpoint directory')
    .option('--data <name>', 'data set (fashion-mnist)')
    .option('--split <split>', 'test or train', 'test')
    .option('--n <n>', 'number of images (the first N of the split)', '100')
    .option('--batch <b>', 'images per batch', '16')
    .option('--steps-per-batch <k>', 'timesteps evaluated together (same result, fewer launches)', '1')
    .option('--seed <s>', 'seed of the noise of every term', '0')
    .option('--no-ema', 'use the raw weights instead of the EMA')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (opts: RawOptions) => {
      code.value = (await bpdCommand(parseBpdArgs(opts))).code;
    });
}
