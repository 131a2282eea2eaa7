/**
 * A vitest reporter that ends the run with one plain line, `N passed, N failed` (skipped tests are
 * added as `, N skipped`). A test file that fails to load counts as one failure. With `DDPM_COUNTS_FILE`
 * set, the counts are also appended to that file as a JSON line, so that `.ci/run` can add up several runs.
 */
import { appendFileSync } from 'node:fs';
import type { Reporter, TestModule } from 'vitest/node';

export default class CountReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const m of testModules) {
      let n = 0;
      for (const t of m.children.allTests()) {
        n++;
        const s = t.result().state;
        if (s === 'passed') passed++;
        else if (s === 'failed') failed++;
        else skipped++;
      }
      if (n === 0 || m.state() === 'failed') {
        const moduleErrors = m.errors().length;
        if (n === 0 || moduleErrors > 0) failed++;
      }
    }
    failed += unhandledErrors.length;
    const line = `${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`;
    process.stdout.write(`\n${line}\n`);
    if (process.env.DDPM_COUNTS_FILE) {
      appendFileSync(process.env.DDPM_COUNTS_FILE, `${JSON.stringify({ passed, failed, skipped, backend: process.env.DDPM_BACKEND ?? 'default' })}\n`);
    }
  }
}
