import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError } from '../../src/formats/errors.ts';
import {
  ScheduleIndex,
  UNET_SKIP,
  loadGolden,
  readGoldenJson,
  replay,
  type DiffusionOps,
  type Tensor,
} from '../../src/golden/index.ts';
import { GOLDEN_DIR } from './replay.ts';

/** A parsed golden file, to alter in memory. */
const parse = (f: string): any => JSON.parse(readFileSync(join(GOLDEN_DIR, f), 'utf8'));
const zeros = (shape: number[]): Tensor => ({ shape, data: new Float64Array(shape.reduce((a, b) => a * b, 1)) });
const jsonTensor = (dtype: string, shape: number[], fill: (i: number) => number): unknown => {
  let k = 0;
  const build = (d: number): unknown => (d === shape.length ? fill(k++) : Array.from({ length: shape[d] }, () => build(d + 1)));
  return { dtype, shape, data: build(0) };
};

describe('5.7 The golden replay engine', () => {
  it('turns every file of golden/upstream into cases or lists it as skipped with a reason, the UNet files as the UNet\'s  [golden.engine.coverage]', () => {
    const set = loadGolden(GOLDEN_DIR);
    const files = readdirSync(GOLDEN_DIR);
    for (const f of files) {
      const used = set.cases.some((c) => c.file === f);
      const skip = set.skipped.find((s) => s.file === f && s.case === undefined);
      expect(used || skip !== undefined, `${f} is neither replayed nor skipped`).toBe(true);
      if (/ho_unet_small/.test(f)) expect(skip?.reason).toBe(UNET_SKIP);
    }
    for (const s of set.skipped) expect(s.reason.length, JSON.stringify(s)).toBeGreaterThan(10);
    expect(set.cases.length).toBeGreaterThan(200);
  });

  it('reads shapes, configurations and timesteps from the file, not from assumptions  [golden.engine.readsFromFiles]', async () => {
    // A p_mean_variance case regenerated with another schedule, T, batch, channels, size and timesteps.
    const root = parse('id_p_mean_variance.json');
    const c = root.cases[0];
    c.args = { schedule: 'cosine', T: 20, model_var_type: 'LEARNED_RANGE', model_mean_type: 'START_X', clip_denoised: false };
    c.inputs = {
      x: jsonTensor('float32', [2, 3, 4, 6], (i) => i / 100),
      t: jsonTensor('int64', [2], (i) => [7, 0][i]),
      model_output: jsonTensor('float32', [2, 6, 4, 6], (i) => -i / 100),
    };
    for (const q of ['mean', 'variance', 'log_variance', 'pred_xstart']) c.outputs[q] = jsonTensor('float32', [2, 3, 4, 6], () => 0);
    root.cases = [c];
    const index = new ScheduleIndex();
    readGoldenJson('id_buffers_cosine_T20.json', parse('id_buffers_cosine_T20.json'), index);
    const { cases } = readGoldenJson('id_p_mean_variance.json', root, index);
    const seen: unknown[] = [];
    const spy: DiffusionOps = {
      name: 'spy',
      p_mean_variance: async (a, m, x, t) => {
        seen.push({ T: a.betas.data.length, mean: a.model_mean_type, v: a.model_var_type, clip: a.clip_denoised, x: x.shape, t: Array.from(t.data), m: m.kind === 'output' ? m.output.shape : null });
        return { mean: zeros(x.shape), variance: zeros(x.shape), log_variance: zeros(x.shape), pred_xstart: zeros(x.shape) };
      },
    };
    const rows = await replay(cases, spy);
    expect(seen).toEqual([{ T: 20, mean: 'START_X', v: 'LEARNED_RANGE', clip: false, x: [2, 3, 4, 6], t: [7, 0], m: [2, 6, 4, 6] }]);
    expect(rows.map((r) => r.verdict)).toEqual(['pass', 'pass', 'pass', 'pass']);
  });

  it('turns a malformed record into an error entry naming the file, record and field, and reads the other records  [golden.engine.formatError]', () => {
    const index = new ScheduleIndex();
    const errorsOf = (file: string, root: unknown) => {
      const r = readGoldenJson(file, root, index);
      return { errors: r.skipped.filter((s) => s.kind === 'error').map((s) => `${s.case} › ${s.quantity}: ${s.reason}`), cases: r.cases.length };
    };
    const good = readGoldenJson('id_q_functions.json', parse('id_q_functions.json'), index).cases.length;
    const badShape = parse('id_q_functions.json');
    badShape.cases[1].inputs.noise.shape = [3, 2, 5, 4];
    const a = errorsOf('id_q_functions.json', badShape);
    expect(a.errors).toHaveLength(1);
    expect(a.errors[0]).toMatch(/^cases\[1\] › cases\.1\.inputs\.noise/);
    expect(a.cases, 'the other records are still read').toBeGreaterThan(0);
    expect(a.cases).toBeLessThan(good);
    const noT = parse('id_training_losses.json');
    delete noT.cases[3].args.T;
    expect(errorsOf('id_training_losses.json', noT).errors).toEqual(['cases[3] › cases.3.args.T: missing']);
    const tOut = parse('id_p_mean_variance.json');
    tOut.cases[0].inputs.t.data[0] = 1000;
    expect(errorsOf('id_p_mean_variance.json', tOut).errors[0]).toMatch(/^cases\[0\] › cases\.0\.inputs\.t\.data: timestep 0 is 1000, outside \{0, …, 999\}/);
    expect(() => readGoldenJson('id_calc_bpd_loop.json', [], index)).toThrowError(FormatError);
  });

  it('lists records, fields and files it does not understand as skipped, with the reason  [golden.engine.unknownSkipped]', () => {
    const index = new ScheduleIndex();
    const root = parse('sampling_tiny_model.json');
    root.new_kind_of_run = { what: 'something a later generator adds' };
    root.runs[0].temperature = 0.7;
    root.runs[1].loop = 'langevin_loop';
    const { skipped } = readGoldenJson('sampling_tiny_model.json', root, index);
    expect(skipped).toContainEqual(expect.objectContaining({ case: 'new_kind_of_run', reason: 'no reader for this record' }));
    expect(skipped).toContainEqual(expect.objectContaining({ case: 'runs[0]', quantity: 'temperature', reason: 'no reader for this field' }));
    expect(skipped).toContainEqual(expect.objectContaining({ case: 'runs[1] langevin_loop', reason: 'no reader for this loop' }));
    expect(readGoldenJson('some_future_file.json', {}, index).skipped).toEqual([{ file: 'some_future_file.json', reason: 'no reader for this file' }]);
  });

  it('fails a wrong implementation with the worst element, skips missing operations, and requires a refusal where the reference raised  [golden.engine.verdicts]', async () => {
    const set = loadGolden(GOLDEN_DIR, { only: (f) => f === 'id_q_functions.json' || f === 'sampling_tiny_model.json' });
    const qs = set.cases.filter((c) => c.op === 'q_sample');
    // x_t = x_0: wrong everywhere except where ᾱ ≈ 1.
    const wrong: DiffusionOps = { name: 'wrong', q_sample: async (_a, x0) => ({ x_t: x0 }) };
    const rows = await replay(qs, wrong);
    expect(rows.length).toBe(qs.length);
    for (const r of rows) {
      expect(r.verdict).toBe('fail');
      expect(r.detail).toMatch(/outside the bound; worst at \[\d+,\d+,\d+,\d+\]: actual .*, expected .*, \|Δ\| .*, bound/);
    }
    const refusals = set.cases.filter((c) => c.expectError !== undefined);
    expect(refusals.length).toBe(2);
    const lenient: DiffusionOps = { name: 'lenient', space_timesteps: async () => ({ timesteps: [0] }) };
    expect((await replay(refusals, lenient)).map((r) => r.verdict)).toEqual(['fail', 'fail']);
    const missing = await replay(refusals, { name: 'empty' });
    expect(missing.map((r) => [r.verdict, r.detail])).toEqual([
      ['skip', 'operation space_timesteps is not implemented by empty'],
      ['skip', 'operation space_timesteps is not implemented by empty'],
    ]);
  });
});
