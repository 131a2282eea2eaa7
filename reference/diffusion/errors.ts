/**
 * Argument checking for the reference: every error names the function, the argument and what was expected,
 * e.g. `qSample: x_start and noise must have the same shape, got [2,3] and [2,4]`.
 *
 * Checks that need only shapes and host values (timesteps, options) run synchronously inside the tensor
 * functions. Finiteness of tensor *values* needs a read-back, which a synchronous `tf.tidy` function cannot
 * do on every backend (webgpu under Node has no synchronous read-back); it is checked by the asynchronous
 * entry points (the loops, {@link assertFinite}) and by the conformance adapter on its host inputs.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';

/** A bad argument to a reference function. The message names the function, the argument and the expectation. */
export class ReferenceArgumentError extends Error {
  override name = 'ReferenceArgumentError';
  constructor(
    readonly fn: string,
    readonly arg: string,
    message: string,
  ) {
    super(`${fn}: ${message}`);
  }
}

/**
 * A loop produced a non-finite value: the loop stops at the step where it first appeared instead of returning
 * a silently NaN result.
 */
export class NonFiniteError extends Error {
  override name = 'NonFiniteError';
  constructor(
    readonly fn: string,
    /** 0-based index of the loop step (0 is the first step). */
    readonly step: number,
    /** The 0-based timestep of that step. */
    readonly t: number,
    what: string,
  ) {
    super(`${fn}: ${what} became non-finite (NaN or ±∞) at loop step ${step} (t = ${t}); the loop was stopped there`);
  }
}

/** `[2,3]` for messages. */
export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/** Two tensors must have the same shape. */
export function sameShape(fn: string, nameA: string, a: tf.Tensor, nameB: string, b: tf.Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new ReferenceArgumentError(fn, nameB, `${nameA} and ${nameB} must have the same shape, got ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
  }
}

/** A tensor must be float32 and have rank ≥ `minRank`. */
export function floatTensor(fn: string, name: string, x: unknown, minRank = 0): asserts x is tf.Tensor {
  if (!(x instanceof tf.Tensor)) throw new ReferenceArgumentError(fn, name, `${name} must be a tf.Tensor, got ${typeof x}`);
  if (x.dtype !== 'float32') throw new ReferenceArgumentError(fn, name, `${name} must have dtype float32, got ${x.dtype}`);
  if (x.rank < minRank) throw new ReferenceArgumentError(fn, name, `${name} must have rank ≥ ${minRank} (batch first), got shape ${shapeStr(x.shape)}`);
  if (x.isDisposed) throw new ReferenceArgumentError(fn, name, `${name} has been disposed`);
}

/** Host timesteps: one integer per batch element, each in {0, …, T−1}. */
export type Timesteps = ArrayLike<number>;

/**
 * Timesteps must be integers in {0, …, T−1}, one per batch element.
 *
 * @param batch - the batch size they must match
 */
export function timesteps(fn: string, t: Timesteps, T: number, batch: number, name = 't'): void {
  if (t === null || typeof t !== 'object' || typeof t.length !== 'number') {
    throw new ReferenceArgumentError(fn, name, `${name} must be an array of integer timesteps, got ${typeof t}`);
  }
  if (t.length !== batch) throw new ReferenceArgumentError(fn, name, `${name} must have one timestep per batch element (${batch}), got ${t.length}`);
  for (let i = 0; i < t.length; i++) {
    const v = t[i];
    if (!Number.isInteger(v) || v < 0 || v > T - 1) {
      throw new ReferenceArgumentError(fn, name, `${name}[${i}] must be an integer in {0, …, ${T - 1}} (0-based, T = ${T}), got ${v}`);
    }
  }
}

/** A choice among named options. */
export function oneOf<T extends string>(fn: string, name: string, v: unknown, allowed: readonly T[]): asserts v is T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new ReferenceArgumentError(fn, name, `${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  }
}

/** A finite number (optionally in a range). */
export function finiteNumber(fn: string, name: string, v: unknown, range?: { min?: number; max?: number }): asserts v is number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ReferenceArgumentError(fn, name, `${name} must be a finite number, got ${String(v)}`);
  if (range?.min !== undefined && v < range.min) throw new ReferenceArgumentError(fn, name, `${name} must be ≥ ${range.min}, got ${v}`);
  if (range?.max !== undefined && v > range.max) throw new ReferenceArgumentError(fn, name, `${name} must be ≤ ${range.max}, got ${v}`);
}

/** A positive integer. */
export function positiveInt(fn: string, name: string, v: unknown): asserts v is number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new ReferenceArgumentError(fn, name, `${name} must be a positive integer, got ${String(v)}`);
}

/**
 * Asynchronously check that every value of a tensor is finite (one read-back of a boolean).
 *
 * @throws {@link ReferenceArgumentError} naming the function and the argument
 */
export async function assertFinite(fn: string, name: string, x: tf.Tensor): Promise<void> {
  const ok = tf.tidy(() => tf.all(tf.isFinite(x)));
  const v = (await ok.data())[0];
  ok.dispose();
  if (!v) throw new ReferenceArgumentError(fn, name, `${name} must be finite everywhere, but it contains NaN or ±∞`);
}

/** Finiteness of a host array (no read-back needed). */
export function finiteArray(fn: string, name: string, a: ArrayLike<number>): void {
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) throw new ReferenceArgumentError(fn, name, `${name} must be finite everywhere, but element ${i} is ${a[i]}`);
  }
}
