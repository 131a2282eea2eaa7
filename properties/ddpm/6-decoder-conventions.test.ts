import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import normalCdf from '@stdlib/stats-base-dists-normal-cdf';
import {
  approxStandardNormalCdf,
  DECODER_EDGE_FLOAT32,
  DECODER_PROB_FLOOR,
  DecoderConvention,
  decoderLogLikelihood,
  discreteDecoderNll,
  discretizedGaussianLogLikelihood,
  discretizedGaussianLogLikelihoodTanh,
  PIXEL_LEVELS,
  pixelLevel,
} from '../../spec/ddpm/index.ts';
import { readJson, tensorAt, valueAt } from '../../src/formats/jsonTensor.ts';
import { GOLDEN_TOL } from '../../src/golden/tolerances.ts';
import { dgllBound as derivedDgllBound } from '../../src/numeric/bounds.ts';
import { override } from '../../src/numeric/tolerance.ts';

const EPS = Number.EPSILON;
const LOG_FLOOR = Math.log(DECODER_PROB_FLOOR);

/**
 * The largest |Φ̃(x) − Φ(x)| of the tanh approximation and where it is reached: measured here once on a grid of
 * step 10⁻⁴ over [−10, 10] (Python's `math.erfc` for Φ): 1.78933e−4 at |x| = 2.5921. The bound below adds 10⁻⁸ for
 * @stdlib's CDF and the grid; the approximation with 0.04471 instead of 0.044715 reaches 1.8036e−4 (at 1.2434).
 */
const TANH_MAX_DEV = 1.7894e-4;
const TANH_ARGMAX = 2.5921;

/** The golden file of the public code's likelihood functions (float32, improved-diffusion). */
const GOLDEN = 'golden/upstream/id_losses_elementwise.json';

/** Per-element bound of the golden likelihood comparison (the replay's, derived: float32 reference, float64 spec); null where saturated. */
function dgllBound(x: number, mean: number, logScale: number): number | null {
  const b = derivedDgllBound({ x, mean, logScale }, 'float32', 'float64');
  return b.saturated ? null : b.bound;
}

/** Every log-probability recorded in the golden file, with its inputs. */
function goldenLogProbs(): { x: number; mean: number; logScale: number; expected: number; where: string }[] {
  const root = readJson(GOLDEN);
  const out: { x: number; mean: number; logScale: number; expected: number; where: string }[] = [];
  const levels = tensorAt(root, 'discretized_gaussian_log_likelihood.levels', GOLDEN).data;
  const grid = valueAt(root, 'discretized_gaussian_log_likelihood.grid_cases', GOLDEN) as { mean: number; log_scale: number }[];
  grid.forEach((c, i) => {
    const lp = tensorAt(root, `discretized_gaussian_log_likelihood.grid_cases.${i}.log_probs`, GOLDEN).data;
    levels.forEach((x, k) => out.push({ x, mean: c.mean, logScale: c.log_scale, expected: lp[k], where: `grid_cases[${i}] level ${k}` }));
  });
  for (const group of ['edge_cases', 'random_cases']) {
    const p = `discretized_gaussian_log_likelihood.${group}`;
    const x = tensorAt(root, `${p}.x`, GOLDEN).data;
    const m = tensorAt(root, `${p}.means`, GOLDEN).data;
    const s = tensorAt(root, `${p}.log_scales`, GOLDEN).data;
    const lp = tensorAt(root, `${p}.log_probs`, GOLDEN).data;
    x.forEach((xi, i) => out.push({ x: xi, mean: m[i], logScale: s[i], expected: lp[i], where: `${group}[${i}]` }));
  }
  return out;
}

