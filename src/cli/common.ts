/**
 * Shared pieces of the CLI.
 *
 * @module
 */

/** A user-facing error: printed without a stack trace, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The exit code a command sets (commander actions cannot return one). */
export interface ExitCode {
  value: number;
}
