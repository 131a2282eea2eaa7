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
  maxAbs: z.number().nullable(),
  maxRel: z.number().nullable(),
  tolerance: z.object({ rtol: z.number(), atol: z.number(), reason: z.string() }).nullable(),
  verdict: Verdict,
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
  /** Colour the verdicts (default: when stdout is a terminal and NO_COLOR is unset). */
  color?: boolean;
  /** Print only rows that failed or errored (and the summary). */
  failuresOnly?: boolean;
  /** Widest case column (default 44). */
  caseWidth?: number;
}

const short = (x: number | null): string => {
  if (x === null) return '—';
  if (Number.isNaN(x)) return 'non-finite';
  if (x === 0) return '0';
  return x.toExponential(1).replace('e-', 'e−');
};
const tolText = (t: ReportRow['tolerance']): string => {
  if (t === null) return '—';
  const n = (v: number): string => (v === 0 ? '0' : v >= 1e-3 && v < 1e3 ? String(Number(v.toPrecision(3))) : v.toExponential(0).replace('e-', 'e−'));
  return `rtol ${n(t.rtol)} atol ${n(t.atol)}`;
};
const clip = (s: string, w: number): string => (s.length <= w ? s : `${s.slice(0, w - 1)}…`);

const COLORS: Record<Verdict, string> = { pass: '\u001b[32m', fail: '\u001b[31;1m', error: '\u001b[35;1m', skip: '\u001b[33m' };
const WORDS: Record<Verdict, string> = { pass: 'pass', fail: 'FAIL', error: 'ERROR', skip: 'skip' };

/**
 * The report as a table: rows grouped by file, a numbered list of the tolerance reasons, the failures again
 * with their worst element, the skipped files and operations, and the totals.
 */
export function formatTable(report: Report, opts: TableOptions = {}): string {
  const color = opts.color ?? false;
  const paint = (v: Verdict, s: string): string => (color ? `${COLORS[v]}${s}\u001b[0m` : s);
  const caseW = opts.caseWidth ?? 44;
  const rows = opts.failuresOnly ? report.rows.filter((r) => r.verdict === 'fail' || r.verdict === 'error') : report.rows;

  const reasons = new Map<string, number>();
  const reasonRef = (t: ReportRow['tolerance']): string => {
    if (t === null) return '';
    let n = reasons.get(t.reason);
    if (n === undefined) reasons.set(t.reason, (n = reasons.size + 1));
    return `[${n}]`;
  };

  const cells = rows.map((r) => ({
    r,
    c: [clip(r.case, caseW), r.quantity, short(r.maxAbs), short(r.maxRel), r.tolerance ? `${tolText(r.tolerance)} ${reasonRef(r.tolerance)}` : '—'],
  }));
  const heads = ['case', 'quantity', 'max |Δ|', 'max rel', 'tolerance'];
  const widths = heads.map((h, i) => Math.max(h.length, ...cells.map((x) => x.c[i].length)));
  const right = [false, false, true, true, false];
  const line = (c: string[]): string => c.map((s, i) => (right[i] ? s.padStart(widths[i]) : s.padEnd(widths[i]))).join('  ').trimEnd();

  const out: string[] = [];
  const impl = report.implementation;
  out.push(`ddpm-spec check: ${impl.name}${report.backend ? ` on the ${report.backend} backend` : ''}`);
  if (impl.command) out.push(`  command: ${impl.command}`);
  if (impl.notes) out.push(`  notes: ${impl.notes}`);
  if (report.golden) out.push(`  golden data: ${report.golden.dir} (${report.golden.files.length} files run, ${report.golden.skipped.length} skipped)`);
  out.push(`  laws of the spec: ${report.laws ? 'run' : 'not run'}`);
  out.push('');

  let lastFile = '';
  for (const { r, c } of cells) {
    if (r.file !== lastFile) {
      if (lastFile !== '') out.push('');
      out.push(`${r.kind === 'law' ? 'laws' : r.file}`);
      out.push(`  ${'verdict'.padEnd(7)}  ${line(heads)}`);
      lastFile = r.file;
    }
    out.push(`  ${paint(r.verdict, WORDS[r.verdict].padEnd(7))}  ${line(c)}`);
  }
  if (rows.length === 0 && opts.failuresOnly) out.push('(no failures)');

  if (reasons.size > 0) {
    out.push('', 'tolerances used');
    for (const [reason, n] of reasons) out.push(`  [${n}] ${reason}`);
  }

  const bad = report.rows.filter((r) => r.verdict === 'fail' || r.verdict === 'error');
  if (bad.length > 0) {
    out.push('', `${paint('fail', `failures (${bad.length})`)}`);
    for (const r of bad) {
      out.push(`  ${paint(r.verdict, WORDS[r.verdict])}  ${r.file} › ${r.case} › ${r.quantity}`);
      for (const l of (r.detail ?? '').split('\n')) if (l.trim() !== '') out.push(`         ${l}`);
    }
  }

  const skippedRows = report.rows.filter((r) => r.verdict === 'skip');
  if (skippedRows.length > 0 || (report.golden && report.golden.skipped.length > 0)) {
    out.push('', 'skipped');
    for (const s of report.golden?.skipped ?? []) out.push(`  file ${s.file}: ${s.reason}`);
    // Group skipped rows by reason, so that one missing operation is one line.
    const byReason = new Map<string, ReportRow[]>();
    for (const r of skippedRows) {
      const k = r.detail ?? 'no reason given';
      const list = byReason.get(k) ?? [];
      list.push(r);
      byReason.set(k, list);
    }
    for (const [reason, list] of byReason) {
      const files = [...new Set(list.map((r) => r.file))];
      out.push(`  ${list.length} row${list.length === 1 ? '' : 's'} in ${files.join(', ')}: ${reason}`);
    }
  }

  const t = report.totals;
  out.push('');
  const summary = `${t.pass} passed, ${t.fail} failed, ${t.error} errors, ${t.skip} skipped (${report.rows.length} checks, ${report.seconds.toFixed(1)} s)`;
  out.push(report.ok ? paint('pass', `OK: ${summary}`) : paint('fail', `NOT OK: ${summary}`));
  return `${out.join('\n')}\n`;
}
