/**
 * Continuous densities and the three ways this specification computes an expectation 𝔼_p[f] = ∫ p(x) f(x) dx:
 * quadrature in 1-D and 2-D (composite Gauss–Legendre on a finite box), Monte Carlo anywhere (a sample mean with
 * its standard error), and importance sampling for integrals of unnormalised functions in D dimensions. Also
 * marginalisation p(y) = ∫ p(x, y) dx and conditioning p(x | y) = p(x, y)/p(y) of a 2-D density by quadrature.
 *
 * Densities are given by their log-density functions (natural log), `logPdf(x)`, which may return −∞ outside
 * the support. Quadrature is on a finite box: the caller chooses the box so that the mass outside it is
 * negligible (for a Gaussian, 12 standard deviations leave 4·10⁻³³) and states that choice.
 *
 * @module
 */
import type { Rng } from '../../src/numeric/rng.ts';
import { argError } from './validate.ts';

/** A density on ℝ^D given by its log-density and a sampler (randomness from the `rng` argument); used by {@link importanceIntegral} and `klMonteCarlo`. */
export interface Density {
  /** Dimension D ≥ 1. */
  readonly dim: number;
  /** log p(x) in nats for x of length D (−∞ outside the support). */
  logPdf(x: readonly number[]): number;
  /** One draw x ~ p, length D, using only `rng`. */
  sample(rng: Rng): number[];
}

/** Options of the composite Gauss–Legendre rules ({@link integrate1d}, {@link integrate2d}). */
export interface QuadratureOptions {
  /** Number of equal panels the interval is cut into (default 64). */
  panels?: number;
  /** Gauss–Legendre points per panel (default 16): exact for polynomials of degree ≤ 2·order − 1 on a panel. */
  order?: number;
}

const glCache = new Map<number, { nodes: number[]; weights: number[] }>();

/**
 * Nodes and weights of the n-point Gauss–Legendre rule on [−1, 1], by Newton's method on the Legendre
 * polynomial P_n (three-term recurrence), from the initial guesses cos(π(i − ¼)/(n + ½)):
 *
 * $$\int_{-1}^{1} g(t)\,dt \approx \sum_{i=1}^n w_i\,g(t_i),\qquad w_i = \frac{2}{(1-t_i^2)\,P_n'(t_i)^2}$$
 *
 * exact for polynomials of degree ≤ 2n − 1.
 *
 * @param n - number of points, 1 ≤ n ≤ 200
 * @see property `probability.quadrature.exactForPolynomials`
 * @see property `probability.quadrature.nodesSymmetric`
 */
export function gaussLegendre(n: number): { nodes: number[]; weights: number[] } {
  if (!Number.isInteger(n) || n < 1 || n > 200) argError('gaussLegendre', `n must be an integer in [1, 200], got ${n}`);
  const hit = glCache.get(n);
  if (hit) return { nodes: [...hit.nodes], weights: [...hit.weights] };
  const nodes = new Array<number>(n);
  const weights = new Array<number>(n);
  for (let i = 0; i < Math.ceil(n / 2); i++) {
    let t = Math.cos((Math.PI * (i + 0.75)) / (n + 0.5));
    let dp = 0;
    for (let iter = 0; iter < 100; iter++) {
      let p0 = 1;
      let p1 = t;
      for (let k = 2; k <= n; k++) {
        const p2 = ((2 * k - 1) * t * p1 - (k - 1) * p0) / k;
        p0 = p1;
        p1 = p2;
      }
      if (n === 1) p0 = 1;
      dp = (n * (t * p1 - p0)) / (t * t - 1);
      const dt = p1 / dp;
      t -= dt;
      if (Math.abs(dt) < 1e-16) break;
    }
    // Recompute the derivative at the converged node.
    let p0 = 1;
    let p1 = t;
    for (let k = 2; k <= n; k++) {
      const p2 = ((2 * k - 1) * t * p1 - (k - 1) * p0) / k;
      p0 = p1;
      p1 = p2;
    }
    dp = n === 1 ? 1 : (n * (t * p1 - p0)) / (t * t - 1);
    const w = 2 / ((1 - t * t) * dp * dp);
    nodes[i] = -t;
    nodes[n - 1 - i] = t;
    weights[i] = w;
    weights[n - 1 - i] = w;
  }
  if (n % 2 === 1) nodes[(n - 1) / 2] = 0;
  glCache.set(n, { nodes: [...nodes], weights: [...weights] });
  return { nodes, weights };
}

function checkRange(fn: string, arg: string, lo: number, hi: number): void {
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || !(lo < hi)) {
    argError(fn, `${arg} must be a finite interval with lo < hi, got [${lo}, ${hi}]`);
  }
}

