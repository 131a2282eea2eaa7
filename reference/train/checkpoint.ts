/**
 * Training checkpoints: everything needed to continue a run bit for bit, written so that a crash or a kill
 * at any moment leaves the previous checkpoint loadable.
 *
 * Layout of an output directory:
 *
 * - `ckpt-00001000/` one directory per checkpoint (step zero-padded to 8 digits), holding
 *   - `train-state.safetensors`: the weights (`param/<name>`), their EMA (`ema/<name>`), Adam's moments
 *     (`adam_m/<name>`, `adam_v/<name>`) in float32, and in `__metadata__.train_state` the step, the state of
 *     every random stream (`Rng.getState()`), the data position, the configuration and the backend;
 *   - for the UNet with fixed variances, also the sampling checkpoint of `reference/unet` (`config.json`,
 *     `model.safetensors`, `ema.safetensors`, PyTorch names and layouts), so `ddpm-spec sample` reads it;
 * - `checkpoint`: a symbolic link to the newest complete checkpoint directory;
 * - `log.jsonl`: one line per log interval (see `loop.ts`).
 *
 * Write protocol: everything goes into a hidden temporary directory `.ckpt-<step>.tmp-<pid>`, each file
 * written to a temporary name, flushed and renamed; the directory is flushed and renamed to `ckpt-<step>`;
 * then the `checkpoint` link is replaced atomically (a new link renamed over it); then old checkpoints beyond
 * `keep` are removed. A failure removes the temporary directory; a kill leaves it behind, and the next run in
 * that directory removes it ({@link removeStaleTemporaries}). Readers only ever follow `checkpoint`, which
 * points to a complete directory at every instant.
 *
 * @module
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { FormatError } from '../../src/formats/errors.ts';
import { firstNonFinite, readSafetensors, writeSafetensors, type StTensor, type StTensorIn } from '../../src/formats/safetensors.ts';
import { refuseUnusableOutput } from '../../src/io/paths.ts';
import { RngState } from '../../src/numeric/rng.ts';
import { saveCheckpoint as saveUnetCheckpoint } from '../unet/checkpoint.ts';
import { TrainConfig } from './config.ts';
import { BatchSourceState } from './data.ts';
import type { TrainableModel } from './model.ts';
import { emaWeights, optimBufferByName, setOptimBuffer, type OptimBuffer, type OptimState } from './optim.ts';

export const TRAIN_STATE_FILE = 'train-state.safetensors';
export const LATEST_LINK = 'checkpoint';
export const TRAIN_STATE_KEY = 'train_state';

/** The optimiser's flat buffers and the tensor-name prefix each is stored under, one tensor per parameter. */
const OPTIM_PREFIXES: ReadonlyArray<readonly [string, OptimBuffer]> = [
  ['ema', 'ema'],
  ['adam_m', 'm'],
  ['adam_v', 'v'],
];

/** Sums over the steps of a log interval not yet written (see `loop.ts`). */
export const LogAccumulator = z
  .object({
    /** Σ loss over the `n` steps. */
    loss: z.number(),
    /** Σ gradient norm over the `n` steps. */
    grad_norm: z.number(),
    n: z.number().int().nonnegative(),
    /** Learning rate of the last of those steps. */
    lr: z.number(),
    /** Wall-clock seconds those steps took. */
    seconds: z.number().nonnegative(),
  })
  .strict();
export type LogAccumulator = z.infer<typeof LogAccumulator>;

/** Points inside a checkpoint write where a test can stop the run as a crash would (`TrainOptions.fault`). */
export type CheckpointFaultPoint = 'checkpoint:state-written' | 'checkpoint:renamed' | 'checkpoint:linked';

