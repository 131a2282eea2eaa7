/**
 * Reader for `sampling_tiny_model.json`: ancestral, DDIM and reverse-DDIM loops with the TinyModel,
 * `space_timesteps`, and respaced diffusions.
 *
 * Loops are replayed step by step, each step fed the reference's own previous state (as the README advises:
 * whole trajectories drift), and all steps of a run are evaluated as one batch: step i has input x_T (i = 0)
 * or `trajectory[i−1]`, timestep t_i (T−1−i for sampling, i for the reverse encoder) and noise `noise[i]`.
 *
 * @module
 */
import type { DiffusionOps, ModelSpec, OpName } from '../../conformance/ops.ts';
import { FormatError } from '../../formats/errors.ts';
import { describeSchedule, parseScheduleName, type ScheduleIndex } from '../context.ts';
import { boolField, concat0, expectShape, has, index0, intListField, merge01, numberField, objectField, q, scale, stringField, tensor, tensorField } from '../tensors.ts';
import { GOLDEN_TOL } from '../tolerances.ts';
import type { Check, GoldenCase, GoldenCases, DiffusionArgs, Skip, Tensor } from '../types.ts';
import { MEAN_TYPES, VAR_TYPES, enumField, guarded, scheduleOf, tinyModelField } from './common.ts';

interface StepRun {
  file: string;
  id: string;
  op: Extract<OpName, 'p_sample_step' | 'ddim_step' | 'ddim_reverse_step'>;
  args: (impl: DiffusionOps) => Promise<DiffusionArgs & { clip_denoised: boolean; eta?: number }>;
  model: ModelSpec;
  start: Tensor;
  trajectory: Tensor;
  predXstart?: Tensor;
  noise?: Tensor;
  ts: number[];
  note?: string;
}

/** One case replaying every step of a loop as one batch. */
function stepCase(r: StepRun): GoldenCase {
  const T = r.ts.length;
  const B = r.start.shape[0];
  const steps = Array.from({ length: T }, (_, i) => (i === 0 ? r.start : index0(r.trajectory, i - 1, r.file, 'trajectory')));
  const X = concat0(steps);
  const t = tensor([T * B], r.ts.flatMap((s) => new Array<number>(B).fill(s)));
  const noise = r.noise ? merge01(r.noise) : tensor(X.shape, new Float64Array(X.data.length));
  const inner = r.start.data.length / B;
  const locate = (i: number) => {
    const s = Math.floor(i / (B * inner));
    return `step ${s} (t = ${r.ts[s]}), example ${Math.floor(i / inner) % B}, element ${i % inner}`;
  };
  const checks: Check[] = [{ quantity: 'sample', expected: merge01(r.trajectory), tol: GOLDEN_TOL.samplingStep, locate }];
  if (r.predXstart) checks.push({ quantity: 'pred_xstart', expected: merge01(r.predXstart), tol: GOLDEN_TOL.samplingStep, locate });
  return {
    file: r.file,
    id: r.id,
    op: r.op,
    checks,
    note: r.note,
    run: async (impl) => {
      const a = await r.args(impl);
      if (r.op === 'p_sample_step') return { ...(await impl.p_sample_step!(a, r.model, X, t, noise)) };
      if (r.op === 'ddim_step') return { ...(await impl.ddim_step!({ ...a, eta: a.eta ?? 0 }, r.model, X, t, noise)) };
      return { ...(await impl.ddim_reverse_step!(a, r.model, X, t)) };
    },
  };
}

/** Parse a `space_timesteps` key `"<n>|<spec>"`: spec is `ddimN`, a comma list, or a JSON list `[5, 10]`. */
function parseSpaceKey(key: string): { n: number; spec: string | number[] } | undefined {
  const bar = key.indexOf('|');
  if (bar < 0) return undefined;
  const n = Number(key.slice(0, bar));
  const raw = key.slice(bar + 1);
  if (!Number.isSafeInteger(n) || n < 1) return undefined;
  if (raw.startsWith('[')) {
    try {
      const v = JSON.parse(raw) as unknown;
      if (Array.isArray(v) && v.every((x) => Number.isSafeInteger(x))) return { n, spec: v as number[] };
    } catch {
      return undefined;
    }
    return undefined;
  }
  return { n, spec: raw };
}

