import { defineConfig } from 'vitest/config';

/**
 * The vitest configuration of `tools/mutate-spec.ts`: only the spec's own property folders, one worker, no
 * isolation between files (modules are transformed once per run), and a light set-up without tfjs (these
 * folders never touch tensors). `npm test` keeps the full configuration in `vitest.config.ts`.
 */
export default defineConfig({
  test: {
    include: ['properties/probability/**/*.test.ts', 'properties/gaussian/**/*.test.ts', 'properties/ddpm/**/*.test.ts'],
    setupFiles: ['./tools/mutate-spec.setup.ts'],
    pool: 'threads',
    isolate: false,
    maxWorkers: 1,
    testTimeout: 120_000,
  },
});
