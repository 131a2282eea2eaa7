import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { override } from '../../src/numeric/tolerance.ts';
import { gaussianConditional, gaussianDensity, gaussianLogPdf, gaussianMarginal, normalLogPdf, normalPosteriorPredictive } from '../../spec/gaussian/index.ts';
import { inverseSpd, matVec, subMatrix } from '../../spec/linalg.ts';
import { conditionalLogDensity2d, integrate1d, marginalLogDensity2d } from '../../spec/probability/density.ts';
import {
  allAssignments,
  bayesRule,
  factorProduct,
  tableValue,
  tabularCondition,
  tabularConditional,
  tabularMarginal,
} from '../../spec/probability/table.ts';
import { assertIsDistribution } from '../laws/probability.ts';
import { gaussianCase, pointNear, real } from '../gaussian/arbitraries.ts';
import { expectGaussiansClose } from '../gaussian/moments.ts';
import { table } from './arbitraries.ts';
import { mixtureArb, mixtureBox } from './densities.ts';

const SUM_TOL = override({ rtol: 0, atol: 1e-14 }, 'sums of ≤ 64 probabilities, each rounded once');
/** Ratios of probabilities ≥ 1e−3 (the arbitraries' floor): a few roundings, relative. */
const RATIO_TOL = override({ rtol: 1e-13, atol: 1e-16 }, 'products and quotients of a few probabilities, a few roundings each');

/** A random split of 0, …, D − 1 into two non-empty ordered blocks a and b. */
function partition(D: number): fc.Arbitrary<[number[], number[]]> {
  return fc
    .shuffledSubarray(Array.from({ length: D }, (_, i) => i), { minLength: D, maxLength: D })
    .chain((perm) => fc.integer({ min: 1, max: D - 1 }).map((k): [number[], number[]] => [perm.slice(0, k), perm.slice(k)]));
}

