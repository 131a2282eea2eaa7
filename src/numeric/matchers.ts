/**
 * Custom vitest matchers that say *why* a comparison failed: |Δ|, the bound, the index of the worst
 * element and the tolerance's reason. Registered by the test setup; usable by anyone's tests:
 *
 * ```ts
 * import { expect } from 'vitest';
 * import { closeMatchers } from 'ddpm-spec/src/numeric/matchers.ts';
 * expect.extend(closeMatchers);
 * expect(actual).toBeCloseWithin(expected, TOL.float32);
 * ```
 *
 * @module
 */
import { allClose, describeComparison, fmt } from './close.ts';
import type { Tolerance } from './tolerance.ts';
import type { McResult } from './stats.ts';

type Numeric = number | ArrayLike<number>;

function toArray(x: Numeric): ArrayLike<number> {
  return typeof x === 'number' ? [x] : x;
}

function isNumeric(x: unknown): x is Numeric {
  return typeof x === 'number' || (typeof x === 'object' && x !== null && typeof (x as ArrayLike<number>).length === 'number');
}

/** Options for {@link closeMatchers}'s `toBeCloseWithin`. */
export interface CloseOptions {
  /** Row-major shape of the arrays, so the worst element is reported as a multi-index. */
  shape?: readonly number[];
  /** Words prepended to the failure message (what is being compared). */
  what?: string;
}

export const closeMatchers = {
  /**
   * `expect(actual).toBeCloseWithin(expected, tol, opts?)`: element-wise |a − e| ≤ atol + rtol·|e|,
   * non-finite equal only to the same non-finite value. `expected` may be a scalar broadcast to all.
   */
  toBeCloseWithin(received: unknown, expected: Numeric, tol: Tolerance, opts: CloseOptions = {}) {
    if (!isNumeric(received)) {
      return { pass: false, message: () => `expected a number or an array of numbers, received ${typeof received}` };
    }
    const a = toArray(received);
    const e = typeof expected === 'number' && typeof received !== 'number' ? expected : toArray(expected);
    const r = allClose(a, e, tol);
    const head = opts.what ? `${opts.what}: ` : '';
    return {
      pass: r.ok,
      message: () =>
        r.ok
          ? `${head}expected values NOT to be close, but every element is within its bound\n${describeComparison(r, tol, opts.shape)}`
          : `${head}values are not close\n${describeComparison(r, tol, opts.shape)}`,
    };
  },

  /**
   * `expect(mcAgrees(...)).toPassMonteCarlo(what?)`: a Monte Carlo estimate within z standard errors plus
   * a floor. The message prints the estimate, the expectation, se, z, the false-failure rate and n.
   */
  toPassMonteCarlo(received: McResult, what = 'Monte Carlo estimate') {
    const r = received;
    const msg = () =>
      `${what}: |estimate − expected| = ${fmt(r.delta)} ${r.ok ? '≤' : '>'} bound ${fmt(r.bound)} ` +
      `(z ${r.z.toFixed(2)} × se ${fmt(r.se)} + floor)\nestimate ${fmt(r.estimate)}, expected ${fmt(r.expected)}, ` +
      `n = ${r.n}, false-failure rate α = ${r.alpha}`;
    return { pass: r.ok, message: msg };
  },
};

declare module 'vitest' {
  interface Matchers<T = any> {
    toBeCloseWithin(expected: Numeric, tol: Tolerance, opts?: CloseOptions): T;
    toPassMonteCarlo(what?: string): T;
  }
}
