/**
 * The JSON tensor format of the golden data.
 *
 * A tensor is `{"dtype": "float32" | "float64" | "int64" | …, "shape": [d0, d1, …], "data": nested lists}`.
 * `data` nests `shape.length` levels deep (a bare number for shape `[]`), every level has exactly the
 * length its dimension says, and the leaves are numbers or the strings `"inf"`, `"-inf"`, `"nan"` (strict JSON
 * has no non-finite numbers). A float32 value is written as the double it represents exactly.
 *
 * {@link decodeTensor} turns such an object into a flat row-major `Float64Array` (every dtype here is
 * exactly representable as a double, int64 up to 2⁵³), checking everything above and naming the file and
 * field when something is off.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { FormatError, jsonErrorWithoutInput } from './errors.ts';

/** The dtypes a JSON tensor may declare. */
export const JSON_DTYPES = ['float64', 'float32', 'float16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool'] as const;
export type JsonDtype = (typeof JSON_DTYPES)[number];

/** A leaf of `data`: a finite number or one of the three non-finite spellings. */
const Leaf = z.union([z.number(), z.enum(['inf', '-inf', 'nan'])]);

type Nested = number | string | Nested[];
const NestedData: z.ZodType<Nested> = z.lazy(() => z.union([Leaf, z.array(NestedData)]));

/**
 * Zod schema of the JSON tensor format (structure only; {@link decodeTensor} also checks that `data`
 * matches `shape`). Exported as JSON Schema for other languages by `z.toJSONSchema(JsonTensor)`.
 */
export const JsonTensor = z
  .object({
    dtype: z.enum(JSON_DTYPES),
    shape: z.array(z.number().int().nonnegative()),
    data: NestedData,
  })
  .strict();
export type JsonTensor = z.infer<typeof JsonTensor>;

/** A decoded tensor: row-major values as doubles. */
export interface DecodedTensor {
  dtype: JsonDtype;
  shape: number[];
  data: Float64Array;
}

/** Does `v` look like a JSON tensor (an object with dtype, shape and data)? */
export function looksLikeTensor(v: unknown): v is Record<'dtype' | 'shape' | 'data', unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'dtype' in v && 'shape' in v && 'data' in v;
}

function leafValue(x: unknown, file: string, field: string): number {
  if (typeof x === 'number') return x;
  if (x === 'inf') return Number.POSITIVE_INFINITY;
  if (x === '-inf') return Number.NEGATIVE_INFINITY;
  if (x === 'nan') return Number.NaN;
  throw new FormatError(file, field, `expected a number or "inf"/"-inf"/"nan", got ${JSON.stringify(x)?.slice(0, 40)}`);
}

/**
 * Validate and decode one JSON tensor.
 *
 * @param v - the parsed JSON value
 * @param file - file name, for errors
 * @param field - dotted path of the tensor inside the file, for errors
 * @throws {@link FormatError} naming the file and the field
 */
