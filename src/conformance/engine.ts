/**
 * The conformance engine behind `ddpm-spec check`: read the golden folders, connect the implementation (built-in
 * or `--impl`), replay every case, the UNet files (built-in reference only) and the laws, and build the report
 * with its coverage and verdict. The CLI (`src/cli/check.ts`) keeps the options and the printing.
 *
 * @module
 */
import { existsSync, lstatSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../backend.ts';
import { UsageError } from '../cli/common.ts';
import { OP_NAMES, type DiffusionOps } from './ops.ts';
import { connectStdio, ImplError, type StdioOps } from './impl/stdio.ts';
import { LAWS_FILE, runLaws } from './laws.ts';
import { coverage, overallVerdict, totals, type Report, type ReportRow, type SkippedFile } from './report.ts';
import { UNET_SKIP, loadGolden, replay, skippedRows, type Row } from '../golden/index.ts';
import { replayUnetFiles } from '../golden/unet.ts';
import { DEFAULT_PRECISION } from './vocabulary.ts';

/** The package's own golden data (every folder under it is checked). */
export const DEFAULT_GOLDEN = fileURLToPath(new URL('../../golden/', import.meta.url));

/** What `check` was asked to do. */
export interface CheckOptions {
  /** Golden folder (default {@link DEFAULT_GOLDEN}); its sub-folders are checked too. */
  golden?: string;
  /** Command line of an implementation speaking the protocol. */
  impl?: string;
  /** Built-in implementation when `impl` is not given: `reference` (tfjs, default) or `spec` (float64). */
  builtin?: 'reference' | 'spec';
  /** tfjs backend for the built-in reference. */
  backend?: string;
  /** Run the golden cases (default true). */
  goldenCases?: boolean;
  /** Run the laws of the spec (default true). */
  laws?: boolean;
  /** Only golden files whose name contains one of these substrings. */
  only?: string[];
  /** Seconds per operation for `impl` (default 120). */
  timeoutS?: number;
  /** Seed of the laws' inputs (default 0). */
  seed?: number;
  /** Called with each row as it is made (progress). */
  onRow?: (r: ReportRow) => void;
  /** Called when a new golden file or the laws start (progress). */
  onStage?: (what: string) => void;
}

/**
 * Every folder under `root` (itself included) that holds files, in name order; `generators/` holds code, not data.
 *
 * @throws {@link UsageError} for a symbolic link whose target does not exist
 */
function goldenFolders(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) if (e.isSymbolicLink() && !existsSync(join(dir, e.name))) throw new UsageError(`--golden: ${join(dir, e.name)}: a symbolic link to ${readlinkSync(join(dir, e.name))}, which does not exist`);
    if (entries.some((e) => e.isFile())) out.push(dir);
    for (const e of entries) if (e.isDirectory() && !e.name.startsWith('.') && e.name !== 'generators') walk(join(dir, e.name));
  };
  walk(root);
  return out;
}

/** A golden replay row as a report row. */
function goldenRow(r: Row, prefix: string): ReportRow {
  const num = (x: number): number | null => (Number.isFinite(x) && (r.verdict === 'pass' || r.verdict === 'fail') ? x : null);
  return {
    kind: 'golden',
    file: `${prefix}${r.file}`,
    case: r.case,
    quantity: r.quantity,
    op: r.op,
    verdict: r.verdict,
    maxAbs: num(r.maxAbs),
    maxRel: num(r.maxRel),
    compared: r.compared,
    masked: r.masked,
    failures: r.failures,
    tolerance: r.tolerance === '' ? null : r.tolerance.replace(/\b(\d+(?:\.\d+)?)e([+-]?\d+)\b/g, (_m, a: string, b: string) => `${Number(a)}e${b}`),
    reason: r.reason === '' ? null : r.reason,
    detail: r.detail,
  };
}

async function builtinImpl(which: 'reference' | 'spec', backend: string | undefined): Promise<{ impl: DiffusionOps; backend?: string }> {
  if (which === 'spec') {
    const { createSpecOps } = await import('../conformance/impl/spec.ts');
    return { impl: createSpecOps() };
  }
  const report = await initBackend(backend ? { name: backend } : {});
  const { referenceOps } = await import('../conformance/impl/reference.ts');
  return { impl: referenceOps(), backend: report.chosen };
}

/**
 * Run the check and return the report (the table and the exit code are {@link checkCommand}'s business).
 *
 * @throws {@link UsageError} for a missing golden folder or an implementation that cannot be started
 * @throws FormatError for a malformed golden file (naming the file and the field)
 */
