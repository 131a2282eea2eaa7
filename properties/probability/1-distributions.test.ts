import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { z } from 'zod';
import { Rng } from '../../src/numeric/rng.ts';
import { mcAgrees } from '../../src/numeric/stats.ts';
import { TOL, override } from '../../src/numeric/tolerance.ts';
import { gaussianDensity } from '../../spec/gaussian/index.ts';
import {
  expectation1d,
  expectation2d,
  gaussLegendre,
  importanceIntegral,
  integrate1d,
  integrate2d,
  logSumExp,
  marginalLogDensity2d,
  conditionalLogDensity2d,
  monteCarloExpectation,
  type Density,
} from '../../spec/probability/density.ts';
import {
  TabularDistribution,
  allAssignments,
  factorFromFunction,
  normalise,
  tabularCondition,
  tabularExpectation,
  tabularMarginal,
  tableValue,
  type Assignment,
} from '../../spec/probability/table.ts';
import { argError, parseArg } from '../../spec/probability/validate.ts';
import { assertIntegratesToOne1d, assertIntegratesToOne2d, assertIsDistribution } from '../laws/probability.ts';
import { gaussianCase, real, type GaussianCase } from '../gaussian/arbitraries.ts';
import { table, variables, weights } from './arbitraries.ts';
import { mixtureArb, mixtureBox } from './densities.ts';

/** Bounded test functions of an assignment or a point: coefficients in [−3, 3]. */
const coef = real(-3, 3);

/** A function of an assignment: a random table of values in [−3, 3] indexed by the assignment. */
function assignmentFunction(): fc.Arbitrary<(a: Assignment) => number> {
  return fc.array(coef, { minLength: 64, maxLength: 64 }).map((vals) => (a: Assignment) => {
    let k = 0;
    for (const name of Object.keys(a).sort()) k = k * 4 + a[name];
    return vals[k % 64];
  });
}

/** A smooth function of a point: c₀ + c·x + sin(c'·x), bounded growth so that quadrature and Monte Carlo converge. */
function pointFunction(dim: number): fc.Arbitrary<(x: readonly number[]) => number> {
  return fc.array(coef, { minLength: 2 * dim + 1, maxLength: 2 * dim + 1 }).map((c) => (x: readonly number[]) => {
    let lin = c[0];
    let arg = 0;
    for (let i = 0; i < dim; i++) {
      lin += c[1 + i] * x[i];
      arg += c[1 + dim + i] * x[i];
    }
    return lin + Math.sin(arg);
  });
}

/** Quadrature for the mixtures on their box (≤ 60 wide, narrowest cross-section ≥ 0.7): 40 panels × 10 points. */
const QUAD = { panels: 40, order: 10 };
const QUAD_TOL = override({ rtol: 1e-9, atol: 1e-9 }, 'composite Gauss–Legendre, 40 panels × 10 points on a ±10σ box, cross-sections ≥ 0.7 wide');

/** The proposal N(μ, 2Σ) built from the eigen-decomposition only (independent of the spec's Gaussian code). */
function widenedProposal(c: GaussianCase): Density {
  const D = c.dim;
  const lam = c.lambda.map((l) => 2 * l);
  const logNorm = -0.5 * D * Math.log(2 * Math.PI) - 0.5 * lam.reduce((a, l) => a + Math.log(l), 0);
  return {
    dim: D,
    logPdf: (x) => {
      let q = 0;
      for (let k = 0; k < D; k++) {
        let p = 0;
        for (let i = 0; i < D; i++) p += c.Q[i][k] * (x[i] - c.g.mean[i]);
        q += (p * p) / lam[k];
      }
      return logNorm - 0.5 * q;
    },
    sample: (rng) => {
      const z = rng.normals(D);
      return c.g.mean.map((m, i) => m + c.Q[i].reduce((a, qik, k) => a + qik * Math.sqrt(lam[k]) * z[k], 0));
    },
  };
}

