import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import normalCdf from '@stdlib/stats-base-dists-normal-cdf';
import { Rng } from '../../src/numeric/rng.ts';
import { ksTest, mcAgrees } from '../../src/numeric/stats.ts';

const seed = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });

describe('0.2 Seeded random streams', () => {
  it('the same seed gives the same stream  [numeric.rng.reproducible]', () =>
    fc.assert(fc.property(seed, (s) => {
      expect(new Rng(s).normals(20)).toEqual(new Rng(s).normals(20));
    })));

  it('the stream for seed 42 starts with the pinned values on every machine  [numeric.rng.pinned]', () => {
    // Pinned once; a change here means results recorded with this generator can no longer be reproduced.
    const r = new Rng(42);
    expect(Array.from(r.normals(4))).toEqual(PINNED_42);
  });

  it('a saved state continues the stream exactly, mid-pair included  [numeric.rng.stateRoundTrip]', () =>
    fc.assert(
      fc.property(seed, fc.nat({ max: 9 }), (s, k) => {
        const r = new Rng(s);
        r.normals(k); // k odd leaves a Box–Muller spare pending
        const copy = Rng.fromState(JSON.parse(JSON.stringify(r.getState())));
        expect(copy.normals(7)).toEqual(r.normals(7));
      }),
    ));

  it('uniforms lie in [0, 1)  [numeric.rng.uniformRange]', () =>
    fc.assert(fc.property(seed, (s) => new Rng(s).uniforms(200).every((u) => u >= 0 && u < 1))));

  it('standard normals pass a Kolmogorov–Smirnov test against Φ (false-failure rate 1e-4 per seed)  [numeric.rng.normalKs]', () => {
    for (const s of [1, 2, 3, 20261125]) {
      const ks = ksTest(new Rng(s).normals(5000), (x) => normalCdf(x, 0, 1));
      expect(ks.pValue, `seed ${s}: D = ${ks.statistic}`).toBeGreaterThan(1e-4);
    }
  });

  it('standard normals have mean 0 and variance 1 (Monte Carlo, α = 1e-6)  [numeric.rng.normalMoments]', () => {
    const xs = new Rng(7).normals(20000);
    expect(mcAgrees(xs, 0, { alpha: 1e-6, floor: 0 })).toPassMonteCarlo('mean of N(0,1) draws, seed 7');
    expect(mcAgrees(Array.from(xs, (x) => x * x), 1, { alpha: 1e-6, floor: 0 })).toPassMonteCarlo('E[x²] of N(0,1) draws, seed 7');
  });

  it('split streams are uncorrelated (|corr| < 5/√n, α ≈ 6e-7)  [numeric.rng.splitIndependent]', () => {
    const r = new Rng(11);
    const child = r.split();
    const n = 20000;
    const a = r.normals(n);
    const b = child.normals(n);
    let c = 0;
    for (let i = 0; i < n; i++) c += a[i] * b[i];
    expect(Math.abs(c / n)).toBeLessThan(5 / Math.sqrt(n));
  });

  it('rejects seeds that are not 32-bit integers, naming the argument  [numeric.rng.badSeed]', () => {
    expect(() => new Rng(1.5)).toThrow(/seed must be an integer/);
    expect(() => new Rng(2 ** 40)).toThrow(/seed/);
  });
});

const PINNED_42 = [0.5083311988729572, 0.6148874909657887, -1.7212803835857853, -0.29271260151001016];