function panelRule(fn: string, lo: number, hi: number, opts: QuadratureOptions): { x: number[]; w: number[] } {
  const panels = opts.panels ?? 64;
  const order = opts.order ?? 16;
  if (!Number.isInteger(panels) || panels < 1) argError(fn, `opts.panels must be a positive integer, got ${panels}`);
  const { nodes, weights } = gaussLegendre(order);
  const h = (hi - lo) / panels;
  const x: number[] = [];
  const w: number[] = [];
  for (let p = 0; p < panels; p++) {
    const mid = lo + (p + 0.5) * h;
    for (let i = 0; i < nodes.length; i++) {
      x.push(mid + 0.5 * h * nodes[i]);
      w.push(0.5 * h * weights[i]);
    }
  }
  return { x, w };
}

/**
 * Composite Gauss–Legendre quadrature of f on [lo, hi]: `panels` equal panels with `order` points each.
 *
 * $$\int_{lo}^{hi} f(x)\,dx \approx \sum_{p}\sum_i \tfrac h2 w_i\, f\!\left(m_p + \tfrac h2 t_i\right)$$
 *
 * @see property `probability.quadrature.exactForPolynomials`
 * @see property `probability.density.integratesToOne`
 */
export function integrate1d(f: (x: number) => number, lo: number, hi: number, opts: QuadratureOptions = {}): number {
  checkRange('integrate1d', '[lo, hi]', lo, hi);
  const { x, w } = panelRule('integrate1d', lo, hi, opts);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += w[i] * f(x[i]);
  return s;
}

/**
 * Tensor-product composite Gauss–Legendre quadrature of f(x, y) on the box [x₀, x₁] × [y₀, y₁].
 *
 * $$\iint f(x,y)\,dx\,dy \approx \sum_{i,j} w_i w_j\, f(x_i, y_j)$$
 *
 * @param xRange - [x₀, x₁], finite, x₀ < x₁
 * @param yRange - [y₀, y₁], finite, y₀ < y₁
 * @see property `probability.quadrature.exactForPolynomials`
 * @see property `probability.density.integratesToOne`
 */
export function integrate2d(
  f: (x: number, y: number) => number,
  xRange: readonly [number, number],
  yRange: readonly [number, number],
  opts: QuadratureOptions = {},
): number {
  checkRange('integrate2d', 'xRange', xRange[0], xRange[1]);
  checkRange('integrate2d', 'yRange', yRange[0], yRange[1]);
  const rx = panelRule('integrate2d', xRange[0], xRange[1], opts);
  const ry = panelRule('integrate2d', yRange[0], yRange[1], opts);
  let s = 0;
  for (let i = 0; i < rx.x.length; i++) {
    let row = 0;
    for (let j = 0; j < ry.x.length; j++) row += ry.w[j] * f(rx.x[i], ry.x[j]);
    s += rx.w[i] * row;
  }
  return s;
}

/** p(x)·f(x) with the convention 0·f = 0 where p(x) = 0 (f may be infinite there). */
function weighted(logp: number, f: () => number): number {
  if (logp === -Infinity) return 0;
  return Math.exp(logp) * f();
}

/**
 * Expectation of f under a 1-D density by quadrature on [lo, hi] (the mass outside is the caller's stated
 * truncation error):
 *
 * $$\mathbb E_p[f] = \int p(x)f(x)\,dx \approx \int_{lo}^{hi} e^{\log p(x)} f(x)\,dx$$
 *
 * @see property `probability.expectation.eqClosedForm`
 * @see property `probability.expectation.quadratureEqMonteCarlo`
 */
export function expectation1d(logPdf: (x: number) => number, f: (x: number) => number, lo: number, hi: number, opts: QuadratureOptions = {}): number {
  return integrate1d((x) => weighted(logPdf(x), () => f(x)), lo, hi, opts);
}

/**
 * Expectation of f(x, y) under a 2-D density by tensor-product quadrature on a box.
 *
 * $$\mathbb E_p[f] = \iint p(x,y)f(x,y)\,dx\,dy$$
 *
 * @see property `probability.expectation.totalExpectation`
 * @see property `probability.expectation.quadratureEqMonteCarlo`
 */
export function expectation2d(
  logPdf: (x: number, y: number) => number,
  f: (x: number, y: number) => number,
  xRange: readonly [number, number],
  yRange: readonly [number, number],
  opts: QuadratureOptions = {},
): number {
  return integrate2d((x, y) => weighted(logPdf(x, y), () => f(x, y)), xRange, yRange, opts);
}

/** A Monte Carlo estimate: the sample mean, its standard error, and the samples of f (the result of {@link monteCarloExpectation}). */
export interface MonteCarloEstimate {
  estimate: number;
  /** Standard error of the mean, √(s²/n) with the unbiased sample variance s². */
  se: number;
  n: number;
  /** f(x_k) for each draw, for `mcAgrees`. */
  values: Float64Array;
}

/**
 * Monte Carlo expectation: the mean of f over n independent draws x_k ~ p made by `draw` from `rng`,
 *
 * $$\mathbb E_p[f] \approx \frac1n\sum_{k=1}^n f(x_k),\qquad \mathrm{se} = \sqrt{s^2/n}$$
 *
 * @param n - number of draws, an integer ≥ 2
 * @see property `probability.expectation.quadratureEqMonteCarlo`
 * @see property `probability.expectation.eqClosedForm`
 */
