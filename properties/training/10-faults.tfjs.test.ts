import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrainConfig, parseTrainConfig } from '../../reference/train/config.ts';
import { checkpointName, latestCheckpointDir, listCheckpoints, readTrainCheckpoint, TRAIN_STATE_FILE } from '../../reference/train/checkpoint.ts';
import { ToyStream, type BatchSource } from '../../reference/train/data.ts';
import { loadForEvaluation } from '../../reference/train/evaluate.ts';
import { LOG_FILE, train, type FaultPoint } from '../../reference/train/loop.ts';
import { FormatError } from '../../src/formats/errors.ts';
import { readSafetensors, writeSafetensors } from '../../src/formats/safetensors.ts';
import { SystemError } from '../../src/io/errors.ts';
import { LOCK_FILE } from '../../src/io/lock.ts';
import { Rng } from '../../src/numeric/rng.ts';
import { differing, errorOf, tensorBytes } from './support/runs.ts';

/**
 * A tiny MLP on two moons, with checkpoints more frequent than log records (every 3 and 4 steps), so that most
 * checkpoints fall inside a log interval: the case where a resumed log used to differ.
 */
function config(over: Record<string, unknown> = {}): TrainConfig {
  return TrainConfig.parse({
    model: { kind: 'mlp', mlp: { in_dim: 2, out_dim: 2, hidden: 8, layers: 1, temb_dim: 4 } },
    diffusion: { num_diffusion_timesteps: 10, beta_start: 1e-2, beta_end: 0.5 },
    optim: { lr: 1e-2, warmup: 2, ema_decay: 0.9 },
    batch_size: 8,
    checkpoint_every: 3,
    log_every: 4,
    seed: 7,
    keep_checkpoints: 2,
    ...over,
  });
}
const STEPS = 14;
const moons = (rng: Rng): BatchSource => new ToyStream('moons', rng);
const tmp = (): string => mkdtempSync(join(tmpdir(), 'ddpm-faults-'));

/** Thrown by a fault hook: the run stops there as if killed (its later writes never happen). */
class SimulatedKill extends Error {}


