/**
 * Checks on output paths before any work: a path on a kernel pseudo-filesystem (/proc, /sys, cgroups, …) looks
 * writable to some calls but never holds a file (Node's recursive mkdir spins forever under /proc), so it is
 * refused by name.
 *
 * @module
 */
import { existsSync, lstatSync, realpathSync, statfsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { FormatError } from '../formats/errors.ts';

/** statfs magic numbers of the kernel's pseudo-filesystems (linux/magic.h). */
const PSEUDO_FS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x62656570, 'configfs'],
  [0x6165676c, 'pstore'],
  [0xcafe4a11, 'bpf'],
  [0x1cd1, 'devpts'],
  [0xde5e81e4, 'efivarfs'],
  [0x42494e4d, 'binfmt_misc'],
]);

/** The nearest ancestor of `path` (itself included) that exists, resolved through symbolic links. */
function existingAncestor(path: string): string {
  let p = resolve(path);
  while (!existsSync(p)) {
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  return realpathSync(p);
}

/**
 * Refuse an output path on a pseudo-filesystem or under /dev (other than the /dev/shm memory file system), and
 * a dangling symbolic link. `option` names the option or field for the error.
 *
 * @throws {@link FormatError} naming the option and the path
 */
export function refuseUnusableOutput(option: string, path: string): void {
  let link;
  try {
    link = lstatSync(path, { throwIfNoEntry: false });
  } catch {
    return; // a parent is not a directory: the caller's mkdir names that
  }
  if (link?.isSymbolicLink() && !existsSync(path)) throw new FormatError(option, '', `${path} is a symbolic link to a path that does not exist`);
  const base = existingAncestor(path);
  let kind: string | undefined;
  try {
    kind = PSEUDO_FS.get(Number(statfsSync(base).type));
  } catch {
    // statfs unsupported here: the path prefix check below still applies
  }
  if (kind === undefined && /^\/(proc|sys)(\/|$)/.test(base)) kind = base.split('/')[1];
  if (kind === undefined && /^\/dev(\/|$)/.test(base) && !/^\/dev\/shm(\/|$)/.test(base)) kind = 'devtmpfs (/dev)';
  if (kind !== undefined) throw new FormatError(option, '', `${path} is on ${kind}, a pseudo-filesystem of the kernel where output files cannot be kept; choose a directory on a disk`);
}