export function monteCarloExpectation<T>(draw: (rng: Rng) => T, f: (x: T) => number, n: number, rng: Rng): MonteCarloEstimate {
  if (!Number.isInteger(n) || n < 2) argError('monteCarloExpectation', `n must be an integer ≥ 2, got ${n}`);
  const values = new Float64Array(n);
  for (let k = 0; k < n; k++) values[k] = f(draw(rng));
  let m = 0;
  for (let k = 0; k < n; k++) m += values[k];
  m /= n;
  let v = 0;
  for (let k = 0; k < n; k++) v += (values[k] - m) ** 2;
  v /= n - 1;
  return { estimate: m, se: Math.sqrt(v / n), n, values };
}

/**
 * Importance-sampling estimate of the integral of a non-negative function over ℝ^D, with draws from a proposal
 * density q whose support covers f's:
 *
 * $$\int f(x)\,dx = \mathbb E_{q}\!\left[\frac{f(x)}{q(x)}\right] \approx \frac1n\sum_k e^{\log f(x_k) - \log q(x_k)},\quad x_k\sim q$$
 *
 * @param logF - log f (−∞ where f = 0)
 * @see property `probability.density.integratesToOneDd`
 */
export function importanceIntegral(logF: (x: readonly number[]) => number, proposal: Density, n: number, rng: Rng): MonteCarloEstimate {
  return monteCarloExpectation(
    (r) => proposal.sample(r),
    (x) => {
      const lf = logF(x);
      return lf === -Infinity ? 0 : Math.exp(lf - proposal.logPdf(x));
    },
    n,
    rng,
  );
}

/**
 * Marginalisation of a 2-D density by quadrature over the other axis: with `keep = 1`, the density of y,
 *
 * $$\log p(y) = \log\int_{lo}^{hi} p(x, y)\,dx$$
 *
 * (with `keep = 0`, the density of x, integrating over y). Returns the log-density function of the kept variable.
 *
 * @param keep - which argument of `logJoint` is kept: 0 for the first (x), 1 for the second (y)
 * @param range - [lo, hi], the integration range of the other variable
 * @see property `probability.marginal.densityIsDistribution`
 * @see property `gaussian.marginal.eqQuadrature`
 */
export function marginalLogDensity2d(
  logJoint: (x: number, y: number) => number,
  keep: 0 | 1,
  range: readonly [number, number],
  opts: QuadratureOptions = {},
): (v: number) => number {
  if (keep !== 0 && keep !== 1) argError('marginalLogDensity2d', `keep must be 0 or 1, got ${keep}`);
  checkRange('marginalLogDensity2d', 'range', range[0], range[1]);
  return (v) =>
    Math.log(
      integrate1d((u) => {
        const l = keep === 1 ? logJoint(u, v) : logJoint(v, u);
        return l === -Infinity ? 0 : Math.exp(l);
      }, range[0], range[1], opts),
    );
}

/**
 * Conditioning a 2-D density on its second variable, with the normaliser by quadrature:
 *
 * $$\log p(x\mid y) = \log p(x, y) - \log\int_{lo}^{hi} p(x', y)\,dx'$$
 *
 * Returns (x, y) ↦ log p(x | y); −∞·… where p(y) = 0 is the caller's to avoid.
 *
 * @param range - [lo, hi], the integration range of x for the normaliser p(y)
 * @see property `probability.conditional.densityNormalised`
 * @see property `probability.conditional.chainRule`
 */
export function conditionalLogDensity2d(
  logJoint: (x: number, y: number) => number,
  range: readonly [number, number],
  opts: QuadratureOptions = {},
): (x: number, y: number) => number {
  const logMarg = marginalLogDensity2d(logJoint, 1, range, opts);
  // The normaliser depends on y only: remember it for the last y (quadrature over x calls with a fixed y).
  let lastY = Number.NaN;
  let lastLogMarg = Number.NaN;
  return (x, y) => {
    if (!Object.is(y, lastY)) {
      lastLogMarg = logMarg(y);
      lastY = y;
    }
    return logJoint(x, y) - lastLogMarg;
  };
}

/**
 * log Σ_i exp(a_i), computed as m + log Σ_i exp(a_i − m) with m = max a_i, so that it neither overflows nor
 * underflows; −∞ for an empty list or all −∞.
 *
 * $$\operatorname{logsumexp}(a) = m + \log\sum_i e^{a_i - m}$$
 *
 * @see property `probability.logSumExp.eqNaive`
 */
export function logSumExp(a: readonly number[]): number {
  if (!Array.isArray(a)) argError('logSumExp', 'a must be an array of numbers');
  let m = -Infinity;
  for (const v of a) {
    if (Number.isNaN(v)) argError('logSumExp', 'a must not contain NaN');
    if (v > m) m = v;
  }
  if (m === -Infinity) return -Infinity;
  if (m === Infinity) return Infinity;
  let s = 0;
  for (const v of a) s += Math.exp(v - m);
  return m + Math.log(s);
}
