/**
 * Finite (tabular) distributions over named discrete variables: the joint p(x₁, …, x_k) as a table, and the
 * operations of section 1 on it: evaluation, exact expectation, marginalisation, conditioning, the product of
 * factors (the chain rule), Bayes' rule.
 *
 * Layout: a variable has a `name` and a `size` n; its values are the integers 0, …, n − 1 (0-based). A table's
 * `values` are stored row-major over its `variables` in the order listed, the **last variable varying
 * fastest**: the entry of the assignment (v₀, …, v_{k−1}) is at flat index Σ_i v_i·stride_i with
 * stride_i = Π_{j>i} size_j. A table over no variables has one value (a scalar).
 *
 * A {@link Factor} is any non-negative table (for example a conditional p(x | y), or an unnormalised
 * p(x, y = ŷ)); a {@link TabularDistribution} is a factor whose values sum to 1.
 *
 * @module
 */
import { z } from 'zod';
import { argError, parseArg } from './validate.ts';

/**
 * Absolute tolerance of the normalisation check of a {@link TabularDistribution}: |Σ p − 1| ≤ 1e-9.
 * Tables built by float64 arithmetic (products, sums over up to 10⁶ entries) are off by far less; a table that
 * is wrong by a dropped factor or a missing entry is off by far more.
 *
 * @see property `probability.table.rejectsUnnormalised`
 */
export const NORMALISATION_ATOL = 1e-9;

/**
 * A discrete variable: a non-empty `name` and a `size` n ≥ 1 (values 0, …, n − 1).
 *
 * @see property `probability.table.rejectsBadInput`
 */
export const Variable = z.object({ name: z.string().min(1), size: z.number().int().min(1) }).readonly();
export type Variable = z.infer<typeof Variable>;

function factorIssues(f: { variables: readonly Variable[]; values: readonly number[] }, ctx: z.RefinementCtx): boolean {
  const names = new Set<string>();
  for (const v of f.variables) {
    if (names.has(v.name)) {
      ctx.addIssue({ code: 'custom', path: ['variables'], message: `variable names must be unique, "${v.name}" appears twice` });
      return false;
    }
    names.add(v.name);
  }
  const n = f.variables.reduce((a, v) => a * v.size, 1);
  if (f.values.length !== n) {
    ctx.addIssue({ code: 'custom', path: ['values'], message: `must have ${n} entries (the product of the variable sizes), got ${f.values.length}` });
    return false;
  }
  return true;
}

const FactorObject = z.object({
  variables: z.array(Variable).readonly(),
  values: z.array(z.number().nonnegative()).readonly(),
});

/**
 * A non-negative table over named variables (see the module comment for the layout): unique names, one finite
 * value ≥ 0 per assignment.
 *
 * @see property `probability.table.rejectsBadInput`
 */
export const Factor = FactorObject.superRefine((f, ctx) => {
  factorIssues(f, ctx);
});
export type Factor = z.infer<typeof Factor>;

/**
 * A joint distribution over named discrete variables: a {@link Factor} whose values sum to 1 within
 * {@link NORMALISATION_ATOL}. The error of a table that does not sum to 1 says what it sums to.
 *
 * @see property `probability.table.rejectsUnnormalised`
 * @see property `probability.table.rejectsBadInput`
 */
export const TabularDistribution = FactorObject.superRefine((f, ctx) => {
  if (!factorIssues(f, ctx)) return;
  let s = 0;
  for (const v of f.values) s += v;
  if (!(Math.abs(s - 1) <= NORMALISATION_ATOL)) {
    ctx.addIssue({ code: 'custom', path: ['values'], message: `probabilities must sum to 1 (within ${NORMALISATION_ATOL}), got ${s}` });
  }
});
export type TabularDistribution = z.infer<typeof TabularDistribution>;

/** An assignment of values to named variables: `{ x: 0, y: 2 }` (0-based values), as {@link tableValue} takes it. */
export type Assignment = Readonly<Record<string, number>>;

function strides(vars: readonly Variable[]): number[] {
  const s = new Array<number>(vars.length);
  let acc = 1;
  for (let i = vars.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= vars[i].size;
  }
  return s;
}

