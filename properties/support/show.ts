/**
 * Show a computed value beside a test's claim in the derivation tree (`w₂ = 0.2727`). Call it inside an `it`
 * with a value that does not depend on the fast-check seed (a named schedule, a fixed case), so that two runs
 * print the same tree. The value travels in the test's meta to {@link DerivationReporter}.
 */
import { TestRunner } from 'vitest';

/** Significant digits shown: enough to recognise a number, few enough to read. */
const DIGITS = 4;

/** Format a number the way the tree shows it: 4 significant digits, exponent form below 1e−3 or above 1e5. */
export function formatShown(v: number): string {
  if (!Number.isFinite(v) || v === 0) return String(v);
  const a = Math.abs(v);
  return a < 1e-3 || a >= 1e5 ? v.toExponential(DIGITS - 1).replace('-', '−') : String(Number(v.toPrecision(DIGITS)));
}

/** Record `label = value` (a number is formatted by {@link formatShown}; `unit` follows it) for the current test. */
export function show(label: string, value: number | string, unit = ''): void {
  const test = TestRunner.getCurrentTest();
  if (!test) throw new Error('show: called outside a test');
  const meta = test.meta as { shown?: string[] };
  const text = `${label} = ${typeof value === 'number' ? formatShown(value) : value}${unit ? ` ${unit}` : ''}`;
  meta.shown = [...(meta.shown ?? []), text];
}
