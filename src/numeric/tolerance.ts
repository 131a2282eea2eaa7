/**
 * The project's one tolerance table.
 *
 * A comparison `actual ≈ expected` passes element-wise when
 *
 * $$|a - e| \le \mathrm{atol} + \mathrm{rtol}\cdot|e|$$
 *
 * (the bound is relative to the *expected* value, as in NumPy's `isclose`), and a non-finite value is
 * equal only to the same non-finite value (`NaN` to `NaN`, `+∞` to `+∞`, `−∞` to `−∞`).
 *
 * Every tolerance looser than its dtype's default carries a `reason`, which the matcher prints on failure.
 *
 * @module
 */
import { z } from 'zod';

/** A tolerance: relative and absolute parts, and why it is what it is. */
export const Tolerance = z
  .object({
    rtol: z.number().nonnegative().finite(),
    atol: z.number().nonnegative().finite(),
    /** Why this tolerance, in one sentence. Required for every override of a default. */
    reason: z.string().min(1).optional(),
  })
  .strict();
export type Tolerance = z.infer<typeof Tolerance>;

/** The dtypes the table knows. */
export type Dtype = 'float64' | 'float32';

/**
 * Default tolerances per dtype.
 *
 * - `float64`: a few hundred ulps relative (ε₆₄ ≈ 2.2e−16), for closed forms compared after O(10–100)
 *   operations; the absolute part only matters near zero.
 * - `float32`: about 100 ulps relative (ε₃₂ ≈ 1.2e−7), for one float32 computation of a handful of
 *   operations compared with float64 maths.
 */
export const TOL = {
  float64: { rtol: 1e-12, atol: 1e-14, reason: 'float64 default: a few hundred ulps after O(100) operations' },
  float32: { rtol: 1e-5, atol: 1e-6, reason: 'float32 default: ~100 ulps of a short float32 computation' },
  exact: { rtol: 0, atol: 0, reason: 'bit-exact: the same operations on the same inputs' },
} as const satisfies Record<string, Tolerance>;

/**
 * A looser (or otherwise different) tolerance with its reason. The reason is mandatory: a loose
 * tolerance without one is a defect.
 *
 * @example `override({ rtol: 1e-4, atol: 1e-4 }, 'convolution summation order differs between backends')`
 */
export function override(tol: { rtol: number; atol: number }, reason: string): Tolerance {
  if (typeof reason !== 'string' || reason.trim().length === 0) {
    throw new TypeError('override: reason must be a non-empty sentence saying why this tolerance is needed');
  }
  return Tolerance.parse({ rtol: tol.rtol, atol: tol.atol, reason });
}

/**
 * Scale a tolerance by a factor (for example a condition number), keeping track of why.
 *
 * @param factor - multiplier ≥ 1 applied to both rtol and atol
 */
export function scaled(tol: Tolerance, factor: number, why: string): Tolerance {
  if (!(factor >= 1) || !Number.isFinite(factor)) {
    throw new RangeError(`scaled: factor must be a finite number ≥ 1, got ${factor}`);
  }
  return override(
    { rtol: tol.rtol * factor, atol: tol.atol * factor },
    `${tol.reason ?? 'default'}; scaled ×${factor.toPrecision(3)} because ${why}`,
  );
}