export async function runCheck(opts: CheckOptions = {}): Promise<Report> {
  const t0 = Date.now();
  const startedAt = new Date(t0).toISOString();
  const goldenRoot = resolve(opts.golden ?? DEFAULT_GOLDEN);
  const runGolden = opts.goldenCases ?? true;
  const runTheLaws = opts.laws ?? true;
  if (runGolden && (!existsSync(goldenRoot) || !statSync(goldenRoot).isDirectory())) {
    const dangling = !existsSync(goldenRoot) && lstatSync(goldenRoot, { throwIfNoEntry: false })?.isSymbolicLink();
    throw new UsageError(`--golden ${opts.golden ?? goldenRoot}: ${dangling ? `a symbolic link to ${readlinkSync(goldenRoot)}, which does not exist` : 'not a directory'}`);
  }
  const only = opts.only && opts.only.length > 0 ? (f: string) => opts.only!.some((s) => f.includes(s)) : undefined;

  // Read every golden file before starting anything: a malformed file stops the run here, naming file and field.
  const sets = runGolden
    ? goldenFolders(goldenRoot).map((dir) => {
        const rel = relative(goldenRoot, dir);
        return { dir, prefix: rel === '' ? '' : `${rel}/`, set: loadGolden(dir, { only }) };
      })
    : [];
  if (runGolden && sets.length === 0) throw new UsageError(`--golden ${opts.golden ?? goldenRoot}: no files there`);
  if (runGolden && only && sets.every((s) => s.set.files.every((f) => !only(f)))) {
    throw new UsageError(`--only ${opts.only!.join(' ')}: matches no file under --golden ${opts.golden ?? goldenRoot}`);
  }

  let impl: DiffusionOps;
  let backend: string | undefined;
  let stdio: StdioOps | undefined;
  if (opts.impl !== undefined) {
    try {
      stdio = await connectStdio(opts.impl, { timeoutS: opts.timeoutS });
    } catch (e) {
      if (e instanceof ImplError) throw new UsageError(e.message);
      throw e;
    }
    impl = stdio;
  } else {
    ({ impl, backend } = await builtinImpl(opts.builtin ?? 'reference', opts.backend));
  }

  const precision = impl.precision ?? DEFAULT_PRECISION;
  const withUnet = opts.impl === undefined && (opts.builtin ?? 'reference') === 'reference';
  const rows: ReportRow[] = [];
  const add = (r: ReportRow): void => {
    rows.push(r);
    opts.onRow?.(r);
  };
  const skippedFiles: SkippedFile[] = [];
  const files: string[] = [];
  try {
    for (const { dir, prefix, set } of sets) {
      // Our reference also has the UNet: replay the UNet files the readers leave out.
      const unetFiles = withUnet ? await replayUnetFiles(dir, impl, (r) => add(goldenRow(r, prefix)), only, (f) => opts.onStage?.(`${prefix}${f}`)) : [];
      files.push(...unetFiles.filter((f) => f.endsWith('.json') || f.includes('_activations')).map((f) => `${prefix}${f}`));
      for (const s of set.skipped) {
        if (unetFiles.includes(s.file)) continue;
        const reason = s.reason === UNET_SKIP && !withUnet ? "a UNet file: the operation vocabulary (and so the protocol) has no network operation; only the built-in tfjs reference replays it" : s.reason;
        // Files not applicable are listed with the reason; a file no reader knows is a row (not understood).
        if (s.case === undefined && s.quantity === undefined && s.kind === 'not applicable') skippedFiles.push({ file: `${prefix}${s.file}`, reason });
        else for (const r of skippedRows([{ ...s, reason }])) add(goldenRow(r, prefix));
      }
      const byFile = new Map<string, typeof set.cases>();
      for (const c of set.cases) byFile.set(c.file, [...(byFile.get(c.file) ?? []), c]);
      for (const [file, cases] of byFile) {
        files.push(`${prefix}${file}`);
        opts.onStage?.(`${prefix}${file} (${cases.length} cases)`);
        await replay(cases, impl, (r) => add(goldenRow(r, prefix)), { precision });
      }
    }
    if (runTheLaws) {
      opts.onStage?.(LAWS_FILE);
      await runLaws(impl, { precision, seed: opts.seed, onRow: add });
    }
  } finally {
    await stdio?.close();
  }

  if (rows.length === 0) {
    const why = skippedFiles.length > 0 ? `every file was skipped (${skippedFiles[0].file}: ${skippedFiles[0].reason}${skippedFiles.length > 1 ? `; and ${skippedFiles.length - 1} more` : ''})` : 'the golden files hold no cases';
    throw new UsageError(`--golden ${opts.golden ?? goldenRoot}: nothing to check: ${why}${runTheLaws ? '' : ', and --no-laws leaves out the laws'}`);
  }
  const t = totals(rows);
  const operations = stdio ? [...stdio.supported] : OP_NAMES.filter((op) => typeof impl[op] === 'function');
  return {
    tool: 'ddpm-spec check',
    implementation: {
      name: impl.name,
      ...(stdio ? { command: stdio.command } : {}),
      ...(stdio?.notes ? { notes: stdio.notes } : {}),
      operations,
    },
    ...(backend ? { backend } : {}),
    golden: runGolden ? { dir: opts.golden ?? relative(process.cwd(), goldenRoot) ?? goldenRoot, files, skipped: skippedFiles } : null,
    laws: runTheLaws,
    rows,
    totals: t,
    coverage: { files: coverage(rows, 'file'), operations: coverage(rows, 'op') },
    verdict: overallVerdict(t),
    ok: overallVerdict(t) === 'OK',
    precision,
    startedAt,
    seconds: (Date.now() - t0) / 1000,
  };
}

