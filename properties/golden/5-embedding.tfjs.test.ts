import { describe, expect, it } from 'vitest';
import { referenceOps } from '../../src/conformance/impl/reference.ts';
import { expectReplayPasses, goldenSet } from './replay.ts';

describe('5.5 Golden replay: timestep embeddings', () => {
  it("Ho's (sin | cos) and improved's (cos | sin) embeddings replay for integer and fractional t, and Ho's refuses dim 2 and 3  [golden.embedding.replay]", async () => {
    const rows = await expectReplayPasses(goldenSet(/^timestep_embedding\.json$/), referenceOps(), { minRows: 60 });
    expect(rows.filter((r) => r.quantity === 'refuses' && r.verdict === 'pass').length, "Ho's ZeroDivisionError at dim 2, 3").toBeGreaterThanOrEqual(2);
  });
});
