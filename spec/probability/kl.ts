/**
 * Kullback–Leibler divergence D_KL[q ‖ p] = 𝔼_q[log q − log p], in nats: between finite distributions (exact),
 * between 1-D and 2-D densities (quadrature), and between any densities one can sample and evaluate (Monte
 * Carlo). Closed forms for Gaussians are in `spec/gaussian/kl.ts`.
 *
 * Conventions of the finite case: 0·log(0/p) = 0 for any p, and q·log(q/0) = +∞ for q > 0 (q is not absolutely
 * continuous with respect to p).
 *
 * @module
 */
import { z } from 'zod';
import type { Rng } from '../../src/numeric/rng.ts';
import { expectation1d, expectation2d, monteCarloExpectation, type Density, type MonteCarloEstimate, type QuadratureOptions } from './density.ts';
import { NORMALISATION_ATOL, TabularDistribution } from './table.ts';
import { argError, parseArg } from './validate.ts';

/**
 * A probability vector: finite entries ≥ 0 summing to 1 within {@link NORMALISATION_ATOL}.
 *
 * @see property `probability.kl.rejectsBadInput`
 */
export const ProbabilityVector = z
  .array(z.number().nonnegative())
  .min(1)
  .readonly()
  .superRefine((p, ctx) => {
    let s = 0;
    for (const v of p) s += v;
    if (!(Math.abs(s - 1) <= NORMALISATION_ATOL)) ctx.addIssue({ code: 'custom', message: `probabilities must sum to 1 (within ${NORMALISATION_ATOL}), got ${s}` });
  });
export type ProbabilityVector = z.infer<typeof ProbabilityVector>;

/**
 * KL divergence between two distributions on the same finite set {0, …, n − 1}:
 *
 * $$D_{\mathrm{KL}}[q\,\|\,p] = \sum_{i:\,q_i>0} q_i\log\frac{q_i}{p_i}$$
 *
 * +∞ when some q_i > 0 has p_i = 0.
 *
 * @see property `probability.kl.isDivergence`
 * @see property `probability.kl.notSymmetric`
 * @see property `probability.kl.triangleViolated`
 * @see property `probability.kl.unbounded`
 */
export function klDiscrete(q: readonly number[], p: readonly number[]): number {
  const Q = parseArg('klDiscrete', 'q', ProbabilityVector, q);
  const P = parseArg('klDiscrete', 'p', ProbabilityVector, p);
  if (Q.length !== P.length) argError('klDiscrete', `q and p must have the same length, got ${Q.length} and ${P.length}`);
  let s = 0;
  for (let i = 0; i < Q.length; i++) {
    if (Q[i] === 0) continue;
    if (P[i] === 0) return Infinity;
    s += Q[i] * Math.log(Q[i] / P[i]);
  }
  // Not clamped at 0: for q ≈ p rounding can give −1e−17, which the properties allow for explicitly.
  return s;
}

/**
 * KL divergence between two tabular distributions over the same variables (same names, sizes and order):
 * {@link klDiscrete} of their value arrays.
 *
 * $$D_{\mathrm{KL}}[q\,\|\,p] = \sum_a q(a)\log\frac{q(a)}{p(a)}$$
 *
 * @see property `probability.kl.chainRule`
 * @see property `probability.kl.isDivergence`
 */
export function klTabular(q: TabularDistribution, p: TabularDistribution): number {
  const Q = parseArg('klTabular', 'q', TabularDistribution, q);
  const P = parseArg('klTabular', 'p', TabularDistribution, p);
  const sig = (t: TabularDistribution) => t.variables.map((v) => `${v.name}:${v.size}`).join(',');
  if (sig(Q) !== sig(P)) argError('klTabular', `q and p must be over the same variables in the same order, got [${sig(Q)}] and [${sig(P)}]`);
  return klDiscrete(Q.values, P.values);
}

/**
 * Shannon entropy of a distribution on a finite set, in nats, with 0·log 0 = 0:
 *
 * $$H[p] = -\sum_{i:\,p_i>0} p_i\log p_i$$
 *
 * @see property `probability.kl.eqCrossEntropyMinusEntropy`
 */
export function entropyDiscrete(p: readonly number[]): number {
  const P = parseArg('entropyDiscrete', 'p', ProbabilityVector, p);
  let s = 0;
  for (const v of P) if (v > 0) s -= v * Math.log(v);
  return s;
}

/**
 * KL divergence between two 1-D densities by quadrature on [lo, hi] (q's mass outside is the caller's
 * truncation error):
 *
 * $$D_{\mathrm{KL}}[q\,\|\,p] = \int q(x)\,\big(\log q(x) - \log p(x)\big)\,dx$$
 *
 * @see property `gaussian.kl.eqQuadrature`
 */
export function klQuadrature1d(logQ: (x: number) => number, logP: (x: number) => number, lo: number, hi: number, opts: QuadratureOptions = {}): number {
  return expectation1d(logQ, (x) => logQ(x) - logP(x), lo, hi, opts);
}

/**
 * KL divergence between two 2-D densities by tensor-product quadrature on a box.
 *
 * $$D_{\mathrm{KL}}[q\,\|\,p] = \iint q(x,y)\,\big(\log q(x,y) - \log p(x,y)\big)\,dx\,dy$$
 *
 * @see property `gaussian.kl.eqQuadrature`
 */
export function klQuadrature2d(
  logQ: (x: number, y: number) => number,
  logP: (x: number, y: number) => number,
  xRange: readonly [number, number],
  yRange: readonly [number, number],
  opts: QuadratureOptions = {},
): number {
  return expectation2d(logQ, (x, y) => logQ(x, y) - logP(x, y), xRange, yRange, opts);
}

/**
 * Monte Carlo estimate of D_KL[q ‖ p] from n draws of q:
 *
 * $$D_{\mathrm{KL}}[q\,\|\,p] \approx \frac1n\sum_k \big(\log q(x_k) - \log p(x_k)\big),\quad x_k\sim q$$
 *
 * @see property `gaussian.kl.eqMonteCarlo`
 */
export function klMonteCarlo(q: Density, logP: (x: readonly number[]) => number, n: number, rng: Rng): MonteCarloEstimate {
  return monteCarloExpectation((r) => q.sample(r), (x) => q.logPdf(x) - logP(x), n, rng);
}
