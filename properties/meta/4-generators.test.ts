/**
 * The generators of the spec's properties spread over the domains they state, so that a property "for x in
 * [−3, 3]" is not, in fact, a property for x ≈ 0. fast-check's `fc.double` draws bit patterns and put 92 % of
 * vector entries below 1e−6 (`properties/support/arbitraries.ts` explains); this measures each generator's spread
 * so that it cannot silently collapse again.
 *
 * Measure: 2000 draws (seeded), 10 equal bins of the stated domain (equal in log for a log-uniform one); every
 * bin must hold at least 2 % of the draws. An even spread puts 10 % in each (fast-check favours the ends, which
 * takes a little from the middle). False-failure rate: a bin's count is binomial with mean ≥ 150; falling to 40
 * is over 8 standard deviations, probability < 1e−15 per bin.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decoderLogScale, decoderMean, userBetas, vec } from '../ddpm/arbitraries.ts';
import { weights } from '../probability/arbitraries.ts';
import { real } from '../gaussian/arbitraries.ts';
import { binFractions, logReal } from '../support/arbitraries.ts';
import { fcSeed } from '../support/seed.ts';

const DRAWS = 2000;
const MIN_FRACTION = 0.02;

interface Generator {
  name: string;
  arb: fc.Arbitrary<number | number[]>;
  lo: number;
  hi: number;
  log?: boolean;
}

const GENERATORS: Generator[] = [
  { name: 'ddpm vec(3): data and noise entries in [−3, 3]', arb: vec(3), lo: -3, hi: 3 },
  { name: 'ddpm vec(2, 1): data entries in [−1, 1]', arb: vec(2, 1), lo: -1, hi: 1 },
  { name: 'ddpm userBetas: β in [1e−5, 0.5], log-uniform', arb: userBetas({ maxT: 5 }), lo: 1e-5, hi: 0.5, log: true },
  { name: 'ddpm decoderMean in [−1.5, 1.5]', arb: decoderMean, lo: -1.5, hi: 1.5 },
  { name: 'ddpm decoderLogScale in [−12, 3]', arb: decoderLogScale, lo: -12, hi: 3 },
  { name: 'probability weights in [1e−3, 1]', arb: weights(4), lo: 1e-3, hi: 1 },
  { name: 'gaussian real(−5, 5)', arb: real(-5, 5), lo: -5, hi: 5 },
  { name: 'support logReal(1e−3, 0.5)', arb: logReal(1e-3, 0.5), lo: 1e-3, hi: 0.5, log: true },
];

/** The smallest bin fraction of a generator's draws over its domain, and the draws outside it. */
function spread(g: Generator, seed: number): { minFraction: number; outside: number; fractions: number[] } {
  const xs = fc.sample(g.arb, { seed, numRuns: DRAWS }).flatMap((v) => (Array.isArray(v) ? v : [v])).slice(0, DRAWS * 4);
  const outside = xs.filter((x) => !(x >= g.lo && x <= g.hi)).length;
  const fractions = binFractions(xs, g.lo, g.hi, 10, g.log);
  return { minFraction: Math.min(...fractions), outside, fractions };
}

describe('9.4 The generators spread over their stated domains', () => {
  it.each(GENERATORS.map((g) => [g.name, g] as const))('%s: every tenth of the domain gets ≥ 2 % of 2000 draws, none outside  [meta.generators.spreadOverDomain]', (_name, g) => {
    const r = spread(g, fcSeed());
    expect(r.outside, `${g.name}: draws outside [${g.lo}, ${g.hi}]`).toBe(0);
    expect(r.minFraction, `${g.name}: bin fractions ${r.fractions.map((f) => f.toFixed(3)).join(' ')}`).toBeGreaterThanOrEqual(MIN_FRACTION);
  });

  it('the measure rejects fast-check’s bit-pattern doubles, which collapse towards 0  [meta.generators.measureRejectsCollapse]', () => {
    const r = spread({ name: 'fc.double in [−3, 3]', arb: fc.double({ min: -3, max: 3, noNaN: true }), lo: -3, hi: 3 }, fcSeed());
    expect(r.minFraction).toBeLessThan(MIN_FRACTION);
  });
});