/** The JSON half of a training checkpoint. */
export const TrainState = z
  .object({
    format: z.literal('ddpm-spec-train-state'),
    version: z.literal(1),
    /** Optimiser updates done. */
    step: z.number().int().nonnegative(),
    /** The data set name (as given to `ddpm-spec train --data`). */
    data: z.string(),
    config: TrainConfig,
    /** The stream of timesteps, noise and dropout seeds. */
    rng: RngState,
    /** The data order. */
    batches: BatchSourceState,
    /** Wall-clock seconds of training so far (all sessions). */
    elapsed_s: z.number().nonnegative(),
    /** tfjs backend of the session that wrote it (results are bit-identical only on the same backend). */
    backend: z.string(),
    /** Gradient worker threads of the session that wrote it (a resumed run uses them unless told otherwise; absent in older checkpoints). */
    workers: z.number().int().positive().optional(),
    /** Its micro-batch (null: the whole batch or shard in one pass; absent in older checkpoints). */
    micro_batch: z.number().int().positive().nullable().optional(),
    /** Parameter names in the model's order. */
    names: z.array(z.string()),
    /**
     * The log interval in progress: sums over the steps since the last log record, so that a resumed run writes
     * the same records as an uninterrupted one (absent in checkpoints of older versions: the interval restarts).
     */
    log: LogAccumulator.optional(),
  })
  .strict();
export type TrainState = z.infer<typeof TrainState>;

/** A checkpoint read back: its JSON state, tensors by name, and where it came from. */
export interface LoadedCheckpoint {
  dir: string;
  file: string;
  state: TrainState;
  tensors: Map<string, StTensor>;
}

export function checkpointName(step: number): string {
  return `ckpt-${String(step).padStart(8, '0')}`;
}

const CKPT_RE = /^ckpt-(\d{8,})$/;
const TMP_RE = /^\.(ckpt-\d{8,}\.tmp-|checkpoint\.tmp-|trash-)/;

/** Flush a directory's entries to disk (so a rename inside it survives a power cut). */
function fsyncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // some file systems refuse fsync on directories; the rename is still atomic
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/**
 * Make sure `outDir` exists and is writable, with an error naming it when not (before any training work).
 */
