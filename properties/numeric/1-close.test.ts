import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { allClose, closeRatio, isClose } from '../../src/numeric/close.ts';
import { closeMatchers } from '../../src/numeric/matchers.ts';
import { TOL, Tolerance, override, scaled } from '../../src/numeric/tolerance.ts';

/** Finite doubles of moderate size: |x| ≤ 1e6 so that atol and rtol parts are both exercised. */
const finite = fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true });
const tol = fc.record({ rtol: fc.double({ min: 0, max: 0.5, noNaN: true }), atol: fc.double({ min: 0, max: 1, noNaN: true }) });

describe('0.1 Tolerances and closeness: |a − e| ≤ atol + rtol·|e|', () => {
  it('every number is close to itself under any tolerance  [numeric.isClose.reflexive]', () =>
    fc.assert(fc.property(finite, tol, (x, t) => isClose(x, x, t).ok)));

  it('is symmetric when rtol = 0  [numeric.isClose.symmetricAbsolute]', () =>
    fc.assert(
      fc.property(finite, finite, fc.double({ min: 0, max: 10, noNaN: true }), (a, b, atol) => {
        const t = { rtol: 0, atol };
        return isClose(a, b, t).ok === isClose(b, a, t).ok;
      }),
    ));

  it('is not symmetric when rtol > 0: the bound is relative to the expected value  [numeric.isClose.asymmetricRelative]', () => {
    const t = { rtol: 0.095, atol: 0 };
    expect(isClose(1, 1.1, t).ok).toBe(true); // 0.1 ≤ 0.095·1.1
    expect(isClose(1.1, 1, t).ok).toBe(false); // 0.1 > 0.095·1
  });

  it('a looser tolerance accepts everything a tighter one accepts  [numeric.isClose.monotone]', () =>
    fc.assert(
      fc.property(finite, finite, tol, fc.double({ min: 1, max: 100, noNaN: true }), (a, b, t, k) =>
        !isClose(a, b, t).ok || isClose(a, b, { rtol: t.rtol * k, atol: t.atol * k }).ok,
      ),
    ));

  it('non-finite values equal only the same non-finite value  [numeric.isClose.nonFinite]', () => {
    const loose = { rtol: 1, atol: 1e308 };
    expect(isClose(Number.NaN, Number.NaN, loose).ok).toBe(true);
    expect(isClose(Infinity, Infinity, loose).ok).toBe(true);
    expect(isClose(-Infinity, -Infinity, loose).ok).toBe(true);
    expect(isClose(Infinity, -Infinity, loose).ok).toBe(false);
    expect(isClose(Infinity, 1e308, loose).ok).toBe(false);
    expect(isClose(1e308, Infinity, loose).ok).toBe(false);
    expect(isClose(Number.NaN, 0, loose).ok).toBe(false);
    expect(isClose(0, Number.NaN, loose).ok).toBe(false);
    expect(isClose(Number.NaN, Infinity, loose).ok).toBe(false);
  });

  it('allClose passes exactly when every element is close, and reports the first element with the largest |Δ|/bound (among failures, if any)  [numeric.allClose.worstElement]', () =>
    fc.assert(
      fc.property(fc.array(fc.tuple(finite, finite), { minLength: 1, maxLength: 30 }), tol, (pairs, t) => {
        const a = pairs.map((p) => p[0]);
        const e = pairs.map((p) => p[1]);
        const r = allClose(a, e, t);
        const each = pairs.map(([x, y]) => isClose(x, y, t));
        expect(r.ok).toBe(each.every((c) => c.ok));
        expect(r.failures).toBe(each.filter((c) => !c.ok).length);
        // The same definition as allClose (closeRatio), so the argmax is exact, not within rounding.
        const ratios = each.map((c) => (c.ok && !r.ok ? -1 : closeRatio(c)));
        expect(r.worst!.index).toBe(ratios.indexOf(Math.max(...ratios)));
        expect(closeRatio(r.worst!)).toBe(Math.max(...ratios));
      }),
    ));

  it('a non-finite mismatch is the worst element even beside a larger finite failure  [numeric.allClose.nonFiniteWorst]', () => {
    const r = allClose([1e300, 1, Number.NaN, 5], [0, 1, 2, Number.POSITIVE_INFINITY], TOL.float64);
    expect([r.failures, r.worst!.index]).toEqual([3, 2]);
  });

  it('allClose refuses arrays of different lengths instead of comparing a prefix  [numeric.allClose.lengthMismatch]', () => {
    const r = allClose([1, 2, 3], [1, 2], TOL.float64);
    expect(r.ok).toBe(false);
    expect(r.shapeError).toMatch(/3 elements.*2/);
  });

  it('the matcher prints |Δ|, the bound, the worst index and the reason  [numeric.matcher.readableMessage]', () => {
    const t = override({ rtol: 1e-3, atol: 1e-6 }, 'a stated reason for this bound');
    const res = closeMatchers.toBeCloseWithin([0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4.1, 5], t, { shape: [2, 3] });
    expect(res.pass).toBe(false);
    const msg = res.message();
    expect(msg).toContain('|Δ| = 0.1');
    expect(msg).toContain('bound 0.0041');
    expect(msg).toContain('[1,1]');
    expect(msg).toContain('a stated reason for this bound');
    expect(closeMatchers.toBeCloseWithin([1, 2], [1, 2], t).pass).toBe(true);
  });

  it('an override without a reason is refused; a scaled tolerance keeps its reason  [numeric.tolerance.reasonRequired]', () => {
    expect(() => override({ rtol: 1, atol: 1 }, '')).toThrow(/reason must be a non-empty sentence/);
    const s = scaled(TOL.float32, 1e4, 'the covariance has condition number 1e4');
    expect(s.rtol).toBeCloseTo(0.1, 12);
    expect(s.reason).toContain('condition number 1e4');
    expect(() => Tolerance.parse({ rtol: -1, atol: 0 })).toThrow();
  });
});
