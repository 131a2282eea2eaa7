import { defineConfig } from 'vitest/config';
import DerivationSequencer from './properties/support/sequencer.ts';

/**
 * `npm test` runs every property. `DDPM_TEST_SET=backend` runs only the backend-sensitive files
 * (`*.tfjs.test.ts`), for running them again on another backend (`DDPM_BACKEND=webgpu`, `cpu`).
 */
const backendOnly = process.env.DDPM_TEST_SET === 'backend';

export default defineConfig({
  test: {
    include: backendOnly ? ['properties/**/*.tfjs.test.ts'] : ['properties/**/*.test.ts'],
    reporters: ['./properties/support/derivationReporter.ts', './properties/support/countReporter.ts'],
    globalSetup: ['./properties/support/globalSetup.ts'],
    setupFiles: ['./properties/support/setup.ts'],
    sequence: { sequencer: DerivationSequencer },
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 300_000,
    env: { IS_TEST: 'true' },
  },
});
