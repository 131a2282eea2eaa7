/**
 * The safetensors format: an 8-byte little-endian unsigned header length N, N bytes of UTF-8 JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}`, then the raw
 * little-endian tensor data in row-major order. Offsets are relative to the first byte after the header;
 * the tensors must cover the data region exactly, without overlaps or holes.
 *
 * The reader checks all of that and names the file and the field when something is off; it never returns
 * a silently wrong tensor. The writer pads the header with spaces to a multiple of 8 and writes atomically.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { writeFileAtomic } from '../io/atomic.ts';
import { FormatError, jsonErrorWithoutInput } from './errors.ts';

/** Element sizes in bytes of the dtypes this reader understands. */
export const SAFETENSORS_DTYPES = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 } as const;
export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPES;

/** One entry of the header. */
export const SafetensorsEntry = z
  .object({
    dtype: z.string(),
    shape: z.array(z.number().int().nonnegative()),
    data_offsets: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]),
  })
  .strict();

/** A tensor read from a safetensors file. Floating dtypes are widened to Float32Array/Float64Array. */
export interface StTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;
}

/** A parsed safetensors file: tensors in header order, and the free-form string metadata. */
export interface Safetensors {
  tensors: Map<string, StTensor>;
  metadata: Record<string, string>;
}

/** Largest header this reader accepts (the reference implementation's limit is 100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

function decodeData(dtype: SafetensorsDtype, bytes: Uint8Array, n: number): StTensor['data'] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F64': {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
      return out;
    }
    case 'F32': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      return out;
    }
    case 'F16': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true));
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(n);
      const tmp = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < n; i++) {
        tmp.setUint32(0, dv.getUint16(2 * i, true) << 16, false);
        out[i] = tmp.getFloat32(0, false);
      }
      return out;
    }
    case 'I64': {
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getBigInt64(8 * i, true);
      return out;
    }
    case 'I32': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true);
      return out;
    }
    case 'I16': {
      const out = new Int16Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(2 * i, true);
      return out;
    }
    case 'I8':
      return new Int8Array(bytes.slice().buffer);
    case 'U8':
    case 'BOOL':
      return bytes.slice();
  }
}

/**
 * The first key that occurs twice in the top-level object of the JSON text `text` (already known to parse),
 * or null. `JSON.parse` keeps the last of duplicate keys silently; a safetensors header must not have any.
 */
export function firstDuplicateKey(text: string): string | null {
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      expectKey = depth === 1 && c === '{';
    } else if (c === '}' || c === ']') depth--;
    else if (c === ',' && depth === 1) expectKey = true;
  }
  return null;
}

/**
 * Parse safetensors bytes.
 *
 * @param bytes - the whole file
 * @param file - its name, for errors
 * @throws {@link FormatError} naming the file and the field (`header length`, `header`, `<tensor>.dtype`,
 *   `<tensor>.shape`, `<tensor>.data_offsets`, `__metadata__`, `data`)
 */
