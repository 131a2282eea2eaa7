import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..', '..');

/** Ids at the end of test titles: `…  [area.concept.law]'`. */
function testIds(): Set<string> {
  const ids = new Set<string>();
  const files = readdirSync(join(ROOT, 'properties'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.test.ts'));
  for (const f of files) {
    for (const m of readFileSync(join(ROOT, 'properties', f), 'utf8').matchAll(/\[([a-z][a-zA-Z0-9]*(?:\.[a-zA-Z0-9]+){2,})\]['"`]/g)) ids.add(m[1]);
  }
  return ids;
}

describe('7.9 The training page', () => {
  it('every property id docs/training.md cites is the id of a test, and every training property is cited  [training.docs.citesExistingIds]', () => {
    const page = readFileSync(join(ROOT, 'docs', 'training.md'), 'utf8');
    // citations are bracketed lists of backticked ids: [`a.b.c`, `d.e.f`]
    const groups = [...page.matchAll(/\[(`[^\]]*`)\]/g)].map((m) => m[1]);
    const cited = new Set(groups.flatMap((g) => [...g.matchAll(/`([a-z][a-zA-Z0-9]*(?:\.[a-zA-Z0-9]+){2,})`/g)].map((m) => m[1])));
    const ids = testIds();
    expect([...cited].filter((c) => !ids.has(c))).toEqual([]);
    const training = [...ids].filter((i) => i.startsWith('training.') && i !== 'training.docs.citesExistingIds');
    expect(training.filter((i) => !cited.has(i))).toEqual([]);
  });
});
