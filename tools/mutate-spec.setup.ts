/** The light set-up of `tools/mutate-spec.vitest.config.ts`: the fast-check seed and the closeness matchers only. */
import { expect } from 'vitest';
import fc from 'fast-check';
import { closeMatchers } from '../src/numeric/matchers.ts';
import { fcSeed } from '../properties/support/seed.ts';

fc.configureGlobal({ seed: fcSeed(), numRuns: 100 });
expect.extend(closeMatchers);
