/**
 * Input checks shared by the diffusion-model spec. Not part of the public index: every exported function of
 * `spec/ddpm` calls these so that bad input gives an error naming the function, the argument and the valid
 * range, never a silent NaN.
 *
 * @see property `ddpm.input.badTimestepRejected`
 * @see property `ddpm.input.shapeMismatchRejected`
 * @module
 */

/**
 * Anything indexable that holds numbers: a plain array or a typed array. One vector, no batch axis.
 *
 * @see property `ddpm.input.shapeMismatchRejected`
 */
export type Vec = ArrayLike<number>;

/**
 * Throw unless `x` is a non-empty vector of finite numbers.
 *
 * @see property `ddpm.input.shapeMismatchRejected`
 */
export function checkVector(fn: string, name: string, x: Vec): void {
  if (x === null || typeof x !== 'object' || typeof x.length !== 'number') {
    throw new TypeError(`${fn}: ${name} must be an array of numbers, got ${x === null ? 'null' : typeof x}`);
  }
  if (x.length === 0) throw new RangeError(`${fn}: ${name} must have at least one element, got an empty array`);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    // v − v is 0 exactly for finite numbers, NaN for NaN and ±∞ (and for non-numbers after coercion).
    if (typeof v !== 'number' || v - v !== 0) {
      throw new RangeError(`${fn}: ${name}[${i}] must be a finite number, got ${String(v)}`);
    }
  }
}

/**
 * Throw unless all named vectors are valid and have the same length; returns that length.
 *
 * @see property `ddpm.input.shapeMismatchRejected`
 */
export function checkSameLength(fn: string, named: Record<string, Vec>): number {
  let first: string | undefined;
  let d = 0;
  for (const n in named) {
    const v = named[n];
    checkVector(fn, n, v);
    if (first === undefined) {
      first = n;
      d = v.length;
    } else if (v.length !== d) {
      throw new RangeError(`${fn}: ${first} and ${n} must have the same length, got [${d}] and [${v.length}]`);
    }
  }
  return d;
}

/**
 * Throw unless `t` is an integer in `lo…hi` (paper convention, 1-based, unless the caller says otherwise).
 *
 * @see property `ddpm.input.badTimestepRejected`
 */
export function checkTimestep(fn: string, t: number, lo: number, hi: number, name = 't'): void {
  if (!Number.isInteger(t) || t < lo || t > hi) {
    throw new RangeError(`${fn}: ${name} must be an integer in ${lo}…${hi} (paper timesteps, 1-based), got ${String(t)}`);
  }
}

/**
 * Throw unless `x` is a finite number within `[lo, hi]` (either end may be open).
 *
 * @see property `ddpm.input.badScalarRejected`
 */
export function checkScalar(
  fn: string,
  name: string,
  x: number,
  range: { lo?: number; hi?: number; loOpen?: boolean; hiOpen?: boolean } = {},
): void {
  const { lo = -Infinity, hi = Infinity, loOpen = false, hiOpen = false } = range;
  const ok =
    typeof x === 'number' &&
    Number.isFinite(x) &&
    (loOpen ? x > lo : x >= lo) &&
    (hiOpen ? x < hi : x <= hi);
  if (!ok) {
    const l = lo === -Infinity ? '(−∞' : `${loOpen ? '(' : '['}${lo}`;
    const h = hi === Infinity ? '∞)' : `${hi}${hiOpen ? ')' : ']'}`;
    throw new RangeError(`${fn}: ${name} must be a finite number in ${l}, ${h}, got ${String(x)}`);
  }
}

/**
 * a·x + b·y element-wise, as a new array.
 *
 * @see property `ddpm.forward.qSampleEqClosedForm`
 */
export function axpby(a: number, x: Vec, b: number, y: Vec): number[] {
  const out = new Array<number>(x.length);
  for (let i = 0; i < x.length; i++) out[i] = a * x[i] + b * y[i];
  return out;
}

/**
 * Σ (x_i − y_i)².
 *
 * @see property `ddpm.bound.epsFormEqKl`
 */
export function squaredDistance(x: Vec, y: Vec): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i] - y[i]) ** 2;
  return s;
}