export function parseSafetensors(bytes: Uint8Array, file: string): Safetensors {
  if (bytes.byteLength < 8) throw new FormatError(file, 'header length', `file is ${bytes.byteLength} bytes, shorter than the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(bytes.byteLength - 8)) {
    throw new FormatError(file, 'header length', `says the JSON header has ${n64} bytes, but only ${bytes.byteLength - 8} bytes follow`);
  }
  const n = Number(n64);
  if (n > MAX_HEADER_BYTES) throw new FormatError(file, 'header length', `${n} bytes is larger than the ${MAX_HEADER_BYTES}-byte limit`);
  if (n < 2) throw new FormatError(file, 'header length', `${n} bytes cannot hold a JSON object`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    throw new FormatError(file, 'header', `the ${n} bytes after the length are not valid UTF-8; is the header length right?`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new FormatError(file, 'header', `not valid JSON (${jsonErrorWithoutInput(e)}); is the header length right?`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new FormatError(file, 'header', 'expected a JSON object');
  const duplicate = firstDuplicateKey(text);
  if (duplicate !== null) throw new FormatError(file, JSON.stringify(duplicate).slice(0, 200), 'the header names this tensor twice (duplicate key); each name must appear once');
  const dataStart = 8 + n;
  const dataLen = bytes.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, StTensor>();
  const spans: Array<[number, number, string]> = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new FormatError(file, '__metadata__', 'expected an object of strings');
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string') throw new FormatError(file, `__metadata__.${k}`, `expected a string, got ${typeof v}`);
        metadata[k] = v;
      }
      continue;
    }
    const parsed = SafetensorsEntry.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new FormatError(file, [name, ...issue.path.map(String)].join('.'), issue.message);
    }
    const { dtype, shape, data_offsets: [begin, end] } = parsed.data;
    if (!(dtype in SAFETENSORS_DTYPES)) {
      throw new FormatError(file, `${name}.dtype`, `unknown dtype ${JSON.stringify(dtype)}; expected one of ${Object.keys(SAFETENSORS_DTYPES).join(', ')}`);
    }
    const size = SAFETENSORS_DTYPES[dtype as SafetensorsDtype];
    const numel = shape.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(numel * size)) throw new FormatError(file, `${name}.shape`, `${JSON.stringify(shape)} is too large`);
    if (begin > end) throw new FormatError(file, `${name}.data_offsets`, `begin ${begin} is after end ${end}`);
    if (end > dataLen) throw new FormatError(file, `${name}.data_offsets`, `[${begin}, ${end}] runs past the end of the data (${dataLen} bytes)`);
    if (end - begin !== numel * size) {
      throw new FormatError(file, `${name}.data_offsets`, `[${begin}, ${end}] holds ${end - begin} bytes, but shape ${JSON.stringify(shape)} of ${dtype} needs ${numel * size}`);
    }
    spans.push([begin, end, name]);
    tensors.set(name, {
      dtype: dtype as SafetensorsDtype,
      shape,
      data: decodeData(dtype as SafetensorsDtype, bytes.subarray(dataStart + begin, dataStart + end), numel),
    });
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cursor = 0;
  for (const [b, e, name] of spans) {
    if (b < cursor) throw new FormatError(file, `${name}.data_offsets`, `[${b}, ${e}] overlaps the previous tensor (which ends at ${cursor})`);
    if (b > cursor) throw new FormatError(file, `${name}.data_offsets`, `leaves a hole: bytes [${cursor}, ${b}) belong to no tensor`);
    cursor = e;
  }
  if (cursor !== dataLen) throw new FormatError(file, 'data', `${dataLen - cursor} bytes after the last tensor belong to no tensor (truncated header or extra data)`);
  return { tensors, metadata };
}

/** Index of the first NaN or ±∞ in `data`, or −1. */
export function firstNonFinite(data: ArrayLike<number>): number {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return i;
  return -1;
}

/** Read a safetensors file from disk. */
export function readSafetensors(path: string): Safetensors {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new FormatError(path, '', `cannot read file (${(e as Error).message})`);
  }
  return parseSafetensors(bytes, path);
}

/** A tensor to write: float32 or float64 data in row-major order. */
export interface StTensorIn {
  dtype: 'F32' | 'F64';
  shape: readonly number[];
  data: ArrayLike<number>;
}

/** Serialise tensors (in the given order) and string metadata to safetensors bytes. */
export function serializeSafetensors(tensors: Iterable<[string, StTensorIn]>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const parts: Array<{ dtype: 'F32' | 'F64'; data: ArrayLike<number> }> = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new RangeError('serializeSafetensors: "__metadata__" is reserved and cannot name a tensor');
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length) throw new RangeError(`serializeSafetensors: ${name}: shape ${JSON.stringify(t.shape)} has ${numel} elements, data has ${t.data.length}`);
    const bytes = numel * SAFETENSORS_DTYPES[t.dtype];
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
    parts.push({ dtype: t.dtype, data: t.data });
  }
  let json = JSON.stringify(header);
  const enc = new TextEncoder();
  let hbytes = enc.encode(json);
  const pad = (8 - (hbytes.byteLength % 8)) % 8;
  if (pad > 0) {
    json += ' '.repeat(pad);
    hbytes = enc.encode(json);
  }
  const out = new Uint8Array(8 + hbytes.byteLength + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(hbytes.byteLength), true);
  out.set(hbytes, 8);
  let p = 8 + hbytes.byteLength;
  for (const { dtype, data } of parts) {
    if (dtype === 'F32') for (let i = 0; i < data.length; i++, p += 4) dv.setFloat32(p, data[i], true);
    else for (let i = 0; i < data.length; i++, p += 8) dv.setFloat64(p, data[i], true);
  }
  return out;
}

/** Write a safetensors file atomically (temporary name, then rename). */
export function writeSafetensors(path: string, tensors: Iterable<[string, StTensorIn]>, metadata: Record<string, string> = {}): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}
