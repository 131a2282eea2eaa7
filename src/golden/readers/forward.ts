/**
 * Readers for `id_q_functions.json` (q_sample, q_mean_variance, the posterior, and the three parameterisation
 * conversions) and `id_p_mean_variance.json` (p_mean_variance for every mean/variance type, with and without
 * clipping).
 *
 * @module
 */
import type { DiffusionOps, ScheduleArgs } from '../../conformance/ops.ts';
import { FormatError } from '../../formats/errors.ts';
import { looksLikeTensor } from '../../formats/jsonTensor.ts';
import { describeSchedule, parseScheduleName, type ScheduleIndex } from '../context.ts';
import { expectShape, has, listField, objectField, q, tensorField } from '../tensors.ts';
import { GOLDEN_TOL, precisionOf } from '../tolerances.ts';
import { differenceBound } from '../../numeric/bounds.ts';
import { fmt } from '../../numeric/close.ts';
import type { Tolerance } from '../../numeric/tolerance.ts';
import type { Check, ElementAtol, GoldenCase, GoldenCases, Skip, Tensor } from '../types.ts';
import { diffusionCaseHeader, guarded, list, scheduleOf, timestepsField } from './common.ts';

/** Elements per batch example of an image tensor. */
const inner = (t: Tensor): number => t.data.length / t.shape[0];

/**
 * atol_i = 4(u₃₂ + u_impl)·(|a_b·x_i| + |b_b·y_i|) + 1e−6, with a_b, b_b the coefficients at example b's timestep
 * (docs/numerics.md, "Differences of large terms": a·x − b·y errs in proportion to its terms, in the float32
 * reference and in the implementation's declared precision; the README's floor 1e−6). `divide` divides the budget
 * by c_b (for a quotient).
 */
function budget(
  impl: DiffusionOps,
  formula: string,
  t: number[],
  x: Tensor,
  y: Tensor,
  a: Float64Array,
  b: Float64Array,
  divide?: Float64Array,
): ElementAtol {
  const n = inner(x);
  const values = new Float64Array(x.data.length);
  const prec = precisionOf(impl);
  for (let i = 0; i < values.length; i++) {
    const s = t[Math.floor(i / n)];
    const terms = differenceBound(Math.abs(a[s] * x.data[i]) + Math.abs(b[s] * y.data[i]), 'float32', prec);
    values[i] = (divide ? terms / divide[s] : terms) + 1e-6;
  }
  return { values, formula: formula.replace('5e-7', `${fmt(differenceBound(1, 'float32', prec))} (4(u₃₂ + u_${prec === 'float32' ? '32' : '64'}))`) };
}

function need(bufs: Record<string, Float64Array>, name: string, sched: ScheduleArgs): Float64Array {
  const v = bufs[name];
  if (!v) throw new Error(`the buffer ${name} of ${describeSchedule(sched)} is needed for an error budget`);
  return v;
}

