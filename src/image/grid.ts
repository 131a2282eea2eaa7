/**
 * Images in [−1, 1] (the model's data space) to 8-bit pixels and PNG grids.
 *
 * Pixel conversion as in the reference code: `uint8(clip((x + 1)·127.5, 0, 255))` — scaled, clipped, then
 * truncated toward zero (Ho et al.'s `tf.cast(tf.clip_by_value(...), tf.uint8)`; improved-diffusion's
 * `((sample + 1) * 127.5).clamp(0, 255).to(th.uint8)`).
 *
 * @module
 */
import { PNG } from 'pngjs';
import { writeFileAtomic } from '../io/atomic.ts';

/** One value in [−1, 1] to an 8-bit level; NaN becomes 0. */
export function toUint8(x: number): number {
  const v = (x + 1) * 127.5;
  if (!(v > 0)) return 0;
  return v >= 255 ? 255 : Math.trunc(v);
}

/** Layout of a grid: `cols` images per row, `pad` pixels of background between and around them. */
export interface GridOptions {
  /** Images per row (default ⌈√n⌉). */
  cols?: number;
  /** Border in pixels (default 2). */
  pad?: number;
  /** Background level 0–255 (default 255, white). */
  background?: number;
}

/**
 * A PNG (RGBA, 8 bits) with the images of a batch arranged in a grid, row by row in batch order.
 *
 * @param images - `[n, h, w, c]` row-major (NHWC), values in [−1, 1]; c = 1 (grey) or 3 (RGB)
 */
export function gridPng(images: ArrayLike<number>, shape: readonly [number, number, number, number], opts: GridOptions = {}): Buffer {
  const [n, h, w, c] = shape;
  if (![n, h, w, c].every((d) => Number.isInteger(d) && d > 0)) throw new Error(`gridPng: shape must be four positive integers [n,h,w,c], got [${shape.join(',')}]`);
  if (c !== 1 && c !== 3) throw new Error(`gridPng: images must have 1 (grey) or 3 (RGB) channels, got ${c}`);
  if (images.length !== n * h * w * c) throw new Error(`gridPng: ${images.length} values do not fill shape [${shape.join(',')}] (${n * h * w * c})`);
  const cols = opts.cols ?? Math.ceil(Math.sqrt(n));
  if (!Number.isInteger(cols) || cols <= 0) throw new Error(`gridPng: cols must be a positive integer, got ${cols}`);
  const pad = opts.pad ?? 2;
  const bg = opts.background ?? 255;
  const rows = Math.ceil(n / cols);
  const W = cols * w + (cols + 1) * pad;
  const H = rows * h + (rows + 1) * pad;
  const png = new PNG({ width: W, height: H });
  png.data.fill(bg);
  for (let i = 3; i < png.data.length; i += 4) png.data[i] = 255;
  for (let k = 0; k < n; k++) {
    const ox = pad + (k % cols) * (w + pad);
    const oy = pad + Math.floor(k / cols) * (h + pad);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const src = ((k * h + y) * w + x) * c;
        const dst = ((oy + y) * W + ox + x) * 4;
        for (let ch = 0; ch < 3; ch++) png.data[dst + ch] = toUint8(images[src + (c === 1 ? 0 : ch)]);
      }
  }
  return PNG.sync.write(png);
}

/** Write a grid PNG atomically. */
export function writeGridPng(path: string, images: ArrayLike<number>, shape: readonly [number, number, number, number], opts: GridOptions = {}): void {
  writeFileAtomic(path, gridPng(images, shape, opts));
}

/** Read a PNG back as RGBA bytes (for checks). */
export function readPng(bytes: Buffer): { width: number; height: number; data: Buffer } {
  const p = PNG.sync.read(bytes);
  return { width: p.width, height: p.height, data: p.data };
}
