/**
 * The report of `ddpm-spec check`: one row per compared quantity (golden cases) or law, a table for people and
 * a JSON document for machines.
 *
 * A row's verdict is `pass`, `fail` (outside the tolerance), `error` (the implementation raised, or broke the
 * protocol) or `skip` (the implementation does not have the operation or these arguments, or the data has no
 * such case for it). The exit code of `check` is 0 exactly when no row failed or errored and at least one passed.
 *
 * @module
 */
import { z } from 'zod';
import { writeFileAtomic } from '../io/atomic.ts';

export const Verdict = z.enum(['pass', 'fail', 'error', 'skip']);
export type Verdict = z.infer<typeof Verdict>;

/** One compared quantity (or one law). Numbers are null where nothing was compared. */
export const ReportRow = z.object({
  /** `golden` for a golden-file case, `law` for a law of the spec run on the implementation. */
  kind: z.enum(['golden', 'law']),
  /** Golden file name, or the law's group (e.g. `laws`). */
  file: z.string(),
  /** The case inside the file (its configuration in words), or the law's claim. */
  case: z.string(),
  /** The compared output (`mean`, `terms.vb`, `grads.loss.W`…), or the law's id. */
  quantity: z.string(),
  /** The operation the case calls. */
  op: z.string().optional(),
  verdict: Verdict,
  /** Largest |actual − expected| over the compared elements (null: nothing compared, or a non-finite mismatch only). */
  maxAbs: z.number().nullable(),
  /** Largest |Δ|/|expected| over the compared elements with expected ≠ 0. */
  maxRel: z.number().nullable(),
  /** Elements compared, masked out, and outside the bound. */
  compared: z.number().int().optional(),
  masked: z.number().int().optional(),
  failures: z.number().int().optional(),
  /** `rtol 1e-05, atol 1e-06`, or a per-element formula. */
  tolerance: z.string().nullable(),
  /** Why this tolerance (and any mask). */
  reason: z.string().nullable(),
  /** The worst element, the error message, or why the row was skipped. */
  detail: z.string().optional(),
});
export type ReportRow = z.infer<typeof ReportRow>;

/** A golden file that was not run, with the reason. */
export const SkippedFile = z.object({ file: z.string(), reason: z.string() });
export type SkippedFile = z.infer<typeof SkippedFile>;

export const Totals = z.object({ pass: z.number().int(), fail: z.number().int(), error: z.number().int(), skip: z.number().int() });
export type Totals = z.infer<typeof Totals>;

/** The whole report; `--json FILE` writes exactly this. */
export const Report = z.object({
  tool: z.literal('ddpm-spec check'),
  implementation: z.object({
    name: z.string(),
    command: z.string().optional(),
    notes: z.string().optional(),
    /** The operations it implements (all, for the built-in implementations). */
    operations: z.array(z.string()),
  }),
  backend: z.string().optional(),
  golden: z.object({ dir: z.string(), files: z.array(z.string()), skipped: z.array(SkippedFile) }).nullable(),
  laws: z.boolean(),
  rows: z.array(ReportRow),
  totals: Totals,
  ok: z.boolean(),
  startedAt: z.string(),
  seconds: z.number(),
});
export type Report = z.infer<typeof Report>;

/** Count verdicts. */
export function totals(rows: readonly ReportRow[]): Totals {
  const t: Totals = { pass: 0, fail: 0, error: 0, skip: 0 };
  for (const r of rows) t[r.verdict]++;
  return t;
}

/** Did the check pass: nothing failed or errored, and something was actually checked? */
export function passed(t: Totals): boolean {
  return t.fail === 0 && t.error === 0 && t.pass > 0;
}

/** The report as JSON text (non-finite numbers become null, as JSON has none). */
export function reportJson(report: Report): string {
  return `${JSON.stringify(report, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`;
}

/** Write the JSON report atomically (a temporary file renamed over the target). */
export function writeReportJson(path: string, report: Report): void {
  writeFileAtomic(path, reportJson(report));
}

// ---------------------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------------------