function checkAssignment(fn: string, arg: string, vars: readonly Variable[], a: Assignment, complete: boolean): void {
  if (typeof a !== 'object' || a === null) argError(fn, `${arg} must be an object mapping variable names to values`);
  const known = new Map(vars.map((v) => [v.name, v.size]));
  for (const [k, v] of Object.entries(a)) {
    const size = known.get(k);
    if (size === undefined) argError(fn, `${arg} names "${k}", which is not a variable of the table (${[...known.keys()].join(', ') || 'none'})`);
    if (!Number.isInteger(v) || v < 0 || v >= size) argError(fn, `${arg}.${k} must be an integer in [0, ${size}), got ${v}`);
  }
  if (complete) {
    for (const v of vars) if (!(v.name in a)) argError(fn, `${arg} must give a value to every variable, "${v.name}" is missing`);
  }
}

function checkNames(fn: string, arg: string, vars: readonly Variable[], names: readonly string[]): void {
  if (!Array.isArray(names)) argError(fn, `${arg} must be an array of variable names`);
  const known = new Set(vars.map((v) => v.name));
  const seen = new Set<string>();
  for (const n of names) {
    if (!known.has(n)) argError(fn, `${arg} names "${n}", which is not a variable of the table (${[...known].join(', ') || 'none'})`);
    if (seen.has(n)) argError(fn, `${arg} must not repeat a name, "${n}" appears twice`);
    seen.add(n);
  }
}

/**
 * Every assignment of the variables, in the table's storage order (the last variable fastest). There are
 * Π size_i of them; one (the empty assignment) for no variables.
 *
 * @see property `probability.table.assignmentsEnumerate`
 */
export function allAssignments(variables: readonly Variable[]): Assignment[] {
  const vars = parseArg('allAssignments', 'variables', z.array(Variable), variables);
  const out: Assignment[] = [];
  const n = vars.reduce((a, v) => a * v.size, 1);
  const st = strides(vars);
  for (let k = 0; k < n; k++) {
    const a: Record<string, number> = {};
    vars.forEach((v, i) => {
      a[v.name] = Math.floor(k / st[i]) % v.size;
    });
    out.push(a);
  }
  return out;
}

/**
 * The value of a table at a complete assignment: p(x₁ = v₁, …, x_k = v_k).
 *
 * @see property `probability.table.assignmentsEnumerate`
 */
export function tableValue(f: Factor, a: Assignment): number {
  const F = parseArg('tableValue', 'f', Factor, f);
  checkAssignment('tableValue', 'a', F.variables, a, true);
  const st = strides(F.variables);
  let k = 0;
  F.variables.forEach((v, i) => {
    k += a[v.name] * st[i];
  });
  return F.values[k];
}

/**
 * Build a factor by evaluating a non-negative function at every assignment.
 *
 * @see property `probability.table.assignmentsEnumerate`
 */
export function factorFromFunction(variables: readonly Variable[], fn: (a: Assignment) => number): Factor {
  const vars = parseArg('factorFromFunction', 'variables', z.array(Variable), variables);
  return parseArg('factorFromFunction', 'fn (its values)', Factor, { variables: vars, values: allAssignments(vars).map(fn) });
}

/**
 * Normalise a factor into a distribution: p(a) = f(a) / Σ_b f(b). Throws when the total is 0.
 *
 * @see property `probability.table.normaliseIsDistribution`
 */
export function normalise(f: Factor): TabularDistribution {
  const F = parseArg('normalise', 'f', Factor, f);
  let s = 0;
  for (const v of F.values) s += v;
  if (!(s > 0)) argError('normalise', `f must have a positive total to be normalised, got ${s}`);
  return { variables: F.variables, values: F.values.map((v) => v / s) };
}

/**
 * Exact expectation of a function of the variables under a tabular distribution:
 *
 * $$\mathbb E_p[f] = \sum_a p(a)\,f(a)$$
 *
 * Terms with p(a) = 0 contribute 0 even where f(a) is infinite (the convention 0·∞ = 0 of measure theory).
 *
 * @see property `probability.expectation.eqClosedForm`
 * @see property `probability.expectation.totalExpectation`
 */
