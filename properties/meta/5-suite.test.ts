import { describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { need, requireFashionMnist, requirePython, type Requirement } from '../support/requires.ts';
import { SPEC_PATHS, failureLines, parseSeedsArgs, randomSeed } from '../support/seeds.ts';
import { fcSeed } from '../support/seed.ts';

/** A stand-in for vitest's test context: records the note `skip` was called with. */
function fakeCtx(): { skip: (note?: string) => never; skipped: string[] } {
  const skipped: string[] = [];
  return {
    skipped,
    skip: (note?: string): never => {
      skipped.push(note ?? '');
      throw new Error('skipped');
    },
  };
}

describe('9.5 The suite on any machine and under any seed', () => {
  it('a missing Python or Python module is named with the apt-get line that installs it  [meta.requires.pythonNamesPackage]', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ddpm-requires-'));
    try {
      // A stand-in interpreter: called as `python -c CODE numpy torch`, it reports the first module as absent.
      const fake = join(dir, 'python3');
      writeFileSync(fake, '#!/bin/sh\nshift 2\necho "$1"\n');
      chmodSync(fake, 0o755);
      expect(requirePython(['numpy', 'torch'], fake)).toEqual({ ok: false, missing: `needs numpy for ${fake}: apt-get install python3-numpy` });
      const none = join(dir, 'none');
      writeFileSync(none, '#!/bin/sh\necho\n');
      chmodSync(none, 0o755);
      expect(requirePython(['numpy'], none)).toEqual({ ok: true, missing: '' });
      expect(requirePython(['numpy', 'torch'], join(dir, 'absent')).missing).toBe(
        `needs Python 3 at ${join(dir, 'absent')} (ENOENT) with numpy, torch: apt-get install python3 python3-numpy python3-torch`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('missing Fashion-MNIST files are named with the apt-get line that installs them  [meta.requires.fashionMnistNamesPackage]', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ddpm-requires-'));
    try {
      expect(requireFashionMnist(dir).missing).toBe(`needs Fashion-MNIST in ${dir} (no files): apt-get install dataset-fashion-mnist`);
      for (const f of ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz']) writeFileSync(join(dir, f), '');
      expect(requireFashionMnist(dir).missing).toContain('(missing t10k-labels-idx1-ubyte.gz)');
      writeFileSync(join(dir, 't10k-labels-idx1-ubyte.gz'), '');
      expect(requireFashionMnist(dir).ok).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a test whose requirement is missing is skipped with its one line, and fails with it under CI=true  [meta.requires.skipOrFailInCi]', () => {
    const missing: Requirement = { ok: false, missing: 'needs numpy for /x/python3: apt-get install python3-numpy' };
    for (const env of [{}, { CI: 'false' }, { CI: '0' }, { CI: '' }]) {
      const ctx = fakeCtx();
      expect(() => need(ctx, missing, env)).toThrow('skipped');
      expect(ctx.skipped, JSON.stringify(env)).toEqual([missing.missing]);
    }
    for (const env of [{ CI: 'true' }, { CI: '1' }]) {
      const ctx = fakeCtx();
      expect(() => need(ctx, missing, env)).toThrow(/^needs numpy for \/x\/python3: apt-get install python3-numpy \(CI=true: \.ci\/run installs it/);
      expect(ctx.skipped).toEqual([]);
    }
    const ctx = fakeCtx();
    need(ctx, { ok: true, missing: '' }, { CI: 'true' });
    expect(ctx.skipped).toEqual([]);
  });

  it('test:seeds takes a count and paths or --all, draws 32-bit seeds that FC_SEED replays unchanged, and names what failed  [meta.seeds.argsAndReplay]', () => {
    expect(parseSeedsArgs(['20'])).toEqual({ runs: 20, paths: SPEC_PATHS });
    expect(parseSeedsArgs(['3', '--all'])).toEqual({ runs: 3, paths: [] });
    expect(parseSeedsArgs(['2', 'properties/numeric'])).toEqual({ runs: 2, paths: ['properties/numeric'] });
    expect(() => parseSeedsArgs([])).toThrow(/^test:seeds: N must be an integer from 1 to 10000, got nothing; usage: /);
    expect(() => parseSeedsArgs(['0'])).toThrow(/N must be an integer from 1 to 10000, got "0"/);
    expect(() => parseSeedsArgs(['2.5'])).toThrow(/got "2\.5"/);
    expect(() => parseSeedsArgs(['2', '--bail'])).toThrow(/unknown option --bail/);
    expect(() => parseSeedsArgs(['2', '--all', 'properties/numeric'])).toThrow(/--all and paths \(properties\/numeric\) exclude each other/);
    for (let i = 0; i < 100; i++) {
      const s = randomSeed();
      expect(Number.isInteger(s) && s >= -(2 ** 31) && s < 2 ** 31).toBe(true);
      expect(fcSeed({ FC_SEED: String(s) })).toBe(s);
    }
    const log = ' ✓ a\n FAIL  properties/x.test.ts > 1 A > b  [x.y.z]\n\u001b[31m FAIL  properties/x.test.ts > 1 A > b  [x.y.z]\u001b[39m\n';
    expect(failureLines(log)).toEqual(['properties/x.test.ts > 1 A > b  [x.y.z]']);
    expect(failureLines('\n  BackendError: DDPM_BACKEND="x" is not a backend\n at y')).toEqual(['BackendError: DDPM_BACKEND="x" is not a backend']);
    expect(failureLines('x\nddpm-spec test run: DDPM_BACKEND=webgpu cannot be used: …\n')).toEqual(['ddpm-spec test run: DDPM_BACKEND=webgpu cannot be used: …']);
    expect(failureLines('nothing useful')).toEqual(['no FAIL line and no error line: see the full log']);
  });
});
