/**
 * Reusable laws of probability, for the spec, the reference implementation and anyone else's code. Each law is
 * an assertion to call inside an `it` whose title carries the property id; it throws with a readable message
 * (the matcher's |Δ|, bound and reason, or fast-check's counterexample and seed).
 *
 * ```ts
 * it('KL between tables is a divergence  [probability.kl.isDivergence]', () =>
 *   assertIsDivergence('klDiscrete', klDiscrete, pairOfDistributions, tol));
 * ```
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import type { Tolerance } from '../../src/numeric/tolerance.ts';
import { integrate1d, integrate2d, type QuadratureOptions } from '../../spec/probability/density.ts';

/** Options shared by the laws that run fast-check. */
export interface LawOptions {
  /** fast-check runs (default: the global setting). */
  numRuns?: number;
}

/**
 * A divergence d(q, p) between two objects of the same kind: d(q, q) = 0 and d(p, p) = 0 (within `tol`),
 * d(q, p) ≥ 0 (within `tol.atol`, for rounding), and d(q, p) > 0 whenever `distinct(q, p)` (the pair differs
 * materially; the law's "0 exactly when q = p").
 *
 * @param name - what is checked, printed in failures
 * @param arb - pairs [q, p]
 * @param distinct - whether q ≠ p materially (for example, their parameters differ by more than 1e−6)
 */
export function assertIsDivergence<P>(
  name: string,
  d: (q: P, p: P) => number,
  arb: fc.Arbitrary<readonly [P, P]>,
  tol: Tolerance,
  distinct: (q: P, p: P) => boolean,
  opts: LawOptions = {},
): void {
  fc.assert(
    fc.property(arb, ([q, p]) => {
      expect(d(q, q), `${name}(q, q) must be 0`).toBeCloseWithin(0, tol);
      expect(d(p, p), `${name}(p, p) must be 0`).toBeCloseWithin(0, tol);
      const v = d(q, p);
      expect(v, `${name}(q, p) must be ≥ 0 (Gibbs' inequality)`).toBeGreaterThanOrEqual(-tol.atol);
      if (distinct(q, p)) expect(v, `${name}(q, p) must be > 0 for q ≠ p`).toBeGreaterThan(0);
    }),
    opts.numRuns === undefined ? {} : { numRuns: opts.numRuns },
  );
}

/**
 * A table of probabilities: every entry is finite and ≥ 0 and they sum to 1 within `tol`.
 *
 * @param what - printed in failures
 */
export function assertIsDistribution(values: ArrayLike<number>, tol: Tolerance, what = 'distribution'): void {
  let s = 0;
  for (let i = 0; i < values.length; i++) {
    expect(Number.isFinite(values[i]) && values[i] >= 0, `${what}: entry ${i} = ${values[i]} must be finite and ≥ 0`).toBe(true);
    s += values[i];
  }
  expect(s).toBeCloseWithin(1, tol, { what: `${what}: the probabilities must sum to 1` });
}

/**
 * A 1-D density integrates to 1 over [lo, hi] (which the caller chose to hold all but a negligible mass), by
 * composite Gauss–Legendre quadrature.
 */
export function assertIntegratesToOne1d(logPdf: (x: number) => number, lo: number, hi: number, tol: Tolerance, what = 'density', quad: QuadratureOptions = {}): void {
  const mass = integrate1d((x) => {
    const l = logPdf(x);
    return l === -Infinity ? 0 : Math.exp(l);
  }, lo, hi, quad);
  expect(mass).toBeCloseWithin(1, tol, { what: `${what}: ∫ p(x) dx over [${lo.toPrecision(4)}, ${hi.toPrecision(4)}]` });
}

/** A 2-D density integrates to 1 over a box, by tensor-product quadrature. */
export function assertIntegratesToOne2d(
  logPdf: (x: number, y: number) => number,
  xRange: readonly [number, number],
  yRange: readonly [number, number],
  tol: Tolerance,
  what = 'density',
  quad: QuadratureOptions = {},
): void {
  const mass = integrate2d((x, y) => {
    const l = logPdf(x, y);
    return l === -Infinity ? 0 : Math.exp(l);
  }, xRange, yRange, quad);
  expect(mass).toBeCloseWithin(1, tol, { what: `${what}: ∬ p(x, y) dx dy` });
}

/**
 * An expectation operator E is linear: E[a·f + b·g] = a·E[f] + b·E[g]. `E` takes a function of the sample and
 * returns a number (exact, quadrature or Monte Carlo on a fixed set of draws, which is exactly linear up to
 * rounding).
 */
export function assertExpectationLinear<X>(E: (f: (x: X) => number) => number, f: (x: X) => number, g: (x: X) => number, a: number, b: number, tol: Tolerance, what = 'expectation'): void {
  const lhs = E((x) => a * f(x) + b * g(x));
  expect(lhs).toBeCloseWithin(a * E(f) + b * E(g), tol, { what: `${what}: E[a f + b g] = a E[f] + b E[g]` });
}

/**
 * The ELBO identity and bound of variational inference for one variational distribution q:
 * log p(X) = 𝓛(q) + D_KL[q ‖ p(Z | X)] (within `tol`) and 𝓛(q) ≤ log p(X) (within `tol`'s absolute part).
 */
export function assertElboIdentity(logEvidence: number, elbo: number, klToPosterior: number, tol: Tolerance, what = 'ELBO'): void {
  expect(elbo + klToPosterior).toBeCloseWithin(logEvidence, tol, { what: `${what}: 𝓛(q) + KL[q ‖ p(Z|X)] = log p(X)` });
  expect(elbo, `${what}: 𝓛(q) = ${elbo} must be ≤ log p(X) = ${logEvidence}`).toBeLessThanOrEqual(logEvidence + tol.atol + tol.rtol * Math.abs(logEvidence));
}
