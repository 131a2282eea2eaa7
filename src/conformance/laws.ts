/**
 * Glue between the laws of the spec (`ddpmLaws.ts`: plain async checks over any {@link DiffusionOps})
 * and the report of `ddpm-spec check`.
 *
 * @module
 */
import { DDPM_LAWS, LAW_TOL, type LawResult } from './ddpmLaws.ts';
import { fmt } from '../numeric/close.ts';
import type { Tolerance } from '../numeric/tolerance.ts';
import type { DiffusionOps } from './ops.ts';
import type { ReportRow } from './report.ts';
import { OpUnsupported } from './impl/stdio.ts';

/** The group name the law rows carry in the report's `file` column. */
export const LAWS_FILE = 'laws of the spec';

/** Which tolerance the laws use: float64 for the float64 spec, float32 (looser) for everything else. */
export function lawTolerance(arith: 'float64' | 'float32'): Tolerance {
  return LAW_TOL[arith];
}

/** One law's result as a report row. */
export function lawRow(r: LawResult): ReportRow {
  const unsupported = r.verdict === 'error' && r.detail.startsWith(`${OpUnsupported.name}:`);
  const tol = r.tolerance;
  return {
    kind: 'law',
    file: LAWS_FILE,
    case: r.claim,
    quantity: r.id,
    verdict: unsupported ? 'skip' : r.verdict,
    maxAbs: r.maxAbs,
    maxRel: null,
    compared: r.comparisons,
    tolerance: tol ? `rtol ${fmt(tol.rtol)}, atol ${fmt(tol.atol)} (on the size of the terms)` : null,
    reason: tol?.reason ?? null,
    detail: unsupported ? r.detail.slice(`${OpUnsupported.name}: `.length) : r.detail,
  };
}

/** Run every law of the diffusion model on `impl`; `onRow` sees each row as it is made. */
export async function runLaws(impl: DiffusionOps, opts: { arith: 'float64' | 'float32'; seed?: number; onRow?: (r: ReportRow) => void }): Promise<ReportRow[]> {
  const rows: ReportRow[] = [];
  for (const law of DDPM_LAWS) {
    const row = lawRow(await law.run(impl, { tol: lawTolerance(opts.arith), seed: opts.seed ?? 0 }));
    rows.push(row);
    opts.onRow?.(row);
  }
  return rows;
}