export function prepareOutDir(outDir: string): void {
  refuseUnusableOutput('the output directory', outDir);
  try {
    mkdirSync(outDir, { recursive: true });
  } catch (e) {
    throw new FormatError(outDir, '', `cannot create the output directory (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const probe = join(outDir, `.write-probe-${process.pid}`);
  try {
    writeFileSync(probe, '');
    rmSync(probe, { force: true });
  } catch (e) {
    throw new FormatError(outDir, '', `the output directory is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** Remove temporary checkpoint directories and links left by a killed run. Returns what was removed. */
export function removeStaleTemporaries(outDir: string): string[] {
  if (!existsSync(outDir)) return [];
  const removed: string[] = [];
  for (const e of readdirSync(outDir)) {
    if (TMP_RE.test(e)) {
      rmSync(join(outDir, e), { recursive: true, force: true });
      removed.push(e);
    }
  }
  return removed;
}

/** Checkpoint directories in `outDir`, oldest first. */
export function listCheckpoints(outDir: string): Array<{ step: number; dir: string }> {
  if (!existsSync(outDir)) return [];
  return readdirSync(outDir)
    .map((e) => ({ e, m: CKPT_RE.exec(e) }))
    .filter((x) => x.m !== null && statSync(join(outDir, x.e)).isDirectory())
    .map((x) => ({ step: Number(x.m![1]), dir: join(outDir, x.e) }))
    .sort((a, b) => a.step - b.step);
}

/**
 * The checkpoint directory a run in `outDir` resumes from: the target of the `checkpoint` link, or (if the link
 * is missing) the newest `ckpt-*` directory; null when there is none. A checkpoint directory itself is accepted
 * too.
 */
export function latestCheckpointDir(outDir: string): string | null {
  if (existsSync(join(outDir, TRAIN_STATE_FILE))) return outDir;
  const link = join(outDir, LATEST_LINK);
  try {
    const target = readlinkSync(link);
    const dir = join(outDir, target);
    if (existsSync(join(dir, TRAIN_STATE_FILE))) return dir;
  } catch {
    // no link: fall back to the newest directory
  }
  const all = listCheckpoints(outDir);
  return all.length > 0 ? all[all.length - 1].dir : null;
}

/** What {@link saveTrainCheckpoint} needs. */
export interface CheckpointInput {
  state: Omit<TrainState, 'format' | 'version' | 'names'>;
  model: TrainableModel;
  optim: OptimState;
  /** Keep this many most recent checkpoints (the new one included). */
  keep: number;
  /** Fault injection for tests (see `TrainOptions.fault`). */
  fault?: (point: CheckpointFaultPoint) => void;
}

async function f32(t: tf.Tensor): Promise<StTensorIn> {
  return { dtype: 'F32', shape: t.shape, data: (await t.data()) as Float32Array };
}

/**
 * Write a checkpoint for `input.state.step` into `outDir` (protocol in the module documentation).
 * Returns the checkpoint directory.
 */
export async function saveTrainCheckpoint(outDir: string, input: CheckpointInput): Promise<string> {
  const { state, model, optim } = input;
  const name = checkpointName(state.step);
  const final = join(outDir, name);
  const tmp = join(outDir, `.${name}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    const full: TrainState = TrainState.parse({ format: 'ddpm-spec-train-state', version: 1, ...state, names: [...model.names] });
    const entries: Array<[string, StTensorIn]> = [];
    for (const n of model.names) entries.push([`param/${n}`, await f32(model.variables.get(n)!)]);
    for (const [prefix, which] of OPTIM_PREFIXES) {
      for (const [n, t] of await optimBufferByName(optim, which)) entries.push([`${prefix}/${n}`, { dtype: 'F32', shape: t.shape, data: t.data }]);
    }
    writeSafetensors(join(tmp, TRAIN_STATE_FILE), entries, { [TRAIN_STATE_KEY]: JSON.stringify(full) });
    input.fault?.('checkpoint:state-written');
    const cfg = full.config;
    if (cfg.model.kind === 'unet' && cfg.diffusion.model_var_type !== 'learned_range') {
      const record = (m: ReadonlyMap<string, tf.Tensor>): Record<string, tf.Tensor> => Object.fromEntries(model.names.map((n) => [n, m.get(n)!]));
      const ema = emaWeights(optim);
      try {
        await saveUnetCheckpoint(tmp, {
          unet: cfg.model.unet,
          diffusion: {
            beta_schedule: cfg.diffusion.beta_schedule,
            beta_start: cfg.diffusion.beta_start,
            beta_end: cfg.diffusion.beta_end,
            num_diffusion_timesteps: cfg.diffusion.num_diffusion_timesteps,
            model_var_type: cfg.diffusion.model_var_type,
          },
          params: record(model.variables),
          ema: record(ema),
          extra: { training: { step: full.step, data: full.data, elapsed_s: full.elapsed_s, backend: full.backend, train_state: TRAIN_STATE_FILE } },
        });
      } finally {
        tf.dispose([...ema.values()]);
      }
    }
    fsyncDir(tmp);
    if (existsSync(final)) {
      // A checkpoint of this step exists (a run killed before it moved the link): replace it.
      const trash = join(outDir, `.trash-${name}-${process.pid}`);
      renameSync(final, trash);
      renameSync(tmp, final);
      rmSync(trash, { recursive: true, force: true });
    } else {
      renameSync(tmp, final);
    }
    input.fault?.('checkpoint:renamed');
    const linkTmp = join(outDir, `.checkpoint.tmp-${process.pid}`);
    rmSync(linkTmp, { force: true });
    symlinkSync(name, linkTmp);
    renameSync(linkTmp, join(outDir, LATEST_LINK));
    fsyncDir(outDir);
    input.fault?.('checkpoint:linked');
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const all = listCheckpoints(outDir);
  for (const c of all.slice(0, Math.max(0, all.length - input.keep))) if (c.dir !== final) rmSync(c.dir, { recursive: true, force: true });
  return final;
}

/** Read a checkpoint directory's training state; errors name the file and the field. */
export function readTrainCheckpoint(dir: string): LoadedCheckpoint {
  const file = join(dir, TRAIN_STATE_FILE);
  if (!existsSync(file)) throw new FormatError(file, '', 'no training state here (is this a checkpoint directory written by `ddpm-spec train`?)');
  const st = readSafetensors(file);
  const raw = st.metadata[TRAIN_STATE_KEY];
  if (raw === undefined) throw new FormatError(file, `__metadata__.${TRAIN_STATE_KEY}`, 'missing');
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    throw new FormatError(file, `__metadata__.${TRAIN_STATE_KEY}`, `not JSON (${(e as Error).message})`);
  }
  const r = TrainState.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new FormatError(file, `__metadata__.${TRAIN_STATE_KEY}.${i.path.join('.')}`, i.message);
  }
  const named = CKPT_RE.exec(basename(resolve(dir)));
  if (named !== null && Number(named[1]) !== r.data.step) {
    throw new FormatError(file, `__metadata__.${TRAIN_STATE_KEY}.step`, `is ${r.data.step}, but the directory is named for step ${Number(named[1])} (a copied or altered checkpoint?)`);
  }
  return { dir, file, state: r.data, tensors: st.tensors };
}

/**
 * Check that a checkpoint's tensors fit a model (names and shapes of weights, EMA and both moments), listing
 * every problem at once, and that every value is finite (Adam's second moment also non-negative). Throws
 * {@link FormatError} naming the file and the first tensor (and, for a bad value, its first bad index).
 */
export function checkCheckpointFits(ck: LoadedCheckpoint, model: TrainableModel): void {
  const problems: string[] = [];
  const expected = new Set<string>();
  for (const prefix of ['param', 'ema', 'adam_m', 'adam_v']) {
    for (const n of model.names) {
      const key = `${prefix}/${n}`;
      expected.add(key);
      const want = model.variables.get(n)!.shape;
      const t = ck.tensors.get(key);
      if (t === undefined) problems.push(`${key}: missing (the model has shape [${want.join(',')}])`);
      else if (t.dtype !== 'F32') problems.push(`${key}: dtype ${t.dtype}, expected F32`);
      else if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
        problems.push(`${key}: shape [${t.shape.join(',')}] in the checkpoint, the model expects [${want.join(',')}]`);
      } else {
        const bad = firstNonFinite(t.data as Float32Array);
        if (bad >= 0) throw new FormatError(ck.file, key, `element ${bad} (flat, row-major) is ${t.data[bad]}; a checkpoint must hold finite numbers only (it cannot be resumed or evaluated)`);
        if (prefix === 'adam_v') {
          const neg = (t.data as Float32Array).findIndex((x) => x < 0);
          if (neg >= 0) throw new FormatError(ck.file, key, `element ${neg} (flat, row-major) is ${t.data[neg]}; Adam's second moment cannot be negative`);
        }
      }
    }
  }
  for (const k of ck.tensors.keys()) if (!expected.has(k)) problems.push(`${k}: not a parameter of this model`);
  if (problems.length > 0) {
    const shown = problems.slice(0, 8).join('; ');
    const more = problems.length > 8 ? `; and ${problems.length - 8} more` : '';
    const first = problems[0].split(':')[0];
    throw new FormatError(ck.file, first, `this checkpoint belongs to another model (${problems.length} tensor${problems.length > 1 ? 's' : ''} do not fit): ${shown}${more}`);
  }
}

/** Copy a checkpoint's tensors into the model's variables and the optimiser state (after {@link checkCheckpointFits}). */
export function restoreTensors(ck: LoadedCheckpoint, model: TrainableModel, optim: OptimState): void {
  const data = (key: string): Float32Array => ck.tensors.get(key)!.data as Float32Array;
  for (const n of model.names) {
    const v = model.variables.get(n)!;
    tf.tidy(() => v.assign(tf.tensor(data(`param/${n}`), v.shape, 'float32')));
  }
  for (const [prefix, which] of OPTIM_PREFIXES) setOptimBuffer(optim, which, (n) => data(`${prefix}/${n}`));
  optim.updates = ck.state.step;
}