/** `sampling_tiny_model.json`. */
export function readSamplingTiny(file: string, root: unknown, index: ScheduleIndex): GoldenCases {
  const cases: GoldenCase[] = [];
  const skipped: Skip[] = [];
  const top = objectField(root, '', file);
  const xT = has(top, 'x_T') ? tensorField(root, 'x_T', file) : undefined;
  for (const key of Object.keys(top)) {
    if (key === 'meta' || key === 'env' || key === 'x_T') continue;
    guarded(skipped, file, key, () => readRecord(key));
  }
  return { cases, skipped };

  function readRecord(key: string): void {
    if (key === 'runs') {
      if (!xT) throw new FormatError(file, 'x_T', 'missing: the runs start from it');
      const B = xT.shape[0];
      const runs = objectField(root, '', file).runs as unknown[];
      if (!Array.isArray(runs)) throw new FormatError(file, 'runs', 'expected a list');
      runs.forEach((_, ri) => guarded(skipped, file, `runs[${ri}]`, () => {
        const p = `runs.${ri}`;
        const loop = stringField(root, `${p}.loop`, file);
        const { name, T } = scheduleOf(root, p, file);
        const sched = parseScheduleName(name, T);
        const model = tinyModelField(root, `${p}.model`, file);
        const traj = tensorField(root, `${p}.trajectory`, file);
        expectShape(traj, [T, ...xT.shape], file, `${p}.trajectory`);
        const rec = objectField(root, p, file);
        const pred = has(rec, 'pred_xstart') ? tensorField(root, `${p}.pred_xstart`, file) : undefined;
        if (pred) expectShape(pred, [T, ...xT.shape], file, `${p}.pred_xstart`);
        const noise = has(rec, 'noise') ? tensorField(root, `${p}.noise`, file) : undefined;
        if (noise) expectShape(noise, [T, ...xT.shape], file, `${p}.noise`);
        const desc = describeSchedule(sched);
        const mean = has(rec, 'model_mean_type') ? enumField(root, `${p}.model_mean_type`, file, MEAN_TYPES) : { value: undefined, unknown: undefined };
        const vart = has(rec, 'model_var_type') ? enumField(root, `${p}.model_var_type`, file, VAR_TYPES) : { value: undefined, unknown: undefined };
        if (mean.unknown || vart.unknown) {
          skipped.push({ file, case: `runs[${ri}] ${loop}`, reason: (mean.unknown ?? vart.unknown)! });
          return;
        }
        const clip = has(rec, 'clip_denoised') ? boolField(root, `${p}.clip_denoised`, file) : undefined;
        const forward = Array.from({ length: T }, (_, i) => T - 1 - i);
        if (loop === 'p_sample_loop_progressive') {
          if (!noise || mean.value === undefined || vart.value === undefined || clip === undefined) {
            throw new FormatError(file, p, 'an ancestral run needs noise, model_mean_type, model_var_type and clip_denoised');
          }
          const a = { model_mean_type: mean.value, model_var_type: vart.value, clip_denoised: clip };
          cases.push(
            stepCase({
              file,
              id: `runs[${ri}] ancestral ${desc} ${vart.value}/${mean.value}${clip ? ' clip' : ''}`,
              op: 'p_sample_step',
              args: async (impl) => ({ betas: await index.betas(sched, impl), ...a }),
              model,
              start: xT,
              trajectory: traj,
              predXstart: pred,
              noise,
              ts: forward,
            }),
          );
        } else if (loop === 'ddim_sample_loop_progressive') {
          const eta = numberField(root, `${p}.eta`, file, { min: 0 });
          if (mean.value === undefined || vart.value === undefined || clip === undefined) {
            throw new FormatError(file, p, 'a DDIM run needs model_mean_type, model_var_type and clip_denoised');
          }
          if (eta !== 0 && !noise) {
            skipped.push({ file, case: `runs[${ri}] DDIM η=${eta}`, reason: 'η ≠ 0 but no noise is recorded' });
            return;
          }
          const a = { model_mean_type: mean.value, model_var_type: vart.value, clip_denoised: clip, eta };
          cases.push(
            stepCase({
              file,
              id: `runs[${ri}] DDIM η=${eta} ${desc} ${vart.value}/${mean.value}${clip ? ' clip' : ''}`,
              op: 'ddim_step',
              args: async (impl) => ({ betas: await index.betas(sched, impl), ...a }),
              model,
              start: xT,
              trajectory: traj,
              predXstart: pred,
              noise,
              ts: forward,
              note: noise ? undefined : 'no noise recorded: η = 0 multiplies it by σ = 0, zeros are passed',
            }),
          );
        } else {
          const m = /^ddim_reverse_sample chained t=0\.\.T-1 from ([0-9.]+)\*x_T$/.exec(loop);
          if (!m) {
            skipped.push({ file, case: `runs[${ri}] ${loop}`, reason: 'no reader for this loop' });
            return;
          }
          // Not recorded for this run: improved's defaults (ddim_reverse_sample has clip_denoised=False; EPSILON).
          const assumed: string[] = [];
          const meanType = mean.value ?? (assumed.push('model_mean_type EPSILON'), 'EPSILON');
          const varType = vart.value ?? (assumed.push('model_var_type FIXED_LARGE (its variance is unused)'), 'FIXED_LARGE');
          const clipDenoised = clip ?? (assumed.push('clip_denoised true'), true);
          cases.push(
            stepCase({
              file,
              id: `runs[${ri}] reverse DDIM ${desc} from ${m[1]}·x_T`,
              op: 'ddim_reverse_step',
              args: async (impl) => ({ betas: await index.betas(sched, impl), model_mean_type: meanType, model_var_type: varType, clip_denoised: clipDenoised }),
              model,
              start: scale(xT, Number(m[1]), true),
              trajectory: traj,
              predXstart: pred,
              ts: Array.from({ length: T }, (_, i) => i),
              note: assumed.length > 0 ? `not recorded, assumed: ${assumed.join(', ')}` : undefined,
            }),
          );
        }
        for (const k of Object.keys(rec)) {
          if (!['loop', 'schedule', 'T', 'model_var_type', 'model_mean_type', 'clip_denoised', 'model', 'noise', 'trajectory', 'pred_xstart', 'model_redraws', 'eta'].includes(k)) {
            skipped.push({ file, case: `runs[${ri}]`, quantity: k, reason: 'no reader for this field' });
          }
        }
      }));
    } else if (key === 'space_timesteps') {
      const rec = objectField(root, key, file);
      for (const k of Object.keys(rec)) {
        const parsed = parseSpaceKey(k);
        if (!parsed) {
          skipped.push({ file, case: `space_timesteps["${k}"]`, reason: 'key is not "<num_timesteps>|<section_counts>"' });
          continue;
        }
        const v = rec[k];
        const a = { num_timesteps: parsed.n, section_counts: parsed.spec };
        const id = `space_timesteps(${parsed.n}, ${JSON.stringify(parsed.spec)})`;
        if (typeof v === 'object' && v !== null && !Array.isArray(v) && 'error' in v) {
          cases.push({ file, id, op: 'space_timesteps', checks: [], expectError: String((v as { error: unknown }).error), run: async (impl) => ({ timesteps: tensor([0], (await impl.space_timesteps!(a)).timesteps) }) });
          continue;
        }
        const want = intListField(root, `${key}.${q(k)}`, file);
        cases.push({
          file,
          id,
          op: 'space_timesteps',
          checks: [{ quantity: 'timesteps (sorted)', expected: tensor([want.length], [...want].sort((x, y) => x - y)), tol: GOLDEN_TOL.exact }],
          run: async (impl) => {
            const got = [...(await impl.space_timesteps!(a)).timesteps].sort((x, y) => x - y);
            return { 'timesteps (sorted)': tensor([got.length], got) };
          },
        });
      }
    } else if (key.startsWith('spaced_')) {
      if (!xT) throw new FormatError(file, 'x_T', 'missing: the runs start from it');
      const p = key;
      const rec = objectField(root, p, file);
      const map = intListField(root, `${p}.timestep_map`, file);
      const betas = tensorField(root, `${p}.betas`, file);
      const Tn = map.length;
      expectShape(betas, [Tn], file, `${p}.betas`);
      // What the record itself says first: without `args`, the base schedule and section counts come from the key
      // (`spaced_<section_counts>_<schedule><T>`), and the steps run on the recorded respaced betas and map.
      const hasArgs = has(rec, 'args');
      const fromKey = /^spaced_(.+)_([a-z]+?)(\d+)$/.exec(key);
      if (!hasArgs && !fromKey) throw new FormatError(file, `${p}.args`, 'missing, and the key does not name the base schedule (spaced_<section_counts>_<schedule><T>)');
      const base = hasArgs ? scheduleOf(root, `${p}.args`, file, 'base_schedule', 'base_T') : { name: fromKey![2], T: Number(fromKey![3]) };
      const sched = parseScheduleName(base.name, base.T);
      const section = hasArgs ? valueString(root, `${p}.args.section_counts`, file) : fromKey![1];
      const notes: string[] = hasArgs ? [] : ['args not recorded: base schedule and section counts read from the record\'s key'];
      // t·1000/T_original is t itself when T_original = 1000, so the flag need not be recorded there.
      const rescale = hasArgs ? boolField(root, `${p}.args.rescale_timesteps`, file) : base.T === 1000 ? false : undefined;
      const mean = hasArgs ? enumField(root, `${p}.args.model_mean_type`, file, MEAN_TYPES) : { value: undefined, unknown: undefined };
      const vart = hasArgs ? enumField(root, `${p}.args.model_var_type`, file, VAR_TYPES) : { value: undefined, unknown: undefined };
      const clip = hasArgs ? boolField(root, `${p}.args.clip_denoised`, file) : undefined;
      const id = `${key} (${describeSchedule(sched)} → ${JSON.stringify(section)}${rescale ? ', rescaled t' : ''})`;
      if (mean.unknown || vart.unknown) {
        skipped.push({ file, case: id, reason: (mean.unknown ?? vart.unknown)! });
        return;
      }
      cases.push({
        file,
        id: `${id}: space_timesteps`,
        op: 'space_timesteps',
        checks: [{ quantity: 'timesteps (sorted)', expected: tensor([Tn], map), tol: GOLDEN_TOL.exact }],
        run: async (impl) => {
          const got = [...(await impl.space_timesteps!({ num_timesteps: base.T, section_counts: section })).timesteps].sort((x, y) => x - y);
          return { 'timesteps (sorted)': tensor([got.length], got) };
        },
      });
      cases.push({
        file,
        id: `${id}: respace`,
        op: 'respace',
        checks: [
          { quantity: 'betas', expected: betas, tol: GOLDEN_TOL.buffers64 },
          { quantity: 'timestep_map', expected: tensor([Tn], map), tol: GOLDEN_TOL.exact },
        ],
        run: async (impl) => {
          const r = await impl.respace!({ betas: await index.betas(sched, impl), use_timesteps: map });
          return { betas: r.betas, timestep_map: tensor([r.timestep_map.length], r.timestep_map) };
        },
      });
      if (has(rec, 'alphas_cumprod')) {
        const ac = tensorField(root, `${p}.alphas_cumprod`, file);
        expectShape(ac, [Tn], file, `${p}.alphas_cumprod`);
        cases.push({
          file,
          id: `${id}: buffers of the respaced betas`,
          op: 'buffers',
          checks: [{ quantity: 'alphas_cumprod', expected: ac, tol: GOLDEN_TOL.buffers64 }],
          run: async (impl) => ({ alphas_cumprod: (await impl.buffers!({ betas })).alphas_cumprod }),
        });
      }
      for (const k of Object.keys(rec)) {
        if (k === 't_seen_by_model_per_step') skipped.push({ file, case: id, quantity: k, kind: 'not applicable', reason: 'the timesteps the model saw are not an output of the step operations; they enter every step through the model' });
        else if (!['args', 'timestep_map', 'betas', 'alphas_cumprod', 'model', 'ddim_eta0_trajectory', 'ddim_eta0_pred_xstart', 'ancestral_noise', 'ancestral_trajectory'].includes(k)) {
          skipped.push({ file, case: id, quantity: k, reason: 'no reader for this field' });
        }
      }
      const hasSteps = has(rec, 'ddim_eta0_trajectory') || has(rec, 'ancestral_trajectory');
      if (hasSteps && (mean.value === undefined || vart.value === undefined || clip === undefined || rescale === undefined)) {
        const need = [mean.value === undefined && 'model_mean_type', vart.value === undefined && 'model_var_type', clip === undefined && 'clip_denoised', rescale === undefined && 'rescale_timesteps'].filter(Boolean).join(', ');
        throw new FormatError(file, `${p}.args`, `missing: the step cases need ${need} (space_timesteps, respace and the buffers of this record are still checked)`);
      }
      if (!hasSteps) return;
      const model = tinyModelField(root, `${p}.model`, file);
      const a: DiffusionArgs & { clip_denoised: boolean } = {
        betas,
        timestep_map: map,
        rescale_timesteps: rescale,
        original_num_timesteps: base.T,
        model_mean_type: mean.value,
        model_var_type: vart.value,
        clip_denoised: clip!,
      };
      const note = notes.length > 0 ? notes.join('; ') : undefined;
      const forward = Array.from({ length: Tn }, (_, i) => Tn - 1 - i);
      if (has(rec, 'ddim_eta0_trajectory')) {
        const traj = tensorField(root, `${p}.ddim_eta0_trajectory`, file);
        expectShape(traj, [Tn, ...xT.shape], file, `${p}.ddim_eta0_trajectory`);
        const pred = has(rec, 'ddim_eta0_pred_xstart') ? tensorField(root, `${p}.ddim_eta0_pred_xstart`, file) : undefined;
        if (pred) expectShape(pred, [Tn, ...xT.shape], file, `${p}.ddim_eta0_pred_xstart`);
        cases.push(stepCase({ file, id: `${id}: DDIM η=0`, op: 'ddim_step', args: async () => ({ ...a, eta: 0 }), model, start: xT, trajectory: traj, predXstart: pred, ts: forward, note }));
      }
      if (has(rec, 'ancestral_trajectory')) {
        const traj = tensorField(root, `${p}.ancestral_trajectory`, file);
        expectShape(traj, [Tn, ...xT.shape], file, `${p}.ancestral_trajectory`);
        const noise = tensorField(root, `${p}.ancestral_noise`, file);
        expectShape(noise, [Tn, ...xT.shape], file, `${p}.ancestral_noise`);
        cases.push(stepCase({ file, id: `${id}: ancestral`, op: 'p_sample_step', args: async () => a, model, start: xT, trajectory: traj, noise, ts: forward, note }));
      }
    } else {
      skipped.push({ file, case: key, reason: 'no reader for this record' });
    }
  }
}

function valueString(root: unknown, path: string, file: string): string | number[] {
  const rec = objectField(root, path.split('.').slice(0, -1).join('.'), file);
  const v = rec[path.split('.').pop()!];
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && v.every((x) => Number.isSafeInteger(x))) return v as number[];
  throw new FormatError(file, path, `expected a string ("ddim20", "10,15") or a list of integers, got ${JSON.stringify(v)?.slice(0, 40)}`);
}

