import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const DIR = 'properties/unet';
const ids = new Set<string>();
for (const f of readdirSync(DIR).filter((f) => f.endsWith('.test.ts'))) {
  for (const m of readFileSync(join(DIR, f), 'utf8').matchAll(/\[(unet\.[a-zA-Z]+\.[a-zA-Z0-9]+)\]['`]/g)) ids.add(m[1]);
}
const page = readFileSync('docs/unet.md', 'utf8');
const cited = new Set([...page.matchAll(/`(unet\.[a-zA-Z]+\.[a-zA-Z0-9]+)`/g)].map((m) => m[1]));

describe('6.10 The UNet note cites its checks', () => {
  it('every property id that docs/unet.md cites is a test of section 6, and every test of section 6 is cited  [unet.docs.citesChecks]', () => {
    expect(ids.size).toBeGreaterThan(20);
    expect([...cited].filter((id) => !ids.has(id)), 'cited in docs/unet.md but no such test').toEqual([]);
    expect([...ids].filter((id) => !cited.has(id) && id !== 'unet.docs.citesChecks'), 'tests not cited in docs/unet.md').toEqual([]);
  });
});
