/**
 * Arbitraries and helpers for the diffusion-model properties: schedules (named and user arrays), timesteps,
 * vectors, and the assertion that runs a reusable law on the spec adapter.
 */
import fc from 'fast-check';
import { logReal, real } from '../support/arbitraries.ts';
import { expect } from 'vitest';
import { makeSchedule, namedSchedule, type Schedule } from '../../spec/ddpm/index.ts';
import { specOps } from '../../src/conformance/impl/spec.ts';
import { LAW_TOL, type Law } from '../../src/conformance/ddpmLaws.ts';
import { Rng } from '../../src/numeric/rng.ts';
import { fcSeed } from '../support/seed.ts';

export { logReal, real };

/**
 * A user-given β array, log-uniform (β spans orders of magnitude: Ho's linear schedule runs from 1e−4 to 0.02).
 * Bounds: β ≥ 1e−5 (below ≈ 1e−16 the product 1 − β rounds to 1 and ᾱ stops decreasing in
 * float64; 1e−5 keeps every property away from that); β ≤ 0.5 and T ≤ 40 keep ᾱ_T ≥ 0.5⁴⁰ ≈ 1e−12, far from
 * underflow, so that quotients by ᾱ stay finite. `lastOne` appends β_T = 1 (the flagged case).
 */
export function userBetas(opts: { minT?: number; maxT?: number; maxBeta?: number; lastOne?: boolean } = {}): fc.Arbitrary<number[]> {
  const { minT = 1, maxT = 40, maxBeta = 0.5, lastOne = false } = opts;
  return fc
    .array(fc.double({ min: 1e-5, max: maxBeta, noNaN: true }), { minLength: minT, maxLength: maxT })
    .map((b) => (lastOne ? [...b, 1] : b));
}

/**
 * A schedule: a named one (Ho's linear, quad, const, warm-up, cosine, improved's linear, with T up to 300, so a
 * property over every t stays fast) or a user array. No β = 1 (use {@link userBetas} with `lastOne` for that).
 */
export function schedule(opts: { minT?: number; maxT?: number } = {}): fc.Arbitrary<Schedule> {
  return scheduleRaw(opts).map(printable);
}

/** The same schedule, printed by fast-check as its name and β range instead of its methods' source. */
export function printable(s: Schedule): Schedule {
  const b = s.betas;
  const text = `${s.name} [T = ${s.T}: β_1 = ${b[0]}, β_T = ${b[b.length - 1]}]${b.length <= 8 ? ` betas = ${JSON.stringify(b)}` : ''}`;
  return Object.freeze({ ...s, [fc.toStringMethod]: () => text, toString: () => text });
}

function scheduleRaw(opts: { minT?: number; maxT?: number }): fc.Arbitrary<Schedule> {
  const { minT = 1, maxT = 300 } = opts;
  const T = fc.integer({ min: minT, max: maxT });
  return fc.oneof(
    T.map((t) => namedSchedule({ kind: 'linear', T: t })),
    T.map((t) => namedSchedule({ kind: 'quad', T: t })),
    T.map((t) => namedSchedule({ kind: 'const', T: t, beta: 0.02 })),
    T.map((t) => namedSchedule({ kind: 'warmup', T: t, fraction: 0.5 })),
    T.map((t) => namedSchedule({ kind: 'cosine', T: t })),
    fc.integer({ min: Math.max(minT, 21), max: Math.max(maxT, 21) }).map((t) => namedSchedule({ kind: 'improvedLinear', T: t })), // T ≥ 21: β_T < 1
    userBetas({ minT, maxT: Math.min(maxT, 40) }).map((b) => makeSchedule(b)),
  );
}

/** A schedule with a timestep t in lo…T (lo = 1 by default). */
export function scheduleAndT(opts: { minT?: number; maxT?: number; lo?: number } = {}): fc.Arbitrary<{ s: Schedule; t: number }> {
  const lo = opts.lo ?? 1;
  return schedule({ ...opts, minT: Math.max(opts.minT ?? 1, lo) }).chain((s) => fc.integer({ min: lo, max: s.T }).map((t) => ({ s, t })));
}

/** A vector of D values spread over [−bound, bound] (data in [−1, 1] scaled up to 3, noise of a few standard deviations). */
export function vec(D: number, bound = 3): fc.Arbitrary<number[]> {
  return fc.array(real(-bound, bound), { minLength: D, maxLength: D });
}

/** A decoder mean: the data range [−1, 1] and half a bin width of slack beyond it on both sides, and more. */
export const decoderMean = real(-1.5, 1.5);

/** A decoder log-scale log σ in [−12, 3]: from σ ≈ 6e−6 (far below a bin width, 2/255) to σ ≈ 20 (far above). */
export const decoderLogScale = real(-12, 3);

/** A seed for an {@link Rng}, drawn by fast-check so that every FC_SEED draws different streams. */
export const rngArb = fc.integer({ min: 0, max: 2 ** 31 - 1 }).map((s) => new Rng(s));

/** Run a reusable law on the float64 spec adapter (inputs seeded from FC_SEED) and fail with its detail unless it passes. */
export async function expectLawOnSpec(law: Law, seed = fcSeed()): Promise<void> {
  const r = await law.run(specOps, { tol: LAW_TOL.float64, seed });
  expect(r.verdict, `${r.id}: ${r.claim}\n${r.detail}`).toBe('pass');
  expect(r.comparisons).toBeGreaterThan(0);
}
