/**
 * Per-kernel profile of one training step on the current backend (`tf.profile`): the time of every tfjs kernel
 * the step runs, summed by kernel name (convolutions and matrix products also by input shapes), largest first.
 * This is how the slow gradient kernels of the wasm backend (`AvgPoolGrad`, `Reverse`) were found.
 *
 * ```
 * node --import tsx reference/train/profileStep.ts [--model small|cifar10 | --config train.json] [--batch 8] [--micro-batch N] [--top 30] [--by-shape]
 * ```
 *
 * `--config` takes the UNet of a training configuration file (its `model.unet`) instead of a named model;
 * `--by-shape` keys every kernel by its input shapes (by default only convolutions and matrix products are).
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import type { UNetConfig } from '../unet/config.ts';
import { initBackend } from '../../src/backend.ts';
import { prepareTrainStep, TRAIN_STEP_MODELS } from './benchWorkload.ts';
import { readTrainConfig } from './config.ts';

function arg(argv: string[], name: string, dflt: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : dflt;
}

function positive(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`profileStep: ${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

async function main(argv: string[]): Promise<void> {
  const configPath = argv.includes('--config') ? arg(argv, '--config', '') : undefined;
  if (configPath === '') throw new Error('profileStep: --config must be followed by the path of a training configuration file');
  const model = configPath ?? arg(argv, '--model', 'small');
  let unet: UNetConfig;
  if (configPath !== undefined) {
    const c = readTrainConfig(configPath);
    if (c.model.kind !== 'unet') throw new Error(`profileStep: --config ${configPath} must describe a UNet (model.kind "unet"), got ${JSON.stringify(c.model.kind)}`);
    unet = c.model.unet;
  } else if (model in TRAIN_STEP_MODELS) {
    unet = TRAIN_STEP_MODELS[model as keyof typeof TRAIN_STEP_MODELS];
  } else {
    throw new Error(`profileStep: --model must be one of ${Object.keys(TRAIN_STEP_MODELS).join(', ')}, got ${JSON.stringify(model)}`);
  }
  const byShape = argv.includes('--by-shape');
  const batch = positive('--batch', arg(argv, '--batch', '8'));
  const micro = argv.includes('--micro-batch') ? positive('--micro-batch', arg(argv, '--micro-batch', '')) : undefined;
  const top = positive('--top', arg(argv, '--top', '30'));
  const report = await initBackend();
  const step = await prepareTrainStep(unet, batch, { microBatch: micro });
  try {
    await step.run(); // warm-up
    const t0 = performance.now();
    await step.run();
    const stepMs = performance.now() - t0;
    const info = await tf.profile(async () => {
      await step.run();
    });
    const by = new Map<string, { ms: number; n: number }>();
    let total = 0;
    for (const k of info.kernels) {
      const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      const key = byShape || k.name === 'BatchMatMul' || k.name === 'Conv2D' ? `${k.name} ${JSON.stringify(k.inputShapes)}` : k.name;
      const e = by.get(key) ?? { ms: 0, n: 0 };
      e.ms += ms;
      e.n++;
      by.set(key, e);
      total += ms;
    }
    const lines = [
      `training step, ${model} batch ${batch}${micro ? ` (micro-batches of ${micro})` : ''}, tfjs ${report.chosen}: ${stepMs.toFixed(0)} ms unprofiled; ${info.kernels.length} kernels, ${total.toFixed(0)} ms inside them`,
      `${'ms'.padStart(9)} ${'calls'.padStart(6)}  kernel`,
      ...[...by]
        .sort((a, b) => b[1].ms - a[1].ms)
        .slice(0, top)
        .map(([name, e]) => `${e.ms.toFixed(1).padStart(9)} ${String(e.n).padStart(6)}  ${name}`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await step.dispose();
  }
}

if (process.argv[1] && import.meta.filename === process.argv[1]) await main(process.argv.slice(2));
