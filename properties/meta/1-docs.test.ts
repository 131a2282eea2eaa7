import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

function htmlFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.html')).map((f) => join(dir, f));
}

describe('9.1 Documentation builds', () => {
  it('typedoc builds the API pages and renders LaTeX in doc comments as MathML  [meta.docs.mathml]', async () => {
    const out = mkdtempSync(join(tmpdir(), 'ddpm-docs-'));
    try {
      await run(process.execPath, ['node_modules/typedoc/bin/typedoc', '--out', out, '--logLevel', 'Error'], { timeout: 120_000 });
      const pages = htmlFiles(out);
      expect(pages.length).toBeGreaterThan(5);
      const withMath = pages.filter((p) => readFileSync(p, 'utf8').includes('<math xmlns="http://www.w3.org/1998/Math/MathML"'));
      expect(withMath.length, 'no page contains MathML: is the katex markdown-it plugin loaded?').toBeGreaterThan(0);
      expect(pages.some((p) => /\$\$\s*\|a - e\|/.test(readFileSync(p, 'utf8'))), 'raw $$…$$ LaTeX left unrendered').toBe(false);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
