/**
 * Readers for the schedule and buffer files: `id_buffers_<name>_T<T>.json` (improved's named schedules and
 * `GaussianDiffusion` buffers) and `ho_beta_schedules_and_buffers.json` (Ho's `get_beta_schedule`,
 * `GaussianDiffusion2` and v1 buffers, improved's `betas_for_alpha_bar` variants and small-T linear schedules).
 *
 * @module
 */
import { BUFFER_NAMES, type BufferName, type ScheduleArgs } from '../../conformance/ops.ts';
import { FormatError } from '../../formats/errors.ts';
import { looksLikeTensor } from '../../formats/jsonTensor.ts';
import { describeSchedule, type ScheduleIndex } from '../context.ts';
import { has, numberField, objectField, q, stringField, tensorField, tensor } from '../tensors.ts';
import { bufferAtol, GOLDEN_TOL } from '../tolerances.ts';
import type { Check, GoldenCase, GoldenCases, Skip, Tensor } from '../types.ts';

const isBufferName = (k: string): k is BufferName => (BUFFER_NAMES as readonly string[]).includes(k);

/** Quantities of the buffer files that are not outputs of the `buffers` operation, and what covers them instead. */
const INLINE_ARRAYS: Record<string, string> = {
  fixedlarge_variance: 'an inline array of p_mean_variance (FIXED_LARGE), not an output of the buffers operation; replayed through id_p_mean_variance.json',
  fixedlarge_log_variance: 'an inline array of p_mean_variance (FIXED_LARGE), not an output of the buffers operation; replayed through id_p_mean_variance.json',
  log_betas: 'an inline array of p_mean_variance (LEARNED_RANGE), not an output of the buffers operation; replayed through id_p_mean_variance.json',
};

/** Cases comparing `buffers({betas})` with recorded float64 (or float32) buffers. */
function bufferCases(
  file: string,
  id: string,
  betas: Tensor,
  root: unknown,
  path: string,
  opts: { float32?: boolean; maskLogT0?: string } = {},
): GoldenCases {
  const recorded = objectField(root, path, file);
  const checks: Check[] = [];
  const skipped: Skip[] = [];
  for (const [name, v] of Object.entries(recorded)) {
    if (!looksLikeTensor(v)) {
      skipped.push({ file, case: id, quantity: name, reason: 'not a tensor; no reader for it' });
      continue;
    }
    const expected = tensorField(root, `${path}.${q(name)}`, file);
    if (expected.shape.length !== 1 || expected.shape[0] !== betas.data.length) {
      throw new FormatError(file, `${path}.${q(name)}.shape`, `a buffer must have shape [T] = [${betas.data.length}], got [${expected.shape.join(',')}]`);
    }
    if (name === 'alphas_cumprod_as_float32') {
      checks.push({ quantity: 'alphas_cumprod_as_float32', expected, tol: GOLDEN_TOL.buffers32, fround: true });
      continue;
    }
    if (!isBufferName(name)) {
      skipped.push(INLINE_ARRAYS[name] ? { file, case: id, quantity: name, reason: INLINE_ARRAYS[name], kind: 'not applicable' } : { file, case: id, quantity: name, reason: 'not an output of the buffers operation; no reader for it' });
      continue;
    }
    const check: Check = { quantity: name, expected, tol: opts.float32 ? GOLDEN_TOL.buffers32 : GOLDEN_TOL.buffers64, fround: opts.float32 };
    const ab = recorded.alphas_cumprod;
    if (!opts.float32 && looksLikeTensor(ab)) {
      // A bound per element from the conditioning of each buffer's formula (docs/numerics.md, "Cumulative products").
      const alphas_cumprod = tensorField(root, `${path}.alphas_cumprod`, file).data;
      check.tol = GOLDEN_TOL.buffersDerived;
      check.elementAtol = async (impl) => bufferAtol(name, { betas: betas.data, alphas_cumprod }, impl);
    }
    if (opts.maskLogT0 && name === 'posterior_log_variance_clipped') {
      const keep = new Uint8Array(expected.data.length).fill(1);
      keep[0] = 0;
      check.mask = { keep, reason: opts.maskLogT0 };
    }
    checks.push(check);
  }
  const cases: GoldenCase[] = [];
  if (checks.length > 0) {
    cases.push({
      file,
      id,
      op: 'buffers',
      checks,
      run: async (impl) => {
        const out: Record<string, Tensor> = { ...(await impl.buffers!({ betas })) };
        // The float32 the reference multiplies with is the float64 buffer rounded once.
        if (out.alphas_cumprod) out.alphas_cumprod_as_float32 = out.alphas_cumprod;
        return out;
      },
    });
  }
  return { cases, skipped };
}

