/**
 * Shared by the golden replay properties (5.x): load the cases of some files of `golden/upstream/` through the
 * replay engine (`src/golden`), replay them on an implementation, and fail with one readable line per row that
 * did not pass.
 */
import { expect } from 'vitest';
import { formatRow, loadGolden, replay, summarize, type DiffusionOps, type GoldenSet, type Row } from '../../src/golden/index.ts';

export const GOLDEN_DIR = 'golden/upstream';

/** The cases of the files whose names match. */
export function goldenSet(files: RegExp): GoldenSet {
  return loadGolden(GOLDEN_DIR, { only: (f) => files.test(f) });
}

/**
 * Replay every case of the set; every row must pass, or be skipped with a reason (a masked quantity). Returns
 * the rows for further claims.
 */
export async function expectReplayPasses(set: GoldenSet, impl: DiffusionOps, opts: { minRows?: number } = {}): Promise<Row[]> {
  const rows = await replay(set.cases, impl);
  const bad = rows.filter((r) => r.verdict === 'fail' || r.verdict === 'error');
  const counts = summarize(rows);
  expect(bad.map(formatRow).join('\n'), `${bad.length} of ${rows.length} rows did not pass on ${impl.name}`).toBe('');
  for (const r of rows.filter((x) => x.verdict === 'skip')) expect(r.detail.length, `a skipped row needs a reason: ${formatRow(r)}`).toBeGreaterThan(10);
  expect(counts.pass, 'rows that passed').toBeGreaterThanOrEqual(opts.minRows ?? 1);
  return rows;
}
