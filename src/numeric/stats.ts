/**
 * Statistics for Monte Carlo checks.
 *
 * A Monte Carlo estimate m̂ of a quantity m with standard error se agrees with m when
 *
 * $$|\hat m - m| \le z\cdot \mathrm{se} + \mathrm{floor}$$
 *
 * where z is chosen from the accepted false-failure rate α (two-sided: z = Φ⁻¹(1 − α/2)), and the
 * absolute floor absorbs the case se ≈ 0 (nearly deterministic estimators), where without it nearly
 * equal quantities would fail spuriously.
 *
 * @module
 */
import normalQuantile from '@stdlib/stats-base-dists-normal-quantile';

/** Arithmetic mean. */
export function mean(xs: ArrayLike<number>): number {
  if (xs.length === 0) throw new RangeError('mean: needs at least one value');
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}

/** Unbiased sample variance (divides by n − 1). */
export function variance(xs: ArrayLike<number>): number {
  if (xs.length < 2) throw new RangeError('variance: needs at least two values');
  const m = mean(xs);
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += (xs[i] - m) ** 2;
  return s / (xs.length - 1);
}

/** Standard error of the mean, √(s²/n). */
export function standardError(xs: ArrayLike<number>): number {
  return Math.sqrt(variance(xs) / xs.length);
}

/**
 * The z multiplier for a two-sided check with false-failure rate `alpha`: Φ⁻¹(1 − α/2).
 * For example `zFor(1e-6)` ≈ 4.89.
 */
export function zFor(alpha: number): number {
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`zFor: alpha must be in (0, 1), got ${alpha}`);
  return normalQuantile(1 - alpha / 2, 0, 1);
}

/** Options of a Monte Carlo agreement check. */
export interface McOptions {
  /** Accepted false-failure rate of this one check (two-sided). */
  alpha: number;
  /** Absolute floor added to the bound. */
  floor: number;
}

/** Result of a Monte Carlo agreement check. */
export interface McResult {
  ok: boolean;
  estimate: number;
  expected: number;
  se: number;
  z: number;
  delta: number;
  bound: number;
  n: number;
  alpha: number;
}

/**
 * Does the sample mean of `xs` agree with `expected` within z standard errors plus a floor?
 * The returned record carries everything a failure message needs.
 */
export function mcAgrees(xs: ArrayLike<number>, expected: number, opts: McOptions): McResult {
  const estimate = mean(xs);
  const se = standardError(xs);
  const z = zFor(opts.alpha);
  const delta = Math.abs(estimate - expected);
  const bound = z * se + opts.floor;
  return { ok: delta <= bound, estimate, expected, se, z, delta, bound, n: xs.length, alpha: opts.alpha };
}

/** One-sided tail of the Kolmogorov distribution, P(K > x) = 2 Σ_{k≥1} (−1)^{k−1} e^{−2k²x²}. */
export function kolmogorovTail(x: number): number {
  if (x <= 0) return 1;
  if (x < 0.2) return 1; // the series converges slowly here and the tail is 1 to double precision
  let s = 0;
  for (let k = 1; k <= 100; k++) {
    const term = Math.exp(-2 * k * k * x * x);
    s += (k % 2 === 1 ? 1 : -1) * term;
    if (term < 1e-18) break;
  }
  return Math.min(1, Math.max(0, 2 * s));
}

/** Result of a Kolmogorov–Smirnov test. */
export interface KsResult {
  /** The KS statistic D (largest vertical distance between the CDFs). */
  statistic: number;
  /** Asymptotic p-value with Stephens' small-sample correction. */
  pValue: number;
  /** Sample size (effective n·m/(n+m) for two samples). */
  n: number;
}

/**
 * One-sample KS test of `xs` against the continuous CDF `cdf`.
 * p-value from the Kolmogorov distribution at D·(√n + 0.12 + 0.11/√n) (Stephens 1970), accurate to a few
 * percent for n ≥ 5, which is ample for choosing a false-failure rate.
 */
export function ksTest(xs: ArrayLike<number>, cdf: (x: number) => number): KsResult {
  const n = xs.length;
  if (n < 5) throw new RangeError(`ksTest: needs at least 5 samples, got ${n}`);
  const s = Float64Array.from(xs).sort();
  let d = 0;
  for (let i = 0; i < n; i++) {
    const f = cdf(s[i]);
    d = Math.max(d, (i + 1) / n - f, f - i / n);
  }
  const sn = Math.sqrt(n);
  return { statistic: d, pValue: kolmogorovTail(d * (sn + 0.12 + 0.11 / sn)), n };
}

/** Two-sample KS test: are `xs` and `ys` drawn from the same continuous distribution? */
export function ksTest2(xs: ArrayLike<number>, ys: ArrayLike<number>): KsResult {
  const a = Float64Array.from(xs).sort();
  const b = Float64Array.from(ys).sort();
  const n = a.length;
  const m = b.length;
  if (n < 5 || m < 5) throw new RangeError(`ksTest2: needs at least 5 samples on each side, got ${n} and ${m}`);
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < n && j < m) {
    const x = Math.min(a[i], b[j]);
    while (i < n && a[i] <= x) i++;
    while (j < m && b[j] <= x) j++;
    d = Math.max(d, Math.abs(i / n - j / m));
  }
  const ne = (n * m) / (n + m);
  const sn = Math.sqrt(ne);
  return { statistic: d, pValue: kolmogorovTail(d * (sn + 0.12 + 0.11 / sn)), n: ne };
}