export interface TableOptions {
  /** Colour the verdicts. */
  color?: boolean;
  /** Print only rows that failed or errored (and the summary). */
  failuresOnly?: boolean;
}

/** Two significant digits: plain between 0.01 and 10⁵, else with an exponent. */
const short = (x: number | null): string => {
  if (x === null) return '';
  if (x === 0) return '0';
  if (Math.abs(x) >= 0.01 && Math.abs(x) < 1e5) return String(Number(x.toPrecision(2)));
  return x.toExponential(1).replace('e-', 'e−');
};

const COLORS: Record<Verdict, string> = { pass: '\u001b[32m', fail: '\u001b[31;1m', error: '\u001b[35;1m', skip: '\u001b[33m' };
const WORDS: Record<Verdict, string> = { pass: 'pass', fail: 'FAIL', error: 'ERROR', skip: 'skip' };

/**
 * What failed, in a few lines: one line per operation and quantity (or law) that failed or errored anywhere,
 * with how many of its rows failed, the largest |Δ| among them, and the files.
 */
export function failureSummary(rows: readonly ReportRow[], paint: (v: Verdict, s: string) => string = (_v, s) => s): string[] {
  const groups = new Map<string, { bad: ReportRow[]; all: number; verdict: Verdict }>();
  for (const r of rows) {
    if (r.verdict === 'skip') continue;
    const key = r.kind === 'law' ? `law ${r.quantity}` : `${r.op ?? '?'} › ${r.quantity}`;
    const g = groups.get(key) ?? { bad: [], all: 0, verdict: 'pass' as Verdict };
    g.all++;
    if (r.verdict === 'fail' || r.verdict === 'error') {
      g.bad.push(r);
      if (g.verdict !== 'error') g.verdict = r.verdict;
    }
    groups.set(key, g);
  }
  const failing = [...groups.entries()].filter(([, g]) => g.bad.length > 0);
  const keyW = Math.max(...failing.map(([k]) => k.length));
  const lines = [paint('fail', 'what failed (operation › quantity: failing checks of all, largest |Δ|, files)')];
  for (const [key, g] of failing) {
    const worst = Math.max(...g.bad.map((r) => r.maxAbs ?? 0));
    const files = [...new Set(g.bad.map((r) => r.file.split('/').pop()))].join(', ');
    const size = g.bad.some((r) => r.maxAbs !== null) ? `max |Δ| ${short(worst)}` : g.verdict === 'error' ? 'raised an error' : '';
    lines.push(`  ${paint(g.verdict, key.padEnd(keyW))}  ${String(g.bad.length).padStart(3)} of ${String(g.all).padEnd(3)}  ${size.padEnd(16)}  ${files}`);
  }
  return lines;
}

/**
 * The report as a table. Rows are grouped by file, then by case (the case on its own line, its quantities
 * under it): verdict, quantity, max |Δ|, max rel, tolerance with a numbered reference to its reason. Then the
 * reasons, the failures again with their worst element, what was skipped (grouped by reason), and the totals.
 */
