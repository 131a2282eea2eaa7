import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '../../src/formats/errors.ts';
import { parseSafetensors, readSafetensors, serializeSafetensors, writeSafetensors, type StTensorIn } from '../../src/formats/safetensors.ts';

const nameArb = fc.stringMatching(/^[a-z][a-z0-9_.]{0,12}$/).filter((s) => s !== '__metadata__');
const tensorArb: fc.Arbitrary<StTensorIn> = fc
  .record({ dtype: fc.constantFrom('F32' as const, 'F64' as const), shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }) })
  .chain(({ dtype, shape }) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = dtype === 'F32' ? fc.float({ noNaN: true }) : fc.double({ noNaN: true });
    return fc.array(v, { minLength: n, maxLength: n }).map((data) => ({ dtype, shape, data }));
  });
const fileArb = fc.uniqueArray(fc.tuple(nameArb, tensorArb), { selector: (t) => t[0], minLength: 1, maxLength: 5 });

/** Build a file by hand from a header object and a data length, to make malformed ones. */
function rawFile(header: unknown, dataBytes: number, headerLenOverride?: number): Uint8Array {
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLenOverride ?? h.length), true);
  out.set(h, 8);
  return out;
}

function formatErrorOf(f: () => unknown): FormatError {
  try {
    f();
  } catch (e) {
    if (e instanceof FormatError) return e;
    throw new Error(`expected a FormatError, got ${String(e)}`);
  }
  throw new Error('expected a FormatError, but the file was accepted');
}

describe('0.5.2 Data formats: safetensors (u64 header length, JSON header, raw little-endian data)', () => {
  it('reading inverts writing, order and metadata included  [formats.safetensors.roundTrip]', () =>
    fc.assert(
      fc.property(fileArb, fc.dictionary(nameArb, fc.string()), (tensors, metadata) => {
        const bytes = serializeSafetensors(tensors, metadata);
        expect((bytes.byteLength - 8 - Number(new DataView(bytes.buffer).getBigUint64(0, true))) % 1).toBe(0);
        expect(Number(new DataView(bytes.buffer).getBigUint64(0, true)) % 8).toBe(0);
        const back = parseSafetensors(bytes, 'mem.safetensors');
        expect([...back.tensors.keys()]).toEqual(tensors.map((t) => t[0]));
        expect(back.metadata).toEqual(metadata);
        for (const [name, t] of tensors) {
          const b = back.tensors.get(name)!;
          expect(b.shape).toEqual(t.shape);
          expect(Array.from(b.data as Float64Array)).toEqual(t.dtype === 'F32' ? Array.from(Float32Array.from(t.data)) : Array.from(t.data));
        }
      }),
    ));

  it('every truncation of a valid file is rejected with an error naming the file  [formats.safetensors.truncated]', () =>
    fc.assert(
      fc.property(fileArb, fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), (tensors, frac) => {
        const bytes = serializeSafetensors(tensors);
        const cut = Math.floor(frac * bytes.byteLength);
        fc.pre(cut < bytes.byteLength);
        const e = formatErrorOf(() => parseSafetensors(bytes.subarray(0, cut), 'cut.safetensors'));
        expect(e.file).toBe('cut.safetensors');
        expect(e.field).toMatch(/^(header length|header|data|.+\.data_offsets)$/);
      }),
    ));

  it('a wrong header length is rejected  [formats.safetensors.badHeaderLength]', () =>
    fc.assert(
      fc.property(fileArb, fc.integer({ min: -7, max: 7 }).filter((d) => d !== 0), (tensors, d) => {
        const bytes = serializeSafetensors(tensors).slice();
        const dv = new DataView(bytes.buffer);
        const n = Number(dv.getBigUint64(0, true));
        // Trailing spaces pad the header: shrinking the length into the padding still parses, so only test
        // lengths that cut JSON or eat data.
        const trimmed = new TextDecoder().decode(bytes.subarray(8, 8 + n)).trimEnd().length;
        fc.pre(n + d < trimmed || d > 0);
        dv.setBigUint64(0, BigInt(Math.max(0, n + d)), true);
        const e = formatErrorOf(() => parseSafetensors(bytes, 'len.safetensors'));
        expect(e.field).toMatch(/^(header length|header|data|.+\.data_offsets)$/);
      }),
    ));

  it('unknown dtypes, out-of-range offsets, size mismatches, overlaps and holes name the tensor and field  [formats.safetensors.badEntries]', () => {
    const ok = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
    expect(formatErrorOf(() => parseSafetensors(rawFile({ w: { ...ok, dtype: 'F128' } }, 8), 'a')).field).toBe('w.dtype');
    expect(formatErrorOf(() => parseSafetensors(rawFile({ w: { ...ok, data_offsets: [0, 16] } }, 8), 'a')).field).toBe('w.data_offsets');
    expect(formatErrorOf(() => parseSafetensors(rawFile({ w: { ...ok, shape: [3] } }, 8), 'a')).message).toMatch(/needs 12/);
    expect(formatErrorOf(() => parseSafetensors(rawFile({ w: ok, v: { ...ok, data_offsets: [4, 12] } }, 12), 'a')).message).toMatch(/overlaps/);
    expect(formatErrorOf(() => parseSafetensors(rawFile({ w: ok, v: { ...ok, data_offsets: [12, 20] } }, 20), 'a')).message).toMatch(/hole/);
    expect(formatErrorOf(() => parseSafetensors(rawFile({ w: { ...ok, shape: [-2] } }, 8), 'a')).field).toBe('w.shape.0');
    expect(formatErrorOf(() => parseSafetensors(rawFile({ __metadata__: { a: 1 } }, 0), 'a')).field).toBe('__metadata__.a');
    expect(formatErrorOf(() => parseSafetensors(rawFile([1, 2], 0), 'a')).field).toBe('header');
    expect(formatErrorOf(() => parseSafetensors(new Uint8Array(5), 'short')).message).toMatch(/short\b.*8-byte/);
  });

  it('random corruption of the header never crashes the reader: it parses or raises a FormatError  [formats.safetensors.fuzzHeader]', () =>
    fc.assert(
      fc.property(fileArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (tensors, flips) => {
        const bytes = serializeSafetensors(tensors).slice();
        const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
        for (const [pos, v] of flips) bytes[8 + (pos % n)] = v;
        try {
          parseSafetensors(bytes, 'fuzz');
        } catch (e) {
          expect(e).toBeInstanceOf(FormatError);
        }
      }),
    ));

  it('a file is written atomically: no temporary file is left and the previous content survives a failure  [formats.safetensors.atomicWrite]', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ddpm-st-'));
    try {
      const path = join(dir, 'w.safetensors');
      writeSafetensors(path, [['a', { dtype: 'F32', shape: [2], data: [1, 2] }]]);
      const first = readFileSync(path);
      expect(() => writeSafetensors(path, [['a', { dtype: 'F32', shape: [3], data: [1, 2] }]])).toThrow(/shape \[3\] has 3 elements, data has 2/);
      expect(readFileSync(path)).toEqual(first);
      expect(readdirSync(dir)).toEqual(['w.safetensors']);
      writeFileSync(join(dir, 'bad.safetensors'), new Uint8Array([1, 2, 3]));
      expect(() => readSafetensors(join(dir, 'bad.safetensors'))).toThrow(/bad\.safetensors: header length/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
