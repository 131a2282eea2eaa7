/**
 * Number generators shared by every property folder, spread over their stated domains.
 *
 * fast-check's `fc.double` draws bit patterns, so that nine draws in ten from [−3, 3] are below 1e−6 in
 * magnitude: a "vector in [−3, 3]" is then nearly always 0, a "log-scale in [−12, 3]" nearly always 0, a "mixing
 * weight in [0, 1]" nearly always 0. These draw a 30-bit integer instead and map it onto the domain, evenly
 * ({@link real}) or evenly in the logarithm ({@link logReal}, for a quantity that spans orders of magnitude such
 * as β or a variance). fast-check still favours the ends of the integer range, so the domain's ends come up
 * often. `properties/meta/4-generators.test.ts` measures the spread of every generator built on these.
 */
import fc from 'fast-check';

const N = 2 ** 30;

/** A real number spread evenly over [min, max] (both ends included). */
export function real(min: number, max: number): fc.Arbitrary<number> {
  if (!(min < max) || !Number.isFinite(min) || !Number.isFinite(max)) throw new RangeError(`real: need finite min < max, got [${min}, ${max}]`);
  return fc.integer({ min: 0, max: N }).map((k) => (k === N ? max : min + (max - min) * (k / N)));
}

/** A positive real number spread evenly in log over [min, max] (0 < min < max; both ends included). */
export function logReal(min: number, max: number): fc.Arbitrary<number> {
  if (!(min > 0 && min < max) || !Number.isFinite(max)) throw new RangeError(`logReal: need 0 < min < max, got [${min}, ${max}]`);
  const a = Math.log(min);
  const b = Math.log(max);
  return fc.integer({ min: 0, max: N }).map((k) => (k === 0 ? min : k === N ? max : Math.min(max, Math.max(min, Math.exp(a + (b - a) * (k / N))))));
}

/**
 * The spread of samples over a domain: the fraction of them in each of `bins` equal bins of [lo, hi] (of
 * [log lo, log hi] when `log`). A generator that spreads evenly puts about 1/bins in each.
 */
export function binFractions(xs: readonly number[], lo: number, hi: number, bins = 10, log = false): number[] {
  const f = log ? Math.log : (x: number) => x;
  const a = f(lo);
  const w = (f(hi) - a) / bins;
  const counts = new Array<number>(bins).fill(0);
  for (const x of xs) {
    const i = Math.min(bins - 1, Math.max(0, Math.floor((f(x) - a) / w)));
    counts[i]++;
  }
  return counts.map((c) => c / xs.length);
}
