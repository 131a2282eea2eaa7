/**
 * Readers for `id_training_losses.json` (the terms of `training_losses` with the TinyModel, and their
 * gradients w.r.t. its parameters) and `id_calc_bpd_loop.json` (the full bits/dim loop).
 *
 * @module
 */
import type { LossType, ModelMeanType, ModelVarType } from '../../conformance/ops.ts';
import { FormatError } from '../../formats/errors.ts';
import { override, type Tolerance } from '../../numeric/tolerance.ts';
import { describeSchedule, parseScheduleName, type ScheduleIndex } from '../context.ts';
import { concat0, expectShape, has, index0, intListField, listField, objectField, q, tensorField } from '../tensors.ts';
import { decoderBitsAtol, decoderReason, GOLDEN_TOL, gradTol } from '../tolerances.ts';
import type { Check, DiffusionOps, GoldenCase, GoldenCases, Skip, Tensor } from '../types.ts';
import { LOSS_TYPES, MEAN_TYPES, VAR_TYPES, enumField, guarded, list, optBool, scheduleOf, timestepsField, tinyModelField, diffusionCaseHeader } from './common.ts';

/**
 * A bits tolerance per example: `tol` scaled by `factor`, and where t = 0 the decoder term's derived bound (scaled
 * likewise) from `decoder`, which returns it for the examples of the batch.
 */
function bitsCheck(
  quantity: string,
  expected: Tensor,
  tv: number[],
  tol: Tolerance,
  factor: number,
  why: string,
  decoder: (impl: DiffusionOps) => Promise<{ bits: Float64Array; saturated: Int32Array; elements: number }>,
): Check {
  const hasZero = tv.includes(0);
  const reason = `${tol.reason}${factor !== 1 ? `; ×${factor} ${why}` : ''}`;
  const flat = Float64Array.from(tv, () => tol.atol * factor);
  return {
    quantity,
    expected,
    tol: override({ rtol: tol.rtol, atol: tol.atol * factor }, reason),
    elementAtol: hasZero
      ? async (impl) => {
          const d = await decoder(impl);
          const values = Float64Array.from(tv, (s, b) => (s === 0 ? d.bits[b] * factor : flat[b]));
          return { values, formula: `${tol.atol * factor} (the decoder term's bound${factor !== 1 ? ` ×${factor}` : ''} where t = 0: ${decoderReason(tv.map((s, b) => (s === 0 ? d.saturated[b] : 0)), d.elements)})` };
        }
      : undefined,
    locate: (i) => `example ${i} (t = ${tv[i]})`,
  };
}

