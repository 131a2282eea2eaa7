/**
 * Element-wise closeness with the project's convention (see {@link Tolerance}).
 *
 * $$|a - e| \le \mathrm{atol} + \mathrm{rtol}\cdot|e|$$
 *
 * Non-finite values: equal only to the same non-finite value. `NaN` is close to `NaN` (the
 * reference produced a NaN and so did we) but never to a number, and `+∞` is never close to a large
 * finite number.
 *
 * The relation is symmetric when `rtol = 0`, and in general not otherwise, because the bound is
 * relative to the expected value.
 *
 * @module
 */
import type { Tolerance } from './tolerance.ts';

/** Result of comparing one pair of numbers. */
export interface CloseResult {
  ok: boolean;
  actual: number;
  expected: number;
  /** |actual − expected|; `NaN` when exactly one side is non-finite, `0` when both are the same non-finite value. */
  delta: number;
  /** atol + rtol·|expected|; `0` for a non-finite expected value. */
  bound: number;
  /** Why the pair failed, in words, when it did. */
  why?: string;
}

/** Compare one actual number with one expected number. */
export function isClose(actual: number, expected: number, tol: Tolerance): CloseResult {
  if (!Number.isFinite(actual) || !Number.isFinite(expected)) {
    const same = Object.is(actual, expected) || (Number.isNaN(actual) && Number.isNaN(expected));
    if (same) return { ok: true, actual, expected, delta: 0, bound: 0 };
    return {
      ok: false,
      actual,
      expected,
      delta: Number.NaN,
      bound: 0,
      why: `non-finite values are equal only to the same non-finite value (got ${actual}, expected ${expected})`,
    };
  }
  const delta = Math.abs(actual - expected);
  const bound = tol.atol + tol.rtol * Math.abs(expected);
  return delta <= bound ? { ok: true, actual, expected, delta, bound } : { ok: false, actual, expected, delta, bound };
}

/**
 * How far a compared pair used its bound: |Δ|/bound (a zero bound counts as the smallest positive double, so that
 * a failure under atol = rtol = 0 still has a finite ratio); `0` for a non-finite pair, which has no ratio.
 * {@link allClose} reports the element with the largest ratio among the failures (or among the passes, when all pass).
 */
export function closeRatio(r: CloseResult): number {
  return Number.isFinite(r.delta) ? r.delta / Math.max(r.bound, Number.MIN_VALUE) : 0;
}

/** Anything array-like that holds numbers (typed arrays, plain arrays). */
export type NumericArray = ArrayLike<number>;

/** Result of comparing two arrays element by element. */
export interface AllCloseResult {
  ok: boolean;
  /** Number of elements compared. */
  n: number;
  /** Number of elements outside the bound. */
  failures: number;
  /** Largest |Δ| over finite pairs. */
  maxAbs: number;
  /** Largest |Δ|/|expected| over finite pairs with expected ≠ 0. */
  maxRel: number;
  /**
   * The worst element: the first non-finite mismatch if any, otherwise the failing element with the largest
   * ratio |Δ|/bound ({@link closeRatio}), or the passing one with the largest ratio when all pass; the first
   * such element on ties.
   */
  worst: (CloseResult & { index: number }) | null;
  /** Set when the shapes/lengths differ; then no element is compared. */
  shapeError?: string;
}

/**
 * Compare arrays element-wise. `expected` may be a single number, broadcast to every element.
 */
export function allClose(actual: NumericArray, expected: NumericArray | number, tol: Tolerance): AllCloseResult {
  const n = actual.length;
  const exp = typeof expected === 'number' ? null : expected;
  if (exp !== null && exp.length !== n) {
    return {
      ok: false,
      n: 0,
      failures: 0,
      maxAbs: Number.NaN,
      maxRel: Number.NaN,
      worst: null,
      shapeError: `length mismatch: actual has ${n} elements, expected has ${exp.length}`,
    };
  }
  let failures = 0;
  let maxAbs = 0;
  let maxRel = 0;
  let worst: (CloseResult & { index: number }) | null = null;
  // Rank (tier, ratio) lexicographically: a non-finite mismatch (tier 2) beats any failure (tier 1), which beats
  // any pass (tier 0); within a tier the larger ratio wins, the first one on ties. The tier is kept apart from the
  // ratio (not added to it) so that two ratios one ulp apart are still told apart.
  let worstTier = -1;
  let worstRatio = -1;
  for (let i = 0; i < n; i++) {
    const e = exp === null ? (expected as number) : exp[i];
    const r = isClose(actual[i], e, tol);
    if (Number.isFinite(r.delta)) {
      if (r.delta > maxAbs) maxAbs = r.delta;
      if (e !== 0 && r.delta / Math.abs(e) > maxRel) maxRel = r.delta / Math.abs(e);
    }
    if (!r.ok) failures++;
    const tier = r.ok ? 0 : Number.isNaN(r.delta) ? 2 : 1;
    const ratio = closeRatio(r);
    if (tier > worstTier || (tier === worstTier && ratio > worstRatio)) {
      worstTier = tier;
      worstRatio = ratio;
      worst = { ...r, index: i };
    }
  }
  return { ok: failures === 0, n, failures, maxAbs, maxRel, worst };
}

/** Format a number for messages: short, but never hides the difference between two printed values. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  return a >= 1e-3 && a < 1e6 ? String(Number(x.toPrecision(10))) : x.toExponential(6);
}

/** Turn a flat index into a multi-index for a row-major shape. */
export function unravel(index: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  let r = index;
  for (let k = shape.length - 1; k >= 0; k--) {
    const d = shape[k];
    out[k] = d > 0 ? r % d : 0;
    r = d > 0 ? Math.floor(r / d) : 0;
  }
  return out;
}

/** A readable multi-line description of a comparison, for test failures and reports. */
export function describeComparison(
  r: AllCloseResult,
  tol: Tolerance,
  shape?: readonly number[],
): string {
  if (r.shapeError) return r.shapeError;
  const lines: string[] = [];
  const w = r.worst;
  const where =
    w === null ? '' : shape && shape.length > 1 ? ` at index [${unravel(w.index, shape).join(',')}] (flat ${w.index})` : ` at index ${w.index}`;
  if (w !== null) {
    if (Number.isNaN(w.delta)) {
      lines.push(`${w.why}${where}`);
    } else {
      lines.push(
        `|Δ| = ${fmt(w.delta)} ${w.ok ? '≤' : '>'} bound ${fmt(w.bound)} (atol ${fmt(tol.atol)} + rtol ${fmt(tol.rtol)}·|expected|)${where}`,
      );
      lines.push(`actual ${fmt(w.actual)}, expected ${fmt(w.expected)}`);
    }
  }
  if (r.n > 1) lines.push(`${r.failures} of ${r.n} elements outside the bound; max |Δ| ${fmt(r.maxAbs)}, max rel ${fmt(r.maxRel)}`);
  lines.push(`tolerance: ${tol.reason ?? 'no reason given'}`);
  return lines.join('\n');
}
