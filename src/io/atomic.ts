/**
 * Writing files so that a failed or killed run loses no data: write to a temporary name in the same
 * directory, flush it to disk, then rename over the target (rename is atomic on POSIX file systems).
 *
 * @module
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** A temporary sibling name for `path`: same directory, so the rename stays on one file system. */
export function temporaryName(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
}

/**
 * Write `data` to `path` atomically. On any error the temporary file is removed and the previous
 * content of `path` (if any) is untouched.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = temporaryName(path);
  let fd: number | null = null;
  try {
    fd = openSync(tmp, 'w');
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < bytes.byteLength) off += writeSync(fd, bytes, off, bytes.byteLength - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== null) closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
}