/** `id_q_functions.json`. */
export function readQFunctions(file: string, root: unknown, index: ScheduleIndex): GoldenCases {
  const cases: GoldenCase[] = [];
  const skipped: Skip[] = [];
  listField(root, 'cases', file).forEach((_, ci) => 
    guarded(skipped, file, `cases[${ci}]`, () => {
    const p = `cases.${ci}`;
    const { name, T } = scheduleOf(root, `${p}.args`, file);
    const sched = parseScheduleName(name, T);
    const x0 = tensorField(root, `${p}.inputs.x_start`, file);
    const B = x0.shape[0];
    const { tensor: t, values: tv } = timestepsField(root, `${p}.inputs.t`, file, T, B);
    const inputs = objectField(root, `${p}.inputs`, file);
    const outputs = objectField(root, `${p}.outputs`, file);
    const value = (key: string, where: string): Tensor => {
      if (has(inputs, key) && looksLikeTensor(inputs[key])) return tensorField(root, `${p}.inputs.${q(key)}`, file);
      if (has(outputs, key) && looksLikeTensor(outputs[key])) return tensorField(root, `${p}.outputs.${q(key)}`, file);
      throw new FormatError(file, where, `names ${JSON.stringify(key)}, which is neither an input nor an output of the case`);
    };
    const img = (tt: Tensor, f: string): Tensor => (expectShape(tt, x0.shape, file, f), tt);
    const base = `cases[${ci}] ${describeSchedule(sched)} t=${list(tv)}`;
    const args = async (impl: DiffusionOps) => ({ betas: await index.betas(sched, impl) });
    const groups: Record<string, Record<string, Tensor>> = {};
    for (const key of Object.keys(outputs)) {
      const f = `${p}.outputs.${q(key)}`;
      if (key === 'q_sample') {
        const noise = img(value('noise', f), `${p}.inputs.noise`);
        cases.push({
          file,
          id: `${base}: q_sample`,
          op: 'q_sample',
          checks: [{ quantity: 'x_t', expected: img(tensorField(root, f, file), f), tol: GOLDEN_TOL.qValues }],
          run: async (impl) => impl.q_sample!(await args(impl), x0, t, noise),
        });
      } else if (/^q_(mean_variance|posterior_mean_variance)(\.|$)/.test(key)) {
        // Written flat (`q_mean_variance.mean`) or nested (`q_mean_variance: {mean}`): gathered below.
        const [fnName, qn] = key.includes('.') ? [key.slice(0, key.indexOf('.')), key.slice(key.indexOf('.') + 1)] : [key, ''];
        const group = (groups[fnName] ??= {});
        if (qn !== '') group[qn] = img(tensorField(root, f, file), f);
        else for (const k of Object.keys(objectField(root, f, file))) group[k] = img(tensorField(root, `${f}.${q(k)}`, file), `${f}.${q(k)}`);
      } else {
        const m = /^_predict_(xstart_from_eps|xstart_from_xprev|eps_from_xstart)\((.*)\)$/.exec(key);
        if (!m) {
          skipped.push({ file, case: base, quantity: key, reason: 'no reader for this output' });
          continue;
        }
        const kv = Object.fromEntries(
          m[2].split(',').map((s) => {
            const [k, v] = s.split('=').map((u) => u.trim());
            if (!k || !v) throw new FormatError(file, f, `arguments must be written name=value, got ${JSON.stringify(s)}`);
            return [k, v];
          }),
        );
        const expected = img(tensorField(root, f, file), f);
        const arg = (k: string): Tensor => {
          if (!(k in kv)) throw new FormatError(file, f, `the key names no ${k} argument`);
          return img(value(kv[k], f), `${f}(${k})`);
        };
        const xt = arg('x_t');
        if (m[1] === 'xstart_from_eps') {
          const eps = arg('eps');
          cases.push({
            file,
            id: `${base}: ${key}`,
            op: 'predict_xstart_from_eps',
            checks: [
              {
                quantity: 'pred_xstart',
                expected,
                tol: GOLDEN_TOL.qDifference,
                elementAtol: async (impl) => {
                  const b = await index.buffers(sched, impl);
                  return budget(impl, '5e-7·(|√(1/ᾱ)·x_t| + |√(1/ᾱ−1)·ε|) + 1e-6', tv, xt, eps, need(b, 'sqrt_recip_alphas_cumprod', sched), need(b, 'sqrt_recipm1_alphas_cumprod', sched));
                },
              },
            ],
            run: async (impl) => impl.predict_xstart_from_eps!(await args(impl), xt, t, eps),
          });
        } else if (m[1] === 'xstart_from_xprev') {
          const xprev = arg('xprev');
          cases.push({
            file,
            id: `${base}: ${key}`,
            op: 'predict_xstart_from_xprev',
            checks: [
              {
                quantity: 'pred_xstart',
                expected,
                tol: GOLDEN_TOL.qDifference,
                elementAtol: async (impl) => {
                  const b = await index.buffers(sched, impl);
                  const c1 = need(b, 'posterior_mean_coef1', sched);
                  const c2 = need(b, 'posterior_mean_coef2', sched);
                  return budget(impl, '5e-7·(|x_{t−1}/c₁| + |(c₂/c₁)·x_t|) + 1e-6', tv, xprev, xt, c1.map((v) => 1 / v), c2.map((v, i) => v / c1[i]));
                },
              },
            ],
            run: async (impl) => impl.predict_xstart_from_xprev!(await args(impl), xt, t, xprev),
          });
        } else {
          const x0hat = arg('pred_xstart');
          cases.push({
            file,
            id: `${base}: ${key}`,
            op: 'predict_eps_from_xstart',
            checks: [
              {
                quantity: 'eps',
                expected,
                tol: GOLDEN_TOL.qDifference,
                elementAtol: async (impl) => {
                  const b = await index.buffers(sched, impl);
                  const rm1 = need(b, 'sqrt_recipm1_alphas_cumprod', sched);
                  return budget(
                    impl,
                    '5e-7·(|√(1/ᾱ)·x_t| + |x̂₀|)/√(1/ᾱ−1) + 1e-6',
                    tv,
                    xt,
                    x0hat,
                    need(b, 'sqrt_recip_alphas_cumprod', sched),
                    new Float64Array(rm1.length).fill(1),
                    rm1,
                  );
                },
              },
            ],
            run: async (impl) => impl.predict_eps_from_xstart!(await args(impl), xt, t, x0hat),
          });
        }
      }
    }
    const want: Record<string, Record<string, Tolerance>> = {
      q_mean_variance: { mean: GOLDEN_TOL.qValues, variance: GOLDEN_TOL.qValues, log_variance: GOLDEN_TOL.qLogVariances },
      q_posterior_mean_variance: { mean: GOLDEN_TOL.qValues, variance: GOLDEN_TOL.qValues, log_variance_clipped: GOLDEN_TOL.qLogVariances },
    };
    for (const [fnName, group] of Object.entries(groups)) {
      const checks: Check[] = [];
      for (const [qn, e] of Object.entries(group)) {
        const tol = want[fnName][qn];
        if (tol) checks.push({ quantity: qn, expected: e, tol });
        else skipped.push({ file, case: base, quantity: `${fnName}.${qn}`, reason: `not an output of ${fnName}; no reader for it` });
      }
      if (checks.length === 0) continue;
      if (fnName === 'q_mean_variance') {
        cases.push({ file, id: `${base}: q_mean_variance`, op: 'q_mean_variance', checks, run: async (impl) => impl.q_mean_variance!(await args(impl), x0, t) });
      } else {
        // The README: the posterior of (x_start, q_sample).
        const xt = img(value('q_sample', `${p}.outputs`), `${p}.outputs.q_sample`);
        cases.push({
          file,
          id: `${base}: q_posterior_mean_variance(x_start, x_t = q_sample)`,
          op: 'q_posterior_mean_variance',
          checks,
          run: async (impl) => impl.q_posterior_mean_variance!(await args(impl), x0, xt, t),
        });
      }
    }
  }));
  return { cases, skipped };
}

