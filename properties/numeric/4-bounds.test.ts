import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { alphaBarRelErr, bufferErrors, dgllBound, LOG_CLAMP_P, TANH_CDF_MAX_ERR, UNIT_ROUNDOFF } from '../../src/numeric/bounds.ts';
import { BUFFER_NAMES, type BufferName } from '../../src/conformance/ops.ts';
import { normalCdf } from '../../spec/gaussian/normal1d.ts';
import { cosineBetas, improvedLinearBetas } from '../../spec/ddpm/schedule.ts';
import { buffersThroughLogs, exactPhiLogLikelihood, tanhLogLikelihood } from '../golden/precisionImpls.ts';

/** A pixel level k/127.5 − 1 in float32, as the reference's inputs are. */
const level = fc.integer({ min: 0, max: 255 }).map((k) => Math.fround(k / 127.5 - 1));
/**
 * log σ in [−7, 1]: below −7 every bin but one is deep in the tail (saturated), above 1 the bins are flat (no
 * conditioning left to test); the mean within a few σ of the pixel (|z| ≤ 6) or anywhere in [−1.2, 1.2].
 */
const element = fc
  .record({ x: level, logScale: fc.double({ min: -7, max: 1, noNaN: true }), z: fc.double({ min: -6, max: 6, noNaN: true }), far: fc.double({ min: -1.2, max: 1.2, noNaN: true }), useFar: fc.boolean() })
  .map(({ x, logScale, z, far, useFar }) => ({ x, logScale: Math.fround(logScale), mean: Math.fround(useFar ? far : x - z * Math.exp(logScale)) }));

/** A float32 tanh computed from exp, as some GPU kernels do (other last bits than a correctly rounded tanh). */
function tanhFromExp32(y: number): number {
  const f = Math.fround;
  const e = f(Math.exp(f(-2 * Math.abs(y))));
  const t = f(f(1 - e) / f(1 + e));
  return y < 0 ? -t : t;
}

function likelihood32(x: number, mean: number, logScale: number, tanh: (y: number) => number): number {
  return tanhLogLikelihood(x, mean, logScale, Math.fround, tanh);
}

