/**
 * The golden replay engine, shared by the golden properties and `ddpm-spec check`.
 *
 * {@link loadGolden} turns every file of a golden folder (in the formats of `golden/upstream/README.md`)
 * into cases: which operation of the vocabulary (`src/conformance/ops.ts`) to call with which inputs, and the
 * expected outputs with a tolerance and its reason per quantity. Everything is read from the files: shapes,
 * configurations, timesteps, schedules; the same code replays files regenerated with other seeds or
 * configurations. A file, record or quantity is either compared, not applicable (with the reason), or not
 * understood; a record a reader cannot use is an error entry naming the file, record and field, and the other
 * records are still read. {@link replay} calls an
 * implementation and compares, one {@link Row} per checked quantity.
 *
 * @module
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { FormatError, jsonErrorWithoutInput } from '../formats/errors.ts';
import { BuffersFile, CasesFile, DiffusersCasesFile, DiffusersLoopsFile, DiffusersVarianceFile, EmbeddingFile, GroupsFile, SamplingFile, knownKeys } from './formats.ts';
import { fmt } from '../numeric/close.ts';
import { compareCheck } from './compare.ts';
import { CannotRun, ScheduleIndex } from './context.ts';
import { readTimestepEmbedding } from './readers/embedding.ts';
import { readPMeanVariance, readQFunctions } from './readers/forward.ts';
import { readLossesElementwise } from './readers/likelihood.ts';
import { readCalcBpdLoop, readTrainingLosses } from './readers/losses.ts';
import { readSamplingTiny } from './readers/sampling.ts';
import { indexHoSchedules, readHoSchedules, readIdBuffers } from './readers/schedules.ts';
import { readDiffusersBuffers, readDiffusersLoops, readDiffusersSetTimesteps, readDiffusersVariance } from './readers/diffusers.ts';
import { OpUnsupported } from '../conformance/ops.ts';
import { DEFAULT_PRECISION } from '../conformance/vocabulary.ts';
import type { DiffusionOps, GoldenCase, GoldenCases, ReplayContext, Row, Skip, SkipKind, Verdict } from './types.ts';

export * from './types.ts';
export { GOLDEN_TOL, gradTol } from './tolerances.ts';
export { CannotRun, ScheduleIndex, parseScheduleName } from './context.ts';

/** The reason UNet files are skipped here. */
export const UNET_SKIP = 'UNet: replayed by the UNet properties';

type Reader = (file: string, root: unknown, index: ScheduleIndex) => GoldenCases;

/** Which format and reader a file has (by name, as the README lists them): the schema is parsed first. */
const READERS: Array<{ match: RegExp; schema: z.ZodObject; read: Reader }> = [
  { match: /^id_buffers_.*\.json$/, schema: BuffersFile, read: readIdBuffers },
  { match: /^ho_beta_schedules_and_buffers\.json$/, schema: BuffersFile, read: (f, r) => readHoSchedules(f, r) },
  { match: /^id_q_functions\.json$/, schema: CasesFile, read: readQFunctions },
  { match: /^id_p_mean_variance\.json$/, schema: CasesFile, read: readPMeanVariance },
  { match: /^id_losses_elementwise\.json$/, schema: GroupsFile, read: (f, r) => readLossesElementwise(f, r) },
  { match: /^id_training_losses\.json$/, schema: CasesFile, read: readTrainingLosses },
  { match: /^id_calc_bpd_loop\.json$/, schema: CasesFile, read: readCalcBpdLoop },
  { match: /^timestep_embedding\.json$/, schema: EmbeddingFile, read: (f, r) => readTimestepEmbedding(f, r) },
  { match: /^sampling_tiny_model\.json$/, schema: SamplingFile, read: readSamplingTiny },
  { match: /^diffusers_set_timesteps\.json$/, schema: DiffusersCasesFile, read: (f, r) => readDiffusersSetTimesteps(f, r) },
  { match: /^diffusers_variance\.json$/, schema: DiffusersVarianceFile, read: (f, r) => readDiffusersVariance(f, r) },
  { match: /^diffusers_buffers\.json$/, schema: DiffusersCasesFile, read: (f, r) => readDiffusersBuffers(f, r) },
  { match: /^diffusers_loops\.json$/, schema: DiffusersLoopsFile, read: (f, r) => readDiffusersLoops(f, r) },
];

