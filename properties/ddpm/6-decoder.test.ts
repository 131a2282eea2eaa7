import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import normalCdf from '@stdlib/stats-base-dists-normal-cdf';
import {
  discreteDecoderNll,
  discretizedGaussianBinProbabilities,
  discretizedGaussianLogLikelihood,
  natsToBitsPerDim,
  PIXEL_LEVELS,
  pixelLevel,
} from '../../spec/ddpm/index.ts';
import { override } from '../../src/numeric/tolerance.ts';
import { discretizedLikelihoodSumsToOne } from '../../src/conformance/ddpmLaws.ts';
import { decoderLogScale, decoderMean, expectLawOnSpec, real } from './arbitraries.ts';

const EPS = Number.EPSILON;

/** Means a little beyond the data range; log σ from 6e−6 (a sharp decoder) to 20 (a flat one). */
const mean = decoderMean;
const logScale = decoderLogScale;

describe('3.6 The discrete decoder: N(μ, σ²) integrated over 256 bins of width 2/255, the outer two open', () => {
  it('gives the 256 pixel levels probabilities in [0, 1] that sum to 1  [ddpm.decoder.binsSumToOne]', () =>
    fc.assert(
      fc.property(mean, logScale, (m, ls) => {
        const p = discretizedGaussianBinProbabilities(m, ls);
        expect(p.length).toBe(PIXEL_LEVELS);
        for (const v of p) {
          expect(v).toBeGreaterThanOrEqual(0);
          expect(v).toBeLessThanOrEqual(1);
        }
        // Neighbouring bins share their edge bit for bit, so the sum telescopes up to one rounding per bin.
        expect(p.reduce((a, b) => a + b, 0)).toBeCloseWithin(1, override({ rtol: 0, atol: 2 * PIXEL_LEVELS * EPS }, 'one rounding per bin in the sum and per bin in the CDF difference'));
      }),
    ));

  it('each bin’s probability is the integral of the density over the bin: a difference of @stdlib normal CDFs  [ddpm.decoder.eqIntegralOfDensity]', () =>
    fc.assert(
      fc.property(mean, real(-6, 1), fc.integer({ min: 0, max: 255 }), (m, ls, k) => {
        const sd = Math.exp(ls);
        const x = pixelLevel(k);
        const lo = k === 0 ? -Infinity : x - 1 / 255;
        const hi = k === 255 ? Infinity : x + 1 / 255;
        // On the side of the mean where the CDF is small (so that the difference keeps its relative precision).
        const upper = lo > m;
        const a = upper ? normalCdf(-lo, -m, sd) : normalCdf(hi, m, sd);
        const b = upper ? normalCdf(-hi, -m, sd) : normalCdf(lo, m, sd);
        const ref = a - b;
        if (!(ref > 1e-250)) return; // both underflow: nothing to compare (the log-space tail is checked below)
        const tol = override({ rtol: 1e-11 * (1 + a / ref), atol: 0 }, 'a CDF difference: relative error ε·Φ/P, with @stdlib’s CDF accurate to ~1e−15 relative');
        expect(Math.exp(discretizedGaussianLogLikelihood(x, m, ls))).toBeCloseWithin(ref, tol, { what: `P(level ${k} | μ = ${m}, σ = ${sd})` });
        // Off the grid (a level rounded to float32, as the reference code's data is), the bin is x ± 1/255.
        const xf = Math.fround(x);
        if (xf !== x && k > 0 && k < 255) {
          const lo32 = xf - 1 / 255;
          const hi32 = xf + 1 / 255;
          const up = lo32 > m;
          const a32 = up ? normalCdf(-lo32, -m, sd) : normalCdf(hi32, m, sd);
          const ref32 = a32 - (up ? normalCdf(-hi32, -m, sd) : normalCdf(lo32, m, sd));
          if (ref32 > 1e-250) {
            expect(Math.exp(discretizedGaussianLogLikelihood(xf, m, ls))).toBeCloseWithin(ref32, override({ rtol: 1e-11 * (1 + a32 / ref32), atol: 0 }, 'as above'), { what: `P(float32 level ${k})` });
          }
        }
      }),
      { numRuns: 500 },
    ));

  it('far in the tails the log-probability stays finite and follows log Q(z) ≈ −z²/2 − log(z√(2π))  [ddpm.decoder.tailsFinite]', () =>
    fc.assert(
      fc.property(real(-15, -6), fc.integer({ min: 1, max: 254 }), fc.constantFrom(-1, 1), (ls, k, side) => {
        // The mean sits 40…1e6 standard deviations below (or above) the bin: the bin's mass is Q(z_near) − Q(z_far) ≈ Q(z_near).
        const sd = Math.exp(ls);
        const x = pixelLevel(k);
        const near = side > 0 ? x - 1 / 255 : x + 1 / 255;
        const m = near - side * 40 * sd * (1 + k);
        const z = Math.abs(near - m) / sd;
        const lp = discretizedGaussianLogLikelihood(x, m, ls);
        expect(Number.isFinite(lp)).toBe(true);
        const asymptotic = -0.5 * z * z - Math.log(z * Math.sqrt(2 * Math.PI));
        expect(lp).toBeCloseWithin(asymptotic, override({ rtol: 1e-9, atol: 2 / (z * z) }, 'the asymptotic series’ first correction is −1/z² (relative 1/z² in Q)'));
      }),
    ));

  it('the decoder’s −log p in bits per dimension is −Σ log₂ P/D with each bin’s P from an independent normal CDF (@stdlib)  [ddpm.decoder.bitsPerDimConsistent]', () =>
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }).chain((D) =>
          fc.tuple(fc.array(fc.integer({ min: 0, max: 255 }), { minLength: D, maxLength: D }), fc.array(mean, { minLength: D, maxLength: D })),
        ),
        // log σ² ≥ −4 keeps |x − μ|/σ ≤ 2.5/e^{−2} ≈ 19, so every P > 1e−80 is a normal double and log₂(P) keeps its precision
        real(-4, 1),
        ([levels, means], logVar) => {
          const D = levels.length;
          const x0 = levels.map(pixelLevel);
          const variance = Math.exp(logVar);
          const nats = discreteDecoderNll(x0, means, variance);
          expect(nats).toBeGreaterThanOrEqual(0);
          const bpd = natsToBitsPerDim(nats, D);
          // The oracle: each pixel's bin probability from @stdlib's normal CDF (not the spec's Φ, bins or sums),
          // P = Φ(b) − Φ(a) on the standardised bin edges, outer bins open, taken in the tail where it is smaller
          // (Φ(−a) − Φ(−b)) so that no difference of two numbers near 1 loses the bin.
          const sd = Math.sqrt(variance);
          const bits = levels.reduce((acc, k, i) => {
            const x = x0[i];
            const a = k === 0 ? -Infinity : (x - 1 / 255 - means[i]) / sd;
            const b = k === PIXEL_LEVELS - 1 ? Infinity : (x + 1 / 255 - means[i]) / sd;
            const P = a > 0 ? normalCdf(-a, 0, 1) - normalCdf(-b, 0, 1) : normalCdf(b, 0, 1) - normalCdf(a, 0, 1);
            return acc - Math.log2(P);
          }, 0);
          expect(bpd).toBeCloseWithin(bits / D, override({ rtol: 1e-10, atol: 1e-12 }, 'a bin of width ≥ 0.008σ… 0.06σ: the difference of two CDFs loses up to ≈ 1/(z·width) ≈ 1e3 ulps'));
        },
      ),
      { numRuns: 50 },
    ));

  it('the spec’s discretized_gaussian_log_likelihood gives probabilities summing to 1  [ddpm.ops.discretizedLikelihoodSumsToOne]', () => expectLawOnSpec(discretizedLikelihoodSumsToOne));
  it('the outer bin’s log-probability stays exact far in the tail, across the switch to the asymptotic series at z = 35 (against the exact normal CDF)  [ddpm.decoder.farTailEqExactCdf]', () =>
    fc.assert(
      fc.property(real(30, 37.5), (z) => {
        // Bin 0 is (−∞, −1 + 1/255]; with σ = 0.01 and the mean z σ above its edge, P = Φ(−z), down to 1e−300 at z = 37.5.
        const sigma = 0.01;
        const mean = -1 + 1 / 255 + z * sigma;
        const expected = Math.log(normalCdf(-z, 0, 1));
        expect(discretizedGaussianLogLikelihood(-1, mean, Math.log(sigma))).toBeCloseWithin(expected, override({ rtol: 1e-11, atol: 0 }, 'the Mills-ratio series to r⁴ (truncation < 1e−12 relative beyond z = 35) and the rounding of z = (edge − μ)/σ'));
      }),
    ));
});
