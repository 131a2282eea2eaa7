import { describe, expect, it } from 'vitest';
import { referenceOps } from '../../src/conformance/impl/reference.ts';
import { expectReplayPasses, goldenSet } from './replay.ts';

describe('5.6 Golden replay: sampling loops and respacing', () => {
  it('every ancestral, DDIM and reverse-DDIM step of the TinyModel loops replays from the reference\'s previous state, including respaced diffusions  [golden.sampling.steps]', async () => {
    const set = goldenSet(/^sampling_tiny_model\.json$/);
    set.cases = set.cases.filter((c) => c.op !== 'space_timesteps' && c.op !== 'respace' && c.op !== 'buffers');
    const rows = await expectReplayPasses(set, referenceOps(), { minRows: 20 });
    for (const op of ['p_sample_step', 'ddim_step', 'ddim_reverse_step']) expect(rows.some((r) => r.op === op && r.verdict === 'pass'), op).toBe(true);
  });

  it('space_timesteps (including its refusals) and the respaced betas, ᾱ and timestep maps replay  [golden.sampling.respacing]', async () => {
    const set = goldenSet(/^sampling_tiny_model\.json$/);
    set.cases = set.cases.filter((c) => c.op === 'space_timesteps' || c.op === 'respace' || c.op === 'buffers');
    const rows = await expectReplayPasses(set, referenceOps(), { minRows: 10 });
    expect(rows.filter((r) => r.quantity === 'refuses').length, 'ddim999 at n = 1000 and "20" at n = 10 are refused').toBe(2);
  });
});