describe('0.4 Derived error bounds: condition number × unit roundoff, plus a floor', () => {
  it('the tanh approximation of Φ is within TANH_CDF_MAX_ERR = 1.8e−4 of Φ everywhere, and reaches 99 % of it  [numeric.bounds.tanhCdfMaxErr]', () => {
    let worst = 0;
    for (let z = -12; z <= 12; z += 1e-3) {
      const approx = 0.5 * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (z + 0.044715 * z ** 3)));
      worst = Math.max(worst, Math.abs(approx - normalCdf(z, 0, 1)));
    }
    expect(worst).toBeLessThanOrEqual(TANH_CDF_MAX_ERR);
    expect(worst).toBeGreaterThan(0.99 * TANH_CDF_MAX_ERR);
  });

  it('a float32 likelihood (either tanh) and a float64 one differ by at most the bound wherever it is not saturated  [numeric.bounds.dgllCoversFloat32]', () =>
    fc.assert(
      fc.property(element, ({ x, mean, logScale }) => {
        const b = dgllBound({ x, mean, logScale }, 'float32', 'float64');
        if (b.saturated) return;
        const exact = tanhLogLikelihood(x, mean, logScale);
        for (const tanh of [(y: number) => Math.fround(Math.tanh(y)), tanhFromExp32]) {
          const d = Math.abs(likelihood32(x, mean, logScale, tanh) - exact);
          expect(d, `x ${x}, mean ${mean}, log σ ${logScale}: |Δ| ${d} > bound ${b.bound}`).toBeLessThanOrEqual(b.bound);
        }
      }),
      { numRuns: 2000 },
    ));

  it('the float32 clamp disagrees with the float64 value only where the bound says saturated  [numeric.bounds.dgllSaturatedWhereClamped]', () => {
    let clampsSeen = 0;
    for (const logScale of [-7, -5, -3, -1]) {
      for (const mean of [-1, -0.3, 0.5]) {
        for (let k = 0; k < 256; k++) {
          const x = Math.fround(k / 127.5 - 1);
          const f32 = likelihood32(x, mean, logScale, (y) => Math.fround(Math.tanh(y)));
          const f64 = tanhLogLikelihood(x, mean, logScale);
          if (f32 === Math.fround(Math.log(Math.fround(LOG_CLAMP_P))) && f64 > -27) {
            clampsSeen++;
            expect(dgllBound({ x, mean, logScale }, 'float32', 'float64').saturated, `x ${x}, mean ${mean}, log σ ${logScale}`).toBe(true);
          }
        }
      }
    }
    expect(clampsSeen, 'clamped float32 values with a resolvable float64 value').toBeGreaterThan(10);
  });

  it('is tight: among the worst-conditioned elements the float32 error reaches an eighth of the bound  [numeric.bounds.dgllTight]', () => {
    let bestRatio = 0;
    for (const logScale of [-4, -3, -2, -1]) {
      for (const mean of [-1, -0.5, 0, 0.37, 1]) {
        for (let k = 0; k < 256; k++) {
          const x = Math.fround(k / 127.5 - 1);
          const b = dgllBound({ x, mean, logScale }, 'float32', 'float64');
          if (b.saturated || b.bound < 1e-3) continue; // the worst-conditioned elements: bound ≥ 1e−3 nats
          const d = Math.abs(likelihood32(x, mean, logScale, (y) => Math.fround(Math.tanh(y))) - tanhLogLikelihood(x, mean, logScale));
          bestRatio = Math.max(bestRatio, d / b.bound);
        }
      }
    }
    expect(bestRatio, 'largest |Δ|/bound among the worst-conditioned elements').toBeGreaterThan(1 / 8);
    expect(bestRatio).toBeLessThanOrEqual(1);
  });

  it('the exact-Φ convention is covered by adding 1.8e−4 per CDF value, and is not covered without it  [numeric.bounds.dgllExactPhi]', () => {
    let uncovered = 0;
    for (const logScale of [-4, -2, -1, 0]) {
      for (const mean of [-1, 0, 0.5]) {
        for (let k = 0; k < 256; k++) {
          const x = Math.fround(k / 127.5 - 1);
          const withModel = dgllBound({ x, mean, logScale }, 'float32', 'float64', { implCdf: 'exact' });
          const d = Math.abs(exactPhiLogLikelihood(x, mean, logScale) - tanhLogLikelihood(x, mean, logScale));
          if (!withModel.saturated) expect(d, `x ${x}, mean ${mean}, log σ ${logScale}`).toBeLessThanOrEqual(withModel.bound);
          const plain = dgllBound({ x, mean, logScale }, 'float32', 'float64');
          if (!plain.saturated && d > plain.bound) uncovered++;
        }
      }
    }
    expect(uncovered, 'elements where the rounding bound alone does not cover the exact Φ').toBeGreaterThan(100);
  });

  it('ᾱ through exp Σ log α and ᾱ as a running product agree with each other within the float64 bounds of every buffer  [numeric.bounds.buffersCoverFloat64]', () => {
    for (const betas of [improvedLinearBetas(1000), cosineBetas(1000), cosineBetas(20)]) {
      const b = Float64Array.from(betas);
      const logs = buffersThroughLogs(b);
      let p = 1;
      const prod = Float64Array.from(b, (beta) => (p *= 1 - beta));
      for (const name of BUFFER_NAMES) {
        // Both sides float64: the bound is the sum of two float64 bounds.
        const bound = bufferErrors(name, { betas: b, alphas_cumprod: prod }, UNIT_ROUNDOFF.float64)!.map((v) => 2 * v);
        const fromProd = downstream(name, b, prod);
        for (let t = 0; t < b.length; t++) {
          const d = Math.abs(logs[name].data[t] - fromProd[t]);
          expect(d, `${name}[${t}] of T = ${b.length}`).toBeLessThanOrEqual(bound[t]);
        }
      }
    }
  });

  it('the posterior coefficient at t = 0 carries the ᾱ₀/(1 − ᾱ₀) amplification: two ulps of ᾱ miss rtol 1e−12 there but pass the bound; a float32 ᾱ fails it by far  [numeric.bounds.buffersConditioning]', () => {
    const b = Float64Array.from(improvedLinearBetas(1000));
    let p = 1;
    const prod = Float64Array.from(b, (beta) => (p *= 1 - beta));
    const ref = downstream('posterior_mean_coef1', b, prod)[0];
    // Another float64 computation of ᾱ (logs, another summation order) may differ by a couple of ulps.
    const twoUlps = downstream('posterior_mean_coef1', b, prod.map((v) => v * (1 + 2 * UNIT_ROUNDOFF.float64)))[0];
    const bound = 2 * bufferErrors('posterior_mean_coef1', { betas: b, alphas_cumprod: prod }, UNIT_ROUNDOFF.float64)![0];
    expect(Math.abs(twoUlps - ref) / Math.abs(ref), 'relative error: beyond the old rtol 1e−12').toBeGreaterThan(1e-12);
    expect(Math.abs(twoUlps - ref)).toBeLessThanOrEqual(bound);
    let p32 = 1;
    const prod32 = Float64Array.from(b, (beta) => (p32 = Math.fround(p32 * Math.fround(1 - beta))));
    expect(Math.abs(downstream('posterior_mean_coef1', b, prod32)[0] - ref)).toBeGreaterThan(4 * bound);
    expect(alphaBarRelErr(-1, 1, UNIT_ROUNDOFF.float64), 'ᾱ before the first step is exactly 1').toBe(0);
  });
});

/** One buffer from betas and a given ᾱ (float64), by the reference's formulas. */
function downstream(name: BufferName, b: Float64Array, ab: Float64Array): Float64Array {
  const T = b.length;
  const a = (t: number) => (t < 0 ? 1 : t >= T ? 0 : ab[t]);
  const pv = (t: number) => (b[t] * (1 - a(t - 1))) / (1 - a(t));
  const f: Record<BufferName, (t: number) => number> = {
    betas: (t) => b[t],
    alphas_cumprod: (t) => a(t),
    alphas_cumprod_prev: (t) => a(t - 1),
    alphas_cumprod_next: (t) => a(t + 1),
    sqrt_alphas_cumprod: (t) => Math.sqrt(a(t)),
    sqrt_one_minus_alphas_cumprod: (t) => Math.sqrt(1 - a(t)),
    log_one_minus_alphas_cumprod: (t) => Math.log(1 - a(t)),
    sqrt_recip_alphas_cumprod: (t) => Math.sqrt(1 / a(t)),
    sqrt_recipm1_alphas_cumprod: (t) => Math.sqrt(1 / a(t) - 1),
    posterior_variance: pv,
    posterior_log_variance_clipped: (t) => Math.log(t === 0 && T > 1 ? pv(1) : pv(t)),
    posterior_mean_coef1: (t) => (b[t] * Math.sqrt(a(t - 1))) / (1 - a(t)),
    posterior_mean_coef2: (t) => ((1 - a(t - 1)) * Math.sqrt(1 - b[t])) / (1 - a(t)),
  };
  return Float64Array.from({ length: T }, (_, t) => f[name](t));
}
