/**
 * Small helpers on the `{shape, data}` tensors of the operation vocabulary, for the golden readers:
 * decoding fields of a golden file (with {@link FormatError}s naming the file and field), slicing,
 * concatenating and reshaping along the leading axis.
 *
 * @module
 */
import { FormatError } from '../formats/errors.ts';
import { decodeTensor, valueAt } from '../formats/jsonTensor.ts';
import type { Tensor } from '../conformance/ops.ts';

/** Decode the tensor at `path` of a parsed golden file. */
export function tensorField(root: unknown, path: string, file: string): Tensor {
  const t = decodeTensor(valueAt(root, path, file), file, path);
  return { shape: t.shape, data: t.data };
}

/** The value at `path`, which must be a string. */
export function stringField(root: unknown, path: string, file: string): string {
  const v = valueAt(root, path, file);
  if (typeof v !== 'string') throw new FormatError(file, path, `expected a string, got ${JSON.stringify(v)?.slice(0, 40)}`);
  return v;
}

/** The value at `path`, which must be a finite number (optionally an integer ≥ min). */
export function numberField(root: unknown, path: string, file: string, opts: { integer?: boolean; min?: number } = {}): number {
  const v = valueAt(root, path, file);
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new FormatError(file, path, `expected a finite number, got ${JSON.stringify(v)?.slice(0, 40)}`);
  if (opts.integer && !Number.isSafeInteger(v)) throw new FormatError(file, path, `expected an integer, got ${v}`);
  if (opts.min !== undefined && v < opts.min) throw new FormatError(file, path, `expected a number ≥ ${opts.min}, got ${v}`);
  return v;
}

/** The value at `path`, which must be a boolean. */
export function boolField(root: unknown, path: string, file: string): boolean {
  const v = valueAt(root, path, file);
  if (typeof v !== 'boolean') throw new FormatError(file, path, `expected true or false, got ${JSON.stringify(v)?.slice(0, 40)}`);
  return v;
}

/** The value at `path`, which must be an object (not an array). */
export function objectField(root: unknown, path: string, file: string): Record<string, unknown> {
  const v = path === '' ? root : valueAt(root, path, file);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new FormatError(file, path, `expected an object, got ${Array.isArray(v) ? 'a list' : typeof v}`);
  return v as Record<string, unknown>;
}

/** The value at `path`, which must be a list. */
export function listField(root: unknown, path: string, file: string): unknown[] {
  const v = valueAt(root, path, file);
  if (!Array.isArray(v)) throw new FormatError(file, path, `expected a list, got ${typeof v}`);
  return v;
}

/** A list of integers at `path`. */
export function intListField(root: unknown, path: string, file: string): number[] {
  const v = listField(root, path, file);
  v.forEach((x, i) => {
    if (typeof x !== 'number' || !Number.isSafeInteger(x)) throw new FormatError(file, `${path}.${i}`, `expected an integer, got ${JSON.stringify(x)?.slice(0, 40)}`);
  });
  return v as number[];
}

/** Does the object have this key? */
export function has(obj: unknown, key: string): boolean {
  return typeof obj === 'object' && obj !== null && key in obj;
}

/** A tensor from a shape and data. */
export function tensor(shape: number[], data: ArrayLike<number>): Tensor {
  return { shape: [...shape], data: Float64Array.from(data) };
}

/** A scalar tensor. */
export function scalar(v: number): Tensor {
  return { shape: [], data: Float64Array.of(v) };
}

export function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Entry `i` along the first axis. */
export function index0(t: Tensor, i: number, file: string, field: string): Tensor {
  if (t.shape.length === 0 || i < 0 || i >= t.shape[0]) throw new FormatError(file, field, `no entry ${i} along the first axis of shape [${t.shape.join(',')}]`);
  const inner = size(t.shape.slice(1));
  return { shape: t.shape.slice(1), data: t.data.slice(i * inner, (i + 1) * inner) };
}

/** Concatenate along the first axis (all parts share the trailing shape). */
export function concat0(parts: Tensor[]): Tensor {
  const rest = parts[0].shape.slice(1);
  const n = parts.reduce((a, p) => a + p.shape[0], 0);
  const data = new Float64Array(size(rest) * n);
  let k = 0;
  for (const p of parts) {
    data.set(p.data, k);
    k += p.data.length;
  }
  return { shape: [n, ...rest], data };
}

/** Merge the first two axes: [A, B, …] → [A·B, …]. */
export function merge01(t: Tensor): Tensor {
  return { shape: [t.shape[0] * t.shape[1], ...t.shape.slice(2)], data: t.data };
}

/** Scale every element (in double, then rounded to float32 when `fround`). */
export function scale(t: Tensor, factor: number, fround = false): Tensor {
  return { shape: [...t.shape], data: t.data.map((v) => (fround ? Math.fround(v * factor) : v * factor)) };
}

/** Check that a tensor has the given shape (or rank), else a FormatError. */
export function expectShape(t: Tensor, want: ReadonlyArray<number | null>, file: string, field: string): void {
  if (t.shape.length !== want.length || want.some((w, i) => w !== null && w !== t.shape[i])) {
    throw new FormatError(file, field, `expected shape [${want.map((w) => (w === null ? '·' : w)).join(',')}], got [${t.shape.join(',')}]`);
  }
}

/** The integer values of a timestep tensor. */
export function intsOf(t: Tensor, file: string, field: string): number[] {
  const out = Array.from(t.data);
  out.forEach((v, i) => {
    if (!Number.isSafeInteger(v)) throw new FormatError(file, `${field}.data`, `expected integer timesteps, element ${i} is ${v}`);
  });
  return out;
}

/** A key of a golden file as one segment of a dotted path (quoted `["…"]` when it contains dots or brackets). */
export function q(key: string): string {
  return /[.[\]"\\]/.test(key) ? `["${key.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"]` : key;
}
