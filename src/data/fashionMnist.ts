/**
 * Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) from Debian's `dataset-fashion-mnist` package: 60 000 training
 * and 10 000 test images, 28×28 grayscale, with labels 0–9, in gzipped IDX files under
 * `/usr/share/datasets/fashion-mnist/`.
 *
 * Images are kept as bytes (pixel levels 0–255). {@link toModelImages} brings them to a model's resolution
 * (centred zero padding of the background for a larger resolution, box-filter down-scaling with rounding for a
 * smaller one, so that pixels stay on the 256-level grid the discrete decoder assumes) and to [−1, 1] by
 * x = k/127.5 − 1.
 *
 * @module
 */
import { join } from 'node:path';
import { FormatError } from '../formats/errors.ts';
import { readIdx } from './idx.ts';

/** Where Debian's package installs the files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** What to do when the files are missing. */
export const FASHION_MNIST_INSTALL = 'install Debian\'s package with `apt-get install dataset-fashion-mnist` (or pass the directory holding the four .gz files)';

export type Split = 'train' | 'test';

/** Image count of each split. */
export const FASHION_MNIST_COUNT: Record<Split, number> = { train: 60000, test: 10000 };

/** Height = width of the images. */
export const FASHION_MNIST_SIZE = 28;

/** One split in memory. */
export interface ImageSet {
  /** Pixel levels 0–255, row-major [count, height, width, channels]. */
  pixels: Uint8Array;
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
  channels: number;
  /** The files read. */
  files: string[];
}

function files(dir: string, split: Split): { images: string; labels: string } {
  const stem = split === 'train' ? 'train' : 't10k';
  return { images: join(dir, `${stem}-images-idx3-ubyte.gz`), labels: join(dir, `${stem}-labels-idx1-ubyte.gz`) };
}

/**
 * Read one split, checking magic numbers, sizes and counts.
 *
 * @param opts.dir - directory with the four files (default {@link FASHION_MNIST_DIR})
 * @throws {@link FormatError} naming the file and the field; a missing file says how to install the package
 */
export function loadFashionMnist(split: Split, opts: { dir?: string } = {}): ImageSet {
  if (split !== 'train' && split !== 'test') throw new RangeError(`loadFashionMnist: split must be 'train' or 'test', got ${JSON.stringify(split)}`);
  const dir = opts.dir ?? FASHION_MNIST_DIR;
  const f = files(dir, split);
  const n = FASHION_MNIST_COUNT[split];
  const s = FASHION_MNIST_SIZE;
  const images = readIdx(f.images, { rank: 3, dims: [n, s, s] }, FASHION_MNIST_INSTALL);
  const labels = readIdx(f.labels, { rank: 1, dims: [n] }, FASHION_MNIST_INSTALL);
  for (let i = 0; i < n; i++) {
    if (labels.data[i] > 9) throw new FormatError(f.labels, `data.${i}`, `label ${labels.data[i]} is not a class 0–9`);
  }
  return { pixels: images.data, labels: labels.data, count: n, height: s, width: s, channels: 1, files: [f.images, f.labels] };
}

/**
 * Bring pixel levels to a square resolution, staying on the 0–255 grid:
 *
 * - larger: pad with level 0 (the background), centred (the extra pixel of an odd margin goes after);
 * - smaller: average over blocks of the source with the area each target pixel covers, rounded to the
 *   nearest level (ties to even).
 *
 * @returns levels [count, resolution, resolution, channels]
 */
export function resizeLevels(set: ImageSet, resolution: number): Uint8Array {
  const { count, height: h, width: w, channels: c } = set;
  if (!Number.isInteger(resolution) || resolution < 1) throw new RangeError(`resizeLevels: resolution must be a positive integer, got ${resolution}`);
  const r = resolution;
  const out = new Uint8Array(count * r * r * c);
  if (r >= h && r >= w) {
    const top = Math.floor((r - h) / 2);
    const left = Math.floor((r - w) / 2);
    for (let n = 0; n < count; n++)
      for (let i = 0; i < h; i++) {
        const src = ((n * h + i) * w) * c;
        const dst = ((n * r + i + top) * r + left) * c;
        out.set(set.pixels.subarray(src, src + w * c), dst);
      }
    return out;
  }
  if (r > h || r > w) throw new RangeError(`resizeLevels: cannot pad one axis and shrink the other (${h}×${w} → ${r}×${r})`);
  // Area-weighted box filter: target pixel i covers source [i·h/r, (i+1)·h/r).
  const weights = (inSize: number): Array<Array<[number, number]>> =>
    Array.from({ length: r }, (_, i) => {
      const a = (i * inSize) / r;
      const b = ((i + 1) * inSize) / r;
      const ws: Array<[number, number]> = [];
      for (let k = Math.floor(a); k < Math.ceil(b); k++) ws.push([k, Math.min(b, k + 1) - Math.max(a, k)]);
      return ws;
    });
  const wy = weights(h);
  const wx = weights(w);
  const area = (h / r) * (w / r);
  for (let n = 0; n < count; n++)
    for (let i = 0; i < r; i++)
      for (let j = 0; j < r; j++)
        for (let ch = 0; ch < c; ch++) {
          let s = 0;
          for (const [y, fy] of wy[i]) for (const [x, fx] of wx[j]) s += fy * fx * set.pixels[((n * h + y) * w + x) * c + ch];
          const v = s / area;
          const f = Math.floor(v);
          const rounded = v - f === 0.5 ? (f % 2 === 0 ? f : f + 1) : Math.round(v);
          out[((n * r + i) * r + j) * c + ch] = Math.min(255, Math.max(0, rounded));
        }
  return out;
}

/** Pixel levels 0–255 → [−1, 1]: x = k/127.5 − 1 (the float32 values the reference code feeds its model). */
export function levelsToUnit(levels: ArrayLike<number>): Float32Array {
  const out = new Float32Array(levels.length);
  for (let i = 0; i < levels.length; i++) out[i] = levels[i] / 127.5 - 1;
  return out;
}

/** [−1, 1] → pixel levels 0–255 (rounded, clipped), for writing images. */
export function unitToLevels(x: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = Math.min(255, Math.max(0, Math.round((x[i] + 1) * 127.5)));
  return out;
}

/** The images of a split at a model's resolution, as levels (keep them as bytes; convert per batch). */
export function toModelImages(set: ImageSet, resolution: number): { levels: Uint8Array; count: number; shape: [number, number, number] } {
  return { levels: resizeLevels(set, resolution), count: set.count, shape: [resolution, resolution, set.channels] };
}
