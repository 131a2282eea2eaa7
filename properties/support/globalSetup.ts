/**
 * Runs once before the test files: says which backend and which fast-check seed this run uses, so that
 * every report starts with what is needed to reproduce it. A forced backend that cannot be set (e.g.
 * `DDPM_BACKEND=webgpu` without a Vulkan driver) or a malformed `FC_SEED` ends the run at once with one line
 * saying what is missing, and exit code 2.
 */
import { BackendError, initBackend } from '../../src/backend.ts';
import { fcSeed } from './seed.ts';

export default async function globalSetup(): Promise<void> {
  process.env.IS_TEST = 'true';
  let report: Awaited<ReturnType<typeof initBackend>>;
  let seed: number;
  try {
    report = await initBackend();
    seed = fcSeed();
  } catch (e) {
    if (!(e instanceof BackendError || e instanceof RangeError)) throw e;
    process.stderr.write(`\nddpm-spec test run: ${e.message}\n`);
    process.exit(2);
  }
  const how = report.forcedBy ? `forced by ${report.forcedBy}` : 'chosen automatically; DDPM_BACKEND=<name> forces one';
  process.stdout.write(
    `\nddpm-spec test run\n  tfjs backend: ${report.chosen} (${how})${report.adapter ? `\n  adapter: ${report.adapter}` : ''}\n` +
      `  fast-check seed: ${seed} (${process.env.FC_SEED ? 'from FC_SEED' : 'default; FC_SEED=<int> overrides'})\n\n`,
  );
}