export function decodeTensor(v: unknown, file: string, field: string): DecodedTensor {
  if (!looksLikeTensor(v)) throw new FormatError(file, field, 'expected a tensor object {dtype, shape, data}');
  const extra = Object.keys(v).filter((k) => k !== 'dtype' && k !== 'shape' && k !== 'data');
  if (extra.length > 0) throw new FormatError(file, `${field}.${extra[0]}`, 'unknown key in a tensor object');
  if (typeof v.dtype !== 'string' || !(JSON_DTYPES as readonly string[]).includes(v.dtype)) {
    throw new FormatError(file, `${field}.dtype`, `unknown dtype ${JSON.stringify(v.dtype)}; expected one of ${JSON_DTYPES.join(', ')}`);
  }
  const shape = v.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new FormatError(file, `${field}.shape`, `expected an array of non-negative integers, got ${JSON.stringify(shape)?.slice(0, 60)}`);
  }
  const size = shape.reduce((a: number, b: number) => a * b, 1);
  if (size > 2 ** 28) throw new FormatError(file, `${field}.shape`, `${size} elements is more than this reader accepts (2^28)`);
  const out = new Float64Array(size);
  let k = 0;
  const walk = (node: unknown, depth: number, path: string): void => {
    if (depth === shape.length) {
      out[k++] = leafValue(node, file, path);
      return;
    }
    if (!Array.isArray(node)) {
      throw new FormatError(file, path, `shape ${JSON.stringify(shape)} needs a list of length ${shape[depth]} at depth ${depth}, got ${typeof node}`);
    }
    if (node.length !== shape[depth]) {
      throw new FormatError(file, path, `shape ${JSON.stringify(shape)} says dimension ${depth} has length ${shape[depth]}, but data has ${node.length}`);
    }
    for (let i = 0; i < node.length; i++) walk(node[i], depth + 1, `${path}[${i}]`);
  };
  walk(v.data, 0, `${field}.data`);
  const dtype = v.dtype as JsonDtype;
  if (dtype !== 'float64' && dtype !== 'float32' && dtype !== 'float16') {
    for (let i = 0; i < size; i++) {
      if (!Number.isInteger(out[i])) throw new FormatError(file, `${field}.data`, `dtype ${dtype} but element ${i} is ${out[i]}`);
    }
  }
  return { dtype, shape: [...shape], data: out };
}

/** Encode a flat array as a JSON tensor (the inverse of {@link decodeTensor}). */
export function encodeTensor(dtype: JsonDtype, shape: readonly number[], data: ArrayLike<number>): JsonTensor {
  const size = shape.reduce((a, b) => a * b, 1);
  if (data.length !== size) throw new RangeError(`encodeTensor: shape ${JSON.stringify(shape)} has ${size} elements, data has ${data.length}`);
  const leaf = (x: number): number | string => (Number.isNaN(x) ? 'nan' : x === Infinity ? 'inf' : x === -Infinity ? '-inf' : x);
  let k = 0;
  const build = (depth: number): Nested => {
    if (depth === shape.length) return leaf(data[k++]);
    const arr: Nested[] = [];
    for (let i = 0; i < shape[depth]; i++) arr.push(build(depth + 1));
    return arr;
  };
  return { dtype: dtype as JsonTensor['dtype'], shape: [...shape], data: build(0) };
}

/** Read and parse a JSON file, with a clear error naming the file when it is not JSON. */
export function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new FormatError(path, '', `cannot read file (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FormatError(path, '', `not valid JSON (${jsonErrorWithoutInput(e)})`);
  }
}

/**
 * Walk a parsed golden file and decode the tensor at a dotted path (`cases.0.inputs.noise`), with errors
 * that name the file and the path.
 */
export function tensorAt(root: unknown, path: string, file: string): DecodedTensor {
  return decodeTensor(valueAt(root, path, file), file, path);
}

/** The value at a dotted path (`a.b.0.c`; keys may contain dots when written as `a["x.y"]`). */
export function valueAt(root: unknown, path: string, file: string): unknown {
  const parts: string[] = [];
  const re = /\["((?:[^"\\]|\\.)*)"\]|([^.[\]]+)/g;
  for (const m of path.matchAll(re)) parts.push(m[1] !== undefined ? JSON.parse(`"${m[1]}"`) : m[2]);
  let node: unknown = root;
  let walked = '';
  for (const p of parts) {
    walked = walked === '' ? p : `${walked}.${p}`;
    if (Array.isArray(node)) {
      const i = Number(p);
      if (!Number.isInteger(i) || i < 0 || i >= node.length) throw new FormatError(file, walked, `no element ${p} (list of length ${node.length})`);
      node = node[i];
    } else if (typeof node === 'object' && node !== null && p in node) {
      node = (node as Record<string, unknown>)[p];
    } else {
      throw new FormatError(file, walked, 'missing');
    }
  }
  return node;
}
