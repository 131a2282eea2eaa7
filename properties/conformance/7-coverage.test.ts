/**
 * 8.7 Coverage is part of the verdict: golden folders regenerated with a record missing a needed field, an unknown
 * file and an unknown field (in the upstream formats and in diffusers' files), and implementations that decline cases or leave out gradients. Each shows up as an
 * error row, DECLINED or UNREAD with the right name, the other records are still checked, and the verdict says so.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCheck } from '../../src/cli/check.ts';
import { EXIT_CODES, failureSummary, type Report, type ReportRow } from '../../src/conformance/report.ts';
import { PYTHON, need, requirePython } from '../support/requires.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const upstream = join(root, 'golden/upstream');
const tsx = JSON.stringify(join(root, 'node_modules/.bin/tsx'));
const server = (args: string): string => `${tsx} ${JSON.stringify(join(root, 'src/conformance/examples/server.ts'))} ${args}`;
// Debian's python3 with python3-numpy (the python3 first on PATH may lack numpy); without it these tests are skipped,
// saying which package to install, and fail under CI=true.
const numpy = requirePython(['numpy']);
const numpyDdpm = (flags: string): string => `${JSON.stringify(PYTHON)} ${JSON.stringify(join(root, 'src/conformance/examples/python/wrong_ddpm.py'))} ${flags}`;

const name = (r: ReportRow): string => `${r.file} › ${r.case.replace(/ \[.*\]$/, '')} › ${r.quantity}`;
const withVerdict = (rep: Report, v: ReportRow['verdict']): ReportRow[] => rep.rows.filter((r) => r.verdict === v);

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ddpm-coverage-'));
  for (const f of ['sampling_tiny_model.json', 'id_buffers_linear_T1000.json', 'id_buffers_cosine_T1000.json', 'id_p_mean_variance.json', 'id_buffers_cosine_T20.json']) {
    copyFileSync(join(upstream, f), join(dir, f));
  }
  // A regenerated sampling file: the respaced record has no args (its betas and timestep map are recorded; the
  // base schedule and section counts are in its key), and one run has a field nobody knows.
  const s = JSON.parse(readFileSync(join(upstream, 'sampling_tiny_model.json'), 'utf8'));
  delete s.spaced_ddim20_linear1000.args;
  s.runs[0].my_seed_notes = 'a field no reader knows';
  writeFileSync(join(dir, 'sampling_tiny_model.json'), JSON.stringify(s));
  writeFileSync(join(dir, 'my_new_experiment.json'), '{"meta": {"function": "something new"}, "cases": []}');
  // A known format whose frame is wrong (its schema is parsed before any case is built), and a known file with a
  // top-level field its format does not define.
  const q = JSON.parse(readFileSync(join(upstream, 'id_q_functions.json'), 'utf8'));
  delete q.meta.commit;
  writeFileSync(join(dir, 'id_q_functions.json'), JSON.stringify(q));
  const p = JSON.parse(readFileSync(join(upstream, 'id_p_mean_variance.json'), 'utf8'));
  p.my_extra_group = { note: 'a top-level field nobody reads' };
  writeFileSync(join(dir, 'id_p_mean_variance.json'), JSON.stringify(p));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('8.7 Coverage is part of the verdict', () => {
  it('a record without a needed field, an unknown file and an unknown field are named, and the rest is still checked  [conformance.coverage.regeneratedFolder]', async () => {
    const rep = await runCheck({ golden: dir, builtin: 'spec', laws: false });
    // The respaced record without args: its space_timesteps, respace and buffers cases run from what it records;
    // only the step cases, which need the mean and variance types, are an error row naming the record and field.
    expect(withVerdict(rep, 'error').map((r) => `${name(r)}: ${r.detail}`)).toEqual([
      'id_q_functions.json › (file) › meta.commit: Invalid input: expected string, received undefined',
      'sampling_tiny_model.json › spaced_ddim20_linear1000 › spaced_ddim20_linear1000.args: missing: the step cases need model_mean_type, model_var_type, clip_denoised (space_timesteps, respace and the buffers of this record are still checked)',
    ]);
    const spaced = rep.rows.filter((r) => r.case.startsWith('spaced_ddim20_linear1000 '));
    // (The spec has no space_timesteps or respace operation: those two are skipped as not implemented.)
    expect(spaced.filter((r) => r.op !== undefined).map((r) => `${r.verdict} ${r.op} › ${r.quantity}`)).toEqual([
      'skip space_timesteps › timesteps (sorted)',
      'skip respace › betas, timestep_map',
      'pass buffers › alphas_cumprod',
    ]);
    expect(withVerdict(rep, 'unread').map(name).sort()).toEqual([
      'id_p_mean_variance.json › my_extra_group › ',
      'my_new_experiment.json › (file) › ',
      'sampling_tiny_model.json › runs[0] › my_seed_notes',
    ]);
    // Every other record of the folder is still checked.
    expect(rep.rows.filter((r) => r.file === 'id_p_mean_variance.json' && r.verdict === 'pass').length).toBe(48 * 4);
    expect(rep.rows.filter((r) => r.case.startsWith('spaced_15_cosine1000') && r.op === 'ddim_step').length).toBeGreaterThan(0);
    expect(rep.verdict).toBe('NOT OK');
    expect(EXIT_CODES[rep.verdict]).toBe(1);
    // Errors in the golden data come first in the summary, before any operation.
    expect(failureSummary(rep.rows).slice(1, 3).map((l) => l.trim().split(/ {2,}/)[0])).toEqual([
      'golden data › id_q_functions.json › (file)',
      'golden data › sampling_tiny_model.json › spaced_ddim20_linear1000',
    ]);
  });

  it('without the error, an unknown file or field leaves the verdict INCOMPLETE (exit 3), never OK  [conformance.coverage.unreadIsIncomplete]', async () => {
    const rep = await runCheck({ golden: dir, builtin: 'spec', laws: false, only: ['my_new', 'id_p_mean', 'cosine_T20'] });
    expect(withVerdict(rep, 'unread').map(name).sort()).toEqual(['id_p_mean_variance.json › my_extra_group › ', 'my_new_experiment.json › (file) › ']);
    expect(rep.totals.fail + rep.totals.error).toBe(0);
    expect(rep.verdict).toBe('INCOMPLETE');
    expect(EXIT_CODES[rep.verdict]).toBe(3);
  });

  it('an operation in the handshake that declines one kind of case is INCOMPLETE, with the declined cases listed, and the rest is checked  [conformance.coverage.declinedIsIncomplete]', async () => {
    const rep = await runCheck({ golden: dir, impl: server('spec --decline p_mean_variance:FIXED_LARGE'), laws: true, only: ['id_p_mean', 'cosine_T20'] });
    const declined = withVerdict(rep, 'declined');
    expect(declined.length).toBeGreaterThan(0);
    expect(declined.filter((r) => r.kind === 'golden').length, 'the FIXED_LARGE cases of id_p_mean_variance.json').toBe(12);
    expect(declined.filter((r) => r.kind === 'golden').every((r) => r.op === 'p_mean_variance' && / FIXED_LARGE\//.test(r.case)), 'only the FIXED_LARGE cases').toBe(true);
    expect(declined.some((r) => r.kind === 'law' && r.quantity === 'ddpm.ops.fixedVariancesAreBetaOrPosterior'), 'the law that would catch it is declined too, not skipped').toBe(true);
    expect(rep.rows.filter((r) => r.op === 'p_mean_variance' && r.verdict === 'pass' && / FIXED_SMALL\//.test(r.case)).length).toBeGreaterThan(0);
    expect(rep.totals.fail + rep.totals.error, rep.rows.filter((r) => r.verdict === 'fail' || r.verdict === 'error').map(name).join('\n')).toBe(0);
    expect(rep.verdict).toBe('INCOMPLETE');
    expect(rep.precision, 'the spec declares float64 in its handshake').toBe('float64');
  });

  it('an independent numpy DDPM without gradients still has its loss terms checked; the gradients are an optional skip  [conformance.coverage.termsWithoutGradients]', async (ctx) => {
    need(ctx, numpy);
    const rep = await runCheck({ impl: numpyDdpm('--fixed'), laws: false, only: ['id_training_losses', 'id_buffers_linear_T1000', 'id_buffers_cosine_T20'] });
    const terms = rep.rows.filter((r) => r.op === 'training_losses' && r.quantity.startsWith('terms.'));
    expect(terms.length).toBeGreaterThanOrEqual(59);
    expect(terms.filter((r) => r.verdict !== 'pass').map((r) => `${name(r)}: ${r.detail}`)).toEqual([]);
    const grads = rep.rows.filter((r) => r.op === 'training_losses' && r.quantity.startsWith('grads.'));
    expect(grads.length).toBeGreaterThan(0);
    expect(grads.every((r) => r.verdict === 'skip' && /optional/.test(r.detail ?? ''))).toBe(true);
    expect(rep.verdict).toBe('OK');
  });

  it('the same numpy DDPM with the RESCALED_MSE vb weight left out fails on its terms  [conformance.coverage.rescaledMseWeightFails]', async (ctx) => {
    need(ctx, numpy);
    const rep = await runCheck({ impl: numpyDdpm('--fixed --mutant rescaled-mse-weight'), laws: false, only: ['id_training_losses', 'id_buffers_linear_T1000', 'id_buffers_cosine_T20'] });
    const failed = [...new Set(rep.rows.filter((r) => r.verdict === 'fail').map((r) => `${r.op} › ${r.quantity}`))].sort();
    expect(failed).toEqual(['training_losses › terms.loss', 'training_losses › terms.vb']);
    expect(rep.rows.filter((r) => r.verdict === 'fail').every((r) => / RESCALED_MSE /.test(r.case))).toBe(true);
    expect(rep.verdict).toBe('NOT OK');
  });

  it("diffusers' files too: a buffers record without its config is an error row, a top-level field no format defines is not understood, the other records are checked  [conformance.coverage.diffusersRecords]", async () => {
    const d = mkdtempSync(join(tmpdir(), 'ddpm-coverage-diffusers-'));
    try {
      const b = JSON.parse(readFileSync(join(upstream, 'diffusers_buffers.json'), 'utf8'));
      delete b.cases[3].config;
      writeFileSync(join(d, 'diffusers_buffers.json'), JSON.stringify(b));
      const v = JSON.parse(readFileSync(join(upstream, 'diffusers_variance.json'), 'utf8'));
      v.my_notes = 'a top-level field nobody reads';
      writeFileSync(join(d, 'diffusers_variance.json'), JSON.stringify(v));
      const rep = await runCheck({ golden: d, builtin: 'spec', laws: false });
      expect(withVerdict(rep, 'error').map(name)).toEqual(['diffusers_buffers.json › cases[3] › cases.3.config']);
      expect(withVerdict(rep, 'unread').map(name)).toEqual(['diffusers_variance.json › my_notes › ']);
      const passed = (op: string): number => rep.rows.filter((r) => r.op === op && r.verdict === 'pass').length;
      expect(new Set(rep.rows.filter((r) => r.op === 'diffusers_buffers').map((r) => r.case.split(' ')[0])).size, 'the other 13 records').toBe(13);
      expect(passed('diffusers_ddpm_variance'), 'every DDPM variance record').toBe(v.ddpm.length);
      expect(withVerdict(rep, 'n/a').map((r) => `${r.file} › ${r.case}`)).toEqual(['diffusers_variance.json › ddim[*]']);
      expect(rep.verdict).toBe('NOT OK');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('lists what failed from cause to effect: schedule → buffers → q_* → p_* → steps → losses/bpd, laws after their operations  [conformance.report.dependencyOrder]', () => {
    const row = (op: string | undefined, quantity: string, kind: 'golden' | 'law' = 'golden', needs?: string[]): ReportRow => ({
      kind,
      file: kind === 'law' ? 'laws of the spec' : 'f.json',
      case: 'c',
      quantity,
      ...(op ? { op } : {}),
      ...(needs ? { needs } : {}),
      verdict: 'fail',
      maxAbs: 1,
      maxRel: 1,
      tolerance: null,
      reason: null,
    });
    // Listed in the order a report meets them: the downstream bits/dim first, the q_sample bug last.
    const rows = [
      row('calc_bpd_loop', 'vb'),
      row('training_losses', 'terms.loss'),
      row(undefined, 'ddpm.ops.qSampleEqClosedForm', 'law', ['q_sample', 'buffers']),
      row('p_sample_step', 'sample'),
      row('p_mean_variance', 'mean'),
      row('q_sample', 'x_t'),
      row('buffers', 'alphas_cumprod'),
    ];
    const lines = failureSummary(rows).slice(1).map((l) => l.trim().split(/ {2,}/)[0]);
    expect(lines).toEqual([
      'buffers › alphas_cumprod',
      'q_sample › x_t',
      'law ddpm.ops.qSampleEqClosedForm',
      'p_mean_variance › mean',
      'p_sample_step › sample',
      'training_losses › terms.loss',
      'calc_bpd_loop › vb',
    ]);
  });
});
