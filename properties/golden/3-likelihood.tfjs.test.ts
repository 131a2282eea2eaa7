import { describe, expect, it } from 'vitest';
import { referenceOps } from '../../src/conformance/impl/reference.ts';
import { expectReplayPasses, goldenSet } from './replay.ts';

describe('5.3 Golden replay: KL, the approximate normal CDF and the discretised decoder likelihood', () => {
  it('normal_kl (with scalar-broadcast arguments), the approximate CDF and the discretised log-likelihood (grid, ±1/±0.999 edges, random pixels) replay  [golden.likelihood.replay]', async () => {
    const rows = await expectReplayPasses(goldenSet(/^id_losses_elementwise\.json$/), referenceOps(), { minRows: 7 });
    const edge = rows.find((r) => r.case.startsWith('edge_cases'));
    // The float32 threshold trap (x = float32(±0.999) takes the middle branch) sits at z ≈ 0.6: compared, not masked.
    expect(edge?.compared).toBeGreaterThanOrEqual(7);
  });
});
