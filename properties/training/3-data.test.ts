import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import {
  eightGaussians,
  levelsToUnit,
  loadFashionMnist,
  moons,
  parseIdx,
  resizeLevels,
  sampleToy,
  swissroll,
  unitToLevels,
  type ImageSet,
} from '../../src/data/index.ts';
import { ImageEpochs } from '../../reference/train/data.ts';
import { Rng } from '../../src/numeric/rng.ts';
import { FormatError } from '../../src/formats/errors.ts';
import { mean } from '../../src/numeric/stats.ts';
import { FASHION_MNIST, need, requireFashionMnist } from '../support/requires.ts';

/** IDX bytes: magic 0x0000 08 rank, big-endian sizes, data. */
function idx(dims: number[], data: Uint8Array, magic?: [number, number, number, number]): Uint8Array {
  const head = new Uint8Array(4 + 4 * dims.length);
  const dv = new DataView(head.buffer);
  head.set(magic ?? [0, 0, 8, dims.length], 0);
  dims.forEach((d, i) => dv.setUint32(4 + 4 * i, d, false));
  const out = new Uint8Array(head.length + data.length);
  out.set(head, 0);
  out.set(data, head.length);
  return out;
}

function thrown(f: () => unknown): FormatError {
  try {
    f();
  } catch (e) {
    if (e instanceof FormatError) return e;
    throw e;
  }
  throw new Error('expected a FormatError, nothing was thrown');
}

const fashionMnist = requireFashionMnist();

