import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkCheckpointFits, latestCheckpointDir, readTrainCheckpoint, TRAIN_STATE_FILE } from '../../reference/train/checkpoint.ts';
import { ToyStream, type BatchSource } from '../../reference/train/data.ts';
import { diffusionFor, LOG_FILE, train, TrainingDivergedError } from '../../reference/train/loop.ts';
import { trainingLosses } from '../../reference/diffusion/losses.ts';
import * as tf from '@tensorflow/tfjs';
import { createModel } from '../../reference/train/model.ts';
import { disposeOptimState } from '../../reference/train/optim.ts';
import { FormatError } from '../../src/formats/errors.ts';
import { Rng } from '../../src/numeric/rng.ts';
import { differing, errorOf, moons, tensorBytes, tinyMoonsConfig as config } from './support/runs.ts';
import { override } from '../../src/numeric/tolerance.ts';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'ddpm-train-'));
}


/**
 * Worker-thread tests run on the default backend only: every worker thread starts its own backend, which takes
 * seconds on the software webgpu adapter of CI; the gradient computation itself is the same code as above.
 */
const onDefaultBackend = process.env.DDPM_TEST_SET !== 'backend';

describe('7.5 The training loop and its checkpoints', () => {
  it('two runs with the same seed on the same backend give bit-identical weights, EMA and optimiser state; another seed does not  [training.loop.deterministic]', async () => {
    const [a, b, c] = [tmp(), tmp(), tmp()];
    try {
      await train({ config: config(), dataName: 'moons', openData: moons, outDir: a, steps: 12 });
      await train({ config: config(), dataName: 'moons', openData: moons, outDir: b, steps: 12 });
      await train({ config: config({ seed: 43 }), dataName: 'moons', openData: moons, outDir: c, steps: 12 });
      const ta = tensorBytes(latestCheckpointDir(a)!);
      expect(differing(tensorBytes(latestCheckpointDir(b)!), ta)).toEqual([]);
      expect(tensorBytes(latestCheckpointDir(c)!).get('param/in.weight')).not.toEqual(ta.get('param/in.weight'));
      expect(readFileSync(join(a, LOG_FILE), 'utf8').split('\n')[0]).toMatch(/^\{"step":5,"loss":/);
    } finally {
      for (const d of [a, b, c]) rmSync(d, { recursive: true, force: true });
    }
  });

  it('a run stopped at a checkpoint and resumed ends bit-identical to an uninterrupted run, log included  [training.loop.resumeBitIdentical]', async () => {
    const [whole, split] = [tmp(), tmp()];
    try {
      await train({ config: config(), dataName: 'moons', openData: moons, outDir: whole, steps: 20 });
      const first = await train({ config: config(), dataName: 'moons', openData: moons, outDir: split, steps: 10 });
      expect(first.step).toBe(10);
      const resumed = await train({ dataName: 'moons', openData: moons, outDir: split, steps: 20, resume: true });
      expect([resumed.startStep, resumed.step]).toEqual([10, 20]);
      expect(differing(tensorBytes(latestCheckpointDir(split)!), tensorBytes(latestCheckpointDir(whole)!))).toEqual([]);
      const strip = (s: string): string[] => s.trim().split('\n').map((l) => JSON.stringify({ ...JSON.parse(l), steps_per_s: 0, elapsed_s: 0 }));
      expect(strip(readFileSync(join(split, LOG_FILE), 'utf8'))).toEqual(strip(readFileSync(join(whole, LOG_FILE), 'utf8')));
      const st = readTrainCheckpoint(latestCheckpointDir(split)!).state;
      expect(st.rng).toEqual(readTrainCheckpoint(latestCheckpointDir(whole)!).state.rng);
    } finally {
      for (const d of [whole, split]) rmSync(d, { recursive: true, force: true });
    }
  });

  it('the hybrid loss trains learned-range variances: the variance outputs move, and the loss exceeds its L_simple part  [training.loop.hybridTrainsVariance]', async () => {
    const dir = tmp();
    try {
      const hybrid = config({
        model: { kind: 'mlp', mlp: { in_dim: 2, out_dim: 4, hidden: 16, layers: 2, temb_dim: 8 } },
        diffusion: { num_diffusion_timesteps: 50, beta_start: 1e-3, beta_end: 0.2, loss: 'hybrid', model_var_type: 'learned_range' },
      });
      const run = await train({ config: hybrid, dataName: 'moons', openData: moons, outDir: dir, steps: 10, keepModel: true });
      try {
        // out.weight is [hidden, 4]: columns 0–1 predict ε, columns 2–3 the variance interpolation v; both start at 0
        const w = await run.model!.variables.get('out.weight')!.data();
        const col = (j: number): number => Math.max(...Array.from({ length: 16 }, (_, i) => Math.abs(w[i * 4 + j])));
        expect(col(2)).toBeGreaterThan(0);
        expect(col(3)).toBeGreaterThan(0);
        const log = readFileSync(join(dir, LOG_FILE), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss: number });
        expect(log.every((r) => Number.isFinite(r.loss))).toBe(true);
        // the terms of one batch: loss = mse + vb with vb > 0 (the bound term is a KL / an NLL in bits)
        const d = diffusionFor(hybrid.diffusion);
        const rng = new Rng(1);
        const x0 = tf.tensor2d(new ToyStream('moons', rng).next(32), [32, 2]);
        const eps = tf.tensor2d(Float32Array.from(rng.normals(64)), [32, 2]);
        const terms = trainingLosses(d, (x, tm) => run.model!.apply(x, tm), x0, Array.from({ length: 32 }, (_, i) => (i * 7) % 50), eps);
        const [loss, mse, vb] = await Promise.all([terms.loss.data(), terms.mse!.data(), terms.vb!.data()]);
        tf.dispose([x0, eps, terms.loss, terms.mse!, terms.vb!]);
        d.dispose();
        expect(Math.min(...vb)).toBeGreaterThan(0);
        for (let i = 0; i < 32; i++) expect(loss[i]).toBeGreaterThan(mse[i]);
      } finally {
        run.model!.dispose();
        disposeOptimState(run.optim!);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a NaN loss stops the run with its step number and leaves the last good checkpoint as the newest  [training.loop.nanStops]', async () => {
    const dir = tmp();
    try {
      let batches = 0;
      const poisoned = (rng: Rng): BatchSource => {
        const s = new ToyStream('moons', rng);
        return Object.assign(Object.create(s) as BatchSource, {
          next: (n: number) => {
            const b = s.next(n);
            if (++batches === 8) b[3] = Number.NaN;
            return b;
          },
        });
      };
      const e = await errorOf(train({ config: config(), dataName: 'moons', openData: poisoned, outDir: dir, steps: 20 }));
      expect(e).toBeInstanceOf(TrainingDivergedError);
      expect(e.message).toBe(`training stopped at step 8: the loss is NaN; the last good checkpoint is ${join(dir, 'ckpt-00000005')}`);
      expect(readlinkSync(join(dir, 'checkpoint'))).toBe('ckpt-00000005');
      expect(readdirSync(dir).filter((f) => f.startsWith('ckpt-') || f.startsWith('.'))).toEqual(['ckpt-00000005']);
      expect(readTrainCheckpoint(latestCheckpointDir(dir)!).state.step).toBe(5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('resuming with a checkpoint of another model shape is refused, naming the file and every tensor that does not fit  [training.checkpoint.otherModel]', async () => {
    const dir = tmp();
    try {
      await train({ config: config(), dataName: 'moons', openData: moons, outDir: dir, steps: 5 });
      const ck = readTrainCheckpoint(latestCheckpointDir(dir)!);
      const bigger = config({ model: { kind: 'mlp', mlp: { in_dim: 2, out_dim: 2, hidden: 32, layers: 2, temb_dim: 8 } } });
      const model = createModel(bigger.model, new Rng(0));
      try {
        const e = (() => {
          try {
            checkCheckpointFits(ck, model);
          } catch (x) {
            return x as FormatError;
          }
          throw new Error('expected a mismatch');
        })();
        expect(e).toBeInstanceOf(FormatError);
        expect(e.file).toBe(join(ck.dir, TRAIN_STATE_FILE));
        expect(e.field).toBe('param/in.weight');
        expect(e.message).toContain('param/in.weight: shape [2,16] in the checkpoint, the model expects [2,32]');
        expect(e.message).toContain('belongs to another model');
      } finally {
        model.dispose();
      }
      // Through the loop: a configuration that disagrees with the checkpoint's model is named before any work.
      const e2 = await errorOf(train({ config: bigger, dataName: 'moons', openData: moons, outDir: dir, steps: 10, resume: true }));
      expect(e2).toBeInstanceOf(FormatError);
      expect((e2 as FormatError).field).toBe('model');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an unwritable output directory or a corrupt checkpoint is an error naming it, and no checkpoint is left behind  [training.checkpoint.badInput]', async () => {
    const dir = tmp();
    try {
      const file = join(dir, 'a-file');
      writeFileSync(file, 'x');
      const e = await errorOf(train({ config: config(), dataName: 'moons', openData: moons, outDir: join(file, 'out'), steps: 3 }));
      expect(e).toBeInstanceOf(FormatError);
      expect(e.message).toBe(`${join(file, 'out')}: cannot create the output directory (ENOTDIR)`);
      const out = join(dir, 'run');
      await train({ config: config(), dataName: 'moons', openData: moons, outDir: out, steps: 5 });
      const st = join(latestCheckpointDir(out)!, TRAIN_STATE_FILE);
      truncateSync(st, 100);
      const e2 = await errorOf(train({ dataName: 'moons', openData: moons, outDir: out, steps: 10, resume: true }));
      expect(e2).toBeInstanceOf(FormatError);
      expect((e2 as FormatError).file).toBe(st);
      expect(readdirSync(out).filter((f) => f.startsWith('.'))).toEqual([]);
      const e3 = await errorOf(train({ dataName: 'moons', openData: moons, outDir: join(dir, 'empty'), steps: 10, resume: true }));
      expect(e3.message).toContain('nothing to resume');
      expect(existsSync(join(dir, 'empty', 'checkpoint'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.runIf(onDefaultBackend)(
    'gradients computed on 2 worker threads give the single-thread run\'s weights to float32 rounding, and are deterministic and resumable bit for bit  [training.parallel.agreesAndResumes]',
    async () => {
      const [single, whole, split] = [tmp(), tmp(), tmp()];
      try {
        await train({ config: config(), dataName: 'moons', openData: moons, outDir: single, steps: 10 });
        await train({ config: config(), dataName: 'moons', openData: moons, outDir: whole, steps: 10, workers: 2 });
        await train({ config: config(), dataName: 'moons', openData: moons, outDir: split, steps: 5, workers: 2 });
        await train({ dataName: 'moons', openData: moons, outDir: split, steps: 10, resume: true, workers: 2 });
        expect(differing(tensorBytes(latestCheckpointDir(split)!), tensorBytes(latestCheckpointDir(whole)!))).toEqual([]);
        const a = readTrainCheckpoint(latestCheckpointDir(single)!).tensors;
        const b = readTrainCheckpoint(latestCheckpointDir(whole)!).tensors;
        // Adam divides by √v̂, so a gradient's rounding changes the update by about its relative size (~1e-7) —
        // more where a gradient is near 0 — over 10 updates of lr 1e-2.
        const tol = override({ rtol: 1e-4, atol: 1e-5 }, 'a batch mean summed as two half-batch means: float32 rounding of gradients, amplified by Adam where they are small');
        for (const [k, t] of a) expect(b.get(k)!.data).toBeCloseWithin(t.data as Float32Array, tol, { what: k });
      } finally {
        for (const d of [single, whole, split]) rmSync(d, { recursive: true, force: true });
      }
    },
  );

  it(
    'gradients accumulated over micro-batches give the one-pass run\'s weights to float32 rounding; a micro-batch ≥ the batch is the one-pass run bit for bit  [training.microbatch.agrees]',
    async () => {
      const [single, same, micro, bad] = [tmp(), tmp(), tmp(), tmp()];
      try {
        await train({ config: config(), dataName: 'moons', openData: moons, outDir: single, steps: 10 });
        await train({ config: config(), dataName: 'moons', openData: moons, outDir: same, steps: 10, microBatch: 16 });
        expect(differing(tensorBytes(latestCheckpointDir(same)!), tensorBytes(latestCheckpointDir(single)!))).toEqual([]);
        await train({ config: config(), dataName: 'moons', openData: moons, outDir: micro, steps: 10, microBatch: 5 }); // chunks of 4
        const a = readTrainCheckpoint(latestCheckpointDir(single)!).tensors;
        const b = readTrainCheckpoint(latestCheckpointDir(micro)!).tensors;
        expect(differing(tensorBytes(latestCheckpointDir(micro)!), tensorBytes(latestCheckpointDir(single)!)).length).toBeGreaterThan(0);
        const tol = override({ rtol: 1e-4, atol: 1e-5 }, 'a batch mean summed as four quarter-batch means: float32 rounding of gradients, amplified by Adam where they are small');
        for (const [k, t] of a) expect(b.get(k)!.data).toBeCloseWithin(t.data as Float32Array, tol, { what: k });
        // The logged losses (means over 5 steps of the batch means) are the chunk means weighted by n_j/B.
        const losses = (dir: string): number[] => readFileSync(join(dir, LOG_FILE), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);
        expect(losses(micro)).toBeCloseWithin(losses(single), tol, { what: 'logged loss' });
        const e = await errorOf(train({ config: config(), dataName: 'moons', openData: moons, outDir: bad, steps: 1, microBatch: 0 }));
        expect(e.message).toMatch(/microBatch must be a positive integer, got 0/);
      } finally {
        for (const d of [single, same, micro, bad]) rmSync(d, { recursive: true, force: true });
      }
    },
  );
});
