/**
 * The IDX file format of MNIST and Fashion-MNIST (LeCun et al.), optionally gzipped.
 *
 * Layout (big-endian): a 4-byte magic number `0x00 0x00 <type> <rank>` (type 0x08 = unsigned byte), then
 * `rank` 4-byte dimension sizes, then the data in row-major order. Images are rank 3 `[count, rows, cols]`,
 * labels rank 1 `[count]`.
 *
 * The reader checks the magic number, the element type, the rank, the dimensions the caller expects and that
 * the data length is exactly the product of the dimensions; every error is a {@link FormatError} naming the
 * file and the field (`magic`, `dims.0`, `data`, …).
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { FormatError } from '../formats/errors.ts';

/** A parsed IDX file of unsigned bytes. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** IDX type byte of unsigned 8-bit data (the only type MNIST-like files use). */
export const IDX_UBYTE = 0x08;

/**
 * Parse IDX bytes (already decompressed).
 *
 * @param expect.rank - the rank the file must have (3 for images, 1 for labels)
 * @param expect.dims - sizes the file must have (`undefined` entries are not checked)
 */
export function parseIdx(bytes: Uint8Array, file: string, expect: { rank: number; dims?: Array<number | undefined> }): IdxArray {
  if (bytes.byteLength < 4) throw new FormatError(file, 'magic', `file is ${bytes.byteLength} bytes, too short for the 4-byte magic number`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = dv.getUint32(0, false);
  const type = bytes[2];
  const rank = bytes[3];
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new FormatError(file, 'magic', `0x${magic.toString(16).padStart(8, '0')} does not start with two zero bytes: not an IDX file (is it still gzipped, or another format?)`);
  }
  if (type !== IDX_UBYTE) throw new FormatError(file, 'magic', `element type 0x${type.toString(16).padStart(2, '0')} is not unsigned byte (0x08)`);
  if (rank !== expect.rank) {
    const want = `0x000008${expect.rank.toString(16).padStart(2, '0')}`;
    throw new FormatError(file, 'magic', `0x${magic.toString(16).padStart(8, '0')} says rank ${rank}, expected ${expect.rank} (magic ${want})`);
  }
  const header = 4 + 4 * rank;
  if (bytes.byteLength < header) throw new FormatError(file, 'dims', `file is ${bytes.byteLength} bytes, too short for ${rank} dimension sizes`);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) {
    const d = dv.getUint32(4 + 4 * i, false);
    const want = expect.dims?.[i];
    if (want !== undefined && d !== want) throw new FormatError(file, `dims.${i}`, `is ${d}, expected ${want}`);
    dims.push(d);
  }
  const n = dims.reduce((a, b) => a * b, 1);
  const have = bytes.byteLength - header;
  if (have !== n) {
    throw new FormatError(file, 'data', `dimensions [${dims.join(', ')}] need ${n} bytes of data, the file has ${have} (${have < n ? 'truncated' : 'extra bytes at the end'})`);
  }
  return { dims, data: bytes.slice(header) };
}

/**
 * Read an IDX file, gunzipping it when it starts with the gzip signature.
 *
 * @param missingHint - appended to the error when the file does not exist (how to get it)
 */
export function readIdx(path: string, expect: { rank: number; dims?: Array<number | undefined> }, missingHint = ''): IdxArray {
  let raw: Uint8Array;
  try {
    raw = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : `cannot read file (${(e as Error).message})`;
    throw new FormatError(path, '', `${why}${missingHint ? `; ${missingHint}` : ''}`);
  }
  let bytes = raw;
  if (raw.byteLength >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      bytes = gunzipSync(raw);
    } catch (e) {
      throw new FormatError(path, 'gzip', `corrupt gzip stream (${(e as Error).message}); reinstall the file`);
    }
  }
  return parseIdx(bytes, path, expect);
}
