/**
 * Arbitraries for the probability properties: probability vectors and tabular distributions over named
 * variables, with strictly positive entries (so that every conditional is defined) or with zeros allowed.
 */
import fc from 'fast-check';
import { real } from '../gaussian/arbitraries.ts';
import type { TabularDistribution, Variable } from '../../spec/probability/table.ts';

export interface TableOptions {
  /** Number of variables (default 1–3: from a single variable to a chain rule with a third one summed out). */
  minVars?: number;
  maxVars?: number;
  /** Largest variable size (default 4; sizes start at 2 so that every variable carries information). */
  maxSize?: number;
  /** Allow zero probabilities (default false: every entry ≥ 1e−3 of the largest before normalising). */
  zeros?: boolean;
}

/** Variable names in a fixed order, so that counterexamples read `a, b, c`. */
export const NAMES = ['a', 'b', 'c', 'd'] as const;

/**
 * Unnormalised weights: in [1e−3, 1] (or [0, 1] with zeros, where a quarter of the entries are exactly 0 and at
 * least one entry stays positive). The lower bound 1e−3 keeps ratios of probabilities ≤ 1e3, so that
 * conditionals are well defined and their sums round to 1 within 1e−15.
 */
export function weights(n: number, zeros = false): fc.Arbitrary<number[]> {
  const w = zeros
    ? fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: real(1e-3, 1) })
    : real(1e-3, 1);
  return fc.array(w, { minLength: n, maxLength: n }).map((ws) => (ws.some((v) => v > 0) ? ws : ws.map((_, i) => (i === 0 ? 1 : 0))));
}

/** Normalise weights to a probability vector (sums to 1 within a few ulps). */
export function normaliseWeights(ws: readonly number[]): number[] {
  const s = ws.reduce((a, b) => a + b, 0);
  return ws.map((v) => v / s);
}

/** A probability vector of length n. */
export function probVector(n: number, zeros = false): fc.Arbitrary<number[]> {
  return weights(n, zeros).map(normaliseWeights);
}

/** Variables a, b, … with sizes in [2, maxSize]. */
export function variables(opts: TableOptions = {}): fc.Arbitrary<Variable[]> {
  return fc
    .array(fc.integer({ min: 2, max: opts.maxSize ?? 4 }), { minLength: opts.minVars ?? 1, maxLength: opts.maxVars ?? 3 })
    .map((sizes) => sizes.map((size, i) => ({ name: NAMES[i], size })));
}

/** A tabular distribution over the given variables. */
export function tableOver(vars: readonly Variable[], zeros = false): fc.Arbitrary<TabularDistribution> {
  const n = vars.reduce((a, v) => a * v.size, 1);
  return probVector(n, zeros).map((values) => ({ variables: vars, values }));
}

/** A tabular distribution over 1–3 variables a, b, c. */
export function table(opts: TableOptions = {}): fc.Arbitrary<TabularDistribution> {
  return variables(opts).chain((vars) => tableOver(vars, opts.zeros));
}

/** Two tabular distributions over the same variables. */
export function tablePair(opts: TableOptions = {}): fc.Arbitrary<[TabularDistribution, TabularDistribution]> {
  return variables(opts).chain((vars) => fc.tuple(tableOver(vars, opts.zeros), tableOver(vars, opts.zeros)));
}
