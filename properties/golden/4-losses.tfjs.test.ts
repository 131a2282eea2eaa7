import { describe, expect, it } from 'vitest';
import { referenceOps } from '../../src/conformance/impl/reference.ts';
import { expectReplayPasses, goldenSet } from './replay.ts';

describe('5.4 Golden replay: training losses with their gradients, and the bits/dim loop', () => {
  it('every term of training_losses (MSE, rescaled MSE, KL, rescaled KL, hybrid with learned range) and its gradient w.r.t. the TinyModel replay  [golden.losses.trainingLosses]', async () => {
    const rows = await expectReplayPasses(goldenSet(/^id_training_losses\.json$/), referenceOps(), { minRows: 32 });
    const grads = rows.filter((r) => r.quantity.startsWith('grads.'));
    expect(grads.filter((r) => r.verdict === 'pass').length, 'gradients compared').toBeGreaterThan(100);
    // The vb gradient of learned variances is exactly zero on the mean rows (detached mean): compared like the rest.
    expect(grads.some((r) => r.quantity === 'grads.vb.W' && r.verdict === 'pass')).toBe(true);
  });

  it('calc_bpd_loop replays: per-step vb, x̂₀-MSE and ε-MSE, the prior term and the total, for every parameterisation  [golden.losses.bpdLoop]', async () => {
    await expectReplayPasses(goldenSet(/^id_calc_bpd_loop\.json$/), referenceOps(), { minRows: 6 * 5 });
  });
});
