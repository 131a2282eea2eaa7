/**
 * Errors of the system rather than of the input: a disk that is full, a path that cannot be written, memory
 * that ran out, an output directory that another run holds.
 *
 * @module
 */

/** The system refused something a run needs. `where` names the file or option concerned. */
export class SystemError extends Error {
  override name = 'SystemError';
  constructor(
    readonly where: string,
    readonly problem: string,
  ) {
    super(`${where}: ${problem}`);
  }
}

/** errno codes that mean "the system refused" (not a bug of ours, not bad input). */
export const SYSTEM_ERRNO = new Set(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS', 'EIO', 'EMFILE', 'ENFILE', 'ENOMEM', 'EFBIG', 'EBUSY', 'ETXTBSY', 'EXDEV']);

/** Is `e` a Node system error (with an errno `code`) of the kind {@link SYSTEM_ERRNO} lists? */
export function isSystemErrno(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string' && SYSTEM_ERRNO.has((e as NodeJS.ErrnoException).code!);
}