describe('7.3 Training data', () => {
  it('the IDX reader returns the dimensions and bytes written, gzipped or not  [training.data.idxRoundTrip]', () =>
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), (dims, seed) => {
        const rng = new Rng(seed);
        const n = dims.reduce((a, b) => a * b, 1);
        const data = Uint8Array.from({ length: n }, () => rng.int(256));
        const r = parseIdx(idx(dims, data), 'mem', { rank: dims.length, dims });
        expect(r.dims).toEqual(dims);
        expect(Array.from(r.data)).toEqual(Array.from(data));
      }),
    ));

  it('the IDX reader rejects a wrong magic number, rank, count, truncated or padded data, naming the file and field  [training.data.idxRejectsCorrupt]', () => {
    const data = new Uint8Array(2 * 3 * 3);
    expect(thrown(() => parseIdx(idx([2, 3, 3], data, [0, 0, 9, 3]), 'f.gz', { rank: 3 })).message).toBe('f.gz: magic: element type 0x09 is not unsigned byte (0x08)');
    expect(thrown(() => parseIdx(idx([2, 3, 3], data, [1, 2, 8, 3]), 'f.gz', { rank: 3 })).field).toBe('magic');
    expect(thrown(() => parseIdx(idx([18], data), 'f.gz', { rank: 3 })).message).toBe('f.gz: magic: 0x00000801 says rank 1, expected 3 (magic 0x00000803)');
    expect(thrown(() => parseIdx(idx([2, 3, 3], data), 'f.gz', { rank: 3, dims: [60000, 28, 28] })).message).toBe('f.gz: dims.0: is 2, expected 60000');
    expect(thrown(() => parseIdx(idx([2, 3, 3], data.subarray(1)), 'f.gz', { rank: 3 })).message).toContain('need 18 bytes of data, the file has 17 (truncated)');
    expect(thrown(() => parseIdx(idx([2, 3, 3], new Uint8Array(19)), 'f.gz', { rank: 3 })).message).toContain('(extra bytes at the end)');
    expect(thrown(() => parseIdx(new Uint8Array([0, 0]), 'f.gz', { rank: 3 })).field).toBe('magic');
  });

  it('a missing Fashion-MNIST file is an error that names it and says how to install the package  [training.data.missingSaysInstall]', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fmnist-'));
    try {
      const e = thrown(() => loadFashionMnist('test', { dir }));
      expect(e.file).toBe(join(dir, 't10k-images-idx3-ubyte.gz'));
      expect(e.message).toContain('file not found');
      expect(e.message).toContain('apt-get install dataset-fashion-mnist');
      // A corrupt gzip stream and a file of the wrong size are named too.
      writeFileSync(join(dir, 't10k-images-idx3-ubyte.gz'), Uint8Array.from([0x1f, 0x8b, 1, 2, 3]));
      expect(thrown(() => loadFashionMnist('test', { dir })).field).toBe('gzip');
      writeFileSync(join(dir, 't10k-images-idx3-ubyte.gz'), gzipSync(idx([10, 28, 28], new Uint8Array(7840))));
      expect(thrown(() => loadFashionMnist('test', { dir })).message).toContain('dims.0: is 10, expected 10000');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('Debian\'s Fashion-MNIST test split has 10 000 28×28 images and 1000 of each class  [training.data.fashionMnistCounts]', (ctx) => {
    need(ctx, fashionMnist);
    const s = loadFashionMnist('test', { dir: FASHION_MNIST });
    expect([s.count, s.height, s.width, s.channels, s.pixels.length]).toEqual([10000, 28, 28, 1, 10000 * 784]);
    const perClass = new Array<number>(10).fill(0);
    for (const l of s.labels) perClass[l]++;
    expect(perClass).toEqual(new Array<number>(10).fill(1000));
  });

  const tiny = (pixels: number[], h: number, w: number): ImageSet => ({ pixels: Uint8Array.from(pixels), labels: new Uint8Array(1), count: 1, height: h, width: w, channels: 1, files: [] });

  it('padding to a larger resolution centres the image on background level 0 and keeps every pixel  [training.data.padCentred]', () => {
    const out = resizeLevels(tiny([1, 2, 3, 4], 2, 2), 4);
    expect(Array.from(out)).toEqual([0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0]);
    expect(resizeLevels(tiny(new Array(784).fill(200), 28, 28), 32).filter((v) => v === 200).length).toBe(784);
  });

  it('shrinking averages blocks and stays on the 256-level grid  [training.data.shrinkOnGrid]', () => {
    const out = resizeLevels(tiny([0, 255, 10, 20, 30, 40, 50, 62, 70, 80, 90, 100, 110, 120, 130, 143], 4, 4), 2);
    // 2×2 block means 81.25 → 81, 35.5 → 36 (a tie, to even), 95, 115.75 → 116
    expect(Array.from(out)).toEqual([81, 36, 95, 116]);
    // a 28 → 14 shrink of arbitrary images stays on integer levels in 0…255
    const rng = new Rng(5);
    const big = resizeLevels(tiny(Array.from({ length: 784 }, () => rng.int(256)), 28, 28), 14);
    expect(big.length).toBe(196);
  });

  it('levels map to [−1, 1] by k/127.5 − 1 and back exactly  [training.data.levelsRoundTrip]', () => {
    const levels = Uint8Array.from({ length: 256 }, (_, k) => k);
    const x = levelsToUnit(levels);
    expect([x[0], x[255]]).toEqual([-1, 1]);
    expect(Array.from(x)).toEqual(Array.from(levels, (k) => Math.fround(k / 127.5 - 1)));
    expect(Array.from(unitToLevels(x))).toEqual(Array.from(levels));
  });

  it('shuffled epochs visit every image once per epoch, and a restored state continues the same order  [training.data.epochsResume]', () => {
    const levels = Uint8Array.from({ length: 10 }, (_, i) => i * 20);
    const a = new ImageEpochs('t', levels, 10, [1, 1, 1], new Rng(3));
    const first = Array.from(a.next(10), (v) => Math.round((v + 1) * 127.5) / 20);
    expect([...first].sort((p, q) => p - q)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    a.next(3);
    const saved = a.getState();
    const rest = Array.from(a.next(12));
    const b = new ImageEpochs('t', levels, 10, [1, 1, 1], new Rng(99));
    b.setState(saved);
    expect(Array.from(b.next(12))).toEqual(rest);
  });

  it('the toy sets are reproducible from the seed and have their stated geometry  [training.data.toyGeometry]', () => {
    for (const name of ['moons', 'swissroll', '8gaussians'] as const) {
      expect(Array.from(sampleToy(name, new Rng(1), 50))).toEqual(Array.from(sampleToy(name, new Rng(1), 50)));
    }
    const n = 4000;
    const g = eightGaussians(new Rng(2), n);
    const radius = Array.from({ length: n }, (_, i) => Math.hypot(g[2 * i], g[2 * i + 1]));
    // centres at 4/√2 = 2.83 with component sd 0.354: the mean radius is within 0.05 of 2.83 + small bias
    expect(Math.abs(mean(radius) - 2.83)).toBeLessThan(0.08);
    const m = moons(new Rng(3), n);
    expect(Math.abs(mean(Array.from({ length: n }, (_, i) => m[2 * i])))).toBeLessThan(0.05);
    const s = swissroll(new Rng(4), n);
    expect(Math.max(...Array.from(s, Math.abs))).toBeLessThan(4);
  });
});