describe("1.3 Conditioning and Bayes' rule", () => {
  it('conditioning a table on evidence, or forming p(x | y), gives distributions that sum to 1; zero-probability evidence is rejected  [probability.conditional.normalised]', () =>
    fc.assert(
      fc.property(table({ minVars: 2, maxVars: 3 }), fc.nat(), (p, k) => {
        const [x, ...rest] = p.variables;
        const ev = allAssignments(rest)[k % allAssignments(rest).length];
        assertIsDistribution(tabularCondition(p, ev).values, SUM_TOL, 'p(x | evidence)');
        const cond = tabularConditional(p, [x.name], rest.map((v) => v.name));
        for (const g of allAssignments(rest)) {
          const row = allAssignments([x]).map((a) => tableValue(cond, { ...a, ...g }));
          assertIsDistribution(row, SUM_TOL, `p(${x.name} | ${JSON.stringify(g)})`);
        }
        // The same table with the evidence's slice set to 0 (and renormalised): the evidence has probability 0.
        const dead = { variables: p.variables, values: allAssignments(p.variables).map((a, i) => (rest.every((v) => a[v.name] === ev[v.name]) ? 0 : p.values[i])) };
        const s = dead.values.reduce((u, v) => u + v, 0);
        const deadP = { variables: p.variables, values: dead.values.map((v) => v / s) };
        expect(() => tabularCondition(deadP, ev)).toThrow(/^tabularCondition: evidence .* has probability 0 under p; conditioning on it is undefined$/);
        expect(() => tabularConditional(deadP, [x.name], rest.map((v) => v.name))).toThrow(/^tabularConditional: p\(givens\) is 0 at /);
        expect(() => tabularConditional(p, [x.name], [x.name])).toThrow(`tabularConditional: targets and givens must be disjoint, both contain "${x.name}"`);
      }),
      { numRuns: 30 },
    ));

  it('the chain rule p(x, y) = p(x | y) p(y) holds for tables and for 2-D densities  [probability.conditional.chainRule]', () =>
    fc.assert(
      fc.property(table({ minVars: 2, maxVars: 3 }), mixtureArb(2), real(0, 1), real(0, 1), (p, m, u, v) => {
        const names = p.variables.map((w) => w.name);
        const [x, ...ys] = names;
        const cond = tabularConditional(p, [x], ys);
        const prod = factorProduct(cond, tabularMarginal(p, ys));
        const xSize = p.variables[0].size;
        for (const a of allAssignments(p.variables)) {
          // p(x | y) by hand: p(x, y) over Σ_{x'} p(x', y), summed here from the joint's entries.
          let py = 0;
          for (let k = 0; k < xSize; k++) py += tableValue(p, { ...a, [x]: k });
          expect(tableValue(cond, a)).toBeCloseWithin(tableValue(p, a) / py, RATIO_TOL);
          expect(tableValue(prod, a)).toBeCloseWithin(tableValue(p, a), RATIO_TOL);
        }
        const bx = mixtureBox(m, 0);
        const logJ = (s: number, t: number) => m.logPdf([s, t]);
        const Q = { panels: 24, order: 10 };
        // A point inside the box (with u, v ∈ [0, 1]) where the density is not negligible: near a component's mean.
        const c = m.components[Math.floor(u * m.components.length) % m.components.length];
        const px = c.mean[0] + (u - 0.5) * Math.sqrt(c.cov[0][0]);
        const py = c.mean[1] + (v - 0.5) * Math.sqrt(c.cov[1][1]);
        // p(y) by quadrature against its closed form Σ_k w_k N(y; μ_k,y, Σ_k,yy) (an independent route), then
        // p(x | y)·p(y) against the joint. (The conditional itself is checked pointwise in [probability.conditional.densityNormalised].)
        const margY = marginalLogDensity2d(logJ, 1, bx, Q)(py);
        const closedY = Math.log(m.components.reduce((a, g, k) => a + m.weights[k] * Math.exp(gaussianLogPdf(gaussianMarginal(g, [1]), [py])), 0));
        expect(margY).toBeCloseWithin(closedY, override({ rtol: 1e-8, atol: 1e-8 }, 'Gauss–Legendre (24 × 10) over x on a ±10σ box'));
        const chain = conditionalLogDensity2d(logJ, bx, Q)(px, py) + closedY;
        expect(chain).toBeCloseWithin(logJ(px, py), override({ rtol: 1e-8, atol: 1e-8 }, 'the quadrature normaliser of p(x | y) against the closed-form p(y)'));
      }),
      { numRuns: 30 },
    ));

  it("Bayes' rule p(x | y) = p(y | x) p(x) / Σ p(y | x') p(x') equals conditioning the joint on y; an observation of probability 0 is rejected  [probability.conditional.bayes]", () =>
    fc.assert(
      fc.property(table({ minVars: 2, maxVars: 3 }), fc.nat(), (joint, k) => {
        const [x, ...ys] = joint.variables;
        const prior = tabularMarginal(joint, [x.name]);
        const likelihood = tabularConditional(joint, ys.map((v) => v.name), [x.name]);
        const all = allAssignments(ys);
        const y = all[k % all.length];
        const post = bayesRule(prior, likelihood, y);
        expect(post.values).toBeCloseWithin(tabularCondition(joint, y).values, RATIO_TOL);
        const byHand = allAssignments([x]).map((a) => tableValue(likelihood, { ...a, ...y }) * tableValue(prior, a));
        const z = byHand.reduce((s, v) => s + v, 0);
        expect(post.values).toBeCloseWithin(byHand.map((v) => v / z), RATIO_TOL);
        expect(() => bayesRule(prior, tabularMarginal(joint, ys.map((v) => v.name)), y)).toThrow(`bayesRule: likelihood must be a table over the prior's variables too, "${x.name}" is missing`);
        // An observation that every x' explains with probability 0: Σ p(y | x') p(x') = 0, and the rule is undefined.
        const deaf = { variables: likelihood.variables, values: allAssignments(likelihood.variables).map((a, i) => (ys.every((v) => a[v.name] === y[v.name]) ? 0 : likelihood.values[i])) };
        expect(() => bayesRule(prior, deaf, y)).toThrow(`bayesRule: observed ${JSON.stringify(y)} has probability 0 under prior × likelihood`);
      }),
      { numRuns: 50 },
    ));

  it('the posterior predictive of the normal model, N(μ_n, σ² + τ_n²), equals ∫ p(ỹ | θ) p(θ | y₁…y_n) dθ with the posterior formed by quadrature from prior × likelihood, 0–5 observations  [probability.posteriorPredictive.eqQuadrature]', () =>
    fc.assert(
      fc.property(
        // τ₀, σ in [0.3, 3]: the posterior's width τ_n ≥ 0.3/√6 ≈ 0.12 is resolved by 400 panels on the box below.
        real(-3, 3),
        real(Math.log(0.3), Math.log(3)),
        real(Math.log(0.3), Math.log(3)),
        fc.array(real(-3, 3), { maxLength: 5 }),
        fc.array(real(-4, 4), { minLength: 3, maxLength: 3 }),
        (mu0, logTau0, logSigma, ys, news) => {
          const [tau02, s2] = [Math.exp(2 * logTau0), Math.exp(2 * logSigma)];
          const pred = normalPosteriorPredictive({ mean: mu0, variance: tau02 }, s2, ys);
          // The oracle: Bayes' rule and marginalisation done numerically, on a box that covers the prior, the
          // data and ỹ by 10 of the wider of τ₀ and σ (mass outside < e⁻⁵⁰); no closed-form posterior is used.
          const w = 10 * Math.sqrt(Math.max(tau02, s2));
          const lo = Math.min(mu0, ...ys, ...news) - w;
          const hi = Math.max(mu0, ...ys, ...news) + w;
          const quad = { panels: 400, order: 16 };
          const unnorm = (th: number) => Math.exp(normalLogPdf(th, mu0, tau02) + ys.reduce((a, y) => a + normalLogPdf(y, th, s2), 0));
          const Z = integrate1d(unnorm, lo, hi, quad);
          for (const yNew of news) {
            const byQuad = integrate1d((th) => Math.exp(normalLogPdf(yNew, th, s2)) * unnorm(th), lo, hi, quad) / Z;
            expect(normalLogPdf(yNew, pred.mean, pred.variance)).toBeCloseWithin(Math.log(byQuad), override({ rtol: 0, atol: 1e-9 }, 'composite Gauss–Legendre of a smooth integrand to ≈ 1e−12 relative; the log of a ratio of two such integrals'));
          }
        },
      ),
      { numRuns: 40 },
    ));

  it('the conditional density p(x | y) = p(x, y)/p(y) of a 2-D mixture, by quadrature, equals its closed form Σ_k r_k(y) N(x; μ_k(y), σ_k²) pointwise and integrates to 1  [probability.conditional.densityNormalised]', () =>
    fc.assert(
      fc.property(mixtureArb(2), real(0, 1), real(-2.5, 2.5), (m, v, zx) => {
        const bx = mixtureBox(m, 0);
        const c = m.components[0];
        const y = c.mean[1] + (2 * v - 1) * 3 * Math.sqrt(c.cov[1][1]);
        const Q = { panels: 24, order: 10 };
        const lc = conditionalLogDensity2d((s, t) => m.logPdf([s, t]), bx, Q);
        // Closed form: each component conditioned on y (Schur complement), reweighted by its marginal density at y.
        const logr = m.components.map((g, k) => Math.log(m.weights[k]) + gaussianLogPdf(gaussianMarginal(g, [1]), [y]));
        const top = Math.max(...logr);
        const r = logr.map((l) => Math.exp(l - top));
        const z = r.reduce((a, b) => a + b, 0);
        const conds = m.components.map((g) => gaussianConditional(g, [0], [1], [y]));
        const closed = (x: number) => Math.log(conds.reduce((a, g, k) => a + (r[k] / z) * Math.exp(gaussianLogPdf(g, [x])), 0));
        const x = conds[0].mean[0] + zx * Math.sqrt(conds[0].cov[0][0]);
        expect(lc(x, y)).toBeCloseWithin(closed(x), override({ rtol: 1e-8, atol: 1e-8 }, 'Gauss–Legendre (24 × 10) of the normaliser p(y) on a ±10σ box'));
        expect(integrate1d((s) => Math.exp(closed(s)), bx[0], bx[1], Q)).toBeCloseWithin(1, override({ rtol: 1e-9, atol: 1e-9 }, 'the closed form integrated by quadrature'));
      }),
      { numRuns: 20 },
    ));

  it('the Gaussian conditional (Schur complement) satisfies log p(x_a | x_b) = log p(x_a, x_b) − log p(x_b) pointwise, κ up to 1e8  [gaussian.conditional.eqLogJointMinusLogMarginal]', () =>
    fc.assert(
      fc.property(gaussianCase({ minDim: 2, maxDim: 6 }).chain((c) => fc.tuple(fc.constant(c), partition(c.dim), pointNear(c))), ([c, [ia, ib], x]) => {
        const cond = gaussianConditional(c.g, ia, ib, ib.map((i) => x[i]));
        const lhs = gaussianLogPdf(cond, ia.map((i) => x[i]));
        const rhs = gaussianLogPdf(c.g, x) - gaussianLogPdf(gaussianMarginal(c.g, ib), ib.map((i) => x[i]));
        const tol = override({ rtol: 0, atol: 1e-13 * c.dim * c.cond * (1 + Math.abs(lhs)) }, `κ = ${c.cond.toExponential(1)}: the Schur complement and both log-densities carry relative error ≈ κ·ε`);
        expect(lhs).toBeCloseWithin(rhs, tol);
      }),
    ));

  it('the Schur-complement conditional equals the precision form N(μ_a − Λ_aa⁻¹Λ_ab(x_b − μ_b), Λ_aa⁻¹)  [gaussian.conditional.eqPrecisionForm]', () =>
    fc.assert(
      fc.property(gaussianCase({ minDim: 2, maxDim: 6, maxLogCond: 6 }).chain((c) => fc.tuple(fc.constant(c), partition(c.dim), pointNear(c))), ([c, [ia, ib], x]) => {
        const xb = ib.map((i) => x[i]);
        const L = inverseSpd(c.g.cov);
        const Laa = subMatrix(L, ia, ia);
        const Lab = subMatrix(L, ia, ib);
        const S = inverseSpd(Laa);
        const shift = matVec(S, matVec(Lab, xb.map((v, k) => v - c.g.mean[ib[k]])));
        const expected = { mean: ia.map((i, k) => c.g.mean[i] - shift[k]), cov: S };
        const k2 = c.cond * c.cond;
        expectGaussiansClose(
          gaussianConditional(c.g, ia, ib, xb),
          expected,
          override({ rtol: 1e-14 * k2 + 1e-12, atol: 1e-14 * k2 + 1e-12 }, `κ = ${c.cond.toExponential(1)}: the precision form inverts Σ and then Λ_aa, relative error up to κ²·ε`),
          'p(x_a | x_b)',
        );
      }),
    ));

  it('the conditional of a 2-D Gaussian agrees with conditioning the density by quadrature  [gaussian.conditional.eqQuadrature]', () =>
    fc.assert(
      fc.property(gaussianCase({ minDim: 2, maxDim: 2, maxLogCond: 1 }), real(-3, 3), real(-3, 3), (c, zx, zy) => {
        const d = gaussianDensity(c.g);
        const s0 = Math.sqrt(c.g.cov[0][0]);
        const y = c.g.mean[1] + zy * Math.sqrt(c.g.cov[1][1]);
        const cond = gaussianConditional(c.g, [0], [1], [y]);
        const x = cond.mean[0] + zx * Math.sqrt(cond.cov[0][0]);
        const lc = conditionalLogDensity2d((s, t) => d.logPdf([s, t]), [c.g.mean[0] - 10 * s0, c.g.mean[0] + 10 * s0], { panels: 24, order: 10 });
        expect(lc(x, y)).toBeCloseWithin(gaussianLogPdf(cond, [x]), override({ rtol: 1e-9, atol: 1e-9 }, 'Gauss–Legendre (24 × 10) on ±10σ of x, κ ≤ 10'));
      }),
      { numRuns: 30 },
    ));

  it('overlapping index blocks and observations of the wrong length are rejected  [gaussian.conditional.rejectsBadInput]', () => {
    const g = { mean: [0, 0, 0], cov: [[2, 0.5, 0], [0.5, 1, 0], [0, 0, 1]] };
    expect(() => gaussianConditional(g, [0, 1], [1, 2], [0, 0])).toThrow('gaussianConditional: idxA and idxB must be disjoint, both contain 1');
    expect(() => gaussianConditional(g, [0], [1, 2], [0])).toThrow('gaussianConditional: xB must have length 2 (one value per index of idxB), got 1');
    expect(() => gaussianConditional(g, [0], [3], [0])).toThrow('gaussianConditional: idxB must hold integers in [0, 3), got 3');
    expect(() => gaussianConditional(g, [0], [1], [Number.NaN])).toThrow(/^gaussianConditional: xB\[0\]: .*NaN/);
  });
});