/** Files that are not data, or data for another part of the project. */
const NOT_HERE: Array<{ match: RegExp; reason: string; kind?: SkipKind }> = [
  { match: /^README\.md$/, reason: 'documentation of the folder, not data', kind: 'not applicable' },
  { match: /^manifest\.json$/, reason: 'provenance and SHA-256 of every file: checked by the integrity properties [golden.integrity.*]', kind: 'not applicable' },
  { match: /^ho_unet_small.*$/, reason: UNET_SKIP, kind: 'not applicable' },
  { match: /^sampling_T\d+_ho_unet_small\.json$/, reason: UNET_SKIP, kind: 'not applicable' },
  {
    match: /^diffusers_tests(_noise\.safetensors|\.json)$/,
    reason: "diffusers' own test loops (1000 steps of [4,3,8,8], sums of |x|): replayed by the properties [ddpm.diffusers.upstreamDdpmFullLoops], [ddpm.diffusers.upstreamDdpmWithNoise], [ddpm.diffusers.upstreamDdimFullLoops] and [reference.diffusers.upstreamDdpmLoops]",
    kind: 'not applicable',
  },
];

/** What a folder turns into. */
export interface GoldenSet extends GoldenCases {
  /** Every file looked at, in name order. */
  files: string[];
  /** The schedules the folder records (used by the cases at run time). */
  index: ScheduleIndex;
}

/**
 * Read one golden file into cases (a file whose name no reader claims is skipped).
 *
 * @throws {@link FormatError} naming the file and the field when the file is malformed
 */
export function readGoldenFile(path: string, index: ScheduleIndex, opts: { name?: string } = {}): GoldenCases {
  const file = opts.name ?? basename(path);
  for (const n of NOT_HERE) if (n.match.test(file)) return { cases: [], skipped: [{ file, reason: n.reason, kind: n.kind }] };
  const reader = READERS.find((r) => r.match.test(file));
  if (!reader) return { cases: [], skipped: [{ file, reason: 'no reader for this file' }] };
  let root: unknown;
  try {
    root = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new FormatError(file, '', `not readable JSON (${jsonErrorWithoutInput(e)})`);
  }
  return readGoldenJson(file, root, index);
}

/** Read an already parsed golden file (for tests that alter a file in memory). */
export function readGoldenJson(file: string, root: unknown, index: ScheduleIndex): GoldenCases {
  if (typeof root !== 'object' || root === null || Array.isArray(root)) throw new FormatError(file, '', 'expected a JSON object at the top level');
  const reader = READERS.find((r) => r.match.test(file));
  if (!reader) return { cases: [], skipped: [{ file, reason: 'no reader for this file' }] };
  const frame = reader.schema.safeParse(root);
  if (!frame.success) {
    const issue = frame.error.issues[0];
    throw new FormatError(file, issue.path.join('.'), issue.message);
  }
  if (/^ho_beta_schedules_and_buffers\.json$/.test(file)) indexHoSchedules(file, root, index);
  const out = reader.read(file, root, index);
  const known = knownKeys(reader.schema);
  for (const k of known ? Object.keys(root).filter((x) => !known.includes(x)) : []) out.skipped.push({ file, case: k, reason: 'no reader for this top-level field' });
  return out;
}

/**
 * Read every file of a golden folder: a malformed file or record becomes an error entry in `skipped`
 * (kind `error`), and the rest is still read.
 */
export function loadGolden(dir: string, opts: { only?: (file: string) => boolean } = {}): GoldenSet {
  const index = new ScheduleIndex();
  // Regular files only: sub-folders are golden folders of their own (`ddpm-spec check` walks them).
  const files = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => e.name)
    .sort();
  const cases: GoldenCase[] = [];
  const skipped: Skip[] = [];
  // The folder's schedules are indexed from every buffer file, whichever files are replayed.
  for (const f of files) {
    if (!/^id_buffers_.*\.json$|^ho_beta_schedules_and_buffers\.json$/.test(f) || (opts.only?.(f) ?? true)) continue;
    try {
      readGoldenFile(join(dir, f), index);
    } catch (e) {
      if (!(e instanceof FormatError)) throw e; // reported when that file itself is checked
    }
  }
  for (const f of files) {
    if (opts.only && !opts.only(f)) continue;
    // A file that cannot be read at all is one error row; the other files are still read.
    try {
      const r = readGoldenFile(join(dir, f), index);
      cases.push(...r.cases);
      skipped.push(...r.skipped);
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      skipped.push({ file: f, case: '(file)', quantity: e.field, reason: e.problem, kind: 'error' });
    }
  }
  return { files, index, cases, skipped };
}

function skipRow(file: string, kase: string, quantity: string, reason: string, op?: GoldenCase['op'], verdict: Verdict = 'skip'): Row {
  return { file, case: kase, quantity, op, verdict, maxAbs: NaN, maxRel: NaN, compared: 0, masked: 0, failures: verdict === 'error' ? 1 : 0, tolerance: '', reason, detail: reason };
}

const SKIP_VERDICT: Record<SkipKind, Verdict> = { 'not applicable': 'n/a', 'not understood': 'unread', error: 'error' };

/** What the readers left out, as rows: not applicable (n/a), not understood (unread), or a record error. */
export function skippedRows(skipped: Skip[]): Row[] {
  return skipped.map((s) => skipRow(s.file, s.case ?? '(file)', s.quantity ?? '', s.reason, undefined, SKIP_VERDICT[s.kind ?? 'not understood']));
}

