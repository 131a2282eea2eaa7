/**
 * One writer per output directory: a lock file `.lock` holding the owner's PID, host and start time.
 *
 * The file is created with its whole content at once (written to a temporary name, then hard-linked to `.lock`,
 * which fails if the lock exists), so a reader never sees a half-written lock. A lock whose owner is on this
 * host and no longer runs (a killed run) is stale: it is taken over with a warning. A live owner, or an owner on
 * another host (whose liveness cannot be checked from here), makes {@link acquireLock} refuse, naming both.
 *
 * @module
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { temporaryName } from './atomic.ts';
import { SystemError } from './errors.ts';

export const LOCK_FILE = '.lock';

/** What a lock file holds. */
export interface LockOwner {
  pid: number;
  host: string;
  started: string;
  command: string;
}

/** A held lock; {@link Lock.release} removes the file (if it is still ours). */
export interface Lock {
  readonly path: string;
  release(): void;
}

/** Is process `pid` running on this host? (EPERM: it runs under another user.) */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(path: string): LockOwner | null {
  try {
    const o = JSON.parse(readFileSync(path, 'utf8')) as LockOwner;
    return Number.isSafeInteger(o.pid) && typeof o.host === 'string' ? o : null;
  } catch {
    return null;
  }
}

/**
 * Take the lock of directory `dir` (which must exist) for this process.
 *
 * @param warn - told when a stale lock is taken over
 * @throws {@link SystemError} when another live run holds it, naming its PID, host and start
 */
export function acquireLock(dir: string, command: string, warn: (line: string) => void = () => {}): Lock {
  const path = join(dir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, host: hostname(), started: new Date().toISOString(), command };
  for (let attempt = 0; attempt < 3; attempt++) {
    const tmp = temporaryName(path);
    writeFileSync(tmp, `${JSON.stringify(me)}\n`);
    try {
      linkSync(tmp, path);
      rmSync(tmp, { force: true });
      return {
        path,
        release: () => {
          if (readOwner(path)?.pid === me.pid && readOwner(path)?.host === me.host) rmSync(path, { force: true });
        },
      };
    } catch (e) {
      rmSync(tmp, { force: true });
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = readOwner(path);
    if (owner === null) {
      throw new SystemError(path, 'the lock file of this directory is unreadable; if no run is writing here, delete it and try again');
    }
    const here = owner.host === me.host;
    if (here && owner.pid !== me.pid && !alive(owner.pid)) {
      warn(`${path}: taking over a stale lock of process ${owner.pid} (started ${owner.started}, no longer running)`);
      rmSync(path, { force: true });
      continue;
    }
    const who = `process ${owner.pid}${owner.pid === me.pid && here ? ' (this process)' : ''} on ${here ? 'this host' : `host ${owner.host}`}, started ${owner.started} (${owner.command})`;
    throw new SystemError(path, `another run writes in this directory: ${who}; wait for it, or choose another --out${here ? '' : ` (if it is gone, delete ${path})`}`);
  }
  throw new SystemError(path, 'could not take the lock (it kept changing hands)');
}
