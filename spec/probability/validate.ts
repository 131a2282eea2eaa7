/**
 * Argument validation shared by the specification: a zod schema is the single source of truth for what an
 * argument may be, and a failed check becomes an error that names the function, the argument (with the path
 * inside it) and the violated condition.
 *
 * @module
 */
import type { z } from 'zod';

/** Format a zod issue path as `.mean[2]` / `.cov[0][1]`. */
function formatPath(path: readonly PropertyKey[]): string {
  return path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('');
}

/**
 * Parse `value` with `schema`; on failure throw a `RangeError` whose message is
 * `fn: arg<path>: <condition>` for every issue (joined by `; `), e.g.
 * `gaussianLogPdf: g.cov: not symmetric: cov[0][1] = 0.5 but cov[1][0] = 0.25`.
 *
 * @param fn - the name of the function whose argument this is
 * @param arg - the argument's name as the function's signature spells it
 * @see property `probability.validate.namesArgument`
 */
export function parseArg<S extends z.ZodType>(fn: string, arg: string, schema: S, value: unknown): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const what = r.error.issues.map((i) => `${arg}${formatPath(i.path)}: ${i.message}`).join('; ');
  throw new RangeError(`${fn}: ${what}`);
}

/**
 * Throw `fn: message` as a `RangeError` (for conditions that involve several arguments, such as matching
 * dimensions).
 *
 * @see property `probability.validate.namesArgument`
 */
export function argError(fn: string, message: string): never {
  throw new RangeError(`${fn}: ${message}`);
}