function scheduleCase(file: string, id: string, a: ScheduleArgs, expected: Tensor): GoldenCase {
  return {
    file,
    id,
    op: 'schedule',
    checks: [{ quantity: 'betas', expected, tol: GOLDEN_TOL.buffers64 }],
    run: async (impl) => ({ betas: (await impl.schedule!(a)).betas }),
  };
}

/** `id_buffers_<name>_T<T>.json`: improved's named schedule and `GaussianDiffusion` buffers. */
export function readIdBuffers(file: string, root: unknown, index: ScheduleIndex): GoldenCases {
  const name = stringField(root, 'meta.args.schedule_name', file);
  const T = numberField(root, 'meta.args.num_diffusion_timesteps', file, { integer: true, min: 1 });
  const outputs = objectField(root, 'outputs', file);
  const betas = tensorField(root, 'outputs.betas', file);
  if (betas.shape.length !== 1 || betas.shape[0] !== T) throw new FormatError(file, 'outputs.betas.shape', `expected [${T}] (num_diffusion_timesteps), got [${betas.shape.join(',')}]`);
  const a: ScheduleArgs = { family: 'improved', name, T };
  const bufs: Record<string, Float64Array> = {};
  for (const k of Object.keys(outputs)) if (looksLikeTensor(outputs[k])) bufs[k] = tensorField(root, `outputs.${q(k)}`, file).data;
  index.add(a, { betas, buffers: bufs, file });
  const id = describeSchedule(a);
  const b = bufferCases(file, `${id}: buffers`, betas, root, 'outputs');
  return { cases: [scheduleCase(file, `${id}: schedule`, a, betas), ...b.cases], skipped: b.skipped };
}

/** Register the Ho schedules of `ho_beta_schedules_and_buffers.json` in the index (before other files are read). */
export function indexHoSchedules(file: string, root: unknown, index: ScheduleIndex): void {
  const start = numberField(root, 'meta.args.beta_start', file);
  const end = numberField(root, 'meta.args.beta_end', file);
  const gbs = objectField(root, 'outputs.get_beta_schedule', file);
  for (const k of Object.keys(gbs)) {
    const m = /^([a-z0-9]+)_T(\d+)$/.exec(k);
    if (!m) continue;
    const betas = tensorField(root, `outputs.get_beta_schedule.${q(k)}`, file);
    index.add({ family: 'ho', name: m[1], T: Number(m[2]), beta_start: start, beta_end: end }, { betas, file });
  }
}

