/**
 * Pieces shared by the readers: the diffusion configuration of a case, the TinyModel, timesteps.
 *
 * @module
 */
import type { ModelSpec, ScheduleArgs } from '../../conformance/ops.ts';
import { LossType, ModelMeanType, ModelVarType } from '../../conformance/vocabulary.ts';
import { FormatError } from '../../formats/errors.ts';
import type { Skip } from '../types.ts';
import { boolField, has, intsOf, numberField, stringField, tensorField, expectShape } from '../tensors.ts';
import { describeSchedule, parseScheduleName } from '../context.ts';
import type { Tensor } from '../types.ts';

export const MEAN_TYPES = ModelMeanType.options;
export const VAR_TYPES = ModelVarType.options;
export const LOSS_TYPES = LossType.options;

/** An enum field; `undefined` (with the reason) when the value is not one the vocabulary knows. */
export function enumField<T extends string>(root: unknown, path: string, file: string, allowed: readonly T[]): { value?: T; unknown?: string } {
  const v = stringField(root, path, file);
  return (allowed as readonly string[]).includes(v) ? { value: v as T } : { unknown: `${path} = ${JSON.stringify(v)} is not one of ${allowed.join(', ')}` };
}

/** The TinyModel stored under `path` (`W` [out,in], `bias` [out], `tw` [out]). */
export function tinyModelField(root: unknown, path: string, file: string): ModelSpec & { kind: 'tiny' } {
  const W = tensorField(root, `${path}.W`, file);
  expectShape(W, [null, null], file, `${path}.W`);
  const bias = tensorField(root, `${path}.bias`, file);
  expectShape(bias, [W.shape[0]], file, `${path}.bias`);
  const tw = tensorField(root, `${path}.tw`, file);
  expectShape(tw, [W.shape[0]], file, `${path}.tw`);
  return { kind: 'tiny', W, bias, tw };
}

/** Timesteps `[B]` under `path`: integers in {0, …, T−1}. */
export function timestepsField(root: unknown, path: string, file: string, T: number, B?: number): { tensor: Tensor; values: number[] } {
  const t = tensorField(root, path, file);
  expectShape(t, [B ?? null], file, path);
  const values = intsOf(t, file, path);
  values.forEach((v, i) => {
    if (v < 0 || v >= T) throw new FormatError(file, `${path}.data`, `timestep ${i} is ${v}, outside {0, …, ${T - 1}} for T = ${T}`);
  });
  return { tensor: t, values };
}

/** The schedule of a case: `args.schedule` + `args.T` (names as the README writes them). */
export function scheduleOf(root: unknown, prefix: string, file: string, nameKey = 'schedule', TKey = 'T'): { name: string; T: number } {
  return { name: stringField(root, `${prefix}.${nameKey}`, file), T: numberField(root, `${prefix}.${TKey}`, file, { integer: true, min: 1 }) };
}

/** Optional boolean with a default. */
export function optBool(root: unknown, path: string, file: string, dflt: boolean): boolean {
  const [head, ...rest] = path.split('.').reverse();
  const parentPath = rest.reverse().join('.');
  const parent = parentPath === '' ? root : (() => {
    let node: unknown = root;
    for (const p of parentPath.split('.')) node = (node as Record<string, unknown>)?.[p];
    return node;
  })();
  if (!has(parent, head)) return dflt;
  const v = (parent as Record<string, unknown>)[head];
  if (typeof v !== 'boolean') throw new FormatError(file, path, `expected true or false, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Read one record of a file. A record the reader cannot use (a {@link FormatError}: a missing or malformed field)
 * becomes an error entry naming the file, the record, the field and the problem, and the other records are still
 * read.
 */
export function guarded(skipped: Skip[], file: string, record: string, read: () => void): void {
  try {
    read();
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    skipped.push({ file, case: record, quantity: e.field, reason: e.problem, kind: 'error' });
  }
}

/** `[1,0,2]` for ids. */
export function list(v: readonly number[]): string {
  return `[${v.join(',')}]`;
}

export type { ScheduleArgs };

/**
 * The header shared by the `cases[i]` of the p_mean_variance and bpd-loop files: schedule, mean and variance types,
 * clipping, and a readable case id. `skip` holds the reason when a type is not one the vocabulary knows.
 */
export function diffusionCaseHeader(root: unknown, p: string, file: string) {
  const { name, T } = scheduleOf(root, `${p}.args`, file);
  const sched = parseScheduleName(name, T);
  const mean = enumField(root, `${p}.args.model_mean_type`, file, MEAN_TYPES);
  const vart = enumField(root, `${p}.args.model_var_type`, file, VAR_TYPES);
  const clip = boolField(root, `${p}.args.clip_denoised`, file);
  const id = `${p.replace(/^cases\.(\d+)$/, 'cases[$1]')} ${describeSchedule(sched)} ${vart.value ?? '?'}/${mean.value ?? '?'}${clip ? ' clip' : ''}`;
  const skip = !mean.value || !vart.value ? (mean.unknown ?? vart.unknown)! : undefined;
  return { name, T, sched, mean: mean.value, vart: vart.value, clip, id, skip };
}
