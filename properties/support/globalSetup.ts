/**
 * Runs once before the test files: says which backend and which fast-check seed this run uses, so that
 * every report starts with what is needed to reproduce it.
 */
import { initBackend } from '../../src/backend.ts';
import { fcSeed } from './seed.ts';

export default async function globalSetup(): Promise<void> {
  process.env.IS_TEST = 'true';
  const report = await initBackend();
  const seed = fcSeed();
  const how = report.forcedBy ? `forced by ${report.forcedBy}` : 'chosen automatically; DDPM_BACKEND=<name> forces one';
  process.stdout.write(
    `\nddpm-spec test run\n  tfjs backend: ${report.chosen} (${how})${report.adapter ? `\n  adapter: ${report.adapter}` : ''}\n` +
      `  fast-check seed: ${seed} (${process.env.FC_SEED ? 'from FC_SEED' : 'default; FC_SEED=<int> overrides'})\n\n`,
  );
}