const DEFAULT_CONTEXT: ReplayContext = { precision: DEFAULT_PRECISION };

/** Replay one case on an implementation: one row per check (or one row for an expected refusal). */
export async function replayCase(c: GoldenCase, impl: DiffusionOps, ctx: ReplayContext = DEFAULT_CONTEXT): Promise<Row[]> {
  const fn = impl[c.op];
  const quantities = c.checks.map((k) => k.quantity).join(', ') || 'refuses';
  if (typeof fn !== 'function') return [skipRow(c.file, c.id, quantities, `operation ${c.op} is not implemented by ${impl.name}`, c.op)];
  const head = { file: c.file, case: c.note ? `${c.id} [${c.note}]` : c.id, op: c.op };
  let outputs: Record<string, { shape: number[]; data: Float64Array }>;
  try {
    outputs = await c.run(impl);
  } catch (e) {
    const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    if (e instanceof CannotRun) return [skipRow(c.file, c.id, '', e.message, c.op)];
    // Declined: an operation the implementation lists must answer its cases; only an optional part may be left out.
    if (e instanceof OpUnsupported) {
      return [skipRow(c.file, c.id, quantities, c.optional ? `${e.message} (${c.optional})` : e.message, c.op, c.optional ? 'skip' : 'declined')];
    }
    if (c.expectError !== undefined) {
      return [{ ...head, quantity: 'refuses', verdict: 'pass', maxAbs: 0, maxRel: 0, compared: 1, masked: 0, failures: 0, tolerance: 'must throw', reason: `the reference code raised ${c.expectError}`, detail: msg }];
    }
    return [{ ...head, quantity: quantities, verdict: 'error', maxAbs: NaN, maxRel: NaN, compared: 0, masked: 0, failures: 1, tolerance: '', reason: '', detail: msg }];
  }
  if (c.expectError !== undefined) {
    return [{ ...head, quantity: 'refuses', verdict: 'fail', maxAbs: NaN, maxRel: NaN, compared: 1, masked: 0, failures: 1, tolerance: 'must throw', reason: `the reference code raised ${c.expectError}`, detail: 'the operation returned instead of refusing' }];
  }
  // A case whose only claim is that the operation accepts its input (the reference code constructed it).
  if (c.checks.length === 0) return [{ ...head, quantity: 'accepts', verdict: 'pass', maxAbs: 0, maxRel: 0, compared: 1, masked: 0, failures: 0, tolerance: 'must return', reason: 'the reference code accepted this input', detail: 'the operation returned' }];
  const rows: Row[] = [];
  for (const k of c.checks) {
    try {
      const elementAtol = typeof k.elementAtol === 'function' ? await k.elementAtol(impl, ctx) : k.elementAtol;
      rows.push({ ...head, ...compareCheck(outputs[k.quantity], { ...k, elementAtol, precision: ctx.precision, mask: elementAtol?.mask ?? k.mask }) });
    } catch (e) {
      if (e instanceof CannotRun) rows.push(skipRow(c.file, c.id, k.quantity, e.message, c.op));
      else rows.push({ ...head, quantity: k.quantity, verdict: 'error', maxAbs: NaN, maxRel: NaN, compared: 0, masked: 0, failures: 1, tolerance: '', reason: '', detail: String(e) });
    }
  }
  return rows;
}

/** Replay cases one after the other (tfjs backends are not re-entrant). */
export async function replay(cases: GoldenCase[], impl: DiffusionOps, onRow?: (r: Row) => void, ctx: ReplayContext = { precision: impl.precision ?? DEFAULT_PRECISION }): Promise<Row[]> {
  const rows: Row[] = [];
  for (const c of cases) {
    for (const r of await replayCase(c, impl, ctx)) {
      rows.push(r);
      onRow?.(r);
    }
  }
  return rows;
}

/** One line per row, for reports and failure messages. */
export function formatRow(r: Row): string {
  const nums = r.verdict === 'skip' ? '' : ` max|Δ| ${fmt(r.maxAbs)}, max rel ${fmt(r.maxRel)}, ${r.compared} compared${r.masked ? `, ${r.masked} masked` : ''};`;
  return `${r.verdict.toUpperCase()} ${r.file} › ${r.case} › ${r.quantity}:${nums} ${r.tolerance ? `tolerance ${r.tolerance} (${r.reason}); ` : ''}${r.detail}`;
}

/** Counts per verdict. */
export function summarize(rows: Row[]): Record<Row['verdict'], number> {
  const out = { pass: 0, fail: 0, error: 0, declined: 0, unread: 0, 'n/a': 0, skip: 0 };
  for (const r of rows) out[r.verdict]++;
  return out;
}