/** `id_p_mean_variance.json`. */
export function readPMeanVariance(file: string, root: unknown, index: ScheduleIndex): GoldenCases {
  const cases: GoldenCase[] = [];
  const skipped: Skip[] = [];
  listField(root, 'cases', file).forEach((_, ci) => 
    guarded(skipped, file, `cases[${ci}]`, () => {
    const p = `cases.${ci}`;
    const h = diffusionCaseHeader(root, p, file);
    const { T, sched, clip, id } = h;
    if (h.skip !== undefined) {
      skipped.push({ file, case: id, reason: h.skip });
      return;
    }
    const mean = { value: h.mean! };
    const vart = { value: h.vart! };
    const x = tensorField(root, `${p}.inputs.x`, file);
    const B = x.shape[0];
    const { tensor: t, values: tv } = timestepsField(root, `${p}.inputs.t`, file, T, B);
    const out = tensorField(root, `${p}.inputs.model_output`, file);
    const learned = vart.value === 'LEARNED' || vart.value === 'LEARNED_RANGE';
    expectShape(out, [B, x.shape[1] * (learned ? 2 : 1), ...x.shape.slice(2)], file, `${p}.inputs.model_output`);
    const outputs = objectField(root, `${p}.outputs`, file);
    const checks: Check[] = [];
    for (const qn of Object.keys(outputs)) {
      if (!['mean', 'variance', 'log_variance', 'pred_xstart'].includes(qn)) {
        skipped.push({ file, case: id, quantity: qn, reason: 'not an output of p_mean_variance; no reader for it' });
        continue;
      }
      const e = tensorField(root, `${p}.outputs.${q(qn)}`, file);
      expectShape(e, x.shape, file, `${p}.outputs.${q(qn)}`);
      checks.push({ quantity: qn, expected: e, tol: GOLDEN_TOL.pMeanVariance });
    }
    const meanType = mean.value;
    const varType = vart.value;
    cases.push({
      file,
      id: `${id} t=${list(tv)}`,
      op: 'p_mean_variance',
      checks,
      run: async (impl) =>
        impl.p_mean_variance!(
          { betas: await index.betas(sched, impl), model_mean_type: meanType, model_var_type: varType, clip_denoised: clip },
          { kind: 'output', output: out },
          x,
          t,
        ),
    });
  }));
  return { cases, skipped };
}
