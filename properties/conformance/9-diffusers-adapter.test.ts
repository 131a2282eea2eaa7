/**
 * The diffusers adapter example (src/conformance/adapters/diffusers_adapter.py) run against the files recorded
 * from diffusers: diffusers must pass its own data through the protocol, and our spec through the protocol must
 * give the same verdicts.
 *
 * It needs Debian's python3-torch and diffusers' scheduler files: the installed `diffusers` package, or a clone
 * named by DIFFUSERS_GIT_DIR (with DIFFUSERS_COMMIT, default the pinned 58eb52c…). Without either, the adapter
 * case is skipped and says so in its title.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCheck } from '../../src/cli/check.ts';
import type { ReportRow } from '../../src/conformance/report.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const PINNED = '58eb52c0803ea9af3abec60841c2a093bdf1f951';
const gitDir = process.env.DIFFUSERS_GIT_DIR;
const adapter = `/usr/bin/python3 ${JSON.stringify(join(root, 'src/conformance/adapters/diffusers_adapter.py'))}${gitDir ? ` --git-dir ${JSON.stringify(gitDir)} --commit ${process.env.DIFFUSERS_COMMIT ?? PINNED}` : ''}`;

function available(): boolean {
  try {
    execFileSync('/usr/bin/python3', ['-c', gitDir ? 'import torch' : 'import torch, diffusers'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const bad = (r: ReportRow): boolean => r.verdict === 'fail' || r.verdict === 'error';

describe('8.9 The diffusers adapter against the data recorded from diffusers', () => {
  it.skipIf(!available())(
    'diffusers, served by the adapter example, passes every diffusers golden case (needs python3-torch and diffusers or DIFFUSERS_GIT_DIR)  [conformance.diffusers.adapterPasses]',
    async () => {
      const rep = await runCheck({ impl: adapter, only: ['diffusers_'], laws: false });
      expect(rep.rows.filter(bad).map((r) => `${r.op} › ${r.quantity}: ${r.detail}`)).toEqual([]);
      expect(rep.totals.pass).toBeGreaterThan(800);
      expect(rep.implementation.name).toMatch(/DDPMScheduler\/DDIMScheduler/);
    },
    120_000,
  );
});
