import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCheck } from '../../src/cli/check.ts';
import { Report, failureSummary, formatTable, writeReportJson, type ReportRow } from '../../src/conformance/report.ts';
import { PYTHON, need, requirePython } from '../support/requires.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const tsx = JSON.stringify(join(root, 'node_modules/.bin/tsx'));
const server = (which: string): string => `${tsx} ${JSON.stringify(join(root, 'src/conformance/examples/server.ts'))} ${which}`;
// Debian's python3 with python3-numpy (CI installs it; without it these tests are skipped, saying so).
const numpy = requirePython(['numpy']);
const wrong = (flags = ''): string => `${JSON.stringify(PYTHON)} ${JSON.stringify(join(root, 'src/conformance/examples/python/wrong_ddpm.py'))} ${flags}`;

const bad = (r: ReportRow): boolean => r.verdict === 'fail' || r.verdict === 'error';
const group = (r: ReportRow): string => (r.kind === 'law' ? `law ${r.quantity}` : `${r.op} › ${r.quantity}`);

/**
 * What the two deliberate mistakes of wrong_ddpm.py can change. Mistake 1 (log β̃_0 unclipped) reaches the buffer
 * itself, every log-variance (and variance) read at t = 0 from it, the t = 0 decoder term of the bound, and the law
 * that checks the buffers against their definition; mistake 2 (DDIM with the model's ε) reaches the DDIM sample.
 */
const MAY_FAIL = new Set([
  'buffers › posterior_log_variance_clipped',
  'q_posterior_mean_variance › log_variance_clipped',
  'p_mean_variance › log_variance',
  'p_mean_variance › variance',
  'calc_bpd_loop › vb',
  'calc_bpd_loop › total_bpd',
  'training_losses › terms.loss',
  'training_losses › terms.vb',
  'ddim_step › sample',
  'law ddpm.ops.buffersConsistentWithBetas',
]);
/** What must fail: each mistake shows where it is plainest. */
const MUST_FAIL = ['buffers › posterior_log_variance_clipped', 'p_mean_variance › log_variance', 'calc_bpd_loop › vb', 'ddim_step › sample', 'law ddpm.ops.buffersConsistentWithBetas'];

