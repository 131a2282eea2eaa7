/**
 * Helpers of the training-loop properties: a tiny run's configuration and data, checkpoints as bytes, the error a
 * run ends with, and the command line run as a child process.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { readTrainCheckpoint } from '../../../reference/train/checkpoint.ts';
import { TrainConfig } from '../../../reference/train/config.ts';
import { ToyStream, type BatchSource } from '../../../reference/train/data.ts';
import type { Rng } from '../../../src/numeric/rng.ts';

/** A tiny MLP run on two moons: small enough for a few dozen steps in well under a second on any backend. */
export function tinyMoonsConfig(over: Record<string, unknown> = {}): TrainConfig {
  return TrainConfig.parse({
    model: { kind: 'mlp', mlp: { in_dim: 2, out_dim: 2, hidden: 16, layers: 2, temb_dim: 8 } },
    diffusion: { num_diffusion_timesteps: 50, beta_start: 1e-3, beta_end: 0.2 },
    optim: { lr: 1e-2, warmup: 3, ema_decay: 0.9 },
    batch_size: 16,
    checkpoint_every: 5,
    log_every: 5,
    seed: 42,
    ...over,
  });
}

/** The two-moons data source of a run. */
export const moons = (rng: Rng): BatchSource => new ToyStream('moons', rng);

const CLI = join(import.meta.dirname, '../../../bin/ddpm-spec.mjs');

/** Run `ddpm-spec ARGS` in a child process: its exit code and stderr. */
export function runCli(args: string[]): Promise<{ code: number | null; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => resolve({ code, err }));
  });
}

/** Every tensor of a checkpoint directory as base64 bytes, for bit-for-bit comparison. */
export function tensorBytes(dir: string): Map<string, string> {
  const ck = readTrainCheckpoint(dir);
  return new Map([...ck.tensors].map(([k, t]) => [k, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64')]));
}

/** Names of the tensors whose bytes differ between two checkpoints (empty when bit-identical). */
export function differing(a: Map<string, string>, b: Map<string, string>): string[] {
  const keys = new Set([...a.keys(), ...b.keys()]);
  return [...keys].filter((k) => a.get(k) !== b.get(k));
}

/** The error `p` rejects with; fails when it resolves. */
export async function errorOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error, but it succeeded');
}