describe('3.6 The discrete decoder, two conventions: the exact Φ of eq. 13 and the public code’s tanh CDF floored at 1e−12', () => {
  it('the tanh CDF equals its textbook form ½(1 + tanh(√(2/π)(x + 0.044715x³))), is odd about ½ and runs from 0 to 1  [ddpm.decoder.tanhCdfEqTextbook]', () => {
    fc.assert(
      // |x| ≤ 40: beyond, x³ is still finite and both forms are exactly 0 or 1
      fc.property(fc.double({ min: -40, max: 40, noNaN: true }), (x) => {
        const y = Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3);
        const textbook = 0.5 * (1 + Math.tanh(y));
        const tol = override({ rtol: 8 * EPS, atol: 2 * EPS }, 'the textbook form rounds 1 + tanh y to an absolute ε/2; the logistic form is relative');
        expect(approxStandardNormalCdf(x)).toBeCloseWithin(textbook, tol, { what: `Φ̃(${x})` });
        expect(approxStandardNormalCdf(-x)).toBeCloseWithin(1 - approxStandardNormalCdf(x), tol, { what: `Φ̃(−${x}) vs 1 − Φ̃(${x})` });
      }),
    );
    expect(approxStandardNormalCdf(-Infinity)).toBe(0);
    expect(approxStandardNormalCdf(Infinity)).toBe(1);
    expect(approxStandardNormalCdf(0)).toBe(0.5);
    // In the lower tail the logistic form keeps relative precision where the textbook form has cancelled to 0.
    expect(approxStandardNormalCdf(-8)).toBeGreaterThan(0);
    expect(() => approxStandardNormalCdf(NaN)).toThrow(/^approxStandardNormalCdf: x must be a number \(±∞ allowed\), got NaN$/);
  });

  it('the tanh CDF is within its known maximum error 1.789e−4 of the exact Φ (@stdlib), and reaches it at |x| ≈ 2.592  [ddpm.decoder.tanhCdfNearPhi]', () => {
    fc.assert(
      fc.property(fc.double({ min: -12, max: 12, noNaN: true }), (x) => {
        const dev = Math.abs(approxStandardNormalCdf(x) - normalCdf(x, 0, 1));
        expect(dev, `|Φ̃(${x}) − Φ(${x})| = ${dev} exceeds the known maximum ${TANH_MAX_DEV}`).toBeLessThanOrEqual(TANH_MAX_DEV);
      }),
      { numRuns: 2000 },
    );
    for (const x of [TANH_ARGMAX, -TANH_ARGMAX]) {
      const dev = Math.abs(approxStandardNormalCdf(x) - normalCdf(x, 0, 1));
      expect(dev, `the maximum error is reached at x = ${x}: |Φ̃ − Φ| = ${dev}`).toBeGreaterThan(TANH_MAX_DEV - 2e-8);
    }
  });

  it('the tanh convention’s log-probability never falls below log 1e−12 = −27.631 and sits there far in a tail, where the exact Φ goes lower  [ddpm.decoder.tanhFloorBoundsNll]', () =>
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.double({ min: -1.5, max: 1.5, noNaN: true }), fc.double({ min: -12, max: 3, noNaN: true }), (k, m, ls) => {
        expect(discretizedGaussianLogLikelihoodTanh(pixelLevel(k), m, ls)).toBeGreaterThanOrEqual(LOG_FLOOR);
        // A bin 40 standard deviations or more from the mean on both edges: Φ̃ there is below e^{−2·0.8·(40 + 2862)} ≪ 1e−12.
        const x = pixelLevel(k);
        const sd = Math.exp(ls);
        if (k > 0 && k < 255 && Math.abs(x - m) - 1 / 255 > 40 * sd) {
          expect(discretizedGaussianLogLikelihoodTanh(x, m, ls)).toBe(LOG_FLOOR);
          expect(discretizedGaussianLogLikelihood(x, m, ls)).toBeLessThan(LOG_FLOOR);
        }
      }),
      { numRuns: 1000 },
    ));

  it('the tanh convention gives the 256 levels probabilities summing to 1, up to the floor’s extra mass of at most 256·1e−12  [ddpm.decoder.tanhBinsSumToOne]', () =>
    fc.assert(
      // log σ ≥ −9: neighbouring edges x_k + 1/255 and x_{k+1} − 1/255 are rounded separately (the code's rule), a
      // mismatch of ~ε/σ ≤ 2e−12 in z per edge, so the sum telescopes to within 256·0.4·2e−12
      fc.property(fc.double({ min: -1.5, max: 1.5, noNaN: true }), fc.double({ min: -9, max: 3, noNaN: true }), (m, ls) => {
        let sum = 0;
        let floored = 0;
        for (let k = 0; k < PIXEL_LEVELS; k++) {
          const lp = discretizedGaussianLogLikelihoodTanh(pixelLevel(k), m, ls);
          if (lp === LOG_FLOOR) floored++;
          sum += Math.exp(lp);
        }
        const slack = 256 * 0.4 * 2e-12 + 2 * PIXEL_LEVELS * EPS;
        expect(sum, `Σ P̃ = ${sum} (${floored} bins at the floor)`).toBeGreaterThanOrEqual(1 - slack);
        expect(sum, `Σ P̃ = ${sum} (${floored} bins at the floor)`).toBeLessThanOrEqual(1 + floored * DECODER_PROB_FLOOR + slack);
      }),
      { numRuns: 200 },
    ));

  it('the tanh convention agrees with every golden value of the public code (CDF within 1e−7; log-probabilities within 2e−3 nats where z ≤ 3, 8e−3 where z ≤ 4), while the exact Φ does not  [ddpm.decoder.tanhAgreesWithGolden]', () => {
    const root = readJson(GOLDEN);
    const xs = tensorAt(root, 'approx_standard_normal_cdf.x', GOLDEN).data;
    const cdf = tensorAt(root, 'approx_standard_normal_cdf.approx_standard_normal_cdf', GOLDEN).data;
    xs.forEach((x, i) => expect(approxStandardNormalCdf(x)).toBeCloseWithin(cdf[i], GOLDEN_TOL.cdf, { what: `Φ̃(${x}) (approx_standard_normal_cdf[${i}])` }));
    let compared = 0;
    let exactWorst = 0;
    for (const r of goldenLogProbs()) {
      const bound = dgllBound(r.x, r.mean, r.logScale);
      if (bound === null) continue; // saturated: the float32 reference may have clamped (GOLDEN_TOL.dgllMask)
      compared++;
      const tol = override({ rtol: 0, atol: bound }, GOLDEN_TOL.dgll.reason!);
      expect(discretizedGaussianLogLikelihoodTanh(r.x, r.mean, r.logScale)).toBeCloseWithin(r.expected, tol, { what: `log P̃ at ${r.where} (x = ${r.x}, mean ${r.mean}, log_scale ${r.logScale})` });
      exactWorst = Math.max(exactWorst, Math.abs(discretizedGaussianLogLikelihood(r.x, r.mean, r.logScale) - r.expected));
    }
    expect(compared).toBeGreaterThan(3000);
    // The edge case x = float32(0.999) takes the middle branch, as the code's float32 comparison does.
    expect(DECODER_EDGE_FLOAT32).toBe(0.9990000128746033);
    // The exact Φ differs from the public code by up to 0.4 nats on the same elements (why two conventions exist).
    expect(exactWorst, 'the exact-Φ convention is as far from the golden values as measured (0.399 nats)').toBeGreaterThan(0.39);
  });

  it('both conventions are named, and the decoder term takes either: L_0 = −Σ log P under the chosen CDF  [ddpm.decoder.conventionsNamed]', () => {
    expect([...DecoderConvention.options]).toEqual(['exactPhi', 'tanhFloored']);
    expect(decoderLogLikelihood('exactPhi')).toBe(discretizedGaussianLogLikelihood);
    expect(decoderLogLikelihood('tanhFloored')).toBe(discretizedGaussianLogLikelihoodTanh);
    expect(() => decoderLogLikelihood('tanh' as DecoderConvention)).toThrow(/^decoderLogLikelihood: convention must be one of exactPhi, tanhFloored, got "tanh"$/);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }).chain((D) =>
          fc.tuple(fc.array(fc.integer({ min: 0, max: 255 }), { minLength: D, maxLength: D }), fc.array(fc.double({ min: -1.5, max: 1.5, noNaN: true }), { minLength: D, maxLength: D })),
        ),
        fc.double({ min: -12, max: 2, noNaN: true }),
        ([levels, means], logVar) => {
          const x0 = levels.map(pixelLevel);
          for (const c of DecoderConvention.options) {
            const f = decoderLogLikelihood(c);
            const expected = -x0.reduce((a, x, i) => a + f(x, means[i], 0.5 * logVar), 0);
            expect(discreteDecoderNll(x0, means, Math.exp(logVar), c)).toBeCloseWithin(expected, override({ rtol: 1e-14, atol: 0 }, 'the same sum; log of exp(log σ²) differs by an ulp'), { what: `L_0 (${c})` });
          }
          expect(discreteDecoderNll(x0, means, Math.exp(logVar))).toBe(discreteDecoderNll(x0, means, Math.exp(logVar), 'exactPhi'));
        },
      ),
      { numRuns: 100 },
    );
  });
});
