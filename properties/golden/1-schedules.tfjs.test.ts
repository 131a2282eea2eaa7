import { describe, expect, it } from 'vitest';
import { referenceOps } from '../../src/conformance/impl/reference.ts';
import { expectReplayPasses, goldenSet } from './replay.ts';

describe('5.1 Golden replay: noise schedules and their buffers', () => {
  it("improved-diffusion's named schedules and every GaussianDiffusion buffer replay within float64 tolerance  [golden.buffers.improved]", async () => {
    const set = goldenSet(/^id_buffers_/);
    const rows = await expectReplayPasses(set, referenceOps(), { minRows: 4 * 13 });
    // Each file gives its schedule (betas) and its 13 buffers plus the float32 ᾱ the maths multiplies with.
    expect(rows.filter((r) => r.op === 'schedule').length).toBe(set.files.filter((f) => /^id_buffers_/.test(f)).length);
  });

  it("Ho's get_beta_schedule, GaussianDiffusion2 and v1 float32 buffers replay, and small-T linear schedules are refused exactly where the reference refuses  [golden.buffers.ho]", async () => {
    const rows = await expectReplayPasses(goldenSet(/^ho_beta_schedules_and_buffers\.json$/), referenceOps(), { minRows: 12 });
    expect(rows.some((r) => r.quantity === 'refuses' && r.verdict === 'pass'), 'a beta > 1 (linear, T < 20) is refused').toBe(true);
    expect(rows.some((r) => r.case.includes('v1') && r.masked === 1), "v1's t = 0 log-variance (log 1e−20) is excluded with its reason").toBe(true);
  });
});
