import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '../../src/formats/safetensors.ts';

const DIR = 'golden/upstream';
const manifest = JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8')) as { files: Record<string, { bytes: number; sha256: string }> };

describe('5.0 Golden data: provenance and integrity', () => {
  it.each(Object.entries(manifest.files))('%s matches the SHA-256 and size in the manifest  [golden.integrity.sha256]', (name, entry) => {
    const bytes = readFileSync(join(DIR, name));
    const sha = createHash('sha256').update(bytes).digest('hex');
    expect(sha, `golden/upstream/${name} differs from its manifest entry (size ${bytes.byteLength}, expected ${entry.bytes})`).toBe(entry.sha256);
    expect(bytes.byteLength).toBe(entry.bytes);
  });

  it('every data file in golden/upstream is listed in the manifest  [golden.integrity.complete]', () => {
    const files = readdirSync(DIR).filter((f) => f !== 'manifest.json' && f !== 'README.md');
    expect(files.filter((f) => !(f in manifest.files))).toEqual([]);
  });

  it('the small UNet state_dict reads as 268 float32 tensors with 1,105,665 parameters  [golden.integrity.unetStateDict]', () => {
    const st = readSafetensors(join(DIR, 'ho_unet_small.safetensors'));
    expect(st.tensors.size).toBe(268);
    let n = 0;
    for (const t of st.tensors.values()) n += t.data.length;
    expect(n).toBe(1_105_665);
  });
});