describe('8.4 --impl CMD: implementations in other processes and languages, through the protocol', () => {
  it('`ddpm-spec check` with no arguments (the main job) passes on our reference, the UNet files included  [conformance.check.mainJobPasses]', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ddpm-main-'));
    try {
      const path = join(dir, 'report.json');
      // A child process on the default backend, as a user runs it (the backend re-runs of CI do not repeat it).
      const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
        execFile(process.execPath, [join(root, 'bin/ddpm-spec.mjs'), 'check', '--failures', '--json', path], { cwd: root, timeout: 240_000 }, (e, out) =>
          e && typeof (e as { code?: unknown }).code !== 'number' ? reject(e) : resolve({ code: e ? ((e as { code: number }).code ?? 1) : 0, stdout: out }),
        );
      });
      expect(stdout).toMatch(/\nOK: \d+ passed, 0 failed, 0 errors/);
      expect(code).toBe(0);
      const rep = Report.parse(JSON.parse(readFileSync(path, 'utf8')));
      // Only documentation and the manifest are not applicable (golden/README.md, upstream/README.md,
      // upstream/manifest.json), besides data whose reason names the property that replays it instead.
      const skipped = rep.golden!.skipped.filter((s) => !/replayed by the properties/.test(s.reason)).map((s) => s.file).sort();
      expect(skipped).toContain('upstream/README.md');
      expect(skipped).toContain('upstream/manifest.json');
      expect(skipped.filter((f) => !/(^|\/)(README\.md|manifest\.json)$/.test(f))).toEqual([]);
      for (const f of ['ho_unet_small_io.json', 'ho_unet_small_activations.safetensors', 'sampling_T10_ho_unet_small.json']) {
        expect(rep.rows.filter((r) => r.file === `upstream/${f}` && r.verdict === 'pass').length, f).toBeGreaterThan(1);
      }
      expect(rep.rows.filter((r) => r.kind === 'law' && r.verdict === 'pass').length).toBeGreaterThan(10);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('our TypeScript example server (the tfjs reference behind the protocol) passes every golden case and law  [conformance.impl.exampleServerPasses]', async () => {
    const rep = await runCheck({ impl: server('reference') });
    expect(rep.rows.filter(bad).map((r) => `${group(r)}: ${r.detail}`)).toEqual([]);
    expect(rep.ok).toBe(true);
    expect(rep.totals.pass).toBeGreaterThan(500);
    expect(rep.implementation.name).toMatch(/^reference \(tfjs, /);
  });

  it('through the protocol, the float64 spec gives the same verdicts and the same numbers as in process  [conformance.impl.protocolIsTransparent]', async () => {
    const only = ['id_q_functions', 'id_p_mean_variance', 'id_buffers_cosine_T20', 'id_buffers_linear_T1000', 'sampling_tiny_model'];
    const direct = await runCheck({ builtin: 'spec', only, laws: true });
    const viaProtocol = await runCheck({ impl: server('spec'), only, laws: true });
    const strip = (r: ReportRow) => ({ file: r.file, case: r.case, quantity: r.quantity, verdict: r.verdict, maxAbs: r.maxAbs, maxRel: r.maxRel });
    expect(viaProtocol.rows.length).toBeGreaterThan(300);
    expect(viaProtocol.rows.map(strip)).toEqual(direct.rows.map(strip));
  });

  it('the deliberately wrong Python example fails on exactly the quantities its two mistakes reach  [conformance.impl.wrongExampleFailsExactly]', async (ctx) => {
    need(ctx, numpy);
    const rep = await runCheck({ impl: wrong() });
    const failed = [...new Set(rep.rows.filter(bad).map(group))];
    expect(failed.filter((g) => !MAY_FAIL.has(g)), 'failures the mistakes cannot explain').toEqual([]);
    for (const g of MUST_FAIL) expect(failed, `${g} should fail`).toContain(g);
    expect(rep.rows.filter((r) => r.verdict === 'error')).toEqual([]);
    // Mistake 1 shows only where t = 0 is read: FIXED_SMALL and LEARNED_RANGE variances, never FIXED_LARGE or LEARNED.
    for (const r of rep.rows.filter((x) => bad(x) && x.op === 'p_mean_variance')) expect(r.case).toMatch(/FIXED_SMALL|LEARNED_RANGE\//);
    for (const r of rep.rows.filter((x) => bad(x) && x.op === 'buffers')) expect(r.detail).toMatch(/worst at \[0\]: actual -46\.05/);
    // Mistake 2 leaves x̂₀ alone (each step starts from the reference's own state): only the DDIM sample moves.
    expect(rep.rows.filter((r) => r.op === 'ddim_step' && r.quantity === 'pred_xstart' && r.verdict !== 'pass')).toEqual([]);
  });

  it('with its mistakes fixed, the same Python code passes: the report blames the mistakes, nothing else  [conformance.impl.fixedExamplePasses]', async (ctx) => {
    need(ctx, numpy);
    const rep = await runCheck({ impl: wrong('--fixed') });
    expect(rep.rows.filter(bad).map((r) => `${group(r)}: ${r.case}: ${r.detail}`)).toEqual([]);
    expect(rep.ok).toBe(true);
    expect(rep.totals.pass).toBeGreaterThan(400);
  });

  it('the report names what failed in a few lines, and its JSON form is written whole and validates  [conformance.report.readableAndJson]', async (ctx) => {
    need(ctx, numpy);
    const rep = await runCheck({ impl: wrong(), only: ['id_buffers_cosine_T20', 'sampling_tiny_model'], laws: false });
    const summary = failureSummary(rep.rows).join('\n');
    expect(summary).toMatch(/buffers › posterior_log_variance_clipped +1 of 1 +max \|Δ\| 41 +id_buffers_cosine_T20\.json/);
    expect(summary).toMatch(/ddim_step › sample +\d+ of \d+ +max \|Δ\| \d/);
    const table = formatTable(rep);
    expect(table).toMatch(/^ddpm-spec check: wrong_ddpm\.py \(numpy, float64, two deliberate mistakes\)\n  command: /);
    expect(table).toMatch(/\n  notes: deliberately wrong: /);
    expect(table).toMatch(/\nNOT OK: \d+ passed, \d+ failed, 0 errors, 0 declined, 0 not understood, \d+ not applicable, \d+ skipped \(\d+ checks, [\d.]+ s, float32\)\n$/);
    const dir = mkdtempSync(join(tmpdir(), 'ddpm-report-'));
    try {
      const path = join(dir, 'report.json');
      writeReportJson(path, rep);
      const back = Report.parse(JSON.parse(readFileSync(path, 'utf8')));
      expect(back.rows.length).toBe(rep.rows.length);
      expect(back.ok).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
