/**
 * Comparing an operation's output with a golden quantity: element-wise |a − e| ≤ atol_i + rtol·|e| over the
 * unmasked elements, non-finite values equal only to themselves (the project's convention, see
 * `src/numeric/close.ts`), with the worst element located for the report.
 *
 * @module
 */
import { fmt, isClose, unravel } from '../numeric/close.ts';
import type { Check, ElementAtol, Row, Tensor } from './types.ts';

/** A check whose element atol has been resolved. */
export type ResolvedCheck = Omit<Check, 'elementAtol'> & { elementAtol?: ElementAtol };

function tolText(c: ResolvedCheck): string {
  const atol = c.elementAtol ? `atol ${c.elementAtol.formula}` : `atol ${fmt(c.tol.atol)}`;
  return `rtol ${fmt(c.tol.rtol)}, ${atol}${c.fround ? ' (on Math.fround(actual))' : ''}`;
}

function reasonText(c: ResolvedCheck): string {
  const parts = [c.tol.reason ?? 'default'];
  if (c.mask) parts.push(`mask: ${c.mask.reason}`);
  return parts.join('; ');
}

/** Compare one output with one check; returns the row (without file/case, filled in by the runner). */
export function compareCheck(actual: Tensor | undefined, c: ResolvedCheck): Omit<Row, 'file' | 'case' | 'op'> {
  const base = { quantity: c.quantity, tolerance: tolText(c), reason: reasonText(c) };
  const e = c.expected;
  if (actual === undefined) {
    return { ...base, verdict: 'fail', maxAbs: NaN, maxRel: NaN, compared: 0, masked: 0, failures: 1, detail: `the operation returned no output named ${c.quantity}` };
  }
  const sameShape = actual.shape.length === e.shape.length && actual.shape.every((d, i) => d === e.shape[i]);
  if (!sameShape || actual.data.length !== e.data.length) {
    return {
      ...base,
      verdict: 'fail',
      maxAbs: NaN,
      maxRel: NaN,
      compared: 0,
      masked: 0,
      failures: 1,
      detail: `shape mismatch: got [${actual.shape.join(',')}], expected [${e.shape.join(',')}]`,
    };
  }
  let maxAbs = 0;
  let maxRel = 0;
  let compared = 0;
  let masked = 0;
  let failures = 0;
  let worst = -1;
  let worstScore = -1;
  for (let i = 0; i < e.data.length; i++) {
    if (c.mask && c.mask.keep[i] === 0) {
      masked++;
      continue;
    }
    compared++;
    const a = c.fround ? Math.fround(actual.data[i]) : actual.data[i];
    const tol = c.elementAtol ? { rtol: c.tol.rtol, atol: c.elementAtol.values[i] } : c.tol;
    const r = isClose(a, e.data[i], tol);
    if (Number.isFinite(r.delta)) {
      if (r.delta > maxAbs) maxAbs = r.delta;
      if (e.data[i] !== 0 && r.delta / Math.abs(e.data[i]) > maxRel) maxRel = r.delta / Math.abs(e.data[i]);
    }
    let score: number;
    if (!r.ok) {
      failures++;
      score = Number.isNaN(r.delta) ? Infinity : 2 + r.delta / Math.max(r.bound, Number.MIN_VALUE);
    } else {
      score = r.bound > 0 ? Math.min(1, r.delta / r.bound) : 0;
    }
    if (score > worstScore) {
      worstScore = score;
      worst = i;
    }
  }
  let detail = '';
  if (worst >= 0) {
    const a = c.fround ? Math.fround(actual.data[worst]) : actual.data[worst];
    const where = c.locate ? c.locate(worst) : `[${unravel(worst, e.shape).join(',')}]`;
    const tol = c.elementAtol ? c.elementAtol.values[worst] + c.tol.rtol * Math.abs(e.data[worst]) : c.tol.atol + c.tol.rtol * Math.abs(e.data[worst]);
    detail = `${failures > 0 ? `${failures} of ${compared} outside the bound; worst` : 'closest to its bound'} at ${where}: actual ${fmt(a)}, expected ${fmt(e.data[worst])}, |Δ| ${fmt(Math.abs(a - e.data[worst]))}, bound ${fmt(tol)}`;
  } else {
    detail = 'every element masked';
  }
  if (compared === 0 && masked > 0) return { ...base, verdict: 'skip', maxAbs: NaN, maxRel: NaN, compared, masked, failures, detail: `every element masked: ${c.mask?.reason}` };
  return { ...base, verdict: failures === 0 ? 'pass' : 'fail', maxAbs, maxRel, compared, masked, failures, detail };
}
