/**
 * Glue between the laws of the spec (`ddpmLaws.ts`: plain async checks over any {@link DiffusionOps}) and the
 * report of `ddpm-spec check`.
 *
 * A law whose operations the implementation leaves out is skipped (stated in the report); a law whose operation
 * the implementation lists but declines ("unsupported") is `declined`, which makes the verdict INCOMPLETE.
 *
 * @module
 */
import { DDPM_LAWS, LAW_TOL, type Law, type LawResult } from './ddpmLaws.ts';
import { fmt } from '../numeric/close.ts';
import type { Tolerance } from '../numeric/tolerance.ts';
import { OpUnsupported, type DiffusionOps } from './ops.ts';
import type { ReportRow } from './report.ts';
import { DEFAULT_PRECISION, type Precision } from './vocabulary.ts';

/** The group name the law rows carry in the report's `file` column. */
export const LAWS_FILE = 'laws of the spec';

/** Which tolerance the laws use: the table of the declared precision. */
export function lawTolerance(precision: Precision): Tolerance {
  return LAW_TOL[precision];
}

/** One law's result as a report row. */
export function lawRow(r: LawResult, law?: Pick<Law, 'needs'>): ReportRow {
  const declined = r.verdict === 'error' && r.detail.startsWith(`${OpUnsupported.name}:`);
  const tol = r.tolerance;
  return {
    kind: 'law',
    file: LAWS_FILE,
    case: r.claim,
    quantity: r.id,
    ...(law ? { needs: [...law.needs] } : {}),
    verdict: declined ? 'declined' : r.verdict,
    maxAbs: r.maxAbs,
    maxRel: null,
    compared: r.comparisons,
    tolerance: tol ? `rtol ${fmt(tol.rtol)}, atol ${fmt(tol.atol)} (on the size of the terms)` : null,
    reason: tol?.reason ?? null,
    detail: declined ? r.detail.slice(`${OpUnsupported.name}: `.length) : r.detail,
  };
}

/** Run every law of the diffusion model on `impl`, with the tolerance of its declared precision; `onRow` sees each row. */
export async function runLaws(impl: DiffusionOps, opts: { precision?: Precision; seed?: number; onRow?: (r: ReportRow) => void }): Promise<ReportRow[]> {
  const rows: ReportRow[] = [];
  const precision = opts.precision ?? impl.precision ?? DEFAULT_PRECISION;
  for (const law of DDPM_LAWS) {
    const row = lawRow(await law.run(impl, { tol: lawTolerance(precision), precision, seed: opts.seed ?? 0 }), law);
    rows.push(row);
    opts.onRow?.(row);
  }
  return rows;
}