/** `id_training_losses.json`. */
export function readTrainingLosses(file: string, root: unknown, index: ScheduleIndex): GoldenCases {
  const cases: GoldenCase[] = [];
  const skipped: Skip[] = [];
  listField(root, 'cases', file).forEach((_, ci) => 
    guarded(skipped, file, `cases[${ci}]`, () => {
    const p = `cases.${ci}`;
    const { name, T } = scheduleOf(root, `${p}.args`, file);
    const sched = parseScheduleName(name, T);
    const loss = enumField(root, `${p}.args.loss_type`, file, LOSS_TYPES);
    const mean = enumField(root, `${p}.args.model_mean_type`, file, MEAN_TYPES);
    const vart = enumField(root, `${p}.args.model_var_type`, file, VAR_TYPES);
    const rescale = optBool(root, `${p}.args.rescale_timesteps`, file, false);
    const id = `cases[${ci}] ${describeSchedule(sched)} ${loss.value ?? '?'} ${mean.value ?? '?'}/${vart.value ?? '?'}${rescale ? ' rescaled t' : ''}`;
    if (!loss.value || !mean.value || !vart.value) {
      skipped.push({ file, case: id, reason: (loss.unknown ?? mean.unknown ?? vart.unknown)! });
      return;
    }
    const x0 = tensorField(root, `${p}.inputs.x_start`, file);
    const B = x0.shape[0];
    const { tensor: t, values: tv } = timestepsField(root, `${p}.inputs.t`, file, T, B);
    const noise = tensorField(root, `${p}.inputs.noise`, file);
    expectShape(noise, x0.shape, file, `${p}.inputs.noise`);
    const model = tinyModelField(root, `${p}.inputs.model`, file);
    const learned = vart.value === 'LEARNED' || vart.value === 'LEARNED_RANGE';
    if (model.W.shape[1] !== x0.shape[1] || model.W.shape[0] !== x0.shape[1] * (learned ? 2 : 1)) {
      throw new FormatError(file, `${p}.inputs.model.W`, `expected [${x0.shape[1] * (learned ? 2 : 1)},${x0.shape[1]}] for ${vart.value} with ${x0.shape[1]} channels, got [${model.W.shape.join(',')}]`);
    }
    const lt: LossType = loss.value;
    const kl = lt === 'KL' || lt === 'RESCALED_KL';
    const outputs = objectField(root, `${p}.outputs`, file);
    const checks: Check[] = [];
    const vbFactor = lt === 'RESCALED_MSE' ? Math.max(1, T / 1000) : 1;
    const decoder = async (impl: DiffusionOps) =>
      decoderBitsAtol({ betas: await index.betas(sched, impl), model_mean_type: mean.value!, model_var_type: vart.value!, rescale_timesteps: rescale, clip_denoised: false }, model, x0, noise, impl);
    for (const qn of Object.keys(outputs)) {
      const e = tensorField(root, `${p}.outputs.${q(qn)}`, file);
      expectShape(e, [B], file, `${p}.outputs.${q(qn)}`);
      if (qn === 'mse') checks.push({ quantity: 'terms.mse', expected: e, tol: GOLDEN_TOL.mse, locate: (i) => `example ${i} (t = ${tv[i]})` });
      else if (qn === 'vb') checks.push(bitsCheck('terms.vb', e, tv, GOLDEN_TOL.vbBits, vbFactor, 'T/1000 (RESCALED_MSE)', decoder));
      else if (qn === 'loss') {
        if (kl) checks.push(bitsCheck('terms.loss', e, tv, GOLDEN_TOL.vbBits, lt === 'RESCALED_KL' ? T : 1, 'T (RESCALED_KL multiplies the KL by T)', decoder));
        else if (has(outputs, 'vb')) checks.push(bitsCheck('terms.loss', e, tv, GOLDEN_TOL.vbBits, vbFactor, 'T/1000 (RESCALED_MSE)', decoder));
        else checks.push({ quantity: 'terms.loss', expected: e, tol: GOLDEN_TOL.mse, locate: (i) => `example ${i} (t = ${tv[i]})` });
      } else skipped.push({ file, case: id, quantity: `outputs.${qn}`, reason: 'not a term of training_losses; no reader for it' });
    }
    /** The largest t = 0 decoder term (bits/dim, before any rescaling) recorded for a term. */
    const decoderBitsAtT0 = (term: string): number => {
      const src = term === 'vb' ? 'vb' : has(outputs, 'vb') ? 'vb' : 'loss';
      if (!has(outputs, src)) return 0;
      const v = tensorField(root, `${p}.outputs.${src}`, file).data;
      const factor = lt === 'RESCALED_KL' && src === 'loss' ? T : lt === 'RESCALED_MSE' && src === 'vb' ? T / 1000 : 1;
      return Math.max(0, ...tv.map((s, b) => (s === 0 ? v[b] / factor : 0)));
    };
    const gradChecks: Check[] = [];
    if (has(root, `cases`) && has(objectField(root, p, file), 'grads')) {
      const g = objectField(root, `${p}.grads`, file);
      for (const key of Object.keys(g)) {
        const m = /^d\(sum (\w+)\)\/d\(W,bias,tw\)$/.exec(key);
        if (!m) {
          skipped.push({ file, case: id, quantity: `grads.${key}`, reason: 'no reader for this gradient' });
          continue;
        }
        for (const param of ['W', 'bias', 'tw'] as const) {
          const e = tensorField(root, `${p}.grads.${q(key)}.${param}`, file);
          expectShape(e, model[param].shape, file, `${p}.grads.${q(key)}.${param}`);
          const scale = Math.max(...Array.from(e.data, Math.abs));
          // Terms that contain the t = 0 decoder NLL: the KL loss, the vb term, and a loss that adds the vb term.
          const withDecoder = tv.includes(0) && (m[1] === 'vb' || (m[1] === 'loss' && (kl || has(outputs, 'vb'))));
          const check: Check = { quantity: `grads.${m[1]}.${param}`, expected: e, tol: gradTol(scale, withDecoder) };
          const bits = withDecoder ? decoderBitsAtT0(m[1]) : 0;
          if (bits > GOLDEN_TOL.decoderTrapBits && bits < GOLDEN_TOL.decoderClampBits - 1) {
            check.mask = { keep: new Uint8Array(e.data.length), reason: GOLDEN_TOL.decoderTrapGradMask };
          }
          gradChecks.push(check);
        }
      }
    }
    for (const k of Object.keys(objectField(root, p, file))) {
      if (k === 't_seen_by_model') skipped.push({ file, case: id, quantity: k, kind: 'not applicable', reason: 'the timesteps the model saw are not an output of training_losses; they enter every term through the model' });
      else if (!['args', 'inputs', 'outputs', 'grads'].includes(k)) skipped.push({ file, case: id, quantity: k, reason: 'no reader for this field' });
    }
    const meanType: ModelMeanType = mean.value;
    const varType: ModelVarType = vart.value;
    // The terms and the gradients are asked separately: an implementation without gradients still has its terms checked.
    const call = async (impl: DiffusionOps, grads: boolean): Promise<Record<string, Tensor>> => {
      const r = await impl.training_losses!(
        { betas: await index.betas(sched, impl), loss_type: lt, model_mean_type: meanType, model_var_type: varType, rescale_timesteps: rescale, ...(grads ? { grads } : {}) },
        model,
        x0,
        t,
        noise,
      );
      const out: Record<string, Tensor> = {};
      for (const [k, v] of Object.entries(r.terms)) out[`terms.${k}`] = v;
      for (const [k, g] of Object.entries(r.grads ?? {})) {
        out[`grads.${k}.W`] = g.W;
        out[`grads.${k}.bias`] = g.bias;
        out[`grads.${k}.tw`] = g.tw;
      }
      return out;
    };
    cases.push({ file, id: `${id} t=${list(tv)}`, op: 'training_losses', checks, run: (impl) => call(impl, false) });
    if (gradChecks.length > 0) {
      cases.push({
        file,
        id: `${id} t=${list(tv)}: gradients`,
        op: 'training_losses',
        checks: gradChecks,
        optional: 'the gradients of training_losses are optional; its terms are checked on their own',
        run: (impl) => call(impl, true),
      });
    }
  }));
  return { cases, skipped };
}

