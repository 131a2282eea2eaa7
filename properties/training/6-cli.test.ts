import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { latestCheckpointDir, readTrainCheckpoint } from '../../reference/train/checkpoint.ts';
import { runCli } from './support/runs.ts';

const CLI = join(import.meta.dirname, '../../bin/ddpm-spec.mjs');

/** Resolves when `cond` holds (polled every 2 ms), rejects after `ms`. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('7.6 The command line and crash safety', () => {
  it('train refuses an unknown data set, a bad configuration field and a missing step count, naming them (exit 2)  [training.cli.badArguments]', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ddpm-cli-'));
    try {
      const a = await runCli(['train', '--data', 'mnist', '--steps', '5', '--out', join(dir, 'a')]);
      expect(a.code).toBe(2);
      expect(a.err).toContain('--data must be one of fashion-mnist, moons, swissroll, 8gaussians, got "mnist"');
      const cfg = join(dir, 'c.json');
      writeFileSync(cfg, JSON.stringify({ model: { kind: 'mlp', mlp: { in_dim: 2, out_dim: 2, hidden: 8, layers: 1, temb_dim: 4 } }, optim: { lr: 'fast' } }));
      const b = await runCli(['train', '--data', 'moons', '--config', cfg, '--steps', '5', '--out', join(dir, 'b')]);
      expect(b.code).toBe(2);
      expect(b.err).toContain(`${cfg}: optim.lr: Invalid input: expected number, received string`);
      const c = await runCli(['train', '--data', 'moons', '--out', join(dir, 'c')]);
      expect(c.code).toBe(2);
      expect(c.err).toContain('--steps is required');
      expect(existsSync(join(dir, 'b'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('train prints plain progress lines with loss, steps/s and ETA when not on a terminal, and bpd refuses toy data  [training.cli.plainProgress]', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ddpm-cli-'));
    try {
      const r = await runCli(['train', '--data', '8gaussians', '--steps', '200', '--out', join(dir, 'run')]);
      expect(r.code, r.err).toBe(0);
      expect(r.err).toMatch(/step 100\/200 {2}loss \d\.\d{5} {2}grad_norm \d+\.\d{4} {2}lr \d\.\d{2}e-\d {2}\d+\.\d{2} steps\/s {2}ETA \d+s/);
      expect(r.err).toContain(`done: 200 steps`);
      const b = await runCli(['bpd', '--checkpoint', join(dir, 'run'), '--data', 'moons']);
      expect(b.code).toBe(2);
      expect(b.err).toContain('--data must be fashion-mnist');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a run killed while writing a checkpoint leaves the previous one loadable, and resuming cleans up the partial one  [training.checkpoint.killSafe]', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ddpm-kill-'));
    try {
      // An MLP with ~3.2M parameters: each checkpoint holds 4 copies (51 MB), so writing one takes long enough
      // to be caught in the middle; one checkpoint per step.
      const cfg = join(dir, 'big.json');
      writeFileSync(
        cfg,
        JSON.stringify({
          model: { kind: 'mlp', mlp: { in_dim: 2, out_dim: 2, hidden: 1024, layers: 4, temb_dim: 32 } },
          diffusion: { num_diffusion_timesteps: 50, beta_start: 1e-3, beta_end: 0.2 },
          batch_size: 4,
          checkpoint_every: 1,
          keep_checkpoints: 2,
        }),
      );
      const out = join(dir, 'run');
      const child = spawn(process.execPath, [CLI, 'train', '--data', 'moons', '--config', cfg, '--steps', '1000000', '--out', out], { stdio: 'ignore' });
      const exited = new Promise<void>((r) => child.on('exit', () => r()));
      try {
        const link = join(out, 'checkpoint');
        await until(() => existsSync(link), 90_000, 'the first checkpoint');
        const partial = (): string[] => (existsSync(out) ? readdirSync(out).filter((f) => /^\.ckpt-\d+\.tmp-/.test(f)) : []);
        // wait for a write of a later checkpoint to begin, then kill the process in the middle of it
        await until(() => partial().length > 0, 60_000, 'a checkpoint write to start');
        child.kill('SIGKILL');
        await exited;
        expect(partial().length, 'the kill landed in the middle of a write: its temporary directory is still there').toBe(1);
        const target = readlinkSync(link);
        const ck = readTrainCheckpoint(latestCheckpointDir(out)!);
        expect(ck.dir).toBe(join(out, target));
        expect(ck.state.step).toBeGreaterThanOrEqual(1);
        expect(ck.tensors.get('param/hidden.1.weight')?.shape).toEqual([1024, 1024]);
        // resume one more step: works from the intact checkpoint and removes the partial one
        const r = await runCli(['train', '--data', 'moons', '--steps', String(ck.state.step + 1), '--out', out, '--resume']);
        expect(r.code, r.err).toBe(0);
        expect(partial()).toEqual([]);
        expect(readTrainCheckpoint(latestCheckpointDir(out)!).state.step).toBe(ck.state.step + 1);
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