export function tabularExpectation(p: TabularDistribution, f: (a: Assignment) => number): number {
  const P = parseArg('tabularExpectation', 'p', TabularDistribution, p);
  const as = allAssignments(P.variables);
  let s = 0;
  for (let k = 0; k < as.length; k++) {
    if (P.values[k] === 0) continue;
    s += P.values[k] * f(as[k]);
  }
  return s;
}

/**
 * Marginalisation: sum out every variable not in `keep`, giving a table over `keep` in the order listed.
 *
 * $$p(x_K) = \sum_{x_{\bar K}} p(x_K, x_{\bar K})$$
 *
 * Works on any factor; a distribution's marginal is a distribution.
 *
 * @param keep - names of the variables to keep (a subset of f's, no repeats; may be empty)
 * @see property `probability.marginal.isDistribution`
 * @see property `probability.marginal.commutes`
 */
export function tabularMarginal(f: Factor, keep: readonly string[]): Factor {
  const F = parseArg('tabularMarginal', 'f', Factor, f);
  checkNames('tabularMarginal', 'keep', F.variables, keep);
  const outVars = keep.map((n) => F.variables.find((v) => v.name === n) as Variable);
  const outSt = strides(outVars);
  const pos = keep.map((n) => F.variables.findIndex((v) => v.name === n));
  const inSt = strides(F.variables);
  const out = new Array<number>(outVars.reduce((a, v) => a * v.size, 1)).fill(0);
  for (let k = 0; k < F.values.length; k++) {
    let j = 0;
    for (let i = 0; i < pos.length; i++) j += (Math.floor(k / inSt[pos[i]]) % F.variables[pos[i]].size) * outSt[i];
    out[j] += F.values[k];
  }
  return { variables: outVars, values: out };
}

/**
 * Conditioning on evidence: the distribution of the remaining variables given the observed values,
 *
 * $$p(x_R \mid x_E = \hat x_E) = \frac{p(x_R, \hat x_E)}{p(\hat x_E)},\qquad p(\hat x_E) = \sum_{x_R} p(x_R,\hat x_E)$$
 *
 * over the variables not in `evidence`, in the table's order. Throws when p(x̂_E) = 0 (conditioning on an event
 * of probability zero is undefined).
 *
 * @see property `probability.conditional.normalised`
 * @see property `probability.conditional.bayes`
 */
export function tabularCondition(p: TabularDistribution, evidence: Assignment): TabularDistribution {
  const fn = 'tabularCondition';
  const P = parseArg(fn, 'p', TabularDistribution, p);
  checkAssignment(fn, 'evidence', P.variables, evidence, false);
  const rest = P.variables.filter((v) => !(v.name in evidence));
  const st = strides(P.variables);
  const values: number[] = [];
  for (const a of allAssignments(rest)) {
    let k = 0;
    P.variables.forEach((v, i) => {
      k += (v.name in evidence ? evidence[v.name] : a[v.name]) * st[i];
    });
    values.push(P.values[k]);
  }
  let z = 0;
  for (const v of values) z += v;
  if (!(z > 0)) argError(fn, `evidence ${JSON.stringify(evidence)} has probability 0 under p; conditioning on it is undefined`);
  return { variables: rest, values: values.map((v) => v / z) };
}

/**
 * The conditional table p(targets | givens) as a factor over [...targets, ...givens] (in that order), whose
 * entries are p(x_T, x_G)/p(x_G). Other variables are marginalised out. Throws when some p(x_G) = 0.
 *
 * $$p(x_T\mid x_G) = \frac{p(x_T, x_G)}{\sum_{x_T'} p(x_T', x_G)}$$
 *
 * @see property `probability.conditional.chainRule`
 * @see property `probability.conditional.normalised`
 */