export function formatTable(report: Report, opts: TableOptions = {}): string {
  const color = opts.color ?? false;
  const paint = (v: Verdict, s: string): string => (color ? `${COLORS[v]}${s}\u001b[0m` : s);
  // With failuresOnly the per-row table is left out: the failures below say everything about those rows.
  const shown = opts.failuresOnly ? [] : report.rows.filter((r) => r.verdict !== 'skip');

  const reasons = new Map<string, number>();
  const reasonRef = (reason: string | null): string => {
    if (reason === null || reason === '') return '';
    let n = reasons.get(reason);
    if (n === undefined) reasons.set(reason, (n = reasons.size + 1));
    return ` [${n}]`;
  };
  const cells = shown.map((r) => ({
    r,
    c: [WORDS[r.verdict], r.quantity, r.verdict === 'error' ? '' : short(r.maxAbs), r.verdict === 'error' ? '' : short(r.maxRel), r.tolerance ? `${r.tolerance}${reasonRef(r.reason)}` : ''],
  }));
  const heads = ['verdict', 'quantity', 'max |Δ|', 'max rel', 'tolerance [reason]'];
  const widths = heads.map((h, i) => Math.max(h.length, ...cells.map((x) => x.c[i].length)));
  widths[1] = Math.min(widths[1], 48);
  const right = [false, false, true, true, false];
  const pad = (s: string, i: number): string => (right[i] ? s.padStart(widths[i]) : s.padEnd(widths[i]));
  const line = (c: string[], v?: Verdict): string =>
    c
      .map((s, i) => (i === 0 && v ? paint(v, pad(s, 0)) : pad(s, i)))
      .join('  ')
      .trimEnd();

  const out: string[] = [];
  const impl = report.implementation;
  out.push(`ddpm-spec check: ${impl.name}${report.backend ? ` on the ${report.backend} backend` : ''}`);
  if (impl.command) out.push(`  command: ${impl.command}`);
  if (impl.notes) out.push(`  notes: ${impl.notes}`);
  const n = (k: number, what: string): string => `${k} ${what}${k === 1 ? '' : 's'}`;
  if (report.golden) out.push(`  golden data: ${report.golden.dir} (${n(report.golden.files.length, 'file')} replayed, ${report.golden.skipped.length} skipped)`);
  out.push(`  laws of the spec: ${report.laws ? 'run' : 'not run'}`);

  let lastFile = '';
  let lastCase = '';
  for (const { r, c } of cells) {
    if (r.file !== lastFile) {
      out.push('', r.file, `    ${line(heads)}`);
      lastFile = r.file;
      lastCase = '';
    }
    if (r.kind === 'golden' && r.case !== lastCase) {
      out.push(`  ${r.case}`);
      lastCase = r.case;
    }
    if (r.kind === 'law') out.push(`  ${r.case}`);
    out.push(`    ${line(c, r.verdict)}`);
  }

  if (reasons.size > 0) {
    out.push('', 'tolerances: |actual − expected| ≤ atol + rtol·|expected| element-wise, for these reasons');
    for (const [reason, n] of reasons) out.push(`  [${n}] ${reason}`);
  }

  const bad = report.rows.filter((r) => r.verdict === 'fail' || r.verdict === 'error');
  if (bad.length === 0 && opts.failuresOnly) out.push('', 'no failures');
  if (bad.length > 0) {
    out.push('', paint('fail', `failures (${bad.length})`));
    for (const r of bad) {
      out.push(`  ${paint(r.verdict, WORDS[r.verdict])}  ${r.file} › ${r.case} › ${r.quantity}`);
      for (const l of (r.detail ?? '').split('\n')) if (l.trim() !== '') out.push(`        ${l}`);
    }
  }

  const skippedRows = report.rows.filter((r) => r.verdict === 'skip');
  if (skippedRows.length > 0 || (report.golden && report.golden.skipped.length > 0)) {
    out.push('', 'skipped');
    for (const s of report.golden?.skipped ?? []) out.push(`  ${s.file}: ${s.reason}`);
    // One line per reason, so that one missing operation is one line.
    const groups = new Map<string, ReportRow[]>();
    for (const r of skippedRows) {
      const k = r.detail ?? 'no reason given';
      groups.set(k, [...(groups.get(k) ?? []), r]);
    }
    for (const [reason, list] of groups) {
      const files = [...new Set(list.map((r) => r.file))].join(', ');
      out.push(`  ${list.length} check${list.length === 1 ? '' : 's'} in ${files}: ${reason}`);
    }
  }

  if (bad.length > 0) out.push('', ...failureSummary(report.rows, paint));

  const t = report.totals;
  out.push('');
  const summary = `${t.pass} passed, ${t.fail} failed, ${t.error} errors, ${t.skip} skipped (${report.rows.length} checks, ${report.seconds.toFixed(1)} s)`;
  out.push(report.ok ? paint('pass', `OK: ${summary}`) : paint('fail', `NOT OK: ${summary}`));
  return `${out.join('\n')}\n`;
}