/**
 * `id_calc_bpd_loop.json`. The `[B, T]` tables are stored in loop order (column i ↔ t = `loop_order_t[i]`),
 * as improved's code stacks them, although the file's notes and the README say column j ↔ t = j; the reader
 * reorders them to t = 0 … T−1, the order of the operation's output.
 */
export function readCalcBpdLoop(file: string, root: unknown, index: ScheduleIndex): GoldenCases {
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
    const x0 = tensorField(root, `${p}.inputs.x_start`, file);
    const B = x0.shape[0];
    const model = tinyModelField(root, `${p}.inputs.model`, file);
    const noiseRec = tensorField(root, `${p}.inputs.noise_per_step_in_loop_order`, file);
    expectShape(noiseRec, [T, ...x0.shape], file, `${p}.inputs.noise_per_step_in_loop_order`);
    // Put the noise in the loop order the operation takes (t = T−1, …, 0), whatever order the file lists.
    const order = intListField(root, `${p}.inputs.loop_order_t`, file);
    if (order.length !== T || [...order].sort((a, b) => a - b).some((v, i) => v !== i)) {
      throw new FormatError(file, `${p}.inputs.loop_order_t`, `expected a permutation of 0 … ${T - 1}, got ${list(order).slice(0, 80)}`);
    }
    const noise = concat0(
      Array.from({ length: T }, (_, i) => {
        const j = order.indexOf(T - 1 - i);
        const n = index0(noiseRec, j, file, `${p}.inputs.noise_per_step_in_loop_order`);
        return { shape: [1, ...n.shape], data: n.data };
      }),
    );
    const outputs = objectField(root, `${p}.outputs`, file);
    const checks: Check[] = [];
    const noise0 = index0(noiseRec, order.indexOf(0), file, `${p}.inputs.noise_per_step_in_loop_order`);
    const decoder = async (impl: DiffusionOps) =>
      decoderBitsAtol({ betas: await index.betas(sched, impl), model_mean_type: mean.value, model_var_type: vart.value, clip_denoised: clip }, model, x0, { shape: [...x0.shape], data: noise0.data }, impl);
    for (const qn of Object.keys(outputs)) {
      const f = `${p}.outputs.${q(qn)}`;
      const e = tensorField(root, f, file);
      if (qn === 'total_bpd' || qn === 'prior_bpd') {
        expectShape(e, [B], file, f);
        checks.push(
          qn === 'total_bpd'
            ? {
                quantity: qn,
                expected: e,
                tol: override({ rtol: GOLDEN_TOL.vbBits.rtol, atol: (T + 1) * GOLDEN_TOL.vbBits.atol }, `the sum of the T vb terms and the prior term: ${GOLDEN_TOL.vbBits.reason}, for each term`),
                elementAtol: async (impl) => {
                  const d = await decoder(impl);
                  return { values: d.bits.map((v) => v + T * GOLDEN_TOL.vbBits.atol), formula: `${T}·${GOLDEN_TOL.vbBits.atol} + the decoder term's bound (${decoderReason(d.saturated, d.elements)})` };
                },
              }
            : { quantity: qn, expected: e, tol: GOLDEN_TOL.vbBits },
        );
      } else if (qn === 'vb' || qn === 'xstart_mse' || qn === 'mse') {
        expectShape(e, [B, T], file, f);
        // improved's calc_bpd_loop appends one column per loop step, so column i holds t = loop_order_t[i]
        // (t = T−1 first; the data bear this out: the last column is the t = 0 decoder NLL, the largest vb
        // term, and the first has ε-MSE ≈ 1e−5, as ε̂ ≈ x_t at t = T−1). The operation returns column j ↔ t = j.
        const byT = new Float64Array(B * T);
        for (let b = 0; b < B; b++) for (let i = 0; i < T; i++) byT[b * T + order[i]] = e.data[b * T + i];
        e.data = byT;
        const locate = (i: number) => `example ${Math.floor(i / T)}, t = ${i % T}`;
        if (qn === 'vb') {
          checks.push({
            quantity: qn,
            expected: e,
            tol: GOLDEN_TOL.vbBits,
            elementAtol: async (impl) => {
              const d = await decoder(impl);
              const values = Float64Array.from({ length: B * T }, (_, i) => (i % T === 0 ? d.bits[Math.floor(i / T)] : GOLDEN_TOL.vbBits.atol));
              return { values, formula: `${GOLDEN_TOL.vbBits.atol} (the decoder term's bound at t = 0: ${decoderReason(d.saturated, d.elements)})` };
            },
            locate,
          });
        } else {
          checks.push({ quantity: qn, expected: e, tol: GOLDEN_TOL.mse, locate });
        }
      } else {
        skipped.push({ file, case: id, quantity: qn, reason: 'not an output of calc_bpd_loop; no reader for it' });
      }
    }
    const meanType = mean.value;
    const varType = vart.value;
    cases.push({
      file,
      id,
      op: 'calc_bpd_loop',
      checks,
      run: async (impl) => {
        const r = await impl.calc_bpd_loop!(
          { betas: await index.betas(sched, impl), model_mean_type: meanType, model_var_type: varType, clip_denoised: clip },
          model,
          x0,
          noise,
        );
        return { ...r };
      },
    });
  }));
  return { cases, skipped };
}
