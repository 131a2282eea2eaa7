import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { z } from 'zod';
import { FormatError } from '../../src/formats/errors.ts';
import { JsonTensor, decodeTensor, encodeTensor, tensorAt } from '../../src/formats/jsonTensor.ts';

/** Shapes of rank 0–4 with up to 4 per dimension (zero-size dimensions included: the format allows them). */
const shapeArb = fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 });
const valueArb = fc.oneof(fc.double(), fc.constantFrom(Infinity, -Infinity, Number.NaN));
const tensorArb = shapeArb.chain((shape) =>
  fc.array(valueArb, { minLength: shape.reduce((a, b) => a * b, 1), maxLength: shape.reduce((a, b) => a * b, 1) }).map((data) => ({ shape, data })),
);

function expectFormatError(f: () => unknown, file: string, field: RegExp): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(FormatError);
    expect((e as FormatError).file).toBe(file);
    expect((e as FormatError).field).toMatch(field);
    return;
  }
  throw new Error('expected a FormatError, but the input was accepted');
}

describe('0.5.1 Data formats: JSON tensors {dtype, shape, data}', () => {
  it('decoding inverts encoding, non-finite values included  [formats.jsonTensor.roundTrip]', () =>
    fc.assert(
      fc.property(tensorArb, ({ shape, data }) => {
        const json = JSON.parse(JSON.stringify(encodeTensor('float64', shape, data)));
        expect(JsonTensor.safeParse(json).success).toBe(true);
        const back = decodeTensor(json, 'mem.json', 'x');
        expect(back.shape).toEqual(shape);
        // JSON has no −0: JSON.stringify(−0) is "0", so −0 comes back as +0.
        expect(Array.from(back.data)).toEqual(data.map((v) => (Object.is(v, -0) ? 0 : v)));
      }),
    ));

  it('a shape that does not match the nesting is rejected, naming the file and field  [formats.jsonTensor.shapeMismatch]', () =>
    fc.assert(
      fc.property(tensorArb, fc.integer({ min: 0, max: 3 }), ({ shape, data }, k) => {
        fc.pre(shape.length > 0);
        const j = k % shape.length;
        // A zero-size dimension above j leaves nothing to nest, so the data cannot contradict dimension j.
        fc.pre(shape.slice(0, j).every((d) => d > 0));
        const json = encodeTensor('float32', shape, data) as { shape: number[] };
        const bad = [...shape];
        bad[j] += 1;
        json.shape = bad;
        expectFormatError(() => decodeTensor(json, 'f.json', 'cases.0.noise'), 'f.json', /^cases\.0\.noise\.(data|shape)/);
      }),
    ));

  it('unknown dtypes, stray strings and non-integers in integer tensors are rejected  [formats.jsonTensor.badValues]', () => {
    expectFormatError(() => decodeTensor({ dtype: 'float8', shape: [1], data: [1] }, 'f.json', 'x'), 'f.json', /^x\.dtype$/);
    expectFormatError(() => decodeTensor({ dtype: 'float32', shape: [2], data: [1, 'infinity'] }, 'f.json', 'x'), 'f.json', /^x\.data\[1\]$/);
    expectFormatError(() => decodeTensor({ dtype: 'int64', shape: [2], data: [1, 2.5] }, 'f.json', 'x'), 'f.json', /^x\.data$/);
    expectFormatError(() => decodeTensor({ dtype: 'float32', shape: [-1], data: [] }, 'f.json', 'x'), 'f.json', /^x\.shape$/);
    expectFormatError(() => decodeTensor({ dtype: 'float32', shape: [1], data: [1], extra: 1 }, 'f.json', 'x'), 'f.json', /^x\.extra$/);
    expectFormatError(() => tensorAt({ a: [{ b: 1 }] }, 'a.0.c', 'f.json'), 'f.json', /^a\.0\.c$/);
  });

  it('the schema exports as JSON Schema for other languages  [formats.jsonTensor.jsonSchema]', () => {
    const schema = z.toJSONSchema(JsonTensor) as { properties: Record<string, unknown> };
    expect(Object.keys(schema.properties).sort()).toEqual(['data', 'dtype', 'shape']);
  });
});
