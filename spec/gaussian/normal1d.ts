/**
 * The univariate normal distribution: log-density, error function and CDF, written from their series and
 * continued fractions (not imported), so that agreement with @stdlib is evidence.
 *
 * @module
 */
import { argError } from '../probability/validate.ts';

const LOG_2PI = Math.log(2 * Math.PI);
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

function finite(fn: string, arg: string, v: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v)) argError(fn, `${arg} must be a finite number, got ${v}`);
}

/**
 * Log-density of the univariate normal N(x | μ, σ²), in nats:
 *
 * $$\log\mathcal N(x\mid\mu,\sigma^2) = -\tfrac12\log(2\pi\sigma^2) - \frac{(x-\mu)^2}{2\sigma^2}$$
 *
 * @param variance - σ² > 0 (a variance, not a standard deviation)
 * @see property `gaussian.normal1d.logPdfAgreesWithStdlib`
 */
export function normalLogPdf(x: number, mean: number, variance: number): number {
  finite('normalLogPdf', 'x', x);
  finite('normalLogPdf', 'mean', mean);
  finite('normalLogPdf', 'variance', variance);
  if (!(variance > 0)) argError('normalLogPdf', `variance must be > 0, got ${variance}`);
  const d = x - mean;
  return -0.5 * (LOG_2PI + Math.log(variance)) - (d * d) / (2 * variance);
}

/** erf by its everywhere-positive series, accurate for |x| ≤ 2: erf x = (2/√π) e^{−x²} Σ 2ⁿx^{2n+1}/(2n+1)!!. */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
}

/**
 * erfc for x ≥ 0.75 by its continued fraction (evaluated with the modified Lentz method; ≈ 340 terms at 0.75,
 * ≈ 60 at 2, fewer beyond):
 * erfc x = (e^{−x²}/√π) · 1/(x + (1/2)/(x + (2/2)/(x + (3/2)/(x + …)))).
 */
function erfcContinuedFraction(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let C = x;
  let D = 0;
  for (let n = 1; n < 1000; n++) {
    const a = n / 2;
    D = x + a * D;
    D = D === 0 ? tiny : D;
    C = x + a / C;
    C = C === 0 ? tiny : C;
    D = 1 / D;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / (Math.sqrt(Math.PI) * f);
}

/**
 * The error function $\operatorname{erf}x = \frac{2}{\sqrt\pi}\int_0^x e^{-t^2}\,dt$, odd, with values in (−1, 1).
 *
 * @see property `gaussian.normal1d.erfAgreesWithStdlib`
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) argError('erf', 'x must be a number, got NaN');
  if (x < 0) return -erf(-x);
  return x <= 2 ? erfSeries(x) : 1 - erfcContinuedFraction(x);
}

/**
 * The complementary error function $\operatorname{erfc}x = 1 - \operatorname{erf}x$, computed without
 * cancellation for large x (where it is tiny), with values in (0, 2).
 *
 * @see property `gaussian.normal1d.erfAgreesWithStdlib`
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) argError('erfc', 'x must be a number, got NaN');
  if (x < 0) return 2 - erfc(-x);
  // 1 − erf x would lose relative accuracy as erfc x → 0 (about ε/erfc x); below 0.75, erfc x > 0.28 and it is fine.
  return x < 0.75 ? 1 - erfSeries(x) : erfcContinuedFraction(x);
}

/**
 * CDF of the univariate normal with mean μ and standard deviation σ:
 *
 * $$\Phi\!\left(\frac{x-\mu}{\sigma}\right) = \tfrac12\operatorname{erfc}\!\left(-\frac{x-\mu}{\sigma\sqrt2}\right)$$
 *
 * accurate to a few ulps relative in both tails.
 *
 * @param sd - σ > 0 (a standard deviation, unlike {@link normalLogPdf}, which takes a variance, as the stdlib packages do)
 * @see property `gaussian.normal1d.cdfAgreesWithStdlib`
 */
export function normalCdf(x: number, mean: number, sd: number): number {
  if (Number.isNaN(x)) argError('normalCdf', 'x must be a number, got NaN');
  finite('normalCdf', 'mean', mean);
  finite('normalCdf', 'sd', sd);
  if (!(sd > 0)) argError('normalCdf', `sd must be > 0, got ${sd}`);
  return 0.5 * erfc(-(x - mean) / (sd * Math.SQRT2));
}
