import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCheck } from '../../src/cli/check.ts';
import { main } from '../../src/cli/main.ts';
import type { Report, ReportRow } from '../../src/conformance/report.ts';
import { FormatError } from '../../src/formats/errors.ts';

const upstream = fileURLToPath(new URL('../../golden/upstream/', import.meta.url));
// The float64 spec as the implementation: no tfjs, so the test is quick and backend-independent. The files:
// p_mean_variance (48 cases × 4 outputs: only outputs, no output of one case is another's input) and the
// buffers of cosine T = 20 (which p_mean_variance reads its schedule from).
const FILES = ['id_p_mean_variance.json', 'id_buffers_cosine_T20.json', 'id_buffers_linear_T1000.json'];

let dir = '';
const key = (r: ReportRow): string => `${r.file} › ${r.case} › ${r.quantity}`;
const failing = (rep: Report): string[] => rep.rows.filter((r) => r.verdict === 'fail' || r.verdict === 'error').map(key).sort();

/** Run `ddpm-spec check` through the command line, capturing stdout and stderr. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const wo = process.stdout.write.bind(process.stdout);
  const we = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  try {
    const code = await main(['node', 'ddpm-spec', 'check', ...args]);
    return { code, out, err };
  } finally {
    process.stdout.write = wo;
    process.stderr.write = we;
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ddpm-golden-'));
  for (const f of FILES) copyFileSync(join(upstream, f), join(dir, f));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('8.3 --golden DIR: any folder in the golden formats; an altered number fails exactly its case', () => {
  it('one altered number in a copy of the golden data fails exactly the case and quantity that hold it  [conformance.golden.alteredNumberFailsItsCase]', async () => {
    const base = await runCheck({ golden: dir, builtin: 'spec', laws: false });
    const target = base.rows.find((r) => r.file === 'id_p_mean_variance.json' && r.case.startsWith('cases[30] ') && r.quantity === 'mean');
    expect(target?.verdict, 'the row to alter must pass before the change').toBe('pass');

    const path = join(dir, 'id_p_mean_variance.json');
    const original = readFileSync(path, 'utf8');
    const root = JSON.parse(original);
    root.cases[30].outputs.mean.data[1][0][2][3] += 0.01; // rtol 1e−4 + atol 1e−5 cannot absorb 0.01
    writeFileSync(path, JSON.stringify(root));
    try {
      const altered = await runCheck({ golden: dir, builtin: 'spec', laws: false });
      const newly = failing(altered).filter((k) => !failing(base).includes(k));
      const healed = failing(base).filter((k) => !failing(altered).includes(k));
      expect(newly).toEqual([key(target!)]);
      expect(healed).toEqual([]);
      const row = altered.rows.find((r) => key(r) === key(target!))!;
      expect(row.detail).toMatch(/^1 of 150 outside the bound; worst at \[1,0,2,3\]/);
      expect(row.maxAbs).toBeGreaterThan(0.0099);

      // The same through the command line: exit code 1 and the case named among the failures.
      const { code, out } = await cli(['--golden', dir, '--builtin', 'spec', '--no-laws', '--failures']);
      expect(code).toBe(1);
      expect(out).toContain(`FAIL  ${key(target!)}`);
      expect(out).toMatch(/NOT OK: \d+ passed, [1-9]\d* failed/);
    } finally {
      writeFileSync(path, original);
    }
  });

  it('a malformed record is an error row naming the file, the record and the field, and the other records are still checked  [conformance.golden.malformedNamed]', async () => {
    const path = join(dir, 'id_p_mean_variance.json');
    const original = readFileSync(path, 'utf8');
    const root = JSON.parse(original);
    root.cases[2].inputs.x.shape = [3, 2, 5];
    writeFileSync(path, JSON.stringify(root));
    try {
      const rep = await runCheck({ golden: dir, builtin: 'spec', laws: false });
      const errors = rep.rows.filter((r) => r.verdict === 'error');
      expect(errors.map((r) => `${r.file} › ${r.case} › ${r.quantity}`)).toEqual(['id_p_mean_variance.json › cases[2] › cases.2.inputs.x.data[0][0][0]']);
      expect(rep.rows.filter((r) => r.file === 'id_p_mean_variance.json' && r.verdict === 'pass').length, 'the other 47 cases × 4 outputs').toBe(47 * 4);
      expect(rep.verdict).toBe('NOT OK');
      const { code, out } = await cli(['--golden', dir, '--builtin', 'spec', '--no-laws', '--failures']);
      expect(code).toBe(1);
      expect(out).toMatch(/ERROR  id_p_mean_variance\.json › cases\[2\] › cases\.2\.inputs\.x/);
      expect(out).toMatch(/what failed .*\n  golden data › id_p_mean_variance\.json › cases\[2\]/);
    } finally {
      writeFileSync(path, original);
    }
  });

  it('a file no reader knows is not understood, and the verdict is INCOMPLETE (exit 3), not OK  [conformance.golden.unknownFileSkipped]', async () => {
    const extra = join(dir, 'my_new_experiment.json');
    writeFileSync(extra, '{"meta": {}}');
    try {
      const rep = await runCheck({ golden: dir, builtin: 'spec', laws: false, only: ['my_new', 'cosine_T20'] });
      expect(rep.rows.filter((r) => r.verdict === 'unread').map((r) => `${r.file}: ${r.detail}`)).toEqual(['my_new_experiment.json: no reader for this file']);
      expect(rep.totals.pass).toBeGreaterThan(10);
      expect(rep.verdict).toBe('INCOMPLETE');
      const { out, code } = await cli(['--golden', dir, '--builtin', 'spec', '--no-laws', '--only', 'my_new', 'cosine_T20']);
      expect(out).toMatch(/not checked .*\n(.*\n)*  UNREAD  1 check in my_new_experiment\.json: \(file\): no reader for this file/);
      expect(out).toMatch(/\nINCOMPLETE: \d+ passed, 0 failed, 0 errors, 0 declined, 1 not understood/);
      expect(code).toBe(3);
    } finally {
      rmSync(extra);
    }
  });

  it('a folder that does not exist is a usage error (exit code 2), not an empty pass  [conformance.golden.missingFolder]', async () => {
    const { code, err } = await cli(['--golden', join(dir, 'nope'), '--builtin', 'spec']);
    expect(code).toBe(2);
    expect(err).toMatch(/--golden .*nope: not a directory/);
  });
});
