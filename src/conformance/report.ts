/**
 * The report of `ddpm-spec check`: one row per compared quantity (golden cases) or law, a table for people and
 * a JSON document for machines.
 *
 * A row's verdict is `pass`, `fail` (outside the tolerance), `error` (the implementation raised or broke the
 * protocol, or a golden record could not be used), `declined` (an operation the implementation lists answered
 * "unsupported"), `unread` (a file, record or field no reader understands), `n/a` (not applicable, with the reason)
 * or `skip` (an operation the implementation leaves out, as a whole, or an optional part it declined).
 *
 * Coverage is part of the verdict ({@link overallVerdict}): **OK** (exit 0) only when nothing failed, nothing
 * errored, nothing was declined or left unread, and something passed; **NOT OK** (exit 1) when something failed
 * or errored; otherwise **INCOMPLETE** (exit 3), with what was not checked. Exit 2 is for usage errors.
 *
 * @module
 */
import { z } from 'zod';
import { writeFileAtomic } from '../io/atomic.ts';
import { dependencyRank } from './vocabulary.ts';

export const Verdict = z.enum(['pass', 'fail', 'error', 'declined', 'unread', 'n/a', 'skip']);
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
  /** A law's operations (for the dependency order of the failures). */
  needs: z.array(z.string()).optional(),
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

export const Totals = z.object({
  pass: z.number().int(),
  fail: z.number().int(),
  error: z.number().int(),
  declined: z.number().int(),
  unread: z.number().int(),
  'n/a': z.number().int(),
  skip: z.number().int(),
});
export type Totals = z.infer<typeof Totals>;

/** The verdict of a whole check. */
export const OverallVerdict = z.enum(['OK', 'NOT OK', 'INCOMPLETE']);
export type OverallVerdict = z.infer<typeof OverallVerdict>;

/** The exit code of `check` for each verdict (2 is for usage errors). */
export const EXIT_CODES: Record<OverallVerdict, number> = { OK: 0, 'NOT OK': 1, INCOMPLETE: 3 };

/** Rows compared, declined, not applicable and not understood, per golden file or per operation. */
export const Coverage = z.object({
  name: z.string(),
  compared: z.number().int(),
  failed: z.number().int(),
  declined: z.number().int(),
  notApplicable: z.number().int(),
  notUnderstood: z.number().int(),
  skipped: z.number().int(),
});
export type Coverage = z.infer<typeof Coverage>;

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
  /** Rows compared, declined, not applicable, not understood and skipped, per golden file and per operation. */
  coverage: z.object({ files: z.array(Coverage), operations: z.array(Coverage) }),
  verdict: OverallVerdict,
  /** True exactly when the verdict is OK. */
  ok: z.boolean(),
  /** The declared arithmetic of the implementation (chooses the tolerance tables). */
  precision: z.enum(['float32', 'float64']),
  startedAt: z.string(),
  seconds: z.number(),
});
export type Report = z.infer<typeof Report>;

/** Count verdicts. */
export function totals(rows: readonly ReportRow[]): Totals {
  const t: Totals = { pass: 0, fail: 0, error: 0, declined: 0, unread: 0, 'n/a': 0, skip: 0 };
  for (const r of rows) t[r.verdict]++;
  return t;
}

/** OK: nothing failed or errored, nothing declined or unread, and something was checked; NOT OK: something failed or errored. */
export function overallVerdict(t: Totals): OverallVerdict {
  if (t.fail > 0 || t.error > 0) return 'NOT OK';
  if (t.declined > 0 || t.unread > 0 || t.pass === 0) return 'INCOMPLETE';
  return 'OK';
}

