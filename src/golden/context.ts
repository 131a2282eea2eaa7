/**
 * Where a golden case gets the betas of a named schedule (the q/p/loss/sampling files name their schedule,
 * e.g. `cosine`, T = 20, rather than storing its betas).
 *
 * In order: (1) betas recorded by the reference code in the same folder (the `id_buffers_*` files for
 * improved's named schedules, Ho's `get_beta_schedule` outputs), so a case tests its operation and not the
 * implementation's schedule; (2) the implementation's own `schedule` operation (itself checked against the
 * golden schedules), noted in the case; (3) otherwise the case cannot run and is reported as skipped.
 * Buffers (for error budgets) likewise come from the folder's buffer files, else from the implementation's
 * `buffers` operation.
 *
 * @module
 */
import type { DiffusionOps, ScheduleArgs, Tensor } from '../conformance/ops.ts';

/** A case that cannot run with this implementation or data (reported as skipped, with the reason). */
export class CannotRun extends Error {
  override name = 'CannotRun';
}

interface Entry {
  betas: Tensor;
  buffers?: Record<string, Float64Array>;
  file: string;
}

/** Parse a schedule name as the golden files write it: `cosine`, `linear` (improved) or `linear_0.002_0.25` (Ho's, with its endpoints). */
export function parseScheduleName(name: string, T: number): ScheduleArgs {
  const m = /^([a-z0-9]+)_([0-9.eE+-]+)_([0-9.eE+-]+)$/.exec(name);
  if (m && Number.isFinite(Number(m[2])) && Number.isFinite(Number(m[3]))) {
    return { family: 'ho', name: m[1], T, beta_start: Number(m[2]), beta_end: Number(m[3]) };
  }
  return { family: 'improved', name, T };
}

function key(a: ScheduleArgs): string {
  return a.family === 'ho' ? `ho|${a.name}|${a.beta_start}|${a.beta_end}|${a.T}` : `improved|${a.name}|${a.T}|${a.max_beta ?? 0.999}`;
}

export function describeSchedule(a: ScheduleArgs): string {
  return a.family === 'ho' ? `Ho ${a.name}(${a.beta_start}, ${a.beta_end}) T=${a.T}` : `${a.name} T=${a.T}${a.max_beta !== undefined ? ` max_beta=${a.max_beta}` : ''}`;
}

/** The schedules recorded in a golden folder. */
export class ScheduleIndex {
  private readonly entries = new Map<string, Entry>();

  /** Record betas (and optionally buffers) the reference code produced for a named schedule. */
  add(a: ScheduleArgs, e: Entry): void {
    const k = key(a);
    if (!this.entries.has(k) || (e.buffers && !this.entries.get(k)!.buffers)) this.entries.set(k, e);
  }

  /** Is this schedule recorded in the folder? */
  recorded(a: ScheduleArgs): string | undefined {
    return this.entries.get(key(a))?.file;
  }

  /** The betas of a named schedule: recorded ones first, else the implementation's `schedule` operation. */
  async betas(a: ScheduleArgs, impl: DiffusionOps): Promise<Tensor> {
    const e = this.entries.get(key(a));
    if (e) return e.betas;
    if (!impl.schedule) throw new CannotRun(`the schedule ${describeSchedule(a)} is not recorded in the folder and ${impl.name} has no schedule operation`);
    return (await impl.schedule(a)).betas;
  }

  /** The float64 buffers of a named schedule: recorded ones first, else the implementation's `buffers` operation. */
  async buffers(a: ScheduleArgs, impl: DiffusionOps): Promise<Record<string, Float64Array>> {
    const e = this.entries.get(key(a));
    if (e?.buffers) return e.buffers;
    const betas = await this.betas(a, impl);
    if (!impl.buffers) throw new CannotRun(`the buffers of ${describeSchedule(a)} are needed for an error budget, but they are not recorded and ${impl.name} has no buffers operation`);
    const b = await impl.buffers({ betas });
    return Object.fromEntries(Object.entries(b).map(([k, v]) => [k, v.data]));
  }
}