/** `ho_beta_schedules_and_buffers.json`. */
export function readHoSchedules(file: string, root: unknown): GoldenCases {
  const start = numberField(root, 'meta.args.beta_start', file);
  const end = numberField(root, 'meta.args.beta_end', file);
  const outputs = objectField(root, 'outputs', file);
  const cases: GoldenCase[] = [];
  const skipped: Skip[] = [];
  const gbs = has(outputs, 'get_beta_schedule') ? objectField(root, 'outputs.get_beta_schedule', file) : {};
  for (const k of Object.keys(gbs)) {
    const m = /^([a-z0-9]+)_T(\d+)$/.exec(k);
    if (!m) {
      skipped.push({ file, case: `get_beta_schedule.${k}`, reason: 'key is not <name>_T<T>; no reader for it' });
      continue;
    }
    const a: ScheduleArgs = { family: 'ho', name: m[1], T: Number(m[2]), beta_start: start, beta_end: end };
    const expected = tensorField(root, `outputs.get_beta_schedule.${q(k)}`, file);
    cases.push(scheduleCase(file, `get_beta_schedule ${describeSchedule(a)}`, a, expected));
  }
  for (const [group, opts] of [
    ['GaussianDiffusion2', {}],
    [
      'GaussianDiffusion_v1_float32',
      {
        float32: true,
        maskLogT0: "Ho's v1 uses log(max(posterior_variance, 1e−20)) = −46.05 at t = 0 where v2 and improved substitute posterior_variance[1]; the buffers operation is v2's, so t = 0 is excluded",
      },
    ],
  ] as const) {
    if (!has(outputs, group)) continue;
    const g = objectField(root, `outputs.${group}`, file);
    for (const k of Object.keys(g)) {
      const path = `outputs.${group}.${q(k)}`;
      const rec = objectField(root, path, file);
      // The float64 betas the buffers were computed from: the group's own, else get_beta_schedule's (v1 stores float32).
      let betas: Tensor | undefined;
      if (group === 'GaussianDiffusion2' && has(rec, 'betas')) betas = tensorField(root, `${path}.betas`, file);
      else if (has(gbs, k)) betas = tensorField(root, `outputs.get_beta_schedule.${q(k)}`, file);
      if (betas === undefined) {
        skipped.push({ file, case: `${group}.${k}`, reason: 'no float64 betas recorded for this schedule (neither in the group nor in get_beta_schedule)' });
        continue;
      }
      const r = bufferCases(file, `${group} ${k}: buffers`, betas, root, path, opts);
      cases.push(...r.cases);
      skipped.push(...r.skipped);
    }
  }
  if (has(outputs, 'extra') || has(root, 'extra')) {
    const ep = has(root, 'extra') ? 'extra' : 'outputs.extra';
    const extra = objectField(root, ep, file);
    for (const k of Object.keys(extra)) {
      const cm = /^improved_betas_for_alpha_bar_cosine_T(\d+)_(?:default_)?max_beta_([0-9.]+)$/.exec(k);
      if (cm) {
        const a: ScheduleArgs = { family: 'improved', name: 'cosine', T: Number(cm[1]), max_beta: Number(cm[2]) };
        cases.push(scheduleCase(file, `extra ${describeSchedule(a)}`, a, tensorField(root, `${ep}.${q(k)}`, file)));
        continue;
      }
      if (k === 'improved_get_named_beta_schedule_linear_small_T') {
        const rec = objectField(root, `${ep}.${q(k)}`, file);
        for (const Ts of Object.keys(rec)) {
          const T = Number(Ts);
          const p = `${ep}.${q(k)}.${q(Ts)}`;
          if (!Number.isSafeInteger(T) || T < 1) throw new FormatError(file, p, 'expected an integer T as key');
          const first = numberField(root, `${p}.betas_first`, file);
          const last = numberField(root, `${p}.betas_last`, file);
          const verdict = stringField(root, `${p}.GaussianDiffusion`, file);
          const a: ScheduleArgs = { family: 'improved', name: 'linear', T };
          cases.push({
            file,
            id: `extra linear T=${T}: first and last beta`,
            op: 'schedule',
            checks: [{ quantity: 'betas[0], betas[T−1]', expected: tensor([2], [first, last]), tol: GOLDEN_TOL.buffers64 }],
            run: async (impl) => {
              const b = (await impl.schedule!(a)).betas.data;
              return { 'betas[0], betas[T−1]': tensor([2], [b[0], b[b.length - 1]]) };
            },
          });
          const refused = verdict.startsWith('AssertionError');
          if (!refused && verdict !== 'constructed') {
            skipped.push({ file, case: `extra linear T=${T}: buffers`, reason: `unknown outcome ${JSON.stringify(verdict)}; expected "constructed" or an AssertionError` });
            continue;
          }
          cases.push({
            file,
            id: `extra linear T=${T}: buffers ${refused ? 'refused (a beta > 1)' : 'accepted'}`,
            op: 'buffers',
            checks: [],
            expectError: refused ? verdict : undefined,
            run: async (impl) => {
              const betas = (await impl.schedule!(a)).betas;
              await impl.buffers!({ betas });
              return {};
            },
          });
        }
        continue;
      }
      skipped.push({ file, case: `extra.${k}`, reason: 'no reader for this record' });
    }
  }
  for (const k of Object.keys(outputs)) {
    if (!['get_beta_schedule', 'GaussianDiffusion2', 'GaussianDiffusion_v1_float32', 'extra'].includes(k)) {
      skipped.push({ file, case: `outputs.${k}`, reason: 'no reader for this group' });
    }
  }
  return { cases, skipped };
}