/** Coverage per golden file and per operation (laws count under their group). */
export function coverage(rows: readonly ReportRow[], by: 'file' | 'op'): Coverage[] {
  const out = new Map<string, Coverage>();
  for (const r of rows) {
    const name = by === 'file' ? r.file : r.kind === 'law' ? 'laws' : (r.op ?? '(recorded data)');
    const c = out.get(name) ?? { name, compared: 0, failed: 0, declined: 0, notApplicable: 0, notUnderstood: 0, skipped: 0 };
    if (r.verdict === 'pass') c.compared++;
    else if (r.verdict === 'fail' || r.verdict === 'error') (c.compared++, c.failed++);
    else if (r.verdict === 'declined') c.declined++;
    else if (r.verdict === 'n/a') c.notApplicable++;
    else if (r.verdict === 'unread') c.notUnderstood++;
    else c.skipped++;
    out.set(name, c);
  }
  const list = [...out.values()];
  return by === 'op' ? list.sort((a, b) => dependencyRank(a.name) - dependencyRank(b.name)) : list;
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
/** Where a row stands in the dependency order: record errors first, then its operation (a law: the last operation it needs). */
function rankOf(r: ReportRow): number {
  if (r.kind === 'law') return Math.max(...(r.needs ?? []).map(dependencyRank), 0) + 0.5;
  return r.op === undefined ? -1 : dependencyRank(r.op);
}

const short = (x: number | null): string => {
  if (x === null) return '';
  if (x === 0) return '0';
  if (Math.abs(x) >= 0.01 && Math.abs(x) < 1e5) return String(Number(x.toPrecision(2)));
  return x.toExponential(1).replace('e-', 'e−');
};

const COLORS: Record<Verdict, string> = {
  pass: '\u001b[32m',
  fail: '\u001b[31;1m',
  error: '\u001b[35;1m',
  declined: '\u001b[33;1m',
  unread: '\u001b[33;1m',
  'n/a': '\u001b[2m',
  skip: '\u001b[33m',
};
const WORDS: Record<Verdict, string> = { pass: 'pass', fail: 'FAIL', error: 'ERROR', declined: 'DECLINED', unread: 'UNREAD', 'n/a': 'n/a', skip: 'skip' };
/** Verdicts that are not a comparison: listed under "not checked", not in the table. */
const NOT_CHECKED: ReadonlySet<Verdict> = new Set(['declined', 'unread', 'n/a', 'skip']);

/**
 * What failed, in a few lines: one line per operation and quantity (or law) that failed or errored anywhere,
 * with how many of its rows failed, the largest |Δ| among them, and the files. Lines follow the dependency order
 * of the operations (schedule → buffers → q_* → p_* → steps and loops → losses and bits/dim; a law after the
 * operations it needs), so the first line is the likely root cause; record errors of the golden data come first.
 */
export function failureSummary(rows: readonly ReportRow[], paint: (v: Verdict, s: string) => string = (_v, s) => s): string[] {
  const groups = new Map<string, { bad: ReportRow[]; all: number; verdict: Verdict; rank: number }>();
  for (const r of rows) {
    if (NOT_CHECKED.has(r.verdict)) continue;
    const key = r.kind === 'law' ? `law ${r.quantity}` : r.op === undefined && r.verdict === 'error' ? `golden data › ${r.file.split('/').pop()} › ${r.case}` : `${r.op ?? '?'} › ${r.quantity}`;
    const g = groups.get(key) ?? { bad: [], all: 0, verdict: 'pass' as Verdict, rank: rankOf(r) };
    g.all++;
    if (r.verdict === 'fail' || r.verdict === 'error') {
      g.bad.push(r);
      if (g.verdict !== 'error') g.verdict = r.verdict;
    }
    groups.set(key, g);
  }
  const failing = [...groups.entries()].filter(([, g]) => g.bad.length > 0).sort(([, a], [, b]) => a.rank - b.rank);
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

function coverageLine(c: Coverage): string {
  const parts = [`${c.compared} compared${c.failed > 0 ? ` [${c.failed} failed]` : ''}`];
  if (c.declined) parts.push(`${c.declined} declined`);
  if (c.notApplicable) parts.push(`${c.notApplicable} n/a`);
  if (c.notUnderstood) parts.push(`${c.notUnderstood} not understood`);
  if (c.skipped) parts.push(`${c.skipped} skipped`);
  return `${c.name.padEnd(44)} ${parts.join(', ')}`;
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
  const shown = opts.failuresOnly ? [] : report.rows.filter((r) => !NOT_CHECKED.has(r.verdict));

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
  if (report.golden) out.push(`  golden data: ${report.golden.dir} (${n(report.golden.files.length, 'file')} replayed, ${report.golden.skipped.length} not applicable)`);
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

  const skippedRows = report.rows.filter((r) => NOT_CHECKED.has(r.verdict)).sort((a, b) => [...NOT_CHECKED].indexOf(a.verdict) - [...NOT_CHECKED].indexOf(b.verdict));
  if (skippedRows.length > 0 || (report.golden && report.golden.skipped.length > 0)) {
    out.push('', 'not checked (DECLINED and UNREAD make the verdict INCOMPLETE; n/a and skip are stated, not counted against it)');
    for (const s of report.golden?.skipped ?? []) out.push(`  n/a  ${s.file}: ${s.reason}`);
    // One line per reason, so that one missing operation is one line.
    const groups = new Map<string, ReportRow[]>();
    for (const r of skippedRows) {
      const k = `${WORDS[r.verdict]}|${r.verdict === 'declined' || r.verdict === 'unread' ? `${r.case}${r.quantity ? ` › ${r.quantity}` : ''}: ` : ''}${r.detail ?? 'no reason given'}`;
      groups.set(k, [...(groups.get(k) ?? []), r]);
    }
    for (const [reason, list] of groups) {
      const files = [...new Set(list.map((r) => r.file))].join(', ');
      const [word, why] = [reason.slice(0, reason.indexOf('|')), reason.slice(reason.indexOf('|') + 1)];
      out.push(`  ${paint(list[0].verdict, word)}  ${list.length} check${list.length === 1 ? '' : 's'} in ${files}: ${why}`);
    }
  }

  if (bad.length > 0) out.push('', ...failureSummary(report.rows, paint));

  out.push('', 'coverage per file and per operation (compared [failed], declined, not applicable, not understood, skipped: not implemented or optional)');
  for (const c of report.coverage.files) out.push(`  ${coverageLine(c)}`);
  out.push('');
  for (const c of report.coverage.operations) out.push(`  ${coverageLine(c)}`);

  const t = report.totals;
  out.push('');
  const summary = `${t.pass} passed, ${t.fail} failed, ${t.error} errors, ${t.declined} declined, ${t.unread} not understood, ${t['n/a']} not applicable, ${t.skip} skipped (${report.rows.length} checks, ${report.seconds.toFixed(1)} s, ${report.precision})`;
  out.push(paint(report.verdict === 'OK' ? 'pass' : report.verdict === 'NOT OK' ? 'fail' : 'declined', `${report.verdict}: ${summary}`));
  if (report.verdict === 'INCOMPLETE') out.push(`  not checked: ${t.declined} declined, ${t.unread} not understood${t.pass === 0 ? ', nothing compared' : ''} (listed above)`);
  return `${out.join('\n')}\n`;
}