export function tabularConditional(p: TabularDistribution, targets: readonly string[], givens: readonly string[]): Factor {
  const fn = 'tabularConditional';
  const P = parseArg(fn, 'p', TabularDistribution, p);
  checkNames(fn, 'targets', P.variables, targets);
  checkNames(fn, 'givens', P.variables, givens);
  const both = targets.filter((t) => givens.includes(t));
  if (both.length > 0) argError(fn, `targets and givens must be disjoint, both contain "${both[0]}"`);
  if (targets.length === 0) argError(fn, 'targets must name at least one variable');
  const joint = tabularMarginal(P, [...targets, ...givens]);
  const nT = targets.reduce((a, n) => a * (P.variables.find((v) => v.name === n) as Variable).size, 1);
  const nG = joint.values.length / nT;
  // Storage: targets are the slow axes, givens the fast ones; entry (t, g) is at t·nG + g.
  const values = [...joint.values];
  for (let g = 0; g < nG; g++) {
    let z = 0;
    for (let t = 0; t < nT; t++) z += joint.values[t * nG + g];
    if (!(z > 0)) {
      const ga = allAssignments(joint.variables.slice(targets.length))[g];
      argError(fn, `p(givens) is 0 at ${JSON.stringify(ga)}; the conditional is undefined there`);
    }
    for (let t = 0; t < nT; t++) values[t * nG + g] = joint.values[t * nG + g] / z;
  }
  return { variables: joint.variables, values };
}

/**
 * Product of two factors over the union of their variables (f's first, then g's new ones); shared variables
 * must have the same size. With a conditional and a marginal this is the chain rule p(x, y) = p(x | y) p(y).
 *
 * $$(f\cdot g)(x_{F\cup G}) = f(x_F)\,g(x_G)$$
 *
 * @see property `probability.conditional.chainRule`
 */
export function factorProduct(f: Factor, g: Factor): Factor {
  const fn = 'factorProduct';
  const F = parseArg(fn, 'f', Factor, f);
  const G = parseArg(fn, 'g', Factor, g);
  for (const v of G.variables) {
    const u = F.variables.find((w) => w.name === v.name);
    if (u && u.size !== v.size) argError(fn, `variable "${v.name}" has size ${u.size} in f but ${v.size} in g`);
  }
  const vars = [...F.variables, ...G.variables.filter((v) => !F.variables.some((w) => w.name === v.name))];
  const fSt = strides(F.variables);
  const gSt = strides(G.variables);
  const values = allAssignments(vars).map((a) => {
    let i = 0;
    F.variables.forEach((v, k) => (i += a[v.name] * fSt[k]));
    let j = 0;
    G.variables.forEach((v, k) => (j += a[v.name] * gSt[k]));
    return F.values[i] * G.values[j];
  });
  return { variables: vars, values };
}

/**
 * Bayes' rule on tables: the posterior over the prior's variables given observed values of the likelihood's
 * other variables,
 *
 * $$p(x\mid \hat y) = \frac{p(\hat y\mid x)\,p(x)}{\sum_{x'} p(\hat y\mid x')\,p(x')}$$
 *
 * @param prior - p(x), a distribution over the variables x
 * @param likelihood - p(y | x), a factor over the variables y and x (any order)
 * @param observed - values of every variable y (the likelihood's variables that are not the prior's)
 * @see property `probability.conditional.bayes`
 */
export function bayesRule(prior: TabularDistribution, likelihood: Factor, observed: Assignment): TabularDistribution {
  const fn = 'bayesRule';
  const P = parseArg(fn, 'prior', TabularDistribution, prior);
  const Lk = parseArg(fn, 'likelihood', Factor, likelihood);
  for (const v of P.variables) {
    if (!Lk.variables.some((w) => w.name === v.name)) argError(fn, `likelihood must be a table over the prior's variables too, "${v.name}" is missing`);
  }
  const ys = Lk.variables.filter((v) => !P.variables.some((w) => w.name === v.name));
  checkAssignment(fn, 'observed', ys, observed, true);
  const lSt = strides(Lk.variables);
  const unnorm = allAssignments(P.variables).map((a, k) => {
    let i = 0;
    Lk.variables.forEach((v, j) => (i += (v.name in a ? a[v.name] : observed[v.name]) * lSt[j]));
    return Lk.values[i] * P.values[k];
  });
  let z = 0;
  for (const v of unnorm) z += v;
  if (!(z > 0)) argError(fn, `observed ${JSON.stringify(observed)} has probability 0 under prior × likelihood`);
  return { variables: P.variables, values: unnorm.map((v) => v / z) };
}
