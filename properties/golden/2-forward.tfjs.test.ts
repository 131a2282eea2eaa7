import { describe, expect, it } from 'vitest';
import { referenceOps } from '../../src/conformance/impl/reference.ts';
import { expectReplayPasses, goldenSet } from './replay.ts';

describe('5.2 Golden replay: the forward process, its posterior and p(x_{t−1} | x_t)', () => {
  it('q_sample, q(x_t|x_0), the posterior and the three parameterisation conversions replay at t = 0, T−1 and between  [golden.forward.qFunctions]', async () => {
    const rows = await expectReplayPasses(goldenSet(/^id_q_functions\.json$/), referenceOps(), { minRows: 4 * 11 });
    expect(new Set(rows.map((r) => r.op))).toEqual(
      new Set(['q_sample', 'q_mean_variance', 'q_posterior_mean_variance', 'predict_xstart_from_eps', 'predict_xstart_from_xprev', 'predict_eps_from_xstart']),
    );
  });

  it('p_mean_variance replays for every mean type × variance type × clipping, at t = 0, T−1 and between  [golden.forward.pMeanVariance]', async () => {
    const rows = await expectReplayPasses(goldenSet(/^id_p_mean_variance\.json$/), referenceOps(), { minRows: 48 * 4 });
    for (const v of ['FIXED_SMALL', 'FIXED_LARGE', 'LEARNED', 'LEARNED_RANGE']) expect(rows.some((r) => r.case.includes(v))).toBe(true);
  });
});
