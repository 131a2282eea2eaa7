/**
 * A vitest reporter that ends the run with one plain line, `N passed, N failed` (skipped tests are
 * added as `, N skipped`), after one line per reason tests were skipped for (`skipped 3 tests: needs numpy for
 * /usr/bin/python3: apt-get install python3-numpy`, see `requires.ts`). A test file that fails to load counts as
 * one failure. With `DDPM_COUNTS_FILE` set, the counts are also appended to that file as a JSON line, so that
 * `.ci/run` can add up several runs.
 */
import { appendFileSync } from 'node:fs';
import type { Reporter, TestModule } from 'vitest/node';

export default class CountReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const notes = new Map<string, number>();
    for (const m of testModules) {
      let n = 0;
      for (const t of m.children.allTests()) {
        n++;
        const res = t.result();
        if (res.state === 'passed') passed++;
        else if (res.state === 'failed') failed++;
        else {
          skipped++;
          const note = res.state === 'skipped' ? res.note : undefined;
          if (note) notes.set(note, (notes.get(note) ?? 0) + 1);
        }
      }
      if (n === 0 || m.state() === 'failed') {
        const moduleErrors = m.errors().length;
        if (n === 0 || moduleErrors > 0) failed++;
      }
    }
    failed += unhandledErrors.length;
    const line = `${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`;
    const why = [...notes].map(([note, k]) => `skipped ${k} test${k === 1 ? '' : 's'}: ${note}\n`).join('');
    process.stdout.write(`\n${why}${line}\n`);
    if (process.env.DDPM_COUNTS_FILE) {
      appendFileSync(process.env.DDPM_COUNTS_FILE, `${JSON.stringify({ passed, failed, skipped, backend: process.env.DDPM_BACKEND ?? 'default' })}\n`);
    }
  }
}
