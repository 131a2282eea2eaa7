/**
 * Shared pieces of the CLI: the typed errors a command raises and the exit codes they map to.
 *
 * Exit codes (the same for every command, documented in the README):
 *
 * | code | meaning |
 * |---|---|
 * | 0 | done; nothing failed |
 * | 1 | the work ran and its result is negative: a check failed, training diverged, a sample was not finite |
 * | 2 | bad input: an option, a configuration, a data, golden or checkpoint file (the option, file and field named) |
 * | 3 | `check` only: INCOMPLETE, nothing failed but something was declined or not understood |
 * | 4 | an internal error (a bug): one line, and the file the full report was written to |
 * | 5 | the system refused: disk full, a path not writable, memory exhausted, `--out` locked by another run |
 *
 * @module
 */

/** The exit codes of the table above. */
export const EXIT = { ok: 0, failed: 1, badInput: 2, incomplete: 3, internal: 4, system: 5 } as const;

export { SystemError } from '../io/errors.ts';

/** A user-facing error: printed without a stack trace, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The exit code a command sets (commander actions cannot return one). */
export interface ExitCode {
  value: number;
}
