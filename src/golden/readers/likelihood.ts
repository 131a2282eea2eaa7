/**
 * Reader for `id_losses_elementwise.json`: normal_kl (with its scalar-broadcast forms), the approximate
 * standard-normal CDF, and the discretised Gaussian log-likelihood (a grid of levels × means × log-scales,
 * edge cases at ±1 and ±0.999, random pixels), batched into one call per group.
 *
 * @module
 */
import { FormatError } from '../../formats/errors.ts';
import { looksLikeTensor } from '../../formats/jsonTensor.ts';
import { expectShape, has, listField, numberField, objectField, q, scalar, tensor, tensorField } from '../tensors.ts';
import { dgllAtol, GOLDEN_TOL } from '../tolerances.ts';
import type { Check, GoldenCase, GoldenCases, Skip, Tensor } from '../types.ts';

/**
 * The check of a batch of log-likelihoods: a per-element bound derived from the conditioning of the bin
 * probability in the float32 reference and in the implementation's declared precision, masking the elements where
 * the reference may have saturated at its clamp (`dgllAtol`, docs/numerics.md "Bin probabilities").
 */
export function dgllCheck(x: Tensor, means: Tensor, logScales: Tensor, expected: Tensor, locate?: (i: number) => string): Check {
  return {
    quantity: 'log_probs',
    expected,
    tol: GOLDEN_TOL.dgll,
    elementAtol: async (impl) => dgllAtol(x, means, logScales, impl),
    locate,
  };
}

/** `id_losses_elementwise.json`. */
export function readLossesElementwise(file: string, root: unknown): GoldenCases {
  const cases: GoldenCase[] = [];
  const skipped: Skip[] = [];
  const top = objectField(root, '', file);
  for (const group of Object.keys(top)) {
    if (group === 'meta' || group === 'env') continue;
    if (group === 'normal_kl') {
      const g = objectField(root, 'normal_kl', file);
      const inputs = objectField(root, 'normal_kl.inputs', file);
      for (const key of Object.keys(g)) {
        if (key === 'inputs') continue;
        const m = /^normal_kl\(([^)]*)\)$/.exec(key);
        if (!m) {
          skipped.push({ file, case: `normal_kl.${key}`, reason: 'no reader for this output' });
          continue;
        }
        const names = m[1].split(',').map((s) => s.trim());
        if (names.length !== 4) throw new FormatError(file, `normal_kl.${q(key)}`, 'normal_kl takes four arguments (mean1, logvar1, mean2, logvar2)');
        const args = names.map((nm) => {
          if (has(inputs, nm) && looksLikeTensor(inputs[nm])) return tensorField(root, `normal_kl.inputs.${q(nm)}`, file);
          const v = Number(nm);
          if (nm !== '' && Number.isFinite(v)) return scalar(v);
          throw new FormatError(file, `normal_kl.${q(key)}`, `argument ${JSON.stringify(nm)} is neither an input nor a number`);
        }) as [Tensor, Tensor, Tensor, Tensor];
        const expected = tensorField(root, `normal_kl.${q(key)}`, file);
        cases.push({
          file,
          id: key,
          op: 'normal_kl',
          checks: [{ quantity: 'kl', expected, tol: GOLDEN_TOL.normalKl }],
          run: async (impl) => impl.normal_kl!(...args),
        });
      }
    } else if (group === 'approx_standard_normal_cdf') {
      const g = objectField(root, group, file);
      const x = tensorField(root, `${group}.x`, file);
      for (const key of Object.keys(g)) {
        if (key === 'x') continue;
        if (key === 'approx_standard_normal_cdf') {
          const expected = tensorField(root, `${group}.${q(key)}`, file);
          expectShape(expected, x.shape, file, `${group}.${q(key)}`);
          cases.push({
            file,
            id: `approx_standard_normal_cdf (${x.data.length} points)`,
            op: 'approx_standard_normal_cdf',
            checks: [{ quantity: 'cdf', expected, tol: GOLDEN_TOL.cdf, locate: (i) => `x = ${x.data[i]}` }],
            run: async (impl) => impl.approx_standard_normal_cdf!(x),
          });
        } else if (key.endsWith('_NOT_REFERENCE')) {
          skipped.push({ file, case: `${group}.${key}`, reason: 'labelled _NOT_REFERENCE: an exact CDF for context, not an output of the reference code', kind: 'not applicable' });
        } else {
          skipped.push({ file, case: `${group}.${key}`, reason: 'no reader for this output' });
        }
      }
    } else if (group === 'discretized_gaussian_log_likelihood') {
      const g = objectField(root, group, file);
      for (const key of Object.keys(g)) {
        const p = `${group}.${q(key)}`;
        if (key === 'levels') continue;
        if (key === 'grid_cases') {
          const levels = tensorField(root, `${group}.levels`, file);
          const L = levels.data.length;
          const grid = listField(root, p, file);
          const xs: number[] = [];
          const ms: number[] = [];
          const ss: number[] = [];
          const lp: number[] = [];
          const label: string[] = [];
          grid.forEach((_, i) => {
            const mean = numberField(root, `${p}.${i}.mean`, file);
            const ls = numberField(root, `${p}.${i}.log_scale`, file);
            const e = tensorField(root, `${p}.${i}.log_probs`, file);
            expectShape(e, [L], file, `${p}.${i}.log_probs`);
            for (let k = 0; k < L; k++) {
              xs.push(levels.data[k]);
              ms.push(mean);
              ss.push(ls);
              lp.push(e.data[k]);
            }
            label.push(`mean ${mean}, log_scale ${ls}`);
          });
          const X = tensor([xs.length], xs);
          const M = tensor([ms.length], ms);
          const S = tensor([ss.length], ss);
          cases.push({
            file,
            id: `grid_cases: ${L} levels × ${grid.length} (mean, log_scale)`,
            op: 'discretized_gaussian_log_likelihood',
            checks: [dgllCheck(X, M, S, tensor([lp.length], lp), (i) => `${label[Math.floor(i / L)]}, level ${i % L} (x = ${xs[i]})`)],
            run: async (impl) => impl.discretized_gaussian_log_likelihood!(X, M, S),
          });
        } else if (key === 'edge_cases' || key === 'random_cases') {
          const x = tensorField(root, `${p}.x`, file);
          const means = tensorField(root, `${p}.means`, file);
          const ls = tensorField(root, `${p}.log_scales`, file);
          const e = tensorField(root, `${p}.log_probs`, file);
          for (const [nm, t] of [['means', means], ['log_scales', ls], ['log_probs', e]] as const) expectShape(t, x.shape, file, `${p}.${nm}`);
          for (const k of Object.keys(objectField(root, p, file))) {
            if (!['x', 'means', 'log_scales', 'log_probs', 'x_uint8'].includes(k)) skipped.push({ file, case: `${p}.${k}`, reason: 'no reader for this field' });
          }
          cases.push({
            file,
            id: `${key} (${x.data.length})`,
            op: 'discretized_gaussian_log_likelihood',
            checks: [dgllCheck(x, means, ls, e, (i) => `x = ${x.data[i]}, mean ${means.data[i]}, log_scale ${ls.data[i]}`)],
            run: async (impl) => impl.discretized_gaussian_log_likelihood!(x, means, ls),
          });
        } else {
          skipped.push({ file, case: p, reason: 'no reader for this record' });
        }
      }
    } else {
      skipped.push({ file, case: group, reason: 'no reader for this group' });
    }
  }
  return { cases, skipped };
}