describe('1.1 Distributions and expectation', () => {
  it('argument errors name the function, the argument with its path and the violated condition  [probability.validate.namesArgument]', () => {
    const S = z.object({ p: z.array(z.number().nonnegative()) });
    expect(parseArg('f', 'arg', S, { p: [1, 2] })).toEqual({ p: [1, 2] });
    expect(() => parseArg('f', 'arg', S, { p: [1, -2] })).toThrow(/^f: arg\.p\[1\]: .*>=0/);
    expect(() => parseArg('f', 'arg', S, { p: [Number.NaN] })).toThrow(/^f: arg\.p\[0\]: .*NaN/);
    expect(() => argError('f', 'x and y must have the same length')).toThrow(new RangeError('f: x and y must have the same length'));
  });

  it('a table with repeated names, the wrong number of entries, negative or NaN entries, or a bad assignment is rejected  [probability.table.rejectsBadInput]', () => {
    const a = { name: 'a', size: 2 };
    const b = { name: 'b', size: 3 };
    const p = { variables: [a, b], values: new Array(6).fill(1 / 6) };
    expect(TabularDistribution.safeParse(p).success).toBe(true);
    expect(() => tabularExpectation({ variables: [a, a], values: [0.25, 0.25, 0.25, 0.25] }, () => 1)).toThrow('tabularExpectation: p.variables: variable names must be unique, "a" appears twice');
    expect(() => tabularExpectation({ variables: [a, b], values: [0.5, 0.5] }, () => 1)).toThrow('tabularExpectation: p.values: must have 6 entries (the product of the variable sizes), got 2');
    expect(() => normalise({ variables: [a], values: [1, -1] })).toThrow(/^normalise: f\.values\[1\]: .*>=0/);
    expect(() => normalise({ variables: [a], values: [1, Number.NaN] })).toThrow(/^normalise: f\.values\[1\]: .*NaN/);
    expect(() => normalise({ variables: [{ name: 'a', size: 0 }], values: [] })).toThrow(/^normalise: f\.variables\[0\]\.size: /);
    expect(() => tableValue(p, { a: 0 })).toThrow('tableValue: a must give a value to every variable, "b" is missing');
    expect(() => tableValue(p, { a: 0, b: 3 })).toThrow('tableValue: a.b must be an integer in [0, 3), got 3');
    expect(() => tableValue(p, { a: 0, b: 0, c: 0 })).toThrow('tableValue: a names "c", which is not a variable of the table (a, b)');
    expect(() => tabularMarginal(p, ['a', 'a'])).toThrow('tabularMarginal: keep must not repeat a name, "a" appears twice');
    expect(() => tabularCondition({ variables: [a, b], values: [0.5, 0.5, 0, 0, 0, 0] }, { b: 2 })).toThrow(/^tabularCondition: evidence \{"b":2\} has probability 0 under p/);
  });

  it('a table whose probabilities do not sum to 1 is rejected, saying what they sum to  [probability.table.rejectsUnnormalised]', () =>
    fc.assert(
      fc.property(table(), real(1e-6, 0.5), (p, d) => {
        const off = { variables: p.variables, values: p.values.map((v, i) => (i === 0 ? v + d : v)) };
        expect(() => tabularExpectation(off, () => 1)).toThrow(/^tabularExpectation: p\.values: probabilities must sum to 1 \(within 1e-9\), got 1\.\d+/);
        const rounding = { variables: p.variables, values: p.values.map((v, i) => (i === 0 ? v + 1e-12 : v)) };
        expect(TabularDistribution.safeParse(rounding).success).toBe(true);
      }),
    ));

  it('assignments enumerate the table in storage order (last variable fastest), and tableValue reads them back  [probability.table.assignmentsEnumerate]', () =>
    fc.assert(
      fc.property(table(), (p) => {
        const as = allAssignments(p.variables);
        expect(as.length).toBe(p.values.length);
        expect(new Set(as.map((a) => JSON.stringify(a))).size).toBe(as.length);
        as.forEach((a, k) => expect(tableValue(p, a)).toBe(p.values[k]));
        const last = p.variables[p.variables.length - 1].name;
        if (as.length > 1) expect(as[1][last]).toBe(1);
        expect(factorFromFunction(p.variables, (a) => tableValue(p, a)).values).toEqual(p.values);
        expect(allAssignments([])).toEqual([{}]);
      }),
    ));

  it('normalising a non-negative table gives a distribution proportional to it; a zero table is rejected  [probability.table.normaliseIsDistribution]', () =>
    fc.assert(
      fc.property(variables().chain((vs) => fc.tuple(fc.constant(vs), weights(vs.reduce((a, v) => a * v.size, 1), true))), real(1e-3, 1e3), ([vs, w], s) => {
        const f = { variables: vs, values: w.map((v) => v * s) };
        const p = normalise(f);
        assertIsDistribution(p.values, override({ rtol: 0, atol: 1e-14 }, 'a sum of ≤ 64 terms that are each rounded once'), 'normalise(f)');
        const k = p.values.findIndex((v) => v > 0);
        p.values.forEach((v, i) => expect(v * f.values[k]).toBeCloseWithin(f.values[i] * p.values[k], override({ rtol: 1e-14, atol: 0 }, 'two roundings per side')));
        expect(() => normalise({ variables: vs, values: w.map(() => 0) })).toThrow('normalise: f must have a positive total to be normalised, got 0');
      }),
    ));

  it('Gauss–Legendre with n points is exact for polynomials of degree ≤ 2n − 1, composite and in 2-D  [probability.quadrature.exactForPolynomials]', () =>
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.nat(), real(-3, 3), real(0.1, 4), (n, kk, lo, w) => {
        const k = kk % (2 * n);
        const { nodes, weights: ws } = gaussLegendre(n);
        const exact = (1 - (-1) ** (k + 1)) / (k + 1);
        const tol = override({ rtol: 1e-13, atol: 1e-13 }, 'nodes from Newton iteration to 1e−16; sums of ≤ 20 terms');
        expect(nodes.reduce((a, t, i) => a + ws[i] * t ** k, 0)).toBeCloseWithin(exact, tol);
        const hi = lo + w;
        const F = (x: number) => x ** (k + 1) / (k + 1);
        expect(integrate1d((x) => x ** k, lo, hi, { panels: 3, order: n })).toBeCloseWithin(F(hi) - F(lo), override({ rtol: 1e-12, atol: 1e-12 * (1 + Math.abs(F(hi)) + Math.abs(F(lo))) }, 'cancellation in F(hi) − F(lo) for |x| ≤ 7, degree ≤ 39'));
        const j = (kk >> 5) % (2 * n);
        const G = (x: number) => x ** (j + 1) / (j + 1);
        const exact2 = (F(hi) - F(lo)) * (G(hi) - G(lo));
        expect(integrate2d((x, y) => x ** k * y ** j, [lo, hi], [lo, hi], { panels: 2, order: n })).toBeCloseWithin(exact2, override({ rtol: 1e-11, atol: 1e-11 * (1 + Math.abs(exact2)) }, 'products of two cancelling differences'));
      }),
    ));

  it('the Gauss–Legendre rule is symmetric: nodes −t_i = t_{n−1−i} increasing in (−1, 1), equal weights in pairs summing to 2, and the node of an odd rule at 0 exactly (P_n is odd)  [probability.quadrature.nodesSymmetric]', () => {
    // Exact equalities (atol 0) by construction: every n of the domain, 1 ≤ n ≤ 200.
    for (let n = 1; n <= 200; n++) {
      const { nodes, weights: ws } = gaussLegendre(n);
      nodes.forEach((t, i) => {
        expect(nodes[n - 1 - i], `n = ${n}: t_${n - 1 - i} vs −t_${i}`).toBe(-t === 0 ? 0 : -t);
        expect(ws[n - 1 - i], `n = ${n}: w_${n - 1 - i} vs w_${i}`).toBe(ws[i]);
        expect(ws[i], `n = ${n}: w_${i}`).toBeGreaterThan(0);
        if (i > 0) expect(t, `n = ${n}: t_${i} vs t_${i - 1}`).toBeGreaterThan(nodes[i - 1]);
      });
      expect(Math.abs(nodes[0]), `n = ${n}: |t_0|`).toBeLessThan(1);
      if (n % 2 === 1) expect(nodes[(n - 1) / 2], `n = ${n}: the middle node`).toBe(0);
      expect(ws.reduce((a, w) => a + w, 0)).toBeCloseWithin(2, override({ rtol: 1e-13, atol: 0 }, 'a sum of ≤ 200 positive weights'));
    }
  });

  it('densities integrate to 1: a Gaussian mixture in 1-D and 2-D by quadrature  [probability.density.integratesToOne]', () =>
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 }).chain((d) => mixtureArb(d)), (m) => {
        if (m.dim === 1) assertIntegratesToOne1d((x) => m.logPdf([x]), ...mixtureBox(m, 0), QUAD_TOL, 'mixture', QUAD);
        else assertIntegratesToOne2d((x, y) => m.logPdf([x, y]), mixtureBox(m, 0), mixtureBox(m, 1), QUAD_TOL, 'mixture', QUAD);
      }),
      { numRuns: 10 },
    ));

  // 30 runs at α = 1e−6 each: false-failure rate ≤ 3e−5 per seed.
  it('densities integrate to 1 in D dimensions: importance sampling from N(μ, 2Σ) (n = 2000, α = 1e−6), κ up to 1e8  [probability.density.integratesToOneDd]', () =>
    fc.assert(
      fc.property(gaussianCase(), fc.integer(), (c, seed) => {
        const d = gaussianDensity(c.g);
        const r = importanceIntegral((x) => d.logPdf(x), widenedProposal(c), 2000, new Rng(seed));
        expect(mcAgrees(r.values, 1, { alpha: 1e-6, floor: 1e-12 })).toPassMonteCarlo(`∫ N(x | μ, Σ) dx, D = ${c.dim}, κ = ${c.cond.toExponential(1)}`);
      }),
      { numRuns: 30 },
    ));

  // 30 runs × 2 Monte Carlo checks at α = 1e−6: false-failure rate ≤ 6e−5 per seed.
  it('expectations equal closed forms: a table by its own enumeration; E[x], E[x²], E[cos cx] of a Gaussian mixture by quadrature and Monte Carlo (n = 4000, α = 1e−6)  [probability.expectation.eqClosedForm]', () =>
    fc.assert(
      fc.property(table(), assignmentFunction(), mixtureArb(1), real(-2, 2), fc.integer(), (p, f, m, c, seed) => {
        // Table: walk the flat values row-major (last variable fastest) and decode each index by hand.
        let direct = 0;
        p.values.forEach((v, flat) => {
          const a: Record<string, number> = {};
          let rest = flat;
          for (let i = p.variables.length - 1; i >= 0; i--) {
            a[p.variables[i].name] = rest % p.variables[i].size;
            rest = Math.floor(rest / p.variables[i].size);
          }
          direct += v * f(a);
        });
        expect(tabularExpectation(p, f)).toBeCloseWithin(direct, override({ rtol: 1e-12, atol: 1e-14 }, 'the same ≤ 64 products summed in another order'));
        // Mixture Σ w_k N(m_k, v_k): E[x] = Σ w m, E[x²] = Σ w (v + m²), E[cos cx] = Σ w e^{−c²v/2} cos(c m).
        const w = m.weights;
        const mk = m.components.map((g) => g.mean[0]);
        const vk = m.components.map((g) => g.cov[0][0]);
        const closed = {
          x: w.reduce((a, wk, k) => a + wk * mk[k], 0),
          x2: w.reduce((a, wk, k) => a + wk * (vk[k] + mk[k] ** 2), 0),
          cos: w.reduce((a, wk, k) => a + wk * Math.exp((-c * c * vk[k]) / 2) * Math.cos(c * mk[k]), 0),
        };
        const [lo, hi] = mixtureBox(m, 0);
        const E = (h: (x: number) => number) => expectation1d((x) => m.logPdf([x]), h, lo, hi, QUAD);
        expect(E((x) => x)).toBeCloseWithin(closed.x, QUAD_TOL, { what: 'E[x]' });
        expect(E((x) => x * x)).toBeCloseWithin(closed.x2, override({ rtol: 1e-9, atol: 1e-8 }, 'composite Gauss–Legendre on x² over a ±10σ box (values up to 225)'), { what: 'E[x²]' });
        expect(E((x) => Math.cos(c * x))).toBeCloseWithin(closed.cos, QUAD_TOL, { what: 'E[cos cx]' });
        const rng = new Rng(seed);
        const mcX = monteCarloExpectation((r) => m.sample(r), (x) => x[0], 4000, rng.split());
        expect(mcAgrees(mcX.values, closed.x, { alpha: 1e-6, floor: 1e-9 })).toPassMonteCarlo('E[x]');
        const mcCos = monteCarloExpectation((r) => m.sample(r), (x) => Math.cos(c * x[0]), 4000, rng.split());
        expect(mcAgrees(mcCos.values, closed.cos, { alpha: 1e-6, floor: 1e-9 })).toPassMonteCarlo('E[cos cx]');
      }),
      { numRuns: 30 },
    ));

  it('the law of total expectation E[f] = E_y[E[f | y]] holds for tables and for 2-D densities (nested quadrature)  [probability.expectation.totalExpectation]', () =>
    fc.assert(
      fc.property(table({ minVars: 2, maxVars: 3 }), assignmentFunction(), mixtureArb(2), pointFunction(2), (p, f, m, u) => {
        const y = p.variables[p.variables.length - 1].name;
        const py = tabularMarginal(p, [y]);
        const inner = allAssignments(py.variables).map((ay, k) => py.values[k] * tabularExpectation(tabularCondition(p, ay), (a) => f({ ...a, ...ay })));
        expect(inner.reduce((s, v) => s + v, 0)).toBeCloseWithin(tabularExpectation(p, f), override({ rtol: 1e-13, atol: 1e-13 }, 'sums of ≤ 64 terms in two orders'), { what: 'tables' });
        const bx = mixtureBox(m, 0);
        const by = mixtureBox(m, 1);
        const Q2 = { panels: 16, order: 10 };
        const logJ = (x: number, yy: number) => m.logPdf([x, yy]);
        const lm = marginalLogDensity2d(logJ, 1, bx, Q2);
        const lc = conditionalLogDensity2d(logJ, bx, Q2);
        const nested = integrate1d((yy) => Math.exp(lm(yy)) * expectation1d((x) => lc(x, yy), (x) => u([x, yy]), bx[0], bx[1], Q2), by[0], by[1], Q2);
        const direct = expectation2d(logJ, (x, yy) => u([x, yy]), bx, by, Q2);
        expect(nested).toBeCloseWithin(direct, override({ rtol: 1e-8, atol: 1e-8 }, 'the same tensor-product rule, nested through log p(y) and back: 16 panels × 10 points'), { what: 'densities' });
      }),
      { numRuns: 10 },
    ));

  // 20 runs × 2 checks at α = 1e−6: false-failure rate ≤ 4e−5 per seed.
  it('quadrature and Monte Carlo expectations agree (n = 4000, α = 1e−6 per check) in 1-D and 2-D  [probability.expectation.quadratureEqMonteCarlo]', () =>
    fc.assert(
      fc.property(mixtureArb(1), mixtureArb(2), pointFunction(1), pointFunction(2), fc.integer(), (m1, m2, u1, u2, seed) => {
        const rng = new Rng(seed);
        const mc1 = monteCarloExpectation((r) => m1.sample(r), u1, 4000, rng.split());
        const q1 = expectation1d((x) => m1.logPdf([x]), (x) => u1([x]), ...mixtureBox(m1, 0), QUAD);
        expect(mcAgrees(mc1.values, q1, { alpha: 1e-6, floor: 1e-9 })).toPassMonteCarlo('1-D mixture: E[f]');
        const mc2 = monteCarloExpectation((r) => m2.sample(r), u2, 4000, rng.split());
        const q2 = expectation2d((x, y) => m2.logPdf([x, y]), (x, y) => u2([x, y]), mixtureBox(m2, 0), mixtureBox(m2, 1), { panels: 24, order: 10 });
        expect(mcAgrees(mc2.values, q2, { alpha: 1e-6, floor: 1e-9 })).toPassMonteCarlo('2-D mixture: E[f]');
        expect(mc1.se).toBeCloseWithin(Math.sqrt(variance(mc1.values) / 4000), TOL.float64);
      }),
      { numRuns: 20 },
    ));

  it('log-sum-exp equals the naive log Σ exp where that is finite, and is exact under shifts where it overflows  [probability.logSumExp.eqNaive]', () =>
    fc.assert(
      fc.property(fc.array(real(-50, 50), { minLength: 1, maxLength: 10 }), real(-1e4, 1e4), (a, c) => {
        const naive = Math.log(a.reduce((s, v) => s + Math.exp(v), 0));
        expect(logSumExp(a)).toBeCloseWithin(naive, override({ rtol: 1e-14, atol: 1e-14 }, 'a few roundings'));
        expect(logSumExp(a.map((v) => v + c))).toBeCloseWithin(logSumExp(a) + c, override({ rtol: 1e-14, atol: 1e-12 }, 'the shift c ≤ 1e4 is added once'));
        expect(logSumExp([...a, -Infinity])).toBe(logSumExp(a));
        expect(logSumExp([])).toBe(-Infinity);
        expect(() => logSumExp([0, Number.NaN])).toThrow('logSumExp: a must not contain NaN');
      }),
    ));
});

function variance(xs: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < xs.length; i++) m += xs[i];
  m /= xs.length;
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += (xs[i] - m) ** 2;
  return s / (xs.length - 1);
}