/** The log's records without the wall-clock fields (those differ between any two runs). */
function logOf(out: string): string[] {
  return readFileSync(join(out, LOG_FILE), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .map(({ steps_per_s: _s, elapsed_s: _e, ...rest }) => JSON.stringify(rest));
}


/** Rewrite one tensor of a training checkpoint in place. */
function poison(file: string, key: string, index: number, value: number): void {
  const st = readSafetensors(file);
  const t = st.tensors.get(key)!;
  t.data[index % t.data.length] = value;
  writeSafetensors(file, [...st.tensors].map(([n, x]) => [n, { dtype: 'F32' as const, shape: x.shape, data: x.data as Float32Array }]), st.metadata);
}

/** A PID that is not running: a child that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

const POINTS: FaultPoint[] = ['step:updated', 'log:written', 'checkpoint:state-written', 'checkpoint:renamed', 'checkpoint:linked'];

describe('7.10 Faults: kills, concurrent runs and poisoned checkpoints', () => {
  it('a run killed at any point (after an update, after a log line, inside a checkpoint write) and resumed ends bit-identical to an uninterrupted run, log included  [training.faults.killResume]', async () => {
    const whole = tmp();
    const dirs: string[] = [whole];
    try {
      await train({ config: config(), dataName: 'moons', openData: moons, outDir: whole, steps: STEPS });
      const want = { tensors: tensorBytes(latestCheckpointDir(whole)!), log: logOf(whole) };
      // a session that ends inside a log interval (--steps 7, log every 4) writes a partial record, which the resumed run replaces
      const cut = tmp();
      dirs.push(cut);
      await train({ config: config(), dataName: 'moons', openData: moons, outDir: cut, steps: 7 });
      expect(logOf(cut).at(-1)).toMatch(/^\{"step":7,.*"partial":true\}$/);
      await train({ dataName: 'moons', openData: moons, outDir: cut, steps: STEPS, resume: true });
      expect(logOf(cut), 'log after a session cut inside a log interval').toEqual(want.log);
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...POINTS), fc.integer({ min: 1, max: STEPS }), async (point, at) => {
          const out = tmp();
          dirs.push(out);
          let fired = false;
          const fault = (p: FaultPoint, step: number): void => {
            if (!fired && p === point && step >= at) {
              fired = true;
              throw new SimulatedKill(`killed at ${p}, step ${step}`);
            }
          };
          const first = await train({ config: config(), dataName: 'moons', openData: moons, outDir: out, steps: STEPS, fault }).catch((e: unknown) => {
            if (!(e instanceof SimulatedKill)) throw e;
            return null;
          });
          if (first === null) {
            // as after a kill: rerun, resuming when a checkpoint exists
            const resume = latestCheckpointDir(out) !== null;
            await train({ config: resume ? undefined : config(), dataName: 'moons', openData: moons, outDir: out, steps: STEPS, resume });
          }
          expect(differing(tensorBytes(latestCheckpointDir(out)!), want.tensors), `tensors differ after a kill at ${point}, step ≥ ${at}`).toEqual([]);
          expect(logOf(out), `log differs after a kill at ${point}, step ≥ ${at}`).toEqual(want.log);
          rmSync(out, { recursive: true, force: true });
        }),
        { numRuns: 12 },
      );
    } finally {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    }
  });

  it('a second run on a locked --out is refused naming the owner; a stale lock of a dead process is taken over with a warning  [training.faults.lockOneWriter]', async () => {
    const out = tmp();
    try {
      writeFileSync(join(out, LOCK_FILE), JSON.stringify({ pid: process.pid, host: hostname(), started: '2026-01-01T00:00:00Z', command: 'train --data moons' }));
      const e = await errorOf(train({ config: config(), dataName: 'moons', openData: moons, outDir: out, steps: 3 }));
      expect(e).toBeInstanceOf(SystemError);
      expect(e.message).toBe(
        `${join(out, LOCK_FILE)}: another run writes in this directory: process ${process.pid} (this process) on this host, started 2026-01-01T00:00:00Z (train --data moons); wait for it, or choose another --out`,
      );
      expect(listCheckpoints(out)).toEqual([]);
      const dead = deadPid();
      writeFileSync(join(out, LOCK_FILE), JSON.stringify({ pid: dead, host: hostname(), started: '2026-01-01T00:00:00Z', command: 'train --data moons' }));
      const warnings: string[] = [];
      const r = await train({ config: config(), dataName: 'moons', openData: moons, outDir: out, steps: 3, onWarning: (w) => warnings.push(w) });
      expect(r.step).toBe(3);
      expect(warnings).toEqual([`${join(out, LOCK_FILE)}: taking over a stale lock of process ${dead} (started 2026-01-01T00:00:00Z, no longer running)`]);
      expect(existsSync(join(out, LOCK_FILE)), 'the lock is released at the end').toBe(false);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('a NaN or ±∞ anywhere in a checkpoint (weights, EMA, Adam moments) stops resume and evaluation, naming the tensor and its first bad index  [training.faults.nonFiniteRefused]', async () => {
    const out = tmp();
    try {
      await train({ config: config(), dataName: 'moons', openData: moons, outDir: out, steps: 3 });
      const file = join(latestCheckpointDir(out)!, TRAIN_STATE_FILE);
      const clean = readFileSync(file);
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('param', 'ema', 'adam_m', 'adam_v'),
          fc.constantFrom('in.weight', 'in.bias', 'out.weight'),
          fc.nat({ max: 7 }),
          fc.constantFrom(Number.NaN, Infinity, -Infinity),
          async (prefix, name, index, value) => {
            writeFileSync(file, clean);
            poison(file, `${prefix}/${name}`, index, value);
            const e = await errorOf(train({ dataName: 'moons', openData: moons, outDir: out, steps: 6, resume: true }));
            expect(e).toBeInstanceOf(FormatError);
            expect(e.message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ${prefix}/${name}: element \\d+ \\(flat, row-major\\) is ${String(value)}; a checkpoint must hold finite numbers only`));
            const f = e as FormatError;
            expect(f.field).toBe(`${prefix}/${name}`);
            expect(() => loadForEvaluation(out, prefix === 'ema')).toThrow(FormatError);
          },
        ),
        { numRuns: 12 },
      );
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('a checkpoint whose recorded step differs from its directory name is refused, naming both  [training.faults.stepMatchesName]', async () => {
    const out = tmp();
    try {
      await train({ config: config(), dataName: 'moons', openData: moons, outDir: out, steps: 3 });
      const moved = join(out, checkpointName(1_000_000_000_000));
      renameSync(latestCheckpointDir(out)!, moved);
      rmSync(join(out, 'checkpoint'));
      expect(() => readTrainCheckpoint(moved)).toThrow(
        `${join(moved, TRAIN_STATE_FILE)}: __metadata__.train_state.step: is 3, but the directory is named for step 1000000000000 (a copied or altered checkpoint?)`,
      );
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('a batch that cannot fit the backend, T = 1, and degenerate schedules are refused before any work, naming the field  [training.faults.validatedBeforeWork]', async () => {
    const out = tmp();
    try {
      const e = await errorOf(train({ config: config({ batch_size: 100_000_000 }), dataName: 'moons', openData: moons, outDir: out, steps: 3 }));
      expect(e).toBeInstanceOf(SystemError);
      expect(e.message).toMatch(/^batch_size: 100000000 \(100000000 examples at once per thread\) needs at least [\d.]+ GiB of activations, more than the \w+ backend's [\d.]+ GiB/);
      expect(listCheckpoints(out)).toEqual([]);
      const base = { model: { kind: 'mlp', mlp: { in_dim: 2, out_dim: 2, hidden: 8, layers: 1, temb_dim: 4 } } };
      const refused = (diffusion: Record<string, unknown>): string => {
        try {
          parseTrainConfig({ ...base, diffusion }, 'c.json');
        } catch (err) {
          return (err as Error).message;
        }
        return 'accepted';
      };
      expect(refused({ num_diffusion_timesteps: 1 })).toBe('c.json: diffusion.num_diffusion_timesteps: Too small: expected number to be >=2');
      expect(refused({ beta_schedule: 'const', beta_end: 1 })).toMatch(/^c\.json: diffusion\.beta_end: const schedule: β reaches 1 at t = 1 of T = 1000/);
      expect(refused({ beta_schedule: 'const', beta_end: 1e-9, beta_start: 1e-9 })).toMatch(/^c\.json: diffusion\.beta_end: const schedule: ᾱ_T rounds to 1 in float32/);
      expect(refused({ beta_schedule: 'jsd', num_diffusion_timesteps: 10 }), 'β = 1 at the last step only (jsd) is fine').toBe('accepted');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
